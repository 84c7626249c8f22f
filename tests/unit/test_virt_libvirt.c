/* The libvirt VM driver against libvirt's in-process test driver
 * (test:///default: domains created from XML, destroyed, paused, listed,
 * with lifecycle events), with a GLib main loop running as in herdd; and
 * against a "libvirtd" that accepts connections and never answers. */
#include "common/error.h"
#include "virt/driver.h"

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define TEST_URI "test:///default"

/* ---- recording what the driver reports ---- */

typedef struct {
	GArray *facts;          /* every fact reported, in order */
	int lost, back;         /* connection(true) / connection(false) calls */
} recorder;

static void on_fact(gpointer user, const herd_vm_fact *f)
{
	recorder *r = user;
	g_array_append_val(r->facts, *f);
}

static void on_connection(gpointer user, bool lost)
{
	recorder *r = user;
	if (lost)
		r->lost++;
	else
		r->back++;
}

static const herd_virt_callbacks callbacks = { .fact = on_fact, .connection = on_connection };

typedef struct {
	bool done;
	GError *error;
	int order;              /* completion order among all operations */
	gint64 at_us;           /* monotonic time of completion */
} op_result;

static int completions;

static void on_done(const GError *error, gpointer user)
{
	op_result *r = user;
	g_assert_false(r->done); /* exactly once */
	r->done = true;
	r->error = error ? g_error_copy(error) : NULL;
	r->order = ++completions;
	r->at_us = g_get_monotonic_time();
}

static void op_result_clear(op_result *r)
{
	g_clear_error(&r->error);
	memset(r, 0, sizeof(*r));
}

static gboolean wake_up(gpointer data)
{
	return G_SOURCE_REMOVE;
}

/* Run the default main context until @cond holds; false after @timeout_ms. */
static bool run_until(bool (*cond)(gpointer), gpointer data, unsigned timeout_ms)
{
	gint64 end = g_get_monotonic_time() + (gint64)timeout_ms * 1000;
	while (!cond(data)) {
		if (g_get_monotonic_time() > end)
			return false;
		GSource *t = g_timeout_source_new(10);
		g_source_set_callback(t, wake_up, NULL, NULL);
		g_source_attach(t, NULL);
		g_main_context_iteration(NULL, TRUE);
		g_source_destroy(t);
		g_source_unref(t);
	}
	return true;
}

static bool never(gpointer data)
{
	return false;
}

static void run_for(unsigned ms)
{
	run_until(never, NULL, ms);
}

static bool is_done(gpointer data)
{
	return ((op_result *)data)->done;
}

static void wait_done(op_result *r)
{
	if (!run_until(is_done, r, 5000))
		g_error("an operation did not complete within 5 s");
}

static bool is_back(gpointer data)
{
	return ((recorder *)data)->back > 0;
}

/* The last fact reported for @uuid, or NULL. */
static const herd_vm_fact *last_fact(recorder *r, const char *uuid)
{
	for (guint i = r->facts->len; i-- > 0;) {
		const herd_vm_fact *f = &g_array_index(r->facts, herd_vm_fact, i);
		if (strcmp(f->uuid, uuid) == 0)
			return f;
	}
	return NULL;
}

static unsigned count_facts(recorder *r, const char *uuid, herd_vm_state state)
{
	unsigned n = 0;
	for (guint i = 0; i < r->facts->len; i++) {
		const herd_vm_fact *f = &g_array_index(r->facts, herd_vm_fact, i);
		if (strcmp(f->uuid, uuid) == 0 && f->state == state)
			n++;
	}
	return n;
}

typedef struct {
	recorder *r;
	const char *uuid;
	herd_vm_state state;
} fact_wait;

static bool has_state(gpointer data)
{
	fact_wait *w = data;
	const herd_vm_fact *f = last_fact(w->r, w->uuid);
	return f && f->state == w->state;
}

static void wait_state(recorder *r, const char *uuid, herd_vm_state state)
{
	fact_wait w = { r, uuid, state };
	if (!run_until(has_state, &w, 5000)) {
		const herd_vm_fact *f = last_fact(r, uuid);
		g_error("VM %s did not become %s within 5 s (last fact: %s, %s)", uuid,
			herd_vm_state_name(state), f ? herd_vm_state_name(f->state) : "none",
			f ? f->reason : "");
	}
}

/* The state facts() says now (from the cache); STOPPED if unknown. */
static herd_vm_fact cached_fact(herd_virt *v, const char *uuid)
{
	herd_vm_fact out = { .state = HERD_VM_STOPPED };
	g_autoptr(GArray) all = v->ops->facts(v);
	for (guint i = 0; i < all->len; i++) {
		herd_vm_fact *f = &g_array_index(all, herd_vm_fact, i);
		if (strcmp(f->uuid, uuid) == 0)
			out = *f;
	}
	return out;
}

/* ---- fixtures ---- */

typedef struct {
	recorder rec;
	herd_virt *v;
} fixture;

static void fixture_open(fixture *fx, const char *uri)
{
	fx->rec.facts = g_array_new(FALSE, TRUE, sizeof(herd_vm_fact));
	fx->v = herd_virt_libvirt_new(uri, &callbacks, &fx->rec);
	g_autoptr(GError) error = NULL;
	g_assert_true(fx->v->ops->open(fx->v, &error));
	g_assert_no_error(error);
}

static void setup(fixture *fx, gconstpointer data)
{
	fixture_open(fx, TEST_URI);
	if (!run_until(is_back, &fx->rec, 5000))
		g_error("no connection to %s within 5 s", TEST_URI);
}

static void teardown(fixture *fx, gconstpointer data)
{
	herd_virt_free(fx->v);
	/* libvirt frees its event handles from idle callbacks. */
	run_for(50);
	g_array_unref(fx->rec.facts);
}

/* The shape of herd's test guest, as the test driver takes it. */
static char *guest_xml(const char *name, const char *uuid)
{
	return g_strdup_printf(
		"<domain type='qemu'>\n"
		"  <name>%s</name>\n"
		"  <uuid>%s</uuid>\n"
		"  <memory unit='MiB'>32</memory>\n"
		"  <vcpu placement='static'>1</vcpu>\n"
		"  <os><type arch='x86_64' machine='pc'>hvm</type><boot dev='hd'/></os>\n"
		"  <on_poweroff>destroy</on_poweroff>\n"
		"  <devices><emulator>/usr/bin/qemu-system-x86_64</emulator></devices>\n"
		"</domain>\n",
		name, uuid);
}

typedef struct {
	char uuid[37];
	char name[32];
	char *xml;
} guest;

static void guest_init(guest *g, const char *prefix)
{
	static unsigned n;
	g_autofree char *uuid = g_uuid_string_random();
	g_strlcpy(g->uuid, uuid, sizeof(g->uuid));
	g_snprintf(g->name, sizeof(g->name), "%s-%u", prefix, ++n);
	g->xml = guest_xml(g->name, g->uuid);
}

static void guest_clear(guest *g)
{
	g_free(g->xml);
}

static void expect_ok(op_result *r)
{
	wait_done(r);
	g_assert_no_error(r->error);
}

static void start_ok(fixture *fx, guest *g)
{
	op_result r = { 0 };
	fx->v->ops->start(fx->v, g->uuid, g->xml, on_done, &r);
	expect_ok(&r);
	op_result_clear(&r);
}

static void expect_error(op_result *r, int code, const char *prefix, const char *needle)
{
	wait_done(r);
	g_assert_nonnull(r->error);
	if (!g_error_matches(r->error, HERD_ERROR, code))
		g_error("expected error code %d, got %d: %s", code, r->error->code,
			r->error->message);
	if (!g_str_has_prefix(r->error->message, prefix))
		g_error("'%s' does not start with '%s'", r->error->message, prefix);
	if (needle && !strstr(r->error->message, needle))
		g_error("'%s' does not mention '%s'", r->error->message, needle);
	/* a whole sentence, fit for a JSON answer */
	g_assert_true(g_str_has_suffix(r->error->message, "."));
	g_assert_true(g_utf8_validate(r->error->message, -1, NULL));
}

/* ---- tests ---- */

/* At connect, every domain libvirt has is reported; resources are known. */
static void test_connect_reports_all(fixture *fx, gconstpointer data)
{
	g_assert_cmpint(fx->rec.back, ==, 1);
	g_assert_cmpint(fx->rec.lost, ==, 0);
	/* The test driver's own sample domain "test" runs from the start. */
	virConnectPtr c = virConnectOpen(TEST_URI);
	virDomainPtr d = virDomainLookupByName(c, "test");
	g_assert_nonnull(d);
	char uuid[VIR_UUID_STRING_BUFLEN];
	g_assert_cmpint(virDomainGetUUIDString(d, uuid), ==, 0);
	virDomainFree(d);
	virConnectClose(c);
	const herd_vm_fact *f = last_fact(&fx->rec, uuid);
	g_assert_nonnull(f);
	g_assert_cmpint(f->state, ==, HERD_VM_RUNNING);
	/* Not a QEMU driver: since = first sight, at the fixture's connect:
	 * a time of this run, not 0 or a default. */
	gint64 now_ms = g_get_real_time() / 1000;
	g_assert_cmpint(f->since_ms, <=, now_ms);
	g_assert_cmpint(f->since_ms, >, now_ms - 3600 * 1000);
	herd_node_resources res;
	g_assert_true(fx->v->ops->resources(fx->v, &res));
	/* The test driver's fixed node: 16 CPUs, 3 GiB. */
	g_assert_cmpuint(res.cpus, ==, 16);
	g_assert_cmpuint(res.memory_mib, ==, 3072);
}

static void test_start_destroy(fixture *fx, gconstpointer data)
{
	guest g;
	guest_init(&g, "sd");
	int64_t before = g_get_real_time() / 1000;
	op_result r = { 0 };
	fx->v->ops->start(fx->v, g.uuid, g.xml, on_done, &r);
	/* Never completed inside the call. */
	g_assert_false(r.done);
	expect_ok(&r);
	wait_state(&fx->rec, g.uuid, HERD_VM_RUNNING);
	const herd_vm_fact *f = last_fact(&fx->rec, g.uuid);
	g_assert_cmpstr(f->reason, ==, "started");
	g_assert_cmpint(f->since_ms, >=, before);
	g_assert_cmpint(f->since_ms, <=, g_get_real_time() / 1000);
	g_assert_cmpuint(count_facts(&fx->rec, g.uuid, HERD_VM_STARTING), ==, 1);
	g_assert_cmpint(cached_fact(fx->v, g.uuid).state, ==, HERD_VM_RUNNING);
	op_result_clear(&r);

	fx->v->ops->destroy(fx->v, g.uuid, on_done, &r);
	expect_ok(&r);
	wait_state(&fx->rec, g.uuid, HERD_VM_STOPPED);
	g_assert_cmpstr(last_fact(&fx->rec, g.uuid)->reason, ==, "destroyed");
	g_assert_cmpuint(count_facts(&fx->rec, g.uuid, HERD_VM_STOPPING), ==, 1);
	g_assert_cmpint(cached_fact(fx->v, g.uuid).state, ==, HERD_VM_STOPPED);
	op_result_clear(&r);

	/* Destroying what is not running is done, not an error. */
	fx->v->ops->destroy(fx->v, g.uuid, on_done, &r);
	expect_ok(&r);
	op_result_clear(&r);
	guest_clear(&g);
}

static void test_idempotent_start(fixture *fx, gconstpointer data)
{
	guest g;
	guest_init(&g, "idem");
	start_ok(fx, &g);
	wait_state(&fx->rec, g.uuid, HERD_VM_RUNNING);
	guint seen = fx->rec.facts->len;
	op_result r = { 0 };
	fx->v->ops->start(fx->v, g.uuid, g.xml, on_done, &r);
	expect_ok(&r);
	run_for(50);
	/* No new fact: it never left RUNNING (no STARTING flicker). */
	for (guint i = seen; i < fx->rec.facts->len; i++)
		g_assert_cmpstr(g_array_index(fx->rec.facts, herd_vm_fact, i).uuid, !=, g.uuid);
	g_assert_cmpint(cached_fact(fx->v, g.uuid).state, ==, HERD_VM_RUNNING);
	op_result_clear(&r);

	/* Also when it was started behind herd's back. */
	guest h;
	guest_init(&h, "idem-outside");
	virConnectPtr c = virConnectOpen(TEST_URI);
	virDomainPtr d = virDomainCreateXML(c, h.xml, 0);
	g_assert_nonnull(d);
	fx->v->ops->start(fx->v, h.uuid, h.xml, on_done, &r);
	expect_ok(&r);
	wait_state(&fx->rec, h.uuid, HERD_VM_RUNNING);
	op_result_clear(&r);
	virDomainDestroy(d);
	virDomainFree(d);
	virConnectClose(c);
	wait_state(&fx->rec, h.uuid, HERD_VM_STOPPED);
	guest_clear(&h);

	fx->v->ops->destroy(fx->v, g.uuid, on_done, &r);
	expect_ok(&r);
	op_result_clear(&r);
	guest_clear(&g);
}

static void test_suspend_resume(fixture *fx, gconstpointer data)
{
	guest g;
	guest_init(&g, "sr");
	start_ok(fx, &g);
	op_result r = { 0 };
	fx->v->ops->suspend(fx->v, g.uuid, on_done, &r);
	expect_ok(&r);
	wait_state(&fx->rec, g.uuid, HERD_VM_PAUSED);
	g_assert_cmpstr(last_fact(&fx->rec, g.uuid)->reason, ==, "paused");
	op_result_clear(&r);
	fx->v->ops->resume(fx->v, g.uuid, on_done, &r);
	expect_ok(&r);
	wait_state(&fx->rec, g.uuid, HERD_VM_RUNNING);
	g_assert_cmpstr(last_fact(&fx->rec, g.uuid)->reason, ==, "resumed");
	op_result_clear(&r);
	/* reboot and reset keep it running */
	fx->v->ops->reboot(fx->v, g.uuid, on_done, &r);
	expect_ok(&r);
	op_result_clear(&r);
	fx->v->ops->reset(fx->v, g.uuid, on_done, &r);
	expect_ok(&r);
	op_result_clear(&r);
	g_assert_cmpint(cached_fact(fx->v, g.uuid).state, ==, HERD_VM_RUNNING);
	fx->v->ops->destroy(fx->v, g.uuid, on_done, &r);
	expect_ok(&r);
	op_result_clear(&r);
	guest_clear(&g);
}

static void test_errors(fixture *fx, gconstpointer data)
{
	op_result r = { 0 };
	/* XML libvirt refuses */
	g_autofree char *uuid = g_uuid_string_random();
	g_autofree char *prefix = g_strdup_printf("Cannot start VM %s: libvirt: ", uuid);
	fx->v->ops->start(fx->v, uuid, "<domain type='qemu'><name>x</name>", on_done, &r);
	expect_error(&r, HERD_ERR_INVALID, prefix, "Premature end of data");
	g_assert_null(strchr(r.error->message, '\n'));
	const herd_vm_fact *f = last_fact(&fx->rec, uuid);
	g_assert_nonnull(f);
	g_assert_cmpint(f->state, ==, HERD_VM_STOPPED);
	g_assert_cmpstr(f->reason, ==, "start failed");
	op_result_clear(&r);

	/* XML of another VM: refused, and nothing is left running */
	guest other;
	guest_init(&other, "other");
	g_autofree char *uuid2 = g_uuid_string_random();
	g_free(prefix);
	prefix = g_strdup_printf("Cannot start VM %s: its domain XML has the UUID %s", uuid2,
				 other.uuid);
	fx->v->ops->start(fx->v, uuid2, other.xml, on_done, &r);
	expect_error(&r, HERD_ERR_INVALID, prefix, NULL);
	op_result_clear(&r);
	virConnectPtr c = virConnectOpen(TEST_URI);
	virDomainPtr d = virDomainLookupByUUIDString(c, other.uuid);
	g_assert_null(d);
	virResetLastError();
	virConnectClose(c);
	guest_clear(&other);

	/* unknown UUID */
	g_autofree char *unknown = g_uuid_string_random();
	g_free(prefix);
	prefix = g_strdup_printf("Cannot suspend VM %s: it is not running on this node", unknown);
	fx->v->ops->suspend(fx->v, unknown, on_done, &r);
	expect_error(&r, HERD_ERR_NOT_FOUND, prefix, NULL);
	op_result_clear(&r);
	fx->v->ops->reboot(fx->v, unknown, on_done, &r);
	expect_error(&r, HERD_ERR_NOT_FOUND, "Cannot reboot VM ", unknown);
	op_result_clear(&r);
	/* stopping it is done, though */
	fx->v->ops->shutdown(fx->v, unknown, 60, on_done, &r);
	expect_ok(&r);
	op_result_clear(&r);

	/* not a UUID, or no XML */
	fx->v->ops->resume(fx->v, "web1", on_done, &r);
	g_assert_false(r.done);
	expect_error(&r, HERD_ERR_INVALID, "Cannot resume VM 'web1': that is not a UUID.", NULL);
	op_result_clear(&r);
	fx->v->ops->start(fx->v, unknown, "", on_done, &r);
	expect_error(&r, HERD_ERR_INVALID, "Cannot start VM ", "XML is empty");
	op_result_clear(&r);
}

/* Bad input to migrate() is refused with a sentence that says what; a
 * migration libvirt cannot do (the test driver has none) fails, and the VM
 * is back RUNNING after MIGRATING; migrate_progress() knows none then. */
static void test_migrate_errors(fixture *fx, gconstpointer data)
{
	op_result r = { 0 };
	herd_migrate_params p = { .to = "n3", .address = "10.99.0.3", .tls = true, .timeout_s = 30 };
	herd_migrate_progress progress;

	fx->v->ops->migrate(fx->v, "web1", &p, on_done, &r);
	g_assert_false(r.done);
	expect_error(&r, HERD_ERR_INVALID, "Cannot migrate VM 'web1': that is not a UUID.", NULL);
	op_result_clear(&r);

	g_autofree char *uuid = g_uuid_string_random();
	g_autofree char *prefix = g_strdup_printf("Cannot migrate VM %s", uuid);
	fx->v->ops->migrate(fx->v, uuid, NULL, on_done, &r);
	expect_error(&r, HERD_ERR_INVALID, prefix, "no destination was given");
	op_result_clear(&r);
	const char *bad_addresses[] = { "", "n3/system", "a b", "user@n3", "n3?x=1" };
	for (size_t i = 0; i < G_N_ELEMENTS(bad_addresses); i++) {
		herd_migrate_params bad = p;
		bad.address = bad_addresses[i];
		fx->v->ops->migrate(fx->v, uuid, &bad, on_done, &r);
		expect_error(&r, HERD_ERR_INVALID, prefix, "is not a host name or an IP address");
		op_result_clear(&r);
	}
	herd_migrate_params bad = p;
	bad.timeout_s = 0;
	g_free(prefix);
	prefix = g_strdup_printf("Cannot migrate VM %s to node n3: a migration needs a timeout", uuid);
	fx->v->ops->migrate(fx->v, uuid, &bad, on_done, &r);
	expect_error(&r, HERD_ERR_INVALID, prefix, NULL);
	op_result_clear(&r);
	bad = p;
	bad.port_min = 49215;
	bad.port_max = 49152;
	fx->v->ops->migrate(fx->v, uuid, &bad, on_done, &r);
	expect_error(&r, HERD_ERR_INVALID, "Cannot migrate VM ", "port range 49215-49152 is not one");
	op_result_clear(&r);

	/* not here */
	g_free(prefix);
	prefix = g_strdup_printf("Cannot migrate VM %s to node n3: it is not running on this node",
				 uuid);
	fx->v->ops->migrate(fx->v, uuid, &p, on_done, &r);
	expect_error(&r, HERD_ERR_NOT_FOUND, prefix, NULL);
	op_result_clear(&r);

	/* libvirt fails it: MIGRATING, then RUNNING again */
	guest g;
	guest_init(&g, "mig");
	start_ok(fx, &g);
	wait_state(&fx->rec, g.uuid, HERD_VM_RUNNING);
	g_free(prefix);
	prefix = g_strdup_printf("Cannot migrate VM %s to node n3: libvirt: ", g.uuid);
	fx->v->ops->migrate(fx->v, g.uuid, &p, on_done, &r);
	expect_error(&r, HERD_ERR_IO, prefix, "not supported");
	g_assert_cmpuint(count_facts(&fx->rec, g.uuid, HERD_VM_MIGRATING), ==, 1);
	herd_vm_fact f = cached_fact(fx->v, g.uuid);
	g_assert_cmpint(f.state, ==, HERD_VM_RUNNING);
	g_assert_cmpstr(f.reason, ==, "migration failed");
	g_assert_false(fx->v->ops->migrate_progress(fx->v, g.uuid, &progress));
	op_result_clear(&r);

	g_assert_false(fx->v->ops->migrate_progress(fx->v, uuid, &progress));
	g_assert_false(fx->v->ops->migrate_progress(fx->v, "web1", &progress));
	g_assert_false(fx->v->ops->migrate_progress(fx->v, NULL, &progress));
	fx->v->ops->destroy(fx->v, g.uuid, on_done, &r);
	expect_ok(&r);
	op_result_clear(&r);
	guest_clear(&g);
}

static void test_shutdown(fixture *fx, gconstpointer data)
{
	/* The test driver stops a domain at once on virDomainShutdown. */
	guest g;
	guest_init(&g, "sh");
	start_ok(fx, &g);
	wait_state(&fx->rec, g.uuid, HERD_VM_RUNNING);
	op_result r = { 0 };
	fx->v->ops->shutdown(fx->v, g.uuid, 60, on_done, &r);
	expect_ok(&r);
	wait_state(&fx->rec, g.uuid, HERD_VM_STOPPED);
	g_assert_cmpstr(last_fact(&fx->rec, g.uuid)->reason, ==, "shut down on request");
	g_assert_cmpuint(count_facts(&fx->rec, g.uuid, HERD_VM_STOPPING), ==, 1);
	op_result_clear(&r);

	/* No time to shut down: forced off at once, without asking.  (The
	 * path after a real timeout is the same; the cluster test sees it with
	 * the real guest, which ignores ACPI.) */
	start_ok(fx, &g);
	wait_state(&fx->rec, g.uuid, HERD_VM_RUNNING);
	fx->v->ops->shutdown(fx->v, g.uuid, 0, on_done, &r);
	expect_ok(&r);
	wait_state(&fx->rec, g.uuid, HERD_VM_STOPPED);
	g_assert_cmpstr(last_fact(&fx->rec, g.uuid)->reason, ==,
			"forced off after 0 s shutdown timeout");
	op_result_clear(&r);
	guest_clear(&g);
}

/* A shutdown timeout beyond what a 32-bit count of ms holds still lets the
 * guest its time: it is not forced off early by an overflow. */
static void test_shutdown_long_timeout(fixture *fx, gconstpointer data)
{
	guest g;
	guest_init(&g, "long");
	/* The test driver's guest then ignores the shutdown, as a guest
	 * without ACPI would: it stays running. */
	g_autofree char *xml = g.xml;
	g_auto(GStrv) parts = g_strsplit(xml, "<on_poweroff>destroy</on_poweroff>", 2);
	g.xml = g_strjoinv("<on_poweroff>restart</on_poweroff>", parts);
	start_ok(fx, &g);
	wait_state(&fx->rec, g.uuid, HERD_VM_RUNNING);
	op_result r = { 0 };
	/* 4294968 s is 4294968000 ms: 704 ms once cut to 32 bits. */
	fx->v->ops->shutdown(fx->v, g.uuid, 4294968u, on_done, &r);
	run_for(1500);
	g_assert_false(r.done);
	g_assert_cmpint(cached_fact(fx->v, g.uuid).state, ==, HERD_VM_STOPPING);
	g_assert_cmpuint(count_facts(&fx->rec, g.uuid, HERD_VM_STOPPED), ==, 0);
	/* A destroy ends the wait: the shutdown completes with it. */
	op_result d = { 0 };
	fx->v->ops->destroy(fx->v, g.uuid, on_done, &d);
	expect_ok(&d);
	expect_ok(&r);
	wait_state(&fx->rec, g.uuid, HERD_VM_STOPPED);
	g_assert_cmpstr(last_fact(&fx->rec, g.uuid)->reason, ==, "destroyed");
	op_result_clear(&d);
	op_result_clear(&r);
	guest_clear(&g);
}

/* Facts follow libvirt's events for what others do. */
static void test_outside_events(fixture *fx, gconstpointer data)
{
	guest g;
	guest_init(&g, "outside");
	virConnectPtr c = virConnectOpen(TEST_URI);
	virDomainPtr d = virDomainCreateXML(c, g.xml, 0);
	g_assert_nonnull(d);
	wait_state(&fx->rec, g.uuid, HERD_VM_RUNNING);
	g_assert_cmpstr(last_fact(&fx->rec, g.uuid)->reason, ==, "started");
	g_assert_cmpint(virDomainSuspend(d), ==, 0);
	wait_state(&fx->rec, g.uuid, HERD_VM_PAUSED);
	g_assert_cmpint(virDomainResume(d), ==, 0);
	wait_state(&fx->rec, g.uuid, HERD_VM_RUNNING);
	g_assert_cmpint(virDomainShutdown(d), ==, 0);
	wait_state(&fx->rec, g.uuid, HERD_VM_STOPPED);
	g_assert_cmpstr(last_fact(&fx->rec, g.uuid)->reason, ==, "shut down by guest");
	virDomainFree(d);

	d = virDomainCreateXML(c, g.xml, 0);
	wait_state(&fx->rec, g.uuid, HERD_VM_RUNNING);
	g_assert_cmpint(virDomainDestroy(d), ==, 0);
	wait_state(&fx->rec, g.uuid, HERD_VM_STOPPED);
	g_assert_cmpstr(last_fact(&fx->rec, g.uuid)->reason, ==, "destroyed");
	virDomainFree(d);
	virConnectClose(c);
	guest_clear(&g);
}

/* Operations on one VM run in the order asked; many VMs run at once. */
static void test_order_and_parallel(fixture *fx, gconstpointer data)
{
	guest g;
	guest_init(&g, "order");
	op_result r[5] = { 0 };
	fx->v->ops->start(fx->v, g.uuid, g.xml, on_done, &r[0]);
	fx->v->ops->suspend(fx->v, g.uuid, on_done, &r[1]);
	fx->v->ops->resume(fx->v, g.uuid, on_done, &r[2]);
	fx->v->ops->suspend(fx->v, g.uuid, on_done, &r[3]);
	fx->v->ops->resume(fx->v, g.uuid, on_done, &r[4]);
	for (int i = 0; i < 5; i++) {
		expect_ok(&r[i]);
		if (i > 0)
			g_assert_cmpint(r[i].order, >, r[i - 1].order);
	}
	g_assert_cmpuint(count_facts(&fx->rec, g.uuid, HERD_VM_PAUSED), ==, 2);
	g_assert_cmpint(cached_fact(fx->v, g.uuid).state, ==, HERD_VM_RUNNING);
	for (int i = 0; i < 5; i++)
		op_result_clear(&r[i]);

	enum { N = 20 };
	guest many[N];
	op_result mr[N] = { 0 };
	for (int i = 0; i < N; i++) {
		guest_init(&many[i], "many");
		fx->v->ops->start(fx->v, many[i].uuid, many[i].xml, on_done, &mr[i]);
	}
	for (int i = 0; i < N; i++) {
		expect_ok(&mr[i]);
		wait_state(&fx->rec, many[i].uuid, HERD_VM_RUNNING);
		op_result_clear(&mr[i]);
	}
	for (int i = 0; i < N; i++)
		fx->v->ops->destroy(fx->v, many[i].uuid, on_done, &mr[i]);
	for (int i = 0; i < N; i++) {
		expect_ok(&mr[i]);
		wait_state(&fx->rec, many[i].uuid, HERD_VM_STOPPED);
		op_result_clear(&mr[i]);
		guest_clear(&many[i]);
	}
	fx->v->ops->destroy(fx->v, g.uuid, on_done, &r[0]);
	expect_ok(&r[0]);
	op_result_clear(&r[0]);
	guest_clear(&g);
}

/* A destroy ends what was queued before it: stops complete with it, the
 * rest fail; it waits for a start under way. */
static void test_destroy_ends_queue(fixture *fx, gconstpointer data)
{
	guest g;
	guest_init(&g, "dq");
	op_result start = { 0 }, susp = { 0 }, shut = { 0 }, destroy = { 0 };
	fx->v->ops->start(fx->v, g.uuid, g.xml, on_done, &start);
	fx->v->ops->suspend(fx->v, g.uuid, on_done, &susp);
	fx->v->ops->shutdown(fx->v, g.uuid, 300, on_done, &shut);
	fx->v->ops->destroy(fx->v, g.uuid, on_done, &destroy);
	expect_ok(&start);
	expect_error(&susp, HERD_ERR_CONFLICT, "Cannot suspend VM ",
		     "a destroy was asked for before it could run");
	expect_ok(&destroy);
	expect_ok(&shut);
	g_assert_cmpint(destroy.order, >, start.order);
	wait_state(&fx->rec, g.uuid, HERD_VM_STOPPED);
	g_assert_cmpstr(last_fact(&fx->rec, g.uuid)->reason, ==, "destroyed");
	op_result_clear(&start);
	op_result_clear(&susp);
	op_result_clear(&shut);
	op_result_clear(&destroy);
	guest_clear(&g);
}

/* Operations asked for right after open() wait for the first connection. */
static void test_before_connected(void)
{
	fixture fx = { 0 };
	fixture_open(&fx, TEST_URI);
	guest g;
	guest_init(&g, "early");
	op_result r = { 0 };
	fx.v->ops->start(fx.v, g.uuid, g.xml, on_done, &r);
	g_assert_cmpint(fx.rec.back, ==, 0);
	expect_ok(&r);
	g_assert_cmpint(fx.rec.back, ==, 1);
	g_assert_cmpint(cached_fact(fx.v, g.uuid).state, ==, HERD_VM_RUNNING);
	op_result_clear(&r);
	fx.v->ops->destroy(fx.v, g.uuid, on_done, &r);
	expect_ok(&r);
	op_result_clear(&r);
	teardown(&fx, NULL);
	guest_clear(&g);
}

/* close() drops what is pending without a callback; free() of a
 * never-opened driver works. */
static void test_close(void)
{
	fixture fx = { 0 };
	setup(&fx, NULL);
	guest g;
	guest_init(&g, "close");
	op_result r = { 0 };
	fx.v->ops->start(fx.v, g.uuid, g.xml, on_done, &r);
	guint facts = fx.rec.facts->len;
	fx.v->ops->close(fx.v);
	fx.v->ops->suspend(fx.v, g.uuid, on_done, &r);
	run_for(50);
	/* no callback during or after close */
	g_assert_false(r.done);
	g_assert_cmpuint(fx.rec.facts->len, ==, facts);
	g_autoptr(GError) error = NULL;
	g_assert_false(fx.v->ops->open(fx.v, &error));
	g_assert_error(error, HERD_ERROR, HERD_ERR_UNAVAILABLE);
	teardown(&fx, NULL);
	op_result_clear(&r);
	/* whatever the start did, take it away */
	virConnectPtr c = virConnectOpen(TEST_URI);
	virDomainPtr d = virDomainLookupByUUIDString(c, g.uuid);
	if (d) {
		virDomainDestroy(d);
		virDomainFree(d);
	}
	virResetLastError();
	virConnectClose(c);
	guest_clear(&g);

	herd_virt *v = herd_virt_libvirt_new(TEST_URI, &callbacks, NULL);
	herd_virt_free(v);
	herd_virt_free(NULL);
}

/* ---- a libvirtd that never answers ---- */

static gboolean tick(gpointer data)
{
	gint64 *t = data;
	gint64 now = g_get_monotonic_time();
	/* t[0]: last tick, t[1]: longest gap, t[2]: ticks */
	if (t[0] && now - t[0] > t[1])
		t[1] = now - t[0];
	t[0] = now;
	t[2]++;
	return G_SOURCE_CONTINUE;
}

static bool is_lost(gpointer data)
{
	return ((recorder *)data)->lost > 0;
}

/* The driver warns about the hung libvirtd, as it should: not fatal here. */
static gboolean virt_warnings_expected(const gchar *domain, GLogLevelFlags level,
				       const gchar *message, gpointer data)
{
	return !(g_strcmp0(domain, "virt") == 0 && (level & G_LOG_LEVEL_WARNING));
}

static void quiet_warning(const gchar *domain, GLogLevelFlags level, const gchar *message,
			  gpointer data)
{
	g_test_message("expected warning: %s", message);
}

/* The first connection attempt has reached the listening socket @data (an
 * int fd): a connection waits there that nobody accepts, so the attempt
 * cannot end while the socket is open. */
static bool attempt_pending(gpointer data)
{
	struct pollfd p = { .fd = *(int *)data, .events = POLLIN };
	return poll(&p, 1, 0) == 1;
}

/* @r is finished by what is ready in the main context now, without
 * waiting: a few iterations that never block, so no timer of the driver's
 * can be what ended it (the driver's bounds are seconds). */
static bool done_without_waiting(op_result *r)
{
	for (int i = 0; i < 100 && !r->done; i++)
		g_main_context_iteration(NULL, FALSE);
	return r->done;
}

/* The driver reports a first connection attempt that has not finished after
 * CONNECT_SLOW_MS (libvirt_conn.c, 3 s) as lost; an operation asked for
 * before that waits for it, so it cannot fail sooner. */
#define CONNECT_SLOW_US (3000 * 1000)

/* A libvirtd that accepts connections and never answers: nothing blocks on
 * it.  Every check is an order of events, none a speed: the hung attempt
 * ends only when the test closes the socket, so whatever finished before
 * did not wait for it. */
static void test_hung_libvirtd(void)
{
	g_test_log_set_fatal_handler(virt_warnings_expected, NULL);
	guint handler = g_log_set_handler("virt", G_LOG_LEVEL_WARNING | G_LOG_FLAG_FATAL,
					  quiet_warning, NULL);
	/* An abstract socket (libvirt takes "@name"): nothing is left in the
	 * file system, whatever happens to the test. */
	g_autofree char *name = g_strdup_printf("herd-virt-test-%d", (int)getpid());
	int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	g_assert_cmpint(lfd, >=, 0);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	g_strlcpy(sa.sun_path + 1, name, sizeof(sa.sun_path) - 1);
	/* The whole, zero-padded sun_path, as libvirt connects to it. */
	g_assert_cmpint(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), ==, 0);
	/* It listens, so connecting works; nobody ever accepts or answers. */
	g_assert_cmpint(listen(lfd, 16), ==, 0);
	g_autofree char *uri = g_strdup_printf("qemu+unix:///system?socket=@%s", name);

	gint64 ticks[3] = { 0 };
	GSource *timer = g_timeout_source_new(10);
	g_source_set_callback(timer, tick, ticks, NULL);
	g_source_attach(timer, NULL);

	/* Opening returns although its attempt never ends. */
	fixture fx = { 0 };
	gint64 t0 = g_get_monotonic_time();
	fixture_open(&fx, uri);
	g_assert_true(run_until(attempt_pending, &lfd, 10000));
	/* An operation asked for at once waits for the first connection… */
	guest early;
	guest_init(&early, "hung-early");
	op_result e = { 0 };
	fx.v->ops->start(fx.v, early.uuid, early.xml, on_done, &e);
	gint64 ticks_before = ticks[2];
	/* …the driver says it has no connection after a few seconds, and
	 * the waiting operation fails then, not sooner. */
	g_assert_true(run_until(is_lost, &fx.rec, 10000));
	g_assert_cmpint(fx.rec.back, ==, 0);
	expect_error(&e, HERD_ERR_UNAVAILABLE, "Cannot start VM ", "not connected to libvirt");
	g_assert_cmpint(e.at_us - t0, >=, CONNECT_SLOW_US);
	/* The main loop ran meanwhile (a blocked one would not have ticked). */
	g_assert_cmpint(ticks[2], >, ticks_before);
	op_result_clear(&e);
	guest_clear(&early);
	/* …and operations fail at once rather than wait behind it. */
	guest g;
	guest_init(&g, "hung");
	op_result r = { 0 };
	fx.v->ops->start(fx.v, g.uuid, g.xml, on_done, &r);
	g_assert_true(done_without_waiting(&r));
	expect_error(&r, HERD_ERR_UNAVAILABLE, "Cannot start VM ", "not connected to libvirt");
	op_result_clear(&r);
	herd_node_resources res;
	g_assert_false(fx.v->ops->resources(fx.v, &res));
	g_test_message("hung libvirtd: %" G_GINT64_FORMAT " ticks of 10 ms, longest gap %" G_GINT64_FORMAT
		       " ms", ticks[2], ticks[1] / 1000);
	/* The attempt still waits on the socket. */
	g_assert_true(attempt_pending(&lfd));

	/* The hung attempt ends when the socket goes; then the driver is
	 * freed. */
	close(lfd);
	run_for(200);
	teardown(&fx, NULL);
	g_source_destroy(timer);
	g_source_unref(timer);
	guest_clear(&g);
	g_log_remove_handler("virt", handler);
	g_test_log_set_fatal_handler(NULL, NULL);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add("/virt/libvirt/connect-reports-all", fixture, NULL, setup,
		   test_connect_reports_all, teardown);
	g_test_add("/virt/libvirt/start-destroy", fixture, NULL, setup, test_start_destroy,
		   teardown);
	g_test_add("/virt/libvirt/idempotent-start", fixture, NULL, setup, test_idempotent_start,
		   teardown);
	g_test_add("/virt/libvirt/suspend-resume", fixture, NULL, setup, test_suspend_resume,
		   teardown);
	g_test_add("/virt/libvirt/errors", fixture, NULL, setup, test_errors, teardown);
	g_test_add("/virt/libvirt/shutdown", fixture, NULL, setup, test_shutdown, teardown);
	g_test_add("/virt/libvirt/migrate-errors", fixture, NULL, setup, test_migrate_errors,
		   teardown);
	g_test_add("/virt/libvirt/shutdown-long-timeout", fixture, NULL, setup,
		   test_shutdown_long_timeout, teardown);
	g_test_add("/virt/libvirt/outside-events", fixture, NULL, setup, test_outside_events,
		   teardown);
	g_test_add("/virt/libvirt/order-and-parallel", fixture, NULL, setup,
		   test_order_and_parallel, teardown);
	g_test_add("/virt/libvirt/destroy-ends-queue", fixture, NULL, setup,
		   test_destroy_ends_queue, teardown);
	g_test_add_func("/virt/libvirt/before-connected", test_before_connected);
	g_test_add_func("/virt/libvirt/close", test_close);
	g_test_add_func("/virt/libvirt/hung-libvirtd", test_hung_libvirtd);
	return g_test_run();
}

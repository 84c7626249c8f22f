#define G_LOG_DOMAIN "qdevice"
#include "daemon/qdevice_setup.h"

#include "cluster/corosync_conf.h"
#include "common/error.h"
#include "common/fileutil.h"
#include "common/log.h"
#include "store/cluster.h"

#include <string.h>

struct herd_qdevice_setup {
	herdd *d;
	char *dir;          /* CONFIG/qdevice/net: corosync-qdevice's own directory */
	char *applied;      /* the digest of what is in place; NULL: not known yet */
	char *target;       /* the digest being put in place */
	bool busy, again;
	guint idle, retry;
};

static void look(herd_qdevice_setup *q);

static gboolean on_retry(gpointer data)
{
	herd_qdevice_setup *q = data;
	q->retry = 0;
	look(q);
	return G_SOURCE_REMOVE;
}

/* The digest of what the node should have: "none", or the device's host,
 * port and certificates. */
static char *wanted(store_state *st)
{
	store_object *c = store_state_cluster(st);
	if (!c || !store_cluster_qdevice_algorithm(st))
		return g_strdup("none");
	const store_cluster *sc = store_cluster_of(c);
	g_autofree char *all = g_strdup_printf("%s\n%" G_GUINT64_FORMAT "\n%s\n%s", sc->qdevice.host,
					       sc->qdevice.port, sc->qdevice.ca_cert, sc->qdevice.p12);
	return g_compute_checksum_for_string(G_CHECKSUM_SHA256, all, -1);
}

static char *path(herd_qdevice_setup *q, const char *name)
{
	return g_build_filename(q->dir, name, NULL);
}

static void finish(herd_qdevice_setup *q, const GError *error)
{
	q->busy = false;
	if (error) {
		log_warn("cannot set up corosync-qdevice: %s; trying again in %d s", error->message,
			 QDEVICE_SETUP_RETRY_S);
		if (!q->retry)
			q->retry = g_timeout_add_seconds(QDEVICE_SETUP_RETRY_S, on_retry, q);
		g_clear_pointer(&q->applied, g_free);
		return;
	}
	g_free(q->applied);
	q->applied = g_steal_pointer(&q->target);
	g_autofree char *mark = path(q, "herd-applied");
	g_autoptr(GError) err = NULL;
	if (!herd_file_write_atomic(mark, q->applied, strlen(q->applied), 0600, &err))
		log_warn("%s", err->message);
	if (q->again) {
		q->again = false;
		look(q);
	}
}

static void on_started(const GError *error, gpointer user)
{
	herd_qdevice_setup *q = user;
	if (!error)
		log_info("corosync-qdevice runs");
	finish(q, error);
}

static void on_db(const GError *error, gpointer user)
{
	herd_qdevice_setup *q = user;
	if (error || strcmp(q->target, "none") == 0) {
		if (!error)
			log_info("no qdevice: corosync-qdevice stopped and its database removed");
		finish(q, error);
		return;
	}
	herdd_service(q->d, "start", "corosync-qdevice", on_started, q);
}

/* The NSS database as corosync-qdevice-net-certutil makes it: -i with
 * qnetd's CA, -m with the cluster's PKCS#12 (the same on every node). */
static void on_stopped(const GError *error, gpointer user)
{
	herd_qdevice_setup *q = user;
	/* A qdevice that was not running cannot be stopped: not a failure. */
	g_autofree char *db = path(q, "nssdb");
	if (strcmp(q->target, "none") == 0) {
		const char *argv[] = { "rm", "-rf", db, NULL };
		herdd_run(q->d, argv, on_db, q);
		return;
	}
	store_object *c = store_state_cluster(herd_cluster_state(q->d->cluster));
	const store_cluster *sc = c ? store_cluster_of(c) : NULL;
	g_autofree char *ca = path(q, "herd-qnetd-cacert.crt");
	g_autofree char *p12 = path(q, "herd-cluster.p12");
	g_autoptr(GError) err = NULL;
	gsize p12_len = 0;
	g_autofree guchar *der = sc && sc->qdevice.p12 ? g_base64_decode(sc->qdevice.p12, &p12_len) : NULL;
	if (!sc || !sc->qdevice.host || !herd_mkdir_p(q->dir, 0700, &err) ||
	    !herd_file_write_atomic(ca, sc->qdevice.ca_cert, strlen(sc->qdevice.ca_cert), 0600, &err) ||
	    !herd_file_write_atomic(p12, der, p12_len, 0600, &err)) {
		if (!err)
			g_set_error(&err, HERD_ERROR, HERD_ERR_INTERNAL, "the qdevice is gone from the store");
		finish(q, err);
		return;
	}
	const char *argv[] = { "sh", "-ec",
			       "rm -rf \"$1\"; corosync-qdevice-net-certutil -i -c \"$2\" >/dev/null; "
			       "corosync-qdevice-net-certutil -m -c \"$3\" >/dev/null",
			       "herd-qdevice", db, ca, p12, NULL };
	herdd_run(q->d, argv, on_db, q);
}

static void look(herd_qdevice_setup *q)
{
	if (q->busy) {
		q->again = true;
		return;
	}
	g_clear_handle_id(&q->retry, g_source_remove);
	store_state *st = herd_cluster_state(q->d->cluster);
	/* Not a member (yet, or any more): corosync itself is not ours to run. */
	if (!store_state_cluster(st))
		return;
	g_autofree char *target = wanted(st);
	if (q->applied && strcmp(q->applied, target) == 0)
		return;
	g_autofree char *mark = path(q, "herd-applied");
	g_autofree char *marked = NULL;
	if (!q->applied && !g_file_get_contents(mark, &marked, NULL, NULL) &&
	    strcmp(target, "none") == 0) {
		q->applied = g_steal_pointer(&target); /* never had one */
		return;
	}
	/* At herdd's start, with the database in place: only a start, which
	 * leaves a running corosync-qdevice alone (a restart of herdd must not
	 * take the device's vote away, least of all during a split), and
	 * starts it after a reboot. */
	if (!q->applied && marked && strcmp(marked, target) == 0 && strcmp(target, "none") != 0) {
		q->busy = true;
		g_free(q->target);
		q->target = g_steal_pointer(&target);
		herdd_service(q->d, "start", "corosync-qdevice", on_started, q);
		return;
	}
	q->busy = true;
	g_free(q->target);
	q->target = g_steal_pointer(&target);
	log_info("%s corosync-qdevice", strcmp(q->target, "none") ? "setting up" : "removing");
	herdd_service(q->d, "stop", "corosync-qdevice", on_stopped, q);
}

static gboolean on_idle(gpointer data)
{
	herd_qdevice_setup *q = data;
	q->idle = 0;
	look(q);
	return G_SOURCE_REMOVE;
}

static void on_change(gpointer user, GPtrArray *changes)
{
	herd_qdevice_setup *q = user;
	/* corosync.conf has the device already (herd_corosync_conf_follow()
	 * listens first and writes at the change); corosync reads it once
	 * every member has it, mostly before the stop and the two certutil
	 * runs are done; a corosync-qdevice that starts sooner fails and is
	 * started again (finish()). */
	if (herd_corosync_conf_relevant(changes) && !q->idle)
		q->idle = g_idle_add(on_idle, q);
}

herd_qdevice_setup *herd_qdevice_setup_new(herdd *d, const char *corosync_dir)
{
	herd_qdevice_setup *q = g_new0(herd_qdevice_setup, 1);
	q->d = d;
	q->dir = g_build_filename(corosync_dir, "qdevice", "net", NULL);
	herd_cluster_listen(d->cluster, on_change, q);
	q->idle = g_idle_add(on_idle, q);
	return q;
}

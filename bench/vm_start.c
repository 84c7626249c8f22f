/*
 * Starts of libvirt domains, timed, for bench/vmstart (run inside a test
 * node).  Each round starts every variant once, in an order that rotates
 * from round to round (so a burst of load on the shared machine does not
 * always fall on the same variant), and destroys it again (not timed).
 * Prints one line per start:
 *
 *   start LABEL ROUND MS cpu MS [resume MS]
 *   qemu ROUND MS              (QEMU alone, see below)
 *
 *   vm-start URI LIBVIRTD_PID ROUNDS VARIANT...
 *
 * "cpu" is the CPU time libvirtd (LIBVIRTD_PID, all its threads) used
 * during the start: less disturbed by other load than the wall time.
 *
 * VARIANT is LABEL=HOW:XMLFILE, HOW one of
 *   create   virDomainCreateXML of the file: a transient domain, as herdd
 *            starts every VM (src/virt/libvirt_worker.c)
 *   define   the file defined once before the rounds (undefined after),
 *            virDomainCreate each round: a persistent domain's start
 *   paused   virDomainCreateXML with VIR_DOMAIN_START_PAUSED, timed, then
 *            virDomainResume, timed on its own ("resume MS"): what would
 *            be left after a fence if the guest were started paused ahead
 *   virsh    `virsh -q create XMLFILE` as a child process (the peer: what
 *            an operator or another manager runs)
 *   burst-N-C  N domains of the file at once (named NAME-1..NAME-N, its
 *            <uuid> line dropped so libvirt makes one for each), from N
 *            threads over C connections (thread i on connection i mod C;
 *            libvirtd serves at most max_client_requests = 5 calls of one
 *            connection at once): MS from the first call to the last
 *            return, cpu over all of them
 * or LABEL=qemu:IMAGE: QEMU started directly on the raw boot image, no
 * libvirt (-machine pc, TCG, 32 MiB, the image on virtio read-only), from
 * the fork to QMP "running" (the physical limit of a start).
 * The time of a start is until libvirt's call returns: the guest's CPUs
 * run by then (libvirt's last step is QMP "cont").
 */
#include <dirent.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_VARIANTS 16
#define MAX_BURST 64

typedef struct {
	const char *label, *how, *file;
	char *xml;
	virDomainPtr defined;
} variant;

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void die(const char *what)
{
	virErrorPtr e = virGetLastError();
	fprintf(stderr, "vm-start: %s: %s\n", what, e && e->message ? e->message : "failed");
	exit(1);
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		fprintf(stderr, "vm-start: cannot read %s\n", path);
		exit(2);
	}
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	rewind(f);
	char *s = malloc((size_t)n + 1);
	if (!s || fread(s, 1, (size_t)n, f) != (size_t)n)
		exit(2);
	s[n] = 0;
	fclose(f);
	return s;
}

/* CPU time of all threads of @pid so far, in ms (schedstat: ns on a CPU). */
static double cpu_ms(int pid)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	DIR *d = opendir(path);
	if (!d) {
		fprintf(stderr, "vm-start: no process %d\n", pid);
		exit(1);
	}
	double ns = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		char stat[300];
		snprintf(stat, sizeof(stat), "/proc/%d/task/%s/schedstat", pid, e->d_name);
		FILE *f = fopen(stat, "r");
		unsigned long long run = 0;
		if (f && fscanf(f, "%llu", &run) == 1)
			ns += (double)run;
		if (f)
			fclose(f);
	}
	closedir(d);
	return ns / 1e6;
}

/* Read one line of QMP into buf (at most n bytes); false on EOF. */
static bool qmp_line(int fd, char *buf, size_t n)
{
	size_t k = 0;
	while (k + 1 < n) {
		ssize_t r = read(fd, buf + k, 1);
		if (r <= 0)
			return false;
		if (buf[k++] == '\n')
			break;
	}
	buf[k] = 0;
	return true;
}

static bool qmp_ask(int fd, const char *cmd, char *buf, size_t n)
{
	if (write(fd, cmd, strlen(cmd)) < 0)
		return false;
	do {
		if (!qmp_line(fd, buf, n))
			return false;
	} while (!strstr(buf, "\"return\"") && !strstr(buf, "\"error\""));
	return true;
}

/* QEMU alone: fork to QMP saying "running", in ms; < 0 on failure. */
static double qemu_alone(const char *image)
{
	char dir[] = "/tmp/vm-start-XXXXXX";
	if (!mkdtemp(dir))
		return -1;
	char sock[64], qmparg[96], drive[4200];
	snprintf(sock, sizeof(sock), "%s/qmp", dir);
	snprintf(qmparg, sizeof(qmparg), "unix:%s,server=on,wait=off", sock);
	snprintf(drive, sizeof(drive), "if=virtio,file=%s,format=raw,readonly=on", image);
	double t0 = now_ms();
	pid_t pid = fork();
	if (pid == 0) {
		execlp("qemu-system-x86_64", "qemu-system-x86_64", "-machine", "pc,accel=tcg", "-m", "32",
		       "-nodefaults", "-display", "none", "-serial", "null", "-drive", drive, "-qmp", qmparg,
		       (char *)NULL);
		_exit(127);
	}
	int fd = -1;
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", sock);
	while (fd < 0 && now_ms() - t0 < 30000) {
		fd = socket(AF_UNIX, SOCK_STREAM, 0);
		if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
			close(fd);
			fd = -1;
			usleep(1000);
		}
	}
	double ms = -1;
	char buf[4096];
	if (fd >= 0 && qmp_line(fd, buf, sizeof(buf)) &&
	    qmp_ask(fd, "{\"execute\":\"qmp_capabilities\"}\n", buf, sizeof(buf))) {
		while (qmp_ask(fd, "{\"execute\":\"query-status\"}\n", buf, sizeof(buf)))
			if (strstr(buf, "\"running\"")) {
				ms = now_ms() - t0;
				break;
			}
	}
	if (fd >= 0)
		close(fd);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	unlink(sock);
	rmdir(dir);
	return ms;
}

static double run_virsh(const char *uri, const char *file)
{
	double t0 = now_ms();
	pid_t pid = fork();
	if (pid == 0) {
		execlp("virsh", "virsh", "-q", "-c", uri, "create", file, (char *)NULL);
		_exit(127);
	}
	int status = 0;
	waitpid(pid, &status, 0);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "vm-start: virsh create %s failed\n", file);
		exit(1);
	}
	return now_ms() - t0;
}

/* The name in a domain XML (to find what virsh started). */
static char *xml_name(const char *xml)
{
	const char *s = strstr(xml, "<name>"), *e = s ? strstr(s, "</name>") : NULL;
	if (!e)
		return NULL;
	s += strlen("<name>");
	return strndup(s, (size_t)(e - s));
}

typedef struct {
	virConnectPtr conn;
	char *xml;
	virDomainPtr dom;
} burst_one;

static void *burst_thread(void *data)
{
	burst_one *b = data;
	b->dom = virDomainCreateXML(b->conn, b->xml, VIR_DOMAIN_NONE);
	return NULL;
}

/* @xml with <name>NAME</name> as <name>NAME-@k</name> and no <uuid> line. */
static char *burst_xml(const char *xml, int k)
{
	const char *ne = strstr(xml, "</name>"), *u = strstr(xml, "<uuid>"),
		   *uc = u ? strstr(u, "</uuid>") : NULL, *ue = uc ? strchr(uc, '\n') : NULL;
	if (!ne || (u && (!ue || u < ne))) {
		fprintf(stderr, "vm-start: a burst needs <name> before a <uuid> line of its own\n");
		exit(2);
	}
	char *out = malloc(strlen(xml) + 16);
	int n = sprintf(out, "%.*s-%d", (int)(ne - xml), xml, k);
	if (u)
		sprintf(out + n, "%.*s%s", (int)(u - ne), ne, ue + 1);
	else
		strcpy(out + n, ne);
	return out;
}

static void burst(const char *uri, int libvirtd, variant *v, int round)
{
	int n = 0, c = 0;
	if (sscanf(v->how, "burst-%d-%d", &n, &c) != 2 || n < 1 || n > MAX_BURST || c < 1 || c > n) {
		fprintf(stderr, "vm-start: bad burst %s (burst-N-C, N <= %d, C <= N)\n", v->how, MAX_BURST);
		exit(2);
	}
	virConnectPtr conns[MAX_BURST];
	for (int i = 0; i < c; i++)
		if (!(conns[i] = virConnectOpen(uri)))
			die(uri);
	burst_one b[MAX_BURST];
	pthread_t th[MAX_BURST];
	for (int i = 0; i < n; i++)
		b[i] = (burst_one){ .conn = conns[i % c], .xml = burst_xml(v->xml, i + 1) };
	double cpu0 = cpu_ms(libvirtd), t0 = now_ms();
	for (int i = 0; i < n; i++)
		pthread_create(&th[i], NULL, burst_thread, &b[i]);
	for (int i = 0; i < n; i++)
		pthread_join(th[i], NULL);
	double ms = now_ms() - t0, cpu = cpu_ms(libvirtd) - cpu0;
	for (int i = 0; i < n; i++)
		if (!b[i].dom)
			die(v->label);
	printf("start %s %d %.2f cpu %.2f\n", v->label, round, ms, cpu);
	fflush(stdout);
	for (int i = 0; i < n; i++) {
		virDomainDestroy(b[i].dom);
		virDomainFree(b[i].dom);
		free(b[i].xml);
	}
	for (int i = 0; i < c; i++)
		virConnectClose(conns[i]);
}

static void one_start(virConnectPtr conn, const char *uri, int libvirtd, variant *v, int round)
{
	if (strcmp(v->how, "qemu") == 0) {
		double ms = qemu_alone(v->file);
		if (ms < 0) {
			fprintf(stderr, "vm-start: QEMU alone did not come up\n");
			exit(1);
		}
		printf("qemu %d %.2f\n", round, ms);
		fflush(stdout);
		return;
	}
	if (strncmp(v->how, "burst-", 6) == 0) {
		burst(uri, libvirtd, v, round);
		return;
	}
	virDomainPtr dom = NULL;
	double cpu0 = cpu_ms(libvirtd), t0 = now_ms(), ms = 0, resume = -1;
	if (strcmp(v->how, "create") == 0) {
		dom = virDomainCreateXML(conn, v->xml, VIR_DOMAIN_NONE);
		ms = now_ms() - t0;
	} else if (strcmp(v->how, "paused") == 0) {
		dom = virDomainCreateXML(conn, v->xml, VIR_DOMAIN_START_PAUSED);
		ms = now_ms() - t0;
		double t1 = now_ms();
		if (dom && virDomainResume(dom) < 0)
			die("resume");
		resume = now_ms() - t1;
	} else if (strcmp(v->how, "define") == 0) {
		if (virDomainCreate(v->defined) < 0)
			die(v->label);
		ms = now_ms() - t0;
		dom = v->defined;
		virDomainRef(dom);
	} else {
		ms = run_virsh(uri, v->file);
		char *name = xml_name(v->xml);
		dom = name ? virDomainLookupByName(conn, name) : NULL;
		free(name);
	}
	if (!dom)
		die(v->label);
	double cpu = cpu_ms(libvirtd) - cpu0;
	if (resume >= 0)
		printf("start %s %d %.2f cpu %.2f resume %.2f\n", v->label, round, ms, cpu, resume);
	else
		printf("start %s %d %.2f cpu %.2f\n", v->label, round, ms, cpu);
	fflush(stdout);
	if (virDomainDestroy(dom) < 0)
		die("destroy");
	virDomainFree(dom);
}

int main(int argc, char **argv)
{
	if (argc < 5 || argc - 4 > MAX_VARIANTS) {
		fprintf(stderr, "usage: vm-start URI LIBVIRTD_PID ROUNDS LABEL=HOW:FILE... (at most %d)\n",
			MAX_VARIANTS);
		return 2;
	}
	const char *uri = argv[1];
	int libvirtd = atoi(argv[2]), rounds = atoi(argv[3]);
	variant vs[MAX_VARIANTS];
	int n = 0;
	virConnectPtr conn = virConnectOpen(uri);
	if (!conn)
		die(uri);
	for (int i = 4; i < argc; i++) {
		char *eq = strchr(argv[i], '='), *colon = eq ? strchr(eq, ':') : NULL;
		if (!colon) {
			fprintf(stderr, "vm-start: bad variant %s (LABEL=HOW:FILE)\n", argv[i]);
			return 2;
		}
		*eq = *colon = 0;
		variant *v = &vs[n++];
		*v = (variant){ .label = argv[i], .how = eq + 1, .file = colon + 1 };
		if (strcmp(v->how, "create") && strcmp(v->how, "define") && strcmp(v->how, "paused") &&
		    strcmp(v->how, "virsh") && strcmp(v->how, "qemu") && strncmp(v->how, "burst-", 6)) {
			fprintf(stderr, "vm-start: bad HOW %s\n", v->how);
			return 2;
		}
		if (strcmp(v->how, "qemu") == 0)
			continue;
		v->xml = slurp(v->file);
		if (strcmp(v->how, "define") == 0 && !(v->defined = virDomainDefineXML(conn, v->xml)))
			die(v->label);
	}
	for (int r = 0; r < rounds; r++)
		for (int k = 0; k < n; k++)
			one_start(conn, uri, libvirtd, &vs[(r + k) % n], r + 1);
	for (int k = 0; k < n; k++) {
		if (vs[k].defined) {
			virDomainUndefine(vs[k].defined);
			virDomainFree(vs[k].defined);
		}
		free(vs[k].xml);
	}
	virConnectClose(conn);
	return 0;
}

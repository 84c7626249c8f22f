/*
 * The daemon: one per process, owned by main().  It wires the parts — the
 * cluster service on corosync, the node's hypervisor, the HA engine's
 * shell, cluster formation, the API — and owns what only a daemon has: its
 * configuration, its certificate, its service manager.  Nothing outside
 * src/daemon includes this header.
 */
#pragma once

#include "api/context.h"
#include "daemon/config.h"

#include <glib.h>

typedef struct http_server http_server;
typedef struct herd_virt herd_virt;
typedef struct herd_virt_setup herd_virt_setup;
typedef struct herd_reach_checker herd_reach_checker;
typedef struct herd_san_link herd_san_link;
typedef struct herd_link_watch herd_link_watch;
typedef struct herd_ping_watch herd_ping_watch;
typedef struct herd_notifier herd_notifier;
typedef struct herdd_notify herdd_notify;
typedef struct herd_checker herd_checker;
typedef struct herd_console_proxy herd_console_proxy;
typedef struct herd_job_runner herd_job_runner;
typedef struct herdd_memory_trim herdd_memory_trim;

/* How far herdd is in stopping (daemon/shutdown.c). */
typedef enum {
	HERDD_RUNNING = 0,
	HERDD_ASKING,       /* SIGTERM: asking the service manager whether the host stops */
	HERDD_EVACUATING,   /* the host stops: its VMs move away first */
	HERDD_EXITING,      /* the main loop ends */
} herdd_stop_phase;

typedef struct herdd {
	herdd_config *cfg;
	GMainLoop *loop;
	http_server *api;
	herd_cluster *cluster;      /* the replicated store and corosync */
	herd_ha *ha;                /* the HA engine: agent, coordinator, fencing */
	herd_virt *virt;            /* this node's hypervisor (libvirt) */
	herd_virt_setup *virt_setup; /* its libvirt and QEMU set up for live migration */
	herd_reach_checker *reach;   /* what it finds of the storages and virtual switches */
	herd_san_link *san;          /* its herd-san (eSAN) */
	herd_link_watch *links;      /* its view of the heartbeat links */
	herd_ping_watch *ping;       /* its pings to the ping nodes */
	herd_notifier *notifier;     /* alert mails and webhook calls (notify_send.h) */
	herd_checker *checker;       /* herd check's rounds (checker.h) */
	herd_console_proxy *console; /* VM consoles (console_proxy.h) */
	herd_job_runner *jobs;       /* the jobs this node runs (job_runner.h) */
	herd_formation *formation;  /* cluster create, join, leave */
	api_node_info node_info;    /* this node, for the API */
	api_ctx api_ctx;            /* what the API's handlers get */
	loop_monitor *loop_monitor; /* the main loop's stalls */
	herdd_memory_trim *trim;    /* freed memory back after a burst (memory_trim.h) */
	char *tls_dir;              /* <state_dir>/tls */
	char *tls_cert_pem;         /* the API's certificate and key */
	char *tls_key_pem;
	char *tls_fingerprint;
	char *corosync_version;     /* as reported by corosync -v, or NULL */
	char *libvirt_version;
	herdd_notify *notify;       /* the service manager (main()'s; may be NULL) */
	herdd_stop_phase stop_phase;
	guint extend_timer;         /* extends the stop timeout while VMs leave */
	char *leave_reason;         /* said to the others when leaving (HERD_MSG_LEAVING) */
} herdd;

/* (Re)start the API's TCP listener with the node's current certificate. */
bool herdd_restart_tcp(herdd *d, GError **error);

/* Done callback of herdd_service(): @error NULL on success. */
typedef void (*herdd_service_done)(const GError *error, gpointer user);

/* Run "<service_command> ACTION SERVICE" (e.g. "systemctl start corosync")
 * without blocking the main loop. */
void herdd_service(herdd *d, const char *action, const char *service, herdd_service_done done,
		   gpointer user);
/* Run @argv (a program and its arguments, found on $PATH) the same way. */
void herdd_run(herdd *d, const char *const *argv, herdd_service_done done, gpointer user);

/* Answer of herdd_service_ask(): the one line it printed (stripped), or
 * NULL with @error. */
typedef void (*herdd_service_answer)(const char *answer, const GError *error, gpointer user);
/* Ask the service manager: run "<service_command> QUESTION" (e.g.
 * "systemctl is-system-running"), killed after @timeout_s.  Its exit
 * status is part of the answer, not a failure. */
void herdd_service_ask(herdd *d, const char *question, unsigned timeout_s,
		       herdd_service_answer answer, gpointer user);

/* SIGTERM: a restart of herdd exits at once; the host's shutdown follows
 * the cluster's shutdown_policy first (daemon/shutdown.c). */
void herdd_stop_requested(herdd *d);
/* Quit the main loop now (SIGINT, or the end of a stop). */
void herdd_quit(herdd *d);
/* After the main loop: tell the others why this node leaves, if it does
 * for its host's shutdown. */
void herdd_stop_finish(herdd *d);

/*
 * herdd's settings: read from a key-file (/etc/herd/herd.conf by default),
 * each overridable by a command-line option of the same name.
 *
 * One table in config.c lists every setting with its group, key, option,
 * type, default and help text; the parser, the --help output and the
 * validation all come from that table, so a new setting is one line there and
 * one field here.
 */
#pragma once

#include <glib.h>
#include <stdbool.h>

typedef struct herdd_config {
	char *config_file;       /* the file that was read, or NULL if none */
	char *node_name;         /* [node] name; default: the host name */
	char *state_dir;         /* [daemon] state_dir */
	char *socket_path;       /* [api] socket */
	char *san_socket;        /* [san] socket: herd-san's control socket */
	char *listen_address;    /* [api] listen; "" or "*" for all addresses */
	int api_port;            /* [api] port; 0 disables TCP */
	int console_port;        /* [api] console_port: the consoles' node-to-node relay; 0: none */
	char *ui_dir;            /* [api] ui_dir: the web UI's files; "" for none */
	char *log_level;         /* [daemon] log_level */
	char *service_command;   /* [daemon] service_command: "CMD ACTION SERVICE" */
	char *corosync_dir;      /* [corosync] config_dir */
	char *libvirt_uri;       /* [libvirt] uri */
	/* What herdd keeps on the host for live migration (virt_setup.h): */
	char *qemu_conf;         /* [libvirt] qemu_conf */
	char *libvirt_ca_file;   /* [libvirt] ca_file */
	char *libvirt_pki_dir;   /* [libvirt] pki_dir */
	char *qemu_pki_dir;      /* [libvirt] qemu_pki_dir */
	char *qemu_group;        /* [libvirt] qemu_group; "" for none */
	char *sysctl_file;       /* [libvirt] sysctl_file */
	char *libvirt_tls_socket; /* [libvirt] tls_socket; "" for none */
} herdd_config;

/*
 * Parse the command line (@argc/@argv are consumed as GOption does) and the
 * config file it names, or the default file if it exists.  On error returns
 * NULL with a message that names the file, line or option at fault.
 */
herdd_config *herdd_config_load(int *argc, char ***argv, GError **error);

void herdd_config_free(herdd_config *cfg);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(herdd_config, herdd_config_free)

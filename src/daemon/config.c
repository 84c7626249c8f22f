#define G_LOG_DOMAIN "config"
#include "daemon/config.h"

#include "common/error.h"
#include "common/log.h"
#include "herd-config.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef enum { SETTING_STRING, SETTING_INT } setting_type;

typedef struct {
	const char *group;
	const char *key;
	const char *option;       /* long option without the dashes */
	setting_type type;
	const char *default_value; /* NULL: computed (see apply_defaults) */
	int min, max;             /* for SETTING_INT */
	size_t offset;            /* of the field in herdd_config */
	const char *help;
	const char *arg;          /* argument name in --help */
} setting;

#define FIELD(f) offsetof(herdd_config, f)

static const setting settings[] = {
	{ "node", "name", "node-name", SETTING_STRING, NULL, 0, 0, FIELD(node_name),
	  "This node's name (default: the host name)", "NAME" },
	{ "daemon", "state_dir", "state-dir", SETTING_STRING, HERD_LOCALSTATEDIR, 0, 0,
	  FIELD(state_dir), "State directory", "DIR" },
	{ "daemon", "log_level", "log-level", SETTING_STRING, "info", 0, 0, FIELD(log_level),
	  "debug, info, warning or error", "LEVEL" },
	{ "daemon", "service_command", "service-command", SETTING_STRING, "systemctl", 0, 0,
	  FIELD(service_command),
	  "Command run as 'CMD ACTION SERVICE' to start or reload corosync", "CMD" },
	{ "api", "socket", "socket", SETTING_STRING, HERD_RUNDIR "/herd.sock", 0, 0,
	  FIELD(socket_path), "Unix socket of the local API", "PATH" },
	{ "api", "listen", "listen", SETTING_STRING, "", 0, 0, FIELD(listen_address),
	  "Address the API listens on (default: all)", "ADDR" },
	{ "api", "port", "port", SETTING_INT, "8001", 0, 65535, FIELD(api_port),
	  "TCP port of the API (0: no TCP)", "PORT" },
	{ "api", "console_port", "console-port", SETTING_INT, "8002", 0, 65535, FIELD(console_port),
	  "TCP port where the other nodes reach this node's VM consoles (TLS between nodes; 0: none)",
	  "PORT" },
	{ "api", "ui_dir", "ui-dir", SETTING_STRING, HERD_DATADIR "/ui", 0, 0, FIELD(ui_dir),
	  "The web UI's built files, served at / (empty: no web UI)", "DIR" },
	{ "san", "socket", "san-socket", SETTING_STRING, HERD_RUNDIR "/san.sock", 0, 0,
	  FIELD(san_socket), "Control socket of this node's herd-san (eSAN)", "PATH" },
	{ "corosync", "config_dir", "corosync-dir", SETTING_STRING, "/etc/corosync", 0, 0,
	  FIELD(corosync_dir), "Where corosync.conf and authkey live", "DIR" },
	{ "libvirt", "uri", "libvirt-uri", SETTING_STRING, "qemu:///system", 0, 0,
	  FIELD(libvirt_uri), "The hypervisor connection VMs run on", "URI" },
	/* What herdd keeps on the host for live migration (daemon/virt_setup.h):
	 * Debian's places by default. */
	{ "libvirt", "qemu_conf", "qemu-conf", SETTING_STRING, "/etc/libvirt/qemu.conf", 0, 0,
	  FIELD(qemu_conf), "qemu.conf, where herdd sets the migration port range", "FILE" },
	{ "libvirt", "ca_file", "libvirt-ca-file", SETTING_STRING, "/etc/pki/CA/cacert.pem", 0, 0,
	  FIELD(libvirt_ca_file), "Where libvirt reads the CA (herdd puts the cluster's there)",
	  "FILE" },
	{ "libvirt", "pki_dir", "libvirt-pki-dir", SETTING_STRING, "/etc/pki/libvirt", 0, 0,
	  FIELD(libvirt_pki_dir), "Where libvirt reads its certificates and private/ keys", "DIR" },
	{ "libvirt", "qemu_pki_dir", "qemu-pki-dir", SETTING_STRING, "/etc/pki/qemu", 0, 0,
	  FIELD(qemu_pki_dir), "Where QEMU reads the migration's certificates", "DIR" },
	{ "libvirt", "qemu_group", "qemu-group", SETTING_STRING, "libvirt-qemu", 0, 0,
	  FIELD(qemu_group), "The group QEMU runs as, which reads its key (empty: root only)",
	  "GROUP" },
	{ "libvirt", "sysctl_file", "sysctl-file", SETTING_STRING,
	  "/etc/sysctl.d/90-herd-migration-ports.conf", 0, 0, FIELD(sysctl_file),
	  "herdd's sysctl file reserving the migration ports at boot", "FILE" },
	{ "libvirt", "tls_socket", "libvirt-tls-socket", SETTING_STRING, "libvirtd-tls.socket", 0, 0,
	  FIELD(libvirt_tls_socket),
	  "The unit that makes libvirtd listen for TLS, enabled by herdd (empty: not herdd's job)",
	  "UNIT" },
};

static char **string_field(herdd_config *cfg, const setting *s)
{
	return (char **)((char *)cfg + s->offset);
}

static int *int_field(herdd_config *cfg, const setting *s)
{
	return (int *)((char *)cfg + s->offset);
}

/* Store @value into the field of @s, validating it; @where names the source. */
static bool setting_assign(herdd_config *cfg, const setting *s, const char *value,
			   const char *where, GError **error)
{
	if (s->type == SETTING_INT) {
		char *end = NULL;
		errno = 0;
		long v = strtol(value, &end, 10);
		if (errno || end == value || *end || v < s->min || v > s->max) {
			g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
				    "%s: '%s' is not a number from %d to %d.", where, value,
				    s->min, s->max);
			return false;
		}
		*int_field(cfg, s) = (int)v;
		return true;
	}
	char **field = string_field(cfg, s);
	g_free(*field);
	*field = g_strdup(value);
	return true;
}

static const setting *setting_find(const char *group, const char *key)
{
	for (unsigned i = 0; i < G_N_ELEMENTS(settings); i++)
		if (strcmp(settings[i].group, group) == 0 && strcmp(settings[i].key, key) == 0)
			return &settings[i];
	return NULL;
}

static bool load_file(herdd_config *cfg, const char *path, GError **error)
{
	g_autoptr(GKeyFile) kf = g_key_file_new();
	g_autoptr(GError) local = NULL;
	if (!g_key_file_load_from_file(kf, path, G_KEY_FILE_NONE, &local)) {
		g_set_error(error, HERD_ERROR, HERD_ERR_INVALID, "Cannot read config file %s: %s.",
			    path, local->message);
		return false;
	}
	g_auto(GStrv) groups = g_key_file_get_groups(kf, NULL);
	for (char **g = groups; *g; g++) {
		g_auto(GStrv) keys = g_key_file_get_keys(kf, *g, NULL, NULL);
		for (char **k = keys; k && *k; k++) {
			const setting *s = setting_find(*g, *k);
			g_autofree char *where = g_strdup_printf("%s: [%s] %s", path, *g, *k);
			if (!s) {
				g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
					    "%s: unknown setting.", where);
				return false;
			}
			g_autofree char *value = g_key_file_get_string(kf, *g, *k, &local);
			if (!value) {
				g_set_error(error, HERD_ERROR, HERD_ERR_INVALID, "%s: %s.", where,
					    local->message);
				return false;
			}
			if (!setting_assign(cfg, s, value, where, error))
				return false;
		}
	}
	return true;
}

static bool validate(herdd_config *cfg, GError **error)
{
	herd_log_level level;
	if (!herd_log_level_parse(cfg->log_level, &level)) {
		g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
			    "Log level '%s' is not one of debug, info, warning, error.",
			    cfg->log_level);
		return false;
	}
	if (!g_path_is_absolute(cfg->state_dir) || !g_path_is_absolute(cfg->socket_path) ||
	    !g_path_is_absolute(cfg->corosync_dir)) {
		g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
			    "The state directory, socket and corosync directory must be absolute paths.");
		return false;
	}
	if (*cfg->ui_dir && !g_path_is_absolute(cfg->ui_dir)) {
		g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
			    "[api] ui_dir '%s' must be an absolute path (or empty: no web UI).",
			    cfg->ui_dir);
		return false;
	}
	/* The paths go into qemu.conf as quoted strings. */
	const char *files[] = { cfg->qemu_conf, cfg->libvirt_ca_file, cfg->libvirt_pki_dir,
				cfg->qemu_pki_dir, cfg->sysctl_file };
	const char *names[] = { "qemu_conf", "ca_file", "pki_dir", "qemu_pki_dir", "sysctl_file" };
	for (unsigned i = 0; i < G_N_ELEMENTS(files); i++) {
		if (!g_path_is_absolute(files[i]) || strpbrk(files[i], "\"\\\n\r\t")) {
			g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
				    "[libvirt] %s '%s' must be an absolute path without quotes, backslashes or control characters.",
				    names[i], files[i]);
			return false;
		}
	}
	for (const char *c = cfg->libvirt_tls_socket; *c; c++) {
		if (!g_ascii_isalnum(*c) && !strchr("@._-", *c)) {
			g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
				    "[libvirt] tls_socket '%s' is not a unit name (letters, digits, @ . _ -).",
				    cfg->libvirt_tls_socket);
			return false;
		}
	}
	for (const char *c = cfg->qemu_group; *c; c++) {
		if (!g_ascii_isalnum(*c) && !strchr("._-", *c)) {
			g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
				    "[libvirt] qemu_group '%s' is not a group name.", cfg->qemu_group);
			return false;
		}
	}
	if (cfg->node_name[0] == '\0') {
		g_set_error(error, HERD_ERROR, HERD_ERR_INVALID, "The node name is empty.");
		return false;
	}
	return true;
}

herdd_config *herdd_config_load(int *argc, char ***argv, GError **error)
{
	g_autoptr(herdd_config) cfg = g_new0(herdd_config, 1);
	const unsigned n = G_N_ELEMENTS(settings);
	g_autofree char **cli_values = g_new0(char *, n);
	g_autofree char *config_path = NULL;
	g_autofree GOptionEntry *entries = g_new0(GOptionEntry, n + 2);

	entries[0] = (GOptionEntry){ "config", 'c', 0, G_OPTION_ARG_FILENAME, &config_path,
				     "Config file (default " HERD_SYSCONFDIR "/herd.conf)", "FILE" };
	for (unsigned i = 0; i < n; i++)
		entries[i + 1] = (GOptionEntry){ settings[i].option, 0, 0, G_OPTION_ARG_STRING,
						 &cli_values[i], settings[i].help, settings[i].arg };

	g_autoptr(GOptionContext) ctx = g_option_context_new("- the herd cluster daemon");
	g_option_context_add_main_entries(ctx, entries, NULL);
	g_option_context_set_description(ctx,
		"Every option can also be set in the config file, e.g. [api] port=8001.");
	gboolean ok = g_option_context_parse(ctx, argc, argv, error);
	if (ok && *argc > 1) {
		g_set_error(error, HERD_ERROR, HERD_ERR_INVALID, "Unexpected argument '%s'.",
			    (*argv)[1]);
		ok = FALSE;
	}
	if (!ok)
		goto out;

	for (unsigned i = 0; i < n; i++)
		if (settings[i].default_value)
			setting_assign(cfg, &settings[i], settings[i].default_value, "default", NULL);
	char host[256] = "";
	if (gethostname(host, sizeof(host) - 1) < 0)
		g_strlcpy(host, "localhost", sizeof(host));
	char *dot = strchr(host, '.');
	if (dot)
		*dot = '\0';
	cfg->node_name = g_strdup(host);

	const char *path = config_path ? config_path : HERD_SYSCONFDIR "/herd.conf";
	if (config_path || g_file_test(path, G_FILE_TEST_EXISTS)) {
		if (!load_file(cfg, path, error)) {
			ok = FALSE;
			goto out;
		}
		cfg->config_file = g_strdup(path);
	}
	for (unsigned i = 0; i < n; i++) {
		if (!cli_values[i])
			continue;
		g_autofree char *where = g_strdup_printf("--%s", settings[i].option);
		if (!setting_assign(cfg, &settings[i], cli_values[i], where, error)) {
			ok = FALSE;
			goto out;
		}
	}
	ok = validate(cfg, error);
out:
	for (unsigned i = 0; i < n; i++)
		g_free(cli_values[i]);
	return ok ? g_steal_pointer(&cfg) : NULL;
}

void herdd_config_free(herdd_config *cfg)
{
	if (!cfg)
		return;
	for (unsigned i = 0; i < G_N_ELEMENTS(settings); i++)
		if (settings[i].type == SETTING_STRING)
			g_free(*string_field(cfg, &settings[i]));
	g_free(cfg->config_file);
	g_free(cfg);
}

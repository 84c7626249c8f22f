/*
 * The cluster's settings: one table of every key with its type, range,
 * default and meaning.  The API validates changes against it, `herd cluster
 * settings` prints it, and readers ask for a value with its default applied.
 */
#pragma once

#include <glib.h>
#include <stdint.h>
#include <jansson.h>
#include <stdbool.h>

/* SETTING_TEXT values are strings, not in store_settings: read them with
 * cluster_setting_string(). */
typedef enum { SETTING_INT, SETTING_BOOL, SETTING_ENUM, SETTING_TEXT } cluster_setting_type;

typedef enum {
	STORE_ADMISSION_OFF = 0,
	STORE_ADMISSION_WARN,
	STORE_ADMISSION_REFUSE,
} store_admission;

/* What fencing does to a lost node (Pacemaker's stonith-action), in the
 * order of the setting's choices. */
typedef enum {
	STORE_FENCE_REBOOT = 0,   /* off, verified off, then on again */
	STORE_FENCE_OFF,          /* off, verified off; it stays off */
} store_fence_action;

/* What herdd does when its host shuts down or reboots without the node
 * being put in maintenance first (Proxmox's shutdown_policy), in the order
 * of the setting's choices. */
typedef enum {
	STORE_SHUTDOWN_MIGRATE = 0, /* the node goes into maintenance, its VMs move away
				     * (live), then herdd leaves: no fence */
	STORE_SHUTDOWN_FAILOVER,    /* herdd just exits: the node is lost, fenced,
				     * and its HA VMs restart elsewhere */
} store_shutdown_policy;

/* The libvirt domain type of the VMs herd makes, in the order of the
 * setting's choices (store_vm_domain_type_name()). */
typedef enum {
	STORE_VM_DOMAIN_KVM = 0,
	STORE_VM_DOMAIN_QEMU,
} store_vm_domain_type;

/* "kvm", "qemu". */
const char *store_vm_domain_type_name(int t);

/* The longest shutdown_timeout_s: the host's shutdown waits for herdd that
 * long, and systemd gives a whole shutdown 30 minutes (reboot.target's
 * JobTimeoutSec) before it forces the reboot. */
#define STORE_SHUTDOWN_TIMEOUT_MAX_S 1200

/* Every setting, typed, with its default applied (store_settings_of()). */
typedef struct store_settings {
	long long token_ms;
	long long token_coefficient_ms;
	long long knet_ping_interval_ms;
	long long knet_ping_timeout_ms;
	long long vm_history_limit;
	bool lab_mode;
	int admission_control;     /* store_admission */
	long long vcpu_overcommit;
	long long memory_reserve_mib;
	long long fence_delay_ms;
	int fence_action;          /* store_fence_action */
	long long failback_after_s;
	bool return_after_maintenance;
	long long join_timeout_s;
	long long start_failures_max;
	long long migration_timeout_min_s;
	long long migration_timeout_per_gib_s;
	bool migration_tls;
	long long migration_port_min;
	long long esan_link, esan_resync_mibs, esan_timeout_ms;
	long long migration_port_max;
	long long migration_parallel;
	long long migration_bandwidth_mibs;
	int shutdown_policy;       /* store_shutdown_policy */
	long long shutdown_timeout_s;
	int vm_domain_type;        /* store_vm_domain_type */
	bool ha_paused;            /* herd cluster ha pause: nothing fenced or moved */
	bool fence_idle_nodes;     /* a lost node that runs no HA VM is fenced too */
	bool rebalance;            /* ha/rebalance.h */
	long long rebalance_threshold_pct, rebalance_hold_s, rebalance_min_gain_pct, rebalance_max_moves;
	long long check_mtu;       /* herd check: the MTU every heartbeat link must carry */
	long long check_interval_s; /* herd check by the coordinator every so often (0: never) */
	long long notify_smtp_port;
	long long notify_interval_s; /* a kind of alert is notified at most once per this */
	long long ping_interval_ms, ping_dampen_ms;
	int notify_smtp_tls;       /* store_notify_tls */
} store_settings;

/* How alert mails reach the relay, in the order of notify_smtp_tls's
 * choices. */
typedef enum {
	STORE_NOTIFY_TLS_NONE = 0,
	STORE_NOTIFY_TLS_STARTTLS,
	STORE_NOTIFY_TLS_TLS,
} store_notify_tls;

/* How long a live migration of a VM with @memory_mib of RAM may take
 * before it is cancelled: migration_timeout_min_s plus
 * migration_timeout_per_gib_s for every GiB begun. */
long long store_settings_migration_timeout_s(const store_settings *s, uint64_t memory_mib);

typedef struct cluster_setting {
	const char *key;
	cluster_setting_type type;
	long long min, max;       /* SETTING_INT */
	const char *choices;      /* SETTING_ENUM: "a|b|c" (stored typed as the index) */
	const char *default_value;
	const char *help;
	bool corosync;            /* takes effect in corosync.conf */
	size_t offset;            /* of its field in store_settings (not SETTING_TEXT) */
	/* SETTING_TEXT: the check of a value that is not empty (NULL: any
	 * text without control characters); sets @error naming the setting. */
	bool (*check)(const char *key, const char *value, GError **error);
	bool secret;              /* never shown back: only whether it is set */
} cluster_setting;

/* The value shown for a secret setting that is set. */
#define CLUSTER_SETTING_SECRET_SHOWN "(set)"

/* All settings, terminated by a zeroed entry. */
extern const cluster_setting cluster_settings[];

const cluster_setting *cluster_setting_find(const char *key);

/*
 * Validate @changes (an object of key -> value; null resets to the default)
 * and return them as typed JSON values ready for a patch.  Values may be
 * strings ("300", "yes") as typed on a command line.
 */
json_t *cluster_settings_validate(json_t *changes, GError **error);

/* A live migration's port range may hold at most this many ports: every node
 * reserves them from the kernel's ephemeral ports, which its outgoing
 * connections need (Debian's default range has 28,232). */
#define CLUSTER_MIGRATION_PORTS_MAX 1024

/*
 * Check what @changes (validated, as cluster_settings_validate() returns
 * them) make of @stored (may be NULL) as a whole: the rules that span
 * settings, on the effective values after the change (the migration port
 * range is a range, and not too wide).  The error names the settings and
 * their values.
 */
bool cluster_settings_check_change(json_t *stored, json_t *changes, GError **error);

/* The effective settings: @stored (may be NULL) over the defaults. */
json_t *cluster_settings_effective(json_t *stored);

/* The effective settings as shown to anyone: secrets replaced by
 * CLUSTER_SETTING_SECRET_SHOWN when set, "" when not. */
json_t *cluster_settings_shown(json_t *stored);

/* The effective settings from @stored (may be NULL) into @out. */
void cluster_settings_fill(json_t *stored, store_settings *out);
/*
 * Apply-time check of a stored settings object: every known key has a
 * value of its type and range (unknown keys, from a newer release, pass),
 * and the effective values pass the rules that span settings (as
 * cluster_settings_check_change()), so that two changes that pass each on
 * its own but not together cannot both be applied.
 */
bool cluster_settings_check_stored(json_t *stored, GError **error);

/* One effective value. */
long long cluster_setting_int(json_t *stored, const char *key);
bool cluster_setting_bool(json_t *stored, const char *key);
const char *cluster_setting_string(json_t *stored, const char *key);

/* The addresses of ping_nodes ("192.0.2.1, 2001:db8::1"), each as
 * g_inet_address_to_string() writes it, or NULL with an error naming @key
 * (g_strfreev). */
char **cluster_setting_ping_nodes(const char *key, const char *value, GError **error);

/* A list of mail addresses as notify_to takes it ("a@x, b@y"): the
 * addresses, or NULL with an error naming @key (g_strfreev). */
char **cluster_setting_addresses(const char *key, const char *value, GError **error);

#include "api/routes.h"

#include "api/events.h"
#include "api/permission.h"

/*
 * Every route, and the permission it needs (api/permission.h): reads need
 * READ, changes ADMIN, a VM's start, stop and migration VM_OPERATE, a
 * job's cancel OWNER (its owner or an admin).  The
 * HTTP server asks api_authorize() before every handler; a route without a
 * permission is refused (test_permission checks that none lacks one).
 */

const http_route herd_api_routes[] = {
	{ "GET", "/api/v1/node", api_node_get, HTTP_ROUTE_PUBLIC, API_PERM_PUBLIC },

	{ "POST", "/api/v1/login", api_login, 0, API_PERM_SESSION },
	{ "POST", "/api/v1/logout", api_logout, 0, API_PERM_SESSION },
	{ "GET", "/api/v1/session", api_session_get, 0, API_PERM_SESSION },
	{ "GET", "/api/v1/users", api_users_list, 0, API_PERM_READ },
	{ "POST", "/api/v1/users", api_user_add, 0, API_PERM_ADMIN },
	{ "GET", "/api/v1/users/{user}", api_user_get, 0, API_PERM_READ },
	{ "PUT", "/api/v1/users/{user}", api_user_set, 0, API_PERM_ADMIN },
	{ "DELETE", "/api/v1/users/{user}", api_user_remove, 0, API_PERM_ADMIN },
	{ "PUT", "/api/v1/users/{user}/password", api_user_password, 0, API_PERM_SELF },
	{ "GET", "/api/v1/groups", api_groups_list, 0, API_PERM_READ },
	{ "POST", "/api/v1/groups", api_group_add, 0, API_PERM_ADMIN },
	{ "GET", "/api/v1/groups/{group}", api_group_get, 0, API_PERM_READ },
	{ "PUT", "/api/v1/groups/{group}", api_group_set, 0, API_PERM_ADMIN },
	{ "DELETE", "/api/v1/groups/{group}", api_group_remove, 0, API_PERM_ADMIN },
	{ "GET", "/api/v1/audit", api_audit_list, 0, API_PERM_READ },
	{ "GET", "/api/v1/status", api_status_get, 0, API_PERM_READ },
	{ "GET", "/api/v1/events", api_events_get, 0, API_PERM_READ },
	{ "GET", "/api/v1/alerts", api_alerts_list, 0, API_PERM_READ },
	{ "GET", "/api/v1/alerts/{alert}", api_alert_get, 0, API_PERM_READ },
	{ "POST", "/api/v1/alerts/{alert}/ack", api_alert_ack, 0, API_PERM_ADMIN },
	{ "GET", "/api/v1/jobs", api_jobs_list, 0, API_PERM_READ },
	{ "GET", "/api/v1/jobs/{job}", api_job_get, 0, API_PERM_READ },
	{ "POST", "/api/v1/jobs/{job}/cancel", api_job_cancel, 0, API_PERM_OWNER },
	{ "POST", "/api/v1/notify/test", api_notify_test, 0, API_PERM_ADMIN },
	{ "POST", "/api/v1/check", api_check_run, 0, API_PERM_ADMIN },
	{ "GET", "/api/v1/check", api_check_get, 0, API_PERM_READ },
	/* Prometheus's usual path, beside the API (docs/metrics.md). */
	{ "GET", "/metrics", api_metrics_get, 0, API_PERM_READ },

	{ "GET", "/api/v1/cluster", api_cluster_get, 0, API_PERM_READ },
	{ "POST", "/api/v1/cluster", api_cluster_create, 0, API_PERM_ADMIN },
	{ "GET", "/api/v1/cluster/ca", api_cluster_ca, HTTP_ROUTE_PUBLIC, API_PERM_PUBLIC },
	{ "POST", "/api/v1/cluster/join", api_cluster_join, 0, API_PERM_ADMIN },
	/* A blank node's: root on its socket, or its page with the setup code
	 * (cluster_setup.c; permission.c lets the code into create, join and
	 * probe only). */
	{ "GET", "/api/v1/cluster/setup-code", api_cluster_setup_code_get, 0, API_PERM_READ },
	{ "POST", "/api/v1/cluster/probe", api_cluster_probe, 0, API_PERM_ADMIN },
	{ "POST", "/api/v1/cluster/leave", api_cluster_leave, 0, API_PERM_ADMIN },
	{ "POST", "/api/v1/cluster/nodes", api_cluster_add_node, 0, API_PERM_ADMIN },
	{ "GET", "/api/v1/cluster/qdevice", api_cluster_qdevice_get, 0, API_PERM_READ },
	{ "POST", "/api/v1/cluster/qdevice", api_cluster_qdevice_add, 0, API_PERM_ADMIN },
	{ "DELETE", "/api/v1/cluster/qdevice", api_cluster_qdevice_remove, 0, API_PERM_ADMIN },
	{ "GET", "/api/v1/cluster/settings", api_cluster_settings_get, 0, API_PERM_READ },
	{ "PUT", "/api/v1/cluster/settings", api_cluster_settings_put, 0, API_PERM_ADMIN },

	{ "GET", "/api/v1/nodes", api_nodes_list, 0, API_PERM_READ },
	{ "GET", "/api/v1/nodes/{node}", api_node_show, 0, API_PERM_READ },
	{ "DELETE", "/api/v1/nodes/{node}", api_node_remove, 0, API_PERM_ADMIN },
	{ "PUT", "/api/v1/nodes/{node}", api_node_set, 0, API_PERM_ADMIN },
	{ "POST", "/api/v1/nodes/{node}/mode", api_node_mode, 0, API_PERM_ADMIN },
	{ "POST", "/api/v1/nodes/{node}/switchover", api_node_switchover, 0, API_PERM_ADMIN },
	{ "POST", "/api/v1/nodes/{node}/fence", api_node_fence, 0, API_PERM_ADMIN },
	{ "POST", "/api/v1/nodes/{node}/confirm-down", api_node_confirm_down, 0, API_PERM_ADMIN },

	{ "GET", "/api/v1/networks", api_networks_list, 0, API_PERM_READ },
	{ "POST", "/api/v1/networks", api_network_add, 0, API_PERM_ADMIN },
	{ "GET", "/api/v1/networks/{network}", api_network_get, 0, API_PERM_READ },
	{ "DELETE", "/api/v1/networks/{network}", api_network_remove, 0, API_PERM_ADMIN },
	{ "GET", "/api/v1/rules", api_rules_list, 0, API_PERM_READ },
	{ "POST", "/api/v1/rules", api_rule_add, 0, API_PERM_ADMIN },
	{ "GET", "/api/v1/rules/{rule}", api_rule_get, 0, API_PERM_READ },
	{ "DELETE", "/api/v1/rules/{rule}", api_rule_delete, 0, API_PERM_ADMIN },
	{ "GET", "/api/v1/fence-devices", api_fence_devices_list, 0, API_PERM_READ },
	{ "POST", "/api/v1/fence-devices", api_fence_device_add, 0, API_PERM_ADMIN },
	{ "DELETE", "/api/v1/fence-devices/{dev}", api_fence_device_remove, 0, API_PERM_ADMIN },
	{ "POST", "/api/v1/fence-devices/{dev}/test", api_fence_device_test, 0, API_PERM_ADMIN },

	{ "GET", "/api/v1/storage", api_storages_list, 0, API_PERM_READ },
	{ "POST", "/api/v1/storage", api_storage_add, 0, API_PERM_ADMIN },
	{ "GET", "/api/v1/storage/{storage}", api_storage_show, 0, API_PERM_READ },
	{ "DELETE", "/api/v1/storage/{storage}", api_storage_remove, 0, API_PERM_ADMIN },

	{ "GET", "/api/v1/vms", api_vms_list, 0, API_PERM_READ },
	{ "POST", "/api/v1/vms", api_vm_define, 0, API_PERM_ADMIN },
	{ "GET", "/api/v1/vms/{vm}", api_vm_get, 0, API_PERM_READ },
	{ "PUT", "/api/v1/vms/{vm}", api_vm_set, 0, API_PERM_ADMIN },
	{ "DELETE", "/api/v1/vms/{vm}", api_vm_undefine, 0, API_PERM_ADMIN },
	{ "GET", "/api/v1/vms/{vm}/xml", api_vm_xml, 0, API_PERM_READ },
	{ "GET", "/api/v1/vms/{vm}/history", api_vm_history, 0, API_PERM_READ },
	{ "POST", "/api/v1/vms/{vm}/restore", api_vm_restore, 0, API_PERM_ADMIN },
	{ "POST", "/api/v1/vms/{vm}/start", api_vm_start, 0, API_PERM_VM_OPERATE },
	{ "POST", "/api/v1/vms/{vm}/shutdown", api_vm_shutdown, 0, API_PERM_VM_OPERATE },
	{ "POST", "/api/v1/vms/{vm}/destroy", api_vm_destroy, 0, API_PERM_VM_OPERATE },
	{ "POST", "/api/v1/vms/{vm}/release", api_vm_release, 0, API_PERM_ADMIN },
	{ "POST", "/api/v1/vms/{vm}/migrate", api_vm_migrate, 0, API_PERM_VM_OPERATE },
	/* The console: a ticket, then the websocket, which the ticket lets in. */
	{ "POST", "/api/v1/vms/{vm}/console", api_vm_console_ticket, 0, API_PERM_VM_OPERATE },
	{ "GET", "/api/v1/vms/{vm}/console", api_vm_console_open, HTTP_ROUTE_PUBLIC, API_PERM_PUBLIC },
	{ "POST", "/api/v1/vms/{vm}/{op}", api_vm_op, 0, API_PERM_VM_OPERATE },
	{ "GET", "/api/v1/history/vms", api_history_vms, 0, API_PERM_READ },


	{ "GET", "/api/v1/disks", api_disks_list, 0, API_PERM_READ },
	{ "POST", "/api/v1/disks", api_disk_create, 0, API_PERM_ADMIN },
	{ "GET", "/api/v1/disks/{disk}", api_disk_get, 0, API_PERM_READ },
	{ "DELETE", "/api/v1/disks/{disk}", api_disk_delete, 0, API_PERM_ADMIN },
	{ "POST", "/api/v1/disks/{disk}/resize", api_disk_resize, 0, API_PERM_ADMIN },
	{ "POST", "/api/v1/disks/{disk}/promote", api_disk_promote, 0, API_PERM_ADMIN },
	{ "POST", "/api/v1/disks/{disk}/resolve", api_disk_resolve, 0, API_PERM_ADMIN },
	{ "POST", "/api/v1/disks/{disk}/verify", api_disk_verify, 0, API_PERM_ADMIN },
	{ "POST", "/api/v1/disks/{disk}/attach", api_disk_attach, 0, API_PERM_ADMIN },

	{ "GET", "/api/v1/isos", api_isos_list, 0, API_PERM_READ },
	{ "PUT", "/api/v1/isos/{iso}", api_iso_upload, HTTP_ROUTE_STREAM, API_PERM_ADMIN },
	{ "DELETE", "/api/v1/isos/{iso}", api_iso_delete, 0, API_PERM_ADMIN },

	{ "POST", "/api/v1/simulate", api_simulate, 0, API_PERM_READ },
};
const size_t herd_api_n_routes = G_N_ELEMENTS(herd_api_routes);

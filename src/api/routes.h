/*
 * The REST API's route table and its handlers, one file per resource
 * (status.c, cluster.c, node.c, fence_device.c, vm.c, vm_history.c;
 * auth.c says whose password is what).  Handlers get an api_ctx
 * (api/context.h) as user data.
 */
#pragma once

#include "api/context.h"
#include "api/http.h"
#include "store/object.h"

extern const http_route herd_api_routes[];
extern const size_t herd_api_n_routes;

/* auth.c: a copy of @user's stored password hash, for http_server_set_auth(). */
char *api_user_password_hash(const char *user, gpointer user_data, GError **error);

/* auth.c: the refusal of a wrong password of @user (http_credentials_config's). */
const char *api_password_refusal(const char *user);

/* auth.c: the user of a session token (http_token_user_fn). */
char *api_session_user(const char *token, gpointer user_data, GError **error);
/* session.c: login, logout, who am I. */
void api_login(http_request *req, gpointer user_data);         /* POST /login */
void api_logout(http_request *req, gpointer user_data);        /* POST /logout */
void api_session_get(http_request *req, gpointer user_data);   /* GET /session */

/* user.c */
void api_users_list(http_request *req, gpointer user_data);    /* GET /users */
void api_user_get(http_request *req, gpointer user_data);      /* GET /users/{user} */
void api_user_add(http_request *req, gpointer user_data);      /* POST /users */
void api_user_set(http_request *req, gpointer user_data);      /* PUT /users/{user} */
void api_user_remove(http_request *req, gpointer user_data);   /* DELETE /users/{user} */
void api_user_password(http_request *req, gpointer user_data); /* PUT /users/{user}/password */
json_t *api_user_json(api_ctx *a, store_object *user);

/* group.c */
void api_groups_list(http_request *req, gpointer user_data);   /* GET /groups */
void api_group_get(http_request *req, gpointer user_data);     /* GET /groups/{group} */
void api_group_add(http_request *req, gpointer user_data);     /* POST /groups */
void api_group_set(http_request *req, gpointer user_data);     /* PUT /groups/{group} */
void api_group_remove(http_request *req, gpointer user_data);  /* DELETE /groups/{group} */
json_t *api_group_json(api_ctx *a, store_object *group);

/* audit.c */
void api_audit_list(http_request *req, gpointer user_data);    /* GET /audit[?limit=N] */

/* status.c */
void api_node_get(http_request *req, gpointer user_data);      /* GET /node */
void api_status_get(http_request *req, gpointer user_data);    /* GET /status */
void api_alerts_list(http_request *req, gpointer user_data);   /* GET /alerts[?all=true] */
void api_alert_get(http_request *req, gpointer user_data);     /* GET /alerts/{alert} */
void api_alert_ack(http_request *req, gpointer user_data);     /* POST /alerts/{alert}/ack */
void api_notify_test(http_request *req, gpointer user_data);   /* POST /notify/test */
void api_check_run(http_request *req, gpointer user_data);     /* POST /check */
void api_check_get(http_request *req, gpointer user_data);     /* GET /check */
void api_metrics_get(http_request *req, gpointer user_data);   /* GET /metrics (not under /api/v1) */

/* job.c */
void api_jobs_list(http_request *req, gpointer user_data);     /* GET /jobs[?all=true] */
void api_job_get(http_request *req, gpointer user_data);       /* GET /jobs/{job} */
void api_job_cancel(http_request *req, gpointer user_data);    /* POST /jobs/{job}/cancel */
/* A job as the API shows it, with its log or not. */
json_t *api_job_json(api_ctx *a, store_object *job, bool with_log);

/* cluster.c */
void api_cluster_create(http_request *req, gpointer user_data);   /* POST /cluster */
void api_cluster_join(http_request *req, gpointer user_data);     /* POST /cluster/join */
void api_cluster_add_node(http_request *req, gpointer user_data); /* POST /cluster/nodes */
void api_cluster_leave(http_request *req, gpointer user_data);    /* POST /cluster/leave */
void api_cluster_get(http_request *req, gpointer user_data);      /* GET /cluster */
void api_cluster_ca(http_request *req, gpointer user_data);       /* GET /cluster/ca */
/* The quorum device (cluster_qdevice.c): GET/POST/DELETE /cluster/qdevice. */
void api_cluster_qdevice_get(http_request *req, gpointer user_data);
void api_cluster_qdevice_add(http_request *req, gpointer user_data);
void api_cluster_qdevice_remove(http_request *req, gpointer user_data);
/* {"host","port","algorithm","active","ca_fingerprint","local"}, or JSON null. */
json_t *api_cluster_qdevice_json(api_ctx *a);
void api_cluster_settings_get(http_request *req, gpointer user_data);
void api_cluster_settings_put(http_request *req, gpointer user_data);
/* A blank node's setup (cluster_setup.c): its setup code, the password of
 * the pseudo-user API_SETUP_USER (shown to local root only), and a look at
 * the certificate of a member to join. */
#define API_SETUP_USER "#setup"
bool api_setup_user(const char *user);
char *api_setup_code_hash(api_ctx *a, GError **error); /* NULL: none (a member) */
void api_cluster_setup_code_get(http_request *req, gpointer user_data); /* GET /cluster/setup-code */
void api_cluster_probe(http_request *req, gpointer user_data);          /* POST /cluster/probe */

/* node.c */
void api_nodes_list(http_request *req, gpointer user_data);       /* GET /nodes */
void api_node_show(http_request *req, gpointer user_data);        /* GET /nodes/{node} */
void api_node_remove(http_request *req, gpointer user_data);      /* DELETE /nodes/{node} */
void api_node_set(http_request *req, gpointer user_data);         /* PUT /nodes/{node} */
void api_node_mode(http_request *req, gpointer user_data);        /* POST /nodes/{node}/mode */
void api_node_switchover(http_request *req, gpointer user_data);
void api_node_fence(http_request *req, gpointer user_data);
void api_node_confirm_down(http_request *req, gpointer user_data);
/* A node as the API shows it, and all of them sorted by node id. */
json_t *api_node_json(api_ctx *a, store_object *n);
json_t *api_nodes_json(api_ctx *a);

/* rule.c: affinity rules */
void api_rules_list(http_request *req, gpointer user_data);       /* GET /rules */
void api_rule_get(http_request *req, gpointer user_data);         /* GET /rules/{rule} */
void api_rule_add(http_request *req, gpointer user_data);         /* POST /rules */
void api_rule_delete(http_request *req, gpointer user_data);      /* DELETE /rules/{rule} */

/* network.c: virtual switches */
void api_networks_list(http_request *req, gpointer user_data);    /* GET /networks */
void api_network_get(http_request *req, gpointer user_data);      /* GET /networks/{network} */
void api_network_add(http_request *req, gpointer user_data);      /* POST /networks */
void api_network_remove(http_request *req, gpointer user_data);   /* DELETE /networks/{network} */
/* fence_device.c */
void api_fence_devices_list(http_request *req, gpointer user_data);
void api_fence_device_add(http_request *req, gpointer user_data);
void api_fence_device_remove(http_request *req, gpointer user_data);
void api_fence_device_test(http_request *req, gpointer user_data);

/* storage.c */
void api_storages_list(http_request *req, gpointer user_data);  /* GET /storage */
void api_storage_add(http_request *req, gpointer user_data);    /* POST /storage */
void api_storage_show(http_request *req, gpointer user_data);   /* GET /storage/{storage} */
void api_storage_remove(http_request *req, gpointer user_data); /* DELETE /storage/{storage} */
/* What every node of the cluster found of storage or virtual switch @uuid:
 * {node name: {"ok":bool,"problem":"…"?,"size":bytes?,"free":bytes?}}, every
 * node of the store (one whose herd does not report: not ok, and why). */
json_t *api_reach_json(api_ctx *a, const char *uuid);

/* vm.c */
void api_vms_list(http_request *req, gpointer user_data);
void api_vm_define(http_request *req, gpointer user_data);
void api_vm_get(http_request *req, gpointer user_data);
void api_vm_xml(http_request *req, gpointer user_data);
void api_vm_set(http_request *req, gpointer user_data);
void api_vm_undefine(http_request *req, gpointer user_data);
void api_vm_start(http_request *req, gpointer user_data);       /* POST /vms/{vm}/start */
void api_vm_shutdown(http_request *req, gpointer user_data);    /* POST /vms/{vm}/shutdown */
void api_vm_destroy(http_request *req, gpointer user_data);     /* POST /vms/{vm}/destroy */
void api_vm_op(http_request *req, gpointer user_data);          /* POST /vms/{vm}/{op} */
void api_vm_release(http_request *req, gpointer user_data);     /* POST /vms/{vm}/release */
void api_vm_migrate(http_request *req, gpointer user_data);     /* POST /vms/{vm}/migrate (vm_migrate.c) */
void api_vm_console_ticket(http_request *req, gpointer user_data); /* POST /vms/{vm}/console (console.c) */
void api_vm_console_open(http_request *req, gpointer user_data);   /* GET /vms/{vm}/console?ticket= */
/* A VM as the API shows it (vm_json.c), with @xml as its XML if not NULL;
 * and as the answer to a change of it (its result). */
json_t *api_vm_json(api_ctx *a, store_object *vm, const char *xml);
json_t *api_render_vm(api_ctx *a, json_t *result);

/* disk.c */
void api_disks_list(http_request *req, gpointer user_data);     /* GET /disks */
void api_disk_create(http_request *req, gpointer user_data);    /* POST /disks */
void api_disk_get(http_request *req, gpointer user_data);       /* GET /disks/{disk} */
void api_disk_delete(http_request *req, gpointer user_data);    /* DELETE /disks/{disk} */
void api_disk_resize(http_request *req, gpointer user_data);    /* POST /disks/{disk}/resize */
void api_disk_promote(http_request *req, gpointer user_data);   /* POST /disks/{disk}/promote (eSAN) */
void api_disk_resolve(http_request *req, gpointer user_data);   /* POST /disks/{disk}/resolve (eSAN) */
void api_disk_verify(http_request *req, gpointer user_data);    /* POST /disks/{disk}/verify (eSAN) */
void api_disk_attach(http_request *req, gpointer user_data);    /* POST /disks/{disk}/attach (eSAN) */

/* iso.c */
void api_isos_list(http_request *req, gpointer user_data);      /* GET /isos */
void api_iso_upload(http_request *req, gpointer user_data);     /* PUT /isos/{iso}, streamed */
void api_iso_delete(http_request *req, gpointer user_data);     /* DELETE /isos/{iso} */

/* storage.c */
void api_storage_add(http_request *req, gpointer user_data);    /* POST /storage */

/* simulate.c */
void api_simulate(http_request *req, gpointer user_data);       /* POST /simulate */

/* vm_history.c */
void api_vm_history(http_request *req, gpointer user_data);
void api_history_vms(http_request *req, gpointer user_data);
void api_vm_restore(http_request *req, gpointer user_data);

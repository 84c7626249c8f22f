/*
 * The objects of herd's replicated configuration.
 *
 * Every object has a kind (vm, node, …), a UUID that never changes, a name
 * unique within its kind, a version that grows by one with every change, and
 * kind-specific data as a JSON object.  The cluster's settings are the one
 * object of kind "cluster".  Objects are immutable once published: a change
 * makes a new object, so readers may hold a reference while the store moves on.
 */
#pragma once

#include "store/packed.h"

#include <glib.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

struct store_state;

typedef enum {
	STORE_KIND_CLUSTER = 0,
	STORE_KIND_NODE,
	STORE_KIND_VM,
	STORE_KIND_DISK,
	STORE_KIND_STORAGE,
	STORE_KIND_FENCE_DEVICE,
	STORE_KIND_HOST,
	STORE_KIND_USER,
	STORE_KIND_GROUP,
	STORE_KIND_ISO,
	STORE_KIND_NETWORK,
	STORE_KIND_ALERT,
	STORE_KIND_RULE,
	STORE_KIND_JOB,
	STORE_KIND__COUNT
} store_kind;

/* "vm", "fence_device"…; the name used on the wire and in SQLite. */
const char *store_kind_name(store_kind kind);
/* Parse a kind name; false if unknown. */
bool store_kind_parse(const char *name, store_kind *out);
/* How the kind is called in messages: "VM", "fence device"… */
const char *store_kind_label(store_kind kind);

#define STORE_UUID_LEN 36
#define STORE_NAME_MAX 63

typedef struct store_object {
	gint refcount;
	store_kind kind;
	char uuid[STORE_UUID_LEN + 1];
	char *name;           /* in the object's own block */
	uint64_t version;
	int64_t created_ms;   /* when it was first made (sender's clock) */
	int64_t modified_ms;  /* when this version was made */
	json_t *data;         /* kind-specific fields; never NULL, except for a VM
			       * (NULL: its data is @text); read them with
			       * store_object_data() */
	store_packed *text;   /* a VM's data as compact JSON text, the bytes of
			       * store_db_encode() (SQLite's data column, the hash
			       * chain's), packed (store/packed.h): 10,000 VMs are
			       * held as packed text, not as trees of some 15 values
			       * each nor as 1–3 kB of domain XML; NULL for other
			       * kinds, and for a VM whose text is cold (below);
			       * read with store_object_encode() */
	struct store_state *cold; /* a VM whose text is not held here: the
			       * current object of this state, whose database's
			       * row is it, durable (store/state.h, "Cold texts");
			       * NULL otherwise */
	uint64_t digest;      /* a VM's: its text's store_object_text_digest(),
			       * checked when the text is read back */
	void *typed;          /* the kind's typed view of the data (store/vm.h, node.h…),
			       * made once with the object; NULL for kinds without one */
	uint64_t changed_at;  /* the store index of the command that made it, set by
			       * the state as it publishes it; 0 if not known (it
			       * was loaded): store_state_changed_at() */
} store_object;

/* A new object (refcount 1); @data is referenced, not stolen (a VM's is
 * encoded as its text and not kept). */
store_object *store_object_new(store_kind kind, const char *uuid, const char *name,
			       uint64_t version, int64_t created_ms, int64_t modified_ms,
			       json_t *data);
store_object *store_object_ref(store_object *o);
/* @o's data: a new reference (json_decref it).  For a VM a tree parsed from
 * its text, the caller's own; for other kinds the object's own tree, which
 * must not be changed.  NULL with @error only as store_object_encode(). */
json_t *store_object_data(const store_object *o, GError **error);
/* @o's data as store_db_encode() writes it (g_free it).  A cold VM's
 * (above) is read from its state's database; if it cannot be (a read
 * error, or the row is not this object's text: see store/state.h), NULL
 * with @error (HERD_ERR_IO): the caller fails what needed it, herdd goes
 * on.  Never NULL for an object that is not cold. */
char *store_object_encode(const store_object *o, GError **error);

/* For store/state.c's cold texts: the digest of a VM's text (its CRC-32
 * and Adler-32: against a wrong row, not an adversary); drop @o's packed
 * text, which @home's database holds; take it back as @text (its
 * store_object_encode()). */
uint64_t store_object_text_digest(const char *text, size_t len);
void store_object_set_cold(store_object *o, struct store_state *home);
void store_object_set_warm(store_object *o, const char *text);

/* One member of a JSON object's text as store_db_encode() writes it
 * (compact, keys sorted): its key and its value, both as in the text
 * (escaped; the value's quotes included). */
typedef struct store_text_member {
	const char *key;
	size_t key_len;
	const char *value;
	size_t value_len;
} store_text_member;
/* The next member of the object whose text starts at *@cursor (its '{' the
 * first time); false after the last.  No allocation, no parse. */
bool store_text_next(const char **cursor, store_text_member *m);
/* Member @key of @text, or false. */
bool store_text_member_get(const char *text, const char *key, store_text_member *m);
void store_object_unref(store_object *o);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(store_object, store_object_unref)

/*
 * Check @data as the new data of a @kind object, when a command is applied:
 * deterministic (every node decides alike), types and ranges of the fields
 * the kind knows; fields it does not know (a newer release's) pass.
 */
bool store_object_validate(store_kind kind, json_t *data, GError **error);

/* {"kind","uuid","name","version","created_ms","modified_ms","data"} */
json_t *store_object_to_json(const store_object *o); /* NULL as store_object_data() */
/* The inverse; NULL with an INVALID error if a field is missing or wrong. */
store_object *store_object_from_json(json_t *j, GError **error);

/*
 * Names: 1–63 characters of letters, digits, '-', '_' and '.', starting with
 * a letter or digit, and not shaped like a UUID (so that NAME|UUID arguments
 * are never ambiguous).  On failure @error says what is wrong with @name.
 */
bool store_name_validate(store_kind kind, const char *name, GError **error);

/* True for the canonical lower-case 8-4-4-4-12 form. */
bool store_uuid_is_valid(const char *uuid);

/* A new random (version 4) UUID. */
void store_uuid_generate(char out[STORE_UUID_LEN + 1]);

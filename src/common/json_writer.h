/*
 * JSON text written straight into a GString, for answers too large to build
 * as a jansson tree first: GET /api/v1/vms with 10,000 VMs is 3 MB of
 * text, and building, dumping and freeing the tree costs about 35 times
 * what writing it does (bench/api).  The writer puts the commas and escapes
 * the strings; the caller opens and closes what it opens.  Text that is not
 * valid UTF-8 is written with U+FFFD in place of the bad bytes.
 */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

/* How deep objects and arrays may nest. */
#define JSON_WRITER_DEPTH_MAX 32

/*
 * Keys written as one byte each: text kept in memory (the API's texts of
 * 10,000 VMs) without its member names and the commas before them, and
 * null, true and false as one byte too: some two thirds less.  Byte 1 + i
 * stands for the comma and key i, the three bytes after the keys for null,
 * true and false; the strings' writer escapes every byte below 0x20, so
 * no string holds one.  The first key of an object (no comma) and keys
 * not among them are written as JSON.  json_writer_members_keyed() writes
 * such text out as JSON.
 */
#define JSON_KEYS_MAX 28
#define JSON_KEY_LEN_MAX 26

typedef struct json_keys {
	unsigned n;
	unsigned next;        /* where the next key is looked for first */
	struct {
		uint8_t len;      /* of text */
		char text[JSON_KEY_LEN_MAX + 5]; /* ',"key":' (or the value); copied whole */
	} key[JSON_KEYS_MAX + 3];
} json_keys;

/* @n (at most JSON_KEYS_MAX) keys of at most JSON_KEY_LEN_MAX bytes,
 * which need no escaping; best the frequent ones, in the order they are
 * written. */
void json_keys_init(json_keys *k, const char *const *names, unsigned n);

typedef struct json_writer {
	GString *out;
	unsigned depth;
	uint64_t has_items;   /* bit d: the container at depth d has an item already */
	bool after_key;       /* a key was written; its value comes next */
	json_keys *keys;      /* keys written as one byte each, or NULL */
} json_writer;

/* Write into @out (appended to). */
void json_writer_init(json_writer *w, GString *out);
/* Write members of an object whose braces someone else writes: the text
 * goes into an object later with json_writer_members_text(). */
void json_writer_init_members(json_writer *w, GString *out);
/* Add members written that way (@len bytes of @text) to the object being
 * written. */
void json_writer_members_text(json_writer *w, const char *text, size_t len);
/* Write members as json_writer_init_members() does, but with the keys of
 * @keys, null, true and false as one byte each.  json_keyed_len() is the
 * length of such text as JSON. */
void json_writer_init_keyed(json_writer *w, GString *out, json_keys *keys);
size_t json_keyed_len(const char *text, size_t len, const json_keys *keys);
/* Add members written that way to the object being written, as JSON:
 * @len bytes of @text, @json_len as JSON (json_keyed_len()). */
void json_writer_members_keyed(json_writer *w, const char *text, size_t len, size_t json_len,
			       const json_keys *keys);

void json_writer_object_begin(json_writer *w);
void json_writer_object_end(json_writer *w);
void json_writer_array_begin(json_writer *w);
void json_writer_array_end(json_writer *w);
/* The key of the next member of the object being written: text from
 * herd's code, written as it is (nothing in it needs escaping). */
void json_writer_key(json_writer *w, const char *key);

/* Values: @s NULL writes null. */
void json_writer_string(json_writer *w, const char *s);
void json_writer_int(json_writer *w, int64_t n);
void json_writer_bool(json_writer *w, bool b);
void json_writer_null(json_writer *w);

/* @len bytes of @s, valid UTF-8, appended to @out as a JSON string: as
 * jansson writes it, byte for byte ('"', '\\' and the control characters
 * escaped; store/db.c's canonical text depends on that). */
void json_text_append_string(GString *out, const char *s, size_t len);

/* Shorthands for a member: key and value. */
void json_writer_member_string(json_writer *w, const char *key, const char *s);
void json_writer_member_int(json_writer *w, const char *key, int64_t n);
void json_writer_member_bool(json_writer *w, const char *key, bool b);

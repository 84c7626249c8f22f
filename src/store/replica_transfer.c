/*
 * What a member that differs receives in a sync (store/replica.h): the
 * leader's SNAPSHOT (the whole store) or CATCHUP (the changes it missed,
 * from the leader's change log), in chunks, reassembled here and applied
 * once the last one is in.  The leader's side (decide(), send_snapshot(),
 * send_catchup()) is in replica.c.
 */
#include "common/error.h"
#include "common/json.h"
#include "common/log.h"
#include "common/memory.h"
#include "store/replica_private.h"

#include <string.h>

/*
 * Apply the changes of a CATCHUP (send_catchup()) that this replica
 * lacks, as they were applied at the leader, each in its generation: the
 * same commands after the same position give the same state and hash.
 * False (the state is left as it is, rolled back) if they do not lead to
 * the leader's position.
 */
static bool apply_catchup(replica *r, const uint8_t *p, size_t len, GError **error)
{
	uint64_t current_gen = r->state->pos.current_gen;
	size_t off = 0;
	unsigned applied_n = 0;
	while (off < len) {
		if (len - off < 20 || herd_get_le32(p + off + 16) > len - off - 20) {
			g_set_error(error, HERD_ERROR, HERD_ERR_INVALID, "The changes received are cut short.");
			return false;
		}
		uint64_t gen = herd_get_le64(p + off), index = herd_get_le64(p + off + 8);
		uint32_t n = herd_get_le32(p + off + 16);
		const uint8_t *cmd_bytes = p + off + 20;
		off += 20 + n;
		if (index <= r->state->pos.index)
			continue; /* this replica has it */
		if (index != r->state->pos.index + 1) {
			g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
				    "The changes received start at index %" G_GUINT64_FORMAT
				    ", after this node's %" G_GUINT64_FORMAT ".", index, r->state->pos.index);
			return false;
		}
		json_error_t jerr;
		g_autoptr(json_t) cmd = json_loadb((const char *)cmd_bytes, n, 0, &jerr);
		g_autoptr(GPtrArray) changes =
			g_ptr_array_new_with_free_func((GDestroyNotify)store_change_free);
		uint8_t prev[32];
		memcpy(prev, r->state->pos.hash, sizeof(prev));
		r->state->pos.current_gen = gen;
		g_autoptr(json_t) result = cmd ? store_state_apply(r->state, cmd, cmd_bytes, n, changes, error) : NULL;
		r->state->pos.current_gen = MAX(current_gen, gen);
		if (!result) {
			if (!cmd)
				g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
					    "A change received is not valid JSON: %s.", jerr.text);
			return false;
		}
		r->dirty = true;
		r->caught_up++;
		applied_n++;
		change_log_add(r->log, r->state->pos.gen, r->state->pos.index, prev, cmd_bytes, n);
		replica_applied(r, cmd, changes);
	}
	if (store_position_compare(&r->state->pos, &r->leader_pos) != 0 ||
	    memcmp(r->state->pos.hash, r->leader_pos.hash, 32) != 0) {
		g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
			    "The changes received did not lead to node %u's position.", r->leader);
		return false;
	}
	log_info("caught up with node %u: %u changes applied", r->leader, applied_n);
	return true;
}

void replica_on_transfer(replica *r, uint32_t sender, herd_msg_type type, uint64_t epoch,
			 const void *payload, size_t len)
{
	if (r->phase != REPLICA_SYNCING || !r->transfer || epoch != r->round || sender != r->leader)
		return;
	const uint8_t *p = payload;
	if (len < 8 || (r->snap_type && type != r->snap_type)) {
		r->rejected++;
		return;
	}
	r->snap_type = type;
	uint32_t chunk = herd_get_le32(p), count = herd_get_le32(p + 4);
	if (chunk != r->snap_next || count == 0 || (r->snap_count && count != r->snap_count)) {
		log_err("snapshot chunk %u/%u from node %u out of order; waiting for the next round",
			chunk, count, sender);
		r->rejected++;
		return;
	}
	r->snap_count = count;
	r->snap_next++;
	bool needed = store_position_compare(&r->state->pos, &r->leader_pos) != 0 ||
		      memcmp(r->state->pos.hash, r->leader_pos.hash, 32) != 0;
	if (needed)
		g_byte_array_append(r->snapshot, p + 8, (guint)(len - 8));
	if (r->snap_next < count)
		return;
	if (!needed) {
		replica_complete_sync(r, false);
		return;
	}
	g_autoptr(GError) err = NULL;
	if (type == HERD_MSG_CATCHUP) {
		if (!replica_ensure_txn(r))
			return;
		if (!apply_catchup(r, r->snapshot->data, r->snapshot->len, &err)) {
			/* Every receiver that lacked them applies the same bytes
			 * alike: this one's database broke, or its history is not
			 * the leader's after all. */
			replica_fail(r, err);
			return;
		}
		replica_complete_sync(r, false);
		return;
	}
	{
		json_error_t jerr;
		g_autoptr(json_t) dump = json_loadb((const char *)r->snapshot->data, r->snapshot->len, 0, &jerr);
		if (!dump) {
			g_set_error(&err, HERD_ERROR, HERD_ERR_IO, "The state received from node %u is not valid JSON: %s.",
				    sender, jerr.text);
			replica_fail(r, err);
			return;
		}
		if (!replica_ensure_txn(r))
			return;
		/* The rows are rewritten: the VMs still held elsewhere take
		 * their texts back while the rows are theirs. */
		if (!store_state_warm_all(r->state, true, &err) ||
		    !store_db_restore_dump(r->db, dump, &err) || !store_state_load(r->state, &err)) {
			replica_fail(r, err);
			return;
		}
		r->dirty = true;
		change_log_clear(r->log); /* the history before it is the leader's, not known here */
		r->cb.changed(r->user, NULL);
		replica_complete_sync(r, true);
	}
	/* The whole store's text and tree (and the state it replaced) are
	 * freed: give the holes back. */
	herd_malloc_release();
}

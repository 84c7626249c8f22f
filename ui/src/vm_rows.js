// The VM list's rows, kept current from the event stream one VM at a time:
// a change of a VM (an event naming it: its object in the store, or the
// facts of a node about it) fetches that VM alone (GET /api/v1/vms/UUID),
// a deletion removes its row without a request; the whole list
// (GET /api/v1/vms, 1,000 VMs: hundreds of kB) is fetched only at the
// start, after a reconnect of the stream, for an event the server cannot
// attribute to VMs, or for a burst of more than MAX_SINGLE VMs.
//
// Answers may come back in any order: each row remembers the number of
// the last event its data is as new as (an answer to a request sent after
// event n shows at least what event n announced), and an older answer
// never replaces a newer row — nor brings back a VM deleted meanwhile.
import { useEffect, useState } from 'preact/hooks';
import { get } from './api.js';
import { debounced, watch } from './live.js';

const MAX_SINGLE = 32; // more VMs at once than this: the whole list instead
const MAX_PARALLEL = 6; // single VMs fetched at once

// What GET /api/v1/vms/NAME has beyond the list's row (src/api/vm_json.c:
// api_vm_json() is the list's row plus these): left out, the row is the
// list's.
const DETAIL_ONLY = ['xml', 'hardware', 'migration', 'start_after_name', 'pending'];

export function rowOf(vm) {
  const row = { ...vm };
  for (const k of DETAIL_ONLY) delete row[k];
  return row;
}

// As the server sorts them (strcmp of the names; names are ASCII).
function byName(a, b) {
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

// Kinds whose change may change every row: a node (renamed, removed).
const EVERY_ROW = new Set(['node']);

export class VmRows {
  // onChange(list, error): the rows sorted by name, after each change.
  constructor(onChange, fetchJson = get) {
    this.onChange = onChange;
    this.get = fetchJson;
    this.rows = new Map(); // uuid -> row
    this.asOf = new Map(); // uuid -> the event number its row (or its absence) is as new as
    this.events = 0; // events seen
    this.wanted = new Set(); // uuids to fetch
    this.wantAll = false;
    this.loaded = false; // the whole list came once
    this.list = [];
    this.error = null;
    this.flush = debounced(() => this.fetchWanted());
    this.fetchAllSoon = debounced(() => this.fetchAll());
  }

  // Event ev of live.js.
  onEvent(ev) {
    this.events++;
    if (ev.type === 'reload' || ev.type === 'membership' || (ev.type === 'change' && EVERY_ROW.has(ev.kind))) {
      this.wantAll = true;
    } else if (ev.type === 'facts') {
      if (!ev.vms) this.wantAll = true;
      else ev.vms.forEach((uuid) => this.wanted.add(uuid));
      if (!this.wantAll && !this.wanted.size) return;
    } else if (ev.type === 'change' && ev.kind === 'vm') {
      if (ev.op === 'delete') {
        this.forget(ev.id, this.events);
        this.publish();
        return;
      }
      this.wanted.add(ev.id);
    } else {
      return;
    }
    this.flush();
  }

  // The whole list (the start, or a reload asked for).
  reload() {
    this.wantAll = true;
    this.flush.cancel();
    this.fetchWanted();
  }

  fetchWanted() {
    if (this.wantAll || this.wanted.size > MAX_SINGLE || !this.loaded) {
      this.wantAll = false;
      this.wanted.clear();
      this.fetchAllSoon();
      return;
    }
    const uuids = [...this.wanted];
    this.wanted.clear();
    const at = this.events;
    let next = 0;
    const worker = async () => {
      while (next < uuids.length) await this.fetchOne(uuids[next++], at);
    };
    for (let i = 0; i < Math.min(MAX_PARALLEL, uuids.length); i++) worker();
  }

  async fetchOne(uuid, at) {
    let vm = null;
    try {
      vm = await this.get(`/api/v1/vms/${encodeURIComponent(uuid)}`);
    } catch (e) {
      if (e.status !== 404) {
        // Not known how it is: the whole list, once.
        this.wantAll = true;
        this.fail(e);
        this.flush();
        return;
      }
    }
    if ((this.asOf.get(uuid) ?? -1) > at) return; // a newer answer is in
    if (vm) {
      this.rows.set(uuid, rowOf(vm));
      this.asOf.set(uuid, at);
    } else {
      this.forget(uuid, at);
    }
    this.error = null;
    this.publish();
  }

  async fetchAll() {
    const at = this.events;
    let vms;
    try {
      vms = await this.get('/api/v1/vms');
    } catch (e) {
      this.fail(e);
      return;
    }
    const rows = new Map();
    for (const vm of vms) {
      if ((this.asOf.get(vm.uuid) ?? -1) > at) continue; // newer, or deleted since
      rows.set(vm.uuid, vm);
    }
    const asOf = new Map();
    for (const [uuid, when] of this.asOf) {
      if (when <= at) continue;
      asOf.set(uuid, when);
      const newer = this.rows.get(uuid);
      if (newer) rows.set(uuid, newer); // changed or created since the list was asked for
    }
    for (const uuid of rows.keys()) if (!asOf.has(uuid)) asOf.set(uuid, at);
    this.rows = rows;
    this.asOf = asOf;
    this.loaded = true;
    this.error = null;
    this.publish();
  }

  forget(uuid, at) {
    this.rows.delete(uuid);
    this.asOf.set(uuid, at);
  }

  fail(e) {
    this.error = e;
    this.publish();
  }

  publish() {
    if (!this.loaded) {
      if (this.error) this.onChange(null, this.error);
      return;
    }
    this.list = [...this.rows.values()].sort(byName);
    this.onChange(this.list, this.error);
  }

  close() {
    this.flush.cancel();
    this.fetchAllSoon.cancel();
  }
}

// The VMs for a page: {vms (null until the list came), error, reload}.
export function useVmRows() {
  const [state, setState] = useState({ vms: null, error: null, feed: null });
  useEffect(() => {
    const feed = new VmRows((vms, error) => setState({ vms, error, feed }));
    setState({ vms: null, error: null, feed });
    const unwatch = watch((ev) => feed.onEvent(ev));
    feed.reload();
    return () => {
      unwatch();
      feed.close();
    };
  }, []);
  return { vms: state.vms, error: state.error, reload: () => state.feed && state.feed.reload() };
}

// ui/src/vm_rows.js without a browser or a node: the VM list's rows kept
// from events, with the requests answered by the test in the order it
// chooses (node tests/ui/vm_rows_test.mjs; suite unit, ui/meson.build).
//   - a VM's change fetches that VM alone; a deletion fetches nothing;
//   - an older answer never replaces a newer row, nor brings back a VM
//     deleted meanwhile, also when the whole list comes back late;
//   - a rename moves the row to its place by name;
//   - facts without VMs, a reconnect, a node's change, or a burst of more
//     than 32 VMs fetch the whole list once.
import assert from 'node:assert/strict';
import { VmRows, rowOf } from '../../ui/src/vm_rows.js';

const vm = (n, extra = {}) => ({ name: `vm${n}`, uuid: `u${n}`, state: 'shut off', ...extra });

// A VmRows whose requests wait until the test answers them.
function harness() {
  const asked = []; // {path, resolve, reject}
  const seen = [];
  const rows = new VmRows((list, error) => seen.push({ list, error }), (path) =>
    new Promise((resolve, reject) => asked.push({ path, resolve, reject })));
  const answer = async (path, value) => {
    const i = asked.findIndex((a) => a.path === path);
    assert.ok(i >= 0, `no request for ${path} (asked: ${asked.map((a) => a.path)})`);
    const [a] = asked.splice(i, 1);
    if (value instanceof Error) a.reject(value);
    else a.resolve(value);
    await new Promise((r) => setTimeout(r, 0));
  };
  const names = () => seen.at(-1).list.map((v) => `${v.name}:${v.state}`).join(' ');
  return { rows, asked, answer, names, seen };
}

// Past the debounce (live.js: 150 ms), so that what was asked for is asked.
const settle = () => new Promise((r) => setTimeout(r, 200));
const notFound = Object.assign(new Error('not defined'), { status: 404 });
const change = (id, op = 'update') => ({ type: 'change', kind: 'vm', id, op });

async function ordering() {
  const h = harness();
  h.rows.reload();
  assert.deepEqual(h.asked.map((a) => a.path), ['/api/v1/vms']);
  // A change while the first list is on its way: after the list.
  h.rows.onEvent(change('u2'));
  await h.answer('/api/v1/vms', [vm(1), vm(2), vm(3)]);
  assert.equal(h.names(), 'vm1:shut off vm2:shut off vm3:shut off');
  h.rows.close();

  const g = harness();
  g.rows.reload();
  await g.answer('/api/v1/vms', [vm(1), vm(2), vm(3)]);
  // One VM's change: that VM alone, its details left out of the row.
  g.rows.onEvent(change('u2'));
  assert.deepEqual(g.asked.map((a) => a.path), ['/api/v1/vms/u2']);
  await g.answer('/api/v1/vms/u2', vm(2, { state: 'running', xml: '<domain/>', pending: [] }));
  assert.equal(g.names(), 'vm1:shut off vm2:running vm3:shut off');
  assert.equal(g.seen.at(-1).list[1].xml, undefined);
  // Facts about VMs: those VMs (after the debounce); facts about none: nothing.
  g.rows.onEvent({ type: 'facts', node: 'n1', vms: [] });
  g.rows.onEvent({ type: 'facts', node: 'n1', vms: ['u1', 'u3'] });
  await settle();
  assert.deepEqual(g.asked.map((a) => a.path).sort(), ['/api/v1/vms/u1', '/api/v1/vms/u3']);
  // Answered in reverse order, and u3's answer is older than its deletion.
  g.rows.onEvent(change('u3', 'delete'));
  assert.equal(g.names(), 'vm1:shut off vm2:running');
  await g.answer('/api/v1/vms/u3', vm(3, { state: 'running' }));
  await g.answer('/api/v1/vms/u1', vm(1, { state: 'paused' }));
  assert.equal(g.names(), 'vm1:paused vm2:running');
  await settle();
  g.rows.close();
}

async function lateList() {
  const h = harness();
  h.rows.reload();
  await h.answer('/api/v1/vms', [vm(1), vm(2)]);
  await settle();
  // A reconnect asks for the list; meanwhile vm2 changes, vm1 is deleted
  // and vm5 created, each answered before the (older) list comes back.
  h.rows.onEvent({ type: 'reload' });
  assert.deepEqual(h.asked.map((a) => a.path), ['/api/v1/vms']);
  h.rows.onEvent(change('u2'));
  h.rows.onEvent(change('u1', 'delete'));
  h.rows.onEvent(change('u5', 'create'));
  await settle();
  await h.answer('/api/v1/vms/u2', vm(2, { state: 'running' }));
  await h.answer('/api/v1/vms/u5', vm(5));
  assert.equal(h.names(), 'vm2:running vm5:shut off');
  await h.answer('/api/v1/vms', [vm(1), vm(2), vm(3)]);
  assert.equal(h.names(), 'vm2:running vm3:shut off vm5:shut off');
  // A rename: the row moves to its new name's place.
  h.rows.onEvent(change('u5'));
  await settle();
  await h.answer('/api/v1/vms/u5', vm(5, { name: 'a-first' }));
  assert.equal(h.names(), 'a-first:shut off vm2:running vm3:shut off');
  // Gone by the time it is fetched (404): its row goes.
  h.rows.onEvent(change('u3'));
  await settle();
  await h.answer('/api/v1/vms/u3', notFound);
  assert.equal(h.names(), 'a-first:shut off vm2:running');
  h.rows.close();
}

async function wholeList() {
  for (const ev of [{ type: 'facts', node: 'n2' }, { type: 'membership' }, { type: 'change', kind: 'node', id: 'x', op: 'update' }]) {
    const h = harness();
    h.rows.reload();
    await h.answer('/api/v1/vms', [vm(1)]);
    await settle();
    h.rows.onEvent(ev);
    assert.deepEqual(h.asked.map((a) => a.path), ['/api/v1/vms'], JSON.stringify(ev));
    await h.answer('/api/v1/vms', [vm(1, { state: 'running' })]);
    assert.equal(h.names(), 'vm1:running');
    h.rows.close();
  }
  // A burst of 40 VMs: one list, not 40 requests.
  const h = harness();
  h.rows.reload();
  await h.answer('/api/v1/vms', [vm(1)]);
  h.rows.onEvent(change('u1'));
  for (let i = 0; i < 40; i++) h.rows.onEvent(change(`u${100 + i}`, 'create'));
  await settle();
  assert.deepEqual(h.asked.map((a) => a.path), ['/api/v1/vms/u1', '/api/v1/vms']);
  h.rows.close();
  // Other kinds: nothing.
  const k = harness();
  k.rows.reload();
  await k.answer('/api/v1/vms', [vm(1)]);
  k.rows.onEvent({ type: 'change', kind: 'job', id: 'j', op: 'update' });
  assert.equal(k.asked.length, 0);
  k.rows.close();
}

assert.deepEqual(rowOf({ name: 'a', xml: 'x', hardware: {}, migration: {}, start_after_name: 'b', pending: [] }), { name: 'a' });
await ordering();
await lateList();
await wholeList();
console.log('vm_rows: ok');

// ui/src/levels.js without a browser (node tests/ui/levels_test.mjs; suite
// unit, ui/meson.build): the storage usage's colours on the dashboard and
// the Storage page are the alerts' levels, warning from 80 %, critical from
// 90 %; a storage's usage is the fullest view a node that reaches it has.
import assert from 'node:assert/strict';
import { level, storageUsage } from '../../ui/src/levels.js';

for (const [pct, want] of [
  [0, 'ok'],
  [79.99, 'ok'],
  [80, 'warning'],
  [89.99, 'warning'],
  [90, 'critical'],
  [100, 'critical'],
]) {
  assert.equal(level(pct), want, `${pct} %`);
}

const GiB = 1024 ** 3;
const s = {
  nodes: {
    n1: { ok: true, size: 100 * GiB, free: 25 * GiB },
    n2: { ok: true, size: 100 * GiB, free: 15 * GiB },
    n3: { ok: false, problem: 'not mounted' },
    n4: { ok: true, size: 0, free: 0 },
  },
};
const u = storageUsage(s);
assert.equal(u.node, 'n2');
assert.equal(u.pct, 85);
assert.equal(level(u.pct), 'warning');
assert.equal(storageUsage({ nodes: { n3: { ok: false } } }), null);
assert.equal(storageUsage({}), null);
console.log('ok: levels and storage usage');

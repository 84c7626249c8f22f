// Usage levels as the alerts have them (C25): warning from 80 %, critical
// from 90 %; and a storage's usage as the dashboard shows it.  Plain
// JavaScript, so that node tests it without a browser
// (tests/ui/levels_test.mjs).

export function level(pct) {
  if (pct >= 90) return 'critical';
  if (pct >= 80) return 'warning';
  return 'ok';
}

// The fullest view any node has of storage @s (a shared storage: all
// alike); nodes that do not reach it or say no size are left out.  null:
// no node reports it.
export function storageUsage(s) {
  let best = null;
  for (const [node, r] of Object.entries(s.nodes || {})) {
    if (!r.ok || !r.size) continue;
    const pct = ((r.size - r.free) / r.size) * 100;
    if (!best || pct > best.pct) best = { pct, node, size: r.size, free: r.free };
  }
  return best;
}

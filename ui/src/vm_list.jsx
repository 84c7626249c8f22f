import { Component } from 'preact';
import { useMemo, useRef, useState } from 'preact/hooks';
import { post } from './api.js';
import { useLive } from './hooks.js';
import { Link } from './router.jsx';
import { useVmRows } from './vm_rows.js';

const ROW_HEIGHT = 36; // px; every row alike, so the visible ones are known by arithmetic
const OVERSCAN = 8;
const MAX_PARALLEL = 4; // actions on many VMs: this many requests at once

// One VM's row.  Rendered again only when its VM (a new object after
// each change: vm_rows.js), its selection or its place changed: a scroll
// step renders the rows that came into view, not the 30 others, and a
// change of one VM renders that row alone.
class VmRow extends Component {
  shouldComponentUpdate(next) {
    const p = this.props;
    return next.vm !== p.vm || next.selected !== p.selected || next.index !== p.index;
  }

  render({ vm, index, selected, onToggle }) {
    return (
      <div class={`vm-row ${selected ? 'selected' : ''}`} style={{ transform: `translateY(${index * ROW_HEIGHT}px)` }} data-testid={`vm-row-${vm.name}`}>
        <span class="check">
          <input type="checkbox" checked={selected} onClick={(e) => onToggle(vm, index, e)} aria-label={`Select ${vm.name}`} />
        </span>
        <span class="name">
          <Link href={`/vms/${encodeURIComponent(vm.name)}`}>{vm.name}</Link>
        </span>
        <span class={`state ${vm.state.replace(' ', '-')}`} data-testid={`vm-state-${vm.name}`}>
          {vm.state}
          {vm.error ? ' ⚠' : ''}
        </span>
        <span class="node" data-testid={`vm-node-${vm.name}`}>{vm.node || '–'}</span>
        <span class="ha">{vm.ha ? 'HA' : ''}</span>
        <span class="num">{vm.vcpus}</span>
        <span class="num">{vm.memory_mib} MiB</span>
        <span class="group">{vm.group || ''}</span>
      </div>
    );
  }
}

// Only the rows in view (and a few around them) are in the DOM: 1,000 or
// 10,000 VMs scroll like 30.  The scroll position is kept as the first
// row in view: a scroll within a row renders nothing.
function VirtualRows({ items, height, selected, onToggle }) {
  const [first, setFirst] = useState(0);
  const from = Math.max(0, first - OVERSCAN);
  const to = Math.min(items.length, first + Math.ceil(height / ROW_HEIGHT) + 1 + OVERSCAN);
  const rows = [];
  for (let i = from; i < to; i++) {
    const vm = items[i];
    rows.push(<VmRow key={vm.uuid} vm={vm} index={i} selected={selected.has(vm.uuid)} onToggle={onToggle} />);
  }
  return (
    <div class="scroller" style={{ height: `${height}px` }} onScroll={(e) => setFirst(Math.floor(e.currentTarget.scrollTop / ROW_HEIGHT))} data-testid="vm-scroller">
      <div class="spacer" style={{ height: `${items.length * ROW_HEIGHT}px` }}>
        {rows}
      </div>
    </div>
  );
}

const STATES = ['all', 'running', 'paused', 'shut off', 'other'];

function matches(vm, query, state, node, ha, group, pool) {
  if (query) {
    const q = query.toLowerCase();
    const hay = `${vm.name} ${vm.node || ''} ${vm.group || ''} ${vm.pool || ''}`.toLowerCase();
    if (!hay.includes(q)) return false;
  }
  if (state !== 'all') {
    const known = ['running', 'paused', 'shut off'];
    if (state === 'other' ? known.includes(vm.state) : vm.state !== state) return false;
  }
  if (node !== 'all' && vm.node !== node) return false;
  if (ha === 'ha' && !vm.ha) return false;
  if (ha === 'not-ha' && vm.ha) return false;
  if (group !== 'all' && (vm.group || '') !== group) return false;
  if (pool !== 'all' && (vm.pool || '') !== pool) return false;
  return true;
}

// Run fn on each item, MAX_PARALLEL at a time; the failures, by item.
async function eachLimited(items, fn) {
  const failures = [];
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const item = items[next++];
      try {
        await fn(item);
      } catch (e) {
        failures.push({ item, message: e.message });
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(MAX_PARALLEL, items.length) }, worker));
  return failures;
}

export function VmList() {
  // The VMs one at a time as they change (vm_rows.js); the nodes for the
  // filters.
  const { vms: rows, error, reload } = useVmRows();
  const { data: nodeData } = useLive(['/api/v1/nodes'], ['node', 'membership']);
  const [query, setQuery] = useState('');
  const [state, setState] = useState('all');
  const [node, setNode] = useState('all');
  const [ha, setHa] = useState('all');
  const [group, setGroup] = useState('all');
  const [pool, setPool] = useState('all');
  const [selected, setSelected] = useState(new Set());
  const [target, setTarget] = useState('');
  const [busy, setBusy] = useState(null);
  const [outcome, setOutcome] = useState(null); // { ok, failures: [{item, message}] }
  const lastClicked = useRef(null);

  const vms = rows || [];
  const nodes = nodeData ? nodeData[0] : [];
  const shown = useMemo(() => vms.filter((vm) => matches(vm, query, state, node, ha, group, pool)), [vms, query, state, node, ha, group, pool]);
  const groups = useMemo(() => [...new Set(vms.map((vm) => vm.group || ''))].sort(), [vms]);
  const pools = useMemo(() => [...new Set(vms.map((vm) => vm.pool || ''))].sort(), [vms]);
  const chosen = vms.filter((vm) => selected.has(vm.uuid));

  // The same function at every render (the rows' props do not change by
  // it), reading the state of the latest render.
  const latest = useRef(null);
  latest.current = { selected, shown };
  const toggle = useMemo(
    () => (vm, index, e) => {
      const { selected: was, shown: list } = latest.current;
      const next = new Set(was);
      if (e.shiftKey && lastClicked.current !== null) {
        const [a, b] = [Math.min(lastClicked.current, index), Math.max(lastClicked.current, index)];
        for (let i = a; i <= b; i++) next.add(list[i].uuid);
      } else if (next.has(vm.uuid)) next.delete(vm.uuid);
      else next.add(vm.uuid);
      lastClicked.current = index;
      setSelected(next);
    },
    [],
  );
  const allShownSelected = shown.length > 0 && shown.every((vm) => selected.has(vm.uuid));
  const toggleAll = () => setSelected(allShownSelected ? new Set() : new Set(shown.map((vm) => vm.uuid)));

  const act = async (label, fn) => {
    setBusy(label);
    setOutcome(null);
    const failures = await eachLimited(chosen, fn);
    setBusy(null);
    setOutcome({ label, ok: chosen.length - failures.length, failures });
    reload();
  };
  const start = () => act('start', (vm) => post(`/api/v1/vms/${encodeURIComponent(vm.name)}/start`));
  const stop = () => act('shut down', (vm) => post(`/api/v1/vms/${encodeURIComponent(vm.name)}/shutdown`));
  const powerOff = () => act('power off', (vm) => post(`/api/v1/vms/${encodeURIComponent(vm.name)}/destroy`));
  const migrate = () =>
    act('migrate', (vm) => post(`/api/v1/vms/${encodeURIComponent(vm.name)}/migrate`, target ? { node: target } : {}));

  const height = Math.max(240, window.innerHeight - 300);
  return (
    <div class="vm-list">
      <h1>
        Virtual machines <span class="muted" data-testid="vm-count">{`${shown.length} of ${vms.length}`}</span>
      </h1>
      {error && (
        <div class="error" role="alert">
          {error.message}
        </div>
      )}
      <div class="toolbar">
        <input type="search" placeholder="Search name, node, group, pool" value={query} onInput={(e) => setQuery(e.target.value)} data-testid="vm-search" />
        <select value={state} onChange={(e) => setState(e.target.value)} data-testid="vm-filter-state" aria-label="State">
          {STATES.map((s) => (
            <option value={s}>{s === 'all' ? 'any state' : s}</option>
          ))}
        </select>
        <select value={node} onChange={(e) => setNode(e.target.value)} data-testid="vm-filter-node" aria-label="Node">
          <option value="all">any node</option>
          {nodes.map((n) => (
            <option value={n.name}>{n.name}</option>
          ))}
        </select>
        <select value={ha} onChange={(e) => setHa(e.target.value)} data-testid="vm-filter-ha" aria-label="HA">
          <option value="all">HA or not</option>
          <option value="ha">HA only</option>
          <option value="not-ha">not HA</option>
        </select>
        <select value={group} onChange={(e) => setGroup(e.target.value)} data-testid="vm-filter-group" aria-label="Group">
          <option value="all">any group</option>
          {groups.map((g) => (
            <option value={g}>{g || '(no group)'}</option>
          ))}
        </select>
        <select value={pool} onChange={(e) => setPool(e.target.value)} data-testid="vm-filter-pool" aria-label="Pool">
          <option value="all">any pool</option>
          {pools.map((p) => (
            <option value={p}>{p || '(no pool)'}</option>
          ))}
        </select>
        <Link href="/vms/new" class="button" data-testid="vm-new">
          New VM
        </Link>
        <Link href="/history" data-testid="vm-history-all">
          History of every VM
        </Link>
      </div>
      <div class="toolbar actions">
        <span data-testid="vm-selected">{chosen.length} selected</span>
        <button onClick={start} disabled={!chosen.length || busy} data-testid="vm-start">
          Start
        </button>
        <button onClick={stop} disabled={!chosen.length || busy} data-testid="vm-stop">
          Shut down
        </button>
        <button onClick={powerOff} disabled={!chosen.length || busy} data-testid="vm-poweroff">
          Power off
        </button>
        <input list="vm-nodes" placeholder="target node (or the best)" value={target} onInput={(e) => setTarget(e.target.value)} data-testid="vm-target" />
        <datalist id="vm-nodes">
          {nodes.map((n) => (
            <option value={n.name} />
          ))}
        </datalist>
        <button onClick={migrate} disabled={!chosen.length || busy} data-testid="vm-migrate">
          Migrate
        </button>
        {busy && <span class="muted">{busy}…</span>}
      </div>
      {outcome && (
        <div class={outcome.failures.length ? 'error' : 'success'} role={outcome.failures.length ? 'alert' : 'status'} data-testid="vm-outcome">
          {outcome.ok > 0 && <div>{`${outcome.label}: ${outcome.ok} VM${outcome.ok === 1 ? '' : 's'} done.`}</div>}
          {outcome.failures.map((f) => (
            <div>
              <strong>{f.item.name}</strong>: {f.message}
            </div>
          ))}
        </div>
      )}
      <div class="vm-table">
        <div class="vm-row head">
          <span class="check">
            <input type="checkbox" checked={allShownSelected} onChange={toggleAll} aria-label="Select all shown" data-testid="vm-select-all" />
          </span>
          <span class="name">Name</span>
          <span class="state">State</span>
          <span class="node">Node</span>
          <span class="ha">HA</span>
          <span class="num">vCPUs</span>
          <span class="num">RAM</span>
          <span class="group">Group</span>
        </div>
        <VirtualRows items={shown} height={height} selected={selected} onToggle={toggle} />
      </div>
    </div>
  );
}

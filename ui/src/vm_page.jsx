import { useState } from 'preact/hooks';
import { api, post } from './api.js';
import { useLive } from './hooks.js';
import { Link, navigate } from './router.jsx';
import { VmForm } from './vm_form.jsx';
import { Console } from './console.jsx';
import { VmDefine, VmXml } from './vm_xml.jsx';

// One VM's pages: /vms/new (the create form), /vms/NAME (details and
// actions), /vms/NAME/edit, /vms/NAME/xml, /vms/NAME/history,
// /vms/NAME/console; /history: every VM's versions, deleted VMs' too.

const vmPath = (name, rest = '') => `/api/v1/vms/${encodeURIComponent(name)}${rest}`;
const uiPath = (name, rest = '') => `/vms/${encodeURIComponent(name)}${rest}`;

export function vmRoute(path) {
  const m = /^\/vms\/([^/]+)(?:\/(edit|xml|history|console))?$/.exec(path);
  if (!m) return null;
  return { name: decodeURIComponent(m[1]), tab: m[2] || 'details' };
}

export function VmNew() {
  return (
    <div class="vm-page">
      <h1>New virtual machine</h1>
      <p class="muted">As `herd vm create`: herd makes the libvirt domain XML from the hardware.</p>
      <VmForm vm={null} onDone={(vm) => navigate(uiPath(vm.name))} onCancel={() => navigate('/vms')} />
      <h2>From libvirt domain XML</h2>
      <VmDefine onDone={(vm) => navigate(uiPath(vm.name))} />
    </div>
  );
}

const ACTIONS = [
  ['start', 'Start', (vm) => vm.target !== 'running' || vm.state === 'shut off'],
  ['shutdown', 'Shut down', (vm) => vm.target === 'running' || vm.node],
  ['destroy', 'Power off', (vm) => vm.target === 'running' || vm.node],
  ['reboot', 'Reboot', (vm) => vm.state === 'running'],
  ['reset', 'Reset', (vm) => vm.state === 'running'],
  ['suspend', 'Pause', (vm) => vm.state === 'running'],
  ['resume', 'Resume', (vm) => vm.state === 'paused'],
];

function Details({ vm }) {
  const hw = vm.hardware;
  const row = (label, value, id) => (
    <tr>
      <th>{label}</th>
      <td data-testid={id}>{value === null || value === undefined || value === '' ? '–' : value}</td>
    </tr>
  );
  return (
    <div class="cards">
      <table class="props">
        <tbody>
          {row('State', vm.state + (vm.error ? ` (${vm.error})` : ''), 'vm-state')}
          {row('Node', vm.node, 'vm-node')}
          {row('Wanted', vm.target)}
          {vm.migration && row('Migration', `${vm.migration.percent ?? ''} % to ${vm.migration.to || vm.move_to || '?'}`, 'vm-migration')}
          {row('Uptime', vm.uptime_s !== undefined ? `${vm.uptime_s} s` : null)}
          {row('Memory', `${vm.memory_mib} MiB`, 'vm-memory')}
          {row('vCPUs', vm.vcpus, 'vm-vcpus')}
          {row('HA', vm.ha ? 'yes' : 'no', 'vm-ha')}
          {row('Preferred node', vm.preferred)}
          {row('Bound to node (sticky)', vm.sticky, 'vm-sticky')}
          {row('Node set', (vm.nodes || []).map((n) => `${n.node}:${n.priority}`).join(', ') + (vm.restricted ? ' (only these)' : ''))}
          {row('Group', vm.group)}
          {row('Pool', vm.pool)}
          {row('Restart priority', vm.restart_priority)}
          {row('Start after', vm.start_after_name || vm.start_after)}
          {row('Configuration version', vm.version, 'vm-version')}
          {row('UUID', vm.uuid)}
        </tbody>
      </table>
      {hw && (
        <table class="props">
          <tbody>
            {row('Disks', hw.disks.map((d) => `${d.name || d.disk} (${d.bus})`).join(', '), 'vm-disks')}
            {row('NICs', hw.nics.map((n) => `${n.network_name || n.network} ${n.model} ${n.mac}`).join(', '), 'vm-nics')}
            {row('CD-ROM', hw.cdrom)}
            {row('Floppy', hw.floppy)}
            {row('Firmware', hw.firmware)}
            {row('Boot order', hw.boot)}
          </tbody>
        </table>
      )}
      {vm.pending && vm.pending.length > 0 && (
        <div class="warning" data-testid="vm-pending">
          At its next start: {vm.pending.map((p) => (typeof p === 'string' ? p : JSON.stringify(p))).join('; ')}
        </div>
      )}
    </div>
  );
}

function History({ vm, reload }) {
  const { data, error } = useLive([vmPath(vm.name, '/history')], ['vm']);
  const [message, setMessage] = useState(null);
  // Without force first: over an existing VM the server says what it would
  // overwrite, and the user confirms with force.
  const restore = async (version, force) => {
    setMessage(null);
    try {
      const out = await post(vmPath(vm.name, '/restore'), force ? { version, force } : { version });
      setMessage({ ok: true, text: `Version ${version} restored: VM ${out.name} is now at configuration version ${out.version}.` });
      reload();
    } catch (e) {
      setMessage({ ok: false, text: e.message, force: !force && e.status === 409 ? version : null });
    }
  };
  const list = data ? data[0] : [];
  return (
    <div>
      {error && <div class="error">{error.message}</div>}
      {message && (
        <div class={message.ok ? 'success' : 'error'} role={message.ok ? 'status' : 'alert'} data-testid="history-outcome">
          {message.text}
        </div>
      )}
      {message && message.force && (
        <button class="danger" onClick={() => restore(message.force, true)} data-testid="restore-force">
          {`Overwrite VM ${vm.name} with version ${message.force}`}
        </button>
      )}
      <table class="list" data-testid="vm-history">
        <thead>
          <tr>
            <th>Version</th>
            <th>When</th>
            <th>Change</th>
            <th>By</th>
            <th>From node</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {list.map((h) => (
            <tr data-testid={`history-${h.version}`}>
              <td>{h.version}</td>
              <td>{h.time_ms ? new Date(h.time_ms).toLocaleString() : ''}</td>
              <td>{h.change}</td>
              <td>{h.user || ''}</td>
              <td>{h.origin || ''}</td>
              <td>
                {h.version !== vm.version && h.change !== 'undefined' && (
                  <button class="secondary" onClick={() => restore(h.version)} data-testid={`restore-${h.version}`}>
                    Restore
                  </button>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

export function VmPage({ name, tab }) {
  const { data, error, reload } = useLive([vmPath(name), '/api/v1/nodes'], ['vm', 'node', 'membership']);
  const [busy, setBusy] = useState(null);
  const [outcome, setOutcome] = useState(null);
  const [target, setTarget] = useState('');
  // Gone (404): not the last VM seen, which the failed refetch keeps.
  const vm = data && !(error && error.status === 404) ? data[0] : null;
  const nodes = data ? data[1] : [];

  const act = async (op, body) => {
    setBusy(op);
    setOutcome(null);
    try {
      const out = await post(vmPath(name, `/${op}`), body);
      setOutcome({ ok: true, text: `${op}: VM ${name} is ${out.state || 'done'}${out.node ? ` on node ${out.node}` : ''}.` });
    } catch (e) {
      setOutcome({ ok: false, text: e.message });
    }
    setBusy(null);
    reload();
  };
  const [confirming, setConfirming] = useState(false);
  const remove = async () => {
    setConfirming(false);
    setBusy('delete');
    try {
      await api('DELETE', vmPath(name));
      navigate('/vms');
    } catch (e) {
      setOutcome({ ok: false, text: e.message });
      setBusy(null);
    }
  };

  if (!vm) {
    const gone = error && error.status === 404;
    return (
      <div class="vm-page">
        <h1>{name}</h1>
        {error ? (
          <div class="error" role="alert" data-testid="vm-error">
            {gone ? `${error.message} ` : error.message}
            {gone && <Link href={uiPath(name, '/history')}>Its history</Link>}
          </div>
        ) : (
          <div class="loading">Loading…</div>
        )}
        {gone && tab === 'history' && <History vm={{ name, version: -1 }} reload={reload} />}
        {/* A console of its own (a new key): it says the VM is gone. */}
        {tab === 'console' && <Console key="gone" vm={name} />}
      </div>
    );
  }
  const tabLink = (t, label) => (
    <Link href={uiPath(name, t === 'details' ? '' : `/${t}`)} class={tab === t ? 'active' : ''} data-testid={`tab-${t}`}>
      {label}
    </Link>
  );
  return (
    <div class="vm-page">
      <h1>
        <Link href="/vms">Virtual machines</Link> / {vm.name} <span class={`state ${vm.state.replace(' ', '-')}`}>{vm.state}</span>
      </h1>
      {error && <div class="error">{error.message}</div>}
      <div class="toolbar actions">
        {ACTIONS.map(([op, label, when]) => (
          <button onClick={() => act(op)} disabled={!!busy || !when(vm)} data-testid={`vm-${op}`}>
            {label}
          </button>
        ))}
        <select value={target === vm.node ? '' : target} onChange={(e) => setTarget(e.target.value)} data-testid="vm-target" aria-label="Migrate to">
          <option value="">best node</option>
          {nodes.filter((n) => n.name !== vm.node).map((n) => (
            <option value={n.name}>{n.name}</option>
          ))}
        </select>
        <button onClick={() => act('migrate', target ? { node: target, wait: true } : { wait: true })} disabled={!!busy || vm.state !== 'running'} data-testid="vm-migrate">
          Migrate live
        </button>
        {vm.sticky && (
          <button onClick={() => act('release')} disabled={!!busy} data-testid="vm-release" title={`herd vm release: VM ${vm.name} is bound to node ${vm.sticky}`}>
            {`Release from ${vm.sticky}`}
          </button>
        )}
        {confirming ? (
          <>
            <button class="danger" onClick={remove} data-testid="vm-delete-confirm">
              {`Delete VM ${vm.name} (its configuration stays in the history)`}
            </button>
            <button class="secondary" onClick={() => setConfirming(false)}>
              Keep it
            </button>
          </>
        ) : (
          <button class="danger" onClick={() => setConfirming(true)} disabled={!!busy} data-testid="vm-delete">
            Delete
          </button>
        )}
        {busy && <span class="muted">{busy}…</span>}
      </div>
      {outcome && (
        <div class={outcome.ok ? 'success' : 'error'} role={outcome.ok ? 'status' : 'alert'} data-testid="vm-outcome">
          {outcome.text}
        </div>
      )}
      <nav class="tabs">
        {tabLink('details', 'Details')}
        {tabLink('edit', 'Edit')}
        {tabLink('xml', 'XML')}
        {tabLink('history', 'History')}
        {tabLink('console', 'Console')}
      </nav>
      {tab === 'details' && <Details vm={vm} />}
      {tab === 'edit' && <VmForm key={vm.version} vm={vm} onDone={() => { reload(); navigate(uiPath(name)); }} onCancel={() => navigate(uiPath(name))} />}
      {tab === 'xml' && <VmXml vm={vm} onDefined={() => reload()} />}
      {tab === 'history' && <History vm={vm} reload={reload} />}
      {tab === 'console' && <Console key="vm" vm={vm.name} />}
    </div>
  );
}

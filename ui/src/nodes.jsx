import { api, post } from './api.js';
import { useLive } from './hooks.js';
import { Link } from './router.jsx';
import { Action, Bar, Form, Loading, Page, Section, enc, when } from './forms.jsx';
import { WhatIf } from './simulate.jsx';

// The nodes (herd node list|show|standby|maintenance|online|switchover|
// fence|confirm-down|set|remove, herd simulate): each node's state, mode,
// CPU and RAM use, links, and what if some went down; on a node's own page
// what can be done to it.

export function nodeState(n) {
  if (n.online) return 'online';
  if (n.down) return `down (${n.down.how})`;
  return n.alive ? 'herd not running' : 'lost';
}

// CPU use as the 1-minute load average over the node's CPUs, in %.
export function cpuPct(n) {
  const r = n.herd && n.herd.resources;
  if (!r || r.load_x100 === null || r.load_x100 === undefined || !r.cpus) return null;
  return Math.min(100, r.load_x100 / r.cpus);
}

export function ramPct(n) {
  const r = n.herd && n.herd.resources;
  return r && r.memory_mib ? ((r.memory_mib - r.free_mib) / r.memory_mib) * 100 : null;
}

function modeSentence(r, node, mode) {
  const job = r && r.job ? ` Job ${r.job.name}: ${r.job.last || 'its VMs move'}` : '';
  return `Node ${node} is in ${mode} mode.${job}`;
}

function NodeActions({ n, nodes }) {
  const others = nodes.filter((o) => o.name !== n.name).map((o) => o.name);
  return (
    <>
      <Section title="Mode" testid="node-mode-section">
        <p class="muted">
          Standby: its VMs move away, live, and it takes no new ones. Maintenance: the same, and herd stops managing
          it. Online: it runs VMs again, and those that left it come back, live.
        </p>
        <div class="toolbar">
          {['standby', 'maintenance', 'online'].map((m) => (
            <Action
              testid={`node-set-${m}`}
              label={m === 'online' ? 'Online' : m === 'standby' ? 'Standby' : 'Maintenance'}
              secondary={n.mode === m}
              run={async () => modeSentence(await post(`/api/v1/nodes/${enc(n.name)}/mode`, { mode: m }), n.name, m)}
            />
          ))}
        </div>
        <Form
          testid="node-mode-cold"
          label="Apply"
          fields={[
            { key: 'mode', label: 'Mode', type: 'select', options: ['standby', 'maintenance'] },
            { key: 'allow_cold', label: 'VMs that cannot migrate live may be shut down and started elsewhere', type: 'checkbox' },
          ]}
          submit={async (v) => modeSentence(await post(`/api/v1/nodes/${enc(n.name)}/mode`, { mode: v.mode, allow_cold: v.allow_cold }), n.name, v.mode)}
        />
      </Section>
      <Section title="Switchover" testid="node-switchover-section">
        <p class="muted">Move its VMs to one other node (live where they can).</p>
        <Form
          testid="node-switchover"
          label="Switch over"
          fields={[
            { key: 'to', label: 'To node', type: 'select', options: others, names: ['node'] },
            { key: 'allow_cold', label: 'Allow cold moves', type: 'checkbox', names: ['allow_cold'] },
          ]}
          submit={async (v) => {
            const r = await post(`/api/v1/nodes/${enc(n.name)}/switchover`, { to: v.to, allow_cold: v.allow_cold });
            const moving = (r.moving || []).length;
            const staying = (r.staying || []).map((s) => `${s.vm} (${s.reason})`);
            return `${moving} VM(s) move from ${r.from} to ${r.to}.${staying.length ? ` Staying: ${staying.join(', ')}.` : ''}`;
          }}
        />
      </Section>
      <Section title="Fencing" testid="node-fence-section">
        <p class="muted">
          Fence: power the node off through its fence device now. Confirm down: say that a node which is powered off is
          down, so that its VMs start elsewhere (only when no fence device can).
        </p>
        <div class="toolbar">
          <Action
            testid="node-fence"
            label="Fence now"
            confirm={`Power off node ${n.name}?`}
            run={async () => {
              await post(`/api/v1/nodes/${enc(n.name)}/fence`);
              return `Node ${n.name} was fenced.`;
            }}
          />
          <Action
            testid="node-confirm-down"
            label="Confirm down"
            confirm={`Is node ${n.name} really powered off?`}
            run={async () => {
              await post(`/api/v1/nodes/${enc(n.name)}/confirm-down`);
              return `Node ${n.name} is confirmed down.`;
            }}
          />
        </div>
        <table>
          <thead>
            <tr>
              <th>When</th>
              <th>Result</th>
              <th>By</th>
              <th>Device</th>
              <th>Detail</th>
            </tr>
          </thead>
          <tbody>
            {(n.fence_history || []).map((f) => (
              <tr>
                <td>{when(f.time_ms)}</td>
                <td class={f.ok ? 'good' : 'bad'}>{f.ok ? 'fenced' : 'failed'}</td>
                <td>{f.by}</td>
                <td>{f.device}</td>
                <td>{f.detail}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </Section>
      <Section title="Settings" testid="node-settings-section">
        <Form
          testid="node-storage-address"
          label="Save"
          fields={[{ key: 'storage_address', label: 'Storage address (eSAN replication; empty: its first link)', value: n.storage_address || '', names: ['address'] }]}
          submit={async (v) => {
            await api('PUT', `/api/v1/nodes/${enc(n.name)}`, { storage_address: v.storage_address || null });
            return 'Saved.';
          }}
        />
        <Action
          testid="node-remove"
          label="Remove from the cluster"
          confirm={`Remove node ${n.name} from the cluster?`}
          run={async () => {
            await api('DELETE', `/api/v1/nodes/${enc(n.name)}`);
            return `Node ${n.name} was removed.`;
          }}
        />
      </Section>
    </>
  );
}

function Gauge({ pct, testid, label }) {
  return pct === null ? <span class="muted">–</span> : <Bar pct={pct} testid={testid} label={label} />;
}

// "100 % · load 5.31": the figure under the cap.
export function loadLabel(n) {
  const pct = cpuPct(n);
  return pct === null ? null : `${Math.round(pct)} % · load ${(n.herd.resources.load_x100 / 100).toFixed(2)}`;
}

export function NodeList() {
  const { data, error } = useLive(['/api/v1/nodes'], ['node', 'membership', 'facts'], 10000);
  if (!data) return <Loading error={error} />;
  const [nodes] = data;
  return (
    <Page title="Nodes" testid="page-nodes" error={error}>
      <table class="nodes panel">
        <thead>
          <tr>
            <th>Node</th>
            <th>State</th>
            <th>Mode</th>
            <th>CPUs</th>
            <th>CPU (load)</th>
            <th>RAM</th>
            <th>VMs</th>
            <th>Links</th>
          </tr>
        </thead>
        <tbody>
          {nodes.map((n) => (
            <tr data-testid={`nodes-row-${n.name}`} class={n.online ? '' : 'lost'}>
              <td class="name">
                <Link href={`/nodes/${enc(n.name)}`}>{n.name}</Link>
              </td>
              <td data-testid={`nodes-${n.name}-state`}>{nodeState(n)}</td>
              <td data-testid={`nodes-${n.name}-mode`}>{n.mode}</td>
              <td>{n.herd ? n.herd.resources.cpus : '–'}</td>
              <td class="gauge">
                <Gauge pct={cpuPct(n)} label={loadLabel(n)} />
              </td>
              <td class="gauge">
                <Gauge pct={ramPct(n)} />
              </td>
              <td>{n.herd ? n.herd.vms.length : '–'}</td>
              <td>
                {(n.links || []).map((l) => (
                  <span class={`link ${l.state}`} title={l.address}>{`link ${l.link}: ${l.state}`}</span>
                ))}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <WhatIf nodes={nodes} />
    </Page>
  );
}

export function NodePage({ name }) {
  const { data, error } = useLive(['/api/v1/nodes'], ['node', 'membership', 'job', 'facts'], 10000);
  if (!data) return <Loading error={error} />;
  const [nodes] = data;
  const n = nodes.find((x) => x.name === name);
  if (!n)
    return (
      <Page title={`Node ${name}`} error={error}>
        <div class="error">There is no node {name}.</div>
      </Page>
    );
  const r = n.herd && n.herd.resources;
  return (
    <Page title={`Node ${n.name}`} testid="page-node" error={error}>
      <Section title="State" testid="node-state-section">
        <div class="kv">
          <span>State</span>
          <strong data-testid="node-state">{nodeState(n)}</strong>
          <span>Mode</span>
          <strong data-testid="node-mode">{n.mode}</strong>
          <span>Node id</span>
          <strong>{n.nodeid}</strong>
          <span>CPUs, load</span>
          <strong data-testid="node-load">{r ? `${r.cpus} CPUs, load ${r.load_x100 === null ? 'unknown' : (r.load_x100 / 100).toFixed(2)}` : '–'}</strong>
          <span>RAM</span>
          <strong>{r ? `${r.memory_mib - r.free_mib} of ${r.memory_mib} MiB in use` : '–'}</strong>
          <span>VMs running</span>
          <strong>{n.herd ? n.herd.vms.length : '–'}</strong>
          <span>Live migration</span>
          <strong>{n.herd ? (n.herd.migration_ready ? 'ready' : n.herd.migration_problem || 'not known yet') : '–'}</strong>
          {n.down && (
            <>
              <span>Down</span>
              <strong class="bad">{`${n.down.how} by ${n.down.by}, ${when(n.down.time_ms)}`}</strong>
            </>
          )}
        </div>
      </Section>
      <NodeActions n={n} nodes={nodes} />
    </Page>
  );
}

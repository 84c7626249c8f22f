import { useLiveEach } from './hooks.js';
import { Link } from './router.jsx';
import { Bar, bytes, level } from './forms.jsx';
import { storageUsage } from './levels.js';
import { cpuPct, loadLabel, nodeState, ramPct } from './nodes.jsx';


function Card({ title, state, children, testid }) {
  return (
    <section class={`card ${state || ''}`} data-testid={testid}>
      <h2>
        <span class={`dot ${state || 'ok'}`} />
        {title}
      </h2>
      {children}
    </section>
  );
}

function Figure({ label, value, testid }) {
  return (
    <div class="figure">
      <span class="value" data-testid={testid}>
        {value}
      </span>
      <span class="label">{label}</span>
    </div>
  );
}

function NodeRow({ n }) {
  const res = n.herd && n.herd.resources;
  const ram = ramPct(n);
  const cpu = cpuPct(n);
  return (
    <tr data-testid={`node-${n.name}`} class={n.online ? '' : 'lost'}>
      <td class="name">
        <Link href={`/nodes/${encodeURIComponent(n.name)}`}>{n.name}</Link>
      </td>
      <td data-testid={`node-${n.name}-state`}>
        <span class={`dot ${n.online ? 'ok' : 'critical'}`} />
        {nodeState(n)}
      </td>
      <td data-testid={`node-${n.name}-mode`}>{n.mode}</td>
      <td>{res ? `${res.cpus} CPUs` : '–'}</td>
      <td class="gauge">
        {cpu === null ? '–' : <Bar pct={cpu} label={loadLabel(n)} testid={`node-${n.name}-cpu`} />}
      </td>
      <td class="gauge">{ram === null ? '–' : <Bar pct={ram} testid={`node-${n.name}-ram`} />}</td>
      <td class="links">
        {(n.links || []).map((l) => (
          <span class={`link ${l.state}`} title={l.address}>
            {`link ${l.link}: ${l.state}`}
          </span>
        ))}
      </td>
    </tr>
  );
}


const SEVERITIES = ['critical', 'warning', 'info'];
const DASHBOARD_PARTS = [
  // The VMs' figures, the nodes and their links, the coordinator, HA paused.
  { path: '/api/v1/status', kinds: ['vm', 'node', 'cluster', 'membership', 'facts'] },
  // Each node's reach of each storage is in its facts (the usage moves
  // without an event: the refresh).
  { path: '/api/v1/storage', kinds: ['storage', 'membership', 'facts'] },
  { path: '/api/v1/alerts', kinds: ['alert'] },
  { path: '/api/v1/jobs', kinds: ['job'] },
];

export function Dashboard() {
  // Each part fetched again only for the events that change it (a VM's
  // change or a job's progress does not fetch the storages or the alerts).
  const { data, error } = useLiveEach(DASHBOARD_PARTS, 10000);
  if (!data) {
    return error ? (
      <div class="error" role="alert">
        {error.message}
      </div>
    ) : (
      <div class="loading">Loading…</div>
    );
  }
  const [status, storages, alerts, jobs] = data;
  const cluster = status.cluster;
  if (!cluster) return <div class="notice">This node is in no cluster yet (herd cluster create).</div>;
  const nodes = cluster.nodes || [];
  const online = nodes.filter((n) => n.online).length;
  const vms = status.vms || {};
  const quorate = cluster.quorum && cluster.quorum.quorate;
  const bySeverity = Object.fromEntries(SEVERITIES.map((s) => [s, alerts.filter((a) => a.severity === s)]));
  const alertState = bySeverity.critical.length ? 'critical' : bySeverity.warning.length ? 'warning' : 'ok';
  const usages = storages.map((s) => ({ s, u: storageUsage(s) }));
  const levels = usages.filter(({ u }) => u).map(({ u }) => level(u.pct));
  const worst = levels.includes('critical') ? 'critical' : levels.includes('warning') ? 'warning' : 'ok';
  return (
    <div class="dashboard">
      {error && (
        <div class="error" role="alert">
          {error.message}
        </div>
      )}
      <h1>
        Cluster <span data-testid="cluster-name">{cluster.name}</span>
        <span class="muted"> · served by {status.node.name}</span>
      </h1>
      <div class="cards">
        <Card title="High availability" state={online === nodes.length && quorate ? 'ok' : 'critical'} testid="card-ha">
          <Figure label="nodes active" value={`${online} of ${nodes.length}`} testid="nodes-active" />
          <Figure label="HA VMs running" value={`${vms.ha_running ?? 0}/${vms.ha ?? 0}`} testid="ha-running" />
          <div class="kv">
            <span>Quorum</span>
            <strong data-testid="quorum" class={quorate ? 'good' : 'bad'}>
              {quorate ? 'quorate' : 'NOT quorate'}
            </strong>
            <span>Coordinator</span>
            <strong data-testid="coordinator">{(status.ha && status.ha.coordinator) || '–'}</strong>
          </div>
          {status.ha_paused && <div class="notice">HA is paused.</div>}
          {(status.unfenced_lost_nodes || []).map((n) => (
            <div class="error">Node {n} is lost and not fenced.</div>
          ))}
        </Card>
        <Card title="Virtual machines" testid="card-vms">
          <Figure label="configured" value={vms.defined} testid="vms-defined" />
          <Figure label="running" value={vms.running} testid="vms-running" />
          <Figure label="paused" value={vms.paused ?? 0} testid="vms-paused" />
          <Link href="/vms">All VMs →</Link>
        </Card>
        <Card title="Alerts" state={alertState} testid="card-alerts">
          {SEVERITIES.map((s) => (
            <Figure label={s} value={bySeverity[s].length} testid={`alerts-${s}`} />
          ))}
          <ul class="alerts">
            {alerts.slice(0, 5).map((a) => (
              <li class={a.severity}>{a.message}</li>
            ))}
          </ul>
          <Link href="/alerts">All alerts →</Link>
        </Card>
        <Card title="Jobs" testid="card-jobs">
          <Figure label="running" value={jobs.length} testid="jobs-running" />
          <ul class="jobs">
            {jobs.slice(0, 5).map((j) => (
              <li>
                <Link href={`/jobs/${encodeURIComponent(j.name)}`}>{`${j.kind} ${j.target}${j.to ? ` → ${j.to}` : ''}`}</Link>
                <Bar pct={j.progress} testid={`job-${j.name}-bar`} />
              </li>
            ))}
          </ul>
          <Link href="/jobs">All jobs →</Link>
        </Card>
        <Card title="Storage" state={worst} testid="card-storage">
          {usages.length === 0 && <p class="muted">No storage defined.</p>}
          <table class="storage">
            {usages.map(({ s, u }) => (
              <tr data-testid={`storage-${s.name}`}>
                <td class="name">{s.name}</td>
                <td class="gauge">{u ? <Bar pct={u.pct} testid={`storage-${s.name}-usage`} /> : <span class="muted">not reported</span>}</td>
                <td class="muted">{u ? `${bytes(u.size - u.free)} of ${bytes(u.size)}` : ''}</td>
              </tr>
            ))}
          </table>
        </Card>
      </div>
      <section class="card wide" data-testid="card-nodes">
        <h2>Nodes</h2>
        <table class="nodes">
          <thead>
            <tr>
              <th>Node</th>
              <th>State</th>
              <th>Mode</th>
              <th>CPUs</th>
              <th>CPU use (load)</th>
              <th>RAM</th>
              <th>Links</th>
            </tr>
          </thead>
          <tbody>
            {nodes.map((n) => (
              <NodeRow n={n} />
            ))}
          </tbody>
        </table>
      </section>
    </div>
  );
}

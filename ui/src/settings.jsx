import { useEffect, useState } from 'preact/hooks';
import { api, get, post } from './api.js';
import { useLive } from './hooks.js';
import { Action, Form, Loading, Page, Section, enc, fieldOf, when, words } from './forms.jsx';
import { joinInformation } from './setup.jsx';

// The cluster (herd cluster status|settings|set|leave|ha pause|ha resume, herd cluster qdevice,
// herd rule add|list|delete, herd check, herd notify test, herd version): its settings
// changed all at once or not at all.

function SettingsForm({ settings }) {
  const [values, setValues] = useState({});
  const [error, setError] = useState(null);
  const [done, setDone] = useState(null);
  const [busy, setBusy] = useState(false);
  const changed = Object.keys(values).filter((k) => values[k] !== undefined);
  const submit = async (e) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    setDone(null);
    const body = {};
    for (const k of changed) body[k] = values[k] === '' ? null : values[k];
    try {
      await api('PUT', '/api/v1/cluster/settings', body);
      setValues({});
      setDone(`Changed: ${changed.join(', ')}.`);
    } catch (err) {
      const field = fieldOf(err.message, changed.map((k) => ({ key: k })), values);
      setError({ message: err.message, field });
    } finally {
      setBusy(false);
    }
  };
  return (
    <form class="settings" data-testid="settings-form" onSubmit={submit}>
      <table>
        <thead>
          <tr>
            <th>Setting</th>
            <th>Value</th>
            <th>Default</th>
            <th>What it is</th>
          </tr>
        </thead>
        <tbody>
          {settings.map((s) => {
            const shown = s.secret ? (s.value ? 'set' : 'not set') : s.value === null ? '' : String(s.value);
            return (
              <tr data-testid={`setting-${s.key}`} class={s.changed ? 'changed' : ''}>
                <td class="name">{s.key}</td>
                <td>
                  <input
                    name={s.key}
                    type={s.secret ? 'password' : 'text'}
                    placeholder={shown}
                    value={values[s.key] ?? ''}
                    onInput={(e) => setValues({ ...values, [s.key]: e.currentTarget.value === '' && !(s.key in values) ? undefined : e.currentTarget.value })}
                  />
                  {!s.secret && <span class="muted"> now {shown === '' ? '–' : shown}</span>}
                  {error && error.field === s.key && (
                    <span class="field-error" role="alert" data-testid="settings-error">
                      {error.message}
                    </span>
                  )}
                </td>
                <td class="muted">{s.default}</td>
                <td class="help">{s.help}</td>
              </tr>
            );
          })}
        </tbody>
      </table>
      <div class="field actions">
        <button type="submit" disabled={busy || !changed.length} data-testid="settings-submit">
          {busy ? 'Working…' : `Apply ${changed.length || ''} change(s)`}
        </button>
        <span class="muted">A value emptied after typing resets the setting to its default. All are applied together, or none.</span>
        {error && !error.field && (
          <span class="field-error" role="alert" data-testid="settings-error">
            {error.message}
          </span>
        )}
        {done && (
          <span class="ok-note" data-testid="settings-done">
            {done}
          </span>
        )}
      </div>
    </form>
  );
}

function Rules({ rules }) {
  return (
    <Section title="Placement rules" testid="rules-section">
      <table>
        <thead>
          <tr>
            <th>Name</th>
            <th>Kind</th>
            <th>Strict</th>
            <th>VMs</th>
            <th>Holds</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {rules.map((r) => (
            <tr data-testid={`rule-row-${r.name}`}>
              <td class="name">{r.name}</td>
              <td>{r.kind}</td>
              <td>{r.strict ? 'yes' : 'no'}</td>
              <td>{r.vms.map((v) => `${v.name}${v.node ? ` (${v.node})` : ''}`).join(', ')}</td>
              <td class={r.holds ? 'good' : 'bad'}>{r.holds ? 'yes' : 'no'}</td>
              <td>
                <Action
                  testid={`rule-delete-${r.name}`}
                  label="Delete"
                  secondary
                  confirm={`Delete rule ${r.name}?`}
                  run={async () => (await api('DELETE', `/api/v1/rules/${enc(r.name)}`), `Rule ${r.name} was deleted.`)}
                />
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <Form
        testid="rule-add"
        label="Add rule"
        fields={[
          { key: 'name', label: 'Name' },
          { key: 'kind', label: 'Kind', type: 'select', options: ['together', 'apart'] },
          { key: 'strict', label: 'Strict (never broken, even if a VM cannot start)', type: 'checkbox' },
          { key: 'vms', label: 'VMs', names: ['vm'] },
        ]}
        submit={async (v) => (await post('/api/v1/rules', { name: v.name, kind: v.kind, strict: v.strict, vms: words(v.vms) }), `Rule ${v.name} was added.`)}
      />
    </Section>
  );
}

// The checks' results are pass, warn or fail (src/ha/check.c); the summary
// is herd check's last line.
function checkSummary(r) {
  const n = (s) => (r.results || []).filter((x) => x.status === s).length;
  return `${n('pass')} passed, ${n('warn')} warnings, ${n('fail')} failed (checked from node ${r.node}).`;
}

const CHECK_CLASS = { pass: 'good', warn: 'warn', fail: 'bad' };

function Checks() {
  const [report, setReport] = useState(null);
  const show = (r) => {
    setReport(r);
    return checkSummary(r);
  };
  return (
    <Section title="Checks and notifications" testid="checks-section">
      <div class="toolbar">
        <Action testid="check-show" label="Last check" secondary run={async () => show(await get('/api/v1/check'))} />
        <Action testid="check-run" label="Run the checks now" run={async () => show(await post('/api/v1/check'))} />
        <Action
          testid="notify-test"
          label="Send a test notification"
          secondary
          run={async () => {
            const r = await post('/api/v1/notify/test');
            const parts = [];
            if (r.mail) parts.push(r.mail.sent ? `mail sent to ${r.mail.to}` : `mail: ${r.mail.error}`);
            if (r.webhook) parts.push(r.webhook.sent ? 'webhook called' : `webhook: ${r.webhook.error}`);
            return parts.length ? `${parts.join('; ')}.` : 'No channel is set (notify_* settings).';
          }}
        />
      </div>
      {report && (
        <table data-testid="check-report">
          <caption class="muted">{`Node ${report.node}, ${when(report.time_ms)}`}</caption>
          <tbody>
            {(report.results || []).map((c) => (
              <tr data-testid={`check-${c.check}-${c.node || ''}`}>
                <td class={CHECK_CLASS[c.status] || 'bad'}>{(c.status || '?').toUpperCase()}</td>
                <td>{c.check}</td>
                <td>{c.node || ''}</td>
                <td>{c.message}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </Section>
  );
}

// herd cluster ha pause|resume: the setting ha_paused, said in a sentence.
function HaPause({ settings }) {
  const s = settings.find((x) => x.key === 'ha_paused');
  if (!s) return null;
  const paused = s.value === true || s.value === 'yes';
  return (
    <div class="toolbar" data-testid="ha-pause-section">
      <span data-testid="ha-paused" class={paused ? 'bad' : 'good'}>
        {paused ? 'HA is paused: herd fences no node and starts, moves or fails over no VM.' : 'HA runs: herd fences lost nodes and places VMs.'}
      </span>
      <Action
        testid="ha-pause-toggle"
        label={paused ? 'Resume HA' : 'Pause HA'}
        secondary={paused}
        confirm={paused ? null : 'Pause HA cluster-wide (for network or corosync work)? Nothing is fenced or moved until it is resumed.'}
        run={async () => {
          await api('PUT', '/api/v1/cluster/settings', { ha_paused: !paused });
          return paused ? 'HA is resumed: herd fences lost nodes and places VMs again.' : 'HA is paused until it is resumed here or with herd cluster ha resume.';
        }}
      />
    </div>
  );
}

// This node's address and the cluster's fingerprint, for a new node's
// join (setup.jsx reads them back); this node's leave.
function Membership({ cluster }) {
  const me = (cluster.nodes || []).find((n) => n.name === cluster.local_node);
  const link0 = me && me.links && me.links[0] ? me.links[0].address : location.hostname;
  const host = link0.includes(':') ? `[${link0}]` : link0;
  const address = location.port && location.port !== '8001' ? `${host}:${location.port}` : link0;
  const info = joinInformation(address, cluster.fingerprint);
  const [copied, setCopied] = useState(false);
  const [force, setForce] = useState(false);
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(info);
      setCopied(true);
    } catch {
      setCopied(false);
    }
  };
  return (
    <Section title="Nodes joining and leaving" testid="membership-section">
      <p>
        To add a node, open its page (<code>https://NODE:8001/</code>) with its setup code and choose <em>Join a cluster</em>:
        paste this join information there, and give the cluster's admin password.
      </p>
      <div class="toolbar">
        <input class="mono join-info" readonly value={info} data-testid="join-information" onFocus={(e) => e.currentTarget.select()} />
        <button class="secondary" data-testid="join-information-copy" onClick={copy}>
          {copied ? 'Copied' : 'Copy'}
        </button>
      </div>
      <p class="muted">
        A node leaves from its own page (here: {cluster.local_node}); the others are listed on the Nodes page, a node that is gone
        for good is removed there.
      </p>
      <div class="toolbar">
        <label class="check">
          <input type="checkbox" data-testid="leave-force" checked={force} onChange={(e) => setForce(e.currentTarget.checked)} /> even as the
          last node (this deletes the cluster)
        </label>
        <Action
          testid="leave"
          label={`Take ${cluster.local_node} out of the cluster`}
          secondary
          confirm={`Take ${cluster.local_node} out of cluster ${cluster.name}? It forgets the configuration and stops corosync.`}
          run={async () => {
            // The node is blank now: on to its setup page (this page's
            // data and session are gone with the cluster).
            const r = await post('/api/v1/cluster/leave', { force });
            location.assign('/');
            return `${cluster.local_node} left cluster '${r.cluster}'.`;
          }}
        />
      </div>
    </Section>
  );
}

// herd cluster qdevice add, with the certificates made by hand: the CLI
// makes them over ssh to the qnetd host, which a browser cannot.
function QdeviceAdd() {
  return (
    <Section title="Add a quorum device" testid="qdevice-section">
      <p class="muted">
        For an even number of nodes, all up. <code>herd cluster qdevice add HOST</code> on a node does it all over ssh; here,
        give qnetd's CA certificate and the cluster's certificate with its key, as docs/cluster.md ("A quorum device (qdevice) for a two-node cluster") says how to
        make them.
      </p>
      <Form
        testid="qdevice-add"
        label="Add the quorum device"
        fields={[
          { key: 'host', label: 'qnetd host', names: ['qdevice host', 'host'] },
          { key: 'port', label: 'Port', value: '5403' },
          { key: 'ca_cert', label: "qnetd's CA certificate (PEM)", type: 'textarea', names: ['ca_cert'] },
          { key: 'p12', label: "The cluster's certificate and key (PKCS#12)", type: 'file', names: ['p12'] },
        ]}
        submit={async (v) => {
          const p12 = v.p12 ? await base64(v.p12) : '';
          const r = await post('/api/v1/cluster/qdevice', { host: v.host.trim(), port: Number(v.port), ca_cert: v.ca_cert, p12 });
          return `The quorum device at ${r.host}:${r.port} is set (${r.algorithm || 'inactive while the node count is odd'}).`;
        }}
      />
    </Section>
  );
}

async function base64(file) {
  const bytes = new Uint8Array(await file.arrayBuffer());
  let s = '';
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

// The quorum device, or null: none (its GET answers 404 then).
function useQdevice(trigger) {
  const [q, setQ] = useState(null);
  useEffect(() => {
    get('/api/v1/cluster/qdevice').then(setQ, () => setQ(null));
  }, [trigger]);
  return q;
}

export function SettingsPage() {
  const { data, error } = useLive(['/api/v1/cluster', '/api/v1/cluster/settings', '/api/v1/rules', '/api/v1/node'], ['cluster', 'rule', 'vm', 'membership'], 0);
  const qdevice = useQdevice(data);
  if (!data) return <Loading error={error} />;
  const [cluster, settings, rules, node] = data;
  const v = (node && node.versions) || {};
  return (
    <Page title={`Cluster ${cluster.name}`} testid="page-settings" error={error}>
      <Section title="Cluster" testid="cluster-section">
        <div class="kv">
          <span>Name</span>
          <strong>{cluster.name}</strong>
          <span>CA fingerprint</span>
          <strong class="mono">{cluster.fingerprint}</strong>
          <span>Quorum</span>
          <strong>{cluster.quorum && cluster.quorum.quorate ? 'quorate' : 'NOT quorate'}</strong>
          <span>Nodes</span>
          <strong>{(cluster.nodes || []).map((n) => `${n.name}${n.online ? '' : ' (not online)'}`).join(', ')}</strong>
          <span>Quorum device</span>
          <strong data-testid="qdevice">
            {qdevice && qdevice.host ? `${qdevice.host}:${qdevice.port} (${qdevice.algorithm || 'inactive'})` : 'none'}
          </strong>
          <span>Versions on {node ? node.name : 'this node'}</span>
          <strong data-testid="versions">{`herd ${v.herd || '?'} (protocol ${v.protocol ?? '?'}), corosync ${v.corosync || '?'}, libvirt ${v.libvirt || '?'}`}</strong>
        </div>
        <HaPause settings={settings} />
        {qdevice && qdevice.host && (
          <Action
            testid="qdevice-remove"
            label="Remove the quorum device"
            secondary
            confirm="Remove the quorum device?"
            run={async () => (await api('DELETE', '/api/v1/cluster/qdevice'), 'The quorum device was removed.')}
          />
        )}
      </Section>
      <Membership cluster={cluster} />
      {!(qdevice && qdevice.host) && <QdeviceAdd />}
      <Section title="Settings" testid="settings-section">
        <SettingsForm settings={settings} />
      </Section>
      <Rules rules={rules} />
      <Checks />
    </Page>
  );
}

import { useState } from 'preact/hooks';
import { api, post } from './api.js';
import { useLive } from './hooks.js';
import { Action, Form, Loading, Page, Section, enc, keyValues } from './forms.jsx';

// Fence devices (herd fence-device add|list|test|remove): a fence agent,
// its parameters, and which plug cuts which node.

function TestResults({ results }) {
  return (
    <ul class="plain" data-testid="fence-test-results">
      {results.map((r) => (
        <li class={r.ok ? 'good' : 'bad'}>
          {`${r.node} (plug ${r.plug}): ${r.ok ? `power ${r.power}` : r.error} — ${r.seconds.toFixed(1)} s`}
        </li>
      ))}
    </ul>
  );
}

function DeviceRow({ d }) {
  const [results, setResults] = useState(null);
  return (
    <tr data-testid={`fence-row-${d.name}`}>
      <td class="name">{d.name}</td>
      <td>{d.agent}</td>
      <td>{d.level}</td>
      <td class="mono">
        {Object.entries(d.params || {})
          .map(([k, v]) => `${k}=${v}`)
          .join(' ')}
      </td>
      <td>
        {Object.entries(d.plugs || {})
          .map(([n, p]) => `${n}=${p}`)
          .join(' ')}
      </td>
      <td>
        <Action
          testid={`fence-test-${d.name}`}
          label="Test"
          secondary
          run={async () => {
            const r = await post(`/api/v1/fence-devices/${enc(d.name)}/test`);
            setResults(r);
            const bad = r.filter((x) => !x.ok).length;
            return bad ? `${bad} of ${r.length} plug(s) failed.` : `All ${r.length} plug(s) answer.`;
          }}
        />
        <Action
          testid={`fence-remove-${d.name}`}
          label="Remove"
          secondary
          confirm={`Remove fence device ${d.name}?`}
          run={async () => {
            await api('DELETE', `/api/v1/fence-devices/${enc(d.name)}`);
            return `Fence device ${d.name} was removed.`;
          }}
        />
        {results && <TestResults results={results} />}
      </td>
    </tr>
  );
}

export function FenceDevicesPage() {
  const { data, error } = useLive(['/api/v1/fence-devices'], ['fence_device'], 0);
  if (!data) return <Loading error={error} />;
  const [devices] = data;
  return (
    <Page title="Fence devices" testid="page-fence" error={error}>
      <Section title="Fence devices" testid="fence-section">
        <table>
          <thead>
            <tr>
              <th>Name</th>
              <th>Agent</th>
              <th>Level</th>
              <th>Parameters</th>
              <th>Plugs</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {devices.map((d) => (
              <DeviceRow d={d} />
            ))}
          </tbody>
        </table>
        <h3>Add a fence device</h3>
        <p class="muted">herd asks the agent for its plugs before it keeps the device: one that does not answer is refused.</p>
        <Form
          testid="fence-add"
          label="Add"
          fields={[
            { key: 'name', label: 'Name' },
            { key: 'agent', label: 'Agent', placeholder: 'fence_ipmilan' },
            { key: 'params', label: 'Parameters (KEY=VALUE, one a line)', type: 'textarea', placeholder: 'ip=10.0.0.9\nusername=admin', names: ['param', 'parameter'] },
            { key: 'plugs', label: 'Plugs (NODE=PLUG, one a line)', type: 'textarea', placeholder: 'n1=1\nn2=2', names: ['plug'] },
            { key: 'level', label: 'Level (1 is tried first)', type: 'number', value: '1' },
          ]}
          submit={async (v) => {
            const body = {
              name: v.name,
              agent: v.agent,
              params: keyValues(v.params, 'Parameters'),
              plugs: keyValues(v.plugs, 'Plugs'),
              level: Number(v.level || 1),
            };
            await post('/api/v1/fence-devices', body);
            return `Fence device ${v.name} was added.`;
          }}
        />
      </Section>
    </Page>
  );
}

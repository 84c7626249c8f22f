import { api, post } from './api.js';
import { useLive } from './hooks.js';
import { Action, Form, Loading, Page, Section, enc } from './forms.jsx';

// Virtual switches (herd network add|list|show|remove): a bridge that
// every node has, optionally a VLAN of it.
export function NetworksPage() {
  const { data, error } = useLive(['/api/v1/networks'], ['network', 'vm', 'node', 'membership'], 30000);
  if (!data) return <Loading error={error} />;
  const [networks] = data;
  return (
    <Page title="Virtual switches" testid="page-networks" error={error}>
      <Section title="Virtual switches" testid="networks-section">
        <table>
          <thead>
            <tr>
              <th>Name</th>
              <th>Bridge</th>
              <th>VLAN</th>
              <th>VMs</th>
              <th>On each node</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {networks.map((n) => (
              <tr data-testid={`network-row-${n.name}`}>
                <td class="name">{n.name}</td>
                <td>{n.bridge}</td>
                <td>{n.vlan ?? ''}</td>
                <td>{(n.vms || []).join(', ')}</td>
                <td>
                  {Object.entries(n.nodes || {}).map(([node, r]) => (
                    <div class={`reach ${r.ok ? 'ok' : 'bad'}`}>
                      <strong>{node}</strong> {r.ok ? 'has it' : r.problem}
                    </div>
                  ))}
                </td>
                <td>
                  <Action
                    testid={`network-remove-${n.name}`}
                    label="Remove"
                    secondary
                    confirm={`Remove virtual switch ${n.name}?`}
                    run={async () => {
                      await api('DELETE', `/api/v1/networks/${enc(n.name)}`);
                      return `Virtual switch ${n.name} was removed.`;
                    }}
                  />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
        <h3>Add a virtual switch</h3>
        <Form
          testid="network-add"
          label="Add"
          fields={[
            { key: 'name', label: 'Name' },
            { key: 'bridge', label: 'Bridge (on every node)', placeholder: 'br0' },
            { key: 'vlan', label: 'VLAN (1–4094, empty: none)', type: 'number' },
          ]}
          submit={async (v) => {
            const body = { name: v.name, bridge: v.bridge };
            if (v.vlan !== '') body.vlan = Number(v.vlan);
            await post('/api/v1/networks', body);
            return `Virtual switch ${v.name} was added.`;
          }}
        />
      </Section>
    </Page>
  );
}

import { useState } from 'preact/hooks';
import { api, post } from './api.js';
import { useLive } from './hooks.js';
import { Action, Form, Loading, Page, Section, enc, when, words } from './forms.jsx';

// Users, groups and permissions (herd user add|list|passwd|set|remove,
// herd group add|list|show|set|remove, herd audit): roles per area as
// docs/users.md has them; the audit log of who changed what from where.

const ROLES = ['admin', 'operator', 'auditor', 'monitor'];
// An option's value must not be empty (the browser would show none chosen).
const NONE = '-';

function UserRow({ u }) {
  const [editing, setEditing] = useState(false);
  return (
    <>
      <tr data-testid={`user-row-${u.name}`}>
        <td class="name">{u.name}</td>
        <td>{u.role || <span class="muted">none</span>}</td>
        <td>{(u.groups || []).join(', ')}</td>
        <td data-testid={`user-${u.name}-roles`}>{(u.roles || []).join(', ') || <span class="muted">none (may read nothing)</span>}</td>
        <td>{u.email}</td>
        <td>
          <button class="secondary" data-testid={`user-edit-${u.name}`} onClick={() => setEditing(!editing)}>
            {editing ? 'Close' : 'Edit'}
          </button>
          <Action
            testid={`user-remove-${u.name}`}
            label="Remove"
            secondary
            confirm={`Remove user ${u.name}?`}
            run={async () => {
              await api('DELETE', `/api/v1/users/${enc(u.name)}`);
              return `User ${u.name} was removed.`;
            }}
          />
        </td>
      </tr>
      {editing && (
        <tr>
          <td colspan={6} class="edit">
            <Form
              testid={`user-set-${u.name}`}
              label="Save"
              fields={[
                { key: 'role', label: 'Own role', type: 'select', value: u.role || NONE, options: [{ value: NONE, label: 'none (the groups’ roles only)' }, ...ROLES] },
                { key: 'email', label: 'Mail address (alerts)', value: u.email || '' },
              ]}
              submit={async (v) => {
                await api('PUT', `/api/v1/users/${enc(u.name)}`, { role: v.role === NONE ? null : v.role, email: v.email || null });
                return `User ${u.name} was changed.`;
              }}
            />
            <Form
              testid={`user-password-${u.name}`}
              label="Set password"
              fields={[{ key: 'password', label: 'New password', type: 'password' }]}
              submit={async (v) => {
                await api('PUT', `/api/v1/users/${enc(u.name)}/password`, { password: v.password });
                return `The password of ${u.name} was changed; their sessions ended.`;
              }}
            />
          </td>
        </tr>
      )}
    </>
  );
}

function GroupRow({ g }) {
  const [editing, setEditing] = useState(false);
  return (
    <>
      <tr data-testid={`group-row-${g.name}`}>
        <td class="name">{g.name}</td>
        <td>{(g.roles || []).join(', ')}</td>
        <td>{(g.pools || []).join(', ') || <span class="muted">all VMs</span>}</td>
        <td>{(g.members || []).join(', ')}</td>
        <td>
          <button class="secondary" data-testid={`group-edit-${g.name}`} onClick={() => setEditing(!editing)}>
            {editing ? 'Close' : 'Edit'}
          </button>
          <Action
            testid={`group-remove-${g.name}`}
            label="Remove"
            secondary
            confirm={`Remove group ${g.name}?`}
            run={async () => {
              await api('DELETE', `/api/v1/groups/${enc(g.name)}`);
              return `Group ${g.name} was removed.`;
            }}
          />
        </td>
      </tr>
      {editing && (
        <tr>
          <td colspan={5} class="edit">
            <Form
              testid={`group-set-${g.name}`}
              label="Save"
              fields={[
                { key: 'roles', label: `Roles (${ROLES.join(', ')})`, value: (g.roles || []).join(' '), names: ['role'] },
                { key: 'pools', label: 'VM pools it is limited to (empty: all VMs)', value: (g.pools || []).join(' '), names: ['pool'] },
                { key: 'members', label: 'Members', value: (g.members || []).join(' '), names: ['member', 'user'] },
              ]}
              submit={async (v) => {
                await api('PUT', `/api/v1/groups/${enc(g.name)}`, { roles: words(v.roles), pools: words(v.pools), members: words(v.members) });
                return `Group ${g.name} was changed.`;
              }}
            />
          </td>
        </tr>
      )}
    </>
  );
}

// How many of the audit log's newest entries the page shows (herd audit
// --limit N; the log keeps the newest 10,000 or so).
const AUDIT_LIMITS = [50, 100, 500, 1000, 10000];

export function UsersPage() {
  const [limit, setLimit] = useState(AUDIT_LIMITS[0]);
  const { data, error } = useLive(['/api/v1/users', '/api/v1/groups', `/api/v1/audit?limit=${limit}`], ['user', 'group'], 0);
  if (!data) return <Loading error={error} />;
  const [users, groups, audit] = data;
  return (
    <Page title="Users, groups and permissions" testid="page-users" error={error}>
      <p class="muted">
        Roles: <strong>admin</strong> changes everything; <strong>operator</strong> starts, stops, migrates VMs and opens
        their consoles (in a group with pools: only those pools' VMs); <strong>auditor</strong> reads everything and changes
        nothing; <strong>monitor</strong> reads the status and metrics.
      </p>
      <Section title="Users" testid="users-section">
        <table>
          <thead>
            <tr>
              <th>Name</th>
              <th>Own role</th>
              <th>Groups</th>
              <th>Roles in effect</th>
              <th>Mail</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {users.map((u) => (
              <UserRow u={u} />
            ))}
          </tbody>
        </table>
        <h3>Add a user</h3>
        <Form
          testid="user-add"
          label="Add user"
          fields={[
            { key: 'name', label: 'Name', names: ['user'] },
            { key: 'password', label: 'Password', type: 'password' },
            { key: 'role', label: 'Own role', type: 'select', options: [{ value: NONE, label: 'none (a group gives it one)' }, ...ROLES] },
            { key: 'email', label: 'Mail address' },
          ]}
          submit={async (v) => {
            const body = { name: v.name, password: v.password };
            if (v.role !== NONE) body.role = v.role;
            if (v.email) body.email = v.email;
            await post('/api/v1/users', body);
            return `User ${v.name} was added.`;
          }}
        />
      </Section>
      <Section title="Groups" testid="groups-section">
        <table>
          <thead>
            <tr>
              <th>Name</th>
              <th>Roles</th>
              <th>Pools</th>
              <th>Members</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {groups.map((g) => (
              <GroupRow g={g} />
            ))}
          </tbody>
        </table>
        <h3>Add a group</h3>
        <Form
          testid="group-add"
          label="Add group"
          fields={[
            { key: 'name', label: 'Name', names: ['group'] },
            { key: 'roles', label: `Roles (${ROLES.join(', ')})`, names: ['role'] },
            { key: 'pools', label: 'VM pools (empty: all VMs)', names: ['pool'] },
            { key: 'members', label: 'Members', names: ['member', 'user'] },
          ]}
          submit={async (v) => {
            await post('/api/v1/groups', { name: v.name, roles: words(v.roles), pools: words(v.pools), members: words(v.members) });
            return `Group ${v.name} was added.`;
          }}
        />
      </Section>
      <Section title="Audit log" testid="audit-section">
        <div class="toolbar">
          <label>
            The newest{' '}
            <select value={String(limit)} onChange={(e) => setLimit(Number(e.currentTarget.value))} data-testid="audit-limit" aria-label="How many">
              {AUDIT_LIMITS.map((n) => (
                <option value={String(n)}>{n}</option>
              ))}
            </select>{' '}
            changes (herd audit --limit N)
          </label>
          <span class="muted" data-testid="audit-count">{`${audit.length} shown`}</span>
        </div>
        <table data-testid="audit-table">
          <thead>
            <tr>
              <th>When</th>
              <th>Who</th>
              <th>From node</th>
              <th>Change</th>
              <th>What</th>
            </tr>
          </thead>
          <tbody>
            {audit.map((e) => (
              <tr>
                <td>{when(e.time_ms)}</td>
                <td>{e.user}</td>
                <td>{e.node}</td>
                <td>{e.change}</td>
                <td>{`${e.kind} ${e.name}`}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </Section>
    </Page>
  );
}

import { useState } from 'preact/hooks';
import { useLive } from './hooks.js';
import { Link } from './router.jsx';
import { Loading, Page, enc, when } from './forms.jsx';

// Every VM's configuration versions, those of deleted VMs too (herd vm
// history without a VM, --pattern GLOB: GET /api/v1/history/vms?pattern=).
// A VM's versions and their Restore are on its page's History tab, reached
// by its UUID (a deleted VM's name may have been given to another since).
export function VmHistoryPage() {
  const [typed, setTyped] = useState('');
  const [pattern, setPattern] = useState('');
  const path = `/api/v1/history/vms${pattern ? `?pattern=${enc(pattern)}` : ''}`;
  const { data, error } = useLive([path, '/api/v1/vms'], ['vm'], 0);
  if (!data) return <Loading error={error} />;
  const [list, vms] = data;
  const now = new Set(vms.map((v) => v.uuid));
  return (
    <Page title="Configuration history of every VM" testid="page-vm-history" error={error}>
      <form
        class="toolbar"
        onSubmit={(e) => {
          e.preventDefault();
          setPattern(typed.trim());
        }}
      >
        <input value={typed} onInput={(e) => setTyped(e.currentTarget.value)} placeholder="names matching, e.g. *web*" aria-label="Pattern" data-testid="history-pattern" />
        <button type="submit" data-testid="history-pattern-submit">
          Show
        </button>
        <span class="muted" data-testid="history-count">{`${list.length} version(s)`}</span>
      </form>
      <table class="panel" data-testid="history-all">
        <thead>
          <tr>
            <th>VM</th>
            <th>UUID</th>
            <th>Version</th>
            <th>When</th>
            <th>Change</th>
            <th>By</th>
            <th>From node</th>
          </tr>
        </thead>
        <tbody>
          {list.map((h) => (
            <tr data-testid={`history-all-${h.name}-${h.version}`}>
              <td class="name">
                <Link href={`/vms/${enc(h.uuid)}/history`}>{h.name}</Link>
                {!now.has(h.uuid) && <span class="muted"> (deleted)</span>}
              </td>
              <td class="mono">{h.uuid}</td>
              <td>{h.version}</td>
              <td>{when(h.time_ms)}</td>
              <td>{h.change}</td>
              <td>{h.user || ''}</td>
              <td>{h.origin || ''}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {list.length === 0 && <p class="muted">No version{pattern ? ` of a VM matching ${pattern}` : ''}.</p>}
    </Page>
  );
}

import { useState } from 'preact/hooks';
import { post } from './api.js';
import { useLive } from './hooks.js';
import { Action, Loading, Page, enc, when } from './forms.jsx';

// Alerts (herd alert list|show|ack): what holds now, by severity, and
// with ?all=true those that have cleared.
const SEVERITIES = ['critical', 'warning', 'info'];

export function AlertsPage() {
  const [all, setAll] = useState(false);
  const [severity, setSeverity] = useState('all');
  const { data, error } = useLive([all ? '/api/v1/alerts?all=true' : '/api/v1/alerts'], ['alert'], 0);
  if (!data) return <Loading error={error} />;
  const [alerts] = data;
  const shown = alerts.filter((a) => severity === 'all' || a.severity === severity);
  return (
    <Page title="Alerts" testid="page-alerts" error={error}>
      <div class="toolbar">
        {['all', ...SEVERITIES].map((s) => (
          <button class={severity === s ? '' : 'secondary'} data-testid={`alerts-filter-${s}`} onClick={() => setSeverity(s)}>
            {s === 'all' ? `all (${alerts.length})` : `${s} (${alerts.filter((a) => a.severity === s).length})`}
          </button>
        ))}
        <label>
          <input type="checkbox" checked={all} onChange={(e) => setAll(e.currentTarget.checked)} data-testid="alerts-all" /> with those that have
          cleared
        </label>
      </div>
      <table class="panel">
        <thead>
          <tr>
            <th>Severity</th>
            <th>Alert</th>
            <th>Concerns</th>
            <th>First</th>
            <th>Last</th>
            <th>Cleared</th>
            <th>Acknowledged</th>
          </tr>
        </thead>
        <tbody>
          {shown.map((a) => (
            <tr data-testid={`alert-row-${a.name}`} class={`sev-${a.severity}`}>
              <td>
                <span class={`dot ${a.severity === 'info' ? 'ok' : a.severity}`} />
                {a.severity}
              </td>
              <td>{a.message}</td>
              <td>{[a.node && `node ${a.node}`, a.vm && `VM ${a.vm}`, a.storage && `storage ${a.storage}`, a.disk && `disk ${a.disk}`].filter(Boolean).join(', ')}</td>
              <td>{when(a.first_ms)}</td>
              <td>{when(a.last_ms)}</td>
              <td>{a.active ? '' : when(a.cleared_ms)}</td>
              <td>
                {a.acked_by ? (
                  `${a.acked_by}, ${when(a.acked_ms)}`
                ) : (
                  <Action testid={`alert-ack-${a.name}`} label="Acknowledge" secondary run={async () => (await post(`/api/v1/alerts/${enc(a.name)}/ack`), 'Acknowledged.')} />
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {shown.length === 0 && <p class="muted">No alert.</p>}
    </Page>
  );
}

import { useState } from 'preact/hooks';
import { post } from './api.js';
import { useLive } from './hooks.js';
import { Link } from './router.jsx';
import { Action, Loading, Page, Section, enc, when } from './forms.jsx';

// Jobs (herd job list|show|cancel): the long operations with their
// progress and log, live; the panel in the header shows the running ones
// from every page.

function Progress({ j }) {
  return (
    <div class={`bar ${j.state === 'failed' ? 'critical' : j.state === 'cancelled' ? 'warning' : 'ok'}`} data-testid={`job-${j.name}-progress`}>
      <div class="fill" style={{ width: `${j.progress}%` }} />
      <span>{`${j.progress} %`}</span>
    </div>
  );
}

function jobTitle(j) {
  return `${j.kind} ${j.target}${j.to ? ` → ${j.to}` : ''}`;
}

function CancelJob({ j }) {
  if (!j.cancellable) return null;
  return (
    <Action
      testid={`job-cancel-${j.name}`}
      label="Cancel"
      secondary
      confirm={`Cancel ${jobTitle(j)}?`}
      run={async () => (await post(`/api/v1/jobs/${enc(j.name)}/cancel`), `Job ${j.name}: cancel asked.`)}
    />
  );
}

export function JobsPage() {
  const [all, setAll] = useState(true);
  const { data, error } = useLive([all ? '/api/v1/jobs?all=true' : '/api/v1/jobs'], ['job'], 0);
  if (!data) return <Loading error={error} />;
  const [jobs] = data;
  return (
    <Page title="Jobs" testid="page-jobs" error={error}>
      <div class="toolbar">
        <label>
          <input type="checkbox" checked={all} onChange={(e) => setAll(e.currentTarget.checked)} data-testid="jobs-all" /> with those that have ended
        </label>
      </div>
      <table class="panel">
        <thead>
          <tr>
            <th>Job</th>
            <th>What</th>
            <th>State</th>
            <th>Progress</th>
            <th>Owner</th>
            <th>Node</th>
            <th>Started</th>
            <th>Last</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {jobs.map((j) => (
            <tr data-testid={`job-row-${j.name}`}>
              <td class="name">
                <Link href={`/jobs/${enc(j.name)}`}>{j.name}</Link>
              </td>
              <td>{jobTitle(j)}</td>
              <td data-testid={`job-${j.name}-state`}>{j.state}</td>
              <td class="gauge">
                <Progress j={j} />
              </td>
              <td>{j.owner}</td>
              <td>{j.node}</td>
              <td>{when(j.created_ms)}</td>
              <td>{j.error || j.last}</td>
              <td>
                <CancelJob j={j} />
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {jobs.length === 0 && <p class="muted">No job.</p>}
    </Page>
  );
}

export function JobPage({ name }) {
  const { data, error } = useLive([`/api/v1/jobs/${enc(name)}`], ['job'], 0);
  if (!data) return <Loading error={error} />;
  const [j] = data;
  return (
    <Page title={`Job ${j.name}: ${jobTitle(j)}`} testid="page-job" error={error}>
      <Section title="State">
        <div class="kv">
          <span>State</span>
          <strong data-testid="job-state">{j.state}</strong>
          <span>Progress</span>
          <Progress j={j} />
          <span>Owner</span>
          <strong>{j.owner}</strong>
          <span>Run by node</span>
          <strong>{j.node}</strong>
          <span>Started</span>
          <strong>{when(j.created_ms)}</strong>
          <span>Ended</span>
          <strong>{when(j.finished_ms)}</strong>
          {j.error && (
            <>
              <span>Error</span>
              <strong class="bad">{j.error}</strong>
            </>
          )}
          {j.cancel_by && (
            <>
              <span>Cancel asked by</span>
              <strong>{j.cancel_by}</strong>
            </>
          )}
        </div>
        <CancelJob j={j} />
      </Section>
      <Section title="Log" testid="job-log">
        <table>
          <tbody>
            {(j.log || []).map((l) => (
              <tr>
                <td class="when">{when(l.ms)}</td>
                <td>{l.text}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </Section>
    </Page>
  );
}

// The header's panel: how many jobs run, and each with its progress.
export function JobsPanel() {
  const [open, setOpen] = useState(false);
  const { data } = useLive(['/api/v1/jobs'], ['job'], 0);
  const jobs = data ? data[0] : [];
  return (
    <span class="jobs-panel">
      <button class={`secondary ${jobs.length ? 'busy' : ''}`} data-testid="jobs-panel" onClick={() => setOpen(!open)}>
        {`Jobs: ${jobs.length}`}
      </button>
      {open && (
        <div class="dropdown" data-testid="jobs-panel-list">
          {jobs.length === 0 && <p class="muted">No job runs.</p>}
          {jobs.map((j) => (
            <div class="job-line">
              <Link href={`/jobs/${enc(j.name)}`} onClick={() => setOpen(false)}>
                {jobTitle(j)}
              </Link>
              <Progress j={j} />
              <span class="muted">{j.last}</span>
            </div>
          ))}
          <Link href="/jobs">All jobs →</Link>
        </div>
      )}
    </span>
  );
}

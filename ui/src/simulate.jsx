import { useState } from 'preact/hooks';
import { post } from './api.js';
import { Section } from './forms.jsx';

// What if? (herd simulate): herd's own scheduler on the cluster as it is,
// with the chosen nodes' power cut or in standby, or what an automatic
// rebalance would move now.  Changes nothing.

function WhatIfResult({ r }) {
  return (
    <div data-testid="whatif-result">
      {r.fenced && r.fenced.length > 0 && <p>Fenced: {r.fenced.join(', ')}</p>}
      {(r.node_alerts || []).map((a) => (
        <p class="warning">{a}</p>
      ))}
      {r.vms && r.vms.length > 0 ? (
        <table class="panel">
          <thead>
            <tr>
              <th>VM</th>
              <th>Priority</th>
              <th>From</th>
              <th>To</th>
              <th>Why</th>
            </tr>
          </thead>
          <tbody>
            {r.vms.map((v) => (
              <tr data-testid={`whatif-vm-${v.vm}`}>
                <td>{v.vm}</td>
                <td>{v.restart_priority || 'medium'}</td>
                <td>{v.from || '–'}</td>
                <td>{v.to || '–'}</td>
                <td>{v.reason}</td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : (
        <p>No VM would move or stay down.</p>
      )}
      {!r.settled && <p class="warning">The scheduler did not settle: {r.unsettled}</p>}
      <p data-testid="whatif-n1">
        {r.n_plus_1
          ? 'N+1 would still hold: every HA VM would find room if one more node failed.'
          : `N+1 would not hold: ${r.n_plus_1_detail}`}
      </p>
    </div>
  );
}

function RebalanceResult({ r }) {
  if (!r.fullest) return <p data-testid="whatif-result">Fewer than two nodes take VMs: there is nothing to balance.</p>;
  const moves = r.moves || [];
  let verdict = null;
  if (!r.settled) verdict = 'The scheduler has something to do first: no rebalance until it is done.';
  else if (r.imbalance_pct < r.threshold_pct) verdict = 'Below the threshold: nothing would move.';
  else if (moves.length === 0) verdict = 'No move would lower the spread enough (rebalance_min_gain_pct) within the rules.';
  return (
    <div data-testid="whatif-result">
      <p>
        The nodes' fullness spreads {r.imbalance_pct.toFixed(1)} points ({r.fullest} fullest, {r.emptiest} emptiest); rebalance starts at{' '}
        {r.threshold_pct} points held {r.hold_s} s, and is {r.enabled ? 'on' : 'off (cluster setting rebalance)'}.
      </p>
      {verdict && <p>{verdict}</p>}
      {moves.length > 0 && (
        <table class="panel">
          <thead>
            <tr>
              <th>VM</th>
              <th>From</th>
              <th>To</th>
              <th>Spread after</th>
            </tr>
          </thead>
          <tbody>
            {moves.map((m) => (
              <tr>
                <td>{m.vm}</td>
                <td>{m.from}</td>
                <td>{m.to}</td>
                <td>{m.after_pct.toFixed(1)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </div>
  );
}

export function WhatIf({ nodes }) {
  const [chosen, setChosen] = useState({}); // name -> 'down' | 'standby'
  const [result, setResult] = useState(null);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const pick = (name, what) => setChosen({ ...chosen, [name]: chosen[name] === what ? undefined : what });
  const of = (what) => Object.keys(chosen).filter((n) => chosen[n] === what);
  const ask = async (body, kind) => {
    setBusy(true);
    setError(null);
    setResult(null);
    try {
      setResult({ kind, r: await post('/api/v1/simulate', body) });
    } catch (e) {
      setError(e.message);
    } finally {
      setBusy(false);
    }
  };
  const none = of('down').length === 0 && of('standby').length === 0;
  return (
    <Section title="What if?" testid="whatif-section">
      <p class="muted">herd's own scheduler on the cluster as it is now; nothing is changed.</p>
      <table class="panel">
        <thead>
          <tr>
            <th>Node</th>
            <th>Power cut</th>
            <th>Standby</th>
          </tr>
        </thead>
        <tbody>
          {nodes.map((n) => (
            <tr>
              <td>{n.name}</td>
              <td>
                <input type="checkbox" data-testid={`whatif-down-${n.name}`} checked={chosen[n.name] === 'down'} onChange={() => pick(n.name, 'down')} />
              </td>
              <td>
                <input type="checkbox" data-testid={`whatif-standby-${n.name}`} checked={chosen[n.name] === 'standby'} onChange={() => pick(n.name, 'standby')} />
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <button data-testid="whatif-run" disabled={busy || none} onClick={() => ask({ node_down: of('down'), standby: of('standby') }, 'whatif')}>
        {busy ? 'Working…' : 'Where would the VMs go?'}
      </button>{' '}
      <button class="secondary" data-testid="whatif-rebalance" disabled={busy} onClick={() => ask({ rebalance: true }, 'rebalance')}>
        What would a rebalance move?
      </button>
      {error && (
        <div class="field-error" role="alert" data-testid="whatif-error">
          {error}
        </div>
      )}
      {result && (result.kind === 'whatif' ? <WhatIfResult r={result.r} /> : <RebalanceResult r={result.r} />)}
    </Section>
  );
}

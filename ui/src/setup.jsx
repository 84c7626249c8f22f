import { useState } from 'preact/hooks';
import { api } from './api.js';
import { Form, words } from './forms.jsx';

// A blank node's page (herd cluster create|join, docs/cluster.md "Forming
// from the web UI"): the setup code first, which only root on the node
// sees ('herd cluster setup-code'); then create a cluster, or join one.
// Every request is the one the CLI sends, with the setup code as the
// password of the pseudo-user '#setup'.

const SETUP_USER = '#setup';

function setupAuth(code) {
  return { Authorization: `Basic ${btoa(`${SETUP_USER}:${code}`)}` };
}

// The code as 'herd cluster setup-code' prints it, however it was typed.
function normalCode(text) {
  const c = (text || '').toUpperCase().replace(/[^A-Z0-9]/g, '');
  return c.length === 12 ? `${c.slice(0, 4)}-${c.slice(4, 8)}-${c.slice(8)}` : (text || '').trim();
}

// "ADDRESS FINGERPRINT", as a member's cluster page shows it to copy.
export function joinInformation(address, fingerprint) {
  return `${address} ${fingerprint}`;
}

function parseJoinInformation(text) {
  const [address, fingerprint] = (text || '').trim().split(/\s+/);
  return { address: address || '', fingerprint: fingerprint || '' };
}

function CodeStep({ node, onCode }) {
  return (
    <Form
      testid="setup-code"
      label="Continue"
      fields={[
        {
          key: 'code',
          label: 'Setup code',
          names: ['setup code'],
          placeholder: 'XXXX-XXXX-XXXX',
          hint: `As root on ${node.name}: herd cluster setup-code`,
        },
      ]}
      submit={async (v) => {
        const code = normalCode(v.code);
        await api('GET', '/api/v1/session', undefined, setupAuth(code));
        onCode(code);
        return 'The setup code is right.';
      }}
    />
  );
}

function Create({ code, onDone }) {
  return (
    <Form
      testid="create"
      label="Create the cluster"
      fields={[
        { key: 'name', label: 'Cluster name', names: ['cluster name'] },
        {
          key: 'links',
          label: "This node's address on each heartbeat link (link 0 first)",
          names: ['link', 'address'],
          placeholder: '192.0.2.1 198.51.100.1',
        },
        { key: 'password', label: 'New admin password', type: 'password', names: ['admin password', 'password'] },
        { key: 'again', label: 'The admin password again', type: 'password' },
      ]}
      submit={async (v) => {
        if (v.password !== v.again) throw new Error('The two admin passwords differ.');
        const r = await api('POST', '/api/v1/cluster', { name: v.name, links: words(v.links), password: v.password }, setupAuth(code));
        onDone(`Created cluster '${r.cluster}' with node ${r.node}.`);
        return `Created cluster '${r.cluster}'.`;
      }}
    />
  );
}

function Join({ code, onDone }) {
  const [info, setInfo] = useState('');
  const [address, setAddress] = useState('');
  const [fingerprint, setFingerprint] = useState('');
  const [links, setLinks] = useState('');
  const [password, setPassword] = useState('');
  const [seen, setSeen] = useState(null);
  const [confirmed, setConfirmed] = useState(false);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);

  const paste = (text) => {
    setInfo(text);
    const j = parseJoinInformation(text);
    setAddress(j.address);
    setFingerprint(j.fingerprint);
    setSeen(null);
    setConfirmed(false);
  };
  // What the member presents, before anything is sent to it.
  const look = async () => {
    setBusy(true);
    setError(null);
    setSeen(null);
    setConfirmed(false);
    try {
      const r = await api('POST', '/api/v1/cluster/probe', { address: address.trim() }, setupAuth(code));
      setSeen(r);
      if (!fingerprint) setFingerprint(r.fingerprint);
      if (!links.trim()) setLinks(r.links.join(' '));
    } catch (e) {
      setError({ field: 'address', message: e.message });
    } finally {
      setBusy(false);
    }
  };
  const join = async (e) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const r = await api(
        'POST',
        '/api/v1/cluster/join',
        { address: address.trim(), fingerprint: fingerprint.trim(), password, links: words(links) },
        setupAuth(code),
      );
      setPassword('');
      onDone(`Joined cluster '${r.cluster}' as node ${r.node}.`);
    } catch (err) {
      const m = err.message.toLowerCase();
      const field = m.includes('fingerprint') ? 'fingerprint' : m.includes('link') ? 'links' : m.includes('password') ? 'password' : 'address';
      setError({ field, message: err.message });
    } finally {
      setBusy(false);
    }
  };
  const errorAt = (f) =>
    error && error.field === f ? (
      <span class="field-error" role="alert" data-testid="join-error">
        {error.message}
      </span>
    ) : null;
  const differs = seen && fingerprint && seen.fingerprint !== fingerprint.trim().toUpperCase();
  const field = (key, label, input, hint) => (
    <div class={`field ${error && error.field === key ? 'bad-field' : ''}`}>
      <label for={`join-${key}`}>{label}</label>
      {input}
      {hint && <span class="hint">{hint}</span>}
      {errorAt(key)}
    </div>
  );
  return (
    <form class="admin-form" data-testid="join" onSubmit={join}>
      {field(
        'info',
        'Join information (optional)',
        <input id="join-info" name="info" value={info} autocomplete="off" onInput={(e) => paste(e.currentTarget.value)} />,
        "Copied from a member's Cluster page: its address and certificate fingerprint",
      )}
      {field(
        'address',
        "A member's address",
        <input id="join-address" name="address" value={address} autocomplete="off" onInput={(e) => (setAddress(e.currentTarget.value), setSeen(null), setConfirmed(false))} />,
        'HOST, or HOST:PORT if its API is not on port 8001',
      )}
      <div class="field actions">
        <button type="button" class="secondary" data-testid="join-look" disabled={busy || !address.trim()} onClick={look}>
          Show the member's fingerprint
        </button>
      </div>
      {seen && (
        <div class={`card fingerprint ${differs ? 'bad' : ''}`} data-testid="join-seen">
          <div>
            Cluster <strong data-testid="join-cluster">{seen.cluster}</strong> at {seen.address} presents the certificate fingerprint
          </div>
          <div class="mono" data-testid="join-fingerprint">
            {seen.fingerprint}
          </div>
          {differs && <div class="field-error">This is not the fingerprint of the join information.</div>}
          <label class="check">
            <input type="checkbox" data-testid="join-confirm" checked={confirmed} onChange={(e) => setConfirmed(e.currentTarget.checked)} /> It is the
            fingerprint a member shows (herd cluster status, or its Cluster page)
          </label>
        </div>
      )}
      {field(
        'fingerprint',
        "The cluster certificate's fingerprint",
        <input id="join-fingerprint-input" name="fingerprint" class="mono" value={fingerprint} autocomplete="off" onInput={(e) => setFingerprint(e.currentTarget.value)} />,
      )}
      {field(
        'links',
        "This node's address on each heartbeat link (link 0 first)",
        <input id="join-links" name="links" value={links} autocomplete="off" onInput={(e) => setLinks(e.currentTarget.value)} />,
      )}
      {field(
        'password',
        "The cluster's admin password",
        <input id="join-password" name="password" type="password" value={password} autocomplete="off" onInput={(e) => setPassword(e.currentTarget.value)} />,
      )}
      <div class="field actions">
        <button type="submit" data-testid="join-submit" disabled={busy || !seen || !confirmed}>
          {busy ? 'Working…' : 'Join the cluster'}
        </button>
        {!seen && <span class="muted">Look at the member's fingerprint first.</span>}
      </div>
    </form>
  );
}

export function Setup({ node }) {
  const [code, setCode] = useState(null);
  const [mode, setMode] = useState('create');
  const [done, setDone] = useState(null);
  // The node is a member now, with a certificate from the cluster's CA:
  // on to the cluster's login (the browser may ask about the certificate).
  const finished = (text) => {
    setDone(text);
    setTimeout(() => location.assign('/login'), 1500);
  };
  return (
    <div class="setup">
      <div class="admin-page" data-testid="page-setup">
        <h1>herd — node {node.name}</h1>
        <p>
          This node is in no cluster yet. Create a cluster with it, or join it to a cluster. Only someone who has the node's
          setup code may: root on the node gets it with <code>herd cluster setup-code</code>, which also prints the
          fingerprint of this page's certificate — compare it with the one your browser shows for this page.
        </p>
        <p class="muted">
          This page's certificate: <span class="mono" data-testid="setup-tls-fingerprint">{node.tls_fingerprint}</span>
        </p>
        {done ? (
          <div class="ok-note" data-testid="setup-done">
            {done} On to the cluster's login…
          </div>
        ) : !code ? (
          <CodeStep node={node} onCode={setCode} />
        ) : (
          <>
            <div class="toolbar">
              <button class={mode === 'create' ? '' : 'secondary'} data-testid="setup-create" onClick={() => setMode('create')}>
                Create a cluster
              </button>
              <button class={mode === 'join' ? '' : 'secondary'} data-testid="setup-join" onClick={() => setMode('join')}>
                Join a cluster
              </button>
            </div>
            {mode === 'create' ? <Create code={code} onDone={finished} /> : <Join code={code} onDone={finished} />}
          </>
        )}
      </div>
    </div>
  );
}

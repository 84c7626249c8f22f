import { useState } from 'preact/hooks';
import { level } from './levels.js';

// What the admin pages share: a form whose error is the server's sentence,
// shown next to the field it names; a button that runs one request and
// says how it went; a two-step confirmation for what cannot be undone.
// One form is one request: the server applies all of it or none of it.

// The field an error sentence concerns: an empty one whose name it says
// ("User 'x' needs a password."), else the one whose value it quotes
// ("Bridge 'br 0' is not an interface name…"), else one whose name it says;
// none (the form's own line) otherwise.
export function fieldOf(message, fields, values) {
  const m = (message || '').toLowerCase();
  const named = (f) => {
    const words = [f.key.replace(/_/g, ' '), f.key, ...(f.names || []), (f.label || '').toLowerCase()].filter(Boolean);
    return words.some((w) => new RegExp(`\\b${w.toLowerCase().replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\b`).test(m));
  };
  const empty = (v) => v === '' || v === null || v === undefined;
  const quoted = (v) => typeof v === 'string' && v.trim() && (m.includes(`'${v.toLowerCase()}'`) || m.includes(`"${v.toLowerCase()}"`));
  const hit = fields.find((f) => empty(values[f.key]) && f.type !== 'checkbox' && named(f)) ||
    fields.find((f) => quoted(values[f.key])) ||
    fields.find(named);
  return hit ? hit.key : null;
}

function initial(fields) {
  const v = {};
  for (const f of fields) v[f.key] = f.value ?? (f.type === 'checkbox' ? false : f.type === 'select' && f.options.length ? optionValue(f.options[0]) : '');
  return v;
}

function optionValue(o) {
  return typeof o === 'object' ? o.value : o;
}

function optionLabel(o) {
  return typeof o === 'object' ? o.label : o;
}

// fields: [{key, label, type: text|password|number|select|checkbox|textarea|file,
//           options, placeholder, hint, names (other words the server uses for it)}]
// submit(values) returns a promise: its value is shown as the success line.
export function Form({ testid, fields, submit, label, disabled, onDone }) {
  const [values, setValues] = useState(() => initial(fields));
  const [error, setError] = useState(null);
  const [done, setDone] = useState(null);
  const [busy, setBusy] = useState(false);
  const set = (k, v) => setValues((old) => ({ ...old, [k]: v }));
  const onSubmit = async (e) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    setDone(null);
    try {
      const said = await submit(values);
      setDone(said || 'Done.');
      setValues(initial(fields));
      if (onDone) onDone();
    } catch (err) {
      setError({ message: err.message, field: fieldOf(err.message, fields, values) });
    } finally {
      setBusy(false);
    }
  };
  const errorAt = (key) =>
    error && error.field === key ? (
      <span class="field-error" role="alert" data-testid={`${testid}-error`}>
        {error.message}
      </span>
    ) : null;
  return (
    <form class="admin-form" data-testid={testid} onSubmit={onSubmit}>
      {fields.map((f) => {
        const id = `${testid}-${f.key}`;
        let input;
        if (f.type === 'select')
          input = (
            <select id={id} name={f.key} value={values[f.key]} onChange={(e) => set(f.key, e.currentTarget.value)}>
              {f.options.map((o) => (
                <option value={optionValue(o)}>{optionLabel(o)}</option>
              ))}
            </select>
          );
        else if (f.type === 'checkbox')
          input = <input id={id} name={f.key} type="checkbox" checked={values[f.key]} onChange={(e) => set(f.key, e.currentTarget.checked)} />;
        else if (f.type === 'textarea')
          input = <textarea id={id} name={f.key} rows={3} placeholder={f.placeholder} value={values[f.key]} onInput={(e) => set(f.key, e.currentTarget.value)} />;
        else if (f.type === 'file')
          input = <input id={id} name={f.key} type="file" accept={f.accept} onChange={(e) => set(f.key, e.currentTarget.files[0] || null)} />;
        else
          input = (
            <input id={id} name={f.key} type={f.type || 'text'} placeholder={f.placeholder} value={values[f.key]} autocomplete="off" onInput={(e) => set(f.key, e.currentTarget.value)} />
          );
        return (
          <div class={`field ${f.type === 'checkbox' ? 'check' : ''} ${error && error.field === f.key ? 'bad-field' : ''}`}>
            {f.type === 'checkbox' && input}
            <label for={id}>{f.label}</label>
            {f.type !== 'checkbox' && input}
            {f.hint && <span class="hint">{f.hint}</span>}
            {errorAt(f.key)}
          </div>
        );
      })}
      <div class="field actions">
        <button type="submit" disabled={busy || disabled} data-testid={`${testid}-submit`}>
          {busy ? 'Working…' : label}
        </button>
        {error && !error.field && (
          <span class="field-error" role="alert" data-testid={`${testid}-error`}>
            {error.message}
          </span>
        )}
        {done && (
          <span class="ok-note" data-testid={`${testid}-done`}>
            {done}
          </span>
        )}
      </div>
    </form>
  );
}

// A button that runs one request; with confirm, a second click on "Yes"
// is needed.  Its outcome (the server's sentence on failure) beside it.
export function Action({ testid, label, run, confirm, secondary, disabled }) {
  const [asking, setAsking] = useState(false);
  const [busy, setBusy] = useState(false);
  const [outcome, setOutcome] = useState(null);
  const go = async () => {
    setAsking(false);
    setBusy(true);
    setOutcome(null);
    try {
      const said = await run();
      setOutcome({ ok: true, text: said || 'Done.' });
    } catch (e) {
      setOutcome({ ok: false, text: e.message });
    } finally {
      setBusy(false);
    }
  };
  return (
    <span class="action">
      {asking ? (
        <>
          <span class="confirm">{confirm}</span>
          <button class="danger" data-testid={`${testid}-yes`} onClick={go}>
            Yes
          </button>
          <button class="secondary" onClick={() => setAsking(false)}>
            No
          </button>
        </>
      ) : (
        <button class={secondary ? 'secondary' : ''} data-testid={testid} disabled={busy || disabled} onClick={() => (confirm ? setAsking(true) : go())}>
          {busy ? 'Working…' : label}
        </button>
      )}
      {outcome && (
        <span class={outcome.ok ? 'ok-note' : 'field-error'} role={outcome.ok ? undefined : 'alert'} data-testid={`${testid}-outcome`}>
          {outcome.text}
        </span>
      )}
    </span>
  );
}

// A page's frame: its title, the live data's error if a refetch failed.
export function Page({ title, testid, error, children }) {
  return (
    <div class="admin-page" data-testid={testid}>
      <h1>{title}</h1>
      {error && (
        <div class="error" role="alert">
          {error.message}
        </div>
      )}
      {children}
    </div>
  );
}

export function Section({ title, children, testid }) {
  return (
    <section class="card wide" data-testid={testid}>
      <h2>{title}</h2>
      {children}
    </section>
  );
}

export function Loading({ error }) {
  return error ? (
    <div class="error" role="alert">
      {error.message}
    </div>
  ) : (
    <div class="loading">Loading…</div>
  );
}

export function when(ms) {
  if (ms === null || ms === undefined) return '–';
  return new Date(ms).toLocaleString();
}

export { level };

export function Bar({ pct, testid, label }) {
  const p = Math.max(0, Math.min(100, pct));
  return (
    <div class={`bar ${level(p)}`} data-testid={testid} data-level={level(p)}>
      <div class="fill" style={{ width: `${p}%` }} />
      <span>{label || `${Math.round(p)} %`}</span>
    </div>
  );
}

export function bytes(n) {
  if (n === null || n === undefined) return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}

// "a=1\nb=2" (or commas) as {a: "1", b: "2"}; a line without '=' is an error
// the form shows (nothing is sent).
export function keyValues(text, what) {
  const out = {};
  for (const part of (text || '').split(/[\n,]/)) {
    const t = part.trim();
    if (!t) continue;
    const eq = t.indexOf('=');
    if (eq <= 0) throw new Error(`${what}: '${t}' is not KEY=VALUE.`);
    out[t.slice(0, eq).trim()] = t.slice(eq + 1).trim();
  }
  return out;
}

export function words(text) {
  return (text || '')
    .split(/[\s,]+/)
    .map((s) => s.trim())
    .filter(Boolean);
}

export const enc = encodeURIComponent;

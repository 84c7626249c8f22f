// Live updates: one EventSource on /api/v1/events (src/api/events.c says
// what each event carries).  Pages either subscribe to the kinds of
// objects they show — a burst of changes becomes at most one refetch per
// subscriber every DEBOUNCE_MS (the first at once) — or watch the events
// themselves (the VM list, which fetches only the VMs an event names).  A
// reconnect (the node restarted, the stream was cut because this tab fell
// behind) refetches everything: what changed meanwhile is unknown.

const DEBOUNCE_MS = 150;
const subscribers = new Set(); // { kinds: Set|null, fn, timer }
const watchers = new Set(); // fn(event)
let source = null;
const statusListeners = new Set();
let connected = false;

function setConnected(value) {
  if (connected === value) return;
  connected = value;
  statusListeners.forEach((fn) => fn(value));
}

export function isLive() {
  return connected;
}

export function onLiveStatus(fn) {
  statusListeners.add(fn);
  return () => statusListeners.delete(fn);
}

// The first change after a quiet spell is fetched at once; more within
// DEBOUNCE_MS of it make one more fetch at its end (a burst costs at most
// one fetch per DEBOUNCE_MS, and a lone change reaches the screen without
// waiting).  Returns the trigger: call it at each change.
export function debounced(fn, ms = DEBOUNCE_MS) {
  let timer = null;
  let again = false;
  const quiet = () => {
    timer = null;
    if (!again) return;
    again = false;
    fn();
    timer = setTimeout(quiet, ms);
  };
  const trigger = () => {
    if (timer) {
      again = true;
      return;
    }
    fn();
    timer = setTimeout(quiet, ms);
  };
  trigger.cancel = () => {
    clearTimeout(timer);
    timer = null;
    again = false;
  };
  return trigger;
}

// Every subscriber of kind (and the watchers) told of event ev:
//   {type: 'change', kind, id, name, op}   an object of the store
//   {type: 'facts', node, vms}             what a node says of itself; vms:
//                                          the UUIDs of the VMs it concerns,
//                                          absent when the server cannot say
//   {type: 'membership'}                   a node lost or back
//   {type: 'reload'}                       anything may have changed
function dispatch(kind, ev) {
  for (const sub of subscribers) {
    if (kind === '*' || !sub.kinds || sub.kinds.has(kind)) sub.trigger();
  }
  for (const fn of watchers) fn(ev);
}

export function startLive() {
  if (source) return;
  source = new EventSource('/api/v1/events', { withCredentials: true });
  let opened = false;
  const data = (e) => {
    try {
      return JSON.parse(e.data) || {};
    } catch {
      return null;
    }
  };
  source.addEventListener('hello', () => {
    setConnected(true);
    if (opened) dispatch('*', { type: 'reload' });
    opened = true;
  });
  source.addEventListener('change', (e) => {
    const msg = data(e);
    if (!msg || !msg.kind || msg.kind === '*') dispatch('*', { type: 'reload' });
    else dispatch(msg.kind, { type: 'change', kind: msg.kind, id: msg.id, name: msg.name, op: msg.op });
  });
  source.addEventListener('membership', () => dispatch('membership', { type: 'membership' }));
  source.addEventListener('facts', (e) => {
    const msg = data(e) || {};
    dispatch('facts', { type: 'facts', node: msg.node, vms: Array.isArray(msg.vms) ? msg.vms : undefined });
  });
  source.onerror = () => setConnected(false);
}

export function stopLive() {
  if (source) source.close();
  source = null;
  setConnected(false);
}

// Call fn (debounced) whenever an object of one of kinds changes ('*':
// any; 'membership': a node lost or back; 'facts': what a node reports
// of itself, its VMs' states).  Returns the unsubscribe.
export function subscribe(kinds, fn) {
  const sub = { kinds: kinds ? new Set(kinds) : null, trigger: debounced(fn) };
  subscribers.add(sub);
  return () => {
    sub.trigger.cancel();
    subscribers.delete(sub);
  };
}

// Call fn(event) at every event, at once (see dispatch for what they
// are); the caller batches.  Returns the unsubscribe.
export function watch(fn) {
  watchers.add(fn);
  return () => watchers.delete(fn);
}

// Live updates: one EventSource on /api/v1/events.  Pages subscribe to the
// kinds of objects they show; a burst of changes becomes at most one
// refetch per subscriber every DEBOUNCE_MS (the first at once), and a reconnect (the node restarted, the stream
// was cut because this tab fell behind) refetches everything.

const DEBOUNCE_MS = 150;
const subscribers = new Set(); // { kinds: Set|null, fn, timer }
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
// waiting).
function schedule(sub) {
  if (sub.timer) {
    sub.again = true;
    return;
  }
  sub.fn();
  const quiet = () => {
    sub.timer = null;
    if (!sub.again) return;
    sub.again = false;
    sub.fn();
    sub.timer = setTimeout(quiet, DEBOUNCE_MS);
  };
  sub.timer = setTimeout(quiet, DEBOUNCE_MS);
}

function dispatch(kind) {
  for (const sub of subscribers) {
    if (kind === '*' || !sub.kinds || sub.kinds.has(kind)) schedule(sub);
  }
}

export function startLive() {
  if (source) return;
  source = new EventSource('/api/v1/events', { withCredentials: true });
  let opened = false;
  source.addEventListener('hello', () => {
    setConnected(true);
    // After a reconnect, what changed meanwhile is unknown: refetch it all.
    if (opened) dispatch('*');
    opened = true;
  });
  source.addEventListener('change', (ev) => {
    let msg = {};
    try {
      msg = JSON.parse(ev.data);
    } catch {
      msg = { kind: '*' };
    }
    dispatch(msg.kind || '*');
  });
  source.addEventListener('membership', () => dispatch('membership'));
  // A node's own report changed (its VMs' states): kind 'facts'.
  source.addEventListener('facts', () => dispatch('facts'));
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
  const sub = { kinds: kinds ? new Set(kinds) : null, fn, timer: null, again: false };
  subscribers.add(sub);
  return () => {
    clearTimeout(sub.timer);
    subscribers.delete(sub);
  };
}

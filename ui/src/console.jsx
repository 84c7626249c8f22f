import { useEffect, useRef, useState } from 'preact/hooks';
import RFB from '@novnc/novnc';
import { ApiError, get, post } from './api.js';

// The VNC console of a VM in the browser (docs/console.md): a one-time
// ticket from this node (POST /api/v1/vms/NAME/console), then noVNC on
// this node's websocket, which herdd carries to the VM wherever it runs.
// When the websocket ends, the VM says why: still running (it moved live,
// so the relay ended): a new ticket and a new connection; stopped or
// deleted: the console is gone, and says so.

const RETRY_MS = 1000;
const RETRY_LIMIT = 30; // tickets in a row that give no screen before giving up

// Why the console cannot be (re)opened, as a sentence; null if it can.
async function gone(vm) {
  try {
    const v = await get(`/api/v1/vms/${encodeURIComponent(vm)}`);
    if (v.state !== 'running' && v.state !== 'paused' && v.target !== 'running')
      return `VM ${vm} is ${v.state}: its console is closed.`;
    return null;
  } catch (e) {
    if (e instanceof ApiError && e.status === 404) return `VM ${vm} was deleted: its console is gone.`;
    return null; // this node did not answer: try again
  }
}

export function Console({ vm }) {
  const screen = useRef(null);
  // status: connecting | connected | reconnecting | closed
  const [state, setState] = useState({ status: 'connecting', message: null, node: null, connects: 0 });
  const [attempt, setAttempt] = useState(0); // "Open again" after it closed

  useEffect(() => {
    let rfb = null;
    let stopped = false;
    let timer = null;
    let failures = 0;
    let connects = state.connects;

    const closed = (message) => {
      stopped = true;
      setState((s) => ({ ...s, status: 'closed', message }));
    };

    const open = async () => {
      if (stopped) return;
      let t;
      try {
        t = await post(`/api/v1/vms/${encodeURIComponent(vm)}/console`);
      } catch (e) {
        // Not running (409), deleted (404), not allowed (403): say so;
        // during a move the VM may be between nodes for a moment.
        const why = e.status === 403 ? e.message : await gone(vm);
        if (why || ++failures > RETRY_LIMIT) return closed(why || e.message);
        timer = setTimeout(open, RETRY_MS);
        return;
      }
      if (stopped) return;
      const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
      const url = `${scheme}//${location.host}${t.path}`;
      setState((s) => ({ ...s, node: t.node }));
      rfb = new RFB(screen.current, url, { wsProtocols: [t.protocol || 'binary'], shared: true });
      rfb.scaleViewport = true;
      rfb.background = '#222';
      rfb.addEventListener('connect', () => {
        failures = 0;
        connects++;
        setState((s) => ({ ...s, status: 'connected', message: null, connects }));
      });
      rfb.addEventListener('disconnect', async () => {
        rfb = null;
        if (stopped) return;
        setState((s) => ({ ...s, status: 'reconnecting' }));
        const why = await gone(vm);
        if (why) return closed(why);
        if (++failures > RETRY_LIMIT) return closed(`The console of VM ${vm} did not reconnect.`);
        timer = setTimeout(open, failures === 1 ? 0 : RETRY_MS);
      });
    };
    open();
    return () => {
      stopped = true;
      clearTimeout(timer);
      if (rfb) rfb.disconnect();
    };
  }, [vm, attempt]);
  const again = () => {
    setState((s) => ({ ...s, status: 'connecting', message: null }));
    setAttempt(attempt + 1);
  };

  const label = {
    connecting: 'connecting…',
    connected: `connected${state.node ? ` (VM on node ${state.node})` : ''}`,
    reconnecting: 'reconnecting…',
    closed: 'closed',
  }[state.status];
  return (
    <div class="console">
      <div class="toolbar">
        <span class={`console-status ${state.status}`} data-testid="console-status">
          {label}
        </span>
        <span class="muted" data-testid="console-connects">
          {`${state.connects} connection${state.connects === 1 ? '' : 's'}`}
        </span>
      </div>
      {state.message && (
        <div class="error" role="alert" data-testid="console-message">
          {state.message}
        </div>
      )}
      {state.status === 'closed' && (
        <button class="secondary" onClick={again} data-testid="console-again">
          Open again
        </button>
      )}
      <div class={`console-screen ${state.status}`} ref={screen} data-testid="console-screen" />
    </div>
  );
}

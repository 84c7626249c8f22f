import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { get } from './api.js';
import { subscribe } from './live.js';

// The JSON of each of paths, fetched now and again whenever an object of
// kinds changes (live.js), or every refresh_ms for figures that move by
// themselves (RAM use).  A failed refetch keeps the last data and says why.
export function useLive(paths, kinds, refresh_ms) {
  const [state, setState] = useState({ data: null, error: null, loading: true });
  const seq = useRef(0);
  const key = paths.join('\n');
  const load = useCallback(async () => {
    const mine = ++seq.current;
    try {
      const data = await Promise.all(paths.map((p) => get(p)));
      if (mine === seq.current) setState({ data, error: null, loading: false });
    } catch (e) {
      if (mine === seq.current) setState((s) => ({ data: s.data, error: e, loading: false }));
    }
  }, [key]);
  useEffect(() => {
    load();
    const unsubscribe = subscribe(kinds, load);
    const timer = refresh_ms ? setInterval(load, refresh_ms) : null;
    return () => {
      unsubscribe();
      if (timer) clearInterval(timer);
    };
  }, [load]);
  return { ...state, reload: load };
}

// As useLive, but each of parts ({path, kinds}) is fetched again only when
// an object of its own kinds changes (a page of several lists: a job's
// progress does not fetch the cluster's status again).  data: the JSON of
// each path, once every one has come.
export function useLiveEach(parts, refresh_ms) {
  const [state, setState] = useState({ data: parts.map(() => undefined), error: null });
  const key = parts.map((p) => `${p.path} ${(p.kinds || ['*']).join(',')}`).join('\n');
  useEffect(() => {
    const seqs = parts.map(() => 0);
    let live = true;
    const loaders = parts.map(({ path }, i) => async () => {
      const mine = ++seqs[i];
      try {
        const value = await get(path);
        if (!live || mine !== seqs[i]) return;
        setState((s) => {
          const data = s.data.slice();
          data[i] = value;
          return { data, error: null };
        });
      } catch (e) {
        if (live && mine === seqs[i]) setState((s) => ({ data: s.data, error: e }));
      }
    });
    loaders.forEach((load) => load());
    const unsubscribes = parts.map(({ kinds }, i) => subscribe(kinds, loaders[i]));
    const timer = refresh_ms ? setInterval(() => loaders.forEach((load) => load()), refresh_ms) : null;
    return () => {
      live = false;
      unsubscribes.forEach((u) => u());
      if (timer) clearInterval(timer);
    };
  }, [key]);
  const complete = state.data.every((d) => d !== undefined);
  return { data: complete ? state.data : null, error: state.error };
}

// A form's submit handler: busy while run() runs, the message of what it
// threw kept as the error (cleared at the next submit).
export function useSubmit(run) {
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await run();
    } catch (err) {
      setError(err.message);
    } finally {
      setBusy(false);
    }
  };
  return { busy, error, submit };
}

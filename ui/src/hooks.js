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

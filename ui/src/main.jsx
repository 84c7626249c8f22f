import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { api, get, onUnauthorized, setCsrfToken } from './api.js';
import { onLiveStatus, startLive, stopLive } from './live.js';
import { Link, navigate, usePath } from './router.jsx';
import { Login } from './login.jsx';
import { Setup } from './setup.jsx';
import { Dashboard } from './dashboard.jsx';
import { VmList } from './vm_list.jsx';
import { VmNew, VmPage, vmRoute } from './vm_page.jsx';
import { VmHistoryPage } from './vm_history.jsx';
import { adminNav, adminPage } from './admin_routes.jsx';
import { JobsPanel } from './jobs.jsx';
import './style.css';

// The user and its roles as `herd whoami` says them: "aud (auditor)",
// with the pools an operator role is limited to.
function whoami(s) {
  const roles = (s.roles || []).join(', ') || 'no role';
  const pools = (s.pools || []).length && !s.operate_all ? `; VM pools ${s.pools.join(', ')}` : '';
  return `${s.user} (${roles}${pools})`;
}

function Shell({ session, onLogout, children }) {
  const path = usePath();
  const [live, setLive] = useState(false);
  const [error, setError] = useState(null);
  useEffect(() => onLiveStatus(setLive), []);
  const logout = async () => {
    try {
      await api('POST', '/api/v1/logout', {});
      onLogout();
    } catch (e) {
      setError(e.message);
    }
  };
  const nav = (href, label) => (
    <Link href={href} class={path === href ? 'active' : ''}>
      {label}
    </Link>
  );
  return (
    <div class="shell">
      <header>
        <span class="brand">herd</span>
        <nav>
          {nav('/', 'Dashboard')}
          {nav('/vms', 'Virtual machines')}
          {adminNav.map(([href, label]) => nav(href, label))}
        </nav>
        <JobsPanel />
        <span class={live ? 'live on' : 'live off'} data-testid="live" title="Live updates">
          {live ? 'live' : 'reconnecting…'}
        </span>
        <span class="who" data-testid="user" title="herd whoami">
          {whoami(session)}
        </span>
        <button class="secondary" data-testid="logout" onClick={logout}>
          Log out
        </button>
      </header>
      {error && (
        <div class="error" role="alert">
          {error}
        </div>
      )}
      <main>{children}</main>
    </div>
  );
}

function App() {
  const path = usePath();
  // undefined: not known yet; null: not logged in.
  const [session, setSession] = useState(undefined);
  // This node while it is in no cluster (its setup page); else null.
  const [blank, setBlank] = useState(null);

  const loadSession = async () => {
    try {
      const node = await get('/api/v1/node');
      if (node.member === false) {
        setBlank(node);
        setSession(null);
        return;
      }
    } catch {
      // not known: as a member (the login says what is wrong)
    }
    try {
      const s = await get('/api/v1/session');
      setCsrfToken(s.csrf_token);
      setSession(s);
    } catch {
      setSession(null);
    }
  };
  useEffect(() => {
    loadSession();
    return onUnauthorized(() => setSession(null));
  }, []);
  useEffect(() => {
    if (session) startLive();
    else stopLive();
    if (session === null && !blank && path !== '/login') navigate('/login');
    if (session && path === '/login') navigate('/');
  }, [session, path]);

  if (session === undefined) return <div class="loading">Loading…</div>;
  if (blank) return <Setup node={blank} />;
  if (!session) return <Login onLogin={loadSession} />;
  const logout = () => {
    setCsrfToken(null);
    setSession(null);
  };
  let page;
  const vmr = vmRoute(path);
  if (path === '/vms') page = <VmList session={session} />;
  else if (path === '/vms/new') page = <VmNew />;
  else if (path === '/history') page = <VmHistoryPage />;
  else if (vmr) page = <VmPage key={vmr.name} name={vmr.name} tab={vmr.tab} />;
  else page = adminPage(path) || <Dashboard />;
  return (
    <Shell session={session} onLogout={logout}>
      {page}
    </Shell>
  );
}

render(<App />, document.getElementById('app'));

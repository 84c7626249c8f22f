import { useState } from 'preact/hooks';
import { login } from './api.js';
import { useSubmit } from './hooks.js';

export function Login({ onLogin }) {
  const [user, setUser] = useState('');
  const [password, setPassword] = useState('');
  const { busy, error, submit } = useSubmit(async () => {
    await login(user, password);
    setPassword('');
    await onLogin();
  });
  return (
    <div class="login">
      <form onSubmit={submit} data-testid="login-form">
        <h1>herd</h1>
        <p class="muted">Cluster administration — {location.host}</p>
        <label>
          User
          <input name="user" autocomplete="username" value={user} onInput={(e) => setUser(e.target.value)} autofocus />
        </label>
        <label>
          Password
          <input
            name="password"
            type="password"
            autocomplete="current-password"
            value={password}
            onInput={(e) => setPassword(e.target.value)}
          />
        </label>
        {error && (
          <div class="error" role="alert" data-testid="login-error">
            {error}
          </div>
        )}
        <button type="submit" disabled={busy}>
          Log in
        </button>
      </form>
    </div>
  );
}

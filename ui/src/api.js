// The API as the pages use it: same-origin requests with the session
// cookie, the CSRF token on every change, and errors carrying the server's
// own sentence.

let csrfToken = null;

export function setCsrfToken(token) {
  csrfToken = token || null;
}

// An error the server answered: its sentence, code and HTTP status.
export class ApiError extends Error {
  constructor(message, code, status) {
    super(message);
    this.code = code;
    this.status = status;
  }
}

// Listeners told when a request finds the session gone (401).
const unauthorizedListeners = new Set();
export function onUnauthorized(fn) {
  unauthorizedListeners.add(fn);
  return () => unauthorizedListeners.delete(fn);
}

export async function api(method, path, body, extraHeaders = {}) {
  const headers = { Accept: 'application/json', ...extraHeaders };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (method !== 'GET' && method !== 'HEAD' && csrfToken) headers['X-CSRF-Token'] = csrfToken;
  let res;
  try {
    res = await fetch(path, {
      method,
      headers,
      credentials: 'same-origin',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    throw new ApiError(`This node does not answer (${e.message}).`, 'unreachable', 0);
  }
  const text = await res.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!res.ok) {
    const err = data && data.error;
    const message = err && err.message ? err.message : `The server answered ${res.status} ${res.statusText}.`;
    if (res.status === 401 && !path.endsWith('/login')) unauthorizedListeners.forEach((fn) => fn());
    throw new ApiError(message, err ? err.code : 'http', res.status);
  }
  return data;
}

export const get = (path) => api('GET', path);
export const post = (path, body) => api('POST', path, body ?? {});

// Log in with a password (HTTP Basic, once): the answer sets the session
// cookie and gives the CSRF token.
export async function login(user, password, ttl_s) {
  const basic = btoa(unescape(encodeURIComponent(`${user}:${password}`)));
  const data = await api('POST', '/api/v1/login', ttl_s ? { ttl_s } : undefined, {
    Authorization: `Basic ${basic}`,
  });
  setCsrfToken(data.csrf_token);
  return data;
}

// For requests that api() cannot make (an upload with its progress).
export function getCsrfToken() {
  return csrfToken;
}

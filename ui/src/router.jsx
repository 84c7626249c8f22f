import { useEffect, useState } from 'preact/hooks';

// Client-side routes: herdd answers index.html for any path without an
// extension, so /vms can be loaded directly.
const listeners = new Set();

export function navigate(path) {
  if (location.pathname === path) return;
  history.pushState(null, '', path);
  listeners.forEach((fn) => fn(path));
}

window.addEventListener('popstate', () => listeners.forEach((fn) => fn(location.pathname)));

export function usePath() {
  const [path, setPath] = useState(location.pathname);
  useEffect(() => {
    listeners.add(setPath);
    return () => listeners.delete(setPath);
  }, []);
  return path;
}

export function Link({ href, children, ...rest }) {
  const click = (e) => {
    if (e.ctrlKey || e.metaKey || e.shiftKey || e.button !== 0) return;
    e.preventDefault();
    navigate(href);
  };
  return (
    <a href={href} onClick={click} {...rest}>
      {children}
    </a>
  );
}

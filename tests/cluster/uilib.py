"""The web UI's tests' shared part (test_ui.py, test_ui_admin.py): a
headless Chromium driven step by step (tests/ui/browser.mjs), curl and
the API's error sentences from inside a test node."""
import json
import os
import select
import subprocess
import sys

_here = os.path.dirname(os.path.realpath(__file__))
sys.path[:0] = [_here, os.path.dirname(_here)]
from testlib import TestFailure, build_dir, say, wait_until  # noqa: E402

REPO = os.path.dirname(os.path.dirname(_here))
BROWSER = os.path.join(REPO, "tests", "ui", "browser.mjs")
SHOTS = os.path.join(build_dir(), "ui-screenshots")

# Evaluated in a page: window.__facts collects the facts events of
# /api/v1/events from now on, and the resource timings before now are
# cleared (performance.getEntriesByType('resource'): what the page fetches
# next).
WATCH_FACTS_JS = """(() => {
  window.__facts = [];
  const s = new EventSource('/api/v1/events', { withCredentials: true });
  s.addEventListener('facts', (e) => window.__facts.push(JSON.parse(e.data)));
  performance.clearResourceTimings();
  return new Promise((r) => s.addEventListener('hello', () => r(true)));
})()"""


class Browser:
    """tests/ui/browser.mjs in node @i's network namespace (the host's files:
    chromium, ui/node_modules), one step per call."""

    def __init__(self, tn, i, log="browser.log"):
        os.makedirs(SHOTS, exist_ok=True)
        self.log = open(os.path.join(SHOTS, log), "w")
        env = dict(os.environ, HERD_UI_SHOTS=SHOTS)
        self.p = subprocess.Popen(["nsenter", f"--net=/run/netns/{tn.tn.netns(i)}", "--",
                                   "node", BROWSER],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=self.log, text=True, env=env)

    def __call__(self, op, **kw):
        # The step's own timeout (ms, the browser's default 15 s), and time
        # for the browser to say so.
        timeout_s = kw.get("timeout", 15000) / 1000 + 60
        self.p.stdin.write(json.dumps(dict(kw, op=op)) + "\n")
        self.p.stdin.flush()
        ready, _, _ = select.select([self.p.stdout], [], [], timeout_s)
        line = self.p.stdout.readline() if ready else ""
        if not line:
            self.log.flush()
            with open(self.log.name) as f:
                tail = f.read()[-2000:]
            raise TestFailure(f"browser: {op} {kw}: no answer; its log ({self.log.name}) ends:\n{tail}")
        answer = json.loads(line)
        if not answer["ok"]:
            raise TestFailure(f"browser: {op} {kw}: {answer['error']}")
        return answer["value"]

    def shot(self, page, name, full=False, testid=None):
        """A screenshot of @page (@full: all of it), or of its element
        [data-testid=@testid] alone."""
        path = self(op="screenshot", page=page, name=name, full=full, testid=testid)
        say(f"  screenshot {path}")

    def close(self):
        try:
            self.p.stdin.close()
            self.p.wait(timeout=30)
        except (subprocess.TimeoutExpired, OSError):
            self.p.kill()
            self.p.wait()
        self.log.close()


def field(form, name):
    """The selector of input @name in form [data-testid=@form] (forms.jsx)."""
    return f"[data-testid={form}] [name={name}]"


def fill(b, page, form, **values):
    """Type @values into the text fields of form @form, by their names."""
    for name, value in values.items():
        b("fill", page=page, selector=field(form, name), value=str(value))


def submit(b, page, form, timeout=60000):
    """Submit form @form (forms.jsx) and wait for its outcome: its success
    line, or a TestFailure with the server's sentence it shows."""
    b("click", page=page, testid=f"{form}-submit")
    b("wait_visible", page=page, selector=f"[data-testid={form}-done],[data-testid={form}-error]",
      timeout=timeout)
    if b("count", page=page, selector=f"[data-testid={form}-error]"):
        raise TestFailure(f"form {form} says: {b('text', page=page, testid=f'{form}-error')}")
    return b("text", page=page, testid=f"{form}-done")


def curl(tn, i, path, node=None, auth=None, token=None, extra=()):
    """(status, headers, body) of GET https://10.99.0.NODE:8001PATH from node i
    (the path sent as is: no '..' folding)."""
    argv = ["curl", "-sk", "--path-as-is", "-D", "/dev/stderr", "-w", "\n%{http_code}", "--max-time", "10",
            f"https://10.99.0.{node or i}:8001{path}", *extra]
    if auth:
        argv += ["-u", auth]
    if token:
        argv += ["-H", f"Authorization: Bearer {token}"]
    p = tn.exec(i, *argv)
    body, _, code = p.stdout.rpartition("\n")
    headers = {}
    for line in p.stderr.splitlines():
        k, sep, v = line.partition(":")
        if sep:
            headers[k.strip().lower()] = v.strip()
    return (int(code) if code.isdigit() else 0), headers, body


def api_message(tn, i, method, path, auth, body=None):
    """The server's sentence for a request that fails (from node i, to itself)."""
    argv = ["curl", "-sk", "-X", method, "-u", auth, "-H", "Content-Type: application/json",
            f"https://10.99.0.{i}:8001{path}"]
    if body is not None:
        argv += ["--data-binary", json.dumps(body)]
    p = tn.exec(i, *argv)
    try:
        return json.loads(p.stdout)["error"]["message"]
    except (ValueError, KeyError, TypeError):
        raise TestFailure(f"{method} {path}: no error answer: {p.stdout}{p.stderr}") from None


def login(b, page, url, user, password):
    """Open url on a new page, log in there as user; back on the dashboard."""
    b("open", page=page, url=url)
    b("wait_url", page=page, path="/login")
    b("fill", page=page, selector="input[name=user]", value=user)
    b("fill", page=page, selector="input[name=password]", value=password)
    b("click", page=page, selector="button[type=submit]")
    b("wait_url", page=page, path="/")
    b("wait_text", page=page, testid="live", equals="live")


def dashboard_figures(b, page):
    ids = ["nodes-active", "ha-running", "vms-defined", "vms-running", "vms-paused", "quorum",
           "alerts-critical", "alerts-warning", "alerts-info"]
    return b("texts", page=page, testids=ids)


def expected_figures(ha, i):
    """What the dashboard must show, from node i's `herd status --json`, and
    its alerts by severity from node i's `herd alert list --json`."""
    st = ha.status(i)
    nodes = st["cluster"]["nodes"]
    vms = st["vms"]
    quorate = st["cluster"]["quorum"]["quorate"]
    alerts = ha.json(i, "alert", "list")
    return {
        "nodes-active": f"{sum(1 for n in nodes if n['online'])} of {len(nodes)}",
        "ha-running": f"{vms['ha_running']}/{vms['ha']}",
        "vms-defined": str(vms["defined"]),
        "vms-running": str(vms["running"]),
        "vms-paused": str(vms["paused"]),
        "quorum": "quorate" if quorate else "NOT quorate",
        **{f"alerts-{sev}": str(sum(1 for a in alerts if a["severity"] == sev))
           for sev in ("critical", "warning", "info")},
    }


def dashboard_matches(b, ha, page, i, timeout=30):
    """The dashboard of @page shows what node i's herd status says (both read
    again until they agree: the figures move while VMs start)."""
    last = {}

    def same():
        nonlocal last
        want = expected_figures(ha, i)
        seen = dashboard_figures(b, page)
        last = {"herd status": want, "dashboard": seen}
        return all(seen.get(k) == v for k, v in want.items())
    try:
        wait_until(same, timeout, f"the dashboard of {page} to show n{i}'s herd status", interval=0.5)
    except TestFailure as e:
        raise TestFailure(f"{e}: {last}") from None
    return last["dashboard"]


def add_auditor(ha, tmp, name, password):
    """User @name, in group auditors (role auditor: reads, changes nothing)."""
    path = os.path.join(tmp, f"{name}.pw")
    with open(path, "w") as f:
        f.write(password + "\n")
    ha.ok(1, "user", "add", name, "--new-password-file", path)
    ha.ok(1, "group", "add", "auditors", "--roles", "auditor", "--members", name)


def admin_password(tn):
    return open(os.path.join(tn.tn.dir, "admin-password")).read().strip()

#!/usr/bin/python3
"""The web UI in a real browser (issue 12, items 1, 5, 6; docs/ui.md).

Two nodes.  A headless Chromium (tests/ui/browser.mjs: Debian's chromium
driven by playwright-core) runs in n2's network namespace and opens the UI
of both nodes over HTTPS:
- herdd serves the UI's files: MIME types, a Content-Security-Policy,
  hashed assets cached for ever and index.html revalidated, index.html for
  the UI's own routes, no way out of the directory; the API stays
  protected; GET /api/v1/events streams server-sent events;
- a wrong password shows the server's sentence; admin logs in on n1;
- the dashboard's figures equal `herd status --json`'s;
- from the VM list admin starts a VM, which shows running without a reload
  (live updates); a migration to a node that does not exist shows the
  server's error;
- an auditor on n2 is refused a start and sees the server's sentence;
- logout ends the auditor's session;
- n1 is powered off: n2's dashboard shows n1 lost and its figures equal
  n2's `herd status --json` again, while n1's page says it lost its node.
Every page is photographed into BUILD/ui-screenshots/ (docs/ui.md shows
them).
"""
import json
import os
import re
import subprocess
import sys
import time

_here = os.path.dirname(os.path.realpath(__file__))
sys.path[:0] = [_here, os.path.dirname(_here)]  # harness.py here, testlib.py in tests/
from halib import Ha, HaNodes, Workdir  # noqa: E402
from testlib import check, expect, run_test, say  # noqa: E402
from uilib import Browser, add_auditor, admin_password, api_message, curl, dashboard_matches  # noqa: E402

INSTANCE = os.environ.get("HERD_TESTNODES_INSTANCE", "test-ui")
AUD_PW = "Aud1tor-pw-7781"


def serving(tn, ha, admin):
    say("== herdd serves the UI's files; the API stays protected")
    code, h, index = curl(tn, 2, "/", node=1)
    check(code == 200 and h.get("content-type", "").startswith("text/html"), f"GET /: {code} {h}")
    check(h.get("cache-control") == "no-cache", f"index.html's Cache-Control: {h}")
    csp = h.get("content-security-policy", "")
    check("default-src 'self'" in csp and "script-src 'self'" in csp and "frame-ancestors 'none'" in csp,
          f"GET /: Content-Security-Policy: {csp!r}")
    assets = re.findall(r'"/assets/([^"]+)"', index)
    check(any(a.endswith(".js") for a in assets) and any(a.endswith(".css") for a in assets),
          f"index.html names no script and style: {index}")
    for a in assets:
        code, h, _ = curl(tn, 2, f"/assets/{a}", node=1)
        want = "text/javascript" if a.endswith(".js") else "text/css"
        check(code == 200 and h.get("content-type", "").startswith(want) and
              "immutable" in h.get("cache-control", "") and re.search(r"-[A-Z0-9]{8}\.", a),
              f"GET /assets/{a}: {code} {h}")
    code, h, body = curl(tn, 2, "/vms", node=1)
    check(code == 200 and body == index, f"GET /vms (a route of the UI): {code}, not index.html")
    for path in ("/../../etc/passwd", "/assets/../../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd",
                 "/.hidden", "/assets/..%2f..%2fetc/passwd"):
        code, _, body = curl(tn, 2, path, node=1)
        check(code in (400, 404) and "root:" not in body and "error" in body,
              f"GET {path}: {code} {body[:200]}")
    code, _, body = curl(tn, 2, "/assets/nosuch-12345678.js", node=1)
    check(code == 404 and "no file" in body, f"a missing asset: {code} {body}")
    for path in ("/api/v1/status", "/api/v1/events", "/metrics"):
        code, _, body = curl(tn, 2, path, node=1)
        check(code == 401, f"GET {path} without credentials: {code} {body[:200]}")
    say("  files: MIME types, CSP, caching, client routes; '..' and hidden files refused; API 401")

    # Server-sent events: the stream opens, says hello, and carries a change
    # made meanwhile; other requests are served while it stays open.
    login = json.loads(tn.exec(2, "curl", "-sk", "-X", "POST", "-u", admin,
                               "https://10.99.0.1:8001/api/v1/login").stdout)
    token = login["token"]
    stream = subprocess.Popen(tn.tn.node_argv(2, [
        "curl", "-sk", "-N", "-D", "/dev/stderr", "--max-time", "8", "-H", f"Authorization: Bearer {token}",
        "https://10.99.0.1:8001/api/v1/events"]), env=tn.tn.node_env(2),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1)
    code, _, _ = curl(tn, 2, "/api/v1/nodes", node=1, token=token)
    check(code == 200, f"GET /api/v1/nodes while an event stream is open: {code}")
    ha.ok(1, "vm", "set", "web2", "--shutdown-timeout", "3")
    out, err = stream.communicate(timeout=30)
    check("text/event-stream" in err and "event: hello" in out and
          re.search(r'event: change\ndata: \{"kind":"vm","id":"[0-9a-f-]{36}","name":"web2","op":"update"\}', out),
          f"GET /api/v1/events: headers {err!r}, stream {out!r}")
    say("  /api/v1/events: hello, then the change of web2, other requests served meanwhile")
    return token


def main():
    with HaNodes(INSTANCE, 2) as tn, Workdir(INSTANCE) as tmp:
        tn.wait_members([1, 2], 2)
        ha = Ha(tn, tmp)
        admin_pw = admin_password(tn)
        admin = f"admin:{admin_pw}"
        add_auditor(ha, tmp, "aud", AUD_PW)
        ha.define("web1", ha=True, preferred="n1", extra=["--shutdown-timeout", "2"])
        ha.define("web2", ha=False, preferred="n2", extra=["--shutdown-timeout", "2"])

        serving(tn, ha, admin)

        b = Browser(tn, 2)
        try:
            say("== login: a wrong password shows the server's sentence; admin logs in on n1")
            b("open", page="n1", url="https://10.99.0.1:8001/")
            b("wait_url", page="n1", path="/login")
            b.shot("n1", "login")
            b("fill", page="n1", selector="input[name=user]", value="admin")
            b("fill", page="n1", selector="input[name=password]", value="not-the-password")
            b("click", page="n1", selector="button[type=submit]")
            shown = b("wait_text", page="n1", testid="login-error", contains=".")
            want = api_message(tn, 1, "POST", "/api/v1/login", "admin:not-the-password")
            check(shown == want, f"the login page shows {shown!r}, the server said {want!r}")
            say(f"  wrong password: {shown}")
            b("fill", page="n1", selector="input[name=password]", value=admin_pw)
            b("click", page="n1", selector="button[type=submit]")
            b("wait_url", page="n1", path="/")
            b("wait_text", page="n1", testid="live", equals="live")

            say("== the dashboard shows what herd status --json says")
            seen = dashboard_matches(b, ha, "n1", 1)
            say(f"  n1's dashboard: {seen}")
            b.shot("n1", "dashboard", full=True)

            say("== the VM list: search, select, start; the row follows without a reload")
            b("click", page="n1", selector="nav a[href='/vms']")
            b("wait_visible", page="n1", testid="vm-row-web2")
            b("fill", page="n1", selector="[data-testid=vm-search]", value="web2")
            b("wait_text", page="n1", testid="vm-count", equals="1 of 2")
            b("click", page="n1", selector="[data-testid=vm-row-web2] input[type=checkbox]")
            b("wait_text", page="n1", testid="vm-selected", equals="1 selected")
            b("click", page="n1", testid="vm-start")
            outcome = b("wait_text", page="n1", testid="vm-outcome", contains="done", timeout=120000)
            b("wait_text", page="n1", testid="vm-state-web2", equals="running", timeout=60000)
            check(ha.vms(1)["web2"]["state"] == "running", f"herd says web2 is {ha.vms(1)['web2']['state']}")
            say(f"  started from the list: {outcome}")
            b("fill", page="n1", selector="[data-testid=vm-search]", value="")
            b("wait_text", page="n1", testid="vm-count", equals="2 of 2")
            b.shot("n1", "vms")

            say("== bad input: a migration to a node that does not exist")
            b("fill", page="n1", selector="[data-testid=vm-target]", value="nosuch")
            b("click", page="n1", testid="vm-migrate")
            shown = b("wait_text", page="n1", testid="vm-outcome", contains="web2:")
            want = api_message(tn, 1, "POST", "/api/v1/vms/web2/migrate", admin, {"node": "nosuch"})
            check(f"web2: {want}" in shown, f"the VM list shows {shown!r}, the server said {want!r}")
            say(f"  {shown}")
            b.shot("n1", "vms-bad-input")

            say("== the auditor on n2 is refused a start, with the server's sentence")
            b("open", page="aud", url="https://10.99.0.2:8001/vms")
            b("wait_url", page="aud", path="/login")
            b("fill", page="aud", selector="input[name=user]", value="aud")
            b("fill", page="aud", selector="input[name=password]", value=AUD_PW)
            b("click", page="aud", selector="button[type=submit]")
            b("click", page="aud", selector="nav a[href='/vms']")
            b("wait_visible", page="aud", testid="vm-row-web1")
            b("click", page="aud", selector="[data-testid=vm-row-web1] input[type=checkbox]")
            b("click", page="aud", testid="vm-start")
            shown = b("wait_text", page="aud", testid="vm-outcome", contains="web1:")
            want = api_message(tn, 2, "POST", "/api/v1/vms/web1/start", f"aud:{AUD_PW}")
            check(f"web1: {want}" in shown and want.endswith("."),
                  f"the auditor sees {shown!r}, the server said {want!r}")
            check(ha.vms(2)["web1"]["state"] != "running", "the auditor started web1")
            say(f"  {shown}")
            b.shot("aud", "auditor-refused")

            say("== logout (the auditor's, while the cluster can take the change)")
            b("click", page="aud", testid="logout")
            b("wait_url", page="aud", path="/login")
            r = b("fetch", page="aud", path="/api/v1/session")
            check(r["status"] == 401, f"GET /api/v1/session after logout: {r}")
            b.shot("aud", "logged-out")
            errors = b("console", page="aud")
            expect(not [e for e in errors if "Content Security Policy" in e or "page error" in e],
                   f"the auditor's page logged errors: {errors}")
            say("  logged out: the session is gone")
            b("close", page="aud")

            say("== n1 powered off: n2's UI goes on and shows n1 lost")
            b("open", page="n2", url="https://10.99.0.2:8001/")
            b("fill", page="n2", selector="input[name=user]", value="admin")
            b("fill", page="n2", selector="input[name=password]", value=admin_pw)
            b("click", page="n2", selector="button[type=submit]")
            b("wait_text", page="n2", testid="nodes-active", equals="2 of 2")
            b("wait_text", page="n2", testid="live", equals="live")
            b("goto", page="n1", path="/")
            b("wait_text", page="n1", testid="nodes-active", equals="2 of 2")
            tn.power_off(1)
            b("wait_text", page="n2", testid="nodes-active", equals="1 of 2", timeout=60000)
            state = b("wait_text", page="n2", testid="node-n1-state", contains="lost", timeout=60000)
            seen = dashboard_matches(b, ha, "n2", 2, timeout=60)
            say(f"  n2's dashboard: n1 {state}; {seen}")
            b("wait_text", page="n1", testid="live", equals="reconnecting…", timeout=60000)
            say("  n1's page: its node is gone (reconnecting)")
            b.shot("n2", "dashboard-n1-lost", full=True)
            b.shot("n1", "n1-gone")
            errors = b("console", page="n2")
            expect(not [e for e in errors if "Content Security Policy" in e or "page error" in e],
                   f"n2's page logged errors: {errors}")

        finally:
            b.close()


if __name__ == "__main__":
    sys.exit(run_test(main))

#!/usr/bin/python3
"""Forming a cluster from the web UI (issue 12 item 1; docs/cluster.md,
"Forming from the web UI"), on two blank test nodes without libvirtd.

- A blank node's API lets nobody in without its setup code (`herd cluster
  setup-code`, root only): no login, a wrong code refused with a sentence,
  the right code good for create, join and the look at a member only (an
  address that is none, a node that is no member: refused with a sentence).
- n1's page (HTTPS, its self-signed certificate, whose fingerprint the page
  and `herd cluster setup-code` show alike): a wrong setup code and a bad
  link address are refused next to their field, nothing changes; then the
  cluster is created and the browser lands on the cluster's login.
- n1's Cluster page shows the join information; on n2's own page a join
  with a wrong fingerprint is refused with the member's sentence and
  changes nothing; the join information pasted joins it, and both nodes are
  in `herd cluster status`; n2 leaves from its own Cluster page and shows
  its setup page again.
Screenshots go to BUILD/ui-screenshots/ (cluster-*.png).
"""
import json
import os
import sys
import time

_here = os.path.dirname(os.path.realpath(__file__))
sys.path[:0] = [_here, os.path.dirname(_here)]  # harness.py here, testlib.py in tests/
from harness import TestNodes  # noqa: E402
from testlib import check, run_test, say, wait_until  # noqa: E402
from uilib import Browser, curl, login  # noqa: E402

INSTANCE = os.environ.get("HERD_TESTNODES_INSTANCE", "test-ui-cluster")
URL = "https://10.99.0.{}:8001/"
ADMIN_PW = "Cluster-admin-pw-4471"


def herd(tn, i, *args):
    return tn.exec(i, "herd", *args, timeout=90)


def setup_code(tn, i):
    p = herd(tn, i, "--json", "cluster", "setup-code")
    check(p.returncode == 0, f"n{i}: herd cluster setup-code: {p.stderr.strip()}")
    return json.loads(p.stdout)


def error_of(body):
    try:
        return json.loads(body)["error"]["message"]
    except (ValueError, KeyError, TypeError):
        return body


def not_member(tn, i):
    p = herd(tn, i, "cluster", "status")
    check(p.returncode != 0 and "not part of a cluster" in p.stderr,
          f"n{i} should be in no cluster: {p.stdout}{p.stderr}")


def api_refusals(tn, code):
    say("== a blank node's API: nothing without the setup code")
    post = ["-X", "POST", "-H", "Content-Type: application/json", "--data-binary",
            json.dumps({"name": "evil", "links": ["10.99.0.1"], "password": "whatever-pw"})]
    status, _, body = curl(tn, 1, "/api/v1/cluster", extra=post)
    check(status == 401, f"no credentials: {status} {body}")
    status, _, body = curl(tn, 1, "/api/v1/cluster", auth="#setup:AAAA-BBBB-CCCC", extra=post)
    check(status == 401 and error_of(body).startswith("Wrong setup code"), f"a wrong code: {status} {body}")
    say(f"  a wrong code: {status} {error_of(body)}")
    status, _, body = curl(tn, 1, "/api/v1/status", auth=f"#setup:{code}")
    check(status == 403 and "creates or joins a cluster, nothing else" in error_of(body),
          f"the code elsewhere: {status} {body}")
    say(f"  the right code elsewhere: {status} {error_of(body)}")
    for address, want in (("bad host!", "is not a host name or an IP address"),
                          ("10.99.0.2", "10.99.0.2 answers: This node is not part of a cluster.")):
        probe = ["-X", "POST", "-H", "Content-Type: application/json", "--data-binary",
                 json.dumps({"address": address})]
        status, _, body = curl(tn, 1, "/api/v1/cluster/probe", auth=f"#setup:{code}", extra=probe)
        check(status >= 400 and want in error_of(body), f"a look at {address!r}: {status} {body}")
        say(f"  a look at {address!r}: {status} {error_of(body)}")
    not_member(tn, 1)


def create_on_n1(b, tn, code):
    say("== n1's page: the setup code, then create (a bad link first)")
    b("open", page="n1", url=URL.format(1))
    b("wait_visible", page="n1", testid="page-setup")
    shown = b("text", page="n1", testid="setup-tls-fingerprint")
    check(shown == code["tls_fingerprint"], f"the page shows {shown}, herd {code['tls_fingerprint']}")
    b("fill", page="n1", selector="#setup-code-code", value="ZZZZ-ZZZZ-ZZZZ")
    b("click", page="n1", testid="setup-code-submit")
    said = b("wait_text", page="n1", testid="setup-code-error", contains="Wrong setup code")
    say(f"  a wrong setup code: {said}")
    b("fill", page="n1", selector="#setup-code-code", value=code["code"].lower().replace("-", " "))
    b("click", page="n1", testid="setup-code-submit")
    b("wait_visible", page="n1", testid="create")
    b("fill", page="n1", selector="#create-name", value="uiclus")
    b("fill", page="n1", selector="#create-links", value="10.99.0.300")
    b("fill", page="n1", selector="#create-password", value=ADMIN_PW)
    b("fill", page="n1", selector="#create-again", value=ADMIN_PW)
    b("click", page="n1", testid="create-submit")
    said = b("wait_text", page="n1", testid="create-error", contains="10.99.0.300")
    check("not an IPv4 or IPv6 address" in said, f"a bad link: {said}")
    check(b("count", page="n1", selector=".bad-field #create-links") == 1, "the error is not at the links field")
    say(f"  a bad link address: {said}")
    b.shot("n1", "cluster-create-bad-link")
    not_member(tn, 1)
    b("fill", page="n1", selector="#create-links", value="10.99.0.1")
    b("fill", page="n1", selector="#create-password", value=ADMIN_PW)
    b("fill", page="n1", selector="#create-again", value=ADMIN_PW)
    b("click", page="n1", testid="create-submit")
    b("wait_url", page="n1", path="/login", timeout=60000)
    b("wait_visible", page="n1", testid="login-form")
    say("  created; the page is the cluster's login")


def join_n2(b, tn):
    say("== n1's Cluster page: the join information")
    b("close", page="n1")
    login(b, "n1", URL.format(1), "admin", ADMIN_PW)
    b("goto", page="n1", path="/settings")
    b("wait_visible", page="n1", testid="join-information")
    info = b("eval", page="n1", js="document.querySelector('[data-testid=join-information]').value")
    status = json.loads(herd(tn, 1, "--json", "cluster", "status").stdout)
    check(info == f"10.99.0.1 {status['fingerprint']}", f"join information {info!r}, fingerprint {status['fingerprint']}")
    say(f"  {info}")
    b.shot("n1", "cluster-join-information")

    say("== n2's own page: a wrong fingerprint refused, then the join")
    code = setup_code(tn, 2)
    b("open", page="n2", url=URL.format(2))
    b("fill", page="n2", selector="#setup-code-code", value=code["code"])
    b("click", page="n2", testid="setup-code-submit")
    b("click", page="n2", testid="setup-join")
    fp = status["fingerprint"]
    wrong = ("00" if not fp.startswith("00") else "11") + fp[2:]
    b("fill", page="n2", selector="#join-info", value=f"10.99.0.1 {wrong}")
    b("click", page="n2", testid="join-look")
    b("wait_text", page="n2", testid="join-fingerprint", equals=fp)
    b("wait_text", page="n2", testid="join-seen", contains="not the fingerprint of the join information")
    b("click", page="n2", testid="join-confirm")
    b("fill", page="n2", selector="#join-password", value=ADMIN_PW)
    b("click", page="n2", testid="join-submit")
    said = b("wait_text", page="n2", testid="join-error", contains="as confirmed", timeout=60000)
    say(f"  a wrong fingerprint: {said}")
    check(b("count", page="n2", selector=".bad-field #join-fingerprint-input") == 1,
          "the error is not at the fingerprint field")
    b.shot("n2", "cluster-join-wrong-fingerprint", full=True)
    not_member(tn, 2)
    b("fill", page="n2", selector="#join-info", value=info)
    b("click", page="n2", testid="join-look")
    b("wait_text", page="n2", testid="join-cluster", equals="uiclus")
    links = b("eval", page="n2", js="document.querySelector('#join-links').value")
    check(links == "10.99.0.2", f"n2's link towards n1 should be 10.99.0.2, not {links!r}")
    b("click", page="n2", testid="join-confirm")
    b.shot("n2", "cluster-join", full=True)
    b("fill", page="n2", selector="#join-password", value=ADMIN_PW)
    b("click", page="n2", testid="join-submit")
    b("wait_url", page="n2", path="/login", timeout=90000)
    b("wait_visible", page="n2", testid="login-form")
    b.shot("n2", "cluster-joined-login")

    def both():
        p = herd(tn, 1, "--json", "cluster", "status")
        names = sorted(n["name"] for n in json.loads(p.stdout)["nodes"]) if p.returncode == 0 else []
        return names == ["n1", "n2"]
    wait_until(both, 60, "n1's herd cluster status to list n1 and n2")
    text = herd(tn, 2, "cluster", "status").stdout
    check("n1" in text and "n2" in text and "quorate" in text, f"n2's herd cluster status:\n{text}")
    say("  herd cluster status on n1 and n2: both nodes, quorate")


def leave_n2(b, tn):
    say("== n2 leaves from its own Cluster page (as admin): blank again")
    login(b, "n2", URL.format(2), "admin", ADMIN_PW)
    b("goto", page="n2", path="/settings")
    b("click", page="n2", testid="leave")
    b("click", page="n2", testid="leave-yes")
    # The page goes on to the node's setup page once the leave is answered.
    b("wait_visible", page="n2", testid="page-setup", timeout=60000)
    b.shot("n2", "cluster-left")

    def only_n1():
        p = herd(tn, 1, "--json", "cluster", "status")
        return p.returncode == 0 and [n["name"] for n in json.loads(p.stdout)["nodes"]] == ["n1"]
    wait_until(only_n1, 60, "n1's herd cluster status to list n1 alone")
    not_member(tn, 2)
    check(setup_code(tn, 2)["code"], "n2 has no setup code after its leave")
    say("  n2's page is its setup page again; n1's herd cluster status lists n1 alone")
    for page in ("n1", "n2"):
        errors = [e for e in b("console", page=page) if "page error" in e]
        check(not errors, f"{page}'s page logged errors: {errors}")


def main():
    with TestNodes(INSTANCE, 2, blank=True, libvirtd="none") as tn:
        code = setup_code(tn, 1)
        status, _, body = curl(tn, 1, "/api/v1/node")
        check(json.loads(body)["tls_fingerprint"] == code["tls_fingerprint"] and
              json.loads(body)["member"] is False, f"/api/v1/node: {body}")
        api_refusals(tn, code["code"])
        b = Browser(tn, 2, log="browser-cluster.log")
        try:
            t = time.monotonic()
            create_on_n1(b, tn, code)
            join_n2(b, tn)
            leave_n2(b, tn)
            say(f"-- {time.monotonic() - t:.0f} s in the browser")
        finally:
            b.close()
        # The code is gone with the node's blank days.
        p = herd(tn, 1, "cluster", "setup-code")
        check(p.returncode != 0 and "member of a cluster" in p.stderr, f"setup-code on a member: {p.stdout}{p.stderr}")


if __name__ == "__main__":
    sys.exit(run_test(main))

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
  in `herd cluster status`.
- A quorum device from n1's Cluster page ("Add a quorum device", with the
  certificates made by hand as docs/cluster.md says, signed by the
  instance's qnetd host): a malformed host and a port out of range are
  refused next to their field and change nothing; the add shows the device
  on the page and in n2's `herd cluster status --json` (counting its vote),
  and the page's Remove takes it away again (two_node back on both).
- n2 leaves from its own Cluster page and shows its setup page again.
Screenshots go to BUILD/ui-screenshots/ (cluster-*.png).
"""
import base64
import json
import os
import subprocess
import sys
import tempfile
import time

_here = os.path.dirname(os.path.realpath(__file__))
sys.path[:0] = [_here, os.path.dirname(_here)]  # harness.py here, testlib.py in tests/
from harness import TestNodes  # noqa: E402
from testlib import TestFailure, check, run_test, say, wait_until  # noqa: E402
from uilib import Browser, curl, field, fill, login  # noqa: E402

INSTANCE = os.environ.get("HERD_TESTNODES_INSTANCE", "test-ui-cluster")
URL = "https://10.99.0.{}:8001/"
ADMIN_PW = "Cluster-admin-pw-4471"
CLUSTER = "uiclus"
QNETD = "10.99.0.251"
# What `herd cluster qdevice add` has the qnetd host run (src/cli/cluster_qdevice.c):
# sign the request (base64 in $2) for cluster $1, print qnetd's CA, a mark,
# and the cluster's certificate (base64).
QNETD_SIGN = """set -e
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
echo "$2" | base64 -d >"$tmp/req.crq"
corosync-qnetd-certutil -s -c "$tmp/req.crq" -n "$1" >/dev/null
cat /etc/corosync/qnetd/nssdb/qnetd-cacert.crt
echo '--- cluster certificate'
base64 </etc/corosync/qnetd/nssdb/"cluster-$1.crt"
"""


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
    b("fill", page="n1", selector="#create-name", value=CLUSTER)
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
    b("wait_text", page="n2", testid="join-cluster", equals=CLUSTER)
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


def qdevice_certs(tn, d):
    """qnetd's CA (PEM) and the path of the cluster's certificate and key
    (PKCS#12), made by hand as docs/cluster.md ("A quorum device") says: the
    request in an NSS database here, signed by the qnetd host (over ssh from
    n1, with the instance's key)."""
    def run(*argv):
        subprocess.run(argv, check=True, capture_output=True)
    pw, noise = os.path.join(d, "pw"), os.path.join(d, "noise")
    open(pw, "w").close()
    with open(noise, "wb") as f:
        f.write(os.urandom(64))
    run("certutil", "-N", "-d", d, "-f", pw)
    run("certutil", "-R", "-s", f"CN={CLUSTER}", "-o", os.path.join(d, "req.crq"), "-d", d, "-f", pw, "-z", noise)
    with open(os.path.join(d, "req.crq"), "rb") as f:
        req = base64.b64encode(f.read()).decode()
    ssh = ["ssh"]
    for o in json.loads(tn.cli("qnetd", "status").stdout)["ssh_options"]:
        ssh += ["-o", o]
    p = tn.exec(1, *ssh, f"root@{QNETD}", "sh", "-s", "--", CLUSTER, req, input=QNETD_SIGN)
    check(p.returncode == 0 and "--- cluster certificate" in p.stdout,
          f"the qnetd host did not sign the request: {p.stderr.strip()}")
    ca, _, crt = p.stdout.partition("--- cluster certificate\n")
    with open(os.path.join(d, "ca.crt"), "w") as f:
        f.write(ca)
    with open(os.path.join(d, "cluster.crt"), "wb") as f:
        f.write(base64.b64decode(crt))
    run("certutil", "-A", "-d", d, "-t", "CT,c,c", "-n", "QNet CA", "-f", pw, "-i", os.path.join(d, "ca.crt"))
    run("certutil", "-A", "-d", d, "-t", "u,u,u", "-n", "Cluster Cert", "-f", pw, "-i", os.path.join(d, "cluster.crt"))
    p12 = os.path.join(d, "cluster.p12")
    run("pk12util", "-d", d, "-o", p12, "-W", "", "-k", pw, "-n", "Cluster Cert")
    return ca, p12


def cluster_status(tn, i):
    p = herd(tn, i, "--json", "cluster", "status")
    check(p.returncode == 0, f"n{i}: herd cluster status: {p.stderr.strip()}")
    return json.loads(p.stdout)


def qdevice_voting(tn, i):
    """Node i's corosync counts qnetd's vote: 3 of 3 votes, no two_node."""
    q = cluster_status(tn, i)["quorum"]
    d = q.get("qdevice") or {}
    return q["expected_votes"] == 3 and q["total_votes"] == 3 and d.get("alive") and \
        d.get("cast_vote") and not q["two_node"]


def no_qdevice(tn):
    for i in (1, 2):
        st = cluster_status(tn, i)
        check(st["qdevice"] is None and st["quorum"]["two_node"],
              f"n{i} has a qdevice: {st['qdevice']} {st['quorum']}")


def qdevice_n1(b, tn):
    say("== n1's Cluster page: add a quorum device (bad host, bad port first), remove it")
    t = time.monotonic()
    tn.cli("qnetd", "up")
    with tempfile.TemporaryDirectory(prefix="herd-ui-qdevice-") as d:
        ca, p12 = qdevice_certs(tn, d)
        say(f"  certificates signed by the qnetd host +{time.monotonic() - t:.1f} s")
        form = "qdevice-add"
        b("goto", page="n1", path="/settings")
        b("wait_visible", page="n1", testid=form)
        check(b("text", page="n1", testid="qdevice") == "none", "the page shows a quorum device before the add")
        fill(b, "n1", form, host="qnetd host!", ca_cert=ca)
        b("upload", page="n1", selector=field(form, "p12"), path=p12)
        for bad, want in ((("host", "qnetd host!"), "is not a host name or an IP address"),
                          (("port", "70000"), "Field 'port' must be a whole number from 1 to 65535")):
            fill(b, "n1", form, host=QNETD, port=5403)
            fill(b, "n1", form, **{bad[0]: bad[1]})
            b("click", page="n1", testid=f"{form}-submit")
            said = b("wait_text", page="n1", testid=f"{form}-error", contains=want, timeout=30000)
            check(b("count", page="n1", selector=f"[data-testid={form}] .bad-field [name={bad[0]}]") == 1,
                  f"the error {said!r} is not at the {bad[0]} field")
            say(f"  a bad {bad[0]} {bad[1]!r}: {said}")
            if bad[0] == "port":
                b.shot("n1", "cluster-qdevice-bad-port", testid="qdevice-section")
            no_qdevice(tn)
        fill(b, "n1", form, host=QNETD, port=5403)
        b("click", page="n1", testid=f"{form}-submit")

        # The form goes with its success line once the page has the device.
        def added():
            if b("count", page="n1", selector=f"[data-testid={form}-error]"):
                raise TestFailure(f"the add was refused: {b('text', page='n1', testid=f'{form}-error')}")
            return b("text", page="n1", testid="qdevice") == f"{QNETD}:5403 (ffsplit)"
        wait_until(added, 60, "n1's Cluster page to show the quorum device", interval=0.3)
    check(not b("count", page="n1", selector=f"[data-testid={form}]"), "the add form is still shown")
    for i in (1, 2):
        wait_until(lambda: qdevice_voting(tn, i), 60, f"n{i}'s corosync to count qnetd's vote")
    q = cluster_status(tn, 2)["qdevice"]
    check(q["host"] == QNETD and q["port"] == 5403 and q["algorithm"] == "ffsplit" and q["active"],
          f"the qdevice in n2's herd cluster status --json: {q}")
    shown = herd(tn, 2, "cluster", "status").stdout
    check(f"Qdevice:      {QNETD}:5403, ffsplit, alive, votes for this partition" in shown,
          f"n2's herd cluster status does not show the qdevice voting:\n{shown}")
    say(f"  n2's herd cluster status: {QNETD}:5403, ffsplit, alive, voting +{time.monotonic() - t:.1f} s")
    b.shot("n1", "cluster-qdevice", testid="cluster-section")
    b("click", page="n1", testid="qdevice-remove")
    b("click", page="n1", testid="qdevice-remove-yes")
    b("wait_text", page="n1", testid="qdevice", equals="none", timeout=30000)
    wait_until(lambda: all(cluster_status(tn, i)["qdevice"] is None and
                           cluster_status(tn, i)["quorum"]["two_node"] for i in (1, 2)),
               60, "both nodes to have no qdevice and two_node again")
    b("wait_visible", page="n1", testid=form)
    tn.cli("qnetd", "down")
    say(f"  removed from the page: two_node on both nodes again +{time.monotonic() - t:.1f} s")


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
            qdevice_n1(b, tn)
            leave_n2(b, tn)
            say(f"-- {time.monotonic() - t:.0f} s in the browser")
        finally:
            b.close()
        # The code is gone with the node's blank days.
        p = herd(tn, 1, "cluster", "setup-code")
        check(p.returncode != 0 and "member of a cluster" in p.stderr, f"setup-code on a member: {p.stdout}{p.stderr}")


if __name__ == "__main__":
    sys.exit(run_test(main))

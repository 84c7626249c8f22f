#!/usr/bin/python3
"""Users, groups and permissions on real test nodes (issue 12, item 3;
docs/users.md).

Two nodes.  Root on n1's local socket adds users and groups with the CLI
(bad input is refused and changes nothing, as is removing or demoting the
last administrator); then, over HTTPS:
- an auditor reads everything and changes nothing, each refusal a sentence;
- an operator whose group is limited to VM pool 'web' starts web1 and is
  refused db1 (pool 'db'); its session cookie needs the CSRF token for a
  change;
- a token that n1 gave works on n2; logout on n2 ends it on n1; removing a
  user or a new password ends its sessions;
- the audit log names the user and the node of a change;
- root on n2's local socket resets the admin password.
"""
import json
import os
import sys

_here = os.path.dirname(os.path.realpath(__file__))
sys.path[:0] = [_here, os.path.dirname(_here)]  # harness.py here, testlib.py in tests/
from halib import Ha, HaNodes, Workdir  # noqa: E402
from testlib import check, expect, guest_xml, run_test, say, wait_until  # noqa: E402

INSTANCE = os.environ.get("HERD_TESTNODES_INSTANCE", "test-users")
PW = {"aud": "Aud1tor-pw-4471", "op": "0perator-pw-9902", "mon": "M0nitor-pw-1123"}


def https(tn, i, method, path, body=None, auth=None, token=None, cookies=None, csrf=None,
          save_cookies=None, node=None, headers=()):
    """(status, JSON or text, headers) of a request from inside node i to
    node @node's (default i) API over HTTPS."""
    node = node or i
    argv = ["curl", "-s", "-k", "-X", method, "-D", "/dev/stderr", "-w", "\n%{http_code}",
            "-H", "Content-Type: application/json", f"https://10.99.0.{node}:8001{path}"]
    if auth:
        argv += ["-u", auth]
    if token:
        argv += ["-H", f"Authorization: Bearer {token}"]
    if cookies:
        argv += ["-b", cookies]
    if save_cookies:
        argv += ["-c", save_cookies]
    if csrf:
        argv += ["-H", f"X-CSRF-Token: {csrf}"]
    for h in headers:
        argv += ["-H", h]
    if body is not None:
        argv += ["--data-binary", json.dumps(body)]
    p = tn.exec(i, *argv)
    text, _, code = p.stdout.rpartition("\n")
    head = p.stderr
    try:
        data = json.loads(text)
    except ValueError:
        data = text
    return (int(code) if code.isdigit() else 0), data, head


def message(data):
    return data.get("error", {}).get("message", "") if isinstance(data, dict) else str(data)


def refused(tn, i, method, path, status, pattern, **kw):
    code, data, _ = https(tn, i, method, path, **kw)
    msg = message(data)
    check(code == status and pattern in msg and msg.endswith("."),
          f"n{i}: {method} {path}: expected {status} saying '{pattern}', got {code}: {data}")
    return msg


def login(tn, i, user, password, **kw):
    code, data, head = https(tn, i, "POST", "/api/v1/login", auth=f"{user}:{password}", **kw)
    check(code == 200 and data.get("token"), f"n{i}: login of {user}: {code} {data}")
    return data, head


def write(tmp, name, text):
    path = os.path.join(tmp, name)
    with open(path, "w") as f:
        f.write(text + "\n")
    return path


def setup(tn, ha, tmp):
    say("== users and groups, as root on n1's local socket")
    for user, role in (("aud", None), ("op", None), ("mon", "monitor")):
        args = ["user", "add", user, "--new-password-file", write(tmp, f"{user}.pw", PW[user])]
        if role:
            args += ["--role", role]
        ha.ok(1, *args)
    ha.ok(1, "group", "add", "auditors", "--roles", "auditor", "--members", "aud")
    ha.ok(1, "group", "add", "webops", "--roles", "operator", "--pools", "web", "--members", "op")
    before = (ha.json(2, "user", "list"), ha.json(2, "group", "list"))
    ha.refused(1, ["user", "add", "x", "--role", "boss", "--new-password-file",
                   os.path.join(tmp, "aud.pw")], "role", what="an unknown role")
    ha.refused(1, ["user", "add", "aud", "--new-password-file", os.path.join(tmp, "aud.pw")],
               "exists already", what="a user twice")
    ha.refused(1, ["user", "set", "aud", "--email", "not-an-address"], "mail address", what="a bad address")
    ha.refused(1, ["user", "add", "root", "--new-password-file", os.path.join(tmp, "aud.pw")],
               "reserved", what="a reserved name")
    ha.refused(1, ["group", "add", "g", "--roles", "root"], "roles", what="an unknown group role")
    ha.refused(1, ["group", "add", "g", "--roles", "auditor", "--members", "nosuch"],
               "nosuch' is not defined", what="an unknown member")
    ha.refused(1, ["group", "set", "webops", "--pools", "a b"], "pool", what="a bad pool name")
    # admin is the only administrator: it stays one (store/guard.h, invariant 3).
    ha.refused(1, ["user", "remove", "admin"], r"User 'admin' is the cluster's last administrator: "
               r"removing it would leave none; give another user the admin role first\.",
               what="the last administrator removed")
    ha.refused(2, ["user", "set", "admin", "--role", "auditor"], r"User 'admin' is the cluster's last "
               r"administrator: taking the admin role from it would leave none", what="the last administrator demoted")
    check((ha.json(2, "user", "list"), ha.json(2, "group", "list")) == before,
          "a refused change changed the users or groups")
    users = {u["name"]: u for u in before[0]}
    check(users["aud"]["roles"] == ["auditor"] and users["op"]["roles"] == ["operator"]
          and users["mon"]["roles"] == ["monitor"] and users["admin"]["roles"] == ["admin"],
          f"users' roles: {users}")
    say("bad input refused, nothing changed; " +
        ", ".join(f"{n}: {','.join(u['roles'])}" for n, u in sorted(users.items())))
    for name, pool in (("web1", "web"), ("db1", "db")):
        ha.define(name, ha=False, preferred="n1", extra=["--pool", pool, "--shutdown-timeout", "2"])
    # A VM whose console has a password: readers see its XML without it.
    xml = guest_xml("gfx1").replace("</devices>", "<graphics type='vnc' port='-1' passwd='Vnc-s3cret'/></devices>")
    write(tmp, "gfx1.xml", xml)
    ha.ok(1, "vm", "define", os.path.join(tmp, "gfx1.xml"), "--pool", "db")


def auditor(tn, ha, tmp):
    say("== the auditor reads everything, changes nothing")
    data, _ = login(tn, 1, "aud", PW["aud"])
    tok = data["token"]
    for path in ("/api/v1/vms", "/api/v1/nodes", "/api/v1/users", "/api/v1/groups",
                 "/api/v1/audit", "/api/v1/cluster/settings", "/metrics"):
        code, _, _ = https(tn, 2, "GET", path, token=tok)
        check(code == 200, f"auditor GET {path} on n2: {code}")
    msgs = [refused(tn, 2, "POST", "/api/v1/vms/web1/start", 403, "may not start, stop or migrate",
                    token=tok),
            refused(tn, 2, "POST", "/api/v1/networks", 403, "needs the admin role", token=tok,
                    body={"name": "x", "bridge": "br0"}),
            refused(tn, 2, "PUT", "/api/v1/cluster/settings", 403, "needs the admin role", token=tok,
                    body={"failback_after_s": 5}),
            refused(tn, 2, "PUT", "/api/v1/users/admin/password", 403, "only its own password",
                    token=tok, body={"password": "x"})]
    for m in msgs:
        say(f"  refused: {m}")
    # The console's password: not for readers (as libvirt's read-only
    # connections), for those who may operate the VM.
    for path, key in (("/api/v1/vms/gfx1/xml", "xml"), ("/api/v1/vms/gfx1", "xml")):
        code, res, _ = https(tn, 2, "GET", path, token=tok)
        check(code == 200 and "<graphics" in res[key] and "Vnc-s3cret" not in res[key]
              and "passwd" not in res[key], f"auditor GET {path}: the graphics' password shown: {res}")
    admin_xml = ha.ok(2, "vm", "dumpxml", "gfx1").stdout
    check("passwd='Vnc-s3cret'" in admin_xml, f"admin's XML of gfx1 lacks the password: {admin_xml}")
    say("auditor: gfx1's XML without the VNC password; the admin's with it")
    # The CLI, with the session in HERD_TOKEN.
    p = tn.exec(2, "env", f"HERD_TOKEN={tok}", "herd", "--host", "10.99.0.2", "-k", "vm", "list", "--all")
    check(p.returncode == 0 and "web1" in p.stdout, f"HERD_TOKEN herd vm list: {p.stdout}{p.stderr}")
    p = tn.exec(2, "env", f"HERD_TOKEN={tok}", "herd", "--host", "10.99.0.2", "-k", "vm", "start", "web1")
    check(p.returncode == 1 and "may not start" in p.stderr, f"HERD_TOKEN herd vm start: {p.stderr}")
    p = tn.exec(2, "env", f"HERD_TOKEN={tok}", "herd", "--host", "10.99.0.2", "-k", "whoami")
    check(p.stdout.strip() == "aud (auditor)", f"herd whoami: {p.stdout}{p.stderr}")
    say("auditor: reads on n2 with n1's token; refused every change; herd with HERD_TOKEN too")


def operator(tn, ha, tmp):
    say("== the operator of pool 'web': web1 yes, db1 no")
    jar = os.path.join(tmp, "cookies")  # the test's own: another test may run beside it
    data, head = login(tn, 1, "op", PW["op"], save_cookies=jar)
    cookie = [l for l in head.splitlines() if l.lower().startswith("set-cookie:")]
    check(len(cookie) == 1 and all(a in cookie[0] for a in ("HttpOnly", "Secure", "SameSite=Strict")),
          f"login's cookie: {cookie}")
    tok, csrf = data["token"], data["csrf_token"]
    code, _, _ = https(tn, 2, "POST", "/api/v1/vms/web1/start", token=tok)
    check(code == 200, f"operator start web1 on n2: {code}")
    ha.wait_vms(lambda v: v["web1"]["state"] == "running", 90, "web1 to run", nodes=(1, 2))
    m = refused(tn, 2, "POST", "/api/v1/vms/db1/start", 403, "only the VMs of pool 'web'", token=tok)
    check("in pool 'db'" in m, m)
    refused(tn, 2, "DELETE", "/api/v1/vms/web1", 403, "needs the admin role", token=tok)
    vms = ha.vms()
    check(vms["db1"]["state"] != "running", f"db1 runs: {vms['db1']}")
    say(f"  refused: {m}")
    # The cookie: reads as is; a change needs the CSRF token (the cookie jar
    # holds the cookie for 10.99.0.1: the request goes to n1).
    code, _, _ = https(tn, 1, "GET", "/api/v1/vms", cookies=jar)
    check(code == 200, f"GET with the session cookie: {code}")
    refused(tn, 1, "POST", "/api/v1/vms/web1/destroy", 403, "X-CSRF-Token", cookies=jar)
    check(ha.vms()["web1"]["state"] == "running", "web1 stopped by a request without its CSRF token")
    code, data, _ = https(tn, 1, "POST", "/api/v1/vms/web1/destroy", cookies=jar, csrf=csrf)
    check(code == 200, f"destroy with cookie and CSRF token: {code} {data}")
    ha.wait_vms(lambda v: v["web1"]["state"] != "running", 60, "web1 to stop", nodes=(1, 2))
    say("operator: started web1 on n2 with n1's token, refused db1; the cookie needs the CSRF token")
    # A session does not extend itself; another site's page changes nothing,
    # even with valid credentials (a browser's cached Basic ones).
    m = refused(tn, 1, "POST", "/api/v1/login", 401, "cannot extend itself", token=tok)
    refused(tn, 2, "POST", "/api/v1/vms/web1/start", 403, "another site's page", token=tok,
            headers=["Origin: https://evil.example"])
    refused(tn, 2, "POST", "/api/v1/vms/web1/start", 403, "another site's page",
            auth=f"op:{PW['op']}", headers=["Sec-Fetch-Site: cross-site"])
    check(ha.vms()["web1"]["state"] != "running", "web1 started by another site's request")
    say(f"  login with a token: {m}")
    return tok


def sessions_end(tn, ha, tmp, op_token):
    say("== logout, a new password, removal: the sessions end on every node")
    data, _ = login(tn, 1, "aud", PW["aud"])
    tok = data["token"]
    code, data, head = https(tn, 2, "POST", "/api/v1/logout", token=tok)
    check(code == 200 and "Max-Age=0" in head, f"logout on n2: {code} {data}")
    m = refused(tn, 1, "GET", "/api/v1/vms", 401, "has ended", token=tok)
    say(f"  after logout on n2, n1 says: {m}")
    # The password still works: a new session.
    data, _ = login(tn, 2, "aud", PW["aud"])
    code, _, _ = https(tn, 1, "GET", "/api/v1/vms", token=data["token"])
    check(code == 200, f"a new session after logout: {code}")

    data, _ = login(tn, 2, "mon", PW["mon"])
    new = PW["mon"] + "-2"
    ha.ok(1, "user", "passwd", "mon", "--new-password-file", write(tmp, "mon2.pw", new))
    refused(tn, 2, "GET", "/api/v1/vms", 401, "has ended", token=data["token"])
    refused(tn, 2, "POST", "/api/v1/login", 401, "Wrong user name or password", auth=f"mon:{PW['mon']}")
    login(tn, 1, "mon", new)
    say("  a new password ends the sessions; the old one is refused")

    # Its own password: with the current one (Basic), by name or UUID; never
    # with a session token (a stolen token must not become the password).
    data, _ = login(tn, 1, "aud", PW["aud"])
    m = refused(tn, 2, "PUT", "/api/v1/users/aud/password", 403, "current password",
                token=data["token"], body={"password": "Stolen-pw-0000"})
    uuid = ha.json(1, "user", "show", "aud")["uuid"]
    code, res, _ = https(tn, 2, "PUT", f"/api/v1/users/{uuid}/password", auth=f"aud:{PW['aud']}",
                         body={"password": PW["aud"] + "-2"})
    check(code == 200, f"aud's own password by UUID with Basic: {code} {res}")
    PW["aud"] += "-2"
    login(tn, 1, "aud", PW["aud"])
    say(f"  own password: by UUID with the current one; with a token: {m}")

    code, _, _ = https(tn, 2, "GET", "/api/v1/vms", token=op_token)
    check(code == 200, f"the operator's session before removal: {code}")
    ha.ok(2, "user", "remove", "op")
    m = refused(tn, 1, "GET", "/api/v1/vms", 401, "no such user", token=op_token)
    group = ha.json(1, "group", "show", "webops")
    check(group["members"] == [], f"webops after op's removal: {group}")
    say(f"  removed: {m}")


def audit(tn, ha, tmp):
    say("== the audit log: who, what, from which node")
    admin_pw = open(os.path.join(tn.tn.dir, "admin-password")).read().strip()
    code, data, _ = https(tn, 2, "PUT", "/api/v1/users/mon", auth=f"admin:{admin_pw}",
                          body={"email": "mon@example.test"})
    check(code == 200 and data.get("email") == "mon@example.test", f"admin sets mon's email on n2: {code} {data}")
    code, log, _ = https(tn, 1, "GET", "/api/v1/audit?limit=50", auth=f"admin:{admin_pw}")
    check(code == 200, f"GET /api/v1/audit on n1: {code} {log}")
    mine = [e for e in log if e["kind"] == "user" and e["name"] == "mon" and e["user"] == "admin"]
    check(mine and mine[0]["node"] == "n2" and mine[0]["change"], f"the audit log: {log[:5]}")
    removed = [e for e in log if e["kind"] == "user" and e["name"] == "op"]
    check(removed and removed[0]["node"] == "n2" and removed[0]["user"] == "root",
          f"op's removal in the audit log: {removed}")
    p = ha.ok(1, "audit", "--limit", "5")
    check("admin" in p.stdout and "n2" in p.stdout, f"herd audit:\n{p.stdout}")
    say("herd audit on n1:\n" + p.stdout.rstrip())


def admin_reset(tn, ha, tmp):
    say("== root on n2's local socket resets the admin password")
    pw_file = os.path.join(tn.tn.dir, "admin-password")
    old = open(pw_file).read().strip()
    new = "Reset-admin-pw-5150"
    ha.ok(2, "user", "passwd", "admin", "--new-password-file", write(tmp, "admin-new.pw", new))
    try:
        refused(tn, 1, "GET", "/api/v1/vms", 401, "Wrong user name or password", auth=f"admin:{old}")
        code, _, _ = https(tn, 1, "GET", "/api/v1/vms", auth=f"admin:{new}")
        check(code == 200, f"the new admin password on n1: {code}")
        say("admin password reset on n2's socket; n1 takes the new one, refuses the old")
    finally:
        ha.ok(2, "user", "passwd", "admin", "--new-password-file", pw_file)


def main():
    with HaNodes(INSTANCE, 2) as tn, Workdir(INSTANCE) as tmp:
        tn.wait_members([1, 2], 2)
        ha = Ha(tn, tmp)
        setup(tn, ha, tmp)
        auditor(tn, ha, tmp)
        op_token = operator(tn, ha, tmp)
        sessions_end(tn, ha, tmp, op_token)
        audit(tn, ha, tmp)
        admin_reset(tn, ha, tmp)


if __name__ == "__main__":
    sys.exit(run_test(main))

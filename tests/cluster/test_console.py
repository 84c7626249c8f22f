#!/usr/bin/python3
"""The VM console (C20, issue 12 item 2; docs/console.md) on two real test
nodes: a browser's websocket on any node, carried by herdd to the VNC
display of the VM on whichever node runs it.

Test guests with a VNC display (guest-xml --graphics vnc), run by herd.
tests/cluster/wsclient.py plays noVNC inside a node: a websocket with the
'binary' subprotocol, then the RFB handshake up to the ServerInit.

 A. A ticket from n1 (herd vm console) for c1 running on n2: the websocket
    on n1 gives "RFB 003.008" and a ServerInit with the guest's screen
    size, through the TLS relay to n2.
 G. The relay between nodes: n2's relay serves n1 (its node certificate)
    c1's display, and refuses, with a sentence, a certificate of the
    cluster's CA that names no node of the cluster.
 B. Refusals, each a sentence: the ticket used again; a ticket expired
    (30 s); another site's Origin; a VM that is not running; an auditor
    asks for a ticket; a plain GET that is no websocket.
 C. c1 is destroyed while its console is open: the websocket closes, and
    no console is left on either node.
 D. c1 moves live to n1 while its console (from n1, relayed to n2) is
    open: the websocket closes; a new ticket reaches c1 on n1.
 F. `herd vm console c1 --port 5999` on n2: a VNC client on n2's
    127.0.0.1:5999 gets c1's screen (on n1), twice (a ticket each).
 E. c1 is deleted while its console (from n2, relayed to n1) is open: it
    closes; no console is left on either node; a ticket is refused.
"""
import json
import os
import select
import subprocess
import sys
import time

_here = os.path.dirname(os.path.realpath(__file__))
sys.path[:0] = [_here, os.path.dirname(_here)]  # harness.py here, testlib.py in tests/
from halib import Ha, HaNodes, Workdir  # noqa: E402
from test_users import https, login, write  # noqa: E402
from testlib import check, expect, guest_xml, run_test, say, wait_until  # noqa: E402

INSTANCE = os.environ.get("HERD_TESTNODES_INSTANCE", "test-console")
WSCLIENT = os.path.join(_here, "wsclient.py")
RELAYCLIENT = os.path.join(_here, "relayclient.py")
AUD_PW = "Aud1tor-pw-3318"


def define(ha, name, preferred):
    """A test guest with a VNC display, as herd's own VMs have."""
    xml = os.path.join(ha.tmp, f"{name}.xml")
    guest_xml(name, xml, serial_log=ha.serial_log(name), image=ha.image, graphics="vnc")
    # --no-failback: after D, c1 stays on n1 (no move back to n2 under F)
    vm = ha.json(1, "vm", "define", xml, "--preferred", preferred, "--no-failback",
                 "--shutdown-timeout", "2")
    ha.uuids[name] = vm["uuid"]


def ticket(ha, i, name):
    """herd vm console NAME on node i: its JSON (ticket, path, node)."""
    return ha.json(i, "vm", "console", name)


def url(i, path):
    return f"https://10.99.0.{i}:8001{path}"


def open_console(tn, i, path, *extra):
    """wsclient.py on node i for node i's @path: its JSON line."""
    p = tn.exec(i, "python3", WSCLIENT, url(i, path), *extra, timeout=60)
    check(p.returncode == 0 and p.stdout.strip(), f"wsclient on n{i}: {p.stdout}{p.stderr}")
    return json.loads(p.stdout.splitlines()[0])


def screen(res, what):
    check(res.get("status") == 101, f"{what}: the websocket was refused: {res}")
    check(res.get("version") == "RFB 003.008", f"{what}: the display said {res}")
    check(res.get("width", 0) > 0 and res.get("height", 0) > 0, f"{what}: ServerInit {res}")
    expect(res.get("protocol") == "binary", f"{what}: subprotocol {res.get('protocol')!r}")
    return f"{res['version']}, {res['width']}x{res['height']} '{res['name']}'"


def refused_ws(tn, i, path, status, pattern, *extra):
    res = open_console(tn, i, path, *extra)
    body = res.get("body") or {}
    msg = body.get("error", {}).get("message", "") if isinstance(body, dict) else str(body)
    check(res.get("status") == status and pattern in msg and msg.endswith("."),
          f"n{i}: expected {status} saying '{pattern}', got {res}")
    say(f"  refused ({status}): {msg}")


class HeldConsole:
    """wsclient.py --hold in the background on node i: the ServerInit, then
    how the server ended it."""

    def __init__(self, tn, i, path, hold_s=240):
        self.p = subprocess.Popen(tn.tn.node_argv(i, ["python3", WSCLIENT, url(i, path),
                                                      "--hold", str(hold_s)]),
                                  env=tn.tn.node_env(i), stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        self.first = json.loads(self.line(60) or "{}")

    def line(self, timeout):
        r, _, _ = select.select([self.p.stdout], [], [], timeout)
        return self.p.stdout.readline() if r else None

    def ended(self, timeout, what):
        text = wait_until(lambda: self.line(1), timeout, what)
        self.p.wait(timeout=30)
        return json.loads(text)

    def stop(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()


def consoles(ha, i):
    return ha.status(i)["node"]["consoles"]


def none_left(ha, what):
    wait_until(lambda: consoles(ha, 1) == 0 and consoles(ha, 2) == 0, 30,
               f"no console left on n1 and n2 {what}")


def through_nodes(tn, ha):
    say("== A. a ticket from n1 for c1 on n2: RFB through n1's websocket and the relay to n2")
    t = ticket(ha, 1, "c1")
    check(t["node"] == "n2" and t["expires_s"] == 30 and t["path"].endswith(t["ticket"]),
          f"herd vm console c1: {t}")
    res = open_console(tn, 1, t["path"])
    say(f"c1 on n2 through n1: {screen(res, 'c1 through n1')}")
    expect("c1" in res["name"], f"the display's name: {res['name']!r}")
    p = ha.ok(1, "vm", "console", "c1")
    check("ticket" in p.stdout and "/api/v1/vms/c1/console?ticket=" in p.stdout,
          f"herd vm console c1 printed: {p.stdout}")
    say("herd vm console c1:\n" + p.stdout.rstrip())
    return t


def relay_peers(tn, ha):
    say("== G. n2's relay: a node's certificate gets c1's display, another of the CA does not")
    uuid = ha.uuids["c1"]

    def knock(*extra):
        p = tn.exec(1, "python3", RELAYCLIENT, "10.99.0.2", "8002", uuid, "c1", *extra, timeout=60)
        check(p.returncode == 0 and p.stdout.strip(), f"relayclient on n1: {p.stdout}{p.stderr}")
        return json.loads(p.stdout.splitlines()[0])

    res = knock()
    check(res == {"ok": True}, f"n2's relay to n1's node certificate: {res}")
    res = knock("--cn", "intruder")
    msg = res.get("error", "")
    check(msg == "The console relay of node n2 serves only the cluster's nodes; the certificate of "
          "'intruder' names no node of the cluster (removed?).", f"n2's relay to 'intruder': {res}")
    say(f"  refused: {msg}")
    none_left(ha, "after the relay's knocks")


def refusals(tn, ha, tmp, used):
    say("== B. refusals")
    refused_ws(tn, 1, used["path"], 401, "used already")
    t = ticket(ha, 1, "c1")
    refused_ws(tn, 1, t["path"], 403, "another site's page", "--origin", "https://evil.example")
    # that did not spend it: the same page's Origin gets in
    res = open_console(tn, 1, t["path"], "--origin", "https://10.99.0.1:8001")
    screen(res, "with this server's Origin")
    refused_ws(tn, 2, t["path"], 401, "unknown here")  # a ticket of n1 on n2
    code, data, _ = https(tn, 1, "GET", ticket(ha, 1, "c1")["path"])
    check(code == 400 and "websocket" in data["error"]["message"], f"a plain GET: {code} {data}")
    say(f"  refused ({code}): {data['error']['message']}")
    ha.refused(1, ["vm", "console", "c2"], r"VM c2 is not running; its console opens once it runs\.",
               what="a VM that is not running")
    ha.refused(1, ["vm", "console", "nosuch"], "not", what="no such VM")
    ha.ok(1, "user", "add", "aud", "--new-password-file", write(tmp, "aud.pw", AUD_PW))
    ha.ok(1, "group", "add", "auditors", "--roles", "auditor", "--members", "aud")
    data, _ = login(tn, 2, "aud", AUD_PW)
    code, data, _ = https(tn, 2, "POST", "/api/v1/vms/c1/console", token=data["token"])
    msg = data.get("error", {}).get("message", "") if isinstance(data, dict) else str(data)
    check(code == 403 and "aud" in msg and msg.endswith("."), f"the auditor's ticket: {code} {data}")
    say(f"  refused (auditor, 403): {msg}")
    t = ticket(ha, 2, "c1")
    say("  waiting 31 s for a ticket to expire")
    time.sleep(31)
    refused_ws(tn, 2, t["path"], 401, "expired")


def stop_closes(tn, ha):
    say("== C. c1 destroyed while its console is open")
    held = HeldConsole(tn, 1, ticket(ha, 1, "c1")["path"])
    try:
        say(f"console open: {screen(held.first, 'held')}; n1 {consoles(ha, 1)}, n2 {consoles(ha, 2)} console(s)")
        check(consoles(ha, 1) == 1 and consoles(ha, 2) == 1, "the console is not on n1 and n2")
        ha.ok(1, "vm", "destroy", "c1")
        end = held.ended(60, "the console to close after the VM's destroy")
    finally:
        held.stop()
    check(end["closed"], f"after the destroy: {end}")
    expect(end["code"] == 1001 and "c1" in end["reason"], f"the console's close frame: {end}")
    say(f"closed: code {end['code']}, '{end['reason']}'")
    none_left(ha, "after the destroy")


def migration(tn, ha):
    say("== D. c1 moves live to n1 while its console is open")
    ha.ok(1, "vm", "start", "c1")
    check(ha.json(1, "vm", "info", "c1")["node"] == "n2", "c1 does not run on n2")
    held = HeldConsole(tn, 1, ticket(ha, 1, "c1")["path"])
    try:
        screen(held.first, "before the migration")
        p = ha.ok(1, "vm", "migrate", "c1", "n1", "--wait", timeout=300)
        say(p.stdout.strip().splitlines()[-1])
        end = held.ended(60, "the console to close after the migration")
    finally:
        held.stop()
    check(end["closed"], f"after the migration: {end}")
    expect(end["code"] == 1001 and "c1" in end["reason"], f"the old console's close frame: {end}")
    say(f"the old console closed: code {end['code']}, '{end['reason']}'")
    t = ticket(ha, 1, "c1")
    check(t["node"] == "n1", f"the new ticket: {t}")
    say(f"a new ticket reaches c1 on n1: {screen(open_console(tn, 1, t['path']), 'after the migration')}")
    none_left(ha, "after the migration")


def port_forward(tn, ha):
    say("== F. herd vm console c1 --port 5999 on n2, a VNC client on n2's 127.0.0.1:5999")
    fwd = subprocess.Popen(tn.tn.node_argv(2, ["herd", "vm", "console", "c1", "--port", "5999"]),
                           env=tn.tn.node_env(2), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True)
    try:
        r, _, _ = select.select([fwd.stdout], [], [], 30)
        line = fwd.stdout.readline() if r else ""
        check("Forwarding 127.0.0.1:5999" in line, f"herd vm console --port said: {line!r}")
        say(line.strip())
        for k in (1, 2):
            p = tn.exec(2, "python3", WSCLIENT, "--vnc", "127.0.0.1:5999", timeout=60)
            check(p.returncode == 0, f"a VNC client on 127.0.0.1:5999: {p.stdout}{p.stderr}")
            res = json.loads(p.stdout)
            check(res.get("version") == "RFB 003.008" and res.get("width", 0) > 0,
                  f"VNC client {k} through --port: {res}")
            say(f"VNC client {k} through --port: {res['version']}, {res['width']}x{res['height']}")
    finally:
        fwd.kill()
        fwd.wait()
    none_left(ha, "after the forwarding")


def deletion(tn, ha):
    say("== E. c1 deleted while its console (from n2, relayed to n1) is open")
    held = HeldConsole(tn, 2, ticket(ha, 2, "c1")["path"])
    try:
        screen(held.first, "before the deletion")
        ha.ok(2, "vm", "destroy", "c1")
        ha.ok(2, "vm", "undefine", "c1")
        end = held.ended(60, "the console to close after the deletion")
    finally:
        held.stop()
    check(end["closed"], f"after the deletion: {end}")
    none_left(ha, "after the deletion")
    ha.refused(1, ["vm", "console", "c1"], "c1", what="the deleted VM")
    say("no console left on n1 and n2")


def main():
    with HaNodes(INSTANCE, 2) as tn, Workdir(INSTANCE) as tmp:
        tn.wait_members([1, 2], 2)
        ha = Ha(tn, tmp)
        define(ha, "c1", "n2")
        define(ha, "c2", "n1")
        ha.ok(1, "vm", "start", "c1")
        used = through_nodes(tn, ha)
        relay_peers(tn, ha)
        refusals(tn, ha, tmp, used)
        stop_closes(tn, ha)
        migration(tn, ha)
        port_forward(tn, ha)
        deletion(tn, ha)


if __name__ == "__main__":
    sys.exit(run_test(main))

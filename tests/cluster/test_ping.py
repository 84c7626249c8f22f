#!/usr/bin/python3
"""Ping nodes on real test nodes (issue 13, item 3; requirement C3): a node
that loses the ping node while the others reach it gives its HA VM up, live
(the guest does not boot again), with an alert that names the node; when
it reaches the ping node again, the VM fails back to it, its preferred
node; when every node loses the ping node, nothing moves and one critical
alert says so.  Bad settings are refused and change nothing.

The ping node is an address of the hub's bridge (10.99.0.254, in the
instance's own hub namespace); a node "loses" it by a prohibit route in its
own network namespace, so its echo requests cannot leave while corosync's
traffic flows as before.

Three nodes, one tiny guest; every node's QEMUs and libvirt are polled all
along (a VM on two nodes at once fails the test).

    tests/cluster/test_ping.py       (as root; HERD_TESTNODES_INSTANCE names
                                      the test nodes, default test-ping)
"""
import os
import subprocess
import sys
import time

_here = os.path.dirname(os.path.realpath(__file__))
sys.path[:0] = [_here, os.path.dirname(_here)]  # harness.py here, testlib.py in tests/
from testlib import check_expected, expect, run_test, say, wait_until  # noqa: E402
from halib import Ha, HaNodes, Workdir, run_steps, table  # noqa: E402

INSTANCE = os.environ.get("HERD_TESTNODES_INSTANCE", "test-ping")
PING = "10.99.0.254"
VM = "g1"


def netns_ip(ns, *args):
    subprocess.run(["ip", "-n", ns, *args], check=True, capture_output=True, text=True)


def cut(tn, i):
    """Node i's echo requests to the ping node cannot leave it."""
    netns_ip(tn.tn.netns(i), "route", "add", "prohibit", f"{PING}/32")


def heal(tn, i):
    netns_ip(tn.tn.netns(i), "route", "del", "prohibit", f"{PING}/32")


def ping_alerts(ha, i=1):
    """{kind: [alert…]} of the ping alerts in node i's herd status."""
    out = {}
    for a in (ha.status(i).get("ha") or {}).get("alerts", []):
        if a.get("kind", "").startswith("ping_"):
            out.setdefault(a["kind"], []).append(a)
    return out


def verdicts(ha, i=1):
    """{node: "ok" | "CUT OFF"} from `herd cluster status --json`'s ping views."""
    views = ha.json(i, "cluster", "status").get("ping", {})
    return {n: ("CUT OFF" if v.get("lost") else "ok") for n, v in views.items()}


def setup(tn, ha):
    say(f"== the ping node {PING} on the hub; g1 runs on n1, its preferred node")
    netns_ip(tn.tn.hub, "addr", "add", f"{PING}/24", "dev", "br0")
    ha.add_pdu()
    ha.set(1, "failback_after_s=2")
    ha.define(VM, preferred="n1", extra=["--shutdown-timeout", "2"])
    ha.ok(2, "vm", "start", VM)
    ha.wait_vms(lambda v: v[VM]["state"] == "running" and v[VM]["node"] == "n1", 60, "g1 to run on n1")
    ha.wait_counting([VM])


def bad_input(tn, ha):
    say("== bad settings: clear errors, nothing changes")
    before = ha.config(1)
    ha.refused(1, ["cluster", "set", "ping_nodes=gw.example.com"], r"no host names", what="a host name")
    ha.refused(1, ["cluster", "set", "ping_nodes=10.99.0.254,10.99.0.254"], r"names 10\.99\.0\.254 twice",
               what="one address twice")
    ha.refused(1, ["cluster", "set", "ping_dampen_ms=100"], r"below twice ping_interval_ms",
               what="dampening shorter than two rounds")
    expect(ha.config(2) == before, "a refused setting changed the configuration")


def configured(tn, ha):
    say("== ping_nodes set: every node reaches it")
    ha.set(1, f"ping_nodes={PING}", "ping_interval_ms=500", "ping_dampen_ms=1500")
    wait_until(lambda: verdicts(ha) == {"n1": "ok", "n2": "ok", "n3": "ok"} or None, 20,
               "every node to report the ping node reached", interval=0.5)
    text = ha.ok(2, "cluster", "status").stdout
    expect("PING NODES" in text and f"{PING} reached" in text, f"herd cluster status:\n{text}")
    expect(not ping_alerts(ha), f"ping alerts with every node reaching it: {ping_alerts(ha)}")


def node_cut_off(tn, ha):
    say("== n1 loses the ping node: g1 moves live to a node that reaches it")
    boots = ha.boots(VM)
    t0 = time.time()
    cut(tn, 1)
    vms = ha.wait_vms(lambda v: v[VM]["state"] == "running" and v[VM]["node"] in ("n2", "n3")
                      and not v[VM].get("move_to"), 60, "g1 to leave n1")
    took = time.time() - t0
    ha.wait_counting([VM])
    expect(ha.boots(VM) == boots, "g1 booted again: the move was not live")
    alerts = ping_alerts(ha, 2)
    lost = alerts.get("ping_lost", [])
    expect(len(lost) == 1 and lost[0].get("node") == "n1" and PING in lost[0]["message"],
           f"the ping_lost alert for n1: {alerts}")
    expect(verdicts(ha, 3).get("n1") == "CUT OFF", f"cluster status' verdicts: {verdicts(ha, 3)}")
    text = ha.ok(3, "alert", "list").stdout
    expect("Node n1 reaches none of the ping nodes" in text, f"herd alert list:\n{text}")
    say(f"g1 left n1 {took:.1f} s after the cut (dampening 1.5 s): {table(vms)}; "
        f"alert: {lost[0]['message'] if lost else None!r}")


def node_back(tn, ha):
    say("== n1 reaches the ping node again: g1 fails back to it, live")
    boots = ha.boots(VM)
    heal(tn, 1)
    vms = ha.wait_vms(lambda v: v[VM]["state"] == "running" and v[VM]["node"] == "n1"
                      and not v[VM].get("move_to"), 60, "g1 to fail back to n1")
    ha.wait_counting([VM])
    expect(ha.boots(VM) == boots, "g1 booted again on its failback")
    wait_until(lambda: not ping_alerts(ha) or None, 20, "the ping alert to clear", interval=0.5)
    say(f"back: {table(vms)}; no ping alert left")


def all_cut_off(tn, ha):
    say("== every node loses the ping node: nothing moves, one critical alert")
    for i in (1, 2, 3):
        cut(tn, i)
    alerts = wait_until(lambda: ping_alerts(ha).get("ping_lost_all") and ping_alerts(ha) or None, 20,
                        "the alert that no node reaches the ping node", interval=0.5)
    expect(list(alerts) == ["ping_lost_all"] and alerts["ping_lost_all"][0]["severity"] == "critical",
           f"ping alerts: {alerts}")
    # Twice the dampening more: still nothing moves.
    time.sleep(3)
    vms = ha.vms(2)
    expect(vms[VM]["node"] == "n1" and vms[VM]["state"] == "running" and not vms[VM].get("move_to"),
           f"g1 moved while no node reaches the ping node: {table(vms)}")
    for i in (1, 2, 3):
        heal(tn, i)
    wait_until(lambda: not ping_alerts(ha) or None, 20, "the ping alert to clear", interval=0.5)
    say(f"nothing moved: {table(vms)}; alert: {alerts['ping_lost_all'][0]['message']!r}")


def main():
    with Workdir("test-ping") as tmp, HaNodes(INSTANCE, 3) as tn:
        ha = Ha(tn, tmp)
        run_steps(tn, ha, (setup, bad_input, configured, node_cut_off, node_back, all_cut_off))
        check_expected()
    return 0


if __name__ == "__main__":
    sys.exit(run_test(main, root=True))

#!/usr/bin/python3
"""The cluster-wide HA pause on real test nodes (issue 15 item 7's "done
when"), and node sets through the CLI.

Three nodes, fence device "pdu" from `testnodes pdu` (fence_action=off: a
fenced node stays off).  g1 (HA, preferred n1) runs on n1; g2 (HA, node set
n3:2,n2:1) on n3.  All along, every node's QEMUs and libvirt are polled: a
VM on two nodes at once fails the test.

 1. `herd vm info g2` shows its node set; `herd vm set` refuses bad sets
    and changes nothing, and sets the restriction on and off.  `herd
    cluster ha pause` on n3: `herd status` says so on its first line, on
    every node; `herd vm start` of a VM that is off is refused.
 2. Paused, `herd node standby n3`: g2 stays on n3 (an alert says what
    herd would do); `herd node online n3`.
 3. Paused, n1's power is cut (`testnodes kill 1`): n1 was the coordinator,
    n2 now is; it sees n1 lost and says that it does not fence it (the pause
    is in the store: it survives the change of coordinator).  No herdd logs
    a fence, n1's fence history has no new record, the PDU's log has no
    outlet command; g1 is still assigned to n1 and runs nowhere.
 4. `herd cluster ha resume` on n2: n1 is fenced through the PDU (a new
    record in its fence history, requests in the PDU's log: the agent finds
    the cut outlet off) and g1 runs on n2 or n3; g2 stayed on n3.

Run as root: tests/cluster/test_ha_pause.py (HERD_TESTNODES_INSTANCE picks
the instance name, default ha-pause).
"""
import os
import re
import sys
import time

_here = os.path.dirname(os.path.realpath(__file__))
sys.path[:0] = [_here, os.path.dirname(_here)]  # harness.py here, testlib.py in tests/
from testlib import check, check_expected, expect, run_test, say, wait_until  # noqa: E402
from halib import DoubleRunWatch, Ha, HaNodes, PduLog, Workdir, herdd_log, running_on, table  # noqa: E402

INSTANCE = os.environ.get("HERD_TESTNODES_INSTANCE", "ha-pause")
PAUSED_LINE = "!!! HA IS PAUSED"


def setup(ha):
    ha.set(1, "failback_after_s=2", "fence_action=off")
    ha.add_pdu()
    quick = ["--shutdown-timeout", "2"]
    ha.define("g1", preferred="n1", extra=quick)
    ha.define("g2", extra=quick + ["--nodes", "n3:2,n2:1"])
    ha.define("off1", preferred="n2")
    for name, where in (("g1", "n1"), ("g2", "n3")):
        p = ha.ok(2, "vm", "start", name)
        check(p.stdout.strip() == f"VM {name} is running on node {where}.",
              f"herd vm start {name}: {p.stdout.strip()!r}")
    ha.wait_counting(["g1", "g2"])
    say("g1 (preferred n1) runs on n1, g2 (node set n3:2,n2:1) on n3")


def scenario_show_and_pause(ha):
    say("== 1. herd vm info g2; herd cluster ha pause")
    text = ha.ok(1, "vm", "info", "g2").stdout
    expect(re.search(r"^Node set:\s+n3:2,n2:1$", text, re.M), f"herd vm info g2:\n{text}")
    row = [l for l in ha.ok(1, "vm", "list").stdout.splitlines() if l.startswith("g2 ")]
    expect(row and "n3:2,n2:1" in row[0], f"herd vm list has no node set for g2: {row}")
    # herd vm set: the set's restriction on and off; bad sets refused, nothing changed.
    before = ha.config(1)
    ha.refused(2, ["vm", "set", "g2", "--nodes", "n3:x"],
               r"The node set is invalid: 'x' after node n3 is not a priority from 0 to 1000")
    ha.refused(2, ["vm", "set", "g2", "--nodes", "n3,n3:2"], r"node n3 is named twice")
    ha.refused(2, ["vm", "set", "g2", "--nodes", "n3:2,n7"], r"Node 'n7' of the node set is not a node of this cluster")
    ha.refused(2, ["vm", "set", "g2", "--preferred", "n1"], r"a preferred node or a node set, not both")
    ha.refused(2, ["vm", "set", "g2", "--nodes", "n3", "--no-nodes"], r"contradicting options", rc=2)
    ha.refused(2, ["vm", "set", "g1", "--restricted"], r"'restricted' needs a node set")
    expect(ha.config(1) == before, "a refused herd vm set changed the configuration")
    ha.ok(2, "vm", "set", "g2", "--restricted")
    text = ha.ok(1, "vm", "info", "g2").stdout
    expect(re.search(r"^Node set:\s+n3:2,n2:1 \(restricted: nowhere else\)$", text, re.M),
           f"herd vm info g2 after --restricted:\n{text}")
    ha.ok(2, "vm", "set", "g2", "--no-restricted")
    p = ha.ok(3, "cluster", "ha", "pause")
    expect(p.stdout.startswith("HA is paused"), f"herd cluster ha pause: {p.stdout!r}")
    for i in (1, 2, 3):
        first = ha.ok(i, "status").stdout.splitlines()[:1]
        expect(first and first[0].startswith(PAUSED_LINE),
               f"n{i}: herd status does not begin with the pause: {first}")
    expect(ha.settings(2)["ha_paused"] is True, f"ha_paused: {ha.settings(2)['ha_paused']!r}")
    ha.refused(1, ["vm", "start", "off1"], r"VM off1 is not started: HA is paused")
    say(f"herd vm info g2: 'Node set: n3:2,n2:1'; herd status begins: {PAUSED_LINE} …")


def scenario_standby_paused(ha):
    say("== 2. paused: herd node standby n3 moves nothing")
    ha.ok(1, "node", "standby", "n3")
    want = "HA is paused: VM g2 stays on node n3 (it would move to node n2"
    got = wait_until(lambda: [a for a in ha.alerts(1) if want in a], 30,
                     f"the alert '{want}…' (alerts: {ha.alerts(1)})")
    vms = ha.vms(1)
    expect(vms["g2"]["node"] == "n3" and vms["g2"]["state"] == "running" and not vms["g2"].get("move_to"),
           f"g2 moved while paused: {table(vms)}")
    ha.ok(1, "node", "online", "n3")
    say(f"g2 stays on n3 in standby; alert: {got[0]}")


def scenario_power_cut_paused(tn, ha, watch, pdu):
    say("== 3. paused: n1's power is cut (n1 coordinated; n2 takes over)")
    mark = pdu.mark()
    t0, t0_mono = time.time(), time.monotonic()
    tn.cli("kill", "1")
    tn.wait_members([2, 3], 2, timeout=30)
    want = "HA is paused: node n1 is lost, and herd does not fence it"
    got = wait_until(lambda: [a for a in ha.alerts(2) if want in a], 30,
                     f"n2, the new coordinator, to say it does not fence n1 (alerts: {ha.alerts(2)})")
    st = ha.status(3)
    expect(st["ha"]["coordinator"] == "n2", f"the coordinator is {st['ha']['coordinator']}, not n2")
    # The alert is raised where the coordinator would have fenced; a few
    # more rounds of its plan must not fence either.
    for _ in range(3):
        time.sleep(1)
    pattern = r"node n1 is lost: fencing|fencing node n1"
    fencing = herdd_log(tn, 2, t0, pattern) + herdd_log(tn, 3, t0, pattern)
    expect(not fencing, f"herdd logged fencing while paused: {fencing}")
    expect(not pdu.outlet_commands(mark, power_cuts=False), f"the PDU switched outlets while paused: "
                                          f"{pdu.outlet_commands(mark, power_cuts=False)}")
    hist = ha.nodes(2)["n1"]["fence_history"]
    expect(not [h for h in hist if h["time_ms"] / 1000 >= t0 - 1], f"n1 was fenced while paused: {hist}")
    vms = ha.vms_any((2, 3))
    expect(vms["g1"]["assigned"] == "n1" and vms["g1"]["state"] != "running",
           f"g1 while paused: {table(vms)}")
    expect(not watch.ran_since(ha.uuids["g1"], [2, 3], t0_mono), "g1 ran on n2 or n3 while paused")
    expect(vms["g2"]["node"] == "n3", f"g2 moved while paused: {table(vms)}")
    first = ha.ok(2, "status").stdout.splitlines()[0]
    expect(first.startswith(PAUSED_LINE), f"herd status on n2 begins {first!r}")
    say(f"n2 coordinates; '{got[0]}'; the PDU's log has no outlet command; g1 stays on n1 (down)")
    return len(pdu.requests(mark))


def scenario_resume(tn, ha, pdu, requests_paused):
    say("== 4. herd cluster ha resume: n1 is fenced, g1 restarted")
    mark = pdu.mark()
    t0 = time.time()
    p = ha.ok(2, "cluster", "ha", "resume")
    expect(p.stdout.startswith("HA is resumed"), f"herd cluster ha resume: {p.stdout!r}")
    vms = ha.wait_vms(lambda v: running_on(v, ["g1"], ("n2", "n3")), 60, "g1 to run on n2 or n3",
                      nodes=(2, 3))
    # n1's power was cut: the agent finds its outlet off and only reads it.
    reqs = pdu.requests(mark)
    expect(reqs, "the PDU had no request after the resume")
    hist = ha.nodes(2)["n1"]["fence_history"]
    expect(hist and hist[-1]["ok"] and hist[-1]["time_ms"] / 1000 >= t0 - 1 and
           hist[-1]["device"] == "pdu", f"n1's fence history: {hist}")
    fenced = herdd_log(tn, 2, t0, r"fencing node n1 succeeded")
    expect(fenced, "n2's herdd did not log n1's fence after the resume")
    expect(vms["g2"]["node"] == "n3", f"g2 moved: {table(vms)}")
    ha.wait_counting(["g1"])
    first = ha.ok(3, "status").stdout.splitlines()[0]
    expect(not first.startswith(PAUSED_LINE), f"herd status still says paused: {first!r}")
    say(f"paused: {requests_paused} PDU request(s), no fence; resumed: n1 fenced through the PDU "
        f"({len(reqs)} request(s)); g1 runs on {vms['g1']['node']} "
        f"+{vms['g1']['since_ms'] / 1000 - t0:.1f} s after the resume")


def main():
    with Workdir(INSTANCE) as tmp, HaNodes(INSTANCE, 3) as tn:
        ha = Ha(tn, tmp)
        pdu = PduLog(tn)
        setup(ha)
        with DoubleRunWatch(tn) as watch:
            scenario_show_and_pause(ha)
            scenario_standby_paused(ha)
            requests_paused = scenario_power_cut_paused(tn, ha, watch, pdu)
            scenario_resume(tn, ha, pdu, requests_paused)
            watch.finish()
        check_expected()


if __name__ == "__main__":
    sys.exit(run_test(main, root=True))

#!/usr/bin/python3
"""A two-node cluster split in two (issue 4's "done when"): exactly one node
survives and runs both nodes' VMs.

Two nodes, fence device "pdu" from `testnodes pdu`; HA guest ga prefers n1,
gb prefers n2 (failback after 2 s, 2 s shutdown timeout: the test guest
ignores ACPI).  Every node's QEMUs and libvirt are polled all along: a VM on
two nodes at once fails the test.  Three splits, each healed afterwards (the
fenced node powered on again, its VM failing back):

 A. the link between n1 and n2 cut while both still reach the PDU (bridge
    port isolation in the instance's hub), default fence_delay_ms: both
    fence, n2 only after the delay, so n1 survives;
 B. the same with fence_delay_ms=0: a real race at the PDU, which serialises
    the two requests -- exactly one survives, whichever;
 C. n1 cut off entirely (`testnodes cut 1`: it cannot reach the PDU either):
    n2 fences it after its delay and survives.

Each time: exactly one node is powered on afterwards, the other's fence
record names the pdu and the survivor, and the survivor runs ga and gb, their
counters advancing.  fence_action is off: the loser stays off until the test
powers it on.  Prints the split -> fenced -> running times.
"""
import os
import subprocess
import sys
import time

_here = os.path.dirname(os.path.realpath(__file__))
sys.path[:0] = [_here, os.path.dirname(_here)]  # harness.py here, testlib.py in tests/
from testlib import check, check_expected, expect, run_test, say, wait_until  # noqa: E402
from halib import DoubleRunWatch, Ha, HaNodes, Workdir, herdd_log, running_on  # noqa: E402

INSTANCE = "test-ha-split"
VMS = {"ga": "n1", "gb": "n2"}


def isolate(tn, on):
    """Bridge port isolation of n1's and n2's hub ends: they no longer reach
    each other, each still reaches the PDU."""
    for i in (1, 2):
        subprocess.run(["ip", "netns", "exec", tn.tn.hub, "bridge", "link", "set", "dev",
                        f"n{i}l0", "isolated", "on" if on else "off"], check=True)


def powered(tn):
    return [i for i in (1, 2) if tn.tn.init_pid(i)]


def split(tn, ha, watch, what, cut, heal, delay_s):
    say(f"== {what}")
    boots = {n: ha.boots(n) for n in VMS}
    t0 = time.time()
    cut()
    one = wait_until(lambda: len(powered(tn)) == 1 and powered(tn), 60,
                     f"one of the nodes to be fenced (powered on: {powered(tn)})")
    t_off = time.time()
    winner = one[0]
    loser = 3 - winner
    vms = ha.wait_vms(lambda v: running_on(v, list(VMS), (f"n{winner}",)), 60,
                      f"ga and gb to run on the survivor n{winner}", nodes=(winner,))
    ha.wait_counting(list(VMS), boots_after={n: boots[n] for n in VMS if VMS[n] != f"n{winner}"})
    # Long enough for the other node's (delayed) fencing to have happened, had it
    # survived: still exactly one node on.
    time.sleep(max(0.0, t0 + delay_s + 3 - time.time()))
    check(powered(tn) == [winner], f"{what}: nodes powered on: {powered(tn)} (want only n{winner})")
    hist = ha.nodes(winner)[f"n{loser}"]["fence_history"]
    new = [h for h in hist if h["time_ms"] / 1000 >= t0 - 1]
    expect(new and new[-1]["ok"] and new[-1]["device"] == "pdu" and new[-1]["by"] == f"n{winner}",
           f"{what}: n{loser}'s fence history (on n{winner}) has no successful record by "
           f"n{winner} through pdu: {hist}")
    fenced = herdd_log(tn, winner, t0, rf"fencing node n{loser} succeeded")
    detail = f"; {fenced[0][1].split(': ', 1)[1][:70]}" if fenced else ""
    starts = sorted(vms[n]["since_ms"] / 1000 - t0 for n in VMS)
    say(f"{what}: n{winner} survived, n{loser} powered off +{t_off - t0:.2f} s{detail}; "
        f"ga and gb run on n{winner} (+{starts[-1]:.2f} s for the moved one) and count")
    watch.check(what)
    heal()
    t1 = time.time()
    tn.cli("start", str(loser))
    tn.wait_members([1, 2], 2, timeout=30)
    vms = ha.wait_vms(lambda v: all(v[n]["state"] == "running" and v[n]["node"] == VMS[n] for n in VMS),
                      90, "ga on n1 and gb on n2 again (failback)", nodes=(1, 2))
    ha.wait_counting(list(VMS))
    say(f"n{loser} back: both VMs on their preferred nodes again +{time.time() - t1:.1f} s")
    watch.check(f"{what}, healed")
    return winner


def main():
    with Workdir(INSTANCE) as tmp, HaNodes(INSTANCE, 2) as tn:
        ha = Ha(tn, tmp)
        q = ha.status(1)["cluster"]["quorum"]
        check(q["two_node"], f"a two-node cluster without corosync's two_node: {q}")
        ha.set(1, "failback_after_s=2")
        # The loser stays off (each split checks that only one node is on,
        # then powers the loser on itself).
        ha.set(1, "fence_action=off")
        delay_s = int(ha.settings(1)["fence_delay_ms"]) / 1000
        ha.add_pdu()
        for name, pref in VMS.items():
            ha.define(name, preferred=pref, extra=["--shutdown-timeout", "2"])
            p = ha.ok(1, "vm", "start", name)
            check(p.stdout.strip() == f"VM {name} is running on node {pref}.",
                  f"herd vm start {name}: {p.stdout.strip()!r}")
        ha.wait_counting(list(VMS))
        say(f"two nodes (corosync two_node), fence_delay_ms {delay_s * 1000:.0f}; "
            f"ga runs on n1, gb on n2")
        with DoubleRunWatch(tn) as watch:
            w = split(tn, ha, watch, "A. n1-n2 link cut, both reach the PDU",
                      lambda: isolate(tn, True), lambda: isolate(tn, False), delay_s)
            expect(w == 1, f"A: n{w} survived; with n2 fencing {delay_s:g} s later, n1 "
                           "(the first node) should have")
            ha.set(1, "fence_delay_ms=0")
            split(tn, ha, watch, "B. the same with fence_delay_ms=0 (a race at the PDU)",
                  lambda: isolate(tn, True), lambda: isolate(tn, False), 0)
            ha.set(1, f"fence_delay_ms={delay_s * 1000:.0f}")
            w = split(tn, ha, watch, "C. n1 cut off from everything (the PDU too)",
                      lambda: tn.cli("cut", "1"), lambda: tn.cli("heal", "1"), delay_s)
            expect(w == 2, f"C: n{w} survived, though n1 could not reach the PDU")
            watch.finish()
        check_expected()


if __name__ == "__main__":
    sys.exit(run_test(main, root=True))

#!/usr/bin/python3
"""A quorum device for a two-node cluster (issue 13, item 4): corosync-qnetd
on an outside host (`testnodes qnetd up`: its own namespace at 10.99.0.251,
with sshd), set up with `herd cluster qdevice add` over ssh as root.

Two nodes, fence device "pdu", fence_action off (the loser stays off until
the test powers it on); HA guest ga prefers n1, gb prefers n2.  Every
node's QEMUs and libvirt are polled all along: a VM on two nodes at once
fails the test.

 0. Refused, each changing nothing: a host where no sshd answers, a host
    whose qnetd is not running, a node down, bad certificates (API); then
    the add, after which corosync has 3 expected votes and no two_node on
    both nodes, and a second add is refused.
 1. qnetd down: both nodes stay quorate, a change is accepted, nothing
    moves; qnetd back: its vote is counted again.
 2. The link between n1 and n2 cut, and n1 cut from qnetd (n1 still reaches
    the PDU): n2, which reaches qnetd, fences n1 and runs both VMs; n1 never
    fences n2, although without a qdevice n1 (the lowest node, no fence
    delay) would have won.
 3. n2 powered off: n1 stays quorate with qnetd's vote, fences n2 and runs
    both VMs.
 4. `herd cluster qdevice remove`: corosync's two_node is back, no
    corosync-qdevice runs.
"""
import json
import os
import subprocess
import sys
import time

_here = os.path.dirname(os.path.realpath(__file__))
sys.path[:0] = [_here, os.path.dirname(_here)]  # harness.py here, testlib.py in tests/
from testlib import check, check_expected, expect, run_test, say, wait_until  # noqa: E402
from halib import DoubleRunWatch, Ha, HaNodes, PduLog, Workdir, api, herdd_log, running_on  # noqa: E402

INSTANCE = "test-qdevice"
VMS = {"ga": "n1", "gb": "n2"}
QNETD = "10.99.0.251"


def isolate(tn, on):
    """Bridge port isolation of n1's and n2's hub ends: they no longer reach
    each other; each still reaches the PDU (and qnetd, unless cut)."""
    for i in (1, 2):
        subprocess.run(["ip", "netns", "exec", tn.tn.hub, "bridge", "link", "set", "dev",
                        f"n{i}l0", "isolated", "on" if on else "off"], check=True)


def powered(tn):
    return [i for i in (1, 2) if tn.tn.init_pid(i)]


def quorum(ha, i):
    return ha.json(i, "cluster", "status")["quorum"]


def qdevice_voting(ha, i):
    """Node i's corosync counts qnetd's vote: 3 of 3 votes, the device alive."""
    q = quorum(ha, i)
    d = q.get("qdevice") or {}
    return q["expected_votes"] == 3 and q["total_votes"] == 3 and d.get("alive") and \
        d.get("cast_vote") and not q["two_node"]


def qdevice_running(tn, i):
    return tn.exec(i, "corosync-qdevice-tool", "-s").returncode == 0


def refusals(tn, ha, opts):
    say("== 0. bad input changes nothing, then the add")
    before = ha.json(1, "cluster", "status")
    check(before["qdevice"] is None, f"a qdevice before the add: {before['qdevice']}")
    ha.refused(1, ["cluster", "qdevice", "add", "10.99.0.252"] + opts + ["-o", "ConnectTimeout=2"],
               r"Cannot reach 10\.99\.0\.252 over ssh as root", what="no host there")
    tn.cli("qnetd", "stop")
    ha.refused(1, ["cluster", "qdevice", "add", QNETD] + opts,
               r"corosync-qnetd is not running there", what="qnetd stopped")
    tn.cli("qnetd", "start")
    code, body = api(tn, 1, "POST", "/api/v1/cluster/qdevice",
                     {"host": QNETD, "ca_cert": "not a certificate", "p12": "AAAA"})
    expect(code == 400 and "ca_cert is not qnetd's CA" in str(body),
           f"POST /cluster/qdevice with a bad CA: {code} {body}")
    code, body = api(tn, 1, "POST", "/api/v1/cluster/qdevice", {"host": "-x", "check": True})
    expect(code == 400 and "not a host name" in str(body), f"a bad host: {code} {body}")
    tn.cli("kill", "2")
    tn.wait_members([1], 1, timeout=30)
    ha.refused(1, ["cluster", "qdevice", "add", QNETD] + opts,
               r"Node n2 is not up: every node must be up", what="n2 down")
    tn.cli("start", "2")
    tn.wait_members([1, 2], 2, timeout=60)
    ha.wait_vms(lambda v: all(v[n]["state"] == "running" and v[n]["node"] == VMS[n] for n in VMS),
                90, "ga on n1 and gb on n2 again", nodes=(1, 2))
    for i in (1, 2):
        st = ha.json(i, "cluster", "status")
        expect(st["qdevice"] is None and st["quorum"]["two_node"],
               f"n{i}: a refused add changed the cluster: {st['qdevice']} {st['quorum']}")
        expect(not qdevice_running(tn, i), f"n{i}: corosync-qdevice runs after refused adds")

    t0 = time.time()
    p = ha.ok(1, "cluster", "qdevice", "add", QNETD, *opts)
    expect("algorithm ffsplit" in p.stdout, f"herd cluster qdevice add said {p.stdout.strip()!r}")
    for i in (1, 2):
        wait_until(lambda: qdevice_voting(ha, i), 60,
                   f"n{i}'s corosync to count qnetd's vote (it has {quorum(ha, i)})")
    q = ha.json(2, "cluster", "status")["qdevice"]
    expect(q["host"] == QNETD and q["algorithm"] == "ffsplit" and q["active"],
           f"the qdevice as the API shows it: {q}")
    shown = ha.ok(2, "cluster", "status").stdout
    expect(f"Qdevice:      {QNETD}:5403, ffsplit, alive, votes for this partition" in shown,
           f"herd cluster status does not show the qdevice voting:\n{shown}")
    say(f"qdevice added; both nodes count its vote +{time.time() - t0:.1f} s")
    ha.refused(2, ["cluster", "qdevice", "add", QNETD] + opts,
               rf"already has a qdevice \({QNETD}\)", what="a second add")


def qnetd_down(tn, ha, watch):
    say("== 1. qnetd down: the cluster keeps working")
    tn.cli("qnetd", "stop")
    for i in (1, 2):
        wait_until(lambda: quorum(ha, i)["total_votes"] == 2, 60,
                   f"n{i} to lose qnetd's vote (it has {quorum(ha, i)})")
        q = quorum(ha, i)
        check(q["quorate"], f"n{i} lost quorum with qnetd down: {q}")
    ha.set(2, "failback_after_s=3")
    check(ha.settings(1)["failback_after_s"] == 3, "a change made with qnetd down did not arrive")
    vms = ha.vms(1)
    check(all(vms[n]["node"] == VMS[n] and vms[n]["state"] == "running" for n in VMS),
          f"VMs moved with qnetd down: {vms}")
    ha.wait_counting(list(VMS))
    tn.cli("qnetd", "start")
    for i in (1, 2):
        wait_until(lambda: qdevice_voting(ha, i), 60,
                   f"n{i} to count qnetd's vote again (it has {quorum(ha, i)})")
    watch.check("qnetd down")
    say("qnetd down: both nodes quorate (2 of 3 votes), a change accepted, nothing moved")


def heal_and_return(tn, ha, watch, loser, what):
    t1 = time.time()
    tn.cli("start", str(loser))
    tn.wait_members([1, 2], 2, timeout=60)
    ha.wait_vms(lambda v: all(v[n]["state"] == "running" and v[n]["node"] == VMS[n] for n in VMS),
                120, "ga on n1 and gb on n2 again (failback)", nodes=(1, 2))
    ha.wait_counting(list(VMS))
    for i in (1, 2):
        wait_until(lambda: qdevice_voting(ha, i), 60, f"n{i} to count qnetd's vote again")
    watch.check(f"{what}, healed")
    say(f"n{loser} back: both VMs on their preferred nodes +{time.time() - t1:.1f} s")


def survive(tn, ha, watch, what, cut, heal, winner):
    loser = 3 - winner
    boots = {n: ha.boots(n) for n in VMS}
    t0 = time.time()
    cut()
    wait_until(lambda: powered(tn) == [winner], 60,
               f"{what}: n{loser} to be fenced (powered on: {powered(tn)})")
    t_off = time.time()
    vms = ha.wait_vms(lambda v: running_on(v, list(VMS), (f"n{winner}",)), 60,
                      f"ga and gb to run on n{winner}", nodes=(winner,))
    ha.wait_counting(list(VMS), boots_after={n: boots[n] for n in VMS if VMS[n] != f"n{winner}"})
    q = quorum(ha, winner)
    check(q["quorate"] and q["total_votes"] == 2, f"{what}: n{winner}'s quorum: {q}")
    hist = ha.nodes(winner)[f"n{loser}"]["fence_history"]
    new = [h for h in hist if h["time_ms"] / 1000 >= t0 - 1]
    expect(new and new[-1]["ok"] and new[-1]["by"] == f"n{winner}",
           f"{what}: no successful fence of n{loser} by n{winner}: {hist}")
    watch.check(what)
    heal()
    return t_off - t0, vms


def main_loops_at_split(tn, t0):
    """At a split corosync answers no CPG or cfg request while votequorum
    waits for the qdevice's poll (up to 3 s); herdd asks those on a worker
    thread, so neither herdd's main loop waits with it: the supervisor
    killed neither for a missed watchdog (the test nodes' 3 s), and the
    loops' stalls of a second or more, which herdd logs, are shown."""
    for i in (1, 2):
        killed = [line for _, line in herdd_log(tn, i, t0 - 1, r"did not feed the watchdog")]
        expect(not killed, f"n{i}'s herdd was killed at the split: {killed}")
        stalls = [line.split(": the main loop ")[-1] for _, line in
                  herdd_log(tn, i, t0 - 1, r"the main loop stalled for")]
        say(f"n{i}: main-loop stalls of 1 s or more since the split: {stalls or 'none'}")


def main():
    with Workdir(INSTANCE) as tmp, HaNodes(INSTANCE, 2) as tn:
        ha = Ha(tn, tmp)
        tn.cli("qnetd", "up")
        opts = []
        for o in json.loads(tn.cli("qnetd", "status").stdout)["ssh_options"]:
            opts += ["-o", o]
        ha.set(1, "failback_after_s=2")
        ha.set(1, "fence_action=off")
        ha.add_pdu()
        for name, pref in VMS.items():
            ha.define(name, preferred=pref, extra=["--shutdown-timeout", "2"])
            ha.ok(1, "vm", "start", name)
        ha.wait_counting(list(VMS))
        with DoubleRunWatch(tn) as watch:
            refusals(tn, ha, opts)
            qnetd_down(tn, ha, watch)

            say("== 2. n1-n2 link cut, n1 cut from qnetd (both reach the PDU)")
            t0 = time.time()
            pdu = PduLog(tn)
            mark = pdu.mark()
            took, _ = survive(tn, ha, watch, "split",
                              lambda: (tn.cli("qnetd", "cut", "1"), isolate(tn, True)),
                              lambda: (isolate(tn, False), tn.cli("qnetd", "heal", "1")), 2)
            from_n1 = [l for l in pdu.requests(mark) if "request from n1 " in l]
            expect(not from_n1, f"n1 (cut from qnetd) talked to the PDU: {from_n1}")
            main_loops_at_split(tn, t0)
            not_run = herdd_log(tn, 1, t0, r"lost quorum before the fence began")
            say(f"split: n2 (reaches qnetd) fenced n1 +{took:.1f} s, runs ga and gb; n1 fenced "
                f"nothing{' (its delayed fence of n2 dropped when it lost quorum)' if not_run else ''}")
            heal_and_return(tn, ha, watch, 1, "split")

            say("== 3. n2 powered off: n1 goes on with qnetd's vote")
            took, _ = survive(tn, ha, watch, "n2 lost", lambda: tn.cli("kill", "2"), lambda: None, 1)
            say(f"n2 lost: n1 quorate (2 of 3 votes), fenced n2 +{took:.1f} s, runs ga and gb")
            heal_and_return(tn, ha, watch, 2, "n2 lost")
            watch.finish()

        say("== 4. remove")
        ha.ok(1, "cluster", "qdevice", "remove")
        for i in (1, 2):
            wait_until(lambda: quorum(ha, i)["two_node"] and not qdevice_running(tn, i), 60,
                       f"n{i}: two_node back and corosync-qdevice stopped ({quorum(ha, i)})")
        check(ha.json(1, "cluster", "status")["qdevice"] is None, "the qdevice is still shown")
        ha.refused(1, ["cluster", "qdevice", "remove"], r"The cluster has no qdevice",
                   what="remove without one")
        say("removed: corosync's two_node again, no corosync-qdevice")
        check_expected()


if __name__ == "__main__":
    sys.exit(run_test(main, root=True))

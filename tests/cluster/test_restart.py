#!/usr/bin/python3
"""A crashed or hung herdd is started again and takes its node's VMs back
(issue 8, item 8a), with nothing fenced and no guest restarted.

Three nodes, fence device "pdu" (tested: a fence would work); HA guests g1
and g2 run on n2, h1 on n1.  In a test node herdd runs under `nodeinit
--supervise` (node-service), as contrib/systemd/herdd.service has systemd
run it: restarted 1 s after it exits, killed and restarted when WATCHDOG=1
stops for 3 s.  All along, every node's QEMUs and libvirt are polled: a VM on
two nodes at once fails the test.

 a. SIGKILL of n2's herdd: a new herdd is ready on n2 and n2 reports g1 and
    g2 running again;
 b. SIGKILL of n1's herdd (n1 coordinates: lowest node id): n2 coordinates
    while it is away, n1 takes over again once its new herdd is back;
 c. SIGSTOP of n2's herdd: the supervisor's watchdog kills it (no WATCHDOG=1
    for 3 s) and starts a new one;
 d. n2's herdd restarts while n2's libvirtd does not answer (SIGSTOP), and
    n2 goes to standby meanwhile: g1 and g2 are "unknown" on n2 and start
    nowhere else until n2's herdd has listed them; then they migrate away,
    live (no boot).

After each of a-c: no node was fenced (every fence history empty, no PDU
outlet switched, every node's init the same), no node is marked down, every
guest runs in the same QEMU process, since before the kill, and its serial
counter goes on without a boot; the new herdd asked libvirt to start none of
them; VM operations on the node's VMs, asked for on another node, work
(reboot, suspend, resume).  Prints kill -> herdd ready again -> the node's
VMs reported again; asserts no timing beyond "within 30 s".
"""
import os
import re
import signal
import sys
import time

_here = os.path.dirname(os.path.realpath(__file__))
sys.path[:0] = [_here, os.path.dirname(_here)]  # harness.py here, testlib.py in tests/
from harness import testnodes  # noqa: E402
from testlib import check, check_expected, expect, run_test, say, wait_until  # noqa: E402
from halib import (DoubleRunWatch, Ha, HaNodes, Workdir, herdd_log, qemu_pids,  # noqa: E402
                   running_on, table)

INSTANCE = "test-restart"
ON = {"g1": "n2", "g2": "n2", "h1": "n1"}
OBSERVER = 3           # lists the VMs: its herdd is never killed
BACK_WITHIN_S = 30     # generous: the supervisor restarts herdd after 1 s


def herdd_state(tn, i):
    """(state, pid inside the node) from node i's supervisor ("ready 57"),
    read through the node's root as the host sees it (no nsenter: fast)."""
    path = f"/proc/{tn.tn.require_on(i)}/root/run/node-service/herdd.state"
    try:
        with open(path) as f:
            state, pid = f.read().split()
        return state, int(pid)
    except (OSError, ValueError):
        return None, None


def host_pid(tn, i, comm):
    """The host PID of the process called @comm in node i, or None."""
    ino = os.stat(f"/run/netns/{tn.tn.netns(i)}").st_ino
    for pid in testnodes.all_pids():
        try:
            with open(f"/proc/{pid}/comm") as f:
                if f.read().strip() != comm:
                    continue
            if os.stat(f"/proc/{pid}/ns/net").st_ino != ino:
                continue
        except OSError:
            continue
        if testnodes.proc_alive(pid):
            return pid
    return None


def switched_outlets(tn):
    """The PDU log's lines of outlets switched and power cuts."""
    path = os.path.join(tn.tn.dir, "pdu", "pdu.log")
    with open(path, errors="replace") as f:
        return [line.rstrip() for line in f if re.search(r"outlet \d+ .*: done|: power cut", line)]


def fence_history(ha):
    return {n["name"]: (n["fence_history"], n["down"]) for n in ha.json(OBSERVER, "node", "list")}


def coordinator(ha, i):
    return (ha.status(i).get("ha") or {}).get("coordinator")


def setup(tn, ha):
    ha.add_pdu()
    p = ha.run(1, "fence-device", "test", "pdu")
    check(p.returncode == 0, f"fence-device test pdu: exit {p.returncode}: {p.stdout}{p.stderr}")
    for name, node in ON.items():
        ha.define(name, preferred=node, extra=["--shutdown-timeout", "2"])
        ha.ok(1, "vm", "start", name)
    ha.wait_counting(list(ON))
    vms = ha.vms(OBSERVER)
    check(all(running_on(vms, [n], (node,)) for n, node in ON.items()), f"after the starts: {table(vms)}")
    check(coordinator(ha, OBSERVER) == "n1", f"the coordinator is {coordinator(ha, OBSERVER)}, not n1")
    say(f"fence device pdu works (fence-device test); {table(vms)}; n1 coordinates")


def vm_ops(ha, name, via):
    """reboot, suspend and resume of @name, asked for on node @via."""
    p = ha.ok(via, "vm", "reboot", name)
    expect(p.stdout.strip() == f"VM {name} is rebooting on node {ON[name]}.",
           f"n{via}: vm reboot {name}: {p.stdout!r}")
    ha.ok(via, "vm", "suspend", name)
    ha.wait_vms(lambda v: v[name]["state"] == "paused", 10, f"{name} to be paused", nodes=(OBSERVER,))
    c = ha.counter(name)
    ha.ok(via, "vm", "resume", name)
    ha.wait_vms(lambda v: v[name]["state"] == "running", 10, f"{name} to run again", nodes=(OBSERVER,))
    wait_until(lambda: (ha.counter(name) or 0) > (c or 0), 10, f"{name}'s counter to go on after resume")
    say(f"  vm reboot, suspend, resume of {name} (on {ON[name]}) through n{via}: done, counting")


def scenario(tn, ha, watch, i, sig, what):
    """Send @sig to node i's herdd; wait for a new herdd and its VMs; check
    that nothing was fenced and no guest restarted."""
    say(f"== {what}")
    mine = [n for n, node in ON.items() if node == f"n{i}"]
    qemus = {n: qemu_pids(tn, ha.uuids[n]) for n in ON}
    boots = {n: ha.boots(n) for n in ON}
    since = {n: v["since_ms"] for n, v in ha.vms(OBSERVER).items()}
    inits = {k: tn.tn.init_pid(k) for k in (1, 2, 3)}
    outlets = switched_outlets(tn)
    old_state, old_pid = herdd_state(tn, i)
    check(old_state == "ready", f"n{i}'s herdd is {old_state}, not ready, before the test")
    herdd = host_pid(tn, i, "herdd")
    check(herdd, f"no herdd found in n{i}")

    t0_wall = time.time()
    t0 = time.monotonic()
    os.kill(herdd, sig)
    t_back = None

    def new_herdd():
        nonlocal t_back
        state, pid = herdd_state(tn, i)
        if state == "ready" and pid != old_pid:
            t_back = t_back or time.monotonic()
            return pid
        return None
    new_pid = wait_until(new_herdd, BACK_WITHIN_S, f"a new herdd to be ready on n{i}")
    vms = ha.wait_vms(lambda v: running_on(v, mine, (f"n{i}",)), BACK_WITHIN_S,
                      f"n{i} to report {', '.join(mine)} running again", nodes=(OBSERVER,), interval=0.05)
    t_vms = time.monotonic()

    # The supervisor's own lines say when it saw what (herdd.log).
    sv = herdd_log(tn, i, t0_wall - 1, r" supervise: ")
    killed = [w for w, line in sv if "did not feed the watchdog" in line and w >= t0_wall - 0.01]
    exited = [w for w, line in sv if re.search(r"\(pid %d\) (was killed|exited)" % old_pid, line)]
    ready = [w for w, line in sv if re.search(r"\(pid %d\) is ready" % new_pid, line)]
    parts = []
    if sig == signal.SIGSTOP:
        expect(killed, f"n{i}'s supervisor did not log a watchdog kill: {[l for _, l in sv]}")
        if killed:
            parts.append(f"watchdog kill +{killed[0] - t0_wall:.2f} s")
    expect(exited, f"n{i}'s supervisor did not log the exit of herdd pid {old_pid}")
    if ready:
        parts.append(f"new herdd READY=1 +{ready[0] - t0_wall:.2f} s")
    parts.append(f"ready seen by the test +{t_back - t0:.2f} s")
    parts.append(f"n{OBSERVER} lists {', '.join(mine)} running on n{i} +{t_vms - t0:.2f} s")
    say(f"{what}: " + "; ".join(parts))
    if what.startswith("b."):
        took = herdd_log(tn, 2, t0_wall, r"this node coordinates the cluster now")
        expect(took, "n2 did not coordinate while n1's herdd was away")
        wait_until(lambda: coordinator(ha, OBSERVER) == "n1", BACK_WITHIN_S, "n1 to coordinate again")
        back = herdd_log(tn, 1, t0_wall, r"this node coordinates the cluster now")
        say(f"  n2 coordinated from +{took[0][0] - t0_wall:.2f} s; n1 again from "
            f"+{back[0][0] - t0_wall:.2f} s" if took and back else "  (coordinator log lines missing)")

    # Nothing fenced, nothing powered off, nothing marked down.
    hist = fence_history(ha)
    expect(all(not h and down is None for h, down in hist.values()),
           f"fence histories or down marks after {what}: {hist}")
    expect(switched_outlets(tn) == outlets,
           f"the PDU switched outlets during {what}: {switched_outlets(tn)[len(outlets):]}")
    expect({k: tn.tn.init_pid(k) for k in (1, 2, 3)} == inits, f"a node was power-cycled during {what}")
    # No guest restarted: the same QEMUs, counting on without a boot.
    now = {n: qemu_pids(tn, ha.uuids[n]) for n in ON}
    expect(now == qemus, f"QEMU processes changed during {what}: {qemus} -> {now}")
    expect({n: ha.boots(n) for n in ON} == boots, f"a guest booted again during {what}")
    counters = {n: ha.counter(n) for n in ON}
    ha.wait_counting(list(ON))
    vms = ha.vms(OBSERVER)
    expect(all(running_on(vms, [n], (node,)) for n, node in ON.items()), f"after {what}: {table(vms)}")
    # Running since before the kill (QEMU's start), not since the new herdd.
    reset = {n: (since[n], vms[n]["since_ms"]) for n in ON if vms[n]["since_ms"] / 1000 >= t0_wall}
    expect(not reset, f"VMs running since after the kill (ms before, after): {reset}")
    starts = herdd_log(tn, i, t0_wall, r" ha: starting VM ")
    expect(not starts, f"the new herdd on n{i} asked libvirt to start VMs that run there: "
                       f"{[line for _, line in starts]}")
    say(f"  nothing fenced; same QEMUs {', '.join(f'{n} {p[0][1]}' for n, p in now.items() if p)}; "
        f"counters went on ({', '.join(f'{n} {c}' for n, c in counters.items())}); "
        f"the new herdd started nothing")
    via = 1 if i != 1 else 2
    for name in mine:
        vm_ops(ha, name, via)
    watch.check(what)


def scenario_libvirt_hangs(tn, ha, watch):
    """n2's herdd restarts while n2's libvirtd does not answer, and n2 is put
    in standby meanwhile: until n2's herdd knows its VMs, nobody may take
    their absence from its report for a fact (they still run there)."""
    what = "d. n2's herdd restarts while n2's libvirtd hangs; n2 goes to standby"
    say(f"== {what}")
    mine = [n for n, node in ON.items() if node == "n2"]
    qemus = {n: qemu_pids(tn, ha.uuids[n]) for n in mine}
    boots = {n: ha.boots(n) for n in mine}
    libvirtd = host_pid(tn, 2, "libvirtd")
    check(libvirtd, "no libvirtd found in n2")
    old_pid = herdd_state(tn, 2)[1]
    os.kill(libvirtd, signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        os.kill(host_pid(tn, 2, "herdd"), signal.SIGKILL)
        wait_until(lambda: herdd_state(tn, 2)[0] == "ready" and herdd_state(tn, 2)[1] != old_pid,
                   BACK_WITHIN_S, "a new herdd to be ready on n2")
        ha.ok(1, "node", "standby", "n2")
        time.sleep(5)
        vms = ha.vms(OBSERVER)
        elsewhere = {n: watch.ran_since(ha.uuids[n], [1, 3], t0) for n in mine}
        expect(not any(elsewhere.values()) and {n: qemu_pids(tn, ha.uuids[n]) for n in mine} == qemus,
               f"VMs of n2 started elsewhere while n2's herdd did not know them: {elsewhere}; "
               f"{table(vms)}")
        expect(all(vms[n]["state"] == "unknown" and vms[n]["node"] == "n2" for n in mine),
               f"vm list while n2's herdd does not reach libvirt: {table(vms)} (want unknown on n2)")
        say(f"  5 s with n2 in standby and its herdd blind: {table(vms)}")
    finally:
        os.kill(libvirtd, signal.SIGCONT)
    t1 = time.monotonic()
    vms = ha.wait_vms(lambda v: running_on(v, mine, ("n1", "n3")), 60,
                      f"{', '.join(mine)} to move away from n2 (standby)", nodes=(OBSERVER,))
    ha.wait_counting(mine)
    rebooted = [n for n in mine if ha.boots(n) != boots[n]]
    expect(not rebooted, f"standby moves VMs live, yet {rebooted} booted again")
    say(f"  libvirtd answers again: {', '.join(mine)} migrated live off n2 "
        f"+{time.monotonic() - t1:.1f} s, no boot; {table(vms)}")
    watch.check(what)


def main():
    with Workdir(INSTANCE) as tmp, HaNodes(INSTANCE, 3) as tn:
        ha = Ha(tn, tmp)
        setup(tn, ha)
        with DoubleRunWatch(tn) as watch:
            scenario(tn, ha, watch, 2, signal.SIGKILL, "a. SIGKILL of n2's herdd")
            scenario(tn, ha, watch, 1, signal.SIGKILL, "b. SIGKILL of n1's herdd (the coordinator)")
            scenario(tn, ha, watch, 2, signal.SIGSTOP, "c. SIGSTOP of n2's herdd (the watchdog)")
            scenario_libvirt_hangs(tn, ha, watch)
            watch.finish()
        check_expected()


if __name__ == "__main__":
    sys.exit(run_test(main, root=True))

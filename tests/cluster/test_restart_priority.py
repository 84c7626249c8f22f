#!/usr/bin/python3
"""Restart priorities and "start after" on a failover (src/ha/start_order.h).

Three nodes, the PDU as fence device, six tiny guests on n2 (--preferred n2):
pr-high1 and pr-high2 (restart priority high), pr-med1 and pr-med2 (medium,
the default), pr-low (low) and pr-app (medium, --start-after pr-low).
`herd vm info` and `herd vm list --json` show each VM's priority and what
it starts after; a bad priority or an unknown VM to start after is refused
and changes nothing; `herd simulate --node-down n2` lists the six in the
order they would start, with their priority.

Then n2 loses power (fence_action off: it stays off).  On the survivors both
high guests are asked to start (herdd's "starting VM" lines) and running
(libvirt's own lifecycle events, watched from before the kill) before any
other of the six, the medium ones before the low one, and pr-app (medium,
after pr-low) after pr-low.
"""
import datetime
import os
import re
import subprocess
import sys
import threading
import time

_here = os.path.dirname(os.path.realpath(__file__))
sys.path[:0] = [_here, os.path.dirname(_here)]  # harness.py here, testlib.py in tests/
from halib import Ha, HaNodes, Workdir, herdd_log, running_on, table  # noqa: E402
from testlib import check, check_expected, expect, run_test, say, wait_until  # noqa: E402

INSTANCE = "prio"
HIGH = ["pr-high1", "pr-high2"]
MEDIUM = ["pr-med1", "pr-med2"]
VMS = HIGH + MEDIUM + ["pr-low", "pr-app"]
STARTED = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+)([+-]\d{4}): event 'lifecycle' "
                     r"for domain '?([^':]+)'?: Started")


class StartedEvents:
    """libvirt's Started events of a node, read as they come."""

    def __init__(self, tn, i):
        argv = ["virsh", "-q", "-c", "qemu:///system", "event", "--loop", "--event", "lifecycle",
                "--timestamp"]
        self.p = subprocess.Popen(tn.tn.node_argv(i, argv), env=tn.tn.node_env(i),
                                  stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  stderr=subprocess.DEVNULL, text=True)
        self.at = {}
        self.t = threading.Thread(target=self._read, daemon=True)
        self.t.start()

    def _read(self):
        for line in self.p.stdout:
            m = STARTED.match(line)
            if m and m[3] not in self.at:
                self.at[m[3]] = datetime.datetime.strptime(m[1] + m[2],
                                                           "%Y-%m-%d %H:%M:%S.%f%z").timestamp()

    def stop(self):
        self.p.kill()
        self.p.wait()
        self.t.join(timeout=5)


def define(ha):
    prio = {n: "high" for n in HIGH}
    prio["pr-low"] = "low"
    for name in VMS:
        extra = []
        if name in prio:
            extra += ["--restart-priority", prio[name]]
        if name == "pr-app":
            extra += ["--start-after", "pr-low", "--start-wait", "120"]
        ha.define(name, preferred="n2", extra=extra)
    vms = ha.vms()
    for name in VMS:
        want = prio.get(name, "medium")
        expect(vms[name]["restart_priority"] == want,
               f"{name}: restart_priority {vms[name]['restart_priority']!r}, not {want!r}")
    expect(vms["pr-app"]["start_after"] == ha.uuids["pr-low"] and vms["pr-app"]["start_wait_s"] == 120,
           f"pr-app: start_after {vms['pr-app']['start_after']!r}, start_wait_s "
           f"{vms['pr-app']['start_wait_s']!r}")
    info = ha.ok(1, "vm", "info", "pr-app").stdout
    expect(re.search(r"Restart priority:\s+medium", info) and
           re.search(r"Starts after:\s+\S+ \(waits at most 120 s\)", info),
           f"herd vm info pr-app:\n{info}")
    info = ha.ok(1, "vm", "info", "pr-high1").stdout
    expect(re.search(r"Restart priority:\s+high", info), f"herd vm info pr-high1:\n{info}")
    before = ha.config()
    ha.refused(1, ["vm", "set", "pr-med1", "--restart-priority", "urgent"],
               r"restart_priority.*high, medium, low or disabled", what="priority urgent")
    ha.refused(1, ["vm", "set", "pr-med1", "--start-after", "no-such-vm"],
               r"start_after.*no VM 'no-such-vm'", what="start after an unknown VM")
    check(ha.config() == before, "a refused change changed the configuration")


def simulate(ha):
    out = ha.ok(1, "simulate", "--node-down", "n2").stdout
    rows = [l.split() for l in out.splitlines() if l.startswith("pr-")]
    order = [r[0] for r in rows]
    say("herd simulate --node-down n2:\n    " + "\n    ".join(out.splitlines()))
    expect(order[:2] == HIGH and set(order[2:5]) == set(MEDIUM + ["pr-app"]) and order[5] == "pr-low",
           f"herd simulate lists {order}, not the high ones, then the medium ones, then the low one")
    expect(all(r[1] == ("high" if r[0] in HIGH else "low" if r[0] == "pr-low" else "medium")
               for r in rows), f"herd simulate's PRIORITY column: {rows}")


def start(ha):
    for name in VMS:
        ha.ok(1, "vm", "start", name)
    ha.wait_vms(lambda v: running_on(v, VMS, ["n2"]), 180, "the six guests running on n2")


def failover(tn, ha):
    watch = {i: StartedEvents(tn, i) for i in (1, 3)}
    try:
        time.sleep(1)  # virsh subscribed
        t0 = time.time()
        tn.cli("kill", "2")
        say("n2 lost power")
        ha.wait_vms(lambda v: running_on(v, VMS, ["n1", "n3"]), 180,
                    "the six guests running on n1 and n3", nodes=(1, 3))
        wait_until(lambda: all(any(n in w.at for w in watch.values()) for n in VMS), 30,
                   "libvirt's Started events of the six")
    finally:
        for w in watch.values():
            w.stop()
    started = {}
    for w in watch.values():
        for n, t in w.at.items():
            if t >= t0:
                started[n] = min(t, started.get(n, t))
    asked = {}
    for i in (1, 3):
        for t, line in herdd_log(tn, i, since=t0, pattern=r"ha: starting VM pr-"):
            name = line.rsplit(" ", 1)[1]
            asked.setdefault(name, t)
    say("after the power cut (s): " + ", ".join(
        f"{n} asked {asked.get(n, float('nan')) - t0:.3f} running {started.get(n, float('nan')) - t0:.3f}"
        for n in VMS))
    check(set(started) >= set(VMS) and set(asked) >= set(VMS),
          f"Started events {sorted(started)}, start requests {sorted(asked)}")
    # The order of libvirt's Started events (each a guest's whole start
    # apart, not milliseconds), and of herd's start requests.
    def before(first, then, what):
        for a in first:
            for b in then:
                expect(started[a] < started[b] and asked[a] < asked[b],
                       f"{a} ({what}) was not asked to start and running before {b}")
    before(HIGH, MEDIUM + ["pr-low", "pr-app"], "high")
    before(MEDIUM, ["pr-low"], "medium")
    before(["pr-low"], ["pr-app"], "pr-app starts after it")


def main():
    with HaNodes(INSTANCE, 3) as tn, Workdir("test-restart-priority") as tmp:
        ha = Ha(tn, tmp)
        ha.add_pdu()
        # n2 stays off once fenced: its guests do not fail back meanwhile.
        ha.set(1, "vcpu_overcommit=8", "fence_action=off")
        define(ha)
        start(ha)
        simulate(ha)
        failover(tn, ha)
        say("VMs: " + table(ha.vms_any((1, 3))))
        check_expected()


if __name__ == "__main__":
    sys.exit(run_test(main, root=True))

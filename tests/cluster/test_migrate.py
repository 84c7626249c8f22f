#!/usr/bin/python3
"""Live migration through herd on real test nodes (issue 9).

Three nodes, the test PDU as fence device (fence_action=off: a fenced node
stays off until the test powers it on), counter guests on the directory
every node sees; every node's QEMUs and libvirt are polled all along (a VM
running on two nodes at once fails the test; a live migration's arriving
copy is paused and does not count).

 A. `herd vm migrate g1 n3 --wait`, issued on n1, moves g1 from n2 to n3:
    its counter goes on with no boot line; the VM is assigned to n3.
 B. The first ports of the migration range held open on the destination:
    the migration still succeeds (the destination's libvirt takes the next
    free port).
 C. A guest dirtying memory faster than migration_bandwidth_mibs=1 lets a
    migration converge: `herd vm info` shows its progress while it runs; it
    is cancelled at the computed timeout (migration_timeout_min_s=10 plus
    0 s per GiB) and the VM runs on at its source, its counter uninterrupted;
    the answer names the reason.
 D. The source's power cut during a migration that cannot end (a fresh
    dirtying guest): the source is fenced, the arriving copy on the
    destination is powered off, and the VM runs exactly once (started
    cleanly, one new boot line).
 E. The destination's power cut during such a migration: the migration
    fails, the VM runs on at its source (no new boot line); the destination
    is fenced.
 F. `herd node standby n2 --wait` with 5 running VMs: all move live (no
    counter restarts), the command returns once n2 is empty; `herd node
    online n2`: they fail back to n2, live.

Prints how long each migration took (no timing assertions).
"""
import json
import os
import re
import sys
import threading
import time

_here = os.path.dirname(os.path.realpath(__file__))
sys.path[:0] = [_here, os.path.dirname(_here)]  # harness.py here, testlib.py in tests/
from testlib import check, check_expected, expect, guest_image, run_test, say, wait_until  # noqa: E402
from halib import DoubleRunWatch, Ha, HaNodes, Workdir, table  # noqa: E402
from test_migrate_transport import HeldPorts, listening_ports  # noqa: E402

INSTANCE = "test-migrate"
HELD_PORTS = range(49152, 49156)
FIVE = [f"s{k}" for k in range(1, 6)]


def vm(ha, name, i=1):
    return ha.json(i, "vm", "info", name)


def on(ha, name, node, i=1):
    """Does name run on node, assigned there, with no move pending?"""
    v = vm(ha, name, i)
    return v["state"] == "running" and v["node"] == node and v["assigned"] == node and "move_to" not in v


def migrate_wait(ha, i, name, to):
    """herd vm migrate NAME TO --wait on node i; returns (CompletedProcess, seconds)."""
    t0 = time.monotonic()
    p = ha.run(i, "vm", "migrate", name, to, "--wait", timeout=300)
    return p, time.monotonic() - t0


def counts_on(ha, names, boots):
    """Each guest counts, and booted no more than @boots says."""
    ha.wait_counting(names)
    for name in names:
        expect(ha.boots(name) == boots[name],
               f"{name} booted {ha.boots(name)} times, {boots[name]} expected")


def watch_progress(ha, name, i, stop, seen):
    """Poll `herd vm info NAME` on node i until stop is set; keep every
    'migration' object seen."""
    while not stop.is_set():
        p = ha.run(i, "--json", "vm", "info", name, timeout=30)
        if p.returncode == 0:
            m = json.loads(p.stdout).get("migration")
            if m:
                seen.append(m)
        stop.wait(0.3)


# ---------------------------------------------------------------- A, B

def migrate_basic(tn, ha):
    say("== A. herd vm migrate g1 n3 --wait, issued on n1")
    boots = {"g1": ha.boots("g1")}
    p, took = migrate_wait(ha, 1, "g1", "n3")
    check(p.returncode == 0, f"herd vm migrate g1 n3 --wait failed: {(p.stderr or p.stdout).strip()}")
    expect(re.search(r"VM g1 runs on node n3 now \(migrated live in [0-9.]+ s\)", p.stdout),
           f"vm migrate --wait said: {p.stdout!r}")
    check(on(ha, "g1", "n3", 2), f"after the migration: {vm(ha, 'g1', 2)}")
    counts_on(ha, ["g1"], boots)
    say(f"g1 n2 -> n3 in {took:.2f} s (herd vm migrate --wait); its counter goes on, no boot")

    say("== B. the first migration ports held on n2: migrate g1 back to n2")
    holder = HeldPorts(tn, 2, HELD_PORTS)
    try:
        check(set(HELD_PORTS) <= listening_ports(tn, 2), f"n2 does not hold {list(HELD_PORTS)}")
        p, took = migrate_wait(ha, 3, "g1", "n2")
    finally:
        holder.close()
    check(p.returncode == 0, f"with ports held, herd vm migrate g1 n2 failed: {(p.stderr or p.stdout).strip()}")
    check(on(ha, "g1", "n2"), f"after the migration: {vm(ha, 'g1')}")
    counts_on(ha, ["g1"], boots)
    say(f"with {HELD_PORTS.start}-{HELD_PORTS.stop - 1} held on n2, g1 n3 -> n2 in {took:.2f} s")


# ---------------------------------------------------------------- C

def migrate_timeout(tn, ha):
    say("== C. a guest that dirties memory faster than 1 MiB/s: cancelled at the timeout")
    ha.set(1, "migration_bandwidth_mibs=1", "migration_timeout_min_s=10", "migration_timeout_per_gib_s=0")
    boots = {"d1": ha.boots("d1")}
    stop, seen = threading.Event(), []
    t = threading.Thread(target=watch_progress, args=(ha, "d1", 3, stop, seen), daemon=True)
    t.start()
    try:
        p, took = migrate_wait(ha, 1, "d1", "n3")
    finally:
        stop.set()
        t.join()
    check(p.returncode != 0, f"the migration of d1 did not fail: {p.stdout!r}")
    err = (p.stderr or p.stdout).strip()
    expect(re.search(r"VM d1 was not migrated to node n3: migrate failed: .*10 s.*; it runs on node n2", err),
           f"the failed migration said: {err!r}")
    lines = [l for l in p.stdout.splitlines() if l.startswith("  n2 -> n3")]
    expect(lines, f"--wait showed no progress: {p.stdout!r}")
    check(on(ha, "d1", "n2"), f"after the cancelled migration: {vm(ha, 'd1')}")
    expect(not vm(ha, "d1").get("migration"), "a migration is still shown after it was cancelled")
    counts_on(ha, ["d1"], boots)
    expect(seen and max(m["memory_total"] for m in seen) > 0 and max(m["memory_processed"] for m in seen) > 0
           and max(m["bandwidth"] for m in seen) > 0 and max(m["iteration"] for m in seen) >= 1,
           f"herd vm info showed no progress figures while it ran: {seen[-1:] or 'nothing'}")
    last = seen[-1] if seen else {}
    say(f"cancelled after {took:.1f} s (timeout 10 s); d1 runs on n2, counter uninterrupted; "
        f"herd vm info showed {len(seen)} progress readings, the last: pass {last.get('iteration')}, "
        f"{last.get('memory_remaining', 0) / 1024:.0f} KiB left, "
        f"{last.get('bandwidth', 0) / 1048576:.2f} MiB/s, dirty {last.get('dirty_rate')} pages/s; "
        f"--wait's last line: {lines[-1].strip() if lines else '-'}")


# ---------------------------------------------------------------- D, E

def slow_guest(ha, name, node):
    """A fresh dirtying guest on node (a guest whose migration was cancelled
    may converge at its next one, at the same cap: QEMU/TCG), and a
    migration of it that cannot end (timeout raised, C's cap kept)."""
    ha.define(name, preferred=node, image=guest_image(dirty=True), extra=["--no-failback"])
    ha.ok(1, "vm", "start", name)
    ha.wait_counting([name])
    check(vm(ha, name)["node"] == node, f"{name} does not run on {node}: {vm(ha, name)}")
    ha.set(1, "migration_timeout_min_s=600")


def start_slow_migration(ha, name, dst):
    ha.ok(1, "vm", "migrate", name, dst)
    wait_until(lambda: vm(ha, name).get("migration"), 30, f"{name}'s migration to {dst} to show progress")


def power_cut_source(tn, ha):
    say("== D. power cut of the source (n2) during a migration to n3")
    slow_guest(ha, "d2", "n2")
    boots = {"d2": ha.boots("d2")}
    start_slow_migration(ha, "d2", "n3")
    t0 = time.monotonic()
    tn.cli("kill", "2")
    vms = ha.wait_vms(lambda v: v["d2"]["state"] == "running" and v["d2"]["node"] in ("n1", "n3")
                      and v["d2"]["assigned"] == v["d2"]["node"], 90, "d2 to run again", nodes=(1, 3))
    took = time.monotonic() - t0
    expect(ha.nodes(1)["n2"]["down"] is not None, "n2 is not marked down (fenced)")
    ha.wait_counting(["d2"], boots_after=boots)
    expect(ha.boots("d2") == boots["d2"] + 1, f"d2 booted {ha.boots('d2') - boots['d2']} times, once expected")
    say(f"n2 cut mid-migration: fenced, d2 started cleanly on {vms['d2']['node']} after {took:.1f} s")
    tn.cli("start", "2")
    tn.wait_members([1, 2, 3], 3, timeout=60)
    wait_until(lambda: ha.nodes(1)["n2"]["down"] is None, 60, "n2's down mark to be cleared")


def power_cut_target(tn, ha):
    say("== E. power cut of the destination (n3) during a migration from n1")
    slow_guest(ha, "d3", "n1")
    boots = {"d3": ha.boots("d3")}
    start_slow_migration(ha, "d3", "n3")
    t0 = time.monotonic()
    tn.cli("kill", "3")
    ha.wait_vms(lambda v: "move_to" not in v["d3"], 120, "the move of d3 to be given up", nodes=(1,))
    took = time.monotonic() - t0
    check(on(ha, "d3", "n1"), f"after the destination died: {vm(ha, 'd3')}")
    counts_on(ha, ["d3"], boots)
    err = vm(ha, "d3").get("error")
    say(f"n3 cut mid-migration: after {took:.1f} s the move was given up; d3 runs on at n1, counter "
        f"uninterrupted ({err})")
    wait_until(lambda: ha.nodes(1)["n3"]["down"] is not None, 60, "n3 to be fenced")
    tn.cli("start", "3")
    tn.wait_members([1, 2, 3], 3, timeout=60)
    wait_until(lambda: ha.nodes(1)["n3"]["down"] is None, 60, "n3's down mark to be cleared")
    ha.set(1, "migration_bandwidth_mibs=0", "migration_timeout_min_s=60", "migration_timeout_per_gib_s=30")


# ---------------------------------------------------------------- F

def standby_live(tn, ha):
    say("== F. herd node standby n2 --wait with 5 running VMs, then online: all live")
    for name in FIVE:
        ha.define(name, preferred="n2")
        ha.ok(1, "vm", "start", name)
    ha.wait_vms(lambda v: all(v[n]["state"] == "running" and v[n]["node"] == "n2" for n in FIVE), 60,
                "s1-s5 to run on n2")
    ha.wait_counting(FIVE)
    boots = {n: ha.boots(n) for n in FIVE}
    t0 = time.monotonic()
    p = ha.run(1, "node", "standby", "n2", "--wait", timeout=600)
    took = time.monotonic() - t0
    check(p.returncode == 0, f"herd node standby n2 --wait failed: {(p.stderr or p.stdout).strip()}")
    expect("No VM is left on node n2" in p.stdout, f"standby --wait said: {p.stdout!r}")
    vms = ha.vms()
    expect(all(vms[n]["node"] in ("n1", "n3") and vms[n]["state"] == "running" for n in FIVE + ["g1"]),
           f"after standby: {table(vms)}")
    counts_on(ha, FIVE, boots)
    say(f"standby n2 --wait returned after {took:.1f} s; s1-s5 and g1 migrated live, no boot; "
        f"it printed {len(p.stdout.splitlines())} lines")
    t0 = time.monotonic()
    ha.ok(1, "node", "online", "n2")
    ha.wait_vms(lambda v: all(v[n]["state"] == "running" and v[n]["node"] == "n2" and "move_to" not in v[n]
                              for n in FIVE), 180, "s1-s5 to fail back to n2")
    counts_on(ha, FIVE, boots)
    say(f"online n2: s1-s5 failed back live in {time.monotonic() - t0:.1f} s, no boot")


def main():
    with HaNodes(INSTANCE, 3) as tn, Workdir(INSTANCE) as tmp:
        ha = Ha(tn, tmp)
        ha.add_pdu()
        ha.set(1, "fence_action=off", "failback_after_s=2")
        # No failback for g1: A moves it away from n2 and B back, by hand (a
        # failback started meanwhile, on a slow machine, took B's move).
        ha.define("g1", preferred="n2", extra=["--no-failback"])
        # No failback for d1: a live move of it cannot end while migrations
        # are capped to 1 MiB/s (C-E).
        ha.define("d1", preferred="n2", image=guest_image(dirty=True), extra=["--no-failback"])
        ha.ok(1, "vm", "start", "g1")
        ha.ok(1, "vm", "start", "d1")
        ha.wait_counting(["g1", "d1"])
        with DoubleRunWatch(tn) as watch:
            migrate_basic(tn, ha)
            watch.check("A-B")
            migrate_timeout(tn, ha)
            watch.check("C")
            power_cut_source(tn, ha)
            watch.check("D")
            power_cut_target(tn, ha)
            watch.check("E")
            standby_live(tn, ha)
            watch.finish()
        check_expected()
    return 0


if __name__ == "__main__":
    sys.exit(run_test(main, root=True))

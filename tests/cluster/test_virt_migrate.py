#!/usr/bin/python3
"""Live migration through herd's libvirt VM driver, between real test nodes.

Three test nodes formed into a cluster (their libvirtds talk TLS with the
cluster CA's certificates, see test_migrate_transport.py).  virt-probe runs
the driver (src/virt/) in n2 and in n3 and is driven line by line from here:
`migrate` on the source's, while the other reports what its driver sees of
the arriving guest.  It checks:

- (a) the counter guest migrates n2 -> n3 (memory over TLS) through the
  driver: n2's fact goes MIGRATING, then STOPPED "migrated away"; n3's
  INCOMING, then RUNNING "migrated in"; it runs on n3 only, and its serial
  counter goes on with no number missing or repeated and no new boot.  The
  same guest back and forth with plain `virsh migrate`: what the drivers
  report of a migration that is not herd's; then back through n3's driver.
  Times of the driver's and virsh's migrations are printed side by side.
- (b) a guest that dirties 8 MiB of RAM at every timer tick
  (herd-guest-dirty), migrated at 4 MiB/s: progress lines with every
  figure (memory, dirty rate, bandwidth, iteration, expected downtime,
  auto-converge's throttle) while it does not converge; once the limit is
  raised (virsh migrate-setspeed) it completes.
- (c) another such guest, with a timeout of 15 s: cancelled at the
  timeout, with an error that says so; it runs on at n2 (RUNNING, counter
  uninterrupted), nothing of it is left on n3.
- (d) n3 powered off while a migration into it runs: the migration fails
  at once, the guest runs on at n2.
- (e) n2 powered off while a migration from it runs: what becomes of the
  paused arriving copy on n3 (its facts, virsh domstate and domjobinfo,
  until libvirtd there destroys it), once as `testnodes kill` does it (the
  dead node's sockets send FIN/RST) and once with n2's link cut first (a
  real power cut: silence).  The figures are printed; checked is only that
  the copy never runs and is gone in the end, and that a driver that
  connects to n3 meanwhile finds it INCOMING.
"""
import os
import sys
import time

_here = os.path.dirname(os.path.realpath(__file__))
sys.path[:0] = [_here, os.path.dirname(_here)]  # harness.py here, testlib.py in tests/
from halib import Workdir  # noqa: E402
from harness import TestNodes  # noqa: E402
from probelib import Probe  # noqa: E402
from testlib import (SerialLog, build_dir, check, check_expected, expect, guest_image,  # noqa: E402
                     guest_xml, run_test, say, wait_until)

INSTANCE = "test-virt-mig"
ADDRESS = {2: "10.99.0.2", 3: "10.99.0.3"}
SLOW_MIB_S = 4            # below the dirty guest's 8 MiB a tick: never converges
CANCEL_TIMEOUT_S = 15
LONG_TIMEOUT_S = 300      # migrations that must not be cancelled by their timeout
SOURCE_DEATH_WAIT_S = 120  # how long (e) watches the arriving copy at most


def dirty_image():
    return guest_image(dirty=True)


class Guest:
    def __init__(self, tmp, name, image):
        self.name = name
        self.log = os.path.join(tmp, f"{name}.serial.log")
        self.xml = os.path.join(tmp, f"{name}.xml")
        xml = guest_xml(name, self.xml, serial_log=self.log, image=image, memory_mib=32)
        self.uuid = xml.split("<uuid>")[1].split("</uuid>")[0]
        self.serial = SerialLog(self.log)

    def fresh_log(self):
        """Empty its serial log before a new boot (QEMU appends to it)."""
        open(self.log, "w").close()

    def counting(self, what):
        """One boot line, then 1, 2, 3… with none missing or repeated (two
        copies running at once would both write to the one log); the last."""
        v = self.serial.values()
        n = len(v) - 1
        check(v[:1] == ["boot"] and v[1:] == list(range(1, n + 1)),
              f"{what}: {self.name}'s serial log is not one boot and 1..{n}: {v}")
        return v[-1] if n else 0

    def wait_counter(self, above, what, timeout=30):
        wait_until(lambda: (self.serial.counter() or 0) > above, timeout,
                   f"{what}: {self.name}'s counter to pass {above}", interval=0.1)


def domstate(tn, i, guest):
    """virsh domstate --reason of the guest on node i, or None if it has none."""
    p = tn.exec(i, "virsh", "-q", "-c", "qemu:///system", "domstate", "--reason", guest.name)
    return p.stdout.strip() if p.returncode == 0 else None


def domjobinfo(tn, i, guest):
    p = tn.exec(i, "virsh", "-q", "-c", "qemu:///system", "domjobinfo", guest.name)
    out = (p.stdout.strip() or p.stderr.strip()).splitlines()
    return out[0].strip() if out else ""


def mib(b):
    return f"{b / 1048576:.1f} MiB"


class Run:
    """The probes on n2 and n3 and what the test found."""

    def __init__(self, tn, tmp):
        self.tn, self.tmp = tn, tmp
        logdir = os.path.join(build_dir(), "meson-logs")
        self.probe_log = os.path.join(logdir if os.path.isdir(logdir) else tmp,
                                      "virt-migrate-probe.log")
        self.probes = {}
        self.times = {"driver": [], "virsh": []}
        self.figures = {}

    def probe(self, i):
        p = self.probes.get(i)
        if p is None:
            p = self.probes[i] = Probe(self.tn, i, self.probe_log)
            p.wait_for(lambda: "back" in p.conn, 20, f"n{i}'s probe to connect to libvirtd")
        return p

    def drop_probe(self, i):
        """The probe of a node that lost power (its process died with it)."""
        p = self.probes.pop(i, None)
        if p:
            p.close()

    def close(self):
        for i in list(self.probes):
            self.drop_probe(i)

    def marks(self):
        return {i: len(p.history) for i, p in self.probes.items()}

    def drain(self):
        for p in self.probes.values():
            p.drain(0.3)

    def start(self, guest, i):
        self.probe(i).run("start", guest.uuid, guest.xml)
        guest.wait_counter(2, f"{guest.name} started on n{i}")

    def migrate(self, guest, src, dst, timeout_s, tls=True, mib_s=None):
        """Send migrate to n@src's probe; returns its operation id."""
        words = ["migrate", guest.uuid, f"n{dst}", ADDRESS[dst], timeout_s,
                 "tls" if tls else "plain"]
        if mib_s:
            words.append(mib_s)
        return self.probe(src).op(*words)


# ---------------------------------------------------------------- (a)

def driver_migration(run, g, src, dst):
    """The counter guest from n@src to n@dst through n@src's driver."""
    ps, pd = run.probe(src), run.probe(dst)
    last = g.counting(f"before the driver's migration n{src} -> n{dst}")
    mark = run.marks()
    oid = run.migrate(g, src, dst, LONG_TIMEOUT_S)
    ok, f = ps.done(oid, LONG_TIMEOUT_S + 90)
    check(ok, f"the driver's migration n{src} -> n{dst} failed: {f.get('code')}: {f.get('msg')}")
    run.times["driver"].append(float(f["elapsed_ms"]) / 1000)
    pd.wait_state(g.uuid, "running", since=mark[dst])
    run.drain()
    out, into = ps.facts_of(g.uuid, mark[src]), pd.facts_of(g.uuid, mark[dst])
    expect(out == [("migrating", f"migrating to node n{dst}"), ("stopped", "migrated away")],
           f"n{src}'s facts of the guest it migrated away: {out}")
    expect(into == [("incoming", "migration arriving"), ("running", "migrated in")],
           f"n{dst}'s facts of the arriving guest: {into}")
    check(domstate(run.tn, dst, g) == "running (migrated)",
          f"after the migration the guest is {domstate(run.tn, dst, g)!r} on n{dst}")
    check(domstate(run.tn, src, g) is None,
          f"after the migration the guest is still {domstate(run.tn, src, g)!r} on n{src}")
    g.wait_counter(last + 2, "after the driver's migration")
    now = g.counting("after the driver's migration")
    say(f"(a) driver n{src} -> n{dst} with TLS at counter ~{last}: done after "
        f"{run.times['driver'][-1]:.2f} s; n{src} {out}; n{dst} {into}; counter now {now}, "
        "none missing")


def virsh_migration(run, g, src, dst):
    """The counter guest from n@src to n@dst with plain virsh: the drivers
    see a migration that is not herd's."""
    ps, pd = run.probe(src), run.probe(dst)
    last = g.counting(f"before virsh's migration n{src} -> n{dst}")
    mark = run.marks()
    t0 = time.monotonic()
    p = run.tn.exec(src, "virsh", "-q", "migrate", "--live", "--p2p", "--tls", g.name,
                    f"qemu+tls://n{dst}/system", timeout=LONG_TIMEOUT_S)
    run.times["virsh"].append(time.monotonic() - t0)
    check(p.returncode == 0, f"virsh migrate n{src} -> n{dst}: {(p.stderr or p.stdout).strip()}")
    pd.wait_state(g.uuid, "running", since=mark[dst])
    ps.wait_state(g.uuid, "stopped", since=mark[src])
    run.drain()
    out, into = ps.facts_of(g.uuid, mark[src]), pd.facts_of(g.uuid, mark[dst])
    expect(out == [("migrating", "paused for migration"), ("stopped", "migrated away")],
           f"n{src}'s facts of the guest virsh migrated away: {out}")
    expect(into == [("incoming", "migration arriving"), ("running", "migrated in")],
           f"n{dst}'s facts of the guest virsh migrated in: {into}")
    g.wait_counter(last + 2, "after virsh's migration")
    now = g.counting("after virsh's migration")
    say(f"(a) virsh n{src} -> n{dst} with TLS: {run.times['virsh'][-1]:.2f} s; n{src} {out}; "
        f"n{dst} {into}; counter now {now}, none missing")


def migrate_counter_guest(run, g):
    """(a): through the driver and with virsh, each way once."""
    driver_migration(run, g, 2, 3)
    virsh_migration(run, g, 3, 2)
    virsh_migration(run, g, 2, 3)
    driver_migration(run, g, 3, 2)
    check_expected()


# ---------------------------------------------------------------- (c), (b)

def check_figures(figs, what):
    """Every figure of the progress lines is there, and moves as it should."""
    check(len(figs) >= 3, f"{what}: only {len(figs)} progress line(s)")
    full = [f for f in figs if f["total"] > 0]
    check(full, f"{what}: no progress line with libvirt's figures: {figs}")
    check(all(f["total"] == full[0]["total"] for f in full), f"{what}: the total changed")
    check(full[0]["total"] >= 32 << 20, f"{what}: total {full[0]['total']} < the guest's 32 MiB")
    processed = [f["processed"] for f in full]
    check(processed == sorted(processed), f"{what}: processed went back: {processed}")
    check(all(f["page_size"] == 4096 for f in full), f"{what}: page size not 4096")
    # The first figures may come before QEMU has measured a bandwidth.
    check(all(f["bps"] > 0 for f in full[1:]), f"{what}: a line without a bandwidth: {full}")
    check(all(f["started"] > 0 for f in figs), f"{what}: no start time")
    elapsed = [f["elapsed_ms"] for f in figs]
    check(elapsed == sorted(elapsed), f"{what}: elapsed went back: {elapsed}")


def describe(f):
    return (f"{f['elapsed_ms'] / 1000:.1f} s: {mib(f['processed'])} sent, "
            f"{mib(f['remaining'])} to go in pass {f['iteration']}, "
            f"dirty {f['dirty_rate']} pages/s ({mib(f['dirty_rate'] * f['page_size'])}/s), "
            f"{mib(f['bps'])}/s, expected downtime {f['downtime_ms']} ms, "
            f"throttle {f['throttle']} %")


def cancelled_at_timeout(run, g):
    """(c): it cannot converge; cancelled after CANCEL_TIMEOUT_S, runs on."""
    p2, p3 = run.probe(2), run.probe(3)
    last = g.counting("before the migration that cannot converge")
    mark = run.marks()
    oid = run.migrate(g, 2, 3, CANCEL_TIMEOUT_S, mib_s=SLOW_MIB_S)
    ok, f = p2.done(oid, CANCEL_TIMEOUT_S + 90)
    check(not ok, "a migration limited below the guest's dirty rate succeeded")
    check(f["code"] == "timeout", f"cancelled with code {f['code']}: {f.get('msg')}")
    msg = f.get("msg", "")
    check(f"within its timeout of {CANCEL_TIMEOUT_S} s and was cancelled" in msg and
          "runs on here" in msg, f"the error does not say it was cancelled at the timeout: {msg}")
    check(float(f["elapsed_ms"]) >= CANCEL_TIMEOUT_S * 1000,
          f"cancelled after {f['elapsed_ms']} ms, before its timeout of {CANCEL_TIMEOUT_S} s")
    figs = p2.progress(oid)
    check_figures(figs, "(c)")
    p3.wait_state(g.uuid, "stopped", since=mark[3])
    run.drain()
    src, dst = p2.facts_of(g.uuid, mark[2]), p3.facts_of(g.uuid, mark[3])
    expect(src == [("migrating", "migrating to node n3"),
                   ("running", "migration cancelled at its timeout")],
           f"n2's facts of the cancelled migration: {src}")
    expect(dst[:1] == [("incoming", "migration arriving")] and dst[-1][0] == "stopped",
           f"n3's facts of the cancelled migration: {dst}")
    check(domstate(run.tn, 2, g) in ("running (booted)", "running (migration canceled)"),
          f"after the cancelled migration the guest is {domstate(run.tn, 2, g)!r} on n2")
    wait_until(lambda: domstate(run.tn, 3, g) is None, 30,
               f"n3 to drop the copy of {g.name} (it is {domstate(run.tn, 3, g)!r})")
    g.wait_counter(max(last, g.serial.counter() or 0) + 2, "after the cancelled migration")
    now = g.counting("after the cancelled migration")
    say(f"(c) {g.name} (dirties 8 MiB a tick) at {SLOW_MIB_S} MiB/s, timeout "
        f"{CANCEL_TIMEOUT_S} s: {msg}")
    say(f"(c) done after {float(f['elapsed_ms']) / 1000:.2f} s; n2 {src}; n3 {dst}; "
        f"counter {last} -> {now}, none missing; last progress: {describe(figs[-1])}")
    check_expected()


def completes_once_faster(run, g):
    """(b): progress while it cannot converge, then the limit is raised."""
    p2, p3 = run.probe(2), run.probe(3)
    last = g.counting("before the slow migration")
    mark = run.marks()
    oid = run.migrate(g, 2, 3, LONG_TIMEOUT_S, mib_s=SLOW_MIB_S)

    def throttled():
        figs = p2.progress(oid)
        return figs and figs[-1]["throttle"] > 0 and figs[-1]["dirty_rate"] > 0 and \
            figs[-1]["iteration"] >= 2
    p2.wait_for(throttled, 120, "auto-converge to throttle the guest that does not converge")
    figs = p2.progress(oid)
    check(not p2.find("done", oid), "the slow migration ended before its limit was raised")
    check(p2.state(g.uuid) == "migrating", f"n2's fact during the migration: {p2.state(g.uuid)}")
    p = run.tn.exec(2, "virsh", "-q", "migrate-setspeed", g.name, "--bandwidth", "8192")
    check(p.returncode == 0, f"virsh migrate-setspeed: {(p.stderr or p.stdout).strip()}")
    ok, f = p2.done(oid, LONG_TIMEOUT_S + 90)
    check(ok, f"the migration failed once its limit was raised: {f.get('code')}: {f.get('msg')}")
    check_figures(figs, "(b)")
    p3.wait_state(g.uuid, "running", since=mark[3])
    run.drain()
    src, dst = p2.facts_of(g.uuid, mark[2]), p3.facts_of(g.uuid, mark[3])
    expect(src == [("migrating", "migrating to node n3"), ("stopped", "migrated away")],
           f"n2's facts of the slow migration: {src}")
    expect(dst == [("incoming", "migration arriving"), ("running", "migrated in")],
           f"n3's facts of the slow migration: {dst}")
    check(domstate(run.tn, 3, g) == "running (migrated)" and domstate(run.tn, 2, g) is None,
          f"after the migration: n2 {domstate(run.tn, 2, g)!r}, n3 {domstate(run.tn, 3, g)!r}")
    g.wait_counter(max(last, g.serial.counter() or 0) + 2, "after the slow migration")
    now = g.counting("after the slow migration")
    say(f"(b) {g.name} at {SLOW_MIB_S} MiB/s: {len(figs)} progress lines before the limit "
        f"was raised, e.g.")
    for fig in figs[-3:]:
        say(f"      {describe(fig)}")
    say(f"(b) limit raised to 8192 MiB/s: done after {float(f['elapsed_ms']) / 1000:.2f} s; "
        f"n2 {src}; n3 {dst}; counter {last} -> {now}, none missing")
    run.figures["throttle %"] = figs[-1]["throttle"]
    check_expected()


# ---------------------------------------------------------------- (d), (e)

def stream_flows(run, oid):
    """Wait until the memory flows from n2 to n3 (libvirt counts some sent)."""
    p2 = run.probe(2)
    p2.wait_for(lambda: any(f["processed"] > 0 for f in p2.progress(oid)), 60,
                "the migration's memory to flow")


def destination_dies(run, g):
    """(d): n3 loses power while the guest migrates into it."""
    p2, p3 = run.probe(2), run.probe(3)
    last = g.counting("before the migration to a node that dies")
    mark = run.marks()
    oid = run.migrate(g, 2, 3, LONG_TIMEOUT_S, mib_s=SLOW_MIB_S)
    p3.wait_state(g.uuid, "incoming", since=mark[3], timeout=60)
    stream_flows(run, oid)
    t_kill = time.monotonic()
    run.tn.cli("kill", "3")
    run.drop_probe(3)
    ok, f = p2.done(oid, 90)
    took = time.monotonic() - t_kill
    check(not ok, "the migration to a node that lost power succeeded")
    check(f["code"] != "timeout", f"it failed only at its timeout: {f.get('msg')}")
    run.drain()
    src = p2.facts_of(g.uuid, mark[2])
    expect(src == [("migrating", "migrating to node n3"), ("running", "migration failed")],
           f"n2's facts of the failed migration: {src}")
    check(domstate(run.tn, 2, g) is not None and domstate(run.tn, 2, g).startswith("running"),
          f"after the failed migration the guest is {domstate(run.tn, 2, g)!r} on n2")
    g.wait_counter(max(last, g.serial.counter() or 0) + 2, "after the failed migration")
    now = g.counting("after the failed migration")
    say(f"(d) n3 killed mid-migration: done {took:.2f} s later: {f['code']}: {f.get('msg')}; "
        f"n2 {src}; counter {last} -> {now}, none missing")
    check_expected()


def source_dies(run, g, cut_first):
    """(e): n2 loses power while the guest migrates from it to n3; watch n3."""
    p3 = run.probe(3)
    mark = run.marks()
    oid = run.migrate(g, 2, 3, LONG_TIMEOUT_S, mib_s=SLOW_MIB_S)
    p3.wait_state(g.uuid, "incoming", since=mark[3], timeout=60)
    stream_flows(run, oid)
    how = "link cut, then power off" if cut_first else "testnodes kill"
    if cut_first:
        run.tn.cli("cut", "2")
    t_kill = time.monotonic()
    run.tn.power_off(2)
    run.drop_probe(2)
    fresh = None
    if cut_first:
        # A driver that connects now (herdd restarting on n3) finds the
        # arriving copy in libvirt's list: INCOMING too, not a copy that runs.
        fresh = Probe(run.tn, 3, run.probe_log)
        fresh.wait_for(lambda: "back" in fresh.conn, 20, "a new probe on n3 to connect")
        fresh.drain(0.3)
        fresh_facts = fresh.facts_of(g.uuid)
        fresh_s = time.monotonic() - t_kill
        fresh.close()
        expect(fresh_facts[:1] == [("incoming", "migration arriving")],
               f"a driver connecting to n3 while the copy waits reports {fresh_facts}")
    seen = []     # (seconds after the power cut, domstate, domjobinfo) when they change
    while time.monotonic() - t_kill < SOURCE_DEATH_WAIT_S:
        state, job = domstate(run.tn, 3, g), domjobinfo(run.tn, 3, g)
        if not seen or seen[-1][1:] != (state, job):
            seen.append((time.monotonic() - t_kill, state, job))
        p3.drain(0.5)
        if state is None:
            break
    gone_s = seen[-1][0]
    run.drain()
    facts = p3.facts_of(g.uuid, mark[3])
    check(seen[-1][1] is None,
          f"(e, {how}) n3 still holds the arriving copy {SOURCE_DEATH_WAIT_S} s after "
          f"n2 lost power: {seen[-1]}")
    expect(("running", "migrated in") not in facts and facts[-1][0] == "stopped",
           f"(e, {how}) n3's facts of the copy whose source died: {facts}")
    log = os.path.join(run.tn.tn.log_dir(3), "libvirt", "libvirtd.log")
    with open(log, errors="replace") as f:
        keepalive = sum("keepalive timeout" in line for line in f)
    if cut_first:
        run.tn.cli("heal", "2")
    say(f"(e) source n2 lost power ({how}) mid-migration; on n3:")
    for t, state, job in seen:
        say(f"      +{t:5.1f} s: domstate {state!r}, domjobinfo {job!r}")
    say(f"(e) gone {gone_s:.1f} s after the power cut; n3's facts {facts}; "
        f"'keepalive timeout' lines in n3's libvirtd.log so far: {keepalive}")
    if fresh:
        say(f"(e) a driver connected to n3 {fresh_s:.1f} s after the power cut reported "
            f"{fresh_facts}")
    run.figures[f"source death, {how}: gone after s"] = gone_s
    check_expected()


def wait_libvirt_tls(tn, i):
    """Until node i's libvirtd answers over TLS (after a power on)."""
    other = 2 if i != 2 else 3
    wait_until(lambda: tn.exec(other, "virsh", "-c", f"qemu+tls://n{i}/system",
                               "hostname").returncode == 0, 60,
               f"n{i}'s libvirtd to answer over TLS")


def main():
    with TestNodes(INSTANCE, 3) as tn, Workdir(INSTANCE) as tmp:
        run = Run(tn, tmp)
        try:
            counter = Guest(tmp, "mig-counter", guest_image())
            # A guest whose migration was cancelled converged in its next
            # migration (QEMU 7.2, TCG; with plain virsh too): every slow
            # migration here is the first of its QEMU.
            dirty = {x: Guest(tmp, f"mig-dirty-{x}", dirty_image()) for x in "bcde"}
            run.probe(2)
            run.probe(3)
            run.start(counter, 2)
            migrate_counter_guest(run, counter)
            run.start(dirty["b"], 2)
            completes_once_faster(run, dirty["b"])
            run.start(dirty["c"], 2)
            cancelled_at_timeout(run, dirty["c"])
            run.start(dirty["d"], 2)
            destination_dies(run, dirty["d"])
            tn.cli("start", "3")
            wait_libvirt_tls(tn, 3)
            run.probe(3)
            run.start(dirty["e"], 2)
            source_dies(run, dirty["e"], cut_first=False)
            tn.cli("start", "2")
            wait_libvirt_tls(tn, 2)
            dirty["e"].fresh_log()
            run.start(dirty["e"], 2)
            source_dies(run, dirty["e"], cut_first=True)
        finally:
            run.close()
    d, v = run.times["driver"], run.times["virsh"]
    say("migration of the counter guest (32 MiB, TLS), whole call: driver "
        + ", ".join(f"{x:.2f} s" for x in d) + "; virsh migrate "
        + ", ".join(f"{x:.2f} s" for x in v))
    for k, x in run.figures.items():
        say(f"{k}: {x if isinstance(x, int) else f'{x:.1f}'}")
    return 0


if __name__ == "__main__":
    sys.exit(run_test(main, root=True))

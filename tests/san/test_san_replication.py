#!/usr/bin/python3
"""eSAN's data path on loopback: two replicas (two nbdkit processes with
nbdkit-herd-plugin.so, each on its own unix socket and TCP port, TLS with a
test CA), written through the local socket with qemu-io.

1. Connected: writes (data, zeros, flush) through either side land on both
   replicas; the local export is refused over TCP, `data` without TLS, and
   bad control requests get an error.
2. The peer's nbdkit is killed while the primary writes: writes hold, the
   plugin reports `peer-lost`, and they are answered only after `outdated`
   is sent on the control socket; then writes go on alone.
3. The peer comes back: only the dirty regions travel (bytes resynced are
   what the bitmap counted, far below the volume), the replicas are equal,
   and `verify` says so.
3b. A resync cut short: the target killed mid-way (it stays inconsistent,
   the source keeps the bits of what it had not copied), back, the resync
   goes on; then the source killed mid-way and started again: the resync
   goes on from its bitmap, and the replicas end equal; a guest write made
   during the resync, over the regions it copies, is on both.
4. A constructed split brain (each side written alone in turn) is refused on
   both sides; `discard` on one makes it a full-sync target of the other.
5. The primary's nbdkit dies with a writer open (a crash); the peer goes on
   alone; the crashed replica comes back and gets only the extent its
   activity log names and the peer's dirty regions (a write in flight,
   found only on its disk, is undone).  5b: the same with the log torn: a
   full sync, and the log says why.  5c: both die, the primary with its
   writer open, a write lost on the peer's disk: only the primary's active
   extent travels, and the replicas end equal.
6. Online grow: `resize` on both; writes at the new end reach both.
7. The local disk fails (EIO from pwrite/pread/fdatasync on the replica
   file, tests/san/io_fault.c preloaded) under a writing guest: the write is
   held, neither failed nor answered, until `detached` (herdd's word that
   the store has the replica outdated); then it is answered (it is on the
   peer), reads and writes go to the peer.  The peer lost meanwhile: I/O
   fails.  Both back, the failed replica (older by the detach's new
   generation) gets a full sync and the replicas end equal.
7b. A live migration away from the detached replica: the destination's
   guest opens the peer's replica while the source's still writes through
   it; both guests' writes and flushes are answered, the destination reads
   what the source wrote, nothing reaches the failed disk, and the peer
   never takes the detached side for lost.
7c. The local disk fails during such a migration, first met by the
   destination's flush through the peer: the failing side is detached
   all the same (the peer takes the detach's new generation with its
   writer open), the flush is answered once the store has it outdated,
   and both guests go on through the peer's replica.

Run: meson test -C build --suite san (or this file; HERD_BUILD_DIR=build).
HERD_SAN_VERBOSE=1 runs nbdkit with -v; HERD_SAN_LOGS=1 prints the end of
both nbdkit logs also on success.  With a sanitizer build's plugin:
  HERD_SAN_PLUGIN=build-asan/src/san/nbdkit-herd-plugin.so \
  HERD_SAN_PRELOAD="$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libubsan.so)" \
  ASAN_OPTIONS=detect_leaks=0 tests/san/test_san_replication.py
"""
import os
import subprocess
import sys
import tempfile
import time

_here = os.path.dirname(os.path.realpath(__file__))
sys.path[:0] = [_here, os.path.dirname(_here)]
from testlib import SKIP, check, expect, run_test, say, wait_until  # noqa: E402
from sanlib import SIZE, UUID, Replica, TestCA, first_difference, plugin_path  # noqa: E402

MiB = 1 << 20


def equal_replicas(a, b, what):
    diff = first_difference(a.content(), b.content())
    check(diff is None, f"{what}: the replicas differ ({diff})")


def wait_conn(r, conn, timeout=30, decision=None):
    def ok():
        s = r.ctl.state()
        return s if s["conn"] == conn and (decision is None or s["decision"] == decision) else None
    return wait_until(ok, timeout, f"{r.name} {conn}" + (f" ({decision})" if decision else ""),
                      interval=0.2)


def qemu_ok(p, what):
    check(p.returncode == 0, f"{what}: qemu-io failed: {p.stdout.strip()} {p.stderr.strip()}")
    check("failed" not in p.stdout, f"{what}: {p.stdout.strip()}")


def connected(a, b):
    say("1. connected: writes through either side reach both")
    wait_conn(a, "connected", decision="in-sync")
    wait_conn(b, "connected", decision="in-sync")
    qemu_ok(a.qemu_io("write -P 0x11 0 1M", "write -P 0x22 3M 4k", "write -z 512k 64k",
                      "write -P 0x33 63M 1M", "flush"), "writes through a")
    equal_replicas(a, b, "after writes through a")
    check(a.content()[:4096] == b"\x11" * 4096, "a's replica holds what was written")
    # the other way round (as after a live migration)
    qemu_ok(b.qemu_io("write -P 0x44 8M 128k", "flush"), "writes through b")
    equal_replicas(a, b, "after writes through b")

    say("   bad input: refused with a reason, nothing changed")
    r = a.ctl.request(op="launch")
    expect(r.get("ok") is False and "unknown op" in r.get("error", ""), f"unknown op: {r}")
    r = a.ctl.raw(b"not json\n")
    expect(r.get("ok") is False and "JSON" in r.get("error", ""), f"bad line: {r}")
    r = a.ctl.request(op="status", uuid="another")
    expect(r.get("ok") is False and "another volume" in r.get("error", ""), f"other uuid: {r}")
    r = a.ctl.request(op="config", timeout_ms=-5)
    expect(r.get("ok") is False, f"negative timeout: {r}")
    r = a.ctl.request(op="promote")
    expect(r.get("ok") is False and "connected" in r.get("error", ""), f"promote in sync: {r}")
    r = a.ctl.request(op="volume", local="fresh")
    expect(r.get("ok") is False and "uptodate" in r.get("error", ""), f"bad local state: {r}")
    # the local export only over the unix socket, data only over TLS
    p = subprocess.run(["qemu-io", "-f", "raw", "-c", "read 0 4k",
                        f"nbd://127.0.0.1:{a.port}/{UUID}"], capture_output=True, text=True)
    expect(p.returncode != 0, "the UUID export is refused over TCP")
    p = subprocess.run(["qemu-io", "-f", "raw", "-c", "write -P 0x66 0 4k",
                        f"nbd+unix:///data?socket={a.sock_path}"], capture_output=True, text=True)
    expect(p.returncode != 0 or "failed" in p.stdout, "the data export is refused without TLS")
    equal_replicas(a, b, "after refused requests")


def peer_lost(a, b):
    say("2. the peer dies while a writes: writes hold until `outdated`")
    # W1 writes and flushes in a loop; the peer dies under it
    cmds = []
    for i in range(48):
        cmds += [f"write -P {1 + i % 200} {i * 256 * 1024} 64k", "flush"]
    w1 = a.qemu_io(*cmds, background=True)
    time.sleep(0.1)
    b.kill()
    # W2 certainly writes after the peer died
    w2 = a.qemu_io("write -P 0x77 40M 128k", "flush", background=True)
    wait_until(lambda: a.ctl.seen("peer-lost"), 30, "a's peer-lost")
    # W2's local part is done before it is held: then it cannot be answered
    wait_until(lambda: a.content()[40 * MiB:40 * MiB + 4096] == b"\x77" * 4096, 30,
               "W2's write on a's replica")
    s = a.ctl.state()
    check(w2.poll() is None, "W2's write is held before `outdated`")
    expect(s["conn"] == "connecting", f"a waits for outdated: {s}")
    expect(s["dirty"] >= 128 * 1024, f"the held write's region is dirty: {s}")
    seq = a.ctl.seen("peer-lost")[-1]["seq"]
    # an `outdated` that answers an earlier peer-lost changes nothing
    check(a.ctl.request(op="outdated", uuid=UUID, seq=seq - 1) == {"ok": True}, "outdated answered")
    s = a.ctl.state()
    check(s["conn"] == "connecting" and w2.poll() is None, f"a stale outdated is ignored: {s}")
    say(f"   held: {s['dirty']} bytes dirty; sending outdated")
    check(a.ctl.request(op="outdated", uuid=UUID, seq=seq) == {"ok": True}, "outdated answered")
    for w, name in ((w1, "W1"), (w2, "W2")):
        out, _ = w.communicate(timeout=60)
        check(w.returncode == 0 and "failed" not in out, f"{name} goes on: {out.strip()[-300:]}")
    s = wait_conn(a, "standalone")
    qemu_ok(a.qemu_io("write -P 0x55 50M 256k", "write -z 52M 64k", "flush"), "writes alone")
    s = a.ctl.state()
    say(f"   alone: {s['dirty']} bytes dirty")
    return s["dirty"]


def peer_back(a, b, dirty):
    say("3. the peer returns: only dirty regions travel")
    n = len(a.ctl.seen("synced"))
    # the rate as herd-san passes it on (16 MiB/s: the resync takes a while)
    check(a.ctl.request(op="config", resync_rate=16 * MiB) == {"ok": True}, "config answered")
    b.start(uptodate=False)
    wait_until(lambda: len(a.ctl.seen("synced")) > n, 60, "a's synced")
    progress = [e["sync"] for e in a.ctl.seen("state") if e["sync"]]
    check(any(p["role"] == "source" and p["total"] == dirty for p in progress),
          f"the resync's progress is reported: {progress}")
    resynced = a.ctl.seen("synced")[-1]["resynced"]
    say(f"   bytes changed while away (dirty): {dirty}, bytes resynced: {resynced}, "
        f"volume: {SIZE}")
    check(resynced == dirty, f"exactly the dirty regions travel ({resynced} vs {dirty})")
    check(resynced <= SIZE // 8, "far less than the volume")
    equal_replicas(a, b, "after the resync")
    wait_conn(b, "connected", decision="in-sync")
    s = wait_conn(a, "connected", decision="in-sync")
    expect(s["dirty"] == 0, f"nothing dirty after the resync: {s}")
    n = len(a.ctl.seen("verify"))
    check(a.ctl.request(op="verify") == {"ok": True}, "verify answered")
    wait_until(lambda: len(a.ctl.seen("verify")) > n, 60, "a's verify")
    v = a.ctl.seen("verify")[-1]
    check(v["equal"] is True and v["differ"] == 0, f"verify: {v}")
    # back in sync: writes reach both again
    qemu_ok(a.qemu_io("write -P 0x99 20M 64k", "flush"), "writes after the resync")
    equal_replicas(a, b, "after writes in sync again")
    # herd-san's peer-down drops the link; it comes back by itself, in sync
    check(a.ctl.request(op="peer-down") == {"ok": True}, "peer-down answered")
    wait_conn(a, "connected", decision="in-sync")


def resync_under_way(r):
    s = r.ctl.state()
    return bool(s["sync"] and s["sync"]["role"] == "source" and s["sync"]["done"] >= MiB)


def resync_cut(a, b):
    say("3b. a resync cut short, at the target and at the source, goes on and ends equal")
    b.kill()
    n = len(a.ctl.seen("peer-lost"))
    w = a.qemu_io("write -P 0x3c 24M 8M", "flush", background=True)
    wait_until(lambda: len(a.ctl.seen("peer-lost")) > n, 60, "a's peer-lost")
    check(a.ctl.request(op="outdated") == {"ok": True}, "outdated answered")
    out, _ = w.communicate(timeout=60)
    check(w.returncode == 0 and "failed" not in out, f"a writes alone: {out.strip()}")
    dirty = a.ctl.state()["dirty"]
    check(dirty >= 8 * MiB, f"the 8 MiB written alone are dirty: {dirty}")
    # 2 MiB/s (batches of 256 KiB): the resync takes seconds
    check(a.ctl.request(op="config", resync_rate=2 * MiB) == {"ok": True}, "config answered")
    b.start(uptodate=False)
    # Under way, and some of it done: bits are cleared once the target has
    # flushed what they stand for, not when it was sent.
    wait_until(lambda: resync_under_way(a) and a.ctl.state()["dirty"] < dirty, 30,
               "a's resync under way, with bits cleared", interval=0.1)
    # the guest writes into regions the resync is copying (two batches of
    # them locked, one flushing): its data ends on both replicas
    qemu_ok(a.qemu_io("write -P 0x5a 24M 8M", "flush"), "a write during the resync")
    b.kill()
    s = wait_until(lambda: (lambda s: s if not s["sync"] else None)(a.ctl.state()), 30,
                   "a's resync to stop", interval=0.1)
    check(0 < s["dirty"] < dirty, f"a keeps the bits of what it had not copied ({s['dirty']} of {dirty})")
    b.start(uptodate=False)
    first = wait_until(lambda: b.ctl.seen("state"), 10, "b's first state")[0]
    check(first["consistent"] is False, f"a target cut mid-resync stays inconsistent: {first}")
    wait_until(lambda: resync_under_way(a), 30, "a's resync under way again", interval=0.1)
    a.kill()
    a.start(uptodate=True)
    wait_until(lambda: a.ctl.seen("synced"), 60, "a's synced after its restart")
    equal_replicas(a, b, "after a resync cut short twice")
    check(b.content()[24 * MiB:32 * MiB] == b"\x5a" * (8 * MiB), "the write during the resync is on both")
    wait_conn(a, "connected", decision="in-sync")
    check(a.ctl.request(op="config", resync_rate=0) == {"ok": True}, "config answered")


def alone_with_outdated(r):
    """Write on @r while its peer is away, let it go on alone."""
    n = len(r.ctl.seen("peer-lost"))
    w = r.qemu_io(f"write -P 0x{ord(r.name):x} 30M 64k", "flush", background=True)
    wait_until(lambda: len(r.ctl.seen("peer-lost")) > n, 60, f"{r.name}'s peer-lost")
    check(r.ctl.request(op="outdated") == {"ok": True}, "outdated answered")
    out, _ = w.communicate(timeout=60)
    check(w.returncode == 0 and "failed" not in out, f"{r.name} writes alone: {out.strip()}")


def split_brain(a, b):
    say("4. a constructed split brain is refused, then resolved by discard")
    b.kill()
    alone_with_outdated(a)          # a: a new generation
    a.kill()
    b.start(uptodate=True)
    alone_with_outdated(b)          # b: another one from the same base
    a.start(uptodate=True)
    wait_conn(a, "splitbrain")
    wait_conn(b, "splitbrain")
    for r in (a, b):
        s = r.ctl.state()
        check(s["decision"] == "split-brain", f"{r.name} reports the split brain: {s}")
    # the error event, to a client connected when it came
    errs = [e["message"] for e in b.ctl.seen("error")]
    check(any("split brain" in m for m in errs), f"b's split-brain error: {errs}")
    check(a.content()[30 * MiB] != b.content()[30 * MiB], "both were written independently")
    say("   resolve: discard b's replica")
    n = len(a.ctl.seen("synced"))
    check(b.ctl.request(op="discard") == {"ok": True}, "discard answered")
    wait_until(lambda: len(a.ctl.seen("synced")) > n, 120, "a's synced (full)")
    resynced = a.ctl.seen("synced")[-1]["resynced"]
    say(f"   full sync: {resynced} bytes")
    check(resynced == SIZE, f"a full sync copies the volume ({resynced})")
    equal_replicas(a, b, "after the split brain's resolution")
    wait_conn(b, "connected", decision="in-sync")
    # what herd-san passes on once herdd committed `synced`
    for r in (a, b):
        check(r.ctl.request(op="volume", uuid=UUID, local="uptodate", peer_state="uptodate")
              == {"ok": True}, "volume answered")


def open_writer(r, *cmds):
    """A local writer on @r that stays open (qemu-io reading commands from
    stdin), given @cmds."""
    argv = ["qemu-io", "-f", "raw", "-t", "none", f"nbd+unix:///{UUID}?socket={r.sock_path}"]
    w = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    for c in cmds:
        w.stdin.write(c + "\n")
    w.stdin.flush()
    return w


def close_writer(w, cmds):
    """Give writer @w (open_writer()'s) its last commands, the text @cmds,
    and let it end: its output (w.returncode is set)."""
    w.stdin.write(cmds)
    w.stdin.close()
    out = w.stdout.read()
    w.wait(timeout=60)
    return out


def crash_writing(a, b, off, pattern):
    """a's node crashes with its writer open, just after writing @pattern at
    @off (on both replicas, not yet flushed)."""
    w = open_writer(a, f"write -P 0x{pattern:x} {off} 64k")
    try:
        wait_until(lambda: b.content()[off:off + 4096] == bytes([pattern]) * 4096, 30,
                   "the write on both replicas")
        a.kill()
    finally:
        w.kill()
        w.wait()


def poke(r, off, data):
    """Change @r's replica file behind the plugin's back (a write the
    other replica never got, or lost)."""
    with open(r.file, "r+b") as f:
        f.seek(off)
        f.write(data)


def resync_figure(r, n, what):
    wait_until(lambda: len(r.ctl.seen("synced")) > n, 120, f"{r.name}'s synced")
    resynced = r.ctl.seen("synced")[-1]["resynced"]
    say(f"   {what}: {resynced} bytes resynchronised of {SIZE} ({100 * resynced / SIZE:.1f} %)")
    return resynced


def primary_crash(a, b):
    say("5. the primary crashes with its writer open; the VM goes on on the peer")
    crash_writing(a, b, 10 * MiB, 0xc1)
    # in flight when the power went: on a's disk only (b never got it)
    poke(a, 10 * MiB + 64 * 1024, b"\xd1" * 4096)
    alone_with_outdated(b)           # the VM restarted on b, which goes on alone (64k at 30M)
    n = len(b.ctl.seen("synced"))
    a.start(uptodate=False)
    resynced = resync_figure(b, n, "the crashed primary back")
    check("its activity log names 1 extent(s) of 4 MiB" in a.tail(100),
          f"a read its activity log after the crash: {a.tail(10)}")
    # a's active extent (8-12 MiB) and b's dirty 64 KiB, not the volume
    check(resynced == 4 * MiB + 64 * 1024,
          f"the crashed primary gets its active extent and the peer's changes ({resynced})")
    equal_replicas(a, b, "after the crashed primary's resync")
    # until herd-san passes on that a is up to date, its local export is refused
    p = a.qemu_io("read 0 4k")
    check(p.returncode != 0, "a's local export is refused before herd says it is up to date")
    check(a.ctl.request(op="volume", local="uptodate", peer_state="uptodate") == {"ok": True},
          "volume answered")
    wait_conn(a, "connected", decision="in-sync")

    say("5b. the same with the activity log torn: a full sync, and why")
    crash_writing(a, b, 12 * MiB, 0xc2)
    with open(a.file + ".al", "r+b") as f:
        f.write(b"\0" * 8192)      # both blocks: nothing left to trust
    alone_with_outdated(b)
    n = len(b.ctl.seen("synced"))
    a.start(uptodate=False)
    resynced = resync_figure(b, n, "torn log")
    check("no valid block" in a.tail(100) and "the next sync copies everything" in a.tail(100),
          f"a says why it takes a full sync: {a.tail(10)}")
    check(resynced == SIZE, f"a crash with an untrusted log is a full sync ({resynced})")
    equal_replicas(a, b, "after the full sync")
    check(a.ctl.request(op="volume", local="uptodate", peer_state="uptodate") == {"ok": True},
          "volume answered")
    wait_conn(a, "connected", decision="in-sync")

    say("5c. both crash, the primary with its writer open: only its active extents")
    crash_writing(a, b, 16 * MiB, 0xc3)
    b.kill()
    # a's unflushed write lost on b's disk, another on a's only
    poke(b, 16 * MiB, b"\0" * 4096)
    poke(a, 17 * MiB, b"\xe3" * 4096)
    b.start(uptodate=True)
    a.start(uptodate=True)
    resynced = resync_figure(a, 0, "both crashed")
    check(resynced == 4 * MiB, f"only the crashed primary's active extent travels ({resynced})")
    equal_replicas(a, b, "after both crashed")
    check(a.content()[16 * MiB:16 * MiB + 4096] == b"\xc3" * 4096, "the primary's data won")
    wait_conn(a, "connected", decision="in-sync")
    wait_conn(b, "connected", decision="in-sync")


def grow(a, b):
    say("6. online grow: both replicas grow, the link follows, writes at the new end reach both")
    new = SIZE + 8 * MiB
    for r in (a, b):
        check(r.ctl.request(op="resize", size=new) == {"ok": True}, f"{r.name}'s resize answered")
    for r in (a, b):
        r2 = r.ctl.request(op="resize", size=SIZE)
        expect(r2.get("ok") is False and "shrink" in r2.get("error", ""), f"shrink refused: {r2}")
        check(os.path.getsize(r.file) == new, f"{r.name}'s replica grew")
    wait_until(lambda: a.ctl.state()["peer_size"] == new, 30, "a's link at the new size", interval=0.2)
    n = len(a.ctl.seen("peer-lost"))
    qemu_ok(a.qemu_io(f"write -P 0x5a {SIZE + 4 * MiB} 1M", "flush"), "a write at the new end")
    check(len(a.ctl.seen("peer-lost")) == n, "no peer-lost for a write beyond the old size")
    equal_replicas(a, b, "after the grow")


def migrate_away_detached(c, d):
    """7b. A live migration away from c, whose replica is detached: the
    destination's guest opens d while c's guest still writes (both through
    d's replica); c's writes land, the destination reads them, and writes
    and flushes alone once c's guest is gone.  Nothing goes to c's disk,
    and d never takes its peer for lost."""
    say("7b. a live migration away from the detached replica: both guests on the peer's replica")
    s = wait_until(lambda: (lambda s: s if s.get("peer_diskless") else None)(d.ctl.state()), 30,
                   "d to see c's disk detached")
    check(s["conn"] == "connected" and not s["disk"], f"d with c detached: {s}")
    lost = len(d.ctl.seen("peer-lost"))
    src = open_writer(c, "write -P 0x31 10M 64k", "flush")
    wait_until(lambda: d.content()[10 * MiB:10 * MiB + 4096] == b"\x31" * 4096, 30, "the source's first write")
    dst = open_writer(d, "read -P 0x31 10M 64k")
    wait_until(lambda: d.ctl.state()["writer"], 30, "the destination's open on d")
    out = close_writer(src, "write -P 0x32 11M 64k\nwrite -z 11M 4k\nflush\n")
    check(src.returncode == 0 and "failed" not in out and out.count("wrote") == 3,
          f"the source's writes with the destination open: {out.strip()}")
    out = close_writer(dst, f"read -P 0 11M 4k\nread -P 0x32 {11 * MiB + 4096} 60k\n"
                            "write -P 0x33 12M 64k\nflush\nread -P 0x33 12M 64k\n")
    check(dst.returncode == 0 and "failed" not in out and "Pattern verification failed" not in out and
          out.count("read") == 4 and out.count("wrote") == 1,
          f"the destination reads the source's writes and writes alone: {out.strip()}")
    check(d.content()[12 * MiB:12 * MiB + 4096] == b"\x33" * 4096, "the destination's write is on d")
    check(c.content()[12 * MiB:12 * MiB + 4096] != b"\x33" * 4096 and
          c.content()[10 * MiB:10 * MiB + 4096] != b"\x31" * 4096, "nothing reached c's failed disk")
    s = d.ctl.state()
    check(s["conn"] == "connected" and s["peer_diskless"] and len(d.ctl.seen("peer-lost")) == lost,
          f"d took its peer for lost: {s}, {d.ctl.seen('peer-lost')}")
    s = c.ctl.state()
    check(s["disk"]["state"] == "detached" and s["conn"] == "connected", f"c after the migration: {s}")


def faulty_pair(tmp, ca, x, y):
    """Replicas @x, whose local disk fails once its trigger file exists,
    and @y, each the other's peer: (x, y, the trigger's path), not started."""
    a, b = Replica(tmp, x, ca), Replica(tmp, y, ca)
    a.peer, b.peer = b, a
    return a, b, os.path.join(tmp, f"{x}-disk-fails")


def start_in_sync(a, b, trigger):
    """Start the pair of faulty_pair() up to date, and wait until they are
    connected and in sync."""
    a.start(uptodate=True, fault_trigger=trigger)
    b.start(uptodate=True)
    wait_conn(a, "connected", decision="in-sync")
    wait_conn(b, "connected", decision="in-sync")


def disk_fails_migrating(tmp, ca):
    """7c. The local disk under e fails during a live migration from e to f,
    first met by the destination's flush through f (e's data export): e is
    detached (f takes the detach's new generation with its writer open),
    f's flush is answered once e is recorded outdated, and both guests go
    on through f's replica, f never taking e for lost."""
    say("7c. the disk fails during a migration away from it, first under the peer's flush")
    e, f, trigger = faulty_pair(tmp, ca, "e", "f")
    try:
        start_in_sync(e, f, trigger)
        src = open_writer(e, "write -P 0x41 1M 64k", "flush")
        wait_until(lambda: f.content()[MiB:MiB + 4096] == b"\x41" * 4096, 30, "the source's first write")
        dst = open_writer(f, "read -P 0x41 1M 64k")
        wait_until(lambda: f.ctl.state()["writer"], 30, "the destination's open on f")
        open(trigger, "w").close()
        dst.stdin.write("flush\n")
        dst.stdin.flush()
        ev = wait_until(lambda: e.ctl.seen("disk-failed"), 30, "e's disk-failed")[-1]
        expect(ev["state"] == "detaching" and "peer" in ev["why"], f"disk-failed: {ev}")
        check(e.ctl.request(op="detached", uuid=UUID) == {"ok": True}, "detached answered")
        wait_until(lambda: (lambda s: s if s.get("peer_diskless") else None)(f.ctl.state()), 30,
                   "f to see e's disk detached")
        out = close_writer(src, "write -P 0x42 2M 64k\nflush\nread -P 0x41 1M 64k\n")
        check(src.returncode == 0 and "failed" not in out and out.count("wrote") == 2 and out.count("read") == 1,
              f"the source's I/O after its disk failed: {out.strip()}")
        out = close_writer(dst, "read -P 0x42 2M 64k\nwrite -P 0x43 3M 64k\nflush\n")
        check(dst.returncode == 0 and "failed" not in out and out.count("read") == 2 and out.count("wrote") == 1,
              f"the destination's I/O: {out.strip()}")
        check(f.content()[3 * MiB:3 * MiB + 4096] == b"\x43" * 4096 and
              f.content()[2 * MiB:2 * MiB + 4096] == b"\x42" * 4096, "both guests' writes are on f")
        check(not f.ctl.seen("peer-lost"), f"f took e for lost: {f.ctl.seen('peer-lost')}")
        s = e.ctl.state()
        check(s["disk"]["state"] == "detached" and s["conn"] == "connected", f"e: {s}")
        say(f"   e detached ({s['disk']['why']}); f: {f.ctl.state()['conn']}, peer diskless")
    finally:
        e.stop()
        f.stop()


def local_disk_fails(tmp, ca):
    say("7. the local disk fails under a writer: detached, the peer serves the disk")
    c, d, trigger = faulty_pair(tmp, ca, "c", "d")
    try:
        start_in_sync(c, d, trigger)
        qemu_ok(c.qemu_io("write -P 0x21 0 1M", "flush"), "writes before the failure")
        # the guest has the disk open when it fails
        w = open_writer(c, "write -P 0x20 5M 4k")
        wait_until(lambda: d.content()[5 * MiB:5 * MiB + 4096] == b"\x20" * 4096, 30, "the writer's first write")
        open(trigger, "w").close()
        # in the activity log's extent of the first write: only the data write fails
        w.stdin.write("write -P 0x22 6M 256k\nflush\n")
        w.stdin.close()
        ev = wait_until(lambda: c.ctl.seen("disk-failed"), 30, "c's disk-failed")[-1]
        expect(ev["state"] == "detaching" and "Input/output error" in ev["why"], f"disk-failed: {ev}")
        s = c.ctl.state()
        check(s["disk"]["state"] == "detaching", f"c detaching: {s}")
        time.sleep(0.5)
        check(w.poll() is None, "the write that failed locally is held until `detached`")
        check(d.content()[6 * MiB:6 * MiB + 4096] == b"\x22" * 4096, "the held write is on the peer")
        check(c.ctl.request(op="detached", uuid=UUID) == {"ok": True}, "detached answered")
        out = w.stdout.read()
        w.wait(timeout=60)
        check(w.returncode == 0 and "failed" not in out and out.count("wrote") == 2,
              f"the held write is answered: {out.strip()}")
        s = c.ctl.state()
        check(s["disk"]["state"] == "detached" and s["conn"] == "connected", f"c detached: {s}")
        # reads and writes through c: the peer's replica, c's file untouched
        qemu_ok(c.qemu_io("read -P 0x21 0 1M", "read -P 0x22 6M 256k", "write -P 0x23 2M 64k",
                          "write -z 3M 64k", "flush", "read -P 0x23 2M 64k"), "I/O on the peer")
        check(d.content()[2 * MiB:2 * MiB + 4096] == b"\x23" * 4096, "the write is on the peer")
        check(c.content()[2 * MiB:2 * MiB + 4096] != b"\x23" * 4096, "and not on the failed disk")
        migrate_away_detached(c, d)
        # a discard (the store's) is taken; the metadata on the disk stays older
        check(c.ctl.request(op="discard", uuid=UUID) == {"ok": True}, "discard of a detached replica")
        # the peer lost: nothing left to serve the disk
        d.kill()
        p = c.qemu_io("write -P 0x24 4M 4k", "flush")
        check(p.returncode != 0 or "failed" in p.stdout, f"no replica: the write fails: {p.stdout}")
        s = wait_until(lambda: (lambda s: s if s["disk"] and s["disk"]["state"] == "failed" else None)(
            c.ctl.state()), 30, "c failed")
        say(f"   peer lost while detached: {s['disk']}")
        # the disk replaced (no more faults), both back: a full sync to c
        c.kill()
        os.unlink(trigger)
        d.start(uptodate=True)
        c.start(uptodate=False)
        wait_conn(c, "connected", 120, decision="in-sync")
        wait_conn(d, "connected", 120, decision="in-sync")
        synced = wait_until(lambda: d.ctl.seen("synced"), 120, "d's synced")[-1]
        say(f"   back: {synced['resynced']} bytes resynchronised of {SIZE}")
        expect(synced["resynced"] == SIZE, f"a full sync of the failed replica: {synced}")
        equal_replicas(c, d, "after the failed replica's full sync")
        check(c.content()[2 * MiB:2 * MiB + 4096] == b"\x23" * 4096, "c holds what the peer took")
    finally:
        c.stop()
        d.stop()


def main():
    for tool in ("nbdkit", "qemu-io", "certtool"):
        if not any(os.access(os.path.join(d, tool), os.X_OK)
                   for d in os.environ.get("PATH", "").split(":")):
            print(f"SKIP: {tool} is missing (scripts/install-deps)")
            return SKIP
    check(os.path.exists(plugin_path()), f"{plugin_path()} is built")
    with tempfile.TemporaryDirectory(prefix="herd-san-") as tmp:
        ca = TestCA(tmp)
        a, b = Replica(tmp, "a", ca), Replica(tmp, "b", ca)
        a.peer, b.peer = b, a
        ok = False
        try:
            a.start(uptodate=True)
            b.start(uptodate=True)
            connected(a, b)
            dirty = peer_lost(a, b)
            peer_back(a, b, dirty)
            resync_cut(a, b)
            split_brain(a, b)
            primary_crash(a, b)
            grow(a, b)
            local_disk_fails(tmp, ca)
            disk_fails_migrating(tmp, ca)
            ok = True
        finally:
            a.stop()
            b.stop()
            if not ok or os.environ.get("HERD_SAN_LOGS"):
                for r in (a, b):
                    say(f"--- {r.name}'s nbdkit log (end)\n{r.tail(40)}")


if __name__ == "__main__":
    sys.exit(run_test(main))

#!/usr/bin/python3
"""eSAN (issue 11): disks replicated between n1 and n2 under a guest that
writes numbered, checksummed blocks and acknowledges each on its serial
port (tests/guest/README.md: the writing guest).

Three test nodes with two links each; eSAN replicates on link 1 (`herd
cluster set esan_link=1`: a dedicated storage link), so cutting it leaves
the cluster whole.  The test PDU fences.  n3 holds no replica.

 A. Bad input is refused and changes nothing: reserved and bad names, bad
    sizes, the same node twice, an unknown node, a storage as well.
    `herd disk create boot --esan n1,n2` and `data` (128 MiB; the guest
    writes its first 16 MiB over and over); the writing
    guest's image is copied into boot through n1's herd-san (qemu-img over
    its NBD socket), and n2's replica file is then identical to it.  VM w1
    (boot on virtio, data as IDE primary master, HA) runs on n1 and writes.
    It cannot be moved to n3 (no replica there).
 B. Storage link of n2 cut while the guest writes: the guest goes on; n2's
    replica shows outdated in `herd disk list` and in `herd status`'s alerts;
    `herd node standby n1` is refused (the sync gate).  Healed: n2 is up to
    date again, and the bytes resynchronised are at most twice what the
    guest wrote meanwhile, as a job of n1's (esan-sync, owner system) that
    ends done; `herd disk verify` says identical.
 C. Live migration n1 -> n2 while the guest writes: its counter goes on
    (no boot, the first ack on n2 follows the last on n1).
 D. n2 (now the primary) loses power: fenced, w1 restarts on n1 from n1's
    replica and resumes; every block the guest saw acknowledged on n2 is on
    n1's replica, none corrupt (guest-blocks).  n2, rebooted by the fence:
    its replica (a primary's that crashed writing) gets from n1 only the
    extents its activity log names and what n1 wrote alone meanwhile — far
    below the volume (printed) — then `herd disk verify` finds the replicas
    identical, and n2's holds every acknowledged block too.
 E. Peer outdated, then the primary dies: n2's storage link cut (n2
    outdated), then n1 loses power (fenced off, it stays off): w1 does not
    start on n2, and herd status says why; `herd disk promote data --force`
    starts it there, from what n2 holds.  n1 powered on: its replica is
    discarded and synchronised in full from n2 (the figure D compares with).
 F. The disk grows online (both replicas' files); deleting it is refused
    while w1 uses it, and done once w1 is gone.
 G. A constructed split brain: disk sb, n2's storage link cut, n1 writes
    alone (n2 outdated); then n2's replica is promoted and let write alone
    behind herd's back (promote and outdated straight to n2's herd-san, as
    a bug could) and written there too.  Healed: the replicas refuse to
    connect, herd status says split brain; `herd disk resolve sb --keep
    n1` discards n2's writes, and the replicas are identical again.
 H. A write left in flight on a cut link arrives after the heal: disk late,
    n2's storage link cut while n1 writes (the write's copy for n2 stays in
    n1's TCP send buffer; n1 goes on alone once n2 is outdated); then `herd
    disk promote late --force --node n2` discards n1's write; healed, n2's
    full sync to n1 runs while the old copy reaches n2 on the connection n1
    gave up.  n2's plugin refuses it (a connection older than its promote):
    the replicas are identical, without n1's write (found by bench/esan).
"""
import json
import os
import re
import shutil
import sys
import time

_here = os.path.dirname(os.path.realpath(__file__))
sys.path[:0] = [_here, os.path.dirname(_here)]
from testlib import BlockLog, TestFailure, check, check_expected, expect, guest_blocks, run_test, say, wait_until, writer_image  # noqa: E402
from halib import Ha, HaNodes, Workdir  # noqa: E402

INSTANCE = "test-esan"
BLOCK = 4096
DATA_MIB = 128


def disk(ha, name, i=1):
    return ha.json(i, "disk", "show", name)


def replicas(ha, name, i=1):
    """{node: (store state, herd-san's conn or None)} of eSAN disk name."""
    out = {}
    for r in disk(ha, name, i)["esan"]["replicas"]:
        san = r.get("herd_san") or {}
        out[r["node"]] = (r["state"], san.get("conn"))
    return out


def in_sync(ha, name, i=1):
    r = replicas(ha, name, i)
    return all(state == "uptodate" and conn == "connected" for state, conn in r.values())


def replica_file(tn, i, uuid):
    return os.path.join(tn.tn.node_dir(i), "fs", "var", "lib", "herd", "esan", f"{uuid}.img")


def serial_path(tn, i, name):
    return os.path.join(tn.tn.log_dir(i), "libvirt", "qemu", f"{name}-serial0.log")


def acks(path):
    return BlockLog(path).acks() if os.path.exists(path) else []


def last_ack(path):
    a = acks(path)
    return a[-1] if a else 0


def tail_copy(path, offset, dest):
    """What path holds beyond offset, written to dest (a log of one run)."""
    with open(path, "rb") as src, open(dest, "wb") as dst:
        src.seek(offset)
        dst.write(src.read())
    return dest


def size_of(path):
    return os.path.getsize(path) if os.path.exists(path) else 0


def writing(path, timeout=60, since=None):
    """The guest whose serial log is path acknowledges blocks: two readings, rising."""
    first = wait_until(lambda: last_ack(path) > (since or 0) and last_ack(path), timeout,
                       f"acks in {path} beyond {since or 0}")
    wait_until(lambda: last_ack(path) > first, timeout, f"acks in {path} to grow past {first}")
    return last_ack(path)


def resynced_by(ha, name, node, i=1):
    """What node's herd-san copied in its last resync of eSAN disk name."""
    for r in disk(ha, name, i)["esan"]["replicas"]:
        if r["node"] == node:
            return (r.get("herd_san") or {}).get("resynced", 0)
    return 0


def runs_on(ha, name, i=1):
    v = ha.json(i, "vm", "info", name)
    return v.get("node") if v.get("state") == "running" else None


def refusals(ha):
    say("== A. bad input refused, nothing changed")
    before = ha.json(1, "disk", "list")
    bad = [
        (["disk", "create", "disk", "--size", "1M", "--esan", "n1,n2"], r"reserved word"),
        (["disk", "create", "a/b", "--size", "1M", "--esan", "n1,n2"], r"character"),
        (["disk", "create", "x", "--size", "1000", "--esan", "n1,n2"], r"512-byte sectors"),
        (["disk", "create", "x", "--size", "65T", "--esan", "n1,n2"], r"too large"),
        (["disk", "create", "x", "--size", "lots", "--esan", "n1,n2"], r"not a size"),
        (["disk", "create", "x", "--size", "1M", "--esan", "n1,n1"], r"two different nodes"),
        (["disk", "create", "x", "--size", "1M", "--esan", "n1,n9"], r"Node n9 is not a node"),
        (["disk", "create", "x", "--size", "1M", "--esan", "n1"], r"names the two nodes"),
        (["disk", "create", "x", "--size", "1M", "--esan", "n1,n2", "--storage", "s"], r"no field 'storage'"),
    ]
    for args, pattern in bad:
        ha.refused(1, args, pattern)
    check(ha.json(2, "disk", "list") == before, "a refused disk create changed the disk list")


def make_disks(tn, ha):
    say("== A. eSAN disks on n1 and n2; the guest's image written through n1's herd-san")
    ha.ok(1, "cluster", "set", "esan_link=1")
    ha.ok(1, "disk", "create", "boot", "--size", "1M", "--esan", "n1,n2")
    ha.ok(2, "disk", "create", "data", "--size", f"{DATA_MIB}M", "--esan", "n1,n2")
    for name in ("boot", "data"):
        wait_until(lambda: in_sync(ha, name), 30, f"{name}'s replicas to connect")
    out = ha.ok(3, "disk", "list").stdout
    expect(re.search(rf"data\s+eSAN\s+raw\s+{DATA_MIB} MiB.*n1 uptodate, n2 uptodate", out),
           f"herd disk list on n3 does not show data's replicas up to date:\n{out}")
    boot = disk(ha, "boot")["uuid"]
    uri = f"nbd+unix:///{boot}?socket=/run/herd/san/{boot}.sock"
    p = tn.exec(1, "qemu-img", "convert", "-n", "-f", "raw", "-O", "raw", writer_image(), uri, timeout=60)
    check(p.returncode == 0, f"qemu-img convert into eSAN disk boot failed: {p.stderr.strip()}")
    with open(writer_image(), "rb") as a, open(replica_file(tn, 2, boot), "rb") as b:
        check(a.read() == b.read(), "n2's replica of boot differs from what was written through n1")
    say("  boot's replica on n2 holds what was written on n1")


def start_writer(tn, ha):
    say("== A. w1 writes to data on n1")
    ha.ok(1, "vm", "create", "w1", "--memory", "32M", "--disk", "boot", "--disk", "data,bus=ide",
          "--ha", "--preferred", "n1", "--no-failback")
    ha.ok(2, "vm", "start", "w1")
    wait_until(lambda: runs_on(ha, "w1") == "n1", 60, "w1 to run on n1")
    writing(serial_path(tn, 1, "w1"))
    ha.refused(1, ["vm", "migrate", "w1", "n3"], r"eSAN disk (boot|data) has its replicas on n1 and n2 only",
               what="w1 to n3")


def link_cut(tn, ha):
    say("== B. n2's storage link cut while w1 writes")
    log = serial_path(tn, 1, "w1")
    before = last_ack(log)
    resynced_before = disk(ha, "data")["esan"]["replicas"][0]["herd_san"].get("resynced", 0)
    tn.cli("cut", "2", "1")
    try:
        wait_until(lambda: replicas(ha, "data")["n2"][0] == "outdated", 30, "n2's replica of data to be outdated")
        during = writing(log, since=before)
        say(f"  the guest went on alone: ack {before} -> {during}")
        out = ha.ok(3, "disk", "list").stdout
        expect(re.search(r"data .*n2 outdated", out), f"herd disk list does not show n2 outdated:\n{out}")
        alerts = " ".join(ha.alerts(3))
        expect("eSAN disk data: the replica on n2 is outdated" in alerts, f"no eSAN alert: {alerts}")
        ha.refused(1, ["node", "standby", "n1"], r"only up-to-date replica of eSAN disk\(s\) data",
                   what="standby of n1 (the sync gate)")
        check(ha.nodes(1)["n1"]["mode"] == "online", "the refused standby changed n1's mode")
    finally:
        tn.cli("heal", "2", "1")
    wait_until(lambda: in_sync(ha, "data"), 60, "data's replicas to be in sync again")
    # Written while n2 was away: from the cut until the link was back (an
    # over-estimate by what the guest wrote while the test looked).
    changed = (last_ack(log) - before) * BLOCK
    resynced = disk(ha, "data")["esan"]["replicas"][0]["herd_san"].get("resynced", 0) - resynced_before
    say(f"  resynchronised {resynced} bytes after about {changed} bytes written alone")
    check(0 < resynced <= 2 * changed,
          f"the resync copied {resynced} bytes for about {changed} bytes changed")
    # The resync was a job of n1's (the source), by herd itself (docs/esan.md).
    job = wait_until(lambda: next((j for j in ha.json(2, "job", "list", "--all")
                                   if j["kind"] == "esan-sync" and j["target"] == "data"
                                   and j["state"] != "running"), None), 30, "the resync's job to end")
    check(job["state"] == "done" and job["owner"] == "system" and job["node"] == "n1" and job["to"] == "n2",
          f"the resync's job: {job}")
    say(f"  job {job['name']}: {job['last']}")
    out = ha.ok(2, "disk", "verify", "data", timeout=300).stdout
    expect("identical" in out, f"herd disk verify data: {out!r}")
    say(f"  {out.strip().splitlines()[-1]}")


def migrate(tn, ha):
    say("== C. live migration n1 -> n2 while w1 writes")
    src, dst = serial_path(tn, 1, "w1"), serial_path(tn, 2, "w1")
    ha.ok(1, "vm", "migrate", "w1", "n2", "--wait", timeout=180)
    wait_until(lambda: acks(dst), 30, "acks on n2")
    # Read as one stream: n1's QEMU may have stopped in the middle of an
    # ack line that n2's finished.
    last_src = last_ack(src)
    first_dst = BlockLog(src, dst).acks()[len(acks(src))]
    check(first_dst == last_src + 1, f"the counter jumped: last ack on n1 {last_src}, first on n2 {first_dst}")
    check(not any(e[0] in ("boot", "resume") for e in BlockLog(dst).events()),
          "the guest booted again on n2 after a live migration")
    writing(dst)
    say(f"  acks went on from {last_src} on n1 to {first_dst} on n2")


def failover(tn, ha, tmp):
    say("== D. n2 (the primary) loses power while w1 writes")
    n1_log, n2_log = serial_path(tn, 1, "w1"), serial_path(tn, 2, "w1")
    offset = size_of(n1_log)
    writing(n2_log)
    tn.cli("kill", "2")
    wait_until(lambda: runs_on(ha, "w1") == "n1", 120, "w1 to run on n1 again")
    run2 = os.path.join(tmp, "w1-n2.log")
    shutil.copyfile(n2_log, run2)
    run1 = os.path.join(tmp, "w1-n1-after.log")
    wait_until(lambda: acks(tail_copy(n1_log, offset, run1)), 60, "w1 to write again on n1")
    data = disk(ha, "data")["uuid"]
    rc, result, err = guest_blocks(replica_file(tn, 1, data), run2, run1)
    check(rc == 0, f"guest-blocks after the failover: {err or result}")
    if result:
        say(f"  after the failover: {json.dumps(result)[:200]}")
    # The fence rebooted n2: its replica, that of a primary that crashed
    # while writing, gets from n1 (which wrote alone since) what n1 wrote
    # and the extents n2's activity log names, not the whole volume.
    wait_until(lambda: in_sync(ha, "data") and in_sync(ha, "boot"), 180, "the replicas to be in sync again")
    resynced = resynced_by(ha, "data", "n1")
    size = DATA_MIB << 20
    say(f"  n2 back: resynchronised {resynced} bytes of {size} ({100 * resynced / size:.1f} % of a full sync)")
    # at most the guest's 16 MiB ring and its active extents (within it)
    check(0 < resynced <= size // 4, f"the crashed primary's resync copied {resynced} of {size} bytes")
    out = ha.ok(1, "disk", "verify", "data", timeout=300).stdout
    expect("identical" in out, f"after n2 came back, herd disk verify data: {out!r}")
    say(f"  n2 back: {out.strip().splitlines()[-1]}")
    rc, result, err = guest_blocks(replica_file(tn, 2, data), run2, tail_copy(n1_log, offset, run1))
    check(rc == 0, f"guest-blocks on n2's replica after its resync: {err or result}")


def outdated_then_dead(tn, ha):
    say("== E. n2 outdated, then n1 (the primary) dies")
    log = serial_path(tn, 1, "w1")
    writing(log)
    tn.cli("cut", "2", "1")
    try:
        wait_until(lambda: replicas(ha, "data")["n2"][0] == "outdated", 30, "n2's replica of data to be outdated")
        writing(log, since=last_ack(log))
        n2_offset = size_of(serial_path(tn, 2, "w1"))
        ha.set(2, "fence_action=off")  # n1 stays off: it does not come back with its replica
        tn.cli("kill", "1")
        wait_until(lambda: any("herd disk promote data --force" in a for a in ha.alerts(2)), 60,
                   "an alert that names 'herd disk promote data --force'")
        time.sleep(2)
        check(runs_on(ha, "w1", 2) is None, "w1 started on n2 from an outdated replica")
        say("  w1 stays down; herd status names promote")
        ha.ok(2, "disk", "promote", "data", "--force")
        wait_until(lambda: runs_on(ha, "w1", 2) == "n2", 120, "w1 to run on n2 after the promote")
        n2_log = serial_path(tn, 2, "w1")
        wait_until(lambda: acks(n2_log) and size_of(n2_log) > n2_offset and last_ack(n2_log), 60,
                   "w1 to write on n2")
        say("  promoted: w1 runs on n2 from n2's replica")
    finally:
        tn.cli("heal", "2", "1")
    tn.cli("start", "1")
    wait_until(lambda: in_sync(ha, "data", 2), 180, "n1's discarded replica to be synchronised from n2")
    say(f"  n1 back: its replica was synchronised in full from n2: {resynced_by(ha, 'data', 'n2', 2)} bytes")


def grow_and_delete(tn, ha):
    say("== F. online growth, delete refused while used")
    data = disk(ha, "data")["uuid"]
    ha.ok(1, "disk", "resize", "data", "--size", "+16M")
    want = (DATA_MIB + 16) << 20
    for i in (1, 2):
        wait_until(lambda: size_of(replica_file(tn, i, data)) == want, 30, f"n{i}'s replica of data to grow")
    ha.refused(1, ["disk", "resize", "data", "--size", "16M"], r"never shrinks")
    ha.refused(1, ["disk", "delete", "data"], r"in use by VM w1")
    ha.ok(1, "vm", "destroy", "w1")
    ha.ok(1, "vm", "undefine", "w1")
    ha.ok(1, "disk", "delete", "data")
    for i in (1, 2):
        wait_until(lambda: not os.path.exists(replica_file(tn, i, data)), 30, f"n{i}'s replica of data to go")
    say("  data deleted, both replicas gone")


def qemu_io(tn, i, uuid, *commands):
    """qemu-io inside node i on eSAN disk uuid through its herd-san."""
    argv = ["qemu-io", "-f", "raw"]
    for c in commands:
        argv += ["-c", c]
    argv.append(f"nbd+unix:///{uuid}?socket=/run/herd/san/{uuid}.sock")
    p = tn.exec(i, *argv, timeout=60)
    check(p.returncode == 0 and "error" not in p.stdout.lower(),
          f"n{i}: qemu-io {commands}: {(p.stderr or p.stdout).strip()}")


def herd_san_op(tn, i, op):
    """One op straight to node i's herd-san (behind herdd's back); its answer."""
    code = ("import json,socket,sys\n"
            "s=socket.socket(socket.AF_UNIX); s.connect('/run/herd/san.sock')\n"
            "s.sendall((sys.argv[1]+'\\n').encode()); f=s.makefile()\n"
            "for line in f:\n"
            "    if 'ok' in json.loads(line): print(line.strip()); break\n")
    p = tn.exec(i, "python3", "-c", code, json.dumps(op), timeout=30)
    return p.stdout.strip()


def split_brain(tn, ha):
    say("== G. a constructed split brain, resolved with resolve --keep")
    ha.ok(1, "disk", "create", "sb", "--size", "8M", "--esan", "n1,n2")
    wait_until(lambda: in_sync(ha, "sb"), 30, "sb's replicas to connect")
    uuid = disk(ha, "sb")["uuid"]
    tn.cli("cut", "2", "1")
    try:
        qemu_io(tn, 1, uuid, "write -P 0x11 0 1M", "flush")
        wait_until(lambda: replicas(ha, "sb")["n2"][0] == "outdated", 30, "n2's replica of sb to be outdated")
        # herdd would never let n2 write alone (the store records it
        # outdated): both orders go to its herd-san directly.
        # n2's herd-san refuses a promote while it still counts its link
        # connected: it sees the cut at its next keepalive, not when n1's
        # herdd has recorded n2 outdated.
        for op in ("promote", "outdated"):
            answers = []
            try:
                wait_until(lambda: answers.append(herd_san_op(tn, 2, {"op": op, "uuid": uuid}))
                           or '"ok":true' in answers[-1].replace(" ", ""), 30,
                           f"n2's herd-san to take {op}", interval=0.5)
            except TestFailure as e:
                raise TestFailure(f"{e}: its last answer {answers[-1]}") from None
        qemu_io(tn, 2, uuid, "write -P 0x22 4M 1M", "flush")
    finally:
        tn.cli("heal", "2", "1")
    wait_until(lambda: any("eSAN disk sb is in split brain" in a for a in ha.alerts(3)), 60,
               "herd status to report sb's split brain")
    out = ha.ok(3, "disk", "list").stdout
    expect(re.search(r"sb .*splitbrain", out), f"herd disk list does not show the split brain:\n{out}")
    ha.refused(1, ["disk", "resolve", "sb", "--keep", "n3"], r"Node n3 holds no replica", what="keep n3")
    ha.ok(1, "disk", "resolve", "sb", "--keep", "n1")
    wait_until(lambda: in_sync(ha, "sb"), 60, "sb's replicas to be in sync after resolve --keep n1")
    out = ha.ok(2, "disk", "verify", "sb", timeout=120).stdout
    expect("identical" in out, f"herd disk verify sb after resolve: {out!r}")
    with open(replica_file(tn, 2, uuid), "rb") as f:
        f.seek(4 << 20)
        check(f.read(1 << 20) == bytes(1 << 20), "n2's own writes survived resolve --keep n1")
        f.seek(0)
        check(f.read(1 << 20) == b"\x11" * (1 << 20), "n1's writes are not on n2's replica after resolve")
    say("  resolved: n2 holds n1's data, its own writes are gone")


def late_write(tn, ha):
    say("== H. a write in flight on a cut link, the other replica promoted, healed")
    ha.ok(1, "disk", "create", "late", "--size", "8M", "--esan", "n1,n2")
    wait_until(lambda: in_sync(ha, "late"), 30, "late's replicas to connect")
    uuid = disk(ha, "late")["uuid"]
    tn.cli("cut", "2", "1")
    try:
        # Held until n2 is recorded outdated (the peer's timeout), then alone.
        qemu_io(tn, 1, uuid, "write -P 0x33 1M 4k", "flush")
        wait_until(lambda: replicas(ha, "late")["n2"][0] == "outdated", 30,
                   "n2's replica of late to be outdated")
        ha.ok(1, "disk", "promote", "late", "--force", "--node", "n2")
        wait_until(lambda: replicas(ha, "late")["n2"][0] == "uptodate", 30, "n2's replica to be promoted")
    finally:
        tn.cli("heal", "2", "1")
    wait_until(lambda: in_sync(ha, "late"), 60, "late's replicas to be in sync after the heal")
    time.sleep(2)   # what n1's old connection still had to send has arrived by now
    out = ha.ok(1, "disk", "verify", "late", timeout=120).stdout
    expect("identical" in out, f"herd disk verify late after the promote and heal: {out!r}")
    for i in (1, 2):
        with open(replica_file(tn, i, uuid), "rb") as f:
            f.seek(1 << 20)
            expect(f.read(BLOCK) == bytes(BLOCK), f"n{i}'s replica holds the discarded write of n1")
    say("  identical, without the discarded write")


def main():
    with HaNodes(INSTANCE, 3, links=2) as tn, Workdir(INSTANCE) as tmp:
        os.chmod(tmp, 0o755)
        ha = Ha(tn, tmp)
        ha.add_pdu()
        refusals(ha)
        make_disks(tn, ha)
        start_writer(tn, ha)
        link_cut(tn, ha)
        migrate(tn, ha)
        failover(tn, ha, tmp)
        outdated_then_dead(tn, ha)
        grow_and_delete(tn, ha)
        split_brain(tn, ha)
        late_write(tn, ha)
        check_expected()
    return 0


if __name__ == "__main__":
    sys.exit(run_test(main, root=True))

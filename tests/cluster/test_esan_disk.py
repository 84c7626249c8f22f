#!/usr/bin/python3
"""eSAN (issues 11, 12): herdd's part when the local disk under a replica
fails, `herd disk attach`, and the sync as a job.

Two test nodes and the test PDU.  n1's herd-san runs with a failing local disk preloaded
(tests/san/io_fault.c through /etc/herd/herd-san.env): once /run/herd/
io-fault exists, every read, write and flush of its replicas' files fails
with EIO.  Disks boot and data (32 MiB) have replicas on n1 and n2; the
writing guest w1 (tests/guest/README.md) runs on n1 and writes data.

 A. EIO under n1's replicas while w1 writes: the store records n1's replica
    of data outdated and discarded; `herd status` has the critical alert
    that names the failed local disk; w1 goes on through n2's replica, and
    n2's replica holds every block w1 saw acknowledged, none corrupt.
 B. `herd disk attach` refuses bad input with a sentence (an unknown node,
    a node without a replica, a replica that is not detached, the VM on
    n1: migrate it first); so does the disk's "Attach n1" button on n2's
    Storage page (in Debian's chromium, tests/ui/browser.mjs), the
    sentence by the button and nothing changed.
 M. `herd vm migrate w1 n2` while w1 writes, away from n1's detached
    replica: during the migration both QEMUs have n2's replica as their
    disk (n1's through its detached server); w1's counter goes on on n2
    without a reboot, n2's replica holds every block w1 saw acknowledged
    on either node, and n1's replica stays detached.
 C. The disk "replaced" (the fault removed): "Attach n1" clicked on n2's
    page (as `herd disk attach data` does) starts n1's replica's server
    again (w1 runs on n2 now), the page's row and `herd disk list --json`
    show n1's replica no longer detached; it is synchronised in full from
    n2 (esan_resync_mibs=2 keeps it running a while) as one job of kind
    esan-sync, which `herd job cancel` refuses; n2's herdd restarts mid-sync
    (the same job goes on, no replication link drops).  While it runs, `herd vm
    migrate w1 n1` is refused with a sentence that names the VM, the disk,
    n1 and the sync's progress, and `herd node maintenance n2` by the sync
    gate; nothing moves.  The job (one, not two) ends done with its log
    (started: full; done: bytes and time).  `herd disk verify data` finds
    the replicas identical, and n1's holds every block w1 saw
    acknowledged.  `herd node maintenance n2 --wait`, started during the
    sync, first says that it waits for disk data (the sync gate), and once
    the sync has ended moves w1 live to n1: its counter goes on there.

Screenshots: BUILD/ui-screenshots/esan-attach-*.png.

Run: meson test -C build --suite cluster esan-disk (or this file, as root).
"""
import os
import select
import shutil
import subprocess
import sys

_here = os.path.dirname(os.path.realpath(__file__))
sys.path[:0] = [_here, os.path.dirname(_here)]
from testlib import (BlockLog, build_dir, check, check_expected, expect, guest_blocks, run_test, say,  # noqa: E402
                     wait_until, writer_image)
from halib import Ha, HaNodes, Workdir  # noqa: E402
from uilib import WATCH_FACTS_JS, Browser, admin_password, login  # noqa: E402

INSTANCE = "test-esan-disk"
TRIGGER = "/run/herd/io-fault"
SHIM = os.path.join(build_dir(), "tests", "san", "herd-io-fault.so")
URL = "https://10.99.0.2:8001/"
ATTACH = "disk-attach-data-n1"     # the Attach n1 button of disk data (ui/src/storage.jsx)


def disk(ha, name, i=2):
    return ha.json(i, "disk", "show", name)


def replica(ha, name, node, i=2):
    """The API's view of node's replica of eSAN disk name."""
    return next(r for r in disk(ha, name, i)["esan"]["replicas"] if r["node"] == node)


def in_sync(ha, name, i=2):
    return all(r["state"] == "uptodate" and (r.get("herd_san") or {}).get("conn") == "connected"
               and not (r.get("herd_san") or {}).get("disk")
               for r in disk(ha, name, i)["esan"]["replicas"])


def local_disk(ha, name, node):
    return ((replica(ha, name, node).get("herd_san") or {}).get("disk") or {}).get("state")


def replica_file(tn, i, uuid):
    return os.path.join(tn.tn.node_dir(i), "fs", "var", "lib", "herd", "esan", f"{uuid}.img")


def serial_path(tn, i, name):
    return os.path.join(tn.tn.log_dir(i), "libvirt", "qemu", f"{name}-serial0.log")


def last_ack(path):
    a = BlockLog(path).acks() if os.path.exists(path) else []
    return a[-1] if a else 0


def writing(path, since=0, timeout=60):
    """The guest whose serial log is path acknowledges blocks beyond since, rising."""
    first = wait_until(lambda: last_ack(path) > since and last_ack(path), timeout, f"acks in {path} beyond {since}")
    wait_until(lambda: last_ack(path) > first, timeout, f"acks in {path} to grow past {first}")
    return last_ack(path)


def blocks_on(tn, i, uuid, *logs):
    """Every block the guest saw acknowledged (logs copied first) is on node i's replica, none corrupt."""
    rc, result, err = guest_blocks(replica_file(tn, i, uuid), *logs)
    check(rc == 0, f"guest-blocks on n{i}'s replica: {err or result}")
    return result


def sync_jobs(ha, name, i=2):
    return [j for j in ha.json(i, "job", "list", "--all") if j["kind"] == "esan-sync" and j["target"] == name]


def setup(tn, ha):
    say("== n1's herd-san with a failing local disk preloaded; disks boot and data; w1 writes on n1")
    tn.exec(1, "sh", "-c", f"printf 'LD_PRELOAD={SHIM}\\nHERD_IO_FAULT_TRIGGER={TRIGGER}\\n"
                           f"HERD_IO_FAULT_PATH=/var/lib/herd/esan/\\n' >/etc/herd/herd-san.env", timeout=10)
    tn.exec(1, os.path.join(_here, "node-service"), "restart", "herd-san", timeout=90, check=True)
    ha.ok(1, "disk", "create", "boot", "--size", "1M", "--esan", "n1,n2")
    ha.ok(1, "disk", "create", "data", "--size", "32M", "--esan", "n1,n2")
    for name in ("boot", "data"):
        wait_until(lambda: in_sync(ha, name), 60, f"{name}'s replicas to connect")
    boot = disk(ha, "boot")["uuid"]
    uri = f"nbd+unix:///{boot}?socket=/run/herd/san/{boot}.sock"
    p = tn.exec(1, "qemu-img", "convert", "-n", "-f", "raw", "-O", "raw", writer_image(), uri, timeout=60)
    check(p.returncode == 0, f"qemu-img convert into eSAN disk boot failed: {p.stderr.strip()}")
    check(not sync_jobs(ha, "data"), "a new disk's replicas (both zeros) were synchronised as a job")
    ha.ok(1, "vm", "create", "w1", "--memory", "32M", "--disk", "boot", "--disk", "data,bus=ide",
          "--ha", "--preferred", "n1", "--no-failback")
    ha.ok(1, "vm", "start", "w1")
    wait_until(lambda: ha.json(1, "vm", "info", "w1").get("node") == "n1" and
               ha.json(1, "vm", "info", "w1").get("state") == "running", 60, "w1 to run on n1")
    writing(serial_path(tn, 1, "w1"))


def disk_fails(tn, ha, tmp, uuid):
    say("== A. EIO under n1's replicas while w1 writes")
    log = serial_path(tn, 1, "w1")
    before = last_ack(log)
    tn.exec(1, "touch", TRIGGER, check=True)
    wait_until(lambda: local_disk(ha, "data", "n1") == "detached", 60, "n1's replica of data to be detached")
    r = replica(ha, "data", "n1")
    check(r["state"] == "outdated" and r.get("discard") is True,
          f"the store does not have n1's failed replica outdated and discarded: {r}")
    check(replica(ha, "data", "n2")["state"] == "uptodate", "n2's replica is not up to date")
    alerts = [a for a in (ha.status(2).get("ha") or {}).get("alerts", [])
              if "the local disk under the replica on n1 failed" in a["message"] and "data" in a["message"]]
    check(alerts and alerts[0].get("severity") == "critical",
          f"no critical alert for n1's failed local disk: {ha.alerts(2)}")
    say(f"  {alerts[0]['message'][:160]}")
    during = writing(log, since=before)
    say(f"  w1 went on through n2's replica: ack {before} -> {during}")
    copy = os.path.join(tmp, "w1-n1.log")
    shutil.copyfile(log, copy)
    result = blocks_on(tn, 2, uuid, copy)
    say(f"  n2's replica holds every acknowledged block: {str(result)[:160]}")


def click_attach(b):
    """Click "Attach n1" on data's row of n2's Storage page and confirm; the
    sentence shown by the button (None if the button went with the detached
    replica before the page showed it)."""
    b("goto", page="n2", path="/storage")
    b("click", page="n2", testid=ATTACH, timeout=30000)  # runtime state: the page's 15 s refresh at worst
    b("click", page="n2", testid=f"{ATTACH}-yes")
    return wait_until(lambda: (b("text", page="n2", testid=f"{ATTACH}-outcome")
                               if b("count", page="n2", selector=f"[data-testid={ATTACH}-outcome]") else
                               None if b("count", page="n2", selector=f"[data-testid={ATTACH}]") else "(gone)"),
                      60, "the attach's outcome on the page", interval=0.2)


def check_went_on(src, dst, frm, to):
    """The guest's serial logs @src on node @frm and @dst on @to after a
    live migration: its acks go on by one (read as one stream: the source's
    QEMU may have stopped in the middle of an ack line), and it did not boot
    again.  (last ack on @frm, first on @to)"""
    n_src = len(BlockLog(src).acks())
    last_src = last_ack(src)
    first_dst = BlockLog(src, dst).acks()[n_src]
    check(first_dst == last_src + 1, f"the counter jumped: last ack on {frm} {last_src}, first on {to} {first_dst}")
    check(not any(e[0] in ("boot", "resume") for e in BlockLog(dst).events()),
          f"the guest booted again on {to} after a live migration")
    return last_src, first_dst


def row_text(b):
    return b("text", page="n2", testid="disk-row-data")


def attach_refused(tn, ha, b):
    say("== B. herd disk attach: bad input refused")
    ha.refused(1, ["disk", "attach", "data", "--node", "n9"], r"Node n9 is not a node")
    ha.refused(1, ["disk", "attach", "nosuch"], r"nosuch")
    ha.refused(1, ["disk", "attach", "data", "--node", "n2"], r"on node n2 is not detached")
    if not local_disk(ha, "boot", "n1"):
        ha.refused(1, ["disk", "attach", "boot"], r"No replica of eSAN disk boot is detached")
    ha.refused(1, ["disk", "attach", "data"], r"VM w1 runs on node n1 .*Migrate VM w1 to node n2 first")
    check(local_disk(ha, "data", "n1") == "detached", "a refused attach changed n1's replica")
    said = click_attach(b)
    check(said and "Migrate VM w1 to node n2 first" in said and
          b("count", page="n2", selector=f"[data-testid={ATTACH}-outcome].field-error") == 1,
          f"the page's Attach n1 with w1 running on n1 said {said!r}")
    say(f"  the page's Attach n1: {said}")
    b.shot("n2", "esan-attach-refused", testid="disk-row-data")
    check(local_disk(ha, "data", "n1") == "detached", "the page's refused attach changed n1's replica")
    check("n1 outdated (disk detached)" in row_text(b), f"data's row: {row_text(b)!r}")


def migrate_away(tn, ha, tmp, uuid):
    say("== M. w1 migrates live from n1 (its replica detached) to n2 while it writes")
    src, dst = serial_path(tn, 1, "w1"), serial_path(tn, 2, "w1")
    out = ha.ok(1, "vm", "migrate", "w1", "n2", "--wait", timeout=180).stdout
    say(f"  {out.strip().splitlines()[-1] if out.strip() else ''}")
    check(ha.json(1, "vm", "info", "w1").get("node") == "n2", "w1 does not run on n2 after its migration")
    wait_until(lambda: last_ack(dst), 60, "acks on n2")
    last_src, first_dst = check_went_on(src, dst, "n1", "n2")
    now = writing(dst)
    say(f"  acks went on from {last_src} on n1 to {first_dst} on n2 (now {now})")
    r2 = replica(ha, "data", "n2").get("herd_san") or {}
    expect(r2.get("peer_diskless") is True, f"n2's herd-san does not say n1's disk is detached: {r2}")
    check(local_disk(ha, "data", "n1") == "detached", "n1's replica of data is no longer detached")
    logs = [os.path.join(tmp, "w1-n1-m.log"), os.path.join(tmp, "w1-n2-m.log")]
    shutil.copyfile(src, logs[0])
    shutil.copyfile(dst, logs[1])
    result = blocks_on(tn, 2, uuid, *logs)
    say(f"  n2's replica holds every block acknowledged on n1 and n2: {str(result)[:160]}")


def refused_while_syncing(tn, ha):
    """During n1's sync: a live migration to n1 and n2's maintenance are
    refused with sentences, and nothing moves (boot's sync, 1 MiB, is over
    first: the sentences name the first disk not in sync)."""
    wait_until(lambda: in_sync(ha, "boot"), 60, "boot's replicas to be in sync")
    err = ha.refused(1, ["vm", "migrate", "w1", "n1"],
                     r"VM w1 cannot be migrated to node n1: its eSAN disk data is not up to date there "
                     r"\(the replica on n1 is outdated, discarded, being synchronised from n2, \d+ %\), and a VM "
                     r"runs only on an up-to-date replica\. Wait until the sync has ended")
    check("herd disk promote" not in err, f"the migration's refusal advises a promote: {err}")
    ha.refused(1, ["vm", "migrate", "w1"], r"VM w1 cannot be migrated to node n1: its eSAN disk")
    ha.refused(1, ["node", "maintenance", "n2"],
               r"Node n2 holds the only up-to-date replica of eSAN disk\(s\) .*data.*until the other replica "
               r"is in sync")
    info = ha.json(1, "vm", "info", "w1")
    check(info.get("node") == "n2" and not info.get("move_to"), f"a refused migration moved w1: {info}")
    mode = next(n for n in ha.json(1, "node", "list") if n["name"] == "n2").get("mode")
    check(mode in (None, "online"), f"a refused maintenance changed n2's mode to {mode}")


class Maintenance:
    """`herd node maintenance NODE --wait` on n1, in the background."""

    def __init__(self, tn, node):
        self.p = subprocess.Popen(tn.tn.node_argv(1, ["herd", "node", "maintenance", node, "--wait"]),
                                  env=tn.tn.node_env(1), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True)

    def first_line(self, timeout=30):
        r, _, _ = select.select([self.p.stdout], [], [], timeout)
        return self.p.stdout.readline().strip() if r else ""

    def finish(self, timeout):
        try:
            out, err = self.p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            out, err = self.p.communicate()
            check(False, f"herd node maintenance --wait did not end in {timeout} s: {out}{err}")
        check(self.p.returncode == 0, f"herd node maintenance --wait failed (exit {self.p.returncode}): {out}{err}")
        return out

    def close(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()


def moved_back(tn, tmp, n1_before):
    """w1 went on live on n1 (from n2): its counter uninterrupted; n1's
    serial log only from @n1_before on (its first run's lines before)."""
    src, dst = serial_path(tn, 2, "w1"), serial_path(tn, 1, "w1")
    tail = os.path.join(tmp, "w1-n1-back.log")

    def new_acks():
        with open(dst, "rb") as f, open(tail, "wb") as t:
            f.seek(n1_before)
            t.write(f.read())
        return last_ack(tail)
    wait_until(new_acks, 60, "acks on n1 after the move back")
    last_src, first_dst = check_went_on(src, tail, "n2", "n1")
    say(f"  acks went on from {last_src} on n2 to {first_dst} on n1")
    return tail


def herdd_restarts(tn, ha, job):
    """n2's herdd restarts mid-sync: the new one goes on with the same job,
    and tells herd-san no "peer-down" (which dropped the link and ended the
    job failed whenever herdd met herd-san before corosync's ring)."""
    log = os.path.join(tn.tn.log_dir(2), "herd-san.log")
    mark = os.path.getsize(log)
    tn.exec(2, os.path.join(_here, "node-service"), "restart", "herdd", timeout=90, check=True)
    wait_until(lambda: ha.run(2, "status").returncode == 0 or None, 60, "n2's herdd back", interval=1)
    j = ha.json(1, "job", "show", job["name"])
    say(f"  n2's herdd restarted at {j['progress']} %: the job is {j['state']}")
    with open(log, "rb") as f:
        f.seek(mark)
        after = f.read().decode("utf-8", "replace")
    drops = [line for line in after.splitlines() if "the peer's node is lost" in line or "link to the peer dropped" in line]
    check(not drops, "n2's replicas dropped their links at the restart of n2's herdd: " + "; ".join(drops[:3]))
    check(j["state"] == "running" or (j["state"] == "done" and j["progress"] == 100),
          f"the sync job after n2's herdd restarted: {j['state']}: {[x['text'] for x in j['log']][-2:]}")


def attach(tn, ha, tmp, uuid, b):
    say("== C. the failed disk replaced; Attach n1 on n2's page; a full sync as a job")
    # w1 runs on n2: n1's serial log has its first run only
    n1_first = os.path.join(tmp, "w1-n1-first.log")
    shutil.copyfile(serial_path(tn, 1, "w1"), n1_first)
    n1_size = os.path.getsize(n1_first)
    tn.exec(1, "rm", "-f", TRIGGER, check=True)
    ha.ok(1, "cluster", "set", "esan_resync_mibs=2")
    said = click_attach(b)
    expect(said == "(gone)" or "n1's replica is attached again" in said, f"the page's Attach n1 said {said!r}")
    say(f"  the page's Attach n1: {said}")
    for name in ("boot",):
        if local_disk(ha, name, "n1"):
            ha.ok(1, "disk", "attach", name)
    job = wait_until(lambda: next((j for j in sync_jobs(ha, "data") if j["state"] == "running"), None), 60,
                     "a running sync job of data")
    # (Its owner: the page's user.)
    check(job["node"] == "n2" and job["to"] == "n1" and job["owner"] == "admin" and not job["cancellable"],
          f"the sync job: {job}")
    say(f"  job {job['name']}: {job['last']}")
    check("full sync" in job["last"], f"the sync job's first line does not say full: {job['last']}")
    ha.refused(1, ["job", "cancel", job["name"]], r"cannot be cancelled: disk data is not redundant")
    refused_while_syncing(tn, ha)
    herdd_restarts(tn, ha, job)
    say("  herd node maintenance n2 --wait: waits for the sync, then moves w1 to n1 live")
    maint = Maintenance(tn, "n2")
    wait_until(lambda: ha.json(2, "job", "show", job["name"])["progress"] > 0, 60, "the sync job's progress")
    try:
        line = maint.first_line()
        check(line.startswith("Waiting: node n2 holds the only up-to-date replica of eSAN disk(s)") and
              "data" in line, f"herd node maintenance n2 --wait said first: {line!r}")
        say(f"  {line}")
        # herd-san's progress reaches the page live: a facts event of no VM
        # (src/ha/engine.c, esan_changed), and the row says "syncing N %".
        b("eval", page="n2", js=WATCH_FACTS_JS)
        ev = wait_until(lambda: next((f for f in b("eval", page="n2", js="window.__facts")
                                      if f.get("vms") == []), None), 60,
                        "a facts event of no VM (herd-san's sync progress) on n2's page", interval=0.3)
        shown = wait_until(lambda: (lambda t: t if "syncing" in t else None)(row_text(b)), 60,
                           "data's row to show the sync's progress", interval=0.3)
        say(f"  event {ev}; data's row: {shown!r}")
        info = ha.json(1, "vm", "info", "w1")
        check(info.get("node") == "n2" and not info.get("move_to"), f"w1 moved before the sync ended: {info}")
        done = wait_until(lambda: (lambda j: j if j["state"] != "running" else None)(
            ha.json(2, "job", "show", job["name"])), 120, "the sync job to end")
        out = maint.finish(240)
    finally:
        maint.close()
    say("  " + "\n  ".join(out.strip().splitlines()[-3:]))
    check(ha.json(1, "vm", "info", "w1").get("node") == "n1", "w1 does not run on n1 after n2's maintenance")
    n1_back = moved_back(tn, tmp, n1_size)
    lines = [line["text"] for line in done["log"]]
    say("  " + "\n  ".join(lines))
    check(done["state"] == "done" and done["progress"] == 100, f"the sync job ended {done['state']}: {lines}")
    check(any(line.startswith("Done: ") and "copied in" in line for line in lines),
          f"the sync job's log has no line that says what it copied: {lines}")
    check(len(sync_jobs(ha, "data")) == 1, f"more than one sync job for data: {sync_jobs(ha, 'data')}")
    # The row's replica states are herd-san's: a facts event brings them.
    wait_until(lambda: "disk detached" not in row_text(b) and "Attach n1" not in row_text(b), 30,
               f"data's row to show n1's replica attached (it shows {row_text(b)!r})", interval=0.3)
    b.shot("n2", "esan-attach-done", testid="disk-row-data")
    listed = next(d for d in ha.json(2, "disk", "list") if d["name"] == "data")
    r1 = next(r for r in listed["esan"]["replicas"] if r["node"] == "n1")
    check(not (r1.get("herd_san") or {}).get("disk"), f"herd disk list --json: n1's replica of data: {r1}")
    say(f"  data's row: {row_text(b)!r}; herd disk list --json: n1 {r1['state']}, "
        f"{(r1.get('herd_san') or {}).get('conn')}")
    ha.ok(1, "cluster", "set", "esan_resync_mibs=100")
    wait_until(lambda: in_sync(ha, "data") and in_sync(ha, "boot"), 60, "the replicas to be in sync")
    out = ha.ok(1, "disk", "verify", "data", timeout=300).stdout
    expect("identical" in out, f"herd disk verify data after the attach: {out!r}")
    say(f"  {out.strip().splitlines()[-1]}")
    n2_all = os.path.join(tmp, "w1-n2-all.log")
    shutil.copyfile(serial_path(tn, 2, "w1"), n2_all)
    moved_back(tn, tmp, n1_size)    # n1_back anew: up to now
    blocks_on(tn, 1, uuid, n1_first, n2_all, n1_back)
    say("  n1's replica holds every block w1 saw acknowledged on n1, n2 and n1 again")


def main():
    if not os.path.exists(SHIM):
        say(f"SKIP: {SHIM} is not built (a sanitizer build has no tests/san)")
        return 77
    with HaNodes(INSTANCE, 2) as tn, Workdir(INSTANCE) as tmp:
        os.chmod(tmp, 0o755)
        ha = Ha(tn, tmp)
        ha.add_pdu()
        setup(tn, ha)
        uuid = disk(ha, "data")["uuid"]
        disk_fails(tn, ha, tmp, uuid)
        b = Browser(tn, 2, log="browser-esan-disk.log")
        try:
            login(b, "n2", URL, "admin", admin_password(tn))
            attach_refused(tn, ha, b)
            migrate_away(tn, ha, tmp, uuid)
            attach(tn, ha, tmp, uuid, b)
        finally:
            b.close()
        check_expected()
    return 0


if __name__ == "__main__":
    sys.exit(run_test(main, root=True))

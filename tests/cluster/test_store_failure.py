#!/usr/bin/python3
"""A node whose configuration store fails: its disk is full (issue 8, 8h).

Three nodes; n2's /var/lib/herd is a small tmpfs (`testnodes up
--state-size 2=8M`).  An HA guest runs on n2.  Then the test fills n2's
tmpfs and checks, with the real CLI:

  1. a change made on n2 as its disk fills: its client is told that the
     change may have been applied, and which command shows it on another
     node; the others did apply it;
  2. reads on n2 (vm list, vm info, node list, status, cluster status,
     --json too) answer an error that names the failure, its cause and what
     happens next, never the stale list; while a change made on n1 is not
     on n2's disk;
  3. changes on n2 are refused naming n2's own failed store (not "Node n2
     is lost and not fenced yet");
  4. n1's and n3's coordinator alert names n2 and the cause it gave;
     n2's guest keeps running, untouched (same QEMU); n2's HA agent is
     frozen: a guest killed under it is not restarted while its store is
     failed, and not started elsewhere either;
  then frees the space and checks:
  5. n2 recovers by itself (same herdd, no restart), its store equals the
     others' (position and configuration), the alert clears, its agent acts
     again (the killed guest runs again on n2) and n2 takes changes.

A check that fails is reported and the test goes on where the nodes allow
it; it fails at the end if any did.  It fails with the behaviour of before
(a node that stops for good, serves its stale copy and raises no alert) on
checks 1-5, and hangs on none: every wait is bounded.
"""
import errno
import os
import re
import sys
import time

_here = os.path.dirname(os.path.realpath(__file__))
sys.path[:0] = [_here, os.path.dirname(_here)]  # harness.py here, testlib.py in tests/
from testlib import check, check_expected, expect, guest_xml, run_test, say, wait_until  # noqa: E402
from halib import Ha, HaNodes, Workdir, herdd_log, qemu_pids  # noqa: E402

INSTANCE = "test-store-fail"
NODES = [1, 2, 3]
FAILING = 2
STATE_SIZE = "8M"
# herd's retries back off to 30 s (cluster/service.h); then the sync.
RECOVERY_BOUND_S = 60


class SmallDiskNodes(HaNodes):
    """Test nodes with node FAILING's /var/lib/herd on a small tmpfs."""

    def cli(self, *args, **kw):
        if args and args[0] == "up":
            args = args + ("--state-size", f"{FAILING}={STATE_SIZE}")
        return super().cli(*args, **kw)


def state_dir(tn, i):
    """Node i's /var/lib/herd, as the host sees it."""
    return os.path.join(tn.tn.node_dir(i), "fs/var/lib/herd")


def fill(path):
    """Fill the file system of @path with one file; returns its size."""
    fd = os.open(os.path.join(path, "filler"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    size = 0
    try:
        for chunk in (1 << 20, 4096):  # then the last pages
            block = b"\0" * chunk
            while True:
                try:
                    size += os.write(fd, block)
                except OSError as e:
                    if e.errno != errno.ENOSPC:
                        raise
                    break
    finally:
        os.close(fd)
    st = os.statvfs(path)
    check(st.f_bavail == 0, f"{path} still has {st.f_bavail} blocks free after filling it")
    return size


def xml_file(ha, name):
    """A guest's domain XML, in the work directory (seen by every node)."""
    path = os.path.join(ha.tmp, f"{name}.xml")
    guest_xml(name, path, image=ha.image, serial_log=ha.serial_log(name))
    return path


def vm_names(ha, i):
    return set(ha.vms(i))


def n2_alerts(ha, i):
    st = ha.status(i)
    return [a for a in (st.get("ha") or {}).get("alerts", []) if a.get("node") == f"n{FAILING}"]


def position(ha, i):
    p = ha.json(i, "cluster", "status")["position"]
    return (p["generation"], p["index"], p["hash"])


def configuration(ha, i):
    """What every node must hold alike: VMs, nodes, fence devices, settings,
    and the VM history."""
    return {"config": ha.config(i), "history": ha.json(i, "vm", "history")}


def daemon_pid(ha, i):
    return ha.json(i, "version")["daemon"]["pid"]


STORE_FAILED = r"configuration store failed at .*database or disk is full.*retries by itself"


def main():
    with SmallDiskNodes(INSTANCE, 3) as tn, Workdir(INSTANCE) as tmp:
        tn.wait_members(NODES, 3)
        ha = Ha(tn, tmp)
        ha.add_pdu()
        ha.define("g2", ha=True, preferred=f"n{FAILING}")
        ha.ok(1, "vm", "start", "g2")
        ha.wait_vms(lambda v: v["g2"]["state"] == "running" and v["g2"]["node"] == f"n{FAILING}",
                    60, "g2 to run on n2")
        ha.wait_counting(["g2"])
        qemu = qemu_pids(tn, ha.uuids["g2"])
        check(len(qemu) == 1 and qemu[0][0] == FAILING, f"g2's QEMU: {qemu}")
        pid_before = daemon_pid(ha, FAILING)
        boots = ha.boots("g2")
        say(f"g2 runs on n2 (QEMU pid {qemu[0][1]}); herdd on n2 is pid {pid_before}")

        # ---------------------------------------------------------- the disk fills
        size = fill(state_dir(tn, FAILING))
        t_full = time.time()
        say(f"n2's /var/lib/herd is full ({size >> 10} KiB of filler)")

        # 1. A change made on n2 as its disk fills up.
        err = None
        for k in range(1, 6):
            p = ha.run(FAILING, "vm", "define", xml_file(ha, f"w{k}"))
            if p.returncode != 0:
                err, first = (p.stderr or p.stdout).strip(), f"w{k}"
                break
            say(f"  w{k} still fitted in n2's database (its log had room); another one")
        check(err is not None, "n2 accepted five changes on a full disk")
        expect(re.search(r"may have been applied", err) and
               re.search(r"Check with 'herd --host 10\.99\.0\.\d vm list --all'", err) and
               "database or disk is full" in err,
               f"(1) n2's answer to the change its disk refused: {err!r}")
        say(f"(1) n2: herd vm define {first}: {err}")
        got = wait_until(lambda: first in vm_names(ha, 1) and first in vm_names(ha, 3), 10,
                         f"{first} on n1 and n3")
        expect(got, f"(1) the others did not apply {first}")
        say(f"    n1 and n3 list {first}: the change was applied")

        # 2. Reads on n2 say its store failed; a change made meanwhile on n1.
        ha.ok(1, "vm", "define", xml_file(ha, "late"))
        reads = [("vm", "list", "--all"), ("--json", "vm", "list"), ("vm", "info", "g2"),
                 ("node", "list"), ("status",), ("cluster", "status"), ("vm", "history")]
        texts = set()
        for args in reads:
            text = ha.refused(FAILING, args, STORE_FAILED, rc=1, what=f"(2) {' '.join(args)} on n2")
            texts.add(text.split(" herd retries by itself")[0])  # the rest changes with each try
        expect(len(texts) == 1, f"(2) n2's reads say different things: {texts}")
        say(f"(2) every read on n2: {texts.pop() if len(texts) == 1 else texts}")

        # 3. Changes on n2 name its own failed store.
        for args in (("vm", "define", xml_file(ha, "refused")), ("vm", "start", "late"),
                     ("vm", "set", "g2", "--shutdown-timeout", "5"), ("node", "standby", "n3")):
            text = ha.refused(FAILING, args, STORE_FAILED, rc=1, what=f"(3) {' '.join(args[:2])} on n2")
            expect("lost and not fenced" not in text, f"(3) {args}: {text!r}")

        # 4. The others alert; n2's guest runs on, its agent is frozen.
        for i in (1, 3):
            a = wait_until(lambda: n2_alerts(ha, i), 20, f"n{i}'s alert about n2")
            expect(any("herd on node n2 left the cluster" in x["message"] and
                       "configuration store failed" in x["message"] and
                       "database or disk is full" in x["message"] for x in a),
                   f"(4) n{i}'s alert about n2: {a}")
        say(f"(4) alert on n1: {[x['message'] for x in a]}")
        now = qemu_pids(tn, ha.uuids["g2"])
        expect(now == qemu and ha.boots("g2") == boots,
               f"(4) g2 was touched while n2's store failed: QEMUs {qemu} -> {now}")
        ha.wait_counting(["g2"])
        tn.virsh(FAILING, "destroy", "g2")
        t_killed = time.time()
        time.sleep(5)  # a frozen agent waits; a live one restarts a killed HA guest in < 1 s
        expect(not qemu_pids(tn, ha.uuids["g2"]),
               f"(4) g2 was started again while n2's store failed: {qemu_pids(tn, ha.uuids['g2'])}")
        acted = [l for _, l in herdd_log(tn, FAILING, t_full, r" ha: (starting|powering off|shutting down) VM")]
        expect(not acted, f"(4) n2's agent acted with its store failed: {acted}")
        say("    g2 ran on untouched; killed under n2's frozen agent, it stayed down "
            "(and was not started elsewhere)")

        # ---------------------------------------------------------- space again
        os.unlink(os.path.join(state_dir(tn, FAILING), "filler"))
        t_free = time.time()
        say("n2's filler removed")
        wait_until(lambda: ha.run(FAILING, "vm", "list").returncode == 0, RECOVERY_BOUND_S,
                   "n2 to answer again", interval=0.5)
        t_back = time.time()
        say(f"(5) n2 answers again {t_back - t_free:.1f} s after the space came back "
            f"({t_back - t_full:.1f} s after its disk filled up)")
        expect(daemon_pid(ha, FAILING) == pid_before, "(5) herdd on n2 was restarted")
        expect(herdd_log(tn, FAILING, t_full, r"configuration store has recovered"),
               "(5) n2's log does not say that its store recovered")
        # Its store equals the others'.
        same = wait_until(lambda: len({position(ha, i) for i in NODES}) == 1, 10,
                          f"equal positions (they are {[position(ha, i) for i in NODES]})")
        expect(same, "(5) positions differ")
        cfg = {i: configuration(ha, i) for i in NODES}
        expect(cfg[1] == cfg[2] == cfg[3], f"(5) n2's configuration differs: {cfg[2]} vs {cfg[1]}")
        expect({first, "late"} <= vm_names(ha, FAILING), f"(5) n2 lacks {first} or late")
        expect("refused" not in vm_names(ha, 1), "(5) a change refused on n2 was applied")
        for i in (1, 3):
            wait_until(lambda: not n2_alerts(ha, i), 20, f"n{i}'s alert about n2 to clear")
        # Its agent acts again: the guest killed under it runs again there.
        ha.wait_vms(lambda v: v["g2"]["state"] == "running" and v["g2"]["node"] == f"n{FAILING}",
                          60, "g2 to run on n2 again")
        ha.wait_counting(["g2"], boots_after={"g2": boots})
        say(f"    g2 runs on n2 again ({time.time() - t_killed:.1f} s after it was killed)")
        ha.ok(FAILING, "vm", "define", xml_file(ha, "after"))
        wait_until(lambda: "after" in vm_names(ha, 1), 10, "a change made on n2 to reach n1")
        say(f"(5) n2 in sync (position {position(ha, 1)}), alert cleared, takes changes again")
        check_expected()


if __name__ == "__main__":
    sys.exit(run_test(main))

#!/usr/bin/python3
"""VMs on the cluster's storage (issue 10): an ISO uploaded on one node boots
a VM on another, and a VM on an iSCSI disk fails over.

Three test nodes, the test PDU as fence device.

 A. The cluster share is a directory under /tmp (every node sees it).  A
    bootable ISO of the test guest (testlib.make_boot_iso) is uploaded on
    n3 (`herd iso upload`).  `herd vm create cd1 --boot cdrom`, preferred
    n1, runs there with an empty CD-ROM drive (nothing boots); `herd vm set
    cd1 --cdrom …` puts the ISO in while it runs and `herd vm reset cd1`
    resets it: the guest boots from the CD (its serial console, logged on
    n1, prints "herd-guest boot" and counts).
 B. tgt (a userspace iSCSI target) runs in n3 with LUN 1 holding the test
    guest's image.  `herd storage add san --type iscsi` is reached by every
    node (each logs in with iscsi-ls); refusals: a disk with a size on iSCSI,
    LUN 0 (the target's controller, not a disk) -- nothing changes.  `herd
    disk create sys --storage san --lun 1` registers the LUN with the size
    the target gives; `herd vm create i1 --disk sys --ha`, preferred n1,
    runs on n1 from the iSCSI disk (QEMU's own initiator) and counts.
 C. n1 loses power (testnodes kill 1): it is fenced through the PDU and i1
    runs on n2 from the same LUN, its guest booted again there and
    counting; cd1 (not HA) is not restarted elsewhere.
"""
import os
import re
import shutil
import sys
import time

_here = os.path.dirname(os.path.realpath(__file__))
sys.path[:0] = [_here, os.path.dirname(_here)]
from testlib import SerialLog, check, check_expected, expect, guest_image, make_boot_iso, run_test, say, wait_until  # noqa: E402
from halib import Ha, HaNodes, IscsiTarget, Workdir, add_dir_storage  # noqa: E402

INSTANCE = "test-storage-vm"
IQN = "iqn.2026-12.test.herd:san"


def serial_log(tn, i, name):
    """The serial console of a VM herd made, as libvirt logs it on node i."""
    return SerialLog(os.path.join(tn.tn.log_dir(i), "libvirt", "qemu", f"{name}-serial0.log"))


def runs_on(ha, name, i=1):
    """The node VM name runs on, as node i's herd says; None if it does not run."""
    v = ha.json(i, "vm", "info", name)
    return v.get("node") if v.get("state") == "running" else None


def counting(tn, i, name, timeout=60):
    """The guest on node i has booted and counts (two readings, rising)."""
    log = serial_log(tn, i, name)
    wait_until(lambda: log.boots() >= 1, timeout, f"{name}'s guest to boot on n{i}")
    first = wait_until(lambda: log.counter(since_boot=True), timeout, f"{name}'s guest to count on n{i}")
    wait_until(lambda: (log.counter(since_boot=True) or 0) > first, timeout,
               f"{name}'s counter on n{i} to advance past {first}")


def iso_boot(tn, ha, tmp):
    say("== A. an ISO uploaded on n3 boots a VM on n1")
    add_dir_storage(ha, "share", os.path.join(tmp, "share"), share=True)
    iso = make_boot_iso(os.path.join(tmp, "guest-boot.iso"))
    out = ha.ok(3, "iso", "upload", iso).stdout
    expect("SHA-256" in out, f"herd iso upload printed no checksum: {out!r}")
    isos = {i["name"]: i for i in ha.json(1, "iso", "list")}
    expect("guest-boot.iso" in isos, f"n1 does not list the ISO uploaded on n3: {isos}")
    # A VM on n1 with an empty CD-ROM drive to boot from: nothing boots.
    ha.ok(1, "vm", "create", "cd1", "--memory", "32M", "--boot", "cdrom", "--preferred", "n1")
    ha.ok(2, "vm", "start", "cd1")
    wait_until(lambda: runs_on(ha, "cd1") == "n1", 60, "cd1 to run on n1")
    time.sleep(1)
    check(serial_log(tn, 1, "cd1").boots() == 0, "cd1 booted with an empty CD-ROM drive")
    # The ISO put into its drive while it runs (from n2), then a reset: the
    # guest boots from it.
    ha.ok(2, "vm", "set", "cd1", "--cdrom", "guest-boot.iso")
    ha.ok(2, "vm", "reset", "cd1")
    counting(tn, 1, "cd1")
    say("  cd1 runs on n1 and its guest booted from the CD-ROM")


def snapshot(ha):
    return (sorted((s["name"], s["type"]) for s in ha.json(1, "storage", "list")),
            sorted((d["name"], d.get("lun")) for d in ha.json(1, "disk", "list")))


def reached_everywhere(ha, name):
    s = {x["name"]: x for x in ha.json(2, "storage", "list")}.get(name)
    return s and all(n.get("ok") for n in s["nodes"].values()) and len(s["nodes"]) == 3


def iscsi_storage(ha):
    say("== B. an iSCSI storage (tgt in n3), a VM on one of its LUNs")
    before = snapshot(ha)
    ha.refused(1, ["storage", "add", "bad", "--type", "iscsi", "--portal", "10.99.0.3:99999",
                   "--target", IQN], r"HOST:PORT", what="a bad portal")
    ha.refused(1, ["storage", "add", "bad", "--type", "iscsi", "--portal", "10.99.0.3",
                   "--target", "IQN.2026-12.Test"], r"iSCSI name", what="a bad target name")
    check(snapshot(ha) == before, "a refused storage add changed something")
    ha.ok(1, "storage", "add", "san", "--type", "iscsi", "--portal", "10.99.0.3:3260", "--target", IQN)

    # No target yet: every node finds the portal closed, and says so.
    def closed_everywhere():
        nodes = {x["name"]: x for x in ha.json(1, "storage", "list")}["san"]["nodes"]
        return len(nodes) == 3 and all(not n.get("ok") and "Connection refused" in (n.get("problem") or "")
                                       for n in nodes.values())
    wait_until(closed_everywhere, 40, "every node to find san's portal closed")


def iscsi_vm(tn, ha, lun):
    wait_until(lambda: reached_everywhere(ha, "san"), 40, "every node to reach san")
    say("  san reached by n1, n2 and n3")
    before = snapshot(ha)
    ha.refused(1, ["disk", "create", "sys", "--storage", "san", "--size", "1G"], r"give 'lun', not 'size'",
               what="a size on iSCSI")
    ha.refused(1, ["disk", "create", "sys", "--storage", "san", "--lun", "0"], r"qemu-img|not a disk",
               what="LUN 0, the target's controller")
    check(snapshot(ha) == before, "a refused disk create changed something")
    out = ha.ok(2, "disk", "create", "sys", "--storage", "san", "--lun", "1").stdout
    disk = {d["name"]: d for d in ha.json(1, "disk", "list")}["sys"]
    expect(disk["lun"] == 1 and disk["size"] == os.path.getsize(lun),
           f"disk sys: {disk} (the LUN is {os.path.getsize(lun)} bytes); herd said {out!r}")
    ha.refused(1, ["disk", "resize", "sys", "--size", "+1M"], r"grow it on the target", what="growing a LUN")
    ha.ok(1, "vm", "create", "i1", "--memory", "32M", "--disk", "sys", "--ha", "--preferred", "n1",
          "--no-failback")
    ha.ok(1, "vm", "start", "i1")
    wait_until(lambda: runs_on(ha, "i1") == "n1", 60, "i1 to run on n1")
    xml = tn.virsh(1, "dumpxml", "i1").stdout
    expect(re.search(rf"<source protocol='iscsi' name='{re.escape(IQN)}/1'", xml),
           f"i1's disk on n1 is not the iSCSI LUN:\n{xml}")
    counting(tn, 1, "i1")
    say("  i1 runs on n1 from the LUN, through QEMU's initiator")


def failover(tn, ha):
    say("== C. n1 loses power: fenced, i1 runs on n2 from the same LUN")
    fenced_before = len(ha.nodes(2)["n1"]["fence_history"] or [])
    t0 = time.monotonic()
    tn.cli("kill", "1")
    wait_until(lambda: runs_on(ha, "i1", 2) == "n2", 90, "i1 to run on n2")
    say(f"  i1 runs on n2 {time.monotonic() - t0:.1f} s after the power cut")
    counting(tn, 2, "i1")
    history = ha.nodes(2)["n1"]["fence_history"] or []
    expect(len(history) > fenced_before and history[-1].get("ok"), f"n1 was not fenced: {history}")
    # Not HA: it runs nowhere else (n1, rebooted by the fence, may start it
    # again: its node is its own).
    cd1 = ha.json(2, "vm", "info", "cd1")
    expect(cd1.get("state") != "running" or cd1.get("node") == "n1",
           f"cd1 (not HA) was restarted elsewhere: {cd1}")


def main():
    with HaNodes(INSTANCE, 3) as tn, Workdir(INSTANCE) as tmp:
        os.chmod(tmp, 0o755)
        ha = Ha(tn, tmp)
        ha.add_pdu()
        iso_boot(tn, ha, tmp)
        iscsi_storage(ha)
        lun = os.path.join(tmp, "lun1.img")
        shutil.copyfile(guest_image(), lun)
        with IscsiTarget(tn, 3, IQN, {1: lun}, log=os.path.join(tmp, "tgtd.log")):
            iscsi_vm(tn, ha, lun)
            failover(tn, ha)
        check_expected()
    return 0


if __name__ == "__main__":
    sys.exit(run_test(main, root=True))

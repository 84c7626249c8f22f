#!/usr/bin/python3
"""VM hardware without XML (issue 10, C17) on two real test nodes.

 A. A virtual switch on a bridge that every node has (made here in each
    node's network namespace): `herd network add|list`; a bad bridge name
    refused.
 B. A disk (the test guest's image, copied into the cluster share's
    images/) and two ISOs on a dir storage in /tmp, which every node sees.
    (herd storage add, herd disk create, herd iso upload).
 C. Bad input to `herd vm create` is refused with a sentence and changes
    nothing: bad size, bad name, unknown switch, missing disk and ISO, bad
    boot order, bad bus and model, a bad MAC, too many NICs, a disk that
    another VM has.
 D. `herd vm create h1 --memory 64M --disk … --cdrom … --network … --boot
    disk,cdrom`, started: `virsh dumpxml` on its node shows what herd made
    (machine pc, the disk's file with cache=none, the ISO, the NIC on the
    bridge with its MAC, VNC on localhost, virtio-rng, a serial console,
    domain type qemu), and the guest boots (its serial log counts).
 E. `herd vm set h1 --cdrom cd2` on the running VM changes the CD-ROM live
    (dumpxml shows it; nothing pending), `--eject` empties it.
 F. `herd vm set h1 --memory 128M`: pending (herd vm info) until a restart,
    which applies it; every change is a version in `herd vm history`.
 G. `herd network remove` of a switch in use, and `herd vm set --memory` of a
    VM defined from XML, are refused.
 H. A VM with firmware uefi runs on OVMF (Debian's, chosen by libvirt) on
    machine q35, its disk on SATA.
"""
import json
import os
import re
import subprocess
import sys

_here = os.path.dirname(os.path.realpath(__file__))
sys.path[:0] = [_here, os.path.dirname(_here)]  # harness.py here, testlib.py in tests/
from testlib import SerialLog, check, check_expected, expect, run_test, say, wait_until  # noqa: E402
from halib import Ha, HaNodes, Workdir, add_dir_storage  # noqa: E402

INSTANCE = "test-vm-hardware"
NODES = (1, 2)
BRIDGE = "hwbr0"


def make_bridges(tn):
    for i in NODES:
        ns = tn.tn.netns(i)
        subprocess.run(["ip", "-n", ns, "link", "add", BRIDGE, "type", "bridge"], check=True)
        subprocess.run(["ip", "-n", ns, "link", "set", BRIDGE, "up"], check=True)


def snapshot(ha):
    """What a refused command must not change."""
    vms = sorted(json.dumps({k: v.get(k) for k in ("name", "uuid", "version", "memory_mib", "hardware")},
                            sort_keys=True) for v in ha.json(1, "vm", "list", "--all"))
    nets = ha.json(1, "network", "list")
    return {"vms": vms, "networks": nets}


def dumpxml(tn, i, name):
    return tn.virsh(i, "dumpxml", name).stdout


def running_node(ha, name):
    v = ha.json(1, "vm", "info", name)
    return int(v["node"][1:]) if v["state"] == "running" and v.get("node") else None


def serial_log(tn, i, name):
    return SerialLog(os.path.join(tn.tn.log_dir(i), "libvirt", "qemu", f"{name}-serial0.log"))


def objects(ha, tmp):
    """B: a cluster share (herd storage add), the guest's disk and a spare
    one (herd disk create, then the test guest's image written into each,
    as an operator imports one), and two ISOs and a floppy image (herd iso
    upload)."""
    share = os.path.join(tmp, "share")
    add_dir_storage(ha, "share", share, share=True)
    from testlib import guest_image
    with open(guest_image(), "rb") as f:
        image = f.read()
    for name in ("h1-root", "spare"):
        ha.ok(1, "disk", "create", name, "--size", str(len(image)), "--storage", "share",
              "--format", "raw")
        with open(os.path.join(share, "images", f"{name}.raw"), "r+b") as f:
            f.write(image)
    for k in (1, 2):
        path = os.path.join(tmp, f"cd{k}.iso")
        with open(path, "wb") as f:
            f.write(f"herd test medium {k}\n".encode() * 4096)
        ha.ok(2, "iso", "upload", path, "--name", f"cd{k}.iso")
    # A floppy image: 1.44 MB, a size QEMU's floppy drive knows.
    path = os.path.join(tmp, "drivers.vfd")
    with open(path, "wb") as f:
        f.write(b"\0" * 1474560)
    ha.ok(1, "iso", "upload", path, "--name", "drivers.vfd")
    return share


def switches(ha):
    """A: herd network add|list."""
    ha.ok(1, "network", "add", "lan", "--bridge", BRIDGE)
    nets = {n["name"]: n for n in ha.json(2, "network", "list")}
    expect("lan" in nets and nets["lan"]["bridge"] == BRIDGE and nets["lan"]["vlan"] is None,
           f"herd network list on n2: {nets}")
    # Every node has the bridge, as its reach checker finds (at once after
    # the change, and every 10 s).
    wait_until(lambda: all(n["ok"] for n in
                           ha.json(2, "network", "list")[0]["nodes"].values()), 30,
               "both nodes to report bridge " + BRIDGE)
    text = ha.ok(2, "network", "list").stdout
    expect(re.search(rf"^lan\s+{BRIDGE}\s+-\s+0", text, re.M), f"herd network list:\n{text}")
    ha.refused(1, ["network", "add", "bad", "--bridge", "no such bridge"], r"not an interface name")
    ha.refused(1, ["network", "add", "lan", "--bridge", BRIDGE], r"exists already")
    ha.refused(1, ["network", "add", "v", "--bridge", BRIDGE, "--vlan", "5000"], r"vlan")


def refusals(ha):
    """C: bad input to herd vm create changes nothing."""
    before = snapshot(ha)
    good = ["--memory", "64M", "--disk", "h1-root", "--network", "lan"]
    cases = [
        (["vm", "create", "x1", "--memory", "12Q", "--disk", "h1-root"], r"memory.*12Q|12Q"),
        (["vm", "create", "x1", "--memory", "1K", "--disk", "h1-root"], r"at least 16 MiB"),
        (["vm", "create", "bad name!", *good], r"name"),
        (["vm", "create", "x1", "--memory", "64M", "--network", "nosuch"], r"no virtual switch 'nosuch'"),
        (["vm", "create", "x1", "--memory", "64M", "--disk", "nosuch"], r"no disk 'nosuch'"),
        (["vm", "create", "x1", *good, "--cdrom", "nosuch.iso"], r"no ISO 'nosuch.iso'"),
        (["vm", "create", "x1", *good, "--boot", "disk,usb"], r"boot order"),
        (["vm", "create", "x1", *good, "--boot", "disk,disk"], r"boot order"),
        (["vm", "create", "x1", "--memory", "64M", "--disk", "h1-root,bus=usb"], r"disk bus.*usb"),
        (["vm", "create", "x1", "--memory", "64M", "--disk", "h1-root,cache=x"], r"bus="),
        (["vm", "create", "x1", "--memory", "64M", "--network", "lan,model=ne2k"], r"NIC model.*ne2k"),
        (["vm", "create", "x1", "--memory", "64M", "--network", "lan,mac=01:00:5e:00:00:01"], r"unicast"),
        (["vm", "create", "x1", "--memory", "64M", *sum((["--network", "lan"] for _ in range(9)), [])],
         r"at most 16 disks and 8 NICs"),
        (["vm", "create", "x1", "--memory", "64M", "--firmware", "uefi", "--disk", "h1-root,bus=ide"],
         r"no IDE bus"),
    ]
    for args, pattern in cases:
        ha.refused(1, args, pattern)
    check(snapshot(ha) == before, "a refused vm create changed the configuration")


def create_and_boot(tn, ha):
    """D: create, start, dumpxml, boot."""
    ha.ok(1, "vm", "create", "h1", "--memory", "64M", "--vcpus", "1", "--disk", "h1-root",
          "--cdrom", "cd1.iso", "--network", "lan", "--floppy", "drivers.vfd", "--boot", "disk,cdrom")
    info = ha.json(2, "vm", "info", "h1")
    hw = info.get("hardware") or {}
    expect(info["memory_mib"] == 64 and info["type"] == "qemu", f"h1: {info}")
    expect(hw.get("cdrom") == "cd1.iso" and hw.get("disks", [{}])[0].get("name") == "h1-root" and
           re.fullmatch(r"52:54:00(:[0-9a-f]{2}){3}", hw.get("nics", [{}])[0].get("mac", "")),
           f"h1's hardware: {hw}")
    mac = hw["nics"][0]["mac"]
    # The disk is h1's: another VM cannot have it.
    before = snapshot(ha)
    ha.refused(1, ["vm", "create", "x2", "--memory", "64M", "--disk", "h1-root"], r"used by VM h1")
    ha.refused(1, ["vm", "create", "x2", "--memory", "64M", "--network", f"lan,mac={mac}"], r"in use")
    check(snapshot(ha) == before, "a refused vm create changed the configuration")

    ha.ok(1, "vm", "start", "h1")
    node = wait_until(lambda: running_node(ha, "h1"), 60, "h1 to run")
    xml = dumpxml(tn, node, "h1")
    wants = [
        (r"<domain type='qemu'", "domain type qemu"),
        (r"machine='pc-i440fx", "machine pc"),
        (r"<driver name='qemu' type='raw' cache='none' io='native' discard='unmap'/>\s*"
         r"<source file='[^']*/share/images/h1-root.raw'", "the disk, cache=none"),
        (r"<disk type='file' device='cdrom'>.*?<source file='[^']*/share/isos/cd1.iso'", "the ISO"),
        (rf"<interface type='bridge'>\s*<mac address='{mac}'/>\s*<source bridge='{BRIDGE}'/>", "the NIC"),
        (r"<graphics type='vnc' port='59\d\d' autoport='yes' listen='127.0.0.1'", "VNC on localhost"),
        (r"<rng model='virtio'>", "virtio-rng"),
        (r"<serial type='pty'>", "a serial console"),
        (r"<memory unit='KiB'>65536</memory>", "64 MiB"),
        (r"<disk type='file' device='floppy'>.*?<source file='[^']*/isos/drivers.vfd'.*?<target dev='fda' bus='fdc'/>",
         "the floppy"),
        (r"<source file='[^']*/share/images/h1-root.raw'[^>]*/>\s*<backingStore/>\s*<target dev='vda' bus='virtio'/>\s*"
         r"<boot order='1'/>", "the disk first in the boot order"),
    ]
    for pattern, what in wants:
        expect(re.search(pattern, xml, re.S), f"dumpxml on n{node} lacks {what} (/{pattern}/):\n{xml}")
    log = serial_log(tn, node, "h1")
    wait_until(lambda: (log.counter(since_boot=True) or 0) >= 2, 60, "h1's guest to boot and count")
    say(f"h1 runs on n{node}, its guest counts")
    return node


def cdrom_live(tn, ha, node):
    """E: the CD-ROM changed and emptied live."""
    boots = serial_log(tn, node, "h1").boots()
    ha.ok(2, "vm", "set", "h1", "--cdrom", "cd2.iso")
    wait_until(lambda: re.search(r"device='cdrom'>.*?<source file='[^']*/isos/cd2.iso'",
                                 dumpxml(tn, node, "h1"), re.S), 30, "h1's CD-ROM to hold cd2.iso")
    wait_until(lambda: ha.json(1, "vm", "info", "h1").get("pending") == [], 30,
               "nothing pending after the live CD-ROM change")
    ha.ok(1, "vm", "set", "h1", "--eject")
    # libvirt shows an empty drive as <source index='N'/>: no file.
    wait_until(lambda: not re.search(r"device='cdrom'>\s*<driver[^>]*>\s*<source file=",
                                     dumpxml(tn, node, "h1"), re.S), 30, "h1's CD-ROM to be empty")
    expect(ha.json(1, "vm", "info", "h1").get("pending") == [], "pending after the eject")
    expect(running_node(ha, "h1") == node and serial_log(tn, node, "h1").boots() == boots,
           "h1 was restarted by a CD-ROM change")
    ha.refused(1, ["vm", "set", "h1", "--cdrom", "cd1.iso", "--eject"], r"contradict")


def pending_memory(tn, ha, node):
    """F: memory pending until a restart."""
    ha.ok(1, "vm", "set", "h1", "--memory", "128M")
    wait_until(lambda: "memory" in (ha.json(2, "vm", "info", "h1").get("pending") or []), 30,
               "the memory change to show as pending")
    text = ha.ok(1, "vm", "info", "h1").stdout
    expect(re.search(r"^Pending:\s+memory \(applied at the next start\)", text, re.M), f"vm info:\n{text}")
    expect("<memory unit='KiB'>65536</memory>" in dumpxml(tn, node, "h1"), "memory changed before a restart")
    ha.ok(1, "vm", "destroy", "h1")
    ha.ok(1, "vm", "start", "h1")
    node = wait_until(lambda: running_node(ha, "h1"), 60, "h1 to run again")
    expect("<memory unit='KiB'>131072</memory>" in dumpxml(tn, node, "h1"), "memory not 128 MiB after a restart")
    wait_until(lambda: ha.json(1, "vm", "info", "h1").get("pending") == [], 30, "nothing pending after the restart")
    history = ha.ok(1, "vm", "history", "h1").stdout
    versions = [l for l in history.splitlines() if l.startswith("h1 ")]
    expect(len(versions) >= 4, f"h1's history has {len(versions)} versions:\n{history}")


def other_refusals(ha):
    """G."""
    before = snapshot(ha)
    ha.refused(1, ["network", "remove", "lan"], r"in use by VM h1")
    ha.define("gx", ha=False)
    mid = snapshot(ha)
    ha.refused(1, ["vm", "set", "gx", "--memory", "1G"], r"herd vm define")
    ha.refused(1, ["vm", "set", "h1", "--remove-disk", "spare"], r"no disk 'spare'")
    ha.refused(1, ["vm", "set", "h1", "--add-disk", "h1-root"], r"given twice|h1-root")
    check(snapshot(ha) == mid and len(before["vms"]) + 1 == len(mid["vms"]),
          "a refused change changed the configuration")


def uefi(tn, ha):
    """H."""
    ha.ok(1, "vm", "create", "u1", "--memory", "256M", "--firmware", "uefi", "--disk", "spare,bus=sata")
    ha.ok(1, "vm", "start", "u1")
    node = wait_until(lambda: running_node(ha, "u1"), 60, "u1 to run")
    xml = dumpxml(tn, node, "u1")
    for pattern, what in [(r"machine='pc-q35-", "machine q35"),
                          (r"<loader readonly='yes' type='pflash'>/usr/share/OVMF/OVMF_CODE[^<]*\.fd</loader>",
                           "Debian's OVMF"),
                          (r"<target dev='sda' bus='sata'/>", "the disk on SATA")]:
        expect(re.search(pattern, xml), f"u1's dumpxml on n{node} lacks {what} (/{pattern}/):\n{xml}")
    ha.ok(1, "vm", "destroy", "u1")


def main():
    with HaNodes(INSTANCE, len(NODES)) as tn, Workdir(INSTANCE) as tmp:
        os.chmod(tmp, 0o755)
        ha = Ha(tn, tmp)
        make_bridges(tn)
        objects(ha, tmp)
        switches(ha)
        refusals(ha)
        node = create_and_boot(tn, ha)
        cdrom_live(tn, ha, node)
        pending_memory(tn, ha, node)
        other_refusals(ha)
        uefi(tn, ha)
        ha.ok(1, "vm", "destroy", "h1")
        check_expected()
    return 0


if __name__ == "__main__":
    sys.exit(run_test(main, root=True))

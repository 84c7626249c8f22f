#!/usr/bin/python3
"""Disks and ISOs on dir storage (issue 10), on three test nodes with
storages in a directory of the host that every node sees.

 A. `herd disk create` makes qcow2 and raw image files (qemu-img info shows
    the size asked); `herd disk list` on another node shows size, used space
    and format; `herd disk show` one disk.
 B. Bad input -- sizes, names, formats, an unknown storage, a name taken, a
    file already where the disk would go -- is refused with a sentence and
    changes nothing (no disk, no file, the stray file untouched).
 C. A node that does not reach the storage (a tmpfs over its path inside
    that node) refuses the file work and says which node.
 D. `herd disk resize` grows a disk (qemu-img info shows it), by a new size
    or by +SIZE; shrinking or the same size is refused.
 E. A disk a VM uses (a VM defined from XML that names its file) is not
    deleted; while that VM runs, it is not resized either.
 F. `herd disk delete` removes the disk and its file.
 G. `herd iso upload` on n3 streams a small ISO into the cluster share;
    `herd iso list` on n1 shows it with the checksum the upload printed;
    bad uploads (name taken, no such file, too large) are refused and an
    upload cut off midway (the client killed; a body shorter than its
    Content-Length) leaves no ISO and no file; `herd iso delete` removes it.

    tests/cluster/test_disk.py        (as root, after ninja -C build)
"""
import json
import os
import re
import subprocess
import sys

_here = os.path.dirname(os.path.realpath(__file__))
sys.path[:0] = [_here, os.path.dirname(_here)]  # harness.py here, testlib.py in tests/
from testlib import check, check_expected, expect, run_test, say, wait_until  # noqa: E402
from halib import Ha, HaNodes, Workdir, add_dir_storage  # noqa: E402

INSTANCE = "disk"
MiB = 1 << 20


def img_info(path):
    p = subprocess.run(["qemu-img", "info", "-U", "--output", "json", path],
                       capture_output=True, text=True)
    check(p.returncode == 0, f"qemu-img info {path}: {p.stderr.strip()}")
    return json.loads(p.stdout)


def disks(ha, i):
    return {d["name"]: d for d in ha.json(i, "disk", "list")}


def images(store):
    d = os.path.join(store, "images")
    return sorted(os.listdir(d)) if os.path.isdir(d) else []


def create_and_list(tn, ha, store):
    ha.ok(1, "disk", "create", "d1", "--size", "64M", "--storage", "store1")
    out = ha.ok(2, "disk", "create", "d2", "--size", "32M", "--storage", "store1",
                "--format", "raw").stdout
    say(f"  {out.strip()}")
    info = img_info(os.path.join(store, "images", "d1.qcow2"))
    expect(info["format"] == "qcow2" and info["virtual-size"] == 64 * MiB,
           f"d1.qcow2: {info['format']}, {info['virtual-size']} bytes")
    info = img_info(os.path.join(store, "images", "d2.raw"))
    expect(info["format"] == "raw" and info["virtual-size"] == 32 * MiB,
           f"d2.raw: {info['format']}, {info['virtual-size']} bytes")
    # raw is sparse: it takes (next to) nothing on the storage
    st = os.stat(os.path.join(store, "images", "d2.raw"))
    expect(st.st_blocks * 512 < MiB, f"d2.raw takes {st.st_blocks * 512} bytes")
    ds = disks(ha, 3)
    expect(set(ds) == {"d1", "d2"}, f"disk list on n3: {sorted(ds)}")
    expect(ds["d1"]["size"] == 64 * MiB and ds["d1"]["format"] == "qcow2" and
           ds["d1"]["storage"] == "store1" and isinstance(ds["d1"]["used"], int) and
           ds["d1"]["used"] > 0 and ds["d1"]["vm"] is None, f"d1 as n3 lists it: {ds['d1']}")
    expect(ds["d2"]["size"] == 32 * MiB and ds["d2"]["format"] == "raw" and
           ds["d2"]["used"] == st.st_blocks * 512, f"d2 as n3 lists it: {ds['d2']}")
    text = ha.ok(3, "disk", "list").stdout
    say("  herd disk list:\n" + text.rstrip())
    expect(re.search(r"^d1\s+store1\s+qcow2\s+64 MiB\s+\S+", text, re.M) and
           re.search(r"^d2\s+store1\s+raw\s+32 MiB\s+", text, re.M), f"herd disk list:\n{text}")
    text = ha.ok(2, "disk", "show", "d1").stdout
    expect(re.search(r"^Size:\s+64 MiB$", text, re.M) and
           os.path.join(store, "images", "d1.qcow2") in text, f"herd disk show d1:\n{text}")


def bad_input(tn, ha, store):
    before = disks(ha, 1)
    files = images(store)
    stray = os.path.join(store, "images", "d3.qcow2")
    with open(stray, "w") as f:
        f.write("not herd's\n")
    for args, pattern in [
        (["disk", "create", "d3", "--size", "lots", "--storage", "store1"], r"'lots' is not a size"),
        (["disk", "create", "d3", "--size", "0", "--storage", "store1"], r"more than nothing"),
        (["disk", "create", "d3", "--size", "65T", "--storage", "store1"], r"too large: at most 64 TiB"),
        (["disk", "create", "d3", "--size", "1000", "--storage", "store1"], r"512-byte sectors"),
        (["disk", "create", "d3", "--size", "-1G", "--storage", "store1"], r"not a size"),
        (["disk", "create", "bad/name", "--size", "1G", "--storage", "store1"], r"name"),
        (["disk", "create", ".hidden", "--size", "1G", "--storage", "store1"], r"name"),
        (["disk", "create", "d3", "--size", "1G", "--storage", "store1", "--format", "vmdk"],
         r"Unknown disk format 'vmdk'"),
        (["disk", "create", "d3", "--size", "1G", "--storage", "nosuch"], r"Storage 'nosuch' is not defined"),
        (["disk", "create", "d3", "--size", "1G"], r"give --size SIZE and --storage"),
        (["disk", "create", "d1", "--size", "1G", "--storage", "store1"], r"Disk d1 exists already"),
        (["disk", "create", "d3", "--size", "1G", "--storage", "store1"],
         r"A file is at .*/images/d3.qcow2 already; herd does not overwrite it"),
        (["disk", "show", "nosuch"], r"Disk 'nosuch' is not defined"),
        (["disk", "delete", "nosuch"], r"Disk 'nosuch' is not defined"),
        (["disk", "resize", "nosuch", "--size", "+1G"], r"Disk 'nosuch' is not defined"),
        (["disk", "resize", "d1", "--size", "1T0"], r"not a size"),
        (["disk", "resize", "d1"], r"give --size"),
        (["storage", "add", "s9", "--type", "dir", "--path", "/nonexistent/herd-test"],
         r"/nonexistent/herd-test is not a directory on node n2"),
        (["storage", "add", "s9", "--type", "dir", "--path", store],
         r"Storage store1 is at .* already"),
    ]:
        ha.refused(2, args, pattern)
    with open(stray) as f:
        expect(f.read() == "not herd's\n", "the stray file was changed")
    os.unlink(stray)
    expect(disks(ha, 3).keys() == before.keys(), f"disks after bad input: {sorted(disks(ha, 3))}")
    expect(images(store) == files, f"images after bad input: {images(store)} (before {files})")


def unreachable(tn, ha, store):
    """Inside n2 a tmpfs hides the storage: n2 refuses, naming itself."""
    tn.exec(2, "mount", "-t", "tmpfs", "tmpfs", store, check=True)
    try:
        ha.refused(2, ["disk", "create", "d4", "--size", "1G", "--storage", "store1"],
                   r"Storage store1 is not reachable on node n2: .* has no marker file")
        ha.refused(2, ["disk", "delete", "d1"],
                   r"Storage store1 is not reachable on node n2.*Delete disk d1 from a node that reaches")
        ha.refused(2, ["disk", "resize", "d1", "--size", "+1M"], r"not reachable on node n2")
        ds = disks(ha, 2)
        expect(ds["d1"]["used"] is None and "d4" not in ds, f"disks as n2 lists them: {ds}")
        expect(re.search(r"^d1\s.*64 MiB\s+-\s", ha.ok(2, "disk", "list").stdout, re.M),
               "n2's disk list does not show '-' for the space d1 uses")
    finally:
        tn.exec(2, "umount", store, check=True)
    expect("d4.qcow2" not in images(store), "d4's file was made")


def resize(tn, ha, store):
    out = ha.ok(3, "disk", "resize", "d1", "--size", "+32M").stdout
    expect("96 MiB" in out, f"herd disk resize d1 --size +32M: {out}")
    info = img_info(os.path.join(store, "images", "d1.qcow2"))
    expect(info["virtual-size"] == 96 * MiB, f"d1 after +32M: {info['virtual-size']}")
    ha.ok(1, "disk", "resize", "d2", "--size", "40M")
    info = img_info(os.path.join(store, "images", "d2.raw"))
    expect(info["virtual-size"] == 40 * MiB, f"d2 after 40M: {info['virtual-size']}")
    expect(os.stat(os.path.join(store, "images", "d2.raw")).st_size == 40 * MiB, "d2.raw's length")
    ha.refused(2, ["disk", "resize", "d1", "--size", "32M"], r"never shrinks")
    ha.refused(2, ["disk", "resize", "d1", "--size", "96M"], r"Disk d1 is 96 MiB already")
    ha.refused(2, ["disk", "resize", "d1", "--size", "+70T"], r"at most 64 TiB")
    ds = disks(ha, 2)
    expect(ds["d1"]["size"] == 96 * MiB and ds["d2"]["size"] == 40 * MiB, f"sizes: {ds}")


def in_use(tn, ha, store):
    path = os.path.join(store, "images", "d2.raw")
    ha.define("v1", ha=False, image=path)
    expect(disks(ha, 2)["d2"]["vm"] == "v1", "disk list does not show v1 using d2")
    ha.refused(3, ["disk", "delete", "d2"], r"Disk d2 is in use by VM v1")
    ha.ok(1, "vm", "start", "v1")
    ha.refused(2, ["disk", "resize", "d2", "--size", "+1M"],
               r"in use by VM v1, which runs on node n\d.*Shut VM v1 down first")
    ha.ok(1, "vm", "destroy", "v1")
    ha.ok(1, "vm", "undefine", "v1")
    expect(os.path.exists(path), "d2's file went with the VM")


def delete(tn, ha, store):
    out = ha.ok(2, "disk", "delete", "d1").stdout
    expect("file removed" in out, f"herd disk delete d1: {out}")
    ha.ok(3, "disk", "delete", "d2")
    expect(disks(ha, 1) == {}, f"disks left: {disks(ha, 1)}")
    expect(images(store) == [], f"files left: {images(store)}")


def main():
    with Workdir(INSTANCE) as tmp, HaNodes(INSTANCE, 3) as tn:
        ha = Ha(tn, tmp)
        store = os.path.join(tmp, "store1")
        add_dir_storage(ha, "store1", store)
        add_dir_storage(ha, "share", os.path.join(tmp, "share"), share=True, i=2)
        for step in (create_and_list, bad_input, unreachable, resize, in_use, delete):
            say(f"-- {step.__name__}")
            step(tn, ha, store)
        check_expected()


if __name__ == "__main__":
    sys.exit(run_test(main, root=True))

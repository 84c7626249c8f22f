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
    deleted; while that VM runs, a resize asked on another node grows it
    live (libvirt's block resize on the VM's node: the file and QEMU's view
    of it grow), and a shrink is still refused.
 F. `herd disk delete` removes the disk and its file.
 G. `herd iso upload` on n3 streams a small ISO into the cluster share;
    `herd iso list` on n1 shows it with the checksum the upload printed;
    bad uploads (name taken, no such file, too large) are refused and an
    upload cut off midway (the client killed; a body shorter than its
    Content-Length) leaves no ISO and no file; `herd iso delete` removes it.

    tests/cluster/test_disk.py        (as root, after ninja -C build)
"""
import contextlib
import hashlib
import json
import os
import re
import subprocess
import sys

_here = os.path.dirname(os.path.realpath(__file__))
sys.path[:0] = [_here, os.path.dirname(_here)]  # harness.py here, testlib.py in tests/
from testlib import (check, check_expected, expect, guest_xml, make_iso, run_test, say,  # noqa: E402
                     wait_until)
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
         r"Directory /nonexistent/herd-test does not exist on node n2"),
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


@contextlib.contextmanager
def hung_storage(tn, i, path):
    """Inside node i, @path hangs like a dead NFS mount: its marker file is
    a FIFO that nobody writes, so opening it blocks."""
    tn.exec(i, "mount", "-t", "tmpfs", "tmpfs", path, check=True)
    marker = os.path.join(path, ".herd-storage")
    try:
        tn.exec(i, "mkfifo", marker, check=True)
        yield
    finally:
        # let the hung readers go, then the mount
        tn.exec(i, "timeout", "5", "sh", "-c", f"echo > {marker}")
        tn.exec(i, "umount", "-l", path, check=True)


def hung(tn, ha, store):
    """A storage that hangs on n2: n2 answers in bounded time and keeps
    serving meanwhile."""
    with hung_storage(tn, 2, store):
        ha.refused(2, ["disk", "create", "d5", "--size", "1M", "--storage", "store1"],
                   r"Checking the storage did not finish within 5 s on node n2 \(a hung mount\?\)")
        ha.refused(2, ["disk", "delete", "d1"], r"did not finish within 5 s on node n2")
        ha.ok(2, "status")
        expect(disks(ha, 1).keys() == {"d1", "d2"}, "disks after the hung storage")
    expect("d5.qcow2" not in images(store), "d5's file was made")


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
    ro = os.path.join(store, "images", "d1.qcow2")
    # the test guest (its own disk read-only) with d2 as a second, writable
    # disk and d1 as a third, read-only one
    xml = guest_xml("v1", serial_log=ha.serial_log("v1"), image=ha.image)
    xml = xml.replace("    <controller type='usb'",
                      f"    <disk type='file' device='disk'>\n      <driver name='qemu' type='raw'/>\n"
                      f"      <source file='{path}'/>\n      <target dev='vdb' bus='virtio'/>\n"
                      f"    </disk>\n"
                      f"    <disk type='file' device='disk'>\n      <driver name='qemu' type='qcow2'/>\n"
                      f"      <source file='{ro}'/>\n      <target dev='vdc' bus='virtio'/>\n"
                      f"      <readonly/>\n    </disk>\n    <controller type='usb'", 1)
    check(f"'{path}'" in xml, "no second disk in v1's XML")
    xml_path = os.path.join(ha.tmp, "v1.xml")
    with open(xml_path, "w") as f:
        f.write(xml)
    ha.ok(1, "vm", "define", xml_path)
    expect(disks(ha, 2)["d2"]["vm"] == "v1", "disk list does not show v1 using d2")
    ha.refused(3, ["disk", "delete", "d2"], r"Disk d2 is in use by VM v1")
    ha.refused(3, ["disk", "delete", "d1"], r"Disk d1 is in use by VM v1")
    ha.ok(1, "vm", "start", "v1")
    node = ha.json(1, "vm", "info", "v1")["node"]
    other = 3 if node == "n2" else 2
    out = ha.ok(other, "disk", "resize", "d2", "--size", "+8M").stdout
    expect("48 MiB now (grown live: VM v1 sees it)" in out, f"herd disk resize d2 on n{other}: {out}")
    info = img_info(path)
    expect(info["virtual-size"] == 48 * MiB, f"d2 after growing live: {info['virtual-size']}")
    # QEMU's own view of it, asked in the VM's node
    p = tn.exec(int(node[1:]), "virsh", "-q", "domblkinfo", "v1", path)
    expect(re.search(rf"Capacity:\s+{48 * MiB}\b", p.stdout), f"virsh domblkinfo v1: {p.stdout}{p.stderr}")
    expect(disks(ha, 1)["d2"]["size"] == 48 * MiB, "d2's size in the store")
    ha.refused(other, ["disk", "resize", "d2", "--size", "40M"], r"never shrinks")
    # what QEMU refuses (a read-only disk) is refused, and nothing changes
    ha.refused(other, ["disk", "resize", "d1", "--size", "+1M"],
               r"Disk d1 could not be grown live in VM v1: .*readonly.* Nothing changed")
    expect(img_info(ro)["virtual-size"] == 96 * MiB and disks(ha, 1)["d1"]["size"] == 96 * MiB,
           "d1 changed after a refused live resize")
    ha.ok(1, "vm", "destroy", "v1")
    ha.ok(1, "vm", "undefine", "v1")
    expect(os.path.exists(path), "d2's file went with the VM")


def delete(tn, ha, store):
    out = ha.ok(2, "disk", "delete", "d1").stdout
    expect("file removed" in out, f"herd disk delete d1: {out}")
    ha.ok(3, "disk", "delete", "d2")
    expect(disks(ha, 1) == {}, f"disks left: {disks(ha, 1)}")
    expect(images(store) == [], f"files left: {images(store)}")


# A client that sends part of a body: PUT headers announcing @length bytes,
# then @sent bytes, then either closes the connection ("close") or waits to
# be killed ("hang").  Through the node's own API socket.
PARTIAL_CLIENT = r"""
import os, socket, sys, time
name, length, sent, how = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
s = socket.socket(socket.AF_UNIX)
s.connect("/run/herd/herd.sock")
s.sendall(f"PUT /api/v1/isos/{name} HTTP/1.1\r\nHost: localhost\r\n"
          f"Content-Length: {length}\r\n\r\n".encode())
chunk = b"x" * 65536
while sent > 0:
    s.sendall(chunk[:min(sent, len(chunk))])
    sent -= min(sent, len(chunk))
print("sent", os.getpid(), flush=True)
if how == "hang":
    time.sleep(3600)
s.close()
"""


def isos(ha, i):
    return {x["name"]: x for x in ha.json(i, "iso", "list")}


def share_files(share):
    return sorted(os.listdir(os.path.join(share, "isos")))


def iso_upload(tn, ha, share):
    src = os.path.join(ha.tmp, "iso-src")
    os.makedirs(src, exist_ok=True)
    with open(os.path.join(src, "hello.txt"), "w") as f:
        f.write("herd test ISO\n")
    iso = os.path.join(ha.tmp, "tiny.iso")
    make_iso(iso, src, "TINY")
    with open(iso, "rb") as f:
        want = hashlib.sha256(f.read()).hexdigest()
    out = ha.ok(3, "iso", "upload", iso).stdout
    say(f"  {out.strip()}")
    expect(want in out, f"herd iso upload printed no SHA-256 {want}: {out}")
    ls = isos(ha, 1)
    expect(set(ls) == {"tiny.iso"} and ls["tiny.iso"]["sha256"] == want and
           ls["tiny.iso"]["size"] == os.path.getsize(iso), f"iso list on n1: {ls}")
    text = ha.ok(1, "iso", "list").stdout
    say("  herd iso list:\n" + text.rstrip())
    expect(re.search(rf"^tiny\.iso\s+\S+ KiB\s+{want}\s+-$", text, re.M), f"herd iso list:\n{text}")
    with open(os.path.join(share, "isos", "tiny.iso"), "rb") as f:
        expect(hashlib.sha256(f.read()).hexdigest() == want, "the stored ISO differs from the file")
    # over HTTPS from another node, with the admin's credentials, under another name
    pw = os.path.join(tn.tn.dir, "admin-password")
    out = ha.ok(2, "--host", "n1", "-k", "--user", "admin", "--password-file", pw,
                "iso", "upload", iso, "--name", "tiny2.iso").stdout
    expect(want in out, f"herd --host n1 iso upload: {out}")
    expect(share_files(share) == ["tiny.iso", "tiny2.iso"], f"isos/: {share_files(share)}")


def iso_refused(tn, ha, share):
    iso = os.path.join(ha.tmp, "tiny.iso")
    big = os.path.join(ha.tmp, "big.iso")
    with open(big, "wb") as f:
        f.truncate((64 << 30) + 1)  # sparse: one byte over the limit
    empty = os.path.join(ha.tmp, "empty.iso")
    open(empty, "w").close()
    pw = os.path.join(tn.tn.dir, "admin-password")
    wrong = os.path.join(ha.tmp, "wrong-password")
    with open(wrong, "w") as f:
        f.write("not-the-password\n")
    for i, args, pattern in [
        (3, ["iso", "upload", iso], r"ISO tiny.iso exists already"),
        (3, ["iso", "upload", os.path.join(ha.tmp, "nosuch.iso")], r"Cannot upload .*nosuch.iso: No such file"),
        (3, ["iso", "upload", ha.tmp], r"not a regular file"),
        (3, ["iso", "upload", iso, "--name", "bad/name"], r"name"),
        (3, ["iso", "upload", iso, "--name", ".hidden"], r"name"),
        (3, ["iso", "upload", big], r"ISO big.iso is 68719476737 bytes: an ISO has at most 64 GiB"),
        (3, ["iso", "upload", empty], r"ISO empty.iso is empty"),
        (2, ["--host", "n1", "-k", "--user", "admin", "--password-file", wrong, "iso", "upload", iso,
             "--name", "x.iso"], r"password|credentials|authenticat"),
        (3, ["iso", "delete", "nosuch"], r"ISO 'nosuch' is not defined"),
    ]:
        ha.refused(i, args, pattern)
    expect(set(isos(ha, 2)) == {"tiny.iso", "tiny2.iso"}, f"ISOs after bad uploads: {sorted(isos(ha, 2))}")
    expect(share_files(share) == ["tiny.iso", "tiny2.iso"], f"isos/ after bad uploads: {share_files(share)}")

    with hung_storage(tn, 1, share):
        ha.refused(1, ["iso", "upload", iso, "--name", "t4.iso"],
                   r"Opening a file on the cluster share did not finish within 5 s on node n1")

    # the share hidden on n2
    tn.exec(2, "mount", "-t", "tmpfs", "tmpfs", share, check=True)
    try:
        ha.refused(2, ["iso", "upload", iso, "--name", "t3.iso"],
                   r"Storage share is not reachable on node n2")
        ha.refused(2, ["iso", "delete", "tiny2.iso"], r"not reachable on node n2")
    finally:
        tn.exec(2, "umount", share, check=True)

    # cut off: a body shorter than its Content-Length, then the connection closed
    p = tn.exec(3, "python3", "-c", PARTIAL_CLIENT, "cut.iso", str(8 << 20), str(3 << 20), "close",
                check=True)
    wait_until(lambda: share_files(share) == ["tiny.iso", "tiny2.iso"], 30,
               f"the cut-off upload's temporary file to go (isos/: {share_files(share)})")
    expect("cut.iso" not in isos(ha, 1), "the cut-off upload is an ISO")
    say("  an upload cut off after 3 of 8 MiB left nothing")

    # killed: the client dies mid-upload (its temporary file is there meanwhile)
    proc = subprocess.Popen(tn.tn.node_argv(3, ["python3", "-c", PARTIAL_CLIENT, "killed.iso",
                                                 str(64 << 20), str(5 << 20), "hang"]),
                            env=tn.tn.node_env(3), stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline().split()
        check(line[:1] == ["sent"], "the partial client did not send")
        wait_until(lambda: any(f.startswith(".upload-") for f in share_files(share)), 30,
                   "the upload's temporary file")
        expect("killed.iso" not in isos(ha, 1), "an upload under way is listed as an ISO")
        tn.exec(3, "kill", "-KILL", line[1], check=True)  # its pid inside n3
    finally:
        proc.kill()
        proc.wait()
    wait_until(lambda: share_files(share) == ["tiny.iso", "tiny2.iso"], 30,
               f"the killed upload's temporary file to go (isos/: {share_files(share)})")
    expect("killed.iso" not in isos(ha, 1), "the killed upload is an ISO")
    say("  an upload whose client was killed midway left nothing")
    # herd still serves uploads
    ha.ok(3, "iso", "upload", iso, "--name", "after.iso")
    ha.ok(3, "iso", "delete", "after.iso")


def herdd_peak_kib(tn, i):
    """herdd's peak resident memory (VmHWM) in node i, KiB."""
    pid = tn.exec(i, "pidof", "herdd", check=True).stdout.split()[0]
    status = tn.exec(i, "cat", f"/proc/{pid}/status", check=True).stdout
    return int(re.search(r"^VmHWM:\s+(\d+) kB", status, re.M)[1])


def iso_large(tn, ha, share):
    """A 512 MiB upload: herdd's memory stays bounded (its peak grows by far
    less than the image), and the checksums agree."""
    big = os.path.join(ha.tmp, "large.iso")
    with open(big, "wb") as f:
        block = os.urandom(1 << 20)
        for _ in range(512):
            f.write(block)
    before = herdd_peak_kib(tn, 1)
    out = ha.ok(1, "iso", "upload", big, timeout=300).stdout
    after = herdd_peak_kib(tn, 1)
    say(f"  {out.strip()}; herdd's peak memory {before // 1024} -> {after // 1024} MiB")
    expect(after - before < 64 * 1024, f"herdd's peak memory grew by {(after - before) // 1024} MiB "
                                       f"for a 512 MiB upload")
    with open(big, "rb") as f:
        want = hashlib.sha256(f.read()).hexdigest()
    expect(isos(ha, 2)["large.iso"]["sha256"] == want and want in out, "large.iso's checksum")
    os.unlink(big)
    ha.ok(1, "iso", "delete", "large.iso")


def iso_delete(tn, ha, share):
    ha.ok(1, "iso", "delete", "tiny.iso")
    ha.ok(2, "iso", "delete", "tiny2.iso")
    expect(isos(ha, 3) == {}, f"ISOs left: {isos(ha, 3)}")
    expect(share_files(share) == [], f"isos/ left: {share_files(share)}")


def main():
    with Workdir(INSTANCE) as tmp, HaNodes(INSTANCE, 3) as tn:
        ha = Ha(tn, tmp)
        store = os.path.join(tmp, "store1")
        add_dir_storage(ha, "store1", store)
        share = os.path.join(tmp, "share")
        ha.refused(1, ["iso", "upload", "/etc/hostname"], r"There is no cluster share for ISOs")
        add_dir_storage(ha, "share", share, share=True, i=2)
        for step in (create_and_list, bad_input, unreachable, hung, resize, in_use, delete):
            say(f"-- {step.__name__}")
            step(tn, ha, store)
        for step in (iso_upload, iso_refused, iso_large, iso_delete):
            say(f"-- {step.__name__}")
            step(tn, ha, share)
        check_expected()


if __name__ == "__main__":
    sys.exit(run_test(main, root=True))

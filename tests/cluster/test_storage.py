#!/usr/bin/python3
"""Storages and their reach on real test nodes (issue 10).

Three nodes; the storage is a directory under the host's /tmp, which every
node sees at the same path (the stand-in for a cluster filesystem).

 A. Bad input -- no type, an unknown type, a dir without a path, a relative
    or unclean path, a field of the other type, a directory that does not
    exist or is a file, a bad name, a bad iSCSI portal or target, an iSCSI
    cluster share, a directory marked by another cluster -- each refused with
    a sentence, and nothing changed (no storage, no marker written, the
    foreign marker as it was).
 B. `herd storage add data1 --type dir --path P --cluster-share` on n2: the
    marker and the share's directories are made; every node reaches it and
    shows its size and free space; the same name or an overlapping path is
    refused.
 C. An empty tmpfs mounted over P inside n3 (a mount that failed): n3
    reports the storage unreachable, with the reason, in `herd storage
    list`, `storage show` and its node JSON -- and does not write a marker
    into the empty mount point.  A check that hangs (a FIFO as the marker,
    whose open() blocks as a dead NFS server's files do) is reported "not
    answering" while herdd on n3 goes on answering; an add whose directory
    hangs is refused after 10 s, nothing changed.
 D. A VM whose disk (the test guest's image, copied onto the storage) lies
    on it, defined from XML, with n1 and n2 in standby: started, it stays
    stopped, with an alert that names the storage (n3 does not reach it);
    n2 back online: it starts there.  Taken out of n3's way again (the
    tmpfs unmounted), n3 reaches it again.
 E. `herd storage remove`: gone from the list; the marker stays on disk.
"""
import json
import os
import re
import shutil
import subprocess
import sys

_here = os.path.dirname(os.path.realpath(__file__))
sys.path[:0] = [_here, os.path.dirname(_here)]  # harness.py here, testlib.py in tests/
from testlib import check, check_expected, expect, run_test, say, wait_until  # noqa: E402
from halib import Ha, HaNodes, Workdir, qemu_pids, table  # noqa: E402

INSTANCE = "stor"
MARKER = ".herd-storage"


def storages(ha, i=1):
    """{name: storage JSON} from `herd storage list --json` on node i."""
    return {s["name"]: s for s in ha.json(i, "storage", "list")}


def reach(ha, name, i=1):
    """{node: reach entry} of storage name, as node i shows it."""
    return storages(ha, i).get(name, {}).get("nodes", {})


def wait_reach(ha, name, want, what, timeout=40):
    """Until every node's "ok" for storage name is as want ({node: bool});
    returns the entries."""
    last = {}

    def ok():
        nonlocal last
        last = reach(ha, name)
        return last if all(last.get(n, {}).get("ok") is w for n, w in want.items()) else None
    try:
        return wait_until(ok, timeout, what)
    except Exception as e:
        raise type(e)(f"{e}; last: {last}") from None


# ---------------------------------------------------------------- A

def bad_input(tn, ha, tmp):
    say("== A. bad input is refused with a sentence, and changes nothing")
    data = os.path.join(tmp, "data1")
    os.mkdir(data)
    a_file = os.path.join(tmp, "a-file")
    with open(a_file, "w") as f:
        f.write("not a directory\n")
    foreign = os.path.join(tmp, "foreign")
    os.mkdir(foreign)
    foreign_marker = json.dumps({"cluster": "dddddddd-dddd-4ddd-8ddd-dddddddddddd",
                                 "storage": "eeeeeeee-eeee-4eee-8eee-eeeeeeeeeeee",
                                 "name": "theirs"}) + "\n"
    with open(os.path.join(foreign, MARKER), "w") as f:
        f.write(foreign_marker)
    missing = os.path.join(tmp, "missing")
    cases = [
        (["storage", "add", "s1"], r"give --type", 2, "no type"),
        (["storage", "add", "s1", "--type", "nfs", "--path", data], r"'type'.*dir.*iscsi", None,
         "unknown type"),
        (["storage", "add", "s1", "--type", "dir"], r"'path' must be an absolute path", None,
         "dir without a path"),
        (["storage", "add", "s1", "--type", "dir", "--path", "data1"], r"'path' must be an absolute path",
         None, "relative path"),
        (["storage", "add", "s1", "--type", "dir", "--path", data + "/"], r"no .*trailing '/'", None,
         "trailing slash"),
        (["storage", "add", "s1", "--type", "dir", "--path", tmp + "/../" + os.path.basename(tmp)],
         r"'path' must be an absolute path in plain form", None, "path with .."),
        (["storage", "add", "s1", "--type", "dir", "--path", data, "--portal", "10.0.0.5"],
         r"A dir storage has no field 'portal'", None, "dir with a portal"),
        (["storage", "add", "s1", "--type", "dir", "--path", missing],
         rf"Directory {re.escape(missing)} does not exist on node n1\.", None, "missing directory"),
        (["storage", "add", "s1", "--type", "dir", "--path", a_file],
         rf"{re.escape(a_file)} is not a directory on node n1\.", None, "a file"),
        (["storage", "add", "bad name!", "--type", "dir", "--path", data], r"name", None, "bad name"),
        (["storage", "add", "s1", "--type", "iscsi", "--portal", "10.0.0.5:99999", "--target",
          "iqn.2026-01.org.example:t1"], r"'portal' must be HOST or HOST:PORT", None, "bad port"),
        (["storage", "add", "s1", "--type", "iscsi", "--portal", "10.0.0.5", "--target", "IQN.bad"],
         r"'target' must be an iSCSI name", None, "bad IQN"),
        (["storage", "add", "s1", "--type", "iscsi", "--portal", "10.0.0.5", "--target",
          "iqn.2026-01.org.example:t1", "--path", data], r"An iSCSI storage has no field 'path'", None,
         "iSCSI with a path"),
        (["storage", "add", "s1", "--type", "iscsi", "--portal", "10.0.0.5", "--target",
          "iqn.2026-01.org.example:t1", "--cluster-share"], r"cluster share must be a dir storage",
         None, "iSCSI cluster share"),
        (["storage", "add", "s1", "--type", "dir", "--path", foreign],
         r"is a storage of another cluster \(dddddddd-.*does not take it over", None,
         "another cluster's marker"),
        (["storage", "show", "nosuch"], r"nosuch", None, "unknown storage"),
        (["storage", "remove", "nosuch"], r"nosuch", None, "remove an unknown storage"),
    ]
    for args, pattern, rc, what in cases:
        ha.refused(1, args, pattern, rc=rc, what=what)
    expect(storages(ha, 2) == {}, f"storages after refused adds: {storages(ha, 2)}")
    expect(not os.path.exists(os.path.join(data, MARKER)), "a refused add left a marker in data1")
    expect(not os.path.exists(missing), "a refused add made the missing directory")
    with open(os.path.join(foreign, MARKER)) as f:
        expect(f.read() == foreign_marker, "the other cluster's marker was changed")


# ---------------------------------------------------------------- B

def add_share(tn, ha, tmp):
    say("== B. a dir storage (the cluster share): marked, reached by every node")
    data = os.path.join(tmp, "data1")
    p = ha.ok(2, "storage", "add", "data1", "--type", "dir", "--path", data, "--cluster-share")
    say(f"  {p.stdout.strip()}")
    with open(os.path.join(data, MARKER)) as f:
        marker = json.loads(f.read())
    uuid = storages(ha, 1)["data1"]["uuid"]
    cluster_uuid = ha.json(1, "cluster", "status").get("uuid")
    expect(marker["storage"] == uuid and marker["name"] == "data1" and
           (cluster_uuid is None or marker["cluster"] == cluster_uuid),
           f"the marker {marker} for storage {uuid} of cluster {cluster_uuid}")
    for d in ("images", "isos", "templates", "snapshots"):
        expect(os.path.isdir(os.path.join(data, d)), f"the cluster share has no {d}/")
    entries = wait_reach(ha, "data1", {"n1": True, "n2": True, "n3": True},
                         "every node to reach data1")
    expect(all(e.get("size", 0) > 0 and 0 <= e.get("free", -1) <= e["size"] for e in entries.values()),
           f"data1's size and free space per node: {entries}")
    text = ha.ok(3, "storage", "list").stdout
    say("  herd storage list:\n" + text.rstrip())
    expect(re.search(r"data1\s+dir \(share\)\s+" + re.escape(data) + r"\s+n1\s+reachable", text) and
           text.count("reachable") == 3, f"storage list:\n{text}")
    ha.refused(3, ["storage", "add", "data1", "--type", "dir", "--path", tmp],
               r"Storage data1 exists already", what="the same name")
    sub = os.path.join(data, "images")
    ha.refused(3, ["storage", "add", "data2", "--type", "dir", "--path", sub],
               r"Storage data1 is at .* already: storages may not overlap", what="overlapping path")
    ha.refused(1, ["storage", "add", "data2", "--type", "dir", "--path", tmp, "--cluster-share"],
               r"data1 is the cluster share already", what="a second cluster share")
    expect(list(storages(ha, 1)) == ["data1"], f"storages after refused adds: {list(storages(ha, 1))}")
    return uuid


# ---------------------------------------------------------------- C

def lost_on_n3(tn, ha, tmp, uuid):
    say("== C. an empty mount over the storage on n3: unreachable there, with the reason")
    data = os.path.join(tmp, "data1")
    p = tn.exec(3, "mount", "-t", "tmpfs", "none", data)
    check(p.returncode == 0, f"mount tmpfs over {data} in n3: {p.stderr.strip()}")
    entries = wait_reach(ha, "data1", {"n1": True, "n2": True, "n3": False},
                         "n3 to report data1 unreachable")
    problem = entries["n3"].get("problem", "")
    expect(f"{data} has no marker file {MARKER}" in problem, f"n3's reason: {problem!r}")
    text = ha.ok(1, "storage", "list").stdout
    say("  herd storage list:\n" + text.rstrip())
    expect(re.search(r"n3\s+unreachable: " + re.escape(data) + " has no marker file", text),
           f"storage list does not show n3's problem:\n{text}")
    shown = ha.ok(2, "storage", "show", "data1").stdout
    expect("unreachable" in shown and "n3" in shown, f"storage show:\n{shown}")
    nodes = ha.nodes(1)
    r3 = (nodes["n3"].get("herd") or {}).get("reach", {}).get(uuid, {})
    r1 = (nodes["n1"].get("herd") or {}).get("reach", {}).get(uuid, {})
    expect(r3.get("ok") is False and "no marker" in r3.get("problem", "") and r1.get("ok") is True,
           f"node list --json: n1 {r1}, n3 {r3}")
    p = tn.exec(3, "ls", "-A", data)
    expect(p.returncode == 0 and p.stdout.strip() == "",
           f"n3 wrote into the empty mount point: {p.stdout.strip()!r}")

    say("== C2. a check that hangs (a FIFO as the marker: its open() blocks, as on a dead NFS "
        "server) is 'not answering', and herdd goes on answering")
    fifo = os.path.join(data, MARKER)
    tn.exec(3, "mkfifo", fifo, check=True)
    try:
        entries = wait_until(lambda: (lambda r: r if "not answering" in r.get("n3", {}).get("problem", "")
                                      else None)(reach(ha, "data1", i=3)),
                             40, "n3 to report data1 not answering")
        say(f"  n3: {entries['n3']['problem']}")
        p = ha.ok(3, "node", "list")
        expect(p.returncode == 0, "herdd on n3 does not answer while its check hangs")
        ha.refused(3, ["storage", "add", "data2", "--type", "dir", "--path",
                       os.path.join(tmp, "x")], r"does not exist on node n3", what="add on n3 meanwhile")
    finally:
        # A writer lets the blocked open() return (and read a line that is
        # no marker).
        tn.exec(3, "sh", "-c", f"echo > {fifo}", timeout=10)
    wait_until(lambda: (lambda r: r if "another cluster's" in r.get("n3", {}).get("problem", "")
                        else None)(reach(ha, "data1")),
               40, "n3's hung check to return")
    tn.exec(3, "rm", "-f", fifo, check=True)
    wait_until(lambda: "no marker file" in reach(ha, "data1").get("n3", {}).get("problem", ""), 40,
               "n3 to report the empty mount point again")

    say("== C3. adding a storage whose directory hangs: refused after a while, nothing changed")
    hung = os.path.join(tmp, "hung")
    os.mkdir(hung)
    tn.exec(3, "mount", "-t", "tmpfs", "none", hung, check=True)
    tn.exec(3, "mkfifo", os.path.join(hung, MARKER), check=True)
    try:
        ha.refused(3, ["storage", "add", "hung", "--type", "dir", "--path", hung],
                   rf"Directory {re.escape(hung)} is not answering on node n3 .*the storage was not added",
                   what="a directory that hangs")
    finally:
        tn.exec(3, "sh", "-c", f"echo > {os.path.join(hung, MARKER)}", timeout=10)
    expect(list(storages(ha, 1)) == ["data1"], f"storages after the hung add: {list(storages(ha, 1))}")
    tn.exec(3, "umount", hung)


# ---------------------------------------------------------------- D

def vm_placed_where_reached(tn, ha, tmp):
    say("== D. a VM on the storage is never placed on n3")
    data = os.path.join(tmp, "data1")
    img = os.path.join(data, "images", "s1.img")
    shutil.copyfile(ha.image, img)
    ha.define("s1", ha=False, image=img)
    ha.ok(1, "node", "standby", "n1")
    ha.ok(1, "node", "standby", "n2")
    # Started on n3, which waits until it runs (or gives up after 60 s).
    start = subprocess.Popen(tn.tn.node_argv(3, ["herd", "vm", "start", "s1"]), env=tn.tn.node_env(3),
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        def alert():
            for m in ha.alerts(1):
                if m.startswith("VM s1 cannot be started"):
                    return m
            return None
        msg = wait_until(alert, 30, "an alert that s1 cannot be started")
        expect("n3: storage data1 is not reachable there" in msg, f"s1's alert: {msg!r}")
        say(f"  alert: {msg}")
        vms = ha.vms(1)
        expect(vms["s1"]["state"] != "running" and not qemu_pids(tn, ha.uuids["s1"]),
               f"s1 runs although only n3 is online: {table(vms)}")
        expect(start.poll() is None, "herd vm start s1 ended before any node could run it")
        ha.ok(1, "node", "online", "n2")
        out, err = start.communicate(timeout=90)
        expect(start.returncode == 0, f"herd vm start s1 (exit {start.returncode}): {err.strip()}")
    finally:
        if start.poll() is None:
            start.kill()
            start.wait()
    vms = ha.vms(1)
    expect(vms["s1"]["state"] == "running" and vms["s1"]["node"] == "n2",
           f"s1 once n2 is online again: {table(vms)}")
    ha.wait_counting(["s1"])
    say(f"  s1 runs on {vms['s1']['node']}")
    ha.ok(1, "node", "online", "n1")
    p = tn.exec(3, "umount", data)
    check(p.returncode == 0, f"umount {data} in n3: {p.stderr.strip()}")
    wait_reach(ha, "data1", {"n1": True, "n2": True, "n3": True}, "n3 to reach data1 again")
    say("  n3 reaches data1 again once the empty mount is gone")
    ha.ok(1, "vm", "destroy", "s1")
    ha.ok(1, "vm", "undefine", "s1")


# ---------------------------------------------------------------- E

def remove(tn, ha, tmp):
    say("== E. storage remove")
    data = os.path.join(tmp, "data1")
    p = ha.ok(3, "storage", "remove", "data1")
    say(f"  {p.stdout.strip()}")
    expect(storages(ha, 1) == {}, f"storages after remove: {list(storages(ha, 1))}")
    expect(os.path.exists(os.path.join(data, MARKER)), "the marker went with the storage")
    nodes = ha.nodes(2)
    left = {n: list((v.get("herd") or {}).get("reach", {})) for n, v in nodes.items()}
    wait_until(lambda: all(not (v.get("herd") or {}).get("reach") for v in ha.nodes(2).values()), 30,
               f"the nodes to stop reporting the removed storage (they report {left})")


def main():
    with Workdir(INSTANCE) as tmp, HaNodes(INSTANCE, 3) as tn:
        os.chmod(tmp, 0o755)
        ha = Ha(tn, tmp)
        bad_input(tn, ha, tmp)
        uuid = add_share(tn, ha, tmp)
        lost_on_n3(tn, ha, tmp, uuid)
        vm_placed_where_reached(tn, ha, tmp)
        remove(tn, ha, tmp)
        check_expected()


if __name__ == "__main__":
    sys.exit(run_test(main, root=True))

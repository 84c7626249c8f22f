#!/usr/bin/python3
"""eSAN operations around the nodes (issue 11): a storage address per node,
the host's shutdown held by the sync gate, and a replica left on a node
that was down when its disk was deleted.

Three test nodes with two links; eSAN replicates on link 1 (esan_link=1).
Disk ops (16 MiB) has its replicas on n1 and n2.

 A. n2 gets a storage address of its own, 10.99.1.102 (a second address on
    its link-1 interface, which its certificate from the join does not
    name): bad ones are refused; `herd node show` and `node list` show it;
    both replicas' nbdkits start again, n2's listening on it and n1's link
    connected to it; what is written through n1 is on n2's replica.  Set
    back to none: on 10.99.1.2 again.
 B. n2's storage link cut and ops written through n1: n2 outdated.  The
    host of n1 (the only up-to-date replica) shuts down (`testnodes
    shutdown 1`): its herdd waits and says why; once the link is healed and
    n2 is in sync, it leaves and the host goes off.
 C. With n1 off, ops is deleted (n2's replica goes).  n1 powered on: once
    its herdd is back in the cluster, its replica of the deleted disk is
    removed with its herd-san volume.

Run: meson test -C build --suite cluster esan-ops (or this file, as root).
"""
import os
import re
import sys
import threading
import time

_here = os.path.dirname(os.path.realpath(__file__))
sys.path[:0] = [_here, os.path.dirname(_here)]
from testlib import check, check_expected, expect, run_test, say, wait_until  # noqa: E402
from halib import Ha, HaNodes, Workdir, herdd_log  # noqa: E402

INSTANCE = "test-esan-ops"
STORAGE = "10.99.1.102"


def replicas(ha, name, i=1):
    """{node: (store state, herd-san's conn or None)} of eSAN disk name."""
    out = {}
    for r in ha.json(i, "disk", "show", name)["esan"]["replicas"]:
        out[r["node"]] = (r["state"], (r.get("herd_san") or {}).get("conn"))
    return out


def in_sync(ha, name, i=1):
    return all(s == "uptodate" and c == "connected" for s, c in replicas(ha, name, i).values())


def data_dir(tn, i):
    return os.path.join(tn.tn.node_dir(i), "fs", "var", "lib", "herd", "esan")


def replica(tn, i, uuid):
    with open(os.path.join(data_dir(tn, i), f"{uuid}.img"), "rb") as f:
        return f.read()


def write(tn, i, uuid, pattern, offset, timeout=60):
    """Write 64 KiB of byte pattern at offset through node i's herd-san."""
    uri = f"nbd+unix:///{uuid}?socket=/run/herd/san/{uuid}.sock"
    p = tn.exec(i, "qemu-io", "-f", "raw", "-c", f"write -P {pattern} {offset} 64k", "-c", "flush", uri,
                timeout=timeout)
    check(p.returncode == 0 and "failed" not in p.stdout + p.stderr,
          f"qemu-io on n{i}: {(p.stdout + p.stderr).strip()}")


def listening(tn, i, port):
    return tn.exec(i, "ss", "-Hltn", f"sport = :{port}").stdout


def connected_to(tn, i, port):
    return tn.exec(i, "ss", "-Htn", "state", "established", f"dport = :{port}").stdout


def storage_address(tn, ha, uuid, port):
    say("== A. n2's storage address of its own")
    tn.exec(2, "ip", "addr", "add", f"{STORAGE}/24", "dev", "eth1", check=True)
    ha.refused(1, ["node", "set", "n2", "--storage-address", "n2-storage"], r"is not an IP address")
    ha.refused(1, ["node", "set", "n2", "--storage-address", "127.0.0.5"], r"loopback")
    ha.refused(1, ["node", "set", "n2", "--storage-address", "10.99.1.1"], r"is node n1's already")
    ha.refused(1, ["node", "set", "n2"], r"Nothing to change")
    check(ha.json(3, "node", "show", "n2")["storage_address"] is None, "a refused change set an address")

    ha.ok(1, "node", "set", "n2", "--storage-address", STORAGE)
    check(ha.json(3, "node", "show", "n2")["storage_address"] == STORAGE, "node show n2 --json")
    out = ha.ok(3, "node", "show", "n2").stdout
    expect(re.search(rf"^Storage address: +{re.escape(STORAGE)}$", out, re.M), f"herd node show n2:\n{out}")
    out = ha.ok(1, "node", "list").stdout
    expect(re.search(rf"^n2 .*storage:{re.escape(STORAGE)}", out, re.M), f"herd node list:\n{out}")
    wait_until(lambda: f"{STORAGE}:{port}" in listening(tn, 2, port), 30,
               f"n2's nbdkit to listen on {STORAGE}:{port}")
    wait_until(lambda: f"{STORAGE}:{port}" in connected_to(tn, 1, port), 30,
               f"n1's link to connect to {STORAGE}:{port}")
    wait_until(lambda: in_sync(ha, "ops"), 30, "ops's replicas to connect on the storage address")
    check(f"10.99.1.2:{port}" not in listening(tn, 2, port), "n2 still listens on its link-1 address")
    write(tn, 1, uuid, "0x5a", 1 << 20)
    check(replica(tn, 1, uuid) == replica(tn, 2, uuid), "n2's replica differs from n1's after a write")
    say(f"  n1 replicates to {STORAGE}:{port}; a write through n1 is on n2's replica")

    ha.ok(2, "node", "set", "n2", "--storage-address", "none")
    check(ha.json(1, "node", "show", "n2")["storage_address"] is None, "storage address none")
    wait_until(lambda: f"10.99.1.2:{port}" in listening(tn, 2, port), 30,
               f"n2's nbdkit to listen on 10.99.1.2:{port} again")
    wait_until(lambda: in_sync(ha, "ops"), 30, "ops's replicas to connect on link 1 again")


def shutdown_gate(tn, ha, uuid):
    say("== B. the host of n1 shuts down while n1 holds the only up-to-date replica")
    tn.cli("cut", "2", "1")
    healed = False
    try:
        write(tn, 1, uuid, "0x3c", 2 << 20)
        wait_until(lambda: replicas(ha, "ops")["n2"][0] == "outdated", 30, "n2's replica to be outdated")
        t0 = time.time()
        result = {}
        stopper = threading.Thread(target=lambda: result.update(p=tn.cli("shutdown", "1", timeout=600,
                                                                          check=False)))
        stopper.start()
        waits = wait_until(lambda: herdd_log(tn, 1, t0, r"the host's shutdown waits for eSAN disk\(s\) ops "
                                                     r"not in sync"), 60,
                           "n1's herdd to say that its shutdown waits for ops")
        say(f"  {waits[-1][1]}")
        check(stopper.is_alive(), "n1's host went down with the only up-to-date replica of ops")
        tn.cli("heal", "2", "1")
        healed = True
        stopper.join(timeout=300)
        check(not stopper.is_alive(), "n1's shutdown did not end after ops was in sync")
        p = result["p"]
        check(p.returncode == 0, f"testnodes shutdown 1: {p.stderr.strip()}")
    finally:
        if not healed:
            tn.cli("heal", "2", "1")
    summary = herdd_log(tn, 1, t0, r"the host's shutdown: ")
    check(summary, "n1's herdd did not say how its host's shutdown went")
    expect("shutdown_timeout_s" not in summary[-1][1], f"n1's shutdown ran into its timeout: {summary[-1][1]}")
    say(f"  {summary[-1][1]}")
    check(replicas(ha, "ops", 2)["n2"][0] == "uptodate", "n2's replica is not up to date after n1 left")


def orphan_removed(tn, ha, uuid):
    say("== C. ops deleted while n1 is off; n1 back: its replica removed")
    img = os.path.join(data_dir(tn, 1), f"{uuid}.img")
    check(os.path.exists(img), "n1's replica file is there while n1 is off")
    ha.ok(2, "disk", "delete", "ops")
    wait_until(lambda: not [f for f in os.listdir(data_dir(tn, 2)) if f.startswith(uuid)], 30,
               "n2's replica files to go")
    t0 = time.time()
    tn.cli("start", "1", timeout=120)
    wait_until(lambda: ha.nodes(2)["n1"]["online"], 60, "n1's herd to be back in the cluster")
    wait_until(lambda: not [f for f in os.listdir(data_dir(tn, 1)) if f.startswith(uuid)], 60,
               "n1's replica files of the deleted disk to go")
    said = herdd_log(tn, 1, t0, rf"eSAN volume {uuid}: herd-san serves it, but the store has no such disk \(deleted")
    check(said, "n1's herdd did not say why it removed the volume")
    p = tn.exec(1, "ls", "/run/herd/san")
    check(uuid not in p.stdout, f"n1's herd-san still has run files of the volume: {p.stdout}")
    say("  n1's replica of the deleted disk is gone")


def main():
    with HaNodes(INSTANCE, 3, links=2) as tn, Workdir(INSTANCE) as tmp:
        os.chmod(tmp, 0o755)
        ha = Ha(tn, tmp)
        ha.ok(1, "cluster", "set", "esan_link=1")
        ha.ok(1, "disk", "create", "ops", "--size", "16M", "--esan", "n1,n2")
        wait_until(lambda: in_sync(ha, "ops"), 30, "ops's replicas to connect")
        d = ha.json(1, "disk", "show", "ops")
        storage_address(tn, ha, d["uuid"], d["esan"]["port"])
        shutdown_gate(tn, ha, d["uuid"])
        orphan_removed(tn, ha, d["uuid"])
        check_expected()
    return 0


if __name__ == "__main__":
    sys.exit(run_test(main, root=True))

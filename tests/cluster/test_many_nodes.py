#!/usr/bin/python3
"""More test nodes than before, most without libvirtd (issue 14 item 1).

`testnodes up 9 --libvirtd 1`: nine nodes formed into one cluster with
`herd cluster create/join`, libvirtd on n1 only.  Checked: every node's
corosync sees 9 members with quorum; n1's herd has fresh facts of all nine,
n1 reaching its hypervisor and the other eight not; no libvirtd runs on
n2-n9 and node-service refuses to start one there (as systemctl a unit that
is not installed: exit 5), so herdd's own restarts of libvirtd cannot start
one either; `testnodes status` says which node has none; the memory of
each kind of node is read.  The PDU has an outlet for n9 (more than an
AP7920's eight): the real fence agent reads it on, switches it off (n9's
processes die, the others see 8 members) and on again (n9 rejoins).  Then
`down` must leave nothing: no network namespace, no process that was in
the nodes, no mount, no file of the instance.

A cluster of 32 is bench/scale's (too heavy for every check run).
"""
import json
import os
import sys

_here = os.path.dirname(os.path.realpath(__file__))
sys.path[:0] = [_here, os.path.dirname(_here)]  # harness.py here, testlib.py in tests/
from harness import TestNodes, testnodes  # noqa: E402
from testlib import check, run_test, say, wait_until  # noqa: E402

INSTANCE = "test-many-nodes"
N = 9


def fence(tn, action, plug):
    """fence_apc_snmp in n1 for the instance's PDU; (exit status, output)."""
    d = json.loads(tn.cli("pdu", "--json").stdout)
    stdin = "".join(f"{k}={v}\n" for k, v in [("action", action), ("plug", plug)] + list(d["params"].items()))
    p = tn.exec(1, d["agent"], input=stdin, timeout=60)
    return p.returncode, (p.stdout + p.stderr).strip()


def main():
    nodes = list(range(1, N + 1))
    with TestNodes(INSTANCE, N, libvirtd="1") as tn:
        inst = tn.tn
        tn.wait_members(nodes, N)
        say(f"all {N} nodes see {N} members with quorum")

        listed = {n["name"]: n for n in json.loads(tn.exec(1, "herd", "--json", "node", "list",
                                                               check=True).stdout)}
        check(sorted(listed) == sorted(f"n{i}" for i in nodes), f"herd node list: {sorted(listed)}")
        wait_until(lambda: all((n.get("herd") or {}) for n in json.loads(
            tn.exec(1, "herd", "--json", "node", "list", check=True).stdout)), 30,
            f"n1 to have fresh facts of all {N} nodes")
        listed = {n["name"]: n for n in json.loads(tn.exec(1, "herd", "--json", "node", "list",
                                                               check=True).stdout)}
        virt = {name: n["herd"]["virt_ok"] for name, n in listed.items()}
        check(virt == {f"n{i}": i == 1 for i in nodes},
              f"only n1 should reach a hypervisor; virt_ok: {virt}")
        say("n1's herd has fresh facts of every node; only n1 reaches a hypervisor")

        procs, _ = tn.instance_processes()
        netns_of = {os.stat(f"/run/netns/{inst.netns(i)}").st_ino: i for i in nodes}
        with_libvirtd = sorted(netns_of[ino] for comm, _, ino in procs.values()
                               if comm == "libvirtd" and ino in netns_of)
        check(with_libvirtd == [1], f"libvirtd runs in nodes {with_libvirtd}, not only in n1")
        service = os.path.join(_here, "node-service")
        p = tn.exec(5, service, "start", "libvirtd")
        refusal = p.stderr.strip()
        check(p.returncode == 5 and "not installed" in refusal,
              f"node-service start libvirtd in n5: exit {p.returncode}, {refusal!r}")
        p = tn.exec(5, service, "status", "libvirtd")
        check(p.returncode == 3, f"node-service status libvirtd in n5: exit {p.returncode}")
        say(f"no libvirtd in n2-n{N}; node-service refuses one there: {refusal}")

        st = json.loads(tn.cli("status", "--json").stdout)
        flags = {n["name"]: n["libvirtd"] for n in st["nodes"]}
        check(flags == {f"n{i}": i == 1 for i in nodes}, f"testnodes status --json: libvirtd {flags}")
        check(st["pdu"]["outlets"] >= N, f"the PDU has {st['pdu']['outlets']} outlets for {N} nodes")
        mem = testnodes.memory_by_kind(inst)
        check(len(mem["libvirtd"]) == 1 and len(mem["bare"]) == N - 1 and
              all(b > 0 for b in mem["libvirtd"] + mem["bare"]), f"memory by kind: {mem}")
        say(testnodes.memory_text(inst))

        rc, out = fence(tn, "status", str(N))
        check(rc == 0, f"fence_apc_snmp status of n{N}: exit {rc}: {out}")
        rc, out = fence(tn, "off", str(N))
        check(rc == 0 and inst.init_pid(N) is None, f"fence_apc_snmp off of n{N}: exit {rc}: {out}")
        tn.wait_members(nodes[:-1], N - 1)
        rc, out = fence(tn, "on", str(N))
        check(rc == 0 and inst.init_pid(N) is not None, f"fence_apc_snmp on of n{N}: exit {rc}: {out}")
        tn.wait_members(nodes, N, timeout=60)
        say(f"the PDU's outlet {N} switched n{N} off and on; it rejoined")

        before, inodes = tn.instance_processes()
        check(before, "no process found in the instance's namespaces")
        instance_dir = inst.dir

    left = [f"{pid} {comm}" for pid, (comm, start, _) in before.items() if testnodes.proc_alive(pid, start)]
    check(not left, f"processes of the nodes left after down: {left[:10]}")
    check(not inst.existing_netns(), f"network namespaces left: {inst.existing_netns()}")
    mounts = [m for m in testnodes.mount_points() if m.startswith(instance_dir)]
    check(not mounts, f"mounts left: {mounts}")
    check(not os.path.lexists(instance_dir), f"{instance_dir} is left")
    say(f"down left nothing ({len(before)} processes gone, {len(inodes)} namespaces, "
        f"no mount, no file)")


sys.exit(run_test(main, root=True))

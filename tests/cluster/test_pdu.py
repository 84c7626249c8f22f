#!/usr/bin/python3
"""The simulated switched PDU of the test nodes, driven by the real fence agent.

Two nodes.  From inside the nodes, Debian's fence_apc_snmp runs as herd will
run it: no arguments, `key=value` lines on stdin (the parameters `testnodes
pdu` prints, plus action and plug).  Checked: status of a running node reads
on (exit 0); list and monitor; `off` cuts node 2's power before the agent
returns (its processes are gone, n1's corosync sees it leave) and status then
reads off (exit 2); `on` boots it again and it rejoins; `reboot` (herd's
default fence_action) cuts n2's power, reads it off, boots it again and
answers "Success: Rebooted" with n2 on, of a node already off only
switches it on, and with retry_on=0 (no power-on) still succeeds but logs
that it timed out waiting to power ON; `kill`/`start` of testnodes read back truthfully; a wrong plug, a wrong or read-only community
and a wrong v3 password fail; SNMPv3 works.  Then the two nodes fence each
other at the same moment, several times (the agents, then bare snmpsets for a
tighter race): exactly one survives each time.  Prints the agent's own run
time for status, off and reboot (herd's failover benchmark subtracts it).  `down`
must leave nothing of the PDU behind.
"""
import json
import os
import re
import statistics
import subprocess
import sys
import time

_here = os.path.dirname(os.path.realpath(__file__))
sys.path[:0] = [_here, os.path.dirname(_here)]  # harness.py here, testlib.py in tests/
from harness import TestNodes, testnodes  # noqa: E402
from testlib import check, run_test, say, wait_until  # noqa: E402

INSTANCE = "test-pdu"
RACE_ROUNDS = 4
CONTROL_OID = ".1.3.6.1.4.1.318.1.1.12.3.3.1.1.4"   # rPDUOutletControlOutletCommand
# Runs the agent inside a node and reports its own run time on stderr.
TIMED_AGENT = ('s=$(date +%s%N); fence_apc_snmp; r=$?; e=$(date +%s%N); '
               'echo "agent-ns $((e - s))" >&2; exit $r')


class Pdu:
    def __init__(self, tn):
        self.tn = tn
        p = tn.cli("pdu", "--json")
        d = json.loads(p.stdout)
        self.agent, self.params, self.plugs = d["agent"], d["params"], d["plugs"]
        self.times = {}

    def stdin(self, action, plug, **override):
        params = dict(self.params, **override)
        return "".join(f"{k}={v}\n" for k, v in
                       [("action", action), ("plug", plug)] + list(params.items()))

    def run(self, i, action, plug, timed=True, **override):
        """Run the agent in node i; returns (exit status, stdout + stderr)."""
        p = self.tn.exec(i, "sh", "-c", TIMED_AGENT, input=self.stdin(action, plug, **override),
                         timeout=60)
        m = re.search(r"^agent-ns (\d+)$", p.stderr, re.M)
        check(m, f"n{i}: the agent's run time is missing: {p.stderr!r}")
        if timed:
            self.times.setdefault(action, []).append(int(m[1]) / 1e6)
        err = re.sub(r"^agent-ns \d+\n?", "", p.stderr, flags=re.M)
        return p.returncode, (p.stdout + err).strip()


def node_procs(tn, i):
    ino = os.stat(f"/run/netns/{tn.tn.netns(i)}").st_ino
    return [pid for pid in testnodes.all_pids()
            if testnodes.netns_inode_of(pid) == ino and testnodes.proc_alive(pid)]


def check_description(tn, pdu):
    check(pdu.agent == "fence_apc_snmp", f"testnodes pdu names agent {pdu.agent!r}")
    check(pdu.plugs == {"n1": "1", "n2": "2"}, f"testnodes pdu gives plugs {pdu.plugs}")
    text = tn.cli("pdu").stdout.splitlines()
    check(text[0] == "agent=fence_apc_snmp" and "plug n1=1" in text and "plug n2=2" in text and
          f"ip={pdu.params['ip']}" in text and f"community={pdu.params['community']}" in text,
          f"testnodes pdu prints:\n{chr(10).join(text)}")
    st = json.loads(tn.cli("status", "--json").stdout)["pdu"]
    check(st and st["running"] and st["address"] == pdu.params["ip"],
          f"status --json shows the PDU as {st}")
    # What the agent identifies the device by, and the outlet count.
    p = tn.exec(1, "snmpget", "-v1", "-c", pdu.params["community"], "-m", "", "-On", "-Oq",
                pdu.params["ip"], ".1.3.6.1.2.1.1.2.0", ".1.3.6.1.4.1.318.1.1.12.1.5.0",
                ".1.3.6.1.4.1.318.1.1.12.3.1.3.0", check=True)
    check(p.stdout.split() == [".1.3.6.1.2.1.1.2.0", ".1.3.6.1.4.1.318.1.3.4.5",
                               ".1.3.6.1.4.1.318.1.1.12.1.5.0", '"AP7920"',
                               ".1.3.6.1.4.1.318.1.1.12.3.1.3.0", "8"],
          f"sysObjectID, model and outlet count read:\n{p.stdout}")
    say(f"testnodes pdu: {pdu.agent} {pdu.params}, plugs {pdu.plugs}; "
        "the PDU is an AP7920 (rPDU) with 8 outlets")


def check_reads(tn, pdu):
    for _ in range(5):
        rc, out = pdu.run(1, "status", "2")
        check(rc == 0 and "Status: ON" in out, f"status of running n2: exit {rc}, {out!r}")
    rc, out = pdu.run(2, "status", "n1")   # by outlet name, from the other node
    check(rc == 0 and "Status: ON" in out, f"status of plug n1 from n2: exit {rc}, {out!r}")
    rc, out = pdu.run(1, "list", "", timed=False)
    lines = out.splitlines()
    check(rc == 0 and lines[:2] == ["1,n1", "2,n2"] and len(lines) == 8,
          f"list: exit {rc}, {out!r}")
    rc, out = pdu.run(1, "monitor", "", timed=False)
    check(rc == 0, f"monitor: exit {rc}, {out!r}")
    say("status reads on (exit 0), also by outlet name; list shows the 8 outlets; monitor ok")


def check_off_on(tn, pdu, rounds=3):
    for r in range(rounds):
        tn.wait_members([1, 2], 2, timeout=30)
        n2_before = node_procs(tn, 2)
        check(n2_before, "n2 has no processes before off")
        rc, out = pdu.run(1, "off", "2")
        check(rc == 0 and "Success: Powered OFF" in out, f"off of n2: exit {rc}, {out!r}")
        # Cut before the agent returned: nothing of n2 is left.
        left = node_procs(tn, 2)
        check(not left, f"processes of n2 alive after the agent's off returned: {left}")
        check(tn.cli("power", "2", "status", check=False).returncode == 2,
              "testnodes power 2 status is not off")
        t0 = time.monotonic()
        tn.wait_members([1], 1)
        left_s = time.monotonic() - t0
        rc, out = pdu.run(1, "status", "2")
        check(rc == 2 and "Status: OFF" in out, f"status of n2 after off: exit {rc}, {out!r}")
        rc, out = pdu.run(1, "off", "2", timed=False)
        check(rc == 0 and "Already OFF" in out, f"off of an off n2: exit {rc}, {out!r}")
        t0 = time.monotonic()
        rc, out = pdu.run(1, "on", "2", timed=False)
        check(rc == 0 and "Success: Powered ON" in out, f"on of n2: exit {rc}, {out!r}")
        tn.wait_members([1, 2], 2, timeout=30)
        back = time.monotonic() - t0
        if r == 0:
            # The PDU's "on" returns once the node boots; herdd starts after
            # its corosync, so corosync's membership can come first.
            p = wait_until(lambda: (q := tn.exec(2, "herd", "status")).returncode == 0 and q, 30,
                           "herd status to answer on n2 after power on")
            check("n2" in p.stdout, f"herd status on n2 after power on:\n{p.stdout}")
        say(f"off #{r + 1}: n2's {len(n2_before)} processes gone when the agent returned, "
            f"n1 saw it leave {left_s * 1000:.0f} ms later; status reads off (exit 2); "
            f"on: n2 back in the cluster after {back:.1f} s")


def pdu_log_lines(tn, since=0):
    """The PDU log's lines from byte offset since on, and its size."""
    with open(os.path.join(tn.tn.dir, "pdu", "pdu.log")) as f:
        f.seek(since)
        text = f.read()
    return text.splitlines(), since + len(text.encode())


def check_reboot(tn, pdu, rounds=2):
    """fencing.py's reboot: status, off, status until off, on, status until on
    (one agent run); the PDU serves it as off and on."""
    inst = tn.tn
    for r in range(rounds):
        tn.wait_members([1, 2], 2, timeout=30)
        init, before = inst.init_pid(2), set(node_procs(tn, 2))
        _, mark = pdu_log_lines(tn)
        rc, out = pdu.run(1, "reboot", "2")
        check(rc == 0 and out.splitlines()[-1:] == ["Success: Rebooted"],
              f"reboot of n2: exit {rc}, {out!r}")
        # Power-cycled: a new init, none of its old processes; on when the agent answered.
        now = inst.init_pid(2)
        check(now and now != init, f"n2's init before and after the reboot: {init}, {now}")
        survived = before & set(node_procs(tn, 2))
        check(not survived, f"processes of n2 survived its reboot: {sorted(survived)}")
        lines, _ = pdu_log_lines(tn, mark)
        cut = [k for k, l in enumerate(lines) if "node n2: power cut" in l]
        on = [k for k, l in enumerate(lines) if "node n2: powered on" in l]
        check(len(cut) == 1 and len(on) == 1 and cut[0] < on[0],
              f"the PDU's log of n2's reboot:\n" + "\n".join(lines))
        t0 = time.monotonic()
        tn.wait_members([1, 2], 2, timeout=60)
        say(f"reboot #{r + 1}: \"Success: Rebooted\"; the PDU cut n2's power, then powered it on "
            f"(new init, none of its {len(before)} processes left); n2 back in the cluster "
            f"{time.monotonic() - t0:.1f} s after the agent answered")
    # A node that is off already (the usual fence: it died): fencing.py reads
    # it off, and only switches it on.
    tn.cli("kill", "2")
    _, mark = pdu_log_lines(tn)
    rc, out = pdu.run(1, "reboot", "2", timed=False)
    check(rc == 0 and out.splitlines()[-1:] == ["Success: Rebooted"] and inst.init_pid(2),
          f"reboot of an off n2: exit {rc}, {out!r}, init {inst.init_pid(2)}")
    lines, _ = pdu_log_lines(tn, mark)
    check(not any("power cut" in l for l in lines) and any("node n2: powered on" in l for l in lines),
          "the PDU's log of the reboot of an off n2:\n" + "\n".join(lines))
    tn.wait_members([1, 2], 2, timeout=60)
    say("reboot of n2 after `testnodes kill 2`: \"Success: Rebooted\", only switched on; n2 rejoins")
    # retry_on=0: fencing.py's reboot makes no attempt to switch the node on
    # again, logs that, and still succeeds; herd looks for that line.
    rc, out = pdu.run(1, "reboot", "2", timed=False, retry_on="0")
    check(rc == 0 and "Success: Rebooted" in out.splitlines() and
          re.search(r"^[\d-]+ [\d:,]+ ERROR: Timed out waiting to power ON$", out, re.M) and
          inst.init_pid(2) is None,
          f"reboot of n2 with retry_on=0: exit {rc}, {out!r}, init {inst.init_pid(2)}")
    tn.cli("start", "2")
    tn.wait_members([1, 2], 2, timeout=60)
    say("reboot with retry_on=0: \"Success: Rebooted\" (exit 0), \"Timed out waiting to power ON\" "
        "on stderr, n2 stays off")


def check_testnodes_power(tn, pdu):
    tn.cli("kill", "2")
    rc, out = pdu.run(1, "status", "2", timed=False)
    check(rc == 2, f"status after testnodes kill 2: exit {rc}, {out!r}")
    tn.cli("start", "2")
    rc, out = pdu.run(1, "status", "2", timed=False)
    check(rc == 0, f"status after testnodes start 2: exit {rc}, {out!r}")
    tn.wait_members([1, 2], 2, timeout=30)
    say("testnodes kill/start keep working and the outlet reads them truthfully")


def check_failures(tn, pdu):
    cases = [
        ("status of plug 9 (no such outlet)", dict(action="status", plug="9")),
        ("off of plug 9", dict(action="off", plug="9")),
        ("status of plug n9 (no such outlet name)", dict(action="status", plug="n9")),
        ("off with the read-only community", dict(action="off", plug="2", community="public")),
        ("status with a wrong community", dict(action="status", plug="2", community="wrong")),
        ("status with a wrong v3 password",
         dict(action="status", plug="2", snmp_version="3", username="herd",
              snmp_sec_level="authPriv", snmp_auth_prot="SHA", password="wrong-password",
              snmp_priv_prot="AES", snmp_priv_passwd="wrong-password")),
    ]
    for what, kw in cases:
        t0 = time.monotonic()
        rc, out = pdu.run(1, kw.pop("action"), kw.pop("plug"), timed=False, **kw)
        check(rc not in (0, 2), f"{what}: exit {rc} (want a failure), {out!r}")
        check(tn.tn.init_pid(2), f"n2 lost power in the case {what}")
        say(f"{what}: exit {rc} after {time.monotonic() - t0:.1f} s")
    # With v2c the agent reads a missing outlet (noSuchInstance) as off, as it
    # would on a real PDU: why `testnodes pdu` gives SNMP v1.
    rc, out = pdu.run(1, "status", "9", timed=False, snmp_version="2c")
    say(f"(for the record: plug 9 over SNMP v2c gives exit {rc}: {out.splitlines()[-1:]})")
    v3 = dict(re.findall(r"^(\w+)=(.*)$", tn.cli("pdu", "--v3").stdout, re.M))
    v3.pop("agent", None)
    rc, out = pdu.run(1, "status", "2", timed=False, **v3)
    check(rc == 0 and "Status: ON" in out, f"status over SNMPv3: exit {rc}, {out!r}")
    rc, out = pdu.run(1, "status", "2", timed=False, snmp_version="2c")
    check(rc == 0 and "Status: ON" in out, f"status over SNMP v2c: exit {rc}, {out!r}")
    say("SNMPv3 (authPriv, SHA/AES) and v2c work too")


def race_round(tn, pdu, use_agent):
    """n1 switches off outlet 2 and n2 outlet 1 at the same moment; returns the survivor."""
    inst = tn.tn
    procs = {}
    for i in (1, 2):
        victim = 3 - i
        if use_agent:
            argv = ["fence_apc_snmp"]
        else:
            argv = ["sh", "-c", "read go; exec snmpset -v1 -c \"$0\" -m '' -On \"$1\" \"$2\" i 2",
                    pdu.params["community"], pdu.params["ip"], f"{CONTROL_OID}.{victim}"]
        procs[i] = subprocess.Popen(inst.node_argv(i, argv), env=inst.node_env(i),
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True)
    # Both are started (the agents import their modules, then read stdin):
    # release them together.
    time.sleep(0.4 if use_agent else 0.1)
    data = {i: pdu.stdin("off", str(3 - i)) if use_agent else "go\n" for i in (1, 2)}
    for i in (1, 2):
        procs[i].stdin.write(data[i])
        procs[i].stdin.flush()
    for i in (1, 2):
        procs[i].stdin.close()
        procs[i].stdin = None  # for communicate()
    outs = {i: procs[i].communicate(timeout=60)[0] for i in (1, 2)}
    on = [i for i in (1, 2) if inst.init_pid(i)]
    check(len(on) == 1, f"{'agents' if use_agent else 'snmpsets'} fencing each other: "
          f"nodes powered on afterwards: {on} (exits {procs[1].returncode}, "
          f"{procs[2].returncode}; {outs})")
    winner = on[0]
    loser = 3 - winner
    check(procs[winner].returncode == 0, f"the survivor n{winner}'s "
          f"{'agent' if use_agent else 'snmpset'} failed (exit {procs[winner].returncode}): "
          f"{outs[winner]!r}")
    if use_agent:
        check("Success: Powered OFF" in outs[winner], f"n{winner}'s agent said {outs[winner]!r}")
    check(procs[loser].returncode != 0, f"n{loser}'s fencing process survived its power cut")
    left = node_procs(tn, loser)
    check(not left, f"processes of n{loser} alive after it lost: {left}")
    return winner


def check_race(tn, pdu):
    log_path = os.path.join(tn.tn.dir, "pdu", "pdu.log")
    for use_agent in (True, False):
        what = "fence_apc_snmp" if use_agent else "snmpset"
        winners = []
        for _ in range(RACE_ROUNDS):
            tn.wait_members([1, 2], 2, timeout=30)
            winner = race_round(tn, pdu, use_agent)
            winners.append(winner)
            # The survivor powers the other on again through the PDU.
            rc, out = pdu.run(winner, "on", str(3 - winner), timed=False)
            check(rc == 0, f"n{winner} powering n{3 - winner} on: exit {rc}, {out!r}")
        say(f"{what} in n1 (plug 2) and n2 (plug 1) at once, {RACE_ROUNDS} times: exactly one "
            f"survived each time (survivors: {', '.join(f'n{w}' for w in winners)})")
    with open(log_path) as f:
        dropped = sum("dropped a request" in line for line in f)
    say(f"requests of already powered-off senders dropped by the PDU: {dropped}")
    tn.wait_members([1, 2], 2, timeout=30)


def report_times(pdu):
    for action in ("status", "off", "reboot"):
        t = sorted(pdu.times.get(action, []))
        check(t, f"no timings for {action}")
        say(f"fence_apc_snmp's own run time for {action}: p50 {statistics.median(t):.0f} ms, "
            f"min {t[0]:.0f} ms, max {t[-1]:.0f} ms (n={len(t)})")


def check_nothing_left(tn, procs, inodes):
    inst = tn.tn
    check(not inst.existing_netns(), f"network namespaces left: {inst.existing_netns()}")
    alive = {pid: c for pid, (c, start, _) in procs.items() if testnodes.proc_alive(pid, start)}
    check(not alive, f"processes left: {alive}")
    in_ns = testnodes.pids_in_netns(inodes, tn.down_started)
    check(not in_ns, f"processes left in the instance's namespaces: {in_ns}")
    check(not os.path.exists(inst.dir), f"state directory {inst.dir} left")
    say("down left no namespace, process (snmpd and the PDU's own included) or file")


def main():
    with TestNodes(INSTANCE, 2) as tn:
        pdu = Pdu(tn)
        check_description(tn, pdu)
        check_reads(tn, pdu)
        check_off_on(tn, pdu)
        check_reboot(tn, pdu)
        check_testnodes_power(tn, pdu)
        check_failures(tn, pdu)
        check_race(tn, pdu)
        report_times(pdu)
        procs, inodes = tn.instance_processes()
        comms = sorted({c for c, _, _ in procs.values()})
        check("snmpd" in comms, f"no snmpd among the instance's processes {comms}")
    check_nothing_left(tn, procs, inodes)


if __name__ == "__main__":
    sys.exit(run_test(main, root=True))

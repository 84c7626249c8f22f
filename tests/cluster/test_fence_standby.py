#!/usr/bin/python3
"""Fence agents started before they are needed (src/ha/fence_standby.h), against
the simulated PDU, which logs every SNMP request and every outlet command.

Three nodes.  First Debian's fence_apc_snmp itself, in n1: given the whole
options of an "off" of n2 on stdin but no EOF, it sends the PDU nothing and n2
keeps its power; killed (SIGKILL) like that, it has still sent nothing; given
an EOF it acts (a "status": the PDU logs its requests, so the log would show
an agent that acted).

Then herd: with a fence device for the PDU, n1 (the coordinator) and n2 (its
successor) keep two waiting agents each, n3 none, as `herd fence-device list`
(text and JSON) shows on any node; they are fence_apc_snmp processes of those
nodes.  Each of these sends the PDU nothing: a waiting agent killed (and
replaced), herdd killed (its waiting agents read EOF with no options and end;
the new herdd starts its own), the device removed (its agents killed) and
added again (new ones).  Then n2 loses power: n1 fences it through its
waiting agents ("through the waiting agent" in its log; the PDU switches
outlet 2 once, from n1), and n2 comes back (fence_action reboot).  Last,
n1's waiting agents are killed just before n3 loses power: the fence still
succeeds (a fresh agent, or one started again meanwhile).
"""
import json
import os
import re
import signal
import subprocess
import sys
import time

_here = os.path.dirname(os.path.realpath(__file__))
sys.path[:0] = [_here, os.path.dirname(_here)]  # harness.py here, testlib.py in tests/
from halib import OUTLET_CMD, Ha, HaNodes, PduLog, Workdir, herdd_log  # noqa: E402
from harness import testnodes  # noqa: E402
from testlib import check, run_test, say, wait_until  # noqa: E402

INSTANCE = "pref"
NODE_SERVICE = os.path.join(_here, "node-service")
def children_of(pid):
    out = []
    for p in testnodes.all_pids():
        try:
            with open(f"/proc/{p}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        if int(stat[stat.rindex(")") + 2:].split()[1]) == pid:
            out.append(p)
    return out


def agent_stdin(pdu, action, plug):
    return "".join(f"{k}={v}\n" for k, v in
                   [("action", action), ("plug", plug)] + list(pdu["params"].items()))


def check_agent_waits(tn, ha, log):
    """The real agent with options but no EOF does nothing; with EOF it acts."""
    pdu = ha.pdu()
    mark = log.mark()
    p = subprocess.Popen(tn.tn.node_argv(1, ["fence_apc_snmp"]), env=tn.tn.node_env(1),
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        p.stdin.write(agent_stdin(pdu, "off", "2").encode())
        p.stdin.flush()
        # nsenter -p forks: the agent is its child.
        agent = wait_until(lambda: children_of(p.pid), 10, "the agent to start in n1")[0]
        # Long enough to import its modules and read what it was given.
        time.sleep(2)
        check(testnodes.proc_alive(agent), "fence_apc_snmp with options but no EOF exited")
        check(not log.requests(mark), "fence_apc_snmp sent requests before it read EOF:\n" +
              "\n".join(log.since(mark)))
        check(tn.tn.init_pid(2), "n2 lost its power to an agent that had not read EOF")
        os.kill(agent, signal.SIGKILL)
        wait_until(lambda: not testnodes.proc_alive(agent), 10, "the killed agent to go")
    finally:
        if p.poll() is None:
            p.kill()
        p.wait()
    check(not log.requests(mark) and tn.tn.init_pid(2),
          "the killed agent (an off of n2 in its stdin) did something:\n" + "\n".join(log.since(mark)))
    say("fence_apc_snmp given an off of n2 but no EOF: no request to the PDU in 2 s, n2 on; "
        "killed so, still none")
    mark = log.mark()
    r = tn.exec(1, "fence_apc_snmp", input=agent_stdin(pdu, "status", "2"))
    check(r.returncode == 0 and "Status: ON" in r.stdout, f"status of n2: {r.returncode} {r.stdout!r}")
    reqs = log.requests(mark)
    check(reqs and all("request from n1" in l for l in reqs) and not log.outlet_commands(mark),
          "a status of n2 from n1 in the PDU's log:\n" + "\n".join(log.since(mark)))
    say(f"the same agent given EOF (a status): {len(reqs)} requests from n1 in the PDU's log")


def waiting(ha, i=3):
    """{device: {node: [pid…]}} of `herd --json fence-device list` on node i."""
    return {d["name"]: d["waiting"] for d in ha.json(i, "fence-device", "list")}


def wait_waiting(ha, want, what, i=3, timeout=30):
    """Until the waiting agents per node of device pdu (as counts) are @want."""
    def ok():
        w = waiting(ha, i).get("pdu", {})
        return {n: len(p) for n, p in w.items()} == want and w
    return wait_until(ok, timeout, f"{what}: waiting agents {want}; "
                      f"fence-device list shows {waiting(ha, i)}")


def node_agents(tn, i):
    """PIDs (in node i) of the fence_apc_snmp processes there."""
    r = tn.exec(i, "ps", "-eo", "pid,args", "--no-headers", check=True)
    return sorted(int(l.split()[0]) for l in r.stdout.splitlines() if "fence_apc_snmp" in l)


def check_waiting_agents(tn, ha, log):
    mark = log.mark()
    ha.add_pdu()
    w = wait_waiting(ha, {"n1": 2, "n2": 2}, "after fence-device add")
    for node, pids in w.items():
        i = int(node[1:])
        check(sorted(pids) == node_agents(tn, i),
              f"{node}: fence-device list shows {pids}, the node runs fence_apc_snmp {node_agents(tn, i)}")
    check(not node_agents(tn, 3), f"n3 runs fence agents: {node_agents(tn, 3)}")
    text = ha.ok(2, "fence-device", "list").stdout
    check(re.search(r"^NAME .* WAITING ", text, re.M) and re.search(r"^pdu .* n1:2 n2:2 ", text, re.M),
          f"herd fence-device list:\n{text}")
    check(not log.outlet_commands(mark), "fence-device add switched an outlet:\n" + "\n".join(log.since(mark)))
    say(f"fence device pdu: waiting agents n1 {w['n1']}, n2 {w['n2']} (its processes there), "
        "n3 none; `fence-device list` shows 'n1:2 n2:2'")
    return w


def check_killed_agent(tn, ha, log, w):
    mark = log.mark()
    victim = w["n1"][0]
    tn.exec(1, "kill", "-9", str(victim), check=True)
    w2 = wait_until(lambda: (x := waiting(ha).get("pdu", {})) and len(x.get("n1", [])) == 2 and
                    victim not in x["n1"] and x, 30,
                    f"a new waiting agent on n1 in place of {victim}")
    check(not log.requests(mark), f"the killed waiting agent {victim} sent requests:\n" +
          "\n".join(log.since(mark)))
    say(f"waiting agent {victim} of n1 killed: no request to the PDU; n1 waits with {w2['n1']}")
    return w2


def check_herdd_killed(tn, ha, log, w):
    mark = log.mark()
    old = w["n1"]
    r = tn.exec(1, NODE_SERVICE, "status", "herdd", check=True)
    pid = re.search(r"pid (\d+)", r.stdout)
    check(pid, f"node-service status herdd: {r.stdout!r}")
    tn.exec(1, "kill", "-9", pid[1], check=True)
    w2 = wait_until(lambda: (x := waiting(ha).get("pdu", {})) and len(x.get("n1", [])) == 2 and
                    not set(old) & set(x["n1"]) and x, 60,
                    "n1's new herdd to start its own waiting agents")
    left = set(old) & set(node_agents(tn, 1))
    check(not left, f"waiting agents of the killed herdd are still there: {left}")
    check(not log.requests(mark), "waiting agents of a killed herdd sent requests:\n" +
          "\n".join(log.since(mark)))
    say(f"herdd of n1 killed: its waiting agents {old} read EOF and ended without a request to "
        f"the PDU; the new herdd waits with {w2['n1']}")


def check_device_changes(tn, ha, log):
    mark = log.mark()
    before = {i: node_agents(tn, i) for i in (1, 2)}
    ha.ok(1, "fence-device", "remove", "pdu")
    wait_until(lambda: not node_agents(tn, 1) and not node_agents(tn, 2), 30,
               "the waiting agents to go with their device")
    check(not log.requests(mark), "waiting agents of a removed device sent requests:\n" +
          "\n".join(log.since(mark)))
    say(f"fence device removed: its waiting agents {before} killed, no request to the PDU")
    mark = log.mark()
    ha.add_pdu()
    w = wait_waiting(ha, {"n1": 2, "n2": 2}, "after the device was added again")
    check(not set(w["n1"]) & set(before[1]), f"n1 kept its old agents {before[1]}: {w['n1']}")
    # The add itself lists the outlets (one agent, from the API's node).
    check(not log.outlet_commands(mark), "adding the device switched an outlet:\n" +
          "\n".join(log.since(mark)))
    say(f"added again: new waiting agents n1 {w['n1']}, n2 {w['n2']}; no outlet switched")
    return w


def fence_lines(tn, since):
    return herdd_log(tn, 1, since, r"fencing node n\d (succeeded|FAILED)|through the waiting agent|"
                                   r"waiting agent|waiting fence agent|fresh one")


def check_fence(tn, ha, log, w):
    mark = log.mark()
    t0 = time.time()
    tn.cli("kill", "2")
    wait_until(lambda: any("fencing node n2 succeeded" in l for _, l in fence_lines(tn, t0)), 60,
               "n1 to fence n2")
    lines = [l for _, l in fence_lines(tn, t0)]
    used = [l for l in lines if "through the waiting agent" in l]
    check(len(used) == 2 and all(re.search(rf"\(pid ({w['n1'][0]}|{w['n1'][1]})\)", l) for l in used),
          f"n1 did not fence through its waiting agents {w['n1']}:\n" + "\n".join(lines))
    outlets = [m[1] for l in log.since(mark) if (m := OUTLET_CMD.search(l))]
    check(outlets and set(outlets) == {"2"} and all("request from n1" in l for l in log.requests(mark)),
          "the PDU's log of the fence of n2:\n" + "\n".join(log.since(mark)))
    say("n2 lost power: n1 fenced it through its waiting agents:\n    " +
        "\n    ".join(re.sub(r"^\S+ ", "", l) for l in lines))
    tn.wait_members([1, 2, 3], 3, timeout=90)
    wait_waiting(ha, {"n1": 2, "n2": 2}, "after the fence (n2 back)", timeout=60)


def check_fence_dead_agents(tn, ha, log, w):
    mark = log.mark()
    pids = w["n1"]
    t0 = time.time()
    tn.exec(1, "kill", "-9", *map(str, pids), check=True)
    tn.cli("kill", "3")
    wait_until(lambda: any("fencing node n3 succeeded" in l or "fencing node n3 FAILED" in l
                           for _, l in fence_lines(tn, t0)), 60, "n1 to fence n3")
    lines = [l for _, l in fence_lines(tn, t0)]
    check(any("fencing node n3 succeeded" in l for l in lines),
          "the fence of n3 after n1's waiting agents were killed:\n" + "\n".join(lines))
    check(not any(re.search(rf"waiting agent \(pid ({pids[0]}|{pids[1]})\)", l) and "through" in l
                  for l in lines), "n1 fenced through a killed agent:\n" + "\n".join(lines))
    check(any("outlet 3" in l for l in log.outlet_commands(mark)),
          "the PDU's log of the fence of n3:\n" + "\n".join(log.since(mark)))
    say("n1's waiting agents killed, then n3 lost power: the fence succeeded:\n    " +
        "\n    ".join(re.sub(r"^\S+ ", "", l) for l in lines))
    tn.wait_members([1, 2, 3], 3, timeout=90)


def main():
    with HaNodes(INSTANCE, 3) as tn, Workdir("test-fence-standby") as tmp:
        ha = Ha(tn, tmp)
        log = PduLog(tn)
        check_agent_waits(tn, ha, log)
        w = check_waiting_agents(tn, ha, log)
        w = check_killed_agent(tn, ha, log, w)
        check_herdd_killed(tn, ha, log, w)
        w = check_device_changes(tn, ha, log)
        check_fence(tn, ha, log, w)
        w = wait_waiting(ha, {"n1": 2, "n2": 2}, "before the last fence")
        check_fence_dead_agents(tn, ha, log, w)


if __name__ == "__main__":
    sys.exit(run_test(main, root=True))

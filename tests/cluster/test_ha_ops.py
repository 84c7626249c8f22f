#!/usr/bin/python3
"""The HA engine's operations on real test nodes (issue 4): what an operator
does, and what herd refuses.

Three nodes; every node's QEMUs and libvirt are polled all along (a VM on two
nodes at once fails the test).

 A. Fencing required: with no fence device an HA VM refuses to start, naming
    the nodes no device covers (only its sticky node for a sticky VM); lab
    mode allows it and `herd status` flags it loudly; two devices that cover
    part of the nodes each add up.
 B. Bad input -- unknown VM or node names, bad plug syntax, unknown or
    malformed agents, a plug of a node that does not exist or of an outlet
    the PDU does not have, a reserved agent parameter, a duplicate device,
    confirm-down of a live node, fencing oneself, bad settings and VM
    attributes, actions on VMs that do not run -- each gets a clear error and
    changes nothing on any node.
 C. A guest that stops behind herd's back (virsh destroy inside its node, kill
    -9 of its QEMU) while it should run is started again; `herd vm shutdown
    --wait` of the test guest (it ignores ACPI) forces it off after its
    --shutdown-timeout.
 D. reboot, reset, suspend and resume issued on nodes other than the VM's.
 E. Node modes: standby moves VMs away (live) and takes no new one; online
    lets the preferred VM fail back and the VMs that left the node return,
    live (return after maintenance); switchover FROM TO moves all of FROM's
    VMs to TO, live (no guest boots again), but a VM sticky to FROM stays
    and the command names it; maintenance moves VMs away but leaves a
    sticky VM (alert) until `vm release`, and a node in maintenance that
    dies is not fenced and blocks nothing; when it is back and online, the
    VMs that left it return, live.
 F. Admission control (N+1, with vcpu_overcommit=1 and 2-vCPU guests): a
    warning when losing a node would leave an HA VM without room; with
    admission_control=refuse the start is refused.
 G. The configuration history of an HA VM that was started, stopped and
    moved many times holds no placement of herd's; `herd vm restore --force`
    of a running VM brings its configuration back and leaves it running where
    it is, without a reboot.
 H. A VM whose disk is only on n2 (preferred n1) is tried on n1
    start_failures_max times, then placed elsewhere (n3, if the scheduler
    picks it, fails the same way) and runs on n2; `herd vm info` and an
    alert name the nodes given up on and libvirt's error; an operator's
    destroy clears the record.
"""
import os
import sys
import time

_here = os.path.dirname(os.path.realpath(__file__))
sys.path[:0] = [_here, os.path.dirname(_here)]  # harness.py here, testlib.py in tests/
from testlib import check, check_expected, expect, run_test, say, wait_until  # noqa: E402
from halib import Ha, HaNodes, Workdir, api, herdd_log, qemu_pids, run_steps, table  # noqa: E402

INSTANCE = "test-ha-ops"
QUICK = ["--shutdown-timeout", "2"]


def where(vms, names):
    return {n: vms[n]["node"] for n in names if vms[n]["state"] == "running"}


# ---------------------------------------------------------------- A

def fencing_required(tn, ha):
    say("== A. an HA VM needs fencing; lab mode")
    ha.set(1, "failback_after_s=2")
    ha.define("h1", extra=QUICK)
    ha.define("h2", extra=QUICK + ["--sticky", "n3"])
    ha.define("plain", ha=False, extra=QUICK)
    before = ha.config(2)
    ha.refused(2, ["vm", "start", "h1"],
               r"h1 is an HA VM, but no fence device covers node\(s\) n1, n2, n3 .*fence-device add",
               what="HA VM without fencing")
    ha.refused(1, ["vm", "start", "h2"], r"no fence device covers node\(s\) n3 that",
               what="sticky HA VM without fencing")
    expect(ha.config(1) == before, "a refused start changed the configuration")
    expect(not qemu_pids(tn, ha.uuids["h1"]), "h1 runs after its start was refused")
    p = ha.ok(1, "vm", "start", "plain")
    say(f"a VM without HA starts without fencing: {p.stdout.strip()!r}")
    ha.set(3, "lab_mode=yes")
    p = ha.ok(1, "vm", "start", "h1")
    text = ha.ok(2, "status").stdout
    expect("!!! LAB MODE" in text and ha.status(3)["lab_mode"] is True,
           f"herd status in lab mode:\n{text}")
    say(f"lab mode: {p.stdout.strip()!r}; herd status says: "
        f"{[l for l in text.splitlines() if 'LAB MODE' in l][0].strip()!r}")
    ha.set(3, "lab_mode=no")
    text = ha.ok(2, "status").stdout
    expect("LAB MODE" not in text, f"herd status after lab_mode=no:\n{text}")
    # Two devices, each covering part of the nodes.
    ha.add_pdu("pdu12", nodes=["n1", "n2"])
    ha.refused(1, ["vm", "start", "h2"], r"no fence device covers node\(s\) n3 ",
               what="sticky to n3, only n1 and n2 covered")
    ha.add_pdu("pdu3", nodes=["n3"])
    p = ha.ok(2, "vm", "start", "h2")
    expect(p.stdout.strip() == "VM h2 is running on node n3.", f"vm start h2: {p.stdout!r}")
    ha.wait_counting(["h1", "h2", "plain"])
    devs = {d["name"]: d for d in ha.json(3, "fence-device", "list")}
    expect(sorted(devs) == ["pdu12", "pdu3"] and devs["pdu3"]["params"]["community"] == "********",
           f"fence-device list: {devs}")
    say("fence devices pdu12 (n1, n2) and pdu3 (n3): h2 (sticky n3) starts; the community is "
        "shown masked")


# ---------------------------------------------------------------- B

def bad_input(tn, ha):
    say("== B. bad input: clear errors, nothing changes")
    before = {i: ha.config(i) for i in (1, 3)}
    pdu = ha.pdu()
    params = [a for k, v in pdu["params"].items() for a in ("--param", f"{k}={v}")]
    fd = ["fence-device", "add", "x", "--agent", "fence_apc_snmp"] + params
    cases = [
        (["vm", "start", "nosuch"], r"nosuch.*not defined"),
        (["vm", "reset", "nosuch"], r"nosuch.*not defined"),
        (["node", "standby", "n9"], r"n9"),
        (["node", "switchover", "n1", "n1"], r"two different nodes"),
        (["node", "switchover", "n1", "n9"], r"n9"),
        (fd + ["--plug", "n1"], r"--plug needs KEY=VALUE, not 'n1'"),
        (fd + ["--plug", "=1"], r"--plug needs KEY=VALUE"),
        (["fence-device", "add", "x", "--agent", "fence_nosuch", "--plug", "n1=1"], r"not installed"),
        (["fence-device", "add", "x", "--agent", "../../bin/sh", "--plug", "n1=1"],
         r"not a fence agent name"),
        (fd + ["--plug", "n9=1"], r"'n9': there is no such node"),
        (fd + ["--plug", "n1=7", "--param", "action=off"], r"'action' is set by herd"),
        (fd + ["--plug", "n1=Outlet 9"], r"not an outlet of x"),
        (["fence-device", "add", "pdu3", "--agent", "fence_apc_snmp"] + params + ["--plug", "n3=3"],
         r"pdu3.*(exists|already)"),
        (["fence-device", "remove", "nosuch"], r"nosuch"),
        (["fence-device", "test", "nosuch"], r"nosuch"),
        (["node", "confirm-down", "n2", "--yes"], r"n2 is alive"),
        (["node", "fence", "n1", "--yes"], r"n1 is this node"),
        (["cluster", "set", "lab_mode=maybe"], r"lab_mode must be yes or no"),
        (["cluster", "set", "admission_control=sometimes"], r"admission_control must be one of"),
        (["cluster", "set", "fence_delay_ms=-1"], r"fence_delay_ms must be"),
        (["cluster", "set", "fence_action=shutdown"],
         r"fence_action must be one of reboot\|off, not 'shutdown'"),
        (["vm", "set", "h1", "--shutdown-timeout", "0"], r"shutdown_timeout_s"),
        (["vm", "set", "h1", "--sticky", "n9"], r"sticky"),
        (["vm", "set", "h1", "--preferred", "n9"], r"n9.*not a node"),
        (["vm", "release", "h1"], r"h1 is not bound to a node"),
        (["vm", "suspend", "off1"], r"not running"),
        (["vm", "shutdown", "off1"], r"off1 is not running"),
    ]
    ha.define("off1", extra=QUICK)
    before = {i: ha.config(i) for i in (1, 3)}
    for args, pattern in cases:
        ha.refused(1, args, pattern)
    # The plug of a node that does not exist, through the API (not the CLI's
    # parser): plugs must be strings.
    for i in (1, 3):
        expect(ha.config(i) == before[i], f"n{i}: the configuration changed after the refused "
                                          f"commands:\n{before[i]}\n{ha.config(i)}")
    say(f"{len(cases)} bad commands refused; the configuration is unchanged on n1 and n3")


# ---------------------------------------------------------------- C

def behind_the_back(tn, ha):
    say("== C. a guest stopped behind herd's back is started again; shutdown times out")
    vms = ha.vms(1)
    node = int(vms["h1"]["node"][1:])
    for how in ("virsh destroy", "kill -9 of its QEMU"):
        boots = ha.boots("h1")
        t0 = time.time()
        if how == "virsh destroy":
            tn.virsh(node, "destroy", "h1")
        else:
            pids = qemu_pids(tn, ha.uuids["h1"])
            check(len(pids) == 1, f"QEMUs of h1: {pids}")
            os.kill(pids[0][1], 9)
        vms = ha.wait_vms(lambda v: v["h1"]["state"] == "running" and v["h1"]["since_ms"] / 1000 > t0,
                          30, f"h1 to run again after {how}")
        ha.wait_counting(["h1"], boots_after={"h1": boots})
        say(f"{how} on n{node}: h1 running again on {vms['h1']['node']} "
            f"+{vms['h1']['since_ms'] / 1000 - t0:.2f} s later, counting after a new boot")
        node = int(vms["h1"]["node"][1:])
    ha.ok(2, "vm", "set", "h1", "--shutdown-timeout", "3")
    t0 = time.time()
    p = ha.ok(2, "vm", "shutdown", "h1", "--wait")
    took = time.time() - t0
    vms = ha.vms(3)
    expect(p.stdout.strip().startswith("VM h1 is shut down") and vms["h1"]["state"] == "shut off" and
           not qemu_pids(tn, ha.uuids["h1"]) and vms["h1"]["target"] == "stopped",
           f"vm shutdown --wait h1: {p.stdout.strip()!r}; then {table(vms)}")
    expect(took >= 3, f"shutdown --wait returned after {took:.1f} s, before the 3 s timeout")
    forced = herdd_log(tn, node, t0, r"did not shut down within 3 s")
    expect(forced, f"n{node}'s herdd.log does not say it forced h1 off after 3 s")
    say(f"vm shutdown --wait h1 (guest ignores ACPI, --shutdown-timeout 3): {p.stdout.strip()!r} "
        f"after {took:.1f} s; herdd: {forced[0][1].split(': ', 1)[1] if forced else '?'}")
    time.sleep(2)
    expect(ha.vms(1)["h1"]["state"] == "shut off", "h1 came back after an operator's shutdown")
    ha.ok(3, "vm", "start", "h1")


# ---------------------------------------------------------------- D

def ops_elsewhere(tn, ha):
    say("== D. reboot, reset, suspend, resume from other nodes (h2 runs on n3)")
    check(ha.vms(1)["h2"]["node"] == "n3", "h2 is not on n3")
    boots = ha.boots("h2")
    p = ha.ok(1, "vm", "reset", "h2")
    wait_until(lambda: ha.boots("h2") > boots, 15, "h2 to boot again after reset")
    ha.wait_counting(["h2"])
    say(f"reset from n1: {p.stdout.strip()!r}; h2 booted again and counts")
    p = ha.ok(2, "vm", "suspend", "h2")
    ha.wait_vms(lambda v: v["h2"]["state"] == "paused", 10, "h2 to be paused")
    time.sleep(0.5)
    c1 = ha.counter("h2")
    time.sleep(2.5)
    c2 = ha.counter("h2")
    expect(c1 == c2, f"h2's counter went on while paused: {c1} -> {c2}")
    say(f"suspend from n2: {p.stdout.strip()!r}; paused, counter stays at {c2}")
    p = ha.ok(1, "vm", "resume", "h2")
    ha.wait_vms(lambda v: v["h2"]["state"] == "running", 10, "h2 to run again")
    wait_until(lambda: (ha.counter("h2") or 0) > c2, 10, "h2's counter to go on after resume")
    say(f"resume from n1: {p.stdout.strip()!r}; counting again")
    p = ha.ok(2, "vm", "reboot", "h2")
    expect(p.stdout.strip() == "VM h2 is rebooting on node n3.", f"vm reboot h2: {p.stdout!r}")
    say(f"reboot from n2: {p.stdout.strip()!r} (the guest ignores ACPI, so nothing more happens)")
    ha.refused(1, ["vm", "reset", "off1"], r"not running", what="reset of a VM that is off")


# ---------------------------------------------------------------- E

def node_modes(tn, ha):
    say("== E. node modes: standby, online, switchover, maintenance")
    for name in ("m1", "m2"):
        ha.define(name, extra=QUICK)
        ha.ok(1, "vm", "start", name)
    movable = ["h1", "m1", "m2", "plain"]
    vms = ha.vms(1)
    say(f"running: {table({n: vms[n] for n in movable + ['h2']})}")

    t0 = time.time()
    boots = {n: ha.boots(n) for n in movable}
    left_n1 = [n for n in movable if vms[n]["node"] == "n1"]
    check(left_n1, f"nothing of {movable} runs on n1 before its standby: {table(vms)}")
    p = ha.ok(2, "node", "standby", "n1", "--wait", timeout=120)
    vms = ha.vms(1)
    gone = [n for n in movable if vms[n]["node"] != "n1"]
    expect(len(gone) == len(movable), f"after standby n1 --wait: {table(vms)}")
    vms = ha.wait_vms(lambda v: all(v[n]["state"] == "running" for n in movable), 30,
                      "the VMs moved off n1 to run")
    expect(all(vms[n].get("return_to") == "n1" for n in left_n1),
           f"VMs that left n1 for its standby do not say they return: "
           f"{[(n, vms[n].get('return_to')) for n in left_n1]}")
    ha.wait_counting(movable)
    moved = [n for n in movable if ha.boots(n) > boots[n]]
    # Live: a guest that ran before (not one started just now, whose first
    # boot may come after the count) does not boot again.
    expect(not {"h1", "plain"} & set(moved), f"standby is live, yet {moved} booted again")
    say(f"standby n1 --wait: {p.stdout.strip().splitlines()[-1]!r} after {time.time() - t0:.1f} s; "
        f"{where(vms, movable)}; booted again: {moved or 'none'}")

    ev = wait_until(lambda: events_of(tn, "n1", ("evacuation", "evacuated")), 20,
                    "the evacuation events of n1", interval=0.5)
    expect("standby mode: its" in ev["evacuation"] and "leave" in ev["evacuation"]
           and "is empty" in ev["evacuated"], f"the evacuation events: {ev}")
    say(f"alert records: {ev['evacuation']!r}, then {ev['evacuated']!r}")
    ha.define("m3", preferred="n1", extra=QUICK)
    p = ha.ok(3, "vm", "start", "m3")
    vms = ha.vms(1)
    expect(vms["m3"]["node"] in ("n2", "n3") and vms["m3"]["state"] == "running",
           f"m3 (preferred n1) started while n1 is in standby: {table(vms)}")
    nodes = ha.nodes(2)
    expect(nodes["n1"]["mode"] == "standby", f"n1's mode: {nodes['n1']['mode']}")
    say(f"m3 (preferred n1) started while n1 is in standby: {p.stdout.strip()!r}")

    t0 = time.time()
    returning = {n: ha.boots(n) for n in left_n1 if n in ("h1", "plain")}
    ha.ok(1, "node", "online", "n1")
    vms = ha.wait_vms(lambda v: all(v[n]["node"] == "n1" and v[n]["state"] == "running"
                                    for n in ["m3"] + left_n1), 60,
                      f"m3 to fail back to n1 once it is online, and {left_n1} to return")
    ha.wait_counting(["m3"] + left_n1)
    rebooted = [n for n in returning if ha.boots(n) != returning[n]]
    expect(not rebooted, f"the return after standby is live, yet {rebooted} booted again")
    expect(not [n for n in left_n1 if vms[n].get("return_to")],
           f"VMs back on n1 still say they return: {[(n, vms[n].get('return_to')) for n in left_n1]}")
    say(f"online n1: m3 back on its preferred n1, {', '.join(left_n1)} returned live "
        f"+{time.time() - t0:.1f} s")

    # A switchover leaves a VM sticky to its node there, and says so.
    ha.define("w2", preferred="n2", extra=QUICK + ["--no-failback"])
    ha.define("s2", extra=QUICK + ["--sticky", "n2"])
    for name in ("w2", "s2"):
        ha.ok(1, "vm", "start", name)
    vms = ha.wait_vms(lambda v: all(v[n]["node"] == "n2" and v[n]["state"] == "running" for n in ("w2", "s2")),
                      30, "w2 and s2 to run on n2")
    on_n2 = [n for n, v in vms.items() if v["node"] == "n2" and v["state"] == "running" and n != "s2"]
    t0 = time.time()
    ha.wait_counting(on_n2 + ["s2"])
    boots = {n: ha.boots(n) for n in on_n2 + ["s2"]}
    p = ha.ok(3, "node", "switchover", "n2", "n1", "--wait", timeout=120)
    expect("VM s2 stays on node n2: it is sticky to node n2 ('herd vm release s2' lets it move)." in p.stdout
           and "No VM that moves is left on node n2" in p.stdout,
           f"switchover n2 n1 --wait with s2 sticky to n2 said: {p.stdout!r}")
    vms = ha.wait_vms(lambda v: all(v[n]["node"] == "n1" and v[n]["state"] == "running" for n in on_n2),
                      60, f"{on_n2} to run on n1")
    expect([n for n, v in vms.items() if v["node"] == "n2"] == ["s2"] and vms["s2"]["state"] == "running",
           f"after switchover (only s2, sticky to n2, stays): {table(vms)}")
    ha.wait_counting(on_n2 + ["s2"])
    rebooted = [n for n in on_n2 + ["s2"] if ha.boots(n) != boots[n]]
    expect(not rebooted, f"switchover is live, yet {rebooted} booted again")
    ha.refused(2, ["vm", "migrate", "s2", "n1"], r"s2.*sticky", what="migrate a sticky VM elsewhere")
    say(f"switchover n2 n1 --wait: {', '.join(on_n2)} migrated live to n1 in {time.time() - t0:.1f} s, "
        f"no boot; s2 (sticky to n2) stays: {p.stdout.strip().splitlines()[1]!r}")
    ev = wait_until(lambda: events_of(tn, "n2", ("switchover", "switchover_done")), 20,
                    "the switchover events of n2", interval=0.5)
    k = len(on_n2)
    expect(f"its {k} VM" in ev["switchover"] and "to node n1" in ev["switchover"] and
           f"of node n2 to node n1 is over: {k} of {k} VM" in ev["switchover_done"],
           f"the switchover events: {ev}")
    say(f"alert records: {ev['switchover']!r}, then {ev['switchover_done']!r}")

    # Maintenance: its VMs go, but the sticky h2 stays (alert) until released.
    vms = ha.vms(1)
    on_n3 = [n for n, v in vms.items() if v["node"] == "n3" and v["state"] == "running"]
    t0 = time.time()
    ha.ok(1, "node", "maintenance", "n3")
    others = [n for n in on_n3 if n != "h2"]
    vms = ha.wait_vms(lambda v: all(v[n]["node"] != "n3" and v[n]["state"] == "running" for n in others),
                      60, f"{others} to leave n3")
    expect(vms["h2"]["node"] == "n3" and vms["h2"]["state"] == "running",
           f"h2 (sticky to n3) left n3 in maintenance: {table(vms)}")
    a = [x["message"] for x in ha.status(2)["ha"]["alerts"]]
    expect(any("h2 is sticky to node n3, which is in maintenance mode" in m for m in a),
           f"no alert about h2 on n3 in maintenance: {a}")
    say(f"maintenance n3: {others} moved away in {time.time() - t0:.1f} s; h2 (sticky) stays, "
        f"alert: {[m for m in a if 'h2' in m]}")
    ha.ok(2, "vm", "release", "h2")
    vms = ha.wait_vms(lambda v: v["h2"]["node"] in ("n1", "n2") and v["h2"]["state"] == "running",
                      60, "h2 to leave n3 once released")
    ha.wait_counting(["h2"])
    say(f"vm release h2: it moved to {vms['h2']['node']}")

    # A node in maintenance that dies is not fenced and blocks nothing.
    hist = len(ha.nodes(1)["n3"]["fence_history"])
    t0 = time.time()
    tn.cli("kill", "3")
    tn.wait_members([1, 2], 2)
    time.sleep(3)
    st = ha.status(1)
    expect(len(ha.nodes(1)["n3"]["fence_history"]) == hist and not st["unfenced_lost_nodes"] and
           not herdd_log(tn, 1, t0, r"fencing n3"),
           f"n3, in maintenance, was fenced or blocks: {st['unfenced_lost_nodes']}, "
           f"{ha.nodes(1)['n3']['fence_history']}")
    ha.ok(2, "vm", "set", "m1", "--shutdown-timeout", "2")
    say("n3 in maintenance killed: not fenced, configuration changes still accepted")
    tn.cli("start", "3")
    tn.wait_members([1, 2, 3], 3, timeout=30)
    t0 = time.time()
    ha.ok(3, "node", "online", "n3")
    wait_until(lambda: ha.nodes(1)["n3"]["mode"] == "online", 10, "n3 online")
    # The VMs that left n3 for its maintenance come back (h2 was released
    # there: it left for the maintenance too).
    back = others + ["h2"]
    vms = ha.wait_vms(lambda v: all(v[n]["node"] == "n3" and v[n]["state"] == "running" for n in back),
                      60, f"{back} to return to n3 once it is online")
    ha.wait_counting(back)
    say(f"n3 started again and online: {', '.join(back)} returned to it +{time.time() - t0:.1f} s")


# ---------------------------------------------------------------- F

def admission(tn, ha):
    say("== F. admission control (N+1)")
    for name, v in ha.vms(1).items():
        if v["target"] == "running":
            ha.ok(1, "vm", "destroy", name)
    ha.wait_vms(lambda v: all(x["state"] == "shut off" for x in v.values()), 30, "every VM to stop")
    ha.set(1, "vcpu_overcommit=1")     # 2 vCPUs per node (the nodes report 2 CPUs)
    for name in ("a1", "a2", "a3"):
        ha.define(name, vcpus=2, extra=QUICK)
    for name in ("a1", "a2"):
        ha.ok(2, "vm", "start", name)
    st = ha.status(1)
    expect(st["ha"]["n_plus_1"], f"N+1 with two full nodes of three: {st['ha']}")
    p = ha.ok(1, "vm", "start", "a3")
    st = wait_until(lambda: (s := ha.status(3)) and not s["ha"]["n_plus_1"] and s, 10,
                    "the N+1 warning")
    text = ha.ok(3, "status").stdout
    a = [x["message"] for x in st["ha"]["alerts"]]
    expect("N+1: losing a node would leave HA VMs without room" in text and
           any("would find no room" in m for m in a), f"herd status with 3 full nodes:\n{text}")
    say(f"a3 started with admission_control=warn ({p.stdout.strip()!r}); herd status warns: "
        f"{[m for m in a if 'no room' in m]}")
    ha.ok(1, "vm", "destroy", "a3")
    ha.wait_vms(lambda v: v["a3"]["state"] == "shut off", 30, "a3 to stop")
    ha.set(2, "admission_control=refuse")
    ha.refused(3, ["vm", "start", "a3"], r"a3 is not started: If node n\d failed, HA VM .* no room.*"
               r"admission_control setting refuses it", what="N+1 refused")
    expect(ha.vms(1)["a3"]["state"] == "shut off", "a3 runs after a refused start")
    ha.set(2, "admission_control=warn", "vcpu_overcommit=4")


def history_restore(tn, ha):
    say("== G. configuration history of a running HA VM: no placements in it; restore keeps it running")
    p = ha.ok(2, "vm", "start", "h1")
    vms = ha.wait_vms(lambda v: v["h1"]["state"] == "running", 30, "h1 to run")
    node = vms["h1"]["node"]
    ha.wait_counting(["h1"])
    hist = ha.json(1, "vm", "history", "h1")
    by_herd = [h["version"] for h in hist if h["user"] == "herd"]
    expect(not by_herd and [h["change"] for h in hist][-1] == "defined",
           f"h1's history (it was started, stopped and moved many times) lists herd's placements "
           f"as configuration versions {by_herd}: {[(h['version'], h['change'], h['user']) for h in hist]}")
    timeout_before = vms["h1"]["shutdown_timeout_s"]
    ha.ok(3, "vm", "set", "h1", "--shutdown-timeout", "7")
    boots = ha.boots("h1")
    p = ha.ok(3, "vm", "restore", "h1", "--force")
    time.sleep(3)
    vms = ha.vms(1)
    expect(vms["h1"]["state"] == "running" and vms["h1"]["node"] == node and ha.boots("h1") == boots,
           f"h1 after restoring its configuration: {table(vms)}, boots {boots} -> {ha.boots('h1')}")
    ha.wait_counting(["h1"])
    expect(vms["h1"]["shutdown_timeout_s"] == timeout_before,
           f"h1's shutdown timeout after the restore: {vms['h1']['shutdown_timeout_s']} "
           f"(want {timeout_before})")
    say(f"h1's history: {len(hist)} versions, none of herd's placements; vm set, then "
        f"{p.stdout.strip()!r}: h1 runs on {node} without a new boot, shutdown timeout "
        f"{timeout_before} s again")


# ---------------------------------------------------------------- H

def start_failures(tn, ha):
    say("== H. a VM whose disk is missing on its node: tried there start_failures_max times, "
        "then placed where it starts")
    img = "/var/lib/libvirt/images/only-on-n2.img"
    p = tn.exec(2, "sh", "-c", f"mkdir -p {os.path.dirname(img)} && cp {ha.image} {img}")
    check(p.returncode == 0, f"copying the guest image into n2: {p.stderr}")
    ha.define("d1", preferred="n1", extra=QUICK, image=img)
    t0 = time.monotonic()
    p = ha.ok(3, "vm", "start", "d1")
    vms = ha.vms(1)
    expect(vms["d1"]["state"] == "running" and vms["d1"]["node"] == "n2",
           f"d1 (its disk only on n2, preferred n1) after vm start ({p.stdout.strip()!r}): {table(vms)}")
    ha.wait_counting(["d1"])
    # n1 first (preferred), then wherever the scheduler put it until n2.
    failed = {f["node"]: f for f in ha.json(1, "vm", "info", "d1")["failed"]}
    expect("n1" in failed and "n2" not in failed and
           all(f["count"] == 3 and "only-on-n2.img" in f["error"] for f in failed.values()),
           f"d1's record of the nodes given up on: {failed}")
    a = ha.alerts(2)
    expect(any(m.startswith("VM d1 failed to start on node n1 3 times (") and "only-on-n2.img" in m
               for m in a), f"no alert names d1, n1 and libvirt's error: {a}")
    say(f"d1 runs on n2 {time.monotonic() - t0:.1f} s after vm start, given up on "
        f"{sorted(failed)}: {failed['n1']['error']}")
    ha.ok(1, "vm", "destroy", "d1")
    failed = ha.json(1, "vm", "info", "d1")["failed"]
    expect(not failed, f"d1's failures after an operator's destroy: {failed}")
    say("an operator's destroy clears the record")


def events_of(tn, node, kinds):
    """{kind: message} of the alert records of @kinds about @node, once there
    is one of each (else None)."""
    code, alerts = api(tn, 3, "GET", "/api/v1/alerts?all=true")
    ev = {a["kind"]: a["message"] for a in (alerts if code == 200 else [])
          if a.get("node") == node and a["kind"] in kinds}
    return ev if len(ev) == len(kinds) else None


def main():
    with Workdir(INSTANCE) as tmp, HaNodes(INSTANCE, 3) as tn:
        ha = Ha(tn, tmp)
        run_steps(tn, ha, (fencing_required, bad_input, behind_the_back, ops_elsewhere,
                            node_modes, admission, history_restore, start_failures))
        check_expected()


if __name__ == "__main__":
    sys.exit(run_test(main, root=True))

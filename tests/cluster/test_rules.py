#!/usr/bin/python3
"""Affinity rules on real test nodes (issue 15, item 3): an anti-affinity
rule added while both of its VMs run on one node makes one of them move,
live (no guest boots again), and it does not come back to its preferred
node while the rule holds; `herd rule` shows the rule and whether it holds;
bad input is refused and changes nothing; a VM in a rule cannot be
undefined until the rule is deleted.

Three nodes, two tiny guests; every node's QEMUs and libvirt are polled all
along (a VM on two nodes at once fails the test).

    tests/cluster/test_rules.py      (as root; HERD_TESTNODES_INSTANCE names
                                      the test nodes, default test-rules)
"""
import os
import sys
import time

_here = os.path.dirname(os.path.realpath(__file__))
sys.path[:0] = [_here, os.path.dirname(_here)]  # harness.py here, testlib.py in tests/
from testlib import check_expected, expect, run_test, say  # noqa: E402
from halib import Ha, HaNodes, Workdir, run_steps, table  # noqa: E402

INSTANCE = os.environ.get("HERD_TESTNODES_INSTANCE", "test-rules")
PAIR = ["r1", "r2"]


def setup(tn, ha):
    say("== both VMs on n1 (their preferred node)")
    ha.add_pdu()
    ha.set(1, "failback_after_s=2")
    for name in PAIR:
        ha.define(name, preferred="n1", extra=["--shutdown-timeout", "2"])
        ha.ok(2, "vm", "start", name)
    vms = ha.wait_vms(lambda v: all(v[n]["state"] == "running" and v[n]["node"] == "n1" for n in PAIR),
                      60, "r1 and r2 to run on n1")
    ha.wait_counting(PAIR)
    say(f"running: {table(vms)}")


def bad_input(tn, ha):
    say("== bad input: clear errors, nothing changes")
    before = ha.json(1, "rule", "list")
    ha.refused(1, ["rule", "add", "x", "--apart", "r1"], r"usage|argument", what="one VM")
    ha.refused(1, ["rule", "add", "x", "r1", "r2"], r"--together or --apart", what="no kind")
    ha.refused(1, ["rule", "add", "x", "--apart", "r1", "nosuch"], r"nosuch.*not defined", what="unknown VM")
    ha.refused(1, ["rule", "add", "x", "--apart", "r1", "r1"], r"named twice", what="a VM twice")
    ha.refused(1, ["rule", "add", "a/b", "--apart", "r1", "r2"], r"rule name", what="bad name")
    ha.refused(1, ["rule", "show", "nosuch"], r"nosuch.*not defined", what="unknown rule")
    expect(ha.json(2, "rule", "list") == before, "a refused rule changed the rules")


def rule_added(tn, ha):
    say("== an anti-affinity rule added while both run on n1: one moves live")
    boots = {n: ha.boots(n) for n in PAIR}
    t0 = time.time()
    p = ha.ok(3, "rule", "add", "r-apart", "--apart", "r1", "r2")
    say(f"herd rule add: {p.stdout.strip()!r}")
    vms = ha.wait_vms(lambda v: all(v[n]["state"] == "running" for n in PAIR) and
                      v["r1"]["node"] != v["r2"]["node"] and not v["r1"].get("move_to") and
                      not v["r2"].get("move_to"), 60, "r1 and r2 to run on two nodes")
    took = time.time() - t0
    ha.wait_counting(PAIR)
    again = [n for n in PAIR if ha.boots(n) > boots[n]]
    expect(not again, f"the move was not live: {again} booted again")
    expect(vms["r2"]["node"] == "n1", f"r2 (second by name) moved instead of r1: {table(vms)}")
    rule = ha.json(2, "rule", "show", "r-apart")
    expect(rule["holds"] is True and rule["kind"] == "apart" and rule["strict"] is True,
           f"herd rule show: {rule}")
    text = ha.ok(1, "rule", "list").stdout
    expect("r-apart" in text and "yes" in text, f"herd rule list:\n{text}")
    say(f"after {took:.1f} s: {table(vms)}; booted again: {again or 'none'}")
    say("herd rule list:\n" + text.rstrip())
    # r1 prefers n1 and fails back after 2 s running, but not against the
    # rule: it is still where the rule put it after twice that.
    moved_to = vms["r1"]["node"]
    time.sleep(5)
    vms = ha.vms(1)
    expect(vms["r1"]["node"] == moved_to and vms["r2"]["node"] == "n1" and not vms["r1"].get("move_to"),
           f"r1 went back to its preferred node against the rule: {table(vms)}")


def undefine_and_delete(tn, ha):
    say("== a VM in a rule is not undefined; the rule is deleted first")
    ha.ok(1, "vm", "destroy", "r2")
    ha.refused(2, ["vm", "undefine", "r2"], r"r2 is in rule r-apart.*herd rule delete r-apart",
               what="undefine a VM in a rule")
    p = ha.ok(3, "rule", "delete", "r-apart")
    expect(p.stdout.strip() == "Rule r-apart deleted.", f"herd rule delete: {p.stdout!r}")
    ha.ok(2, "vm", "undefine", "r2")
    expect(ha.json(1, "rule", "list") == [], "rules left after the delete")


def main():
    with Workdir("test-rules") as tmp, HaNodes(INSTANCE, 3) as tn:
        ha = Ha(tn, tmp)
        run_steps(tn, ha, (setup, bad_input, rule_added, undefine_and_delete))
        check_expected()
    return 0


if __name__ == "__main__":
    sys.exit(run_test(main, root=True))

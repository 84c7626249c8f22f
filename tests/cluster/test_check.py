#!/usr/bin/python3
"""Pre-flight checks on real test nodes (issue 13, item 7; docs/check.md).

Three nodes on two links, the instance's PDU as their fence device (SNMPv3).
- A clean cluster passes: `herd check` exits 0, its clocks, MTU, fencing and
  corosync.conf lines say PASS; GET /api/v1/check has the same results.
- Three faults at once: n3's herdd runs under libfaketime 90 s ahead (its
  /etc/herd/herdd.env, as the unit's EnvironmentFile gives it; the host's
  clock is left alone), n3's interface of link 1 carries 1400 bytes, not the
  cluster's check_mtu of 1500, and a second fence device for n3 has a wrong
  password.  `herd check` exits 1 with a FAIL line for each that names the
  node and says what to fix; the failures become alerts (clock_skew for n3,
  check_failed).
- Each fault undone, `herd check` passes again and the alerts clear.
"""
import json
import os
import sys

_here = os.path.dirname(os.path.realpath(__file__))
sys.path[:0] = [_here, os.path.dirname(_here)]  # harness.py here, testlib.py in tests/
from halib import HaNodes, api  # noqa: E402
from testlib import check, run_test, say, wait_until  # noqa: E402

INSTANCE = "test-check"
FAKETIME_LIB = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"


def herd(tn, i, *args, rc=0, timeout=90):
    p = tn.exec(i, "herd", *args, timeout=timeout)
    check(rc is None or p.returncode == rc,
          f"n{i}: herd {' '.join(args)}: exit {p.returncode}, expected {rc}: "
          f"{(p.stderr or p.stdout).strip()}")
    return p


def run_check(tn, i, rc):
    """herd --json check on node i (exit @rc): its results, and the text lines
    of herd check too (the same checks, printed)."""
    results = json.loads(herd(tn, i, "--json", "check", rc=rc).stdout)["results"]
    return results


def fails(results):
    return [r for r in results if r["status"] == "fail"]


def show(results):
    return "\n".join(f"  {r['status']:4} {r['check']:9} {r.get('node', '-'):4} {r['message']}"
                     for r in results)


def active_alerts(tn, kinds):
    alerts = json.loads(herd(tn, 1, "--json", "alert", "list").stdout)
    return [a for a in alerts if a["kind"] in kinds]


def add_pdu(tn, name, nodes, password=None):
    d = json.loads(tn.cli("pdu", "--v3", "--json").stdout)
    params = dict(d["params"])
    if password:
        params["password"] = password
    argv = ["fence-device", "add", name, "--agent", d["agent"]]
    for k, v in params.items():
        argv += ["--param", f"{k}={v}"]
    for node in nodes:
        argv += ["--plug", f"{node}={d['plugs'][node]}"]
    herd(tn, 1, *argv)


def restart_herdd(tn, i):
    tn.exec(i, os.path.join(_here, "node-service"), "restart", "herdd", timeout=90, check=True)
    # Back and in sync: it answers from its store.
    wait_until(lambda: herd(tn, i, "status", rc=None).returncode == 0 or None, 60, f"n{i}'s herdd back",
               interval=1)


def main():
    with HaNodes(INSTANCE, 3, links=2) as tn:
        tn.wait_members([1, 2, 3], 3)
        add_pdu(tn, "pdu", ["n1", "n2", "n3"])

        # No check has run yet (the coordinator's first is an interval away).
        code, got = api(tn, 2, "GET", "/api/v1/check")
        check(code == 404 and "run herd check" in got.get("error", {}).get("message", str(got)),
              f"GET /api/v1/check before any check: {code} {got}")
        # Bad input: herd check takes no arguments.
        p = herd(tn, 1, "check", "now", rc=None)
        check(p.returncode != 0 and p.stderr.strip(), f"herd check now: exit {p.returncode}")

        # 1. A clean cluster passes.
        results = run_check(tn, 2, rc=0)
        say("clean cluster:\n" + show(results))
        check(not fails(results), "a clean cluster has failures:\n" + show(results))
        passed = {r["check"] for r in results if r["status"] == "pass"}
        for c in ("clock", "mtu", "fence", "corosync", "links", "versions"):
            check(c in passed, f"no PASS for {c}:\n" + show(results))
        code, got = api(tn, 1, "GET", "/api/v1/check")
        check(code == 200 and got.get("results") == results and got.get("node") == "n2",
              f"GET /api/v1/check on n1 is not n2's latest results: {code} {got}")
        text = herd(tn, 3, "check").stdout
        check("PASS  clock" in text and "0 failed (checked from node n3)" in text,
              f"herd check's text: {text}")

        # 2. Three faults.
        tn.exec(3, "sh", "-c", f"printf 'LD_PRELOAD={FAKETIME_LIB}\\nFAKETIME=+90\\n"
                               f"FAKETIME_DONT_FAKE_MONOTONIC=1\\n' >/etc/herd/herdd.env", timeout=10)
        restart_herdd(tn, 3)
        tn.exec(3, "ip", "link", "set", "eth1", "mtu", "1400")
        add_pdu(tn, "pdu-bad", ["n3"], password="not-the-password")
        results = wait_until(lambda: (lambda r: r if any(x["check"] == "clock" and x["status"] == "fail"
                                                          for x in r) else None)(run_check(tn, 1, rc=None)),
                             90, "the check to see n3's clock", interval=2)
        say("three faults:\n" + show(results))
        f = fails(results)
        clock = [r for r in f if r["check"] == "clock"]
        check(len(clock) == 1 and clock[0].get("node") == "n3" and "ahead of" in clock[0]["message"] and
              "NTP" in clock[0]["message"], "no clock failure for n3 that says to use NTP:\n" + show(results))
        mtu = [r for r in f if r["check"] == "mtu"]
        check(any(r.get("node") == "n3" and "link 1" in r["message"] and "MTU" in r["message"] and
                  "at least 1500" in r["message"] for r in mtu) and
              any(r.get("node") in ("n1", "n2") and "to node n3" in r["message"] for r in mtu),
              "no MTU failure of link 1 both ways:\n" + show(results))
        check(not any(r["check"] in ("mtu", "link") and "link 0" in r["message"] for r in f),
              "link 0 fails too:\n" + show(results))
        fence = [r for r in f if r["check"] == "fence"]
        check(len(fence) == 1 and "pdu-bad" in fence[0]["message"] and fence[0].get("node") == "n3" and
              "password" in fence[0]["message"], "no fence failure for pdu-bad:\n" + show(results))
        check(set(r["check"] for r in f) == {"clock", "mtu", "fence"},
              "other failures than the three:\n" + show(results))

        # Failures are alerts.
        wait_until(lambda: len(active_alerts(tn, {"clock_skew"})) == 1 and
                   active_alerts(tn, {"check_failed"}) or None, 30, "the check's alerts")
        alerts = active_alerts(tn, {"clock_skew", "check_failed"})
        say("alerts:\n" + "\n".join(f"  {a['kind']} {a.get('node')}: {a['message']}" for a in alerts))
        check(any(a["kind"] == "clock_skew" and a.get("node") == "n3" for a in alerts),
              f"no clock_skew alert for n3: {alerts}")
        check(any(a["kind"] == "check_failed" and "pdu-bad" in a["message"] for a in alerts),
              f"no check_failed alert about pdu-bad: {alerts}")

        # 3. Undone: passes again, the alerts clear.
        tn.exec(3, "rm", "-f", "/etc/herd/herdd.env")
        restart_herdd(tn, 3)
        tn.exec(3, "ip", "link", "set", "eth1", "mtu", "1500")
        herd(tn, 1, "fence-device", "remove", "pdu-bad")
        results = wait_until(lambda: (lambda r: r if not fails(r) else None)(run_check(tn, 1, rc=None)),
                             90, "the check to pass again", interval=2)
        say("fixed:\n" + show(results))
        wait_until(lambda: not active_alerts(tn, {"clock_skew", "check_failed"}) or None, 30,
                   "the check's alerts to clear")
        say("the alerts cleared")

        # 4. The coordinator (n1) runs the checks by itself, every
        # check_interval_s; bad values are refused, naming the setting.
        p = herd(tn, 1, "cluster", "set", "check_mtu=100", rc=None)
        check(p.returncode != 0 and "check_mtu" in p.stderr, f"check_mtu=100: {p.stderr.strip()}")
        last = api(tn, 3, "GET", "/api/v1/check")[1]["time_ms"]
        herd(tn, 1, "cluster", "set", "check_interval_s=5")
        got = wait_until(lambda: (lambda c: c[1] if c[0] == 200 and c[1]["time_ms"] > last else None)(
            api(tn, 3, "GET", "/api/v1/check")), 90, "a periodic check", interval=2)
        check(got["node"] == "n1" and not fails(got["results"]),
              f"the periodic check is not n1's, or fails: {got}")
        say(f"a periodic check by n1 at {got['time_ms']}")


if __name__ == "__main__":
    sys.exit(run_test(main))

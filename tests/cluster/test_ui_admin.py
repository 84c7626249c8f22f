#!/usr/bin/python3
"""The web UI's cluster pages in a real browser, on three nodes (issue 12,
items 1 and 5; docs/ui.md).

A headless Chromium (uilib.Browser) runs in n3's network namespace:
- admin logs in on n1, n2 and n3: each dashboard shows the same cluster
  (the figures of that node's `herd status --json`, every node's state,
  mode and CPU use);
- on n1's node page for n2: standby (its VM leaves, the evacuation is a
  job with its log on the jobs pages), then online; `herd node list`
  agrees at each step;
- bad form input (a virtual switch on a bridge that is no interface
  name) shows the server's sentence next to the field it concerns, and
  nothing is added;
- the fence device page tests the PDU's plugs; a user added from the
  users page is in `herd user list` and in the page's list at once;
- each add form once, on n1's pages: a dir storage (the cluster share),
  an image-file disk on it, an eSAN disk on n1 and n2, an ISO upload, a
  virtual switch, a fence device, a group; each is in `herd … list
  --json` on n2 or n3 and in the page's list without a reload;
- the eSAN disk's replicas compared from the Storage page (herd disk
  verify): the row shows them identical, as `herd disk show` has it;
  Promote n1 sends force and shows the server's sentence (n1's replica
  is up to date already);
- the dashboard's storage level (the colour), links per node and running
  jobs are those of `herd storage|node|job list`, with a RAM gauge per node;
- the users page shows the newest 100 audit entries when asked, as many
  as `herd audit --limit 100`; the cluster page pauses HA and resumes
  it (`herd status` agrees each time), and runs the checks: its summary
  and results are those of `herd check --last` on n2 and n3;
- the VM list's row of a VM is GET /api/v1/vms/NAME without its details;
  web2 paused: a facts event names it, and the VM list fetches it alone
  (not the list);
- a read-only auditor on n2 is refused standby of n3 with the server's
  whole sentence, and n3 stays online; the header says who it is as
  `herd whoami` does;
- n1, whose UI is open, is powered off: n2's and n3's pages go on and
  show the failover as it happens (n1 lost, then down; its VM running
  elsewhere), n1's page that it lost its node.
Screenshots go to BUILD/ui-screenshots/ (docs/ui.md shows them).
"""
import hashlib
import json
import os
import re
import sys
import time

_here = os.path.dirname(os.path.realpath(__file__))
sys.path[:0] = [_here, os.path.dirname(_here)]  # harness.py here, testlib.py in tests/
from halib import Ha, HaNodes, Workdir  # noqa: E402
from testlib import TestFailure, check, expect, make_iso, run_test, say, wait_until  # noqa: E402
from uilib import (WATCH_FACTS_JS, Browser, add_auditor, admin_password, api_message, curl, dashboard_matches, field, fill,  # noqa: E402
                   login, submit)

INSTANCE = os.environ.get("HERD_TESTNODES_INSTANCE", "test-ui-admin")
AUD_PW = "Aud1tor-pw-5517"
NODES = ("n1", "n2", "n3")
URL = "https://10.99.0.{}:8001/"


def node_views(b, page):
    """Every node's state and mode as @page's dashboard shows them."""
    ids = [f"node-{n}-{what}" for n in NODES for what in ("state", "mode")]
    return b("texts", page=page, testids=ids)


def mode_is(ha, i, node, mode):
    return ha.nodes(i)[node]["mode"] == mode


def same_cluster(b, tn, ha, admin_pw):
    say("== each node's UI shows the same cluster")
    views = {}
    for i in (1, 2, 3):
        page = f"n{i}"
        login(b, page, URL.format(i), "admin", admin_pw)
        seen = dashboard_matches(b, ha, page, i)
        name = b("text", page=page, testid="cluster-name")
        # Every node's CPU use: its load average, from its facts.
        for n in NODES:
            b("wait_visible", page=page, testid=f"node-{n}-cpu", timeout=60000)
        views[page] = (name, seen, node_views(b, page))
        say(f"  {page}: cluster {name}: {seen}")
        b.shot(page, f"admin-dashboard-{page}", full=True)
    first = views["n1"]
    for page, v in views.items():
        check(v == first, f"{page}'s dashboard differs from n1's: {v} vs {first}")
    cpu = b("text", page="n1", testid="node-n2-cpu")
    say(f"  the three dashboards agree: {first[2]}; n2's CPU gauge: {cpu}")
    # The same load average in /metrics, for every node.
    code, _, text = curl(tn, 3, "/metrics", node=2, auth=f"admin:{admin_pw}")
    loads = re.findall(r'^herd_node_load1\{node="(n\d)"\} (\S+)$', text, re.M)
    check(code == 200 and sorted(n for n, _ in loads) == list(NODES), f"/metrics: {code}: load1 {loads}")
    say(f"  /metrics: {loads}")


def standby_online(b, ha):
    say("== the node page: n2 to standby (its VM leaves, a job), then online")
    b("click", page="n1", selector="nav a[href='/nodes']")
    b("wait_visible", page="n1", testid="nodes-row-n2")
    b.shot("n1", "nodes")
    # What if n2 lost its power?  The page asks herd's scheduler, as
    # `herd simulate --node-down n2` does, and changes nothing.
    b("click", page="n1", testid="whatif-down-n2")
    b("click", page="n1", testid="whatif-run")
    row = b("wait_text", page="n1", testid="whatif-vm-web2", contains="n2", timeout=30000)
    cli = ha.json(1, "simulate", "--node-down", "n2")
    to = [v.get("to") for v in cli["vms"] if v["vm"] == "web2"]
    check(to and to[0] and to[0] in row, f"the page's what-if row of web2 {row!r}, herd simulate: {cli['vms']}")
    n1 = b("text", page="n1", testid="whatif-n1")
    check(mode_is(ha, 2, "n2", "online") and ha.vms(2)["web2"]["node"] == "n2",
          f"the what-if changed something: n2 {ha.nodes(2)['n2']['mode']}, web2 on {ha.vms(2)['web2']['node']}")
    say(f"  what if n2 lost its power: {' '.join(row.split())}; {n1}")
    b.shot("n1", "nodes-whatif", full=True)
    b("click", page="n1", selector="[data-testid=nodes-row-n2] a")
    b("wait_text", page="n1", testid="node-mode", equals="online")
    b("click", page="n1", testid="node-set-standby")
    said = b("wait_text", page="n1", testid="node-set-standby-outcome", contains="standby", timeout=60000)
    b("wait_text", page="n1", testid="node-mode", equals="standby", timeout=30000)
    check(mode_is(ha, 2, "n2", "standby"), f"herd says n2 is {ha.nodes(2)['n2']['mode']}")
    say(f"  {said}")
    vms = ha.wait_vms(lambda v: v["web2"]["state"] == "running" and v["web2"]["node"] not in ("n2", None),
                      180, "web2 to leave n2")
    say(f"  web2 runs on {vms['web2']['node']} now")
    b.shot("n1", "node-n2-standby", full=True)
    # The evacuation is a job: the jobs page has it, with its log.
    b("click", page="n1", selector="nav a[href='/jobs']")
    b("wait_visible", page="n1", selector="[data-testid^=job-row-]")
    jobs = ha.json(1, "job", "list", "--all")
    evac = [j for j in jobs if j["kind"] == "evacuate" and j["target"] == "n2"]
    check(evac, f"no evacuation job of n2: {jobs}")
    job = evac[0]["name"]
    b("wait_text", page="n1", testid=f"job-{job}-state", equals="done", timeout=180000)
    b.shot("n1", "jobs")
    b("click", page="n1", selector=f"[data-testid=job-row-{job}] a")
    log = b("wait_text", page="n1", testid="job-log", contains="left", timeout=30000)
    say(f"  job {job}: done; its log: {log.splitlines()[-1] if log else ''}")
    b.shot("n1", "job-log")
    b("goto", page="n1", path="/nodes/n2")
    b("click", page="n1", testid="node-set-online")
    b("wait_text", page="n1", testid="node-mode", equals="online", timeout=30000)
    check(mode_is(ha, 3, "n2", "online"), f"herd says n2 is {ha.nodes(3)['n2']['mode']}")
    say("  n2 is online again")


def bad_input(b, tn, ha, admin):
    say("== bad form input: the server's sentence next to the field; nothing added")
    b("goto", page="n1", path="/networks")
    b("wait_visible", page="n1", testid="network-add")
    b("fill", page="n1", selector="[data-testid=network-add] input[name=name]", value="lan")
    b("fill", page="n1", selector="[data-testid=network-add] input[name=bridge]", value="no such bridge")
    b("click", page="n1", testid="network-add-submit")
    shown = b("wait_text", page="n1", testid="network-add-error", contains=".")
    want = api_message(tn, 1, "POST", "/api/v1/networks", admin, {"name": "lan", "bridge": "no such bridge"})
    check(shown == want, f"the form shows {shown!r}, the server said {want!r}")
    field = b("eval", page="n1", js="document.querySelector('[data-testid=network-add-error]')"
                                    ".closest('.field').querySelector('input,select,textarea').name")
    check(field == "bridge", f"the error is shown by field {field!r}, not by 'bridge'")
    check(ha.json(1, "network", "list") == [], "a network was added")
    say(f"  by the bridge field: {shown}")
    b.shot("n1", "networks-bad-input")

    say("== fence devices: the PDU's plugs tested from the page")
    b("goto", page="n1", path="/fence-devices")
    b("click", page="n1", testid="fence-test-pdu")
    said = b("wait_text", page="n1", testid="fence-test-pdu-outcome", contains="plug", timeout=60000)
    check(said == "All 3 plug(s) answer.", f"the fence test says {said!r}")
    say(f"  {said}")
    b.shot("n1", "fence-devices", full=True)

    say("== a user added from the users page shows in its list without a reload")
    b("goto", page="n1", path="/users")
    fill(b, "n1", "user-add", name="op1", password="Op1-pw-90210", email="op1@example.org")
    # The password is hashed (yescrypt, on a busy host: seconds).
    said = submit(b, "n1", "user-add", timeout=90000)
    b("wait_visible", page="n1", testid="user-row-op1")
    users = {u["name"]: u for u in ha.json(1, "user", "list")}
    check("op1" in users and not users["op1"]["role"] and users["op1"]["email"] == "op1@example.org",
          f"herd user list: {users.get('op1')}")
    say(f"  {said}")
    for path, name in (("/storage", "storage"), ("/users", "users"), ("/settings", "settings"),
                       ("/alerts", "alerts")):
        b("goto", page="n1", path=path)
        b("wait_visible", page="n1", testid=f"page-{name}")
        b.shot("n1", name, full=True)
    # herd version's figures on the cluster page
    b("goto", page="n1", path="/settings")
    shown = b("wait_text", page="n1", testid="versions", contains="corosync")
    v = ha.json(1, "version")["daemon"]["versions"]
    check(all(str(v[k]) in shown for k in ("herd", "protocol", "corosync", "libvirt")),
          f"the cluster page shows {shown!r}, herd version {v}")
    say(f"  the cluster page: versions on n1: {shown}")
    errors = b("console", page="n1")
    expect(not [e for e in errors if "page error" in e or "Content Security Policy" in e],
           f"n1's page logged errors: {errors}")


def by_name(ha, i, *what):
    """{name: object} of `herd WHAT list --json` on node i."""
    return {o["name"]: o for o in ha.json(i, *what, "list")}


def added(b, said, row, section, shot):
    """After a form said @said: its row shows on n1's page (live: no
    reload); a screenshot of its section."""
    b("wait_visible", page="n1", testid=row, timeout=30000)
    say(f"  {said}")
    b.shot("n1", shot, testid=section)


def tiny_iso(tmp):
    """A small ISO (xorriso) and its SHA-256."""
    src = os.path.join(tmp, "iso-src")
    os.makedirs(src)
    with open(os.path.join(src, "hello.txt"), "w") as f:
        f.write("herd test ISO\n")
    iso = os.path.join(tmp, "uitiny.iso")
    make_iso(iso, src, "UITINY")
    with open(iso, "rb") as f:
        return iso, hashlib.sha256(f.read()).hexdigest()


def add_forms(b, ha, tmp):
    say("== each add form on n1's pages; the CLI on another node has what it added")
    share = os.path.join(tmp, "uishare")
    os.makedirs(share)
    b("goto", page="n1", path="/storage")
    fill(b, "n1", "storage-add", name="uishare", path=share)
    b("select", page="n1", selector=field("storage-add", "type"), value="dir")
    b("click", page="n1", selector=field("storage-add", "cluster_share"))
    said = submit(b, "n1", "storage-add")
    s = by_name(ha, 2, "storage").get("uishare")
    check(s and s["type"] == "dir" and s["path"] == share and s["cluster_share"], f"herd storage list on n2: {s}")
    added(b, said, "storage-row-uishare", "storage-section", "add-storage")

    fill(b, "n1", "disk-create", name="uidisk", size="16M")
    b("select", page="n1", selector=field("disk-create", "storage"), value="uishare")
    b("select", page="n1", selector=field("disk-create", "format"), value="qcow2")
    said = submit(b, "n1", "disk-create")
    d = by_name(ha, 3, "disk").get("uidisk")
    check(d and d["storage"] == "uishare" and d["format"] == "qcow2" and d["size"] == 16 << 20,
          f"herd disk list on n3: {d}")
    added(b, said, "disk-row-uidisk", "disks-section", "add-disk")
    # eSAN: replicas on n1 and n2, on their link 0 addresses (esan_link 0).
    fill(b, "n1", "disk-create", name="uiesan", size="8M", esan="n1,n2")
    b("select", page="n1", selector=field("disk-create", "storage"), value="-")
    said = submit(b, "n1", "disk-create")
    d = by_name(ha, 3, "disk").get("uiesan")
    check(d and d.get("esan") and sorted(r["node"] for r in d["esan"]["replicas"]) == ["n1", "n2"],
          f"herd disk list on n3: {d}")
    b("wait_text", page="n1", testid="disk-row-uiesan", contains="eSAN n1", timeout=30000)
    added(b, said, "disk-row-uiesan", "disks-section", "add-disk-esan")

    iso, sha = tiny_iso(tmp)
    b("upload", page="n1", selector=field("iso-upload", "file"), path=iso)
    said = submit(b, "n1", "iso-upload")
    i = by_name(ha, 2, "iso").get("uitiny")
    check(i and i["sha256"] == sha and sha in said, f"herd iso list on n2: {i}; the page said {said!r}")
    added(b, said, "iso-row-uitiny", "isos-section", "add-iso")

    b("goto", page="n1", path="/networks")
    fill(b, "n1", "network-add", name="uilan", bridge="br-ui", vlan=12)
    said = submit(b, "n1", "network-add")
    n = by_name(ha, 3, "network").get("uilan")
    check(n and n["bridge"] == "br-ui" and n["vlan"] == 12, f"herd network list on n3: {n}")
    added(b, said, "network-row-uilan", "networks-section", "add-network")

    b("goto", page="n1", path="/fence-devices")
    pdu = ha.pdu()
    fill(b, "n1", "fence-add", name="pdu2", agent=pdu["agent"], level=2,
         params="\n".join(f"{k}={v}" for k, v in pdu["params"].items()),
         plugs="\n".join(f"{k}={v}" for k, v in pdu["plugs"].items()))
    said = submit(b, "n1", "fence-add")
    d = by_name(ha, 2, "fence-device").get("pdu2")
    check(d and d["agent"] == pdu["agent"] and d["level"] == 2 and
          {k: str(v) for k, v in d["plugs"].items()} == {k: str(v) for k, v in pdu["plugs"].items()},
          f"herd fence-device list on n2: {d}")
    added(b, said, "fence-row-pdu2", "fence-section", "add-fence-device")
    # Fencing n1 below tries the PDU alone, as before.
    ha.ok(2, "fence-device", "remove", "pdu2")

    b("goto", page="n1", path="/users")
    fill(b, "n1", "group-add", name="uiops", roles="operator", pools="web", members="op1")
    said = submit(b, "n1", "group-add")
    g = by_name(ha, 3, "group").get("uiops")
    check(g and g["roles"] == ["operator"] and g["pools"] == ["web"] and g["members"] == ["op1"],
          f"herd group list on n3: {g}")
    added(b, said, "group-row-uiops", "groups-section", "add-group")


def esan_actions(b, tn, ha, admin):
    say("== the eSAN disk: its replicas compared from the page; Promote says the server's sentence")
    def in_sync():
        d = ha.json(1, "disk", "show", "uiesan")
        reps = d["esan"]["replicas"]
        return all(r["state"] == "uptodate" and (r.get("herd_san") or {}).get("conn") == "connected"
                   for r in reps) and d
    d = wait_until(in_sync, 120, "uiesan's replicas up to date and connected")
    b("goto", page="n1", path="/storage")
    b("click", page="n1", testid="disk-verify-uiesan")
    b("wait_text", page="n1", testid="disk-verify-uiesan-outcome", contains="started")
    shown = b("wait_text", page="n1", testid="disk-uiesan-verify", contains="identical", timeout=120000)
    v = ha.json(2, "disk", "show", "uiesan")["esan"]["verify"]
    check(v["done"] and v["equal"] and v["compared"] > 0, f"herd disk show on n2: verify {v}")
    say(f"  {shown}")
    b.shot("n1", "disk-verify", testid="disks-section")
    b("click", page="n1", testid="disk-promote-uiesan-n1")
    b("click", page="n1", testid="disk-promote-uiesan-n1-yes")
    shown = b("wait_text", page="n1", testid="disk-promote-uiesan-n1-outcome", contains=".")
    want = api_message(tn, 1, "POST", "/api/v1/disks/uiesan/promote", admin, {"node": "n1", "force": True})
    check(shown == want and "force" not in shown, f"Promote n1 shows {shown!r}; the server says {want!r}")
    reps = {r["node"]: r["state"] for r in ha.json(3, "disk", "show", "uiesan")["esan"]["replicas"]}
    check(reps == {"n1": "uptodate", "n2": "uptodate"}, f"a refused promote changed the replicas: {reps}")
    say(f"  Promote n1: {shown}")
    # Not left for the failover below (n1's replica would be lost with n1).
    ha.ok(2, "disk", "delete", "uiesan")


def level(pct):
    """ui/src/levels.js's level: the alerts' (warning from 80 %, critical from 90 %)."""
    return "critical" if pct >= 90 else "warning" if pct >= 80 else "ok"


def dashboard_parts(b, ha):
    say("== the dashboard's storage, RAM, links and running jobs, as the CLI has them")
    b("goto", page="n1", path="/")
    b("wait_visible", page="n1", testid="storage-uishare-usage", timeout=30000)
    seen = {}

    def storage_agrees():
        s = {x["name"]: x for x in ha.json(1, "storage", "list")}["uishare"]
        pcts = [(r["size"] - r["free"]) * 100 / r["size"] for r in s["nodes"].values() if r.get("ok") and r.get("size")]
        seen["cli"] = level(max(pcts)) if pcts else None
        seen["page"] = b("attr", page="n1", testid="storage-uishare-usage", name="data-level")
        return seen["cli"] is not None and seen["page"] == seen["cli"]
    wait_until(storage_agrees, 30, f"the dashboard's level of storage uishare to be herd storage list's ({seen})")
    usage = b("text", page="n1", testid="storage-uishare-usage")
    for n in ha.json(1, "node", "list"):
        row = b("text", page="n1", testid=f"node-{n['name']}")
        for link in n["links"]:
            want = f"link {link['link']}: {link['state']}"
            check(want in row, f"the dashboard's row of {n['name']} lacks {want!r}: {row!r}")
        b("wait_visible", page="n1", testid=f"node-{n['name']}-ram")
    wait_until(lambda: b("text", page="n1", testid="jobs-running") == str(len(ha.json(1, "job", "list"))), 30,
               "the dashboard's running jobs to be herd job list's")
    say(f"  storage uishare {usage} ({seen['page']}, as herd storage list); every node's links as herd node "
        f"list; a RAM gauge each; {b('text', page='n1', testid='jobs-running')} job(s) running, as herd job list")


def audit_ha_pause(b, ha):
    say("== the audit log's newest 100 entries; HA paused and resumed from the cluster page")
    # More than the page's first 50 entries: settings changed and reset
    # (each change is an entry of the log).
    more = 60 - len(ha.json(1, "audit", "--limit", "10000"))
    if more > 0:
        p = ha.tn.exec(1, "sh", "-c", f"for i in $(seq {more}); do herd cluster set failback_after_s=$((10 + i)) "
                       ">/dev/null || exit 1; done; herd cluster set failback_after_s=")
        check(p.returncode == 0, f"herd cluster set, {more} times: {p.stderr}")
    b("goto", page="n1", path="/users")
    b("wait_text", page="n1", testid="audit-count", equals="50 shown")
    b("select", page="n1", testid="audit-limit", value="100")
    seen = {}

    def as_cli():
        seen["cli"] = len(ha.json(1, "audit", "--limit", "100"))
        seen["page"] = b("text", page="n1", testid="audit-count")
        return seen["page"] == f"{seen['cli']} shown"
    wait_until(as_cli, 30, f"the users page to show as many audit entries as herd audit --limit 100 ({seen})")
    check(seen["cli"] > 50, f"herd audit --limit 100 lists {seen['cli']} entries, not more than 50")
    say(f"  the audit log: {seen['page']}, as herd audit --limit 100")
    b("goto", page="n1", path="/settings")
    b("wait_text", page="n1", testid="ha-paused", contains="HA runs")
    b("click", page="n1", testid="ha-pause-toggle")
    b("click", page="n1", testid="ha-pause-toggle-yes")
    shown = b("wait_text", page="n1", testid="ha-pause-toggle-outcome", contains="paused")
    b("wait_text", page="n1", testid="ha-paused", contains="HA is paused")
    check(ha.status(2)["ha_paused"] is True, "herd status on n2: HA not paused")
    say(f"  {shown}")
    b.shot("n1", "settings-ha-paused", testid="cluster-section")
    b("click", page="n1", testid="ha-pause-toggle")
    shown = b("wait_text", page="n1", testid="ha-pause-toggle-outcome", contains="resumed")
    b("wait_text", page="n1", testid="ha-paused", contains="HA runs")
    check(ha.status(3)["ha_paused"] is False, "herd status on n3: HA still paused")
    say(f"  {shown}")

    say("== the checks run from the cluster page; herd check --last on n2 has the same results")
    b("click", page="n1", testid="check-run")
    shown = b("wait_text", page="n1", testid="check-run-outcome", contains="passed", timeout=120000)
    p = ha.run(2, "--json", "check", "--last")
    check(p.returncode in (0, 1), f"herd check --last on n2: exit {p.returncode}: {p.stderr}")
    last = json.loads(p.stdout)
    n = {s: sum(1 for r in last["results"] if r["status"] == s) for s in ("pass", "warn", "fail")}
    want = f"{n['pass']} passed, {n['warn']} warnings, {n['fail']} failed (checked from node n1)."
    check(last["node"] == "n1" and shown == want, f"the page says {shown!r}; herd check --last: {want!r}")
    rows = b("count", page="n1", selector="[data-testid=check-report] tbody tr")
    check(rows == len(last["results"]), f"the page lists {rows} results, herd check --last {len(last['results'])}")
    text = ha.run(3, "check", "--last").stdout.strip().splitlines()[-1]
    check(text.startswith(want[:-2] + ", "), f"herd check --last on n3 ends {text!r}")
    say(f"  {shown}; herd check --last on n3: {text}")
    b.shot("n1", "settings-checks", testid="checks-section")


def row_is_the_vms(tn, ha, admin):
    """The VM list's row of a VM is GET /api/v1/vms/NAME without what only
    that has (ui/src/vm_rows.js updates one row from it)."""
    # Read both while nothing moves: web2 returns to n2, its preferred node,
    # failback_after_s (10 s) after n2 went online again (standby_online),
    # and the list and the GET must not straddle that migration.
    ha.wait_vms(lambda v: v["web2"]["node"] == "n2" and v["web2"]["state"] == "running"
                and not v["web2"].get("move_to") and not v["web1"].get("move_to"),
                180, "web2 back on n2, nothing moving")
    code, _, text = curl(tn, 3, "/api/v1/vms", node=1, auth=admin)
    check(code == 200, f"GET /api/v1/vms: {code} {text[:200]}")
    rows = {vm["name"]: vm for vm in json.loads(text)}
    for name in ("web1", "web2"):
        code, _, text = curl(tn, 3, f"/api/v1/vms/{name}", node=1, auth=admin)
        check(code == 200, f"GET /api/v1/vms/{name}: {code} {text[:200]}")
        one = json.loads(text)
        for k in ("xml", "hardware", "migration", "start_after_name", "pending", "uptime_s"):
            one.pop(k, None)
        row = dict(rows[name])
        row.pop("uptime_s", None)
        check(row == one, f"{name}: the list's row {row} and GET /api/v1/vms/{name} {one} differ")
    say("  the list's rows are GET /api/v1/vms/NAME's JSON without its details")


FETCHED_JS = "performance.getEntriesByType('resource').map((e) => new URL(e.name).pathname)"


def one_vm_fetched(b, ha):
    say("== web2 paused: the facts event names it, the VM list fetches it alone")
    uuid = ha.uuids["web2"]
    b("goto", page="n1", path="/vms")
    b("wait_text", page="n1", testid="vm-state-web2", equals="running", timeout=30000)
    b("eval", page="n1", js=WATCH_FACTS_JS)
    ha.ok(2, "vm", "suspend", "web2")
    b("wait_text", page="n1", testid="vm-state-web2", equals="paused", timeout=30000)
    facts = b("eval", page="n1", js="window.__facts")
    fetched = b("eval", page="n1", js=FETCHED_JS)
    check(any(f.get("vms") == [uuid] for f in facts), f"no facts event names web2 ({uuid}) alone: {facts}")
    check(f"/api/v1/vms/{uuid}" in fetched and "/api/v1/vms" not in fetched,
          f"the VM list fetched {fetched}, not web2 alone")
    say(f"  facts events: {facts}; the page fetched {sorted(set(fetched))}")
    ha.ok(2, "vm", "resume", "web2")
    b("wait_text", page="n1", testid="vm-state-web2", equals="running", timeout=30000)


def auditor(b, tn, ha):
    say("== a read-only auditor on n2 is refused standby of n3, with a whole sentence")
    login(b, "aud", URL.format(2), "aud", AUD_PW)
    who = b("text", page="aud", testid="user")
    check(who == "aud (auditor)", f"the header says {who!r}, not herd whoami's 'aud (auditor)'")
    b("goto", page="aud", path="/nodes/n3")
    b("wait_text", page="aud", testid="node-mode", equals="online")
    b("click", page="aud", testid="node-set-standby")
    shown = b("wait_text", page="aud", testid="node-set-standby-outcome", contains=".")
    want = api_message(tn, 2, "POST", "/api/v1/nodes/n3/mode", f"aud:{AUD_PW}", {"mode": "standby"})
    check(shown == want and want[0].isupper() and want.endswith(".") and " " in want,
          f"the auditor sees {shown!r}, the server said {want!r}")
    check(mode_is(ha, 2, "n3", "online"), "the auditor changed n3's mode")
    say(f"  {shown}")
    b.shot("aud", "auditor-node-refused")
    b("close", page="aud")


def failover(b, tn, ha):
    say("== n1 powered off with its UI open: n2's and n3's UIs show the failover")
    vms = ha.vms(2)
    check(vms["web1"]["node"] == "n1" and vms["web1"]["state"] == "running", f"web1: {vms['web1']}")
    for i in (1, 2, 3):
        b("goto", page=f"n{i}", path="/")
        b("wait_text", page=f"n{i}", testid="nodes-active", equals="3 of 3")
    b("goto", page="n3", path="/vms")
    b("wait_text", page="n3", testid="vm-node-web1", equals="n1")
    tn.power_off(1)
    t0 = time.monotonic()
    # What n2's dashboard shows as it happens, each new sight once (with
    # when it was first seen: reported, not asserted).
    sights, when = [], []
    ids = ["nodes-active", "node-n1-state", "ha-running", "quorum"]

    def over():
        seen = b("texts", page="n2", testids=ids)
        if not sights or sights[-1] != seen:
            sights.append(seen)
            when.append(time.monotonic() - t0)
        vm = b("text", page="n3", testid="vm-node-web1")
        state = b("text", page="n3", testid="vm-state-web1")
        return vm in ("n2", "n3") and state == "running" and seen["nodes-active"] == "2 of 3" \
            and seen["ha-running"] == "2/2"
    try:
        wait_until(over, 240, "n3's VM list to show web1 running on n2 or n3, and n2's dashboard 2/2",
                   interval=0.2)
    except TestFailure as e:
        raise TestFailure(f"{e}; n2's dashboard showed: {sights}") from None
    for s, t in zip(sights, when):
        say(f"  +{t:.1f} s n2's dashboard: {s}")
    check(any(s["nodes-active"] == "2 of 3" and s["node-n1-state"] != "online" for s in sights),
          f"n2's dashboard never showed n1 gone: {sights}")
    expect(any(s["ha-running"] != "2/2" for s in sights),
           f"n2's dashboard did not show web1 down before it ran elsewhere: {sights}")
    where = b("text", page="n3", testid="vm-node-web1")
    say(f"  n3's VM list: web1 running on {where}")
    check(ha.vms(2)["web1"]["node"] == where, f"herd says web1 is on {ha.vms(2)['web1']['node']}")
    seen = dashboard_matches(b, ha, "n2", 2, timeout=60)
    b("goto", page="n3", path="/")
    dashboard_matches(b, ha, "n3", 3, timeout=60)
    state = b("text", page="n2", testid="node-n1-state")
    say(f"  n2's and n3's dashboards agree with herd status: n1 {state}; {seen}")
    b("wait_text", page="n1", testid="live", equals="reconnecting…", timeout=60000)
    say("  n1's page: its node is gone (reconnecting)")
    b.shot("n2", "failover-n2", full=True)
    b.shot("n3", "failover-n3")
    b.shot("n1", "failover-n1-gone")
    for page in ("n2", "n3"):
        errors = b("console", page=page)
        expect(not [e for e in errors if "page error" in e or "Content Security Policy" in e],
               f"{page}'s page logged errors: {errors}")


def main():
    with HaNodes(INSTANCE, 3) as tn, Workdir(INSTANCE) as tmp:
        tn.wait_members([1, 2, 3], 3)
        ha = Ha(tn, tmp)
        admin_pw = admin_password(tn)
        admin = f"admin:{admin_pw}"
        add_auditor(ha, tmp, "aud", AUD_PW)
        # A fenced node stays off (a reboot would bring n1 back meanwhile).
        ha.set(1, "fence_action=off")
        ha.add_pdu()
        quick = ["--shutdown-timeout", "2"]
        ha.define("web1", preferred="n1", extra=quick)
        ha.define("web2", preferred="n2", extra=quick)
        for name in ("web1", "web2"):
            ha.ok(1, "vm", "start", name)
        ha.wait_counting(["web1", "web2"], timeout=120)
        say(f"web1 and web2 run: {json.dumps({k: v['node'] for k, v in ha.vms(1).items()})}")

        b = Browser(tn, 3, log="browser-admin.log")
        try:
            t = time.monotonic()
            same_cluster(b, tn, ha, admin_pw)
            standby_online(b, ha)
            bad_input(b, tn, ha, admin)
            add_forms(b, ha, tmp)
            esan_actions(b, tn, ha, admin)
            dashboard_parts(b, ha)
            audit_ha_pause(b, ha)
            row_is_the_vms(tn, ha, admin)
            one_vm_fetched(b, ha)
            auditor(b, tn, ha)
            failover(b, tn, ha)
            say(f"-- {time.monotonic() - t:.0f} s in the browser")
        finally:
            b.close()


if __name__ == "__main__":
    sys.exit(run_test(main))

#!/usr/bin/python3
"""The web UI's VM pages and the console in a real browser (issue 12, items
1, 2, 5; docs/ui.md).

Three nodes; a headless Chromium in n2's network namespace (tests/ui/
browser.mjs, the Browser of test_ui.py) opens n1's UI, and n2's for the end:
- the create form with a memory that is no size: the server's sentence
  shows next to the memory field, and no VM was made; the same for a NIC
  without a virtual switch, at the NICs;
- the form makes VM uivm1 (64 MiB, no disk: SeaBIOS's screen is enough),
  preferred on n3, without failback;
- edit (its anti-affinity group) is a new configuration version, the
  history lists both, and restore brings the one before back;
- its XML tab shows `herd vm dumpxml`'s XML; the form binds it to n2
  (sticky) and its page's Release unbinds it (herd vm release);
- the new VM's page defines a VM from libvirt XML: XML that is no domain
  shows the server's sentence by the text and makes nothing; the test
  guest's XML makes uixml1, whose XML tab changes its memory (a new
  configuration version);
- the VM list, filtered to a pool of two other VMs, selects all shown,
  starts both at once and powers both off at once;
- its page starts it;
- the console on n1's page, carried by n1 to the VM on n3, shows the
  screen (noVNC's canvas has more than one colour);
- the VM migrates live to n1 from its page: the console's websocket ends,
  and the page takes a new ticket and shows the screen again by itself;
- from n2's page the VM is powered off and deleted: n1's console says so
  and its canvas is gone; no console is left on any node;
- the history of every VM (herd vm history --pattern) lists the deleted
  VMs' versions as the CLI does, and leads to the deleted VM's history.
Screenshots go to BUILD/ui-screenshots/ (docs/ui.md shows them).
"""
import json
import os
import re
import sys

_here = os.path.dirname(os.path.realpath(__file__))
sys.path[:0] = [_here, os.path.dirname(_here)]  # harness.py here, testlib.py in tests/
from halib import Ha, HaNodes, Workdir  # noqa: E402
from test_ui import Browser, api_message  # noqa: E402
from testlib import TestFailure, check, expect, guest_xml, run_test, say, wait_until  # noqa: E402

INSTANCE = os.environ.get("HERD_TESTNODES_INSTANCE", "test-ui-vm")
VM = "uivm1"

# What noVNC's canvas shows: its size and how many colours (every 4th
# pixel); null without a canvas.
CANVAS_JS = """(() => {
  const c = document.querySelector('[data-testid=console-screen] canvas');
  if (!c || !c.width || !c.height) return null;
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  const colours = new Set();
  for (let i = 0; i < d.length; i += 16) colours.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2]);
  return { width: c.width, height: c.height, colours: colours.size };
})()"""


def choose(b, page, testid, value):
    """Choose @value in the <select> [data-testid=@testid] (as a user does:
    a change event)."""
    js = f"""(() => {{
      const s = document.querySelector('[data-testid={testid}]');
      if (!s || ![...s.options].some((o) => o.value === {json.dumps(value)})) return false;
      s.value = {json.dumps(value)};
      s.dispatchEvent(new Event('change', {{ bubbles: true }}));
      return true;
    }})()"""
    wait_until(lambda: b("eval", page=page, js=js), 15, f"{page}: option {value!r} in [{testid}]",
               interval=0.2)


def screen_shown(b, page, what, timeout=60):
    """Wait until noVNC's canvas on @page shows a screen (not one colour)."""
    seen = {}

    def shown():
        seen["canvas"] = b("eval", page=page, js=CANVAS_JS)
        return seen["canvas"] and seen["canvas"]["colours"] > 1
    try:
        wait_until(shown, timeout, f"{page}: the console to show the screen {what}", interval=0.5)
    except TestFailure as e:
        raise TestFailure(f"{e}: canvas {seen.get('canvas')}") from None
    return seen["canvas"]


def consoles(ha, i):
    return ha.status(i)["node"]["consoles"]


def admin_password(tn):
    with open(os.path.join(tn.tn.dir, "admin-password")) as f:
        return f.read().strip()


def login(b, page, url, password):
    b("open", page=page, url=url)
    b("wait_url", page=page, path="/login")
    b("fill", page=page, selector="input[name=user]", value="admin")
    b("fill", page=page, selector="input[name=password]", value=password)
    b("click", page=page, selector="button[type=submit]")
    b("wait_text", page=page, testid="live", equals="live")


def create_form(b, tn, ha, admin):
    say("== the create form: a bad memory shows the server's sentence at the field; nothing is made")
    b("click", page="n1", selector="nav a[href='/vms']")
    b("click", page="n1", testid="vm-new")
    b("wait_url", page="n1", path="/vms/new")
    b("fill", page="n1", selector="[data-testid=f-name]", value=VM)
    b("fill", page="n1", selector="[data-testid=f-memory]", value="lots")
    choose(b, "n1", "f-preferred", "n3")
    # No failback: after the migration below it stays on n1 (as in test_console).
    b("click", page="n1", testid="f-failback")
    b("click", page="n1", testid="f-submit")
    shown = b("wait_text", page="n1", testid="err-memory", contains=".")
    want = api_message(tn, 1, "POST", "/api/v1/vms", admin, {"name": VM, "memory": "lots", "hardware": {}})
    check(shown == want, f"next to the memory field: {shown!r}; the server says {want!r}")
    beside = b("eval", page="n1", js="""(() => {
      const e = document.querySelector('[data-testid=err-memory]');
      const f = e && e.closest('.field');
      return !!(f && f.querySelector('[data-testid=f-memory]'));
    })()""")
    check(beside, "the memory error is not in the memory field's box")
    check(VM not in ha.vms(1), f"a refused create made VM {VM}")
    b("wait_visible", page="n1", selector=".field.invalid [data-testid=f-memory]")
    say(f"  memory 'lots': {shown}")
    b.shot("n1", "vm-create-bad-memory", full=True)

    say("== a NIC without a virtual switch: the server's sentence at the NICs")
    b("fill", page="n1", selector="[data-testid=f-memory]", value="64M")
    b("click", page="n1", testid="f-add-nics")
    b("click", page="n1", testid="f-submit")
    shown = b("wait_text", page="n1", testid="err-nics", contains=".")
    want = api_message(tn, 1, "POST", "/api/v1/vms", admin,
                       {"name": VM, "memory": "64M", "hardware": {"nics": [{"network": "", "model": "virtio"}]}})
    check(shown == want, f"next to the NICs: {shown!r}; the server says {want!r}")
    check(b("count", page="n1", selector="[data-testid=err-memory]") == 0, "the memory error stayed")
    check(VM not in ha.vms(1), f"a refused create made VM {VM}")
    say(f"  {shown}")
    b("click", page="n1", selector="[data-testid=f-nics-0] button")

    say("== the form makes the VM")
    b("click", page="n1", testid="f-submit")
    b("wait_url", page="n1", path=f"/vms/{VM}")
    vm = ha.vms(1).get(VM)
    check(vm and vm["memory_mib"] == 64 and vm.get("preferred") == "n3" and vm["failback"] is False,
          f"herd vm list after the create: {vm}")
    b("wait_text", page="n1", testid="vm-memory", equals="64 MiB")
    say(f"  {VM} made from the form")


def start(b, ha):
    say("== its page starts it")
    b("click", page="n1", testid="tab-details")
    b("click", page="n1", testid="vm-start")
    b("wait_text", page="n1", testid="vm-state", contains="running", timeout=120000)
    b("wait_text", page="n1", testid="vm-node", equals="n3", timeout=30000)
    check(ha.vms(1)[VM]["state"] == "running", f"herd says {VM} is {ha.vms(1)[VM]['state']}")
    say(f"  {VM} running on n3")
    b.shot("n1", "vm-page", full=True)


def edit_history(b, ha):
    say("== edit is a new configuration version; the history restores the one before")
    before = int(b("text", page="n1", testid="vm-version"))
    b("click", page="n1", testid="tab-edit")
    b("fill", page="n1", selector="[data-testid=f-group]", value="web")
    b("click", page="n1", testid="f-submit")
    b("wait_url", page="n1", path=f"/vms/{VM}")
    b("wait_text", page="n1", testid="vm-version", equals=str(before + 1))
    check(ha.json(1, "vm", "info", VM).get("group") == "web", "the edit did not set the group")
    b("click", page="n1", testid="tab-history")
    b("wait_visible", page="n1", testid=f"history-{before + 1}")
    b.shot("n1", "vm-history", full=True)
    b("click", page="n1", testid=f"restore-{before}")
    # Over the VM as it is: the server's sentence, and the choice to force it.
    shown = b("wait_text", page="n1", testid="history-outcome", contains="force")
    say(f"  restore over the current configuration: {shown}")
    b("click", page="n1", testid="restore-force")
    shown = b("wait_text", page="n1", testid="history-outcome", contains="restored")
    info = ha.json(1, "vm", "info", VM)
    check(info.get("group") is None and info["version"] > before + 1,
          f"after restoring version {before}: {info}")
    say(f"  {shown}")


# A text box's value, '' while it is not there (the XML tab shows
# "Loading…" until the version's XML came, also after a save).
TEXT_JS = "document.querySelector('[data-testid={}]')?.value ?? ''"


def xml_sticky(b, tn, ha, admin):
    say("== its XML tab shows herd vm dumpxml's XML; sticky from the form, Release on its page")
    b("click", page="n1", testid="tab-xml")
    b("wait_visible", page="n1", testid="vm-xml-text")
    wait_until(lambda: b("eval", page="n1", js=TEXT_JS.format("vm-xml-text")), 15, "the XML in its tab")
    shown = b("eval", page="n1", js=TEXT_JS.format("vm-xml-text"))
    dumped = ha.ok(1, "vm", "dumpxml", VM).stdout
    check(shown.strip() == dumped.strip(), f"the XML tab shows {shown!r}; herd vm dumpxml {dumped!r}")
    say(f"  the XML tab: {len(shown)} characters, as herd vm dumpxml")
    b("click", page="n1", testid="tab-edit")
    choose(b, "n1", "f-sticky", "n2")
    b("click", page="n1", testid="f-submit")
    b("wait_url", page="n1", path=f"/vms/{VM}")
    b("wait_text", page="n1", testid="vm-sticky", equals="n2")
    check(ha.json(1, "vm", "info", VM).get("sticky") == "n2", "the form did not bind the VM to n2")
    b("click", page="n1", testid="vm-release")
    shown = b("wait_text", page="n1", testid="vm-outcome", contains="release")
    b("wait_text", page="n1", testid="vm-sticky", equals="\u2013")
    check(ha.json(1, "vm", "info", VM).get("sticky") is None, "Release did not unbind the VM")
    check(b("count", page="n1", selector="[data-testid=vm-release]") == 0, "Release is still offered")
    say(f"  sticky n2 from the form, then Release: {shown}")

    say("== the new VM's page: a VM from libvirt XML; bad XML refused by the text")
    b("goto", page="n1", path="/vms/new")
    bad = "<domain type='qemu'><name>uixml1</name>"
    b("fill", page="n1", selector="[data-testid=vm-define-text]", value=bad)
    b("click", page="n1", testid="vm-define-submit")
    shown = b("wait_text", page="n1", testid="vm-define-error", contains="XML")
    want = api_message(tn, 1, "POST", "/api/v1/vms", admin, {"xml": bad})
    check(shown == want.strip(), f"by the XML: {shown!r}; the server says {want!r}")
    check("uixml1" not in ha.vms(1), "refused XML made a VM")
    say(f"  XML that is no domain: {shown}")
    b("fill", page="n1", selector="[data-testid=vm-define-text]", value=guest_xml("uixml1"))
    b("click", page="n1", testid="vm-define-submit")
    b("wait_url", page="n1", path="/vms/uixml1")
    vm = ha.vms(1).get("uixml1")
    check(vm and vm["memory_mib"] == 32, f"herd vm list after the define: {vm}")
    b("click", page="n1", testid="tab-xml")
    wait_until(lambda: b("eval", page="n1", js=TEXT_JS.format("vm-xml-text")), 15, "uixml1's XML in its tab")
    xml = b("eval", page="n1", js=TEXT_JS.format("vm-xml-text"))
    changed = re.sub(r"<(memory|currentMemory)( [^>]*)?>\d+</\1>", r"<\1 unit='MiB'>48</\1>", xml)
    check(changed != xml, f"no memory in uixml1's XML: {xml}")
    b("fill", page="n1", selector="[data-testid=vm-xml-text]", value=changed)
    b("click", page="n1", testid="vm-xml-submit")
    shown = b("wait_text", page="n1", testid="vm-xml-done", contains="configuration version")
    info = ha.json(1, "vm", "info", "uixml1")
    check(info["memory_mib"] == 48 and info["version"] == 2, f"after the XML tab's save: {info}")
    # The text is the new version's XML, as herd vm dumpxml prints it.
    dumped = ha.ok(1, "vm", "dumpxml", "uixml1").stdout.strip()
    wait_until(lambda: b("eval", page="n1", js=TEXT_JS.format("vm-xml-text")).strip() == dumped, 15,
               "the XML tab to show version 2's XML")
    say(f"  uixml1 defined from XML, its memory changed in its XML tab: {shown}")
    b.shot("n1", "vm-xml", full=True)
    b("click", page="n1", testid="tab-details")
    b("wait_text", page="n1", testid="vm-memory", equals="48 MiB")
    # Not in the VM list's counts below; its versions stay in the history.
    ha.ok(1, "vm", "undefine", "uixml1")
    b("goto", page="n1", path=f"/vms/{VM}")


def history_all(b, ha):
    say("== the history of every VM, the deleted ones too, as herd vm history --pattern")
    b("goto", page="n2", path="/history")
    b("fill", page="n2", selector="[data-testid=history-pattern]", value="ui*")
    b("click", page="n2", testid="history-pattern-submit")
    want = ha.json(2, "vm", "history", "--pattern", "ui*")
    check({h["name"] for h in want} == {VM, "uixml1"}, f"herd vm history --pattern 'ui*': {want}")
    b("wait_text", page="n2", testid="history-count", equals=f"{len(want)} version(s)")
    rows = b("eval", page="n2", js="""[...document.querySelectorAll('[data-testid=history-all] tbody tr')]
      .map((r) => [...r.cells].slice(0, 3).map((c) => c.innerText.trim()))""")
    seen = sorted((r[0], r[1], int(r[2])) for r in rows)
    check(seen == sorted((f"{h['name']} (deleted)", h["uuid"], h["version"]) for h in want),
          f"the page lists {seen}; herd vm history {want}")
    # The newest version that was a configuration (not its deletion).
    last = max(h["version"] for h in want if h["name"] == VM and h["change"] != "undefined")
    uuid = next(h["uuid"] for h in want if h["name"] == VM)
    say(f"  {len(want)} versions of {VM} and uixml1, both deleted, as the CLI lists them")
    b.shot("n2", "vm-history-all", full=True)
    b("click", page="n2", selector=f"[data-testid=history-all-{VM}-{last}] a")
    b("wait_url", page="n2", path=f"/vms/{uuid}/history")
    b("wait_visible", page="n2", testid=f"history-{last}")
    check(b("count", page="n2", selector=f"[data-testid=restore-{last}]") == 1,
          f"the deleted {VM}'s history offers no restore of version {last}")


def console_migration(b, ha):
    say("== the console on n1's page (the VM on n3), then a live migration to n1")
    b("click", page="n1", testid="tab-console")
    b("wait_text", page="n1", testid="console-status", contains="on node n3", timeout=30000)
    before = screen_shown(b, "n1", "before the migration")
    check([consoles(ha, i) for i in (1, 2, 3)] == [1, 0, 1], "the console is not carried from n1 to n3")
    say(f"  connected, VM on n3: canvas {before}")
    b.shot("n1", "vm-console")
    choose(b, "n1", "vm-target", "n1")
    b("click", page="n1", testid="vm-migrate")
    b("wait_text", page="n1", testid="vm-outcome", contains="on node n1", timeout=300000)
    check(ha.vms(1)[VM]["node"] == "n1", f"after the migration: {ha.vms(1)[VM]}")
    b("wait_text", page="n1", testid="console-status", contains="on node n1", timeout=60000)
    connects = b("text", page="n1", testid="console-connects")
    check(int(connects.split()[0]) >= 2, f"the console after the migration: {connects}")
    after = screen_shown(b, "n1", "after the migration")
    wait_until(lambda: [consoles(ha, i) for i in (1, 2, 3)] == [1, 0, 0], 30,
               "one console, on n1 only, after the migration")
    say(f"  reconnected by itself, VM on n1: canvas {after}")
    b.shot("n1", "vm-console-migrated")


def deletion(b, ha, admin_pw):
    say("== from n2's page: power off and delete; n1's console is gone")
    login(b, "n2", f"https://10.99.0.2:8001/vms/{VM}", admin_pw)
    b("goto", page="n2", path=f"/vms/{VM}")
    b("click", page="n2", testid="vm-destroy")
    b("wait_text", page="n2", testid="vm-state", contains="shut off", timeout=60000)
    b("click", page="n2", testid="vm-delete")
    b("click", page="n2", testid="vm-delete-confirm")
    b("wait_url", page="n2", path="/vms")
    check(VM not in ha.vms(1), f"{VM} is still defined")
    b("wait_text", page="n1", testid="console-status", equals="closed", timeout=60000)
    shown = b("wait_text", page="n1", testid="console-message", contains="was deleted", timeout=60000)
    check(VM in shown, f"n1's console says {shown!r}")
    check(b("eval", page="n1", js=CANVAS_JS) is None, "n1's console still has its canvas")
    wait_until(lambda: [consoles(ha, i) for i in (1, 2, 3)] == [0, 0, 0], 30, "no console left on n1, n2 and n3")
    say(f"  n1's console: {shown}")
    b.shot("n1", "vm-console-deleted")
    for page in ("n1", "n2"):
        errors = b("console", page=page)
        expect(not [e for e in errors if "Content Security Policy" in e or "page error" in e],
               f"{page}'s page logged errors: {errors}")


def many_at_once(b, ha):
    say("== the VM list: the pool filter, all shown selected, started and powered off at once")
    for name in ("batch1", "batch2"):
        ha.ok(1, "vm", "create", name, "--memory", "64M", "--pool", "batch", "--shutdown-timeout", "2")
    b("click", page="n1", selector="nav a[href='/vms']")
    b("wait_visible", page="n1", testid="vm-row-batch2")
    choose(b, "n1", "vm-filter-pool", "batch")
    b("wait_text", page="n1", testid="vm-count", equals="2 of 3")
    b("click", page="n1", testid="vm-select-all")
    b("wait_text", page="n1", testid="vm-selected", equals="2 selected")
    b("click", page="n1", testid="vm-start")
    shown = b("wait_text", page="n1", testid="vm-outcome", contains="done", timeout=120000)
    check("2 VMs" in shown, f"the start of both: {shown!r}")
    for name in ("batch1", "batch2"):
        b("wait_text", page="n1", testid=f"vm-state-{name}", equals="running", timeout=60000)
    check(all(ha.vms(1)[n]["state"] == "running" for n in ("batch1", "batch2")), "herd: not both running")
    check(ha.vms(1)[VM]["state"] == "shut off", f"{VM}, filtered out, was started too")
    say(f"  {shown}")
    b.shot("n1", "vms-pool-started")
    b("click", page="n1", testid="vm-poweroff")
    shown = b("wait_text", page="n1", testid="vm-outcome", contains="power off", timeout=120000)
    for name in ("batch1", "batch2"):
        b("wait_text", page="n1", testid=f"vm-state-{name}", equals="shut off", timeout=60000)
    say(f"  {shown}")
    b("goto", page="n1", path=f"/vms/{VM}")


def main():
    with HaNodes(INSTANCE, 3) as tn, Workdir(INSTANCE) as tmp:
        tn.wait_members([1, 2, 3], 3)
        ha = Ha(tn, tmp)
        admin_pw = admin_password(tn)
        b = Browser(tn, 2)
        try:
            login(b, "n1", "https://10.99.0.1:8001/", admin_pw)
            create_form(b, tn, ha, f"admin:{admin_pw}")
            edit_history(b, ha)
            xml_sticky(b, tn, ha, f"admin:{admin_pw}")
            many_at_once(b, ha)
            start(b, ha)
            console_migration(b, ha)
            deletion(b, ha, admin_pw)
            history_all(b, ha)
        finally:
            b.close()


if __name__ == "__main__":
    sys.exit(run_test(main))

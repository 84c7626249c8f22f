"""Helpers for the HA engine's cluster tests (test_ha*.py).

    from halib import Ha, DoubleRunWatch

    with TestNodes("test-ha", 3) as tn, Workdir("test-ha") as tmp:
        ha = Ha(tn, tmp)
        ha.add_pdu()                        # fence device "pdu" from `testnodes pdu`
        ha.define("g1", ha=True, preferred="n2")
        ha.ok(1, "vm", "start", "g1")
        with DoubleRunWatch(tn) as watch:   # polls every node's QEMUs and libvirt
            ...
        watch.check()

Every check here can fail; testlib's expect() records a failure and lets
the test go on (so that one bug does not hide the next), check() stops it,
check_expected() at the end fails the test for what expect() recorded.
"""
import datetime
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

from harness import TestNodes, testnodes
from testlib import SerialLog, TestFailure, check, expect, guest_image, guest_xml, say, wait_until

QEMU_UUID = re.compile(r"(?:^|\0)-uuid\0([0-9a-f-]{36})(?:\0|$)")

class Workdir:
    """A temporary directory under /tmp (seen by every test node: serial logs,
    domain XML), removed at the end whatever happened."""

    def __init__(self, prefix):
        self.prefix = prefix
        self.path = None

    def __enter__(self):
        self.path = tempfile.mkdtemp(prefix=f"{self.prefix}-", dir="/tmp")
        return self.path

    def __exit__(self, *exc):
        shutil.rmtree(self.path, ignore_errors=True)
        return False


class HaNodes(TestNodes):
    """TestNodes whose failure dump shows more of herdd's HA decisions."""

    def dump_logs(self, lines=15):
        super().dump_logs(lines)
        for i in range(1, self.n + 1):
            path = os.path.join(self.tn.log_dir(i), "herdd.log")
            try:
                with open(path, errors="replace") as f:
                    text = [l.rstrip("\n") for l in f if re.search(r" (ha|fence|api|warning|error)", l)]
            except OSError:
                continue
            if text:
                print(f"----- n{i} herdd.log, HA lines (last 60)\n" + "\n".join(text[-60:]), flush=True)


def api(tn, i, method, path, body=None, tcp=False, auth=None):
    """(status, parsed JSON or text) of an API call made with curl inside node i:
    as root over its unix socket, or over HTTPS to its own address."""
    argv = ["curl", "-s", "-X", method, "-w", "\n%{http_code}", "-H", "Content-Type: application/json"]
    if tcp:
        argv += ["-k", f"https://10.99.0.{i}:8001{path}"]
    else:
        argv += ["--unix-socket", "/run/herd/herd.sock", f"http://localhost{path}"]
    if auth:
        argv += ["-u", auth]
    if body is not None:
        argv += ["--data-binary", body if isinstance(body, str) else json.dumps(body)]
    p = tn.exec(i, *argv)
    text, _, code = p.stdout.rpartition("\n")
    try:
        return int(code), json.loads(text)
    except ValueError:
        return (int(code) if code.isdigit() else 0), text


# The simulated PDU switching an outlet (tests/cluster/pdu.py's log).
OUTLET_CMD = re.compile(r"mib: outlet (\d+) \(\S+\) (on|off|reboot)")


class PduLog:
    """The simulated PDU's log (tests/cluster/pdu.py), from a mark on."""

    def __init__(self, tn):
        self.path = os.path.join(tn.tn.dir, "pdu", "pdu.log")

    def mark(self):
        with open(self.path, "rb") as f:
            return len(f.read())

    def since(self, mark):
        with open(self.path, "rb") as f:
            f.seek(mark)
            return f.read().decode(errors="replace").splitlines()

    def requests(self, mark):
        """The SNMP requests it answered (a fence agent reads an outlet's
        state before it switches it: an outlet already off is not switched)."""
        return [l for l in self.since(mark) if "front: request from" in l]

    def outlet_commands(self, mark, power_cuts=True):
        """Outlets switched on, off or rebooted; with power_cuts, also the
        power cuts it made."""
        return [l for l in self.since(mark) if OUTLET_CMD.search(l) or (power_cuts and "power cut" in l)]


def herdd_log(tn, i, since=None, pattern=None):
    """[(wall time, line)] of node i's herdd.log (lines start HH:MM:SS.mmm,
    local time), from wall time since on, matching pattern."""
    path = os.path.join(tn.tn.log_dir(i), "herdd.log")
    try:
        with open(path, errors="replace") as f:
            lines = f.read().splitlines()
    except OSError:
        return []
    ref = datetime.datetime.fromtimestamp(since if since is not None else time.time())
    out = []
    for line in lines:
        m = re.match(r"^(\d\d):(\d\d):(\d\d)\.(\d{3}) ", line)
        if not m:
            continue
        t = ref.replace(hour=int(m[1]), minute=int(m[2]), second=int(m[3]),
                        microsecond=int(m[4]) * 1000)
        if t - ref > datetime.timedelta(hours=12):
            t -= datetime.timedelta(days=1)
        elif ref - t > datetime.timedelta(hours=12):
            t += datetime.timedelta(days=1)
        w = t.timestamp()
        if (since is None or w >= since - 0.001) and (pattern is None or re.search(pattern, line)):
            out.append((w, line))
    return out


class Ha:
    """herd commands inside the test nodes, the test guests, the PDU."""

    def __init__(self, tn, tmp):
        self.tn = tn
        self.tmp = tmp
        self.uuids = {}       # VM name -> UUID
        self.image = guest_image()
        check(os.path.exists(self.image), f"the test guest {self.image} is not built")

    # -- herd

    def run(self, i, *args, timeout=120):
        return self.tn.exec(i, "herd", *args, timeout=timeout)

    def ok(self, i, *args, timeout=120):
        p = self.run(i, *args, timeout=timeout)
        check(p.returncode == 0, f"n{i}: herd {' '.join(args)} failed (exit {p.returncode}): "
                                 f"{(p.stderr or p.stdout).strip()}")
        return p

    def json(self, i, *args):
        return json.loads(self.ok(i, "--json", *args).stdout)

    def refused(self, i, args, pattern, rc=None, what=None):
        """herd ARGS on node i fails (exit rc, or any non-zero) with an error
        matching pattern; returns the error text."""
        p = self.run(i, *args)
        err = (p.stderr or p.stdout).strip()
        ok = expect((p.returncode == rc if rc is not None else p.returncode != 0) and
                    re.search(pattern, err, re.I | re.S),
                    f"n{i}: herd {' '.join(args)}: expected {'exit ' + str(rc) if rc else 'a failure'} "
                    f"and an error matching /{pattern}/, got exit {p.returncode}: {err!r}")
        if ok:
            say(f"  refused ({what or ' '.join(args)}): {err.splitlines()[0] if err else ''}")
        return err

    def vms(self, i=1):
        """{name: vm JSON} from `herd vm list --all --json` on node i."""
        return {v["name"]: v for v in self.json(i, "vm", "list", "--all")}

    def vms_any(self, nodes):
        """vms() from the first of nodes that answers."""
        last = None
        for i in nodes:
            if not self.tn.tn.init_pid(i):
                continue
            p = self.run(i, "--json", "vm", "list", "--all", timeout=30)
            if p.returncode == 0:
                return {v["name"]: v for v in json.loads(p.stdout)}
            last = p.stderr.strip()
        raise TestFailure(f"no node of {nodes} lists the VMs: {last}")

    def alerts(self, i=1):
        """The coordinator's alert messages, as node i's herd status has them."""
        st = self.status(i)
        return [a["message"] for a in (st.get("ha") or {}).get("alerts", [])]

    def nodes(self, i=1):
        return {n["name"]: n for n in self.json(i, "node", "list")}

    def status(self, i=1):
        return self.json(i, "status")

    def settings(self, i=1):
        return {s["key"]: s["value"] for s in self.json(i, "cluster", "settings")}

    def set(self, i, *kv):
        self.ok(i, "cluster", "set", *kv)

    def config(self, i=1):
        """What a refused command must not change: VMs (attributes, version),
        nodes (mode, down), fence devices, settings."""
        vms = sorted((v["name"], v["uuid"], v["version"], v["ha"], v["preferred"],
                      v["sticky"], v["target"], v["shutdown_timeout_s"])
                     for v in self.json(i, "vm", "list", "--all"))
        nodes = sorted((n["name"], n["mode"], json.dumps(n["down"]))
                       for n in self.json(i, "node", "list"))
        # Without the waiting agents: state, not configuration.
        devs = sorted(json.dumps({k: v for k, v in d.items() if k != "waiting"}, sort_keys=True)
                      for d in self.json(i, "fence-device", "list"))
        return {"vms": vms, "nodes": nodes, "fence_devices": devs, "settings": self.settings(i)}

    def wait_vms(self, cond, timeout, what, nodes=(1, 2, 3), interval=0.2):
        """Poll the VM list (from the first node of nodes that answers) until
        cond(vms) is true; returns the list."""
        last = {}

        def ok():
            nonlocal last
            try:
                last = self.vms_any(nodes)
            except TestFailure:
                return None
            return last if cond(last) else None
        try:
            return wait_until(ok, timeout, what, interval=interval)
        except TestFailure as e:
            raise TestFailure(f"{e}; VMs: {table(last)}") from None

    # -- fence devices

    def pdu(self):
        return json.loads(self.tn.cli("pdu", "--json").stdout)

    def add_pdu(self, name="pdu", i=1, nodes=None, **override):
        """herd fence-device add NAME for the instance's PDU, with the plugs of
        nodes (default all) and parameters overridden by keyword."""
        d = self.pdu()
        params = dict(d["params"], **override)
        argv = ["fence-device", "add", name, "--agent", d["agent"]]
        for k, v in params.items():
            argv += ["--param", f"{k}={v}"]
        for node, plug in d["plugs"].items():
            if nodes is None or node in nodes:
                argv += ["--plug", f"{node}={plug}"]
        self.ok(i, *argv)

    # -- guests

    def define(self, name, i=1, ha=True, preferred=None, vcpus=1, extra=(), image=None):
        """@image: the guest's disk at another path, which need not exist here
        (only inside some test node)."""
        xml = os.path.join(self.tmp, f"{name}.xml")
        guest_xml(name, xml, serial_log=self.serial_log(name), image=self.image, vcpus=vcpus)
        if image:
            with open(xml) as f:
                text = f.read()
            with open(xml, "w") as f:
                f.write(text.replace(self.image, image))
        args = ["vm", "define", xml]
        if ha:
            args.append("--ha")
        if preferred:
            args += ["--preferred", preferred]
        vm = self.json(i, *args, *extra)
        self.uuids[name] = vm["uuid"]
        return vm

    def serial_log(self, name):
        return os.path.join(self.tmp, f"{name}.serial.log")

    def counter(self, name):
        """The guest's counter since its last boot, or None."""
        return SerialLog(self.serial_log(name)).counter(since_boot=True)

    def boots(self, name):
        """How many times the guest has booted (its log is appended to)."""
        return SerialLog(self.serial_log(name)).boots()

    def wait_counting(self, names, timeout=30, boots_after=None):
        """Every guest of names counts: two readings of its counter since boot,
        with no boot in between, the second higher (a guest being restarted
        shows its old count until it boots: that does not pass).  With
        boots_after {name: boots}, only after a boot beyond those."""
        for name in names:
            if boots_after is not None and name in boots_after:
                wait_until(lambda: self.boots(name) > boots_after[name], timeout,
                           f"{name} to boot again (boots before: {boots_after[name]})")
            first = [self.boots(name), self.counter(name)]

            def advanced():
                b, c = self.boots(name), self.counter(name)
                if b == first[0] and first[1] is not None and c is not None and c > first[1]:
                    return True
                if b != first[0] or first[1] is None:
                    first[:] = [b, c]
                return False
            wait_until(advanced, timeout, f"{name}'s counter to advance (last: boots {first[0]}, "
                                          f"counter {first[1]})")


class IscsiTarget:
    """A userspace iSCSI target (Debian's tgt) inside test node i, for the
    length of a `with` block: target iqn at portal 10.99.0.i:3260, LUN n
    backed by the file luns[n] (a path every node sees, e.g. under the
    test's workdir), open to every initiator.  It goes down with its node
    (a power cut of node i cuts the storage too)."""

    def __init__(self, tn, i, iqn, luns, log=None):
        self.tn, self.i, self.iqn, self.luns = tn, i, iqn, dict(luns)
        self.portal = f"10.99.0.{i}:3260"
        self.log = log or os.devnull

    def _adm(self, *args):
        return self.tn.exec(self.i, "tgtadm", "--lld", "iscsi", *args, check=True)

    def __enter__(self):
        self.tn.exec(self.i, "sh", "-c", f"mkdir -p /run/tgtd && (tgtd -f --iscsi portal={self.portal} "
                                         f">>{self.log} 2>&1 &)", check=True)
        wait_until(lambda: self.tn.exec(self.i, "tgtadm", "--lld", "iscsi", "--op", "show",
                                        "--mode", "sys").returncode == 0,
                   10, f"tgtd in n{self.i} to answer")
        try:
            self._adm("--op", "new", "--mode", "target", "--tid", "1", "-T", self.iqn)
            for lun, path in sorted(self.luns.items()):
                self._adm("--op", "new", "--mode", "logicalunit", "--tid", "1", "--lun", str(lun),
                          "-b", path)
            self._adm("--op", "bind", "--mode", "target", "--tid", "1", "-I", "ALL")
        except BaseException:
            self.__exit__(*sys.exc_info())
            raise
        return self

    def __exit__(self, *exc):
        # The node's own pid namespace: only its tgtd.
        self.tn.exec(self.i, "pkill", "-KILL", "-x", "tgtd")
        return False


def table(vms):
    """'g1 running n1, g2 shut off -' for messages."""
    return ", ".join(f"{n} {v.get('state')} {v.get('node') or '-'}" for n, v in sorted(vms.items()))


def running_on(vms, names, nodes):
    """Every VM of names runs on one of nodes."""
    return all(vms.get(n, {}).get("state") == "running" and vms[n].get("node") in nodes
               for n in names)


def ms_after(t0_wall, ms):
    """Seconds from t0_wall (time.time()) to a herd timestamp in ms."""
    return ms / 1000.0 - t0_wall


def node_netns(tn, nodes=None):
    """{inode of its network namespace: i} of the instance's nodes (or of @nodes)."""
    return {os.stat(f"/run/netns/{tn.tn.netns(i)}").st_ino: i for i in (nodes or range(1, tn.n + 1))}


def live_qemus(netns, incoming=False):
    """[(node, VM uuid, pid, start time)] of the live QEMUs in the network
    namespaces of @netns (from node_netns(); QEMUs elsewhere are ignored);
    with @incoming, a fifth item: was the QEMU started to receive a live
    migration (-incoming; it keeps the option once the guest runs there)."""
    out = []
    for pid in testnodes.all_pids():
        try:
            with open(f"/proc/{pid}/comm") as f:
                if not f.read().startswith("qemu-system"):
                    continue
            node = netns.get(os.stat(f"/proc/{pid}/ns/net").st_ino)
            if node is None:
                continue
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read().decode(errors="replace")
        except OSError:
            continue
        m = QEMU_UUID.search(cmdline)
        st = testnodes.proc_stat(pid)
        if m and st and st[0] not in "ZX":
            item = (node, m.group(1), pid, st[1])
            out.append(item + ("\0-incoming\0" in cmdline,) if incoming else item)
    return out


def qemu_pids(tn, uuid):
    """[(node, host pid)] of the live QEMUs of VM uuid in the instance's nodes."""
    return [(node, pid) for node, u, pid, _ in live_qemus(node_netns(tn)) if u == uuid]


# ---------------------------------------------------------------- no VM runs twice

class DoubleRunWatch:
    """Watches, in two threads, that no VM runs on two nodes at once:

    - QEMU processes: the host's /proc shows every node's processes; a QEMU
      whose -uuid is also the -uuid of a live QEMU in another node's network
      namespace, both alive when checked again right after, is a VM running
      twice (QEMUs of other instances on the machine are ignored) -- unless
      all but one of them were started to receive a live migration
      (-incoming: paused until the guest is handed over, and its source's
      QEMU ends right after);
    - each node's libvirt (`virsh list --uuid --state-running` inside the
      node, round robin: a paused copy, such as one arriving by live
      migration or the source's at the hand-over, runs no guest): a VM seen
      by two consecutive polls of one node is taken to run there in
      between; a poll of another node that sees it within that time is a VM
      running twice.

    check() raises TestFailure with what was seen."""

    def __init__(self, tn, nodes=None, virsh_pause=0.03, proc_pause=0.05):
        self.tn = tn
        self.nodes = list(nodes or range(1, tn.n + 1))
        self.virsh_pause = virsh_pause
        self.proc_pause = proc_pause
        self.netns = {}
        self.stop_ev = threading.Event()
        self.threads = []
        self.violations = []
        self.polls = {i: [] for i in self.nodes}   # i -> [(t0, t1, set of uuids or None)]
        self.proc_scans = 0
        self.virsh_polls = 0
        self.qemu_seen = {}                        # (node, uuid) -> monotonic time last seen
        self.errors = []

    def __enter__(self):
        self.netns = node_netns(self.tn, self.nodes)
        for fn in (self._proc_loop, self._virsh_loop):
            t = threading.Thread(target=self._guard(fn), daemon=True)
            t.start()
            self.threads.append(t)
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    def stop(self):
        self.stop_ev.set()
        for t in self.threads:
            t.join(timeout=30)
        self.threads = []

    def _guard(self, fn):
        def run():
            try:
                fn()
            except Exception as e:  # a bug here must not pass silently
                self.errors.append(f"{fn.__name__}: {e!r}")
        return run

    # -- QEMU processes

    def _proc_loop(self):
        while not self.stop_ev.is_set():
            seen = {}
            for node, uuid, pid, start, incoming in live_qemus(self.netns, incoming=True):
                seen.setdefault(uuid, []).append((node, pid, start, incoming))
                self.qemu_seen[(node, uuid)] = time.monotonic()
            for uuid, where in seen.items():
                if len({n for n, _, _, _ in where}) < 2:
                    continue
                # Both still alive now, checked back to back: two at once
                # (a live migration's pair: one that receives, one that
                # sends; libvirt's poll below sees which of them runs).
                alive = [(n, pid, inc) for n, pid, start, inc in where if testnodes.proc_alive(pid, start)]
                if len({n for n, _, _ in alive}) >= 2 and sum(1 for _, _, inc in alive if not inc) >= 2:
                    self.violations.append(
                        f"{time.strftime('%H:%M:%S')} QEMU of VM {uuid} alive on "
                        f"{', '.join(f'n{n} (pid {pid})' for n, pid, _ in alive)} at once")
            self.proc_scans += 1
            self.stop_ev.wait(self.proc_pause)

    # -- libvirt in every node

    def _virsh(self, i):
        try:
            argv = self.tn.tn.node_argv(i, ["virsh", "-q", "-c", "qemu:///system", "list", "--uuid",
                                           "--state-running"])
        except testnodes.Error:
            return set()     # powered off: runs nothing
        try:
            p = subprocess.run(argv, env=self.tn.tn.node_env(i), capture_output=True, text=True,
                               timeout=20)
        except subprocess.TimeoutExpired:
            return None
        if p.returncode != 0:
            return None      # no answer (powering off, libvirtd starting): unknown
        return {line.strip() for line in p.stdout.splitlines() if line.strip()}

    def _virsh_loop(self):
        while not self.stop_ev.is_set():
            for i in self.nodes:
                t0 = time.monotonic()
                s = self._virsh(i)
                self.polls[i].append((t0, time.monotonic(), s))
                self.virsh_polls += 1
                if self.stop_ev.wait(self.virsh_pause):
                    return

    def _virsh_violations(self):
        out = []
        # Per node and VM: the spans between two consecutive polls that both saw it.
        spans = {}
        for i, polls in self.polls.items():
            for (a0, a1, sa), (b0, b1, sb) in zip(polls, polls[1:]):
                if sa is None or sb is None:
                    continue
                for uuid in sa & sb:
                    spans.setdefault(uuid, []).append((i, a1, b0))
        for i, polls in self.polls.items():
            for t0, t1, s in polls:
                for uuid in s or ():
                    for j, a, b in spans.get(uuid, ()):
                        if j != i and a <= t0 and t1 <= b:
                            out.append(f"libvirt: VM {uuid} listed by n{i} while n{j} listed it "
                                       f"before and after (at +{t0 - self.start_t:.2f} s)")
        return out

    @property
    def start_t(self):
        firsts = [p[0][0] for p in self.polls.values() if p]
        return min(firsts) if firsts else 0.0

    def ran_since(self, uuid, nodes, t_mono):
        """Nodes of nodes where a QEMU of uuid was seen from t_mono on."""
        return [n for n in nodes if self.qemu_seen.get((n, uuid), 0) >= t_mono]

    def check(self, what=""):
        """Fail if anything ran twice so far (or a watcher broke)."""
        v = list(self.violations) + self._virsh_violations()
        check(not self.errors, f"the double-run watch broke: {self.errors}")
        check(self.proc_scans > 0 and self.virsh_polls > 0,
              f"the double-run watch did not run ({self.proc_scans} scans, {self.virsh_polls} polls)")
        check(not v, f"{what}: a VM ran on two nodes at once:\n  " + "\n  ".join(v[:20]))

    def finish(self):
        """Stop watching, say what was watched, fail if anything ran twice."""
        self.stop()
        say(f"no VM ran on two nodes at once: {self.summary()}")
        self.check("the whole test")

    def summary(self):
        span = max((p[-1][1] for p in self.polls.values() if p), default=0) - self.start_t
        per_node = {i: len(p) for i, p in self.polls.items()}
        gaps = []
        for polls in self.polls.values():
            gaps += [b[0] - a[0] for a, b in zip(polls, polls[1:])]
        gap = max(gaps) if gaps else 0
        return (f"{self.proc_scans} /proc scans of the QEMUs and {self.virsh_polls} virsh polls "
                f"({', '.join(f'n{i}: {c}' for i, c in per_node.items())}; longest gap between "
                f"two polls of a node {gap:.2f} s) over {span:.0f} s")


def run_steps(tn, ha, steps):
    """Run each step(tn, ha) of @steps in turn under a DoubleRunWatch,
    checked after each, and say how long each took; then the whole."""
    with DoubleRunWatch(tn) as watch:
        for step in steps:
            t = time.monotonic()
            step(tn, ha)
            watch.check(step.__name__)
            say(f"-- {step.__name__}: {time.monotonic() - t:.0f} s")
        watch.finish()


def add_dir_storage(ha, name, path, share=False, i=1):
    """A dir storage @name at @path (a directory of the host, so every test
    node sees it), added with `herd storage add` on node i; the cluster
    share with share=True."""
    os.makedirs(path, exist_ok=True)
    args = ["storage", "add", name, "--type", "dir", "--path", path]
    if share:
        args.append("--cluster-share")
    ha.ok(i, *args)

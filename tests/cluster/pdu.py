#!/usr/bin/python3
"""pdu: the simulated switched PDU of a testnodes instance.

It speaks SNMP (v1, v2c and v3) like an APC switched rack PDU (AP7920, eight
outlets; with more than 8 nodes one outlet per node, as an AP8941; the PowerNet-MIB rPDU branch and the older sPDU one), so that
Debian's fence_apc_snmp drives it as it would a real one.  Outlet I powers
node nI of the instance: switching it off is the power cut of `testnodes kill
I` (the node's whole process tree dies before the PDU answers), switching it
on boots the node as `testnodes start I` does.  Outlets beyond the nodes have
a relay but nothing plugged in.

It lives in the instance's network namespace htn-INSTANCE-pdu, whose eth0
(10.99.0.250) sits on link 0's bridge next to the nodes, and has three
processes, all started by `testnodes up` and killed by `down`:

- snmpd (Debian's net-snmp) on 127.0.0.1:1161 inside that namespace: the SNMP
  engine (communities, the v3 user, the system group with an APC rPDU's
  sysObjectID);
- `pdu.py --instance NAME _mib`, snmpd's pass_persist handler for the APC
  enterprise subtree .1.3.6.1.4.1.318: the outlets;
- `pdu.py --instance NAME _front`, the PDU's network port 10.99.0.250:161/udp.
  It logs every request (its sender) and hands snmpd one request at a time
  (a real PDU serialises outlet commands) and waits until snmpd has finished with it, whether snmpd answers
  or not (a probe request queued behind it comes back).  A request whose
  sending node has lost power while it waited is dropped: it died with its
  node.  So of two nodes switching each other off at the same moment, exactly
  one survives, whatever the order their packets arrive in.

Run as a program only by snmpd and testnodes; testnodes imports it for `up`,
`pdu` and `status`.
"""
import argparse
import bisect
import importlib.machinery
import importlib.util
import json
import os
import secrets
import select
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback

HERE = os.path.dirname(os.path.realpath(__file__))
TESTNODES = os.path.join(HERE, "testnodes")

ADDRESS = "10.99.0.250"        # on link 0, next to the nodes' 10.99.0.I
PORT = 161
SNMPD_PORT = 1161              # snmpd's own, on the PDU's loopback only
OUTLETS = 8                    # an AP7920 has eight switched outlets
MODEL = "AP7920"
BIG_MODEL = "AP8941"           # APC's 24-outlet switched rack PDU, same MIB


def outlets_for(nodes):
    """The PDU's outlets: an AP7920's eight, or for more nodes one outlet per
    node rounded up to 8, shown as the larger AP8941 (which has 24: a rack
    of 32 hosts would have two PDUs; one fence device with every plug is
    what herd sees of either)."""
    return max(OUTLETS, -(-nodes // 8) * 8)


def model_for(nodes):
    return MODEL if outlets_for(nodes) == OUTLETS else BIG_MODEL
AGENT = "fence_apc_snmp"
V3_USER = "herd"
READ_COMMUNITY = "public"      # read-only, as the factory default
REBOOT_S = 5                   # rPDUOutletConfigRebootDuration, factory default

# OIDs (PowerNet-MIB)
APC = (1, 3, 6, 1, 4, 1, 318)
SYS_OBJECT_ID = APC + (1, 3, 4, 5)        # masterSwitchrPDU: fence_apc_snmp's "APC rPDU"
RPDU = APC + (1, 1, 12)                   # rPDU
SPDU = APC + (1, 1, 4)                    # sPDU (Master Switch), older, still on rPDUs
SYS_UPTIME_0 = (1, 3, 6, 1, 2, 1, 1, 3, 0)

# rPDUOutletControlOutletCommand values
IMMEDIATE_ON, IMMEDIATE_OFF, IMMEDIATE_REBOOT = 1, 2, 3
DELAYED_ON, DELAYED_OFF, DELAYED_REBOOT, CANCEL_PENDING = 4, 5, 6, 7
# rPDUOutletStatusOutletState / sPDUOutletCtl readings
STATE_ON, STATE_OFF = 1, 2


def netns(inst):
    return f"htn-{inst.name}-pdu"


def pdu_dir(inst):
    return os.path.join(inst.dir, "pdu")


def config_path(inst):
    return os.path.join(pdu_dir(inst), "pdu.json")


def log_path(inst):
    return os.path.join(pdu_dir(inst), "pdu.log")


def load_config(inst):
    with open(config_path(inst)) as f:
        return json.load(f)


# ---------------------------------------------------------------- for testnodes

SNMPD_CONF = """\
# Written by tests/cluster/testnodes: snmpd of instance {name}'s simulated PDU.
# Only the PDU's front (pdu.py _front) talks to it, on the PDU's loopback.
agentaddress udp:127.0.0.1:{snmpd_port}

sysobjectid .{sysobjectid}
sysdescr APC Web/SNMP Management Card (MB:v3.9.2 PF:v3.9.2 PN:apc_hw02_aos_392.bin AF1:v3.9.2 AN1:apc_hw02_rpdu_392.bin MN:{model} HR:B2 SN: {serial} MD:01/01/2024) (Embedded PowerNet SNMP Agent SW v2.2 compatible)
sysname pdu
syslocation herd test bed, instance {name}
syscontact root
sysservices 72
# Not a line per request in snmpd.log.
dontLogTCPWrappersConnects yes

# What a PDU shows: the system group and APC's subtree, nothing of the host.
view pdu included .1.3.6.1.2.1.1
view pdu included .1.3.6.1.4.1.318
view probe included .1.3.6.1.2.1.1.3
rwcommunity {community} default -V pdu
rocommunity {read_community} default -V pdu
# The front's probe (sysUpTime only).
rocommunity {probe_community} 127.0.0.1 -V probe
createUser {v3_user} SHA "{v3_auth}" AES "{v3_priv}"
rwuser {v3_user} priv -V pdu

pass_persist .{apc} {python} {pdu_py} --instance {name} _mib
"""


def _serial(inst):
    return "HT" + inst.name.upper().replace("-", "")[:10]


def start(tn, inst):
    """Make the PDU of instance inst (its network namespace and processes).
    Returns a function that waits until it answers SNMP (call it once the
    nodes boot: the PDU starts meanwhile).  tn is the testnodes module."""
    for tool in ("snmpd", "snmpget"):
        if not shutil.which(tool, path=tn.SYSTEM_PATH):
            raise tn.Error(f"{tool} is not installed (the test nodes' PDU needs it): "
                           "run scripts/install-deps")
    d = pdu_dir(inst)
    os.makedirs(os.path.join(d, "var"), exist_ok=True)
    cfg = {
        "agent": AGENT, "address": ADDRESS, "port": PORT, "model": model_for(inst.meta["nodes"]),
        "outlets": outlets_for(inst.meta["nodes"]), "nodes": inst.meta["nodes"],
        "community": "herd-" + secrets.token_hex(6),
        "read_community": READ_COMMUNITY,
        "probe_community": "probe-" + secrets.token_hex(8),
        "v3": {"username": V3_USER, "auth_prot": "SHA", "password": secrets.token_hex(8),
               "priv_prot": "AES", "priv_passwd": secrets.token_hex(8)},
    }
    tn.write_file(config_path(inst), json.dumps(cfg, indent=2) + "\n", 0o600)
    conf = os.path.join(d, "snmpd.conf")
    tn.write_file(conf, SNMPD_CONF.format(
        name=inst.name, snmpd_port=SNMPD_PORT, sysobjectid=".".join(map(str, SYS_OBJECT_ID)),
        model=model_for(inst.meta["nodes"]), serial=_serial(inst), community=cfg["community"],
        read_community=READ_COMMUNITY, probe_community=cfg["probe_community"],
        v3_user=V3_USER, v3_auth=cfg["v3"]["password"], v3_priv=cfg["v3"]["priv_passwd"],
        apc=".".join(map(str, APC)), python=sys.executable,
        pdu_py=os.path.realpath(__file__)), 0o600)

    ns = netns(inst)
    tn.make_netns(ns)
    # Both ends made inside the hub and the PDU's namespace, as for the nodes.
    tn.ip_batch(inst.hub, [f"link add pdu type veth peer name eth0 netns {ns}",
                           "link set pdu master br0", "link set pdu up"])
    tn.ip_batch(ns, [f"addr add {ADDRESS}/24 dev eth0", "link set eth0 up"])

    env = {"PATH": tn.SYSTEM_PATH, "LANG": "C.UTF-8", "HOME": "/root",
           "HERD_BUILD_DIR": tn.build_dir(), "PYTHONDONTWRITEBYTECODE": "1",
           # snmpd keeps its engine ID and boots counter here, not in /var/lib/snmp.
           "SNMP_PERSISTENT_DIR": os.path.join(d, "var"), "MIBS": ""}
    enter = ["nsenter", f"--net=/run/netns/{ns}", "--"]
    procs = []
    with open(log_path(inst), "a") as out:
        for argv in (["snmpd", "-f", "-C", "-c", conf, "-Lf", os.path.join(d, "snmpd.log")],
                     [sys.executable, os.path.realpath(__file__), "--instance", inst.name,
                      "_front"]):
            # They run on after we exit; init adopts them (down kills them:
            # they are in the instance's network namespaces).
            procs.append(subprocess.Popen(enter + argv, stdin=subprocess.DEVNULL, stdout=out,
                                          stderr=out, env=env, start_new_session=True))

    def ready():
        for p in procs:
            if p.poll() is not None:
                raise tn.Error(f"the PDU's {p.args[len(enter)]} exited ({p.returncode}); "
                               f"see {log_path(inst)}")
        r = subprocess.run(enter + ["snmpget", "-v2c", "-c", cfg["community"], "-m", "",
                                    "-On", "-t", "0.3", "-r", "0", ADDRESS,
                                    ".1.3.6.1.2.1.1.2.0"],
                           capture_output=True, text=True, env=env, timeout=10)
        return r.returncode == 0 and ".1.3.6.1.4.1.318." in r.stdout

    def wait_ready():
        tn.wait_until(ready, 15, f"the PDU did not answer SNMP on {ADDRESS} "
                      f"(see {log_path(inst)})", interval=0.05)
    return wait_ready


def running(tn, inst):
    """PIDs of the PDU's processes (those in its network namespace)."""
    try:
        ino = os.stat(f"/run/netns/{netns(inst)}").st_ino
    except OSError:
        return []
    return [pid for pid in tn.all_pids() if tn.netns_inode_of(pid) == ino and tn.proc_alive(pid)]


def status(tn, inst):
    """The PDU's part of `testnodes status --json` (None if it has none)."""
    try:
        cfg = load_config(inst)
    except (OSError, ValueError):
        return None
    pids = running(tn, inst)
    cmds = []
    for pid in pids:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmds.append(f.read().split(b"\0"))
        except OSError:
            pass
    # Up while both snmpd and the front run (snmpd starts the handler itself).
    up = (any(os.path.basename(c[0]) == b"snmpd" for c in cmds) and
          any(b"_front" in c for c in cmds))
    return {"address": cfg["address"], "agent": cfg["agent"], "model": cfg["model"],
            "outlets": cfg["outlets"], "running": up, "pids": pids}


def fence_params(tn, inst, v3=False):
    """(agent, {key: value}, {node: plug}): what `herd fence-device add` needs."""
    try:
        cfg = load_config(inst)
    except FileNotFoundError:
        raise tn.Error(f"instance {inst.name!r} has no PDU (no {config_path(inst)})")
    params = {"ip": cfg["address"]}
    if v3:
        v = cfg["v3"]
        params.update({"snmp_version": "3", "username": v["username"],
                       "snmp_sec_level": "authPriv", "snmp_auth_prot": v["auth_prot"],
                       "password": v["password"], "snmp_priv_prot": v["priv_prot"],
                       "snmp_priv_passwd": v["priv_passwd"]})
    else:
        # v1, as APC's management cards speak it (v1 and v3) and the
        # agent's default: with v2c, fence_apc_snmp reads an outlet that
        # does not exist (noSuchInstance) as off, so a wrong plug "fences"
        # nothing and succeeds; with v1 it is an error.
        params.update({"snmp_version": "1", "community": cfg["community"]})
    plugs = {f"n{i}": str(i) for i in range(1, cfg["nodes"] + 1)}
    return cfg["agent"], params, plugs


def describe(tn, inst, v3=False, as_json=False):
    """The text of `testnodes pdu`."""
    agent, params, plugs = fence_params(tn, inst, v3)
    if as_json:
        return json.dumps({"agent": agent, "params": params, "plugs": plugs}, indent=2)
    return "\n".join([f"agent={agent}"] + [f"{k}={v}" for k, v in params.items()] +
                     [f"plug {node}={plug}" for node, plug in plugs.items()])


# ---------------------------------------------------------------- running

def load_testnodes():
    loader = importlib.machinery.SourceFileLoader("testnodes", TESTNODES)
    spec = importlib.util.spec_from_loader("testnodes", loader)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["testnodes"] = mod
    loader.exec_module(mod)
    return mod


class Log:
    def __init__(self, path, who):
        self.f = open(path, "a", buffering=1)
        self.who = who

    def __call__(self, msg):
        t = time.time()
        self.f.write(f"{time.strftime('%H:%M:%S', time.localtime(t))}.{int(t % 1 * 1000):03d} "
                     f"{self.who}: {msg}\n")


# ---------------------------------------------------------------- the outlets

class Outlets:
    """The PDU's outlets.  Outlet i <= the instance's node count powers node
    ni: its state is the node's power (on while the node's init lives), read
    afresh on every request, so a node killed or started by testnodes reads
    right too.  The others have only a relay."""

    def __init__(self, tn, inst, log):
        self.tn, self.inst, self.log = tn, inst, log
        self.nodes = inst.meta["nodes"]
        self.count = outlets_for(self.nodes)
        self.model = model_for(self.nodes)
        self.relay = {i: True for i in range(self.nodes + 1, self.count + 1)}
        self.pending = set()            # outlets with a reboot's power-on to come
        self.lock = threading.RLock()   # one outlet command at a time

    def name(self, i):
        return f"n{i}" if i <= self.nodes else f"Outlet {i}"

    def is_on(self, i):
        if i <= self.nodes:
            return self.inst.init_pid(i) is not None
        return self.relay[i]

    def command(self, i, what):
        """what: "on", "off" or "reboot".  Returns None or an error string for snmpd."""
        with self.lock:
            t0 = time.monotonic()
            try:
                if what == "off":
                    self.pending.discard(i)
                    self._off(i)
                elif what == "on":
                    self.pending.discard(i)
                    self._on(i)
                else:
                    self._off(i)
                    self.pending.add(i)
                    threading.Timer(REBOOT_S, self._reboot_on, args=(i,)).start()
            except self.tn.Error as e:
                self.log(f"outlet {i} {what}: FAILED: {e}")
                return "gen-error"
            self.log(f"outlet {i} ({self.name(i)}) {what}: done in "
                     f"{(time.monotonic() - t0) * 1000:.0f} ms")
            return None

    def cancel(self, i):
        with self.lock:
            self.pending.discard(i)

    def _reboot_on(self, i):
        with self.lock:
            if i in self.pending:
                self.pending.discard(i)
                try:
                    self._on(i)
                    self.log(f"outlet {i} ({self.name(i)}): on again after reboot")
                except self.tn.Error as e:
                    self.log(f"outlet {i}: power on after reboot FAILED: {e}")

    def _off(self, i):
        if i > self.nodes:
            self.relay[i] = False
            return
        # The power cut: SIGKILL of the node's init, and wait until the whole
        # process tree is gone; only then does the PDU answer.
        if self.tn.power_off(self.inst, i):
            self.log(f"node n{i}: power cut")

    def _on(self, i):
        if i > self.nodes:
            self.relay[i] = True
            return
        if self.inst.init_pid(i) is not None:
            return
        # Power on = the node's init starts (the outlet reads on from then
        # on); its boot goes on in the background, as a server's would after
        # a real PDU switched its outlet on.
        p = subprocess.Popen([sys.executable, TESTNODES, "--instance", self.inst.name,
                              "power", str(i), "on"],
                             stdin=subprocess.DEVNULL, stdout=self.log.f, stderr=self.log.f,
                             start_new_session=True)
        threading.Thread(target=self._reap, args=(i, p), daemon=True).start()
        self.tn.wait_until(lambda: self.inst.init_pid(i) is not None or p.poll() is not None,
                           30, f"node n{i}: its init did not start")
        if self.inst.init_pid(i) is None:
            raise self.tn.Error(f"node n{i} did not power on (exit {p.returncode})")
        self.log(f"node n{i}: powered on, booting")

    def _reap(self, i, p):
        rc = p.wait()
        self.log(f"node n{i}: boot {'done' if rc == 0 else f'FAILED (exit {rc})'}")


# ---------------------------------------------------------------- the MIB

class Mib:
    """The part of PowerNet-MIB that an AP7920 answers and fence_apc_snmp uses
    (and a little more), built afresh for each request from the outlets."""

    def __init__(self, outlets, serial):
        self.o = outlets
        self.serial = serial

    def objects(self):
        """Sorted [(oid, type, value, writer)]; writer(type, value) -> error or None."""
        o = self.o
        objs = []

        def add(oid, typ, value, writer=None):
            objs.append((oid, typ, value, writer))

        on = {i: o.is_on(i) for i in range(1, o.count + 1)}
        # sPDUIdent
        for k, v in enumerate(["B2", "v3.9.2", "01/01/2024", o.model, self.serial], 1):
            add(SPDU + (1, k, 0), "string", v)
        # sPDUOutletControl: sPDUOutletControlTableSize, then the table
        add(SPDU + (4, 1, 0), "integer", o.count)
        for i in range(1, o.count + 1):
            e = SPDU + (4, 2, 1)
            add(e + (1, i), "integer", i)
            add(e + (2, i), "integer", 1 if i in o.pending else 2)
            add(e + (3, i), "integer", STATE_ON if on[i] else STATE_OFF,
                self._writer(i, {1: "on", 2: "off", 3: "reboot",
                                 5: "on", 6: "off", 7: "reboot"}))
            add(e + (4, i), "string", o.name(i))
        # rPDUIdent
        ident = [("string", "RackPDU"), ("string", "B2"), ("string", "v3.9.2"),
                 ("string", "01/01/2024"), ("string", o.model), ("string", self.serial),
                 ("integer", 10), ("integer", o.count), ("integer", 1)]
        for k, (typ, v) in enumerate(ident, 1):
            add(RPDU + (1, k, 0), typ, v)
        # rPDUOutletDevice: command (noCommandAll), coldstart delay, outlet counts
        for k, v in enumerate([1, 0, o.count, o.count], 1):
            add(RPDU + (3, 1, k, 0), "integer", v)
        for i in range(1, o.count + 1):
            # rPDUOutletControlTable: index, name, phase, command, bank
            e = RPDU + (3, 3, 1, 1)
            add(e + (1, i), "integer", i)
            add(e + (2, i), "string", o.name(i))
            add(e + (3, i), "integer", 1)
            add(e + (4, i), "integer", IMMEDIATE_ON if on[i] else IMMEDIATE_OFF,
                self._writer(i, {IMMEDIATE_ON: "on", IMMEDIATE_OFF: "off",
                                 IMMEDIATE_REBOOT: "reboot", DELAYED_ON: "on",
                                 DELAYED_OFF: "off", DELAYED_REBOOT: "reboot",
                                 CANCEL_PENDING: "cancel"}))
            add(e + (5, i), "integer", 0)
            # rPDUOutletConfigTable: index, name, phase, power-on time,
            # power-off time (the delays: 0, so delayed = immediate),
            # reboot duration, bank
            e = RPDU + (3, 4, 1, 1)
            for k, (typ, v) in enumerate([("integer", i), ("string", o.name(i)),
                                          ("integer", 1), ("integer", 0), ("integer", 0),
                                          ("integer", REBOOT_S), ("integer", 0)], 1):
                add(e + (k, i), typ, v)
            # rPDUOutletStatusTable: index, name, phase, state, command
            # pending, bank
            e = RPDU + (3, 5, 1, 1)
            for k, (typ, v) in enumerate([("integer", i), ("string", o.name(i)),
                                          ("integer", 1),
                                          ("integer", STATE_ON if on[i] else STATE_OFF),
                                          ("integer", 1 if i in o.pending else 2),
                                          ("integer", 0)], 1):
                add(e + (k, i), typ, v)
        objs.sort(key=lambda x: x[0])
        return objs

    def _writer(self, i, actions):
        def write(typ, value):
            if typ != "integer":
                return "wrong-type"
            try:
                what = actions.get(int(value))
            except ValueError:
                return "wrong-value"
            if what is None:
                return "wrong-value"
            if what == "cancel":
                self.o.cancel(i)
                return None
            return self.o.command(i, what)
        return write


def parse_oid(s):
    s = s.strip().lstrip(".")
    try:
        oid = tuple(int(x) for x in s.split(".")) if s else ()
    except ValueError:
        return None
    return oid


def fmt_oid(oid):
    return "." + ".".join(map(str, oid))


def mib_main(tn, inst):
    """snmpd's pass_persist handler for the APC subtree (stdin/stdout)."""
    log = Log(log_path(inst), "mib")
    mib = Mib(Outlets(tn, inst, log), _serial(inst))
    out = sys.stdout
    inp = sys.stdin

    def answer(lines):
        out.write("".join(line + "\n" for line in lines))
        out.flush()

    while True:
        line = inp.readline()
        if not line:
            return
        cmd = line.strip().lower()
        if not cmd:
            continue
        if cmd == "ping":
            answer(["PONG"])
            continue
        try:
            if cmd in ("get", "getnext"):
                oid = parse_oid(inp.readline())
                objs = mib.objects()
                keys = [x[0] for x in objs]
                if oid is None:
                    answer(["NONE"])
                    continue
                if cmd == "get":
                    k = bisect.bisect_left(keys, oid)
                    hit = objs[k] if k < len(keys) and keys[k] == oid else None
                else:
                    k = bisect.bisect_right(keys, oid)
                    hit = objs[k] if k < len(keys) else None
                if hit is None:
                    answer(["NONE"])
                else:
                    answer([fmt_oid(hit[0]), hit[1], str(hit[2])])
            elif cmd == "set":
                oid = parse_oid(inp.readline())
                typ, _, value = inp.readline().strip().partition(" ")
                value = value.strip()
                if len(value) >= 2 and value[0] == value[-1] == '"':
                    value = value[1:-1]
                hit = next((x for x in mib.objects() if x[0] == oid), None)
                if hit is None:
                    answer(["not-writable"])
                elif hit[3] is None:
                    answer(["not-writable"])
                else:
                    err = hit[3](typ.lower(), value)
                    answer([err or "DONE"])
            else:
                log(f"unknown request {cmd!r}")
                answer(["NONE"])
        except Exception:
            log("request failed: " + traceback.format_exc().strip())
            answer(["gen-error" if cmd == "set" else "NONE"])


# ---------------------------------------------------------------- the front

def ber_len(n):
    if n < 0x80:
        return bytes([n])
    b = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(b)]) + b


def tlv(tag, body):
    return bytes([tag]) + ber_len(len(body)) + body


def ber_oid(oid):
    body = bytes([40 * oid[0] + oid[1]])
    for n in oid[2:]:
        enc = [n & 0x7f]
        n >>= 7
        while n:
            enc.append(0x80 | (n & 0x7f))
            n >>= 7
        body += bytes(reversed(enc))
    return tlv(0x06, body)


def probe_request(community, request_id):
    """An SNMPv2c GET of sysUpTime.0; request_id needs 4 bytes (so that the
    answer, which encodes it minimally, carries the same bytes)."""
    rid = tlv(0x02, request_id.to_bytes(4, "big"))
    varbind = tlv(0x30, ber_oid(SYS_UPTIME_0) + b"\x05\x00")
    pdu = tlv(0xa0, rid + tlv(0x02, b"\x00") + tlv(0x02, b"\x00") + tlv(0x30, varbind))
    return tlv(0x30, tlv(0x02, b"\x01") + tlv(0x04, community.encode()) + pdu), rid


def front_main(tn, inst):
    """10.99.0.250:161/udp: one request at a time to snmpd, senders checked."""
    log = Log(log_path(inst), "front")
    cfg = load_config(inst)
    nodes = inst.meta["nodes"]
    links = inst.meta["links"]
    listen = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    listen.bind((cfg["address"], cfg["port"]))
    fwd = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    fwd.connect(("127.0.0.1", SNMPD_PORT))
    fwd.setblocking(False)
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.connect(("127.0.0.1", SNMPD_PORT))
    probe.setblocking(False)
    request_id = 0x10000000
    node_of = {}
    for link in range(links):
        for i in range(1, nodes + 1):
            node_of[f"10.99.{link}.{i}"] = i
    log(f"listening on {cfg['address']}:{cfg['port']}/udp")

    refused = []

    def drain(sock):
        got = []
        while True:
            try:
                got.append(sock.recv(65535))
            except BlockingIOError:
                return got
            except ConnectionRefusedError:   # snmpd is not listening
                refused.append(True)
                return got

    def reply(packets, dst):
        for packet in packets:
            try:
                listen.sendto(packet, dst)
            except OSError as e:
                log(f"cannot answer {dst[0]}:{dst[1]}: {e}")

    while True:
        data, src = listen.recvfrom(65535)
        node = node_of.get(src[0])
        if node is not None and inst.init_pid(node) is None:
            log(f"dropped a request from n{node} ({src[0]}:{src[1]}): its power is off")
            continue
        # Every request, so that a test can tell that an agent sent none.
        log(f"request from {f'n{node}' if node else src[0]} ({src[0]}:{src[1]}), {len(data)} bytes")
        drain(fwd)
        drain(probe)
        refused.clear()
        request_id = request_id + 1 if request_id < 0x7fffffff else 0x10000000
        msg, rid = probe_request(cfg["probe_community"], request_id)
        try:
            fwd.send(data)
            probe.send(msg)
        except OSError as e:
            log(f"snmpd is not there: {e}")
            time.sleep(0.1)
            continue
        # snmpd takes one datagram at a time and answers in order: when the
        # probe comes back, the request has been dealt with.
        deadline = time.monotonic() + 60
        done = False
        while not done:
            if refused:
                log("snmpd is not there (connection refused)")
                break
            left = deadline - time.monotonic()
            if left <= 0:
                log(f"snmpd did not finish a request from {src[0]} within 60 s")
                break
            r, _, _ = select.select([fwd, probe], [], [], left)
            if fwd in r:
                reply(drain(fwd), src)
            if probe in r:
                done = any(rid in p for p in drain(probe))
        reply(drain(fwd), src)


# ---------------------------------------------------------------- main

def main(argv):
    p = argparse.ArgumentParser(prog="pdu.py", description=__doc__.split("\n")[0])
    p.add_argument("--instance", required=True)
    p.add_argument("role", choices=["_mib", "_front"])
    args = p.parse_args(argv)
    tn = load_testnodes()
    inst = tn.Instance(args.instance)
    os.environ["HERD_BUILD_DIR"] = inst.meta.get("build_dir") or tn.build_dir()
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    try:
        if args.role == "_mib":
            mib_main(tn, inst)
        else:
            front_main(tn, inst)
    except KeyboardInterrupt:
        pass
    except Exception:
        Log(log_path(inst), args.role[1:])("died: " + traceback.format_exc().strip())
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

#!/usr/bin/python3
"""The transport of live migration between test nodes, with plain virsh.

Three test nodes formed into a cluster (tests/cluster/testnodes), whose
herdd set their libvirt and QEMU up for live migration as on any host
(src/daemon/virt_setup.c): libvirtd listens for TLS with each node's
certificate from the cluster's CA, QEMU takes the same certificates for the
migration stream, and incoming migrations use the cluster's port range.  It
checks:

- libvirt's and QEMU's certificate files are in place on every node and are
  herd's (the cluster's CA, the node's own certificate); qemu.conf has the
  cluster's range (49152-49215 by default) and the node's kernel reserves
  it; every node says it is ready (herd node list: migration_ready);
- the control connection between libvirtds: qemu+tls://n3/system (and by
  address) answers from n2; qemu+tcp:// is refused (nothing listens); a
  client whose certificate is not from the cluster's CA is turned away;
- the counter guest, started on n2 with virsh, migrates live to n3 with
  `virsh migrate --live --p2p --tls` (encrypted stream), back to n2 without
  --tls (plain stream), and to n3 again with --tls while a process on n3
  holds the first ports of the migration range (49152-49155): each time it
  runs on the target and no longer on the source, and its serial counter
  goes on with no new boot line and no number missing or repeated;
- a --tls migration to a node whose QEMU has no server certificate fails
  with libvirt's error and leaves the guest running on its source;
- `herd cluster set` of a range whose first port is above its last, or of
  more than 1024 ports, is refused with the reason and changes nothing: the
  settings, every node's qemu.conf, its libvirtd (same process);
- `herd cluster set migration_port_min=50000 migration_port_max=50063`
  reaches every node: qemu.conf, the kernel's reserved ports (the old range
  freed), libvirtd restarted (the guest on n2 counts on through it); a
  migration to n3 then succeeds while the whole old range and 50000-50001
  are held there, so it took a port of the new range.

It prints the ports the target's QEMU was seen listening on while the guest
came in (read from the target's /proc/net/tcp while virsh migrate runs).
"""
import json
import os
import subprocess
import sys
import threading
import time

_here = os.path.dirname(os.path.realpath(__file__))
sys.path[:0] = [_here, os.path.dirname(_here)]  # harness.py here, testlib.py in tests/
from halib import Workdir  # noqa: E402
from harness import TestNodes  # noqa: E402
from testlib import (SerialLog, TestFailure, check, check_expected, expect,  # noqa: E402
                     guest_image, guest_xml, run_test, say, wait_until)

INSTANCE = "test-mig-tls"
GUEST = "mig1"
PORT_MIN, PORT_MAX = 49152, 49215     # the cluster's default migration_port_min/max
HELD_PORTS = range(PORT_MIN, PORT_MIN + 4)
NEW_MIN, NEW_MAX = 50000, 50063       # the range the test moves to
MIGRATE_TIMEOUT_S = 120

# Inside the target node: listen on the given ports of its address, say
# "ready", keep them until stdin closes.  SO_REUSEADDR: an earlier
# migration into the node leaves its connection on the port in TIME_WAIT,
# which is no listener but would refuse a plain bind (EADDRINUSE).
PORT_HOLDER = r"""
import socket, sys
held = []
for port in map(int, sys.argv[2:]):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((sys.argv[1], port))
    s.listen(1)
    held.append(s)
print("ready", flush=True)
sys.stdin.read()
"""


def virsh(tn, i, *args, uri="qemu:///system", timeout=30):
    """virsh in node i; returns CompletedProcess (not checked)."""
    return tn.exec(i, "virsh", "-q", "-c", uri, *args, timeout=timeout)


def output(p):
    return (p.stderr or p.stdout).strip()


# ---------------------------------------------------------------- certificates

PKI_FILES = {
    "CA/cacert.pem": "ca.crt",
    "libvirt/servercert.pem": "node.crt",
    "libvirt/private/serverkey.pem": "node.key",
    "libvirt/clientcert.pem": "node.crt",
    "libvirt/private/clientkey.pem": "node.key",
    "qemu/ca-cert.pem": "ca.crt",
    "qemu/server-cert.pem": "node.crt",
    "qemu/server-key.pem": "node.key",
    "qemu/client-cert.pem": "node.crt",
    "qemu/client-key.pem": "node.key",
}


def check_certificates(tn, nodes):
    """Every file libvirt and QEMU read is herd's: its CA, the node's own."""
    for i in nodes:
        for rel, herd_name in PKI_FILES.items():
            p = tn.exec(i, "cmp", f"/etc/pki/{rel}", f"/var/lib/herd/tls/{herd_name}")
            expect(p.returncode == 0,
                   f"n{i}: /etc/pki/{rel} is not herd's {herd_name}: {output(p)}")
        p = tn.exec(i, "certtool", "-i", "--infile", "/etc/pki/libvirt/servercert.pem")
        expect(f"CN=n{i}" in p.stdout, f"n{i}: its libvirt certificate is not for n{i}")


# ---------------------------------------------------------------- control connection

def check_control_connection(tn, tmp):
    p = virsh(tn, 2, "hostname", uri="qemu+tls://n3/system")
    check(p.returncode == 0 and p.stdout.strip() == "n3",
          f"n2: virsh -c qemu+tls://n3/system hostname: {output(p)}")
    p = virsh(tn, 2, "hostname", uri="qemu+tls://10.99.0.3/system")
    expect(p.returncode == 0 and p.stdout.strip() == "n3",
           f"n2: virsh -c qemu+tls://10.99.0.3/system hostname: {output(p)}")
    say("n2 -> qemu+tls://n3/system and qemu+tls://10.99.0.3/system: connected, authenticated")

    p = virsh(tn, 2, "hostname", uri="qemu+tcp://n3/system")
    expect(p.returncode != 0, "n2: qemu+tcp://n3/system was accepted")
    expect("Connection refused" in p.stderr,
           f"n2: qemu+tcp://n3/system failed, but not as refused: {output(p)}")
    say(f"n2 -> qemu+tcp://n3/system: {p.stderr.strip().splitlines()[-1] if p.stderr.strip() else '?'}")

    # A client certificate from another CA.  The client trusts both CAs (so
    # that libvirt's own sanity check of its certificate passes and it can
    # verify n3); n3 trusts only the cluster's and must turn it away.
    pki = os.path.join(tmp, "foreign-pki")
    os.makedirs(pki)
    make_foreign_client(tn, pki)
    log = os.path.join(tn.tn.log_dir(3), "libvirt", "libvirtd.log")
    seen = os.path.getsize(log) if os.path.exists(log) else 0
    p = virsh(tn, 1, "hostname", uri=f"qemu+tls://n3/system?pkipath={pki}")
    expect(p.returncode != 0,
           "n1: a client certificate from another CA was accepted by n3's libvirtd")
    with open(log, errors="replace") as f:
        f.seek(seen)
        logged = f.read()
    expect("Failed to verify peer's certificate" in logged,
           f"n3's libvirtd did not log that it refused n1's certificate: {logged[-300:]!r}")
    say(f"n1 -> qemu+tls://n3/system with a certificate of another CA: refused "
        f"({output(p).splitlines()[-1] if output(p) else '?'})")


def certtool(args, template=None, tmp=None):
    argv = ["certtool"] + args
    if template is not None:
        path = os.path.join(tmp, "template.info")
        with open(path, "w") as f:
            f.write(template)
        argv += ["--template", path]
    p = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    check(p.returncode == 0, f"{' '.join(argv)}: {p.stderr.strip()}")
    return p.stdout


def make_foreign_client(tn, pki):
    ca_key = os.path.join(pki, "foreign-ca.key")
    ca_cert = os.path.join(pki, "foreign-ca.pem")
    key = os.path.join(pki, "clientkey.pem")
    certtool(["--generate-privkey", "--outfile", ca_key])
    certtool(["--generate-self-signed", "--load-privkey", ca_key, "--outfile", ca_cert],
             "cn = not the cluster's CA\nca\ncert_signing_key\nexpiration_days = 2\n", pki)
    certtool(["--generate-privkey", "--outfile", key])
    # The name of a real node: only the CA is wrong.
    certtool(["--generate-certificate", "--load-privkey", key, "--load-ca-certificate", ca_cert,
              "--load-ca-privkey", ca_key, "--outfile", os.path.join(pki, "clientcert.pem")],
             "cn = n1\ntls_www_client\nsigning_key\nencryption_key\nexpiration_days = 2\n", pki)
    with open(os.path.join(tn.tn.node_dir(1), "fs/var/lib/herd/tls/ca.crt")) as f:
        cluster_ca = f.read()
    with open(ca_cert) as f:
        foreign_ca = f.read()
    with open(os.path.join(pki, "cacert.pem"), "w") as f:
        f.write(cluster_ca + foreign_ca)


# ---------------------------------------------------------------- the guest

class Guest:
    def __init__(self, tmp):
        self.log = os.path.join(tmp, f"{GUEST}.serial.log")
        self.xml = os.path.join(tmp, f"{GUEST}.xml")
        guest_xml(GUEST, self.xml, serial_log=self.log, image=guest_image(), memory_mib=32)
        self.serial = SerialLog(self.log)

    def values(self):
        return self.serial.values()

    def check_counting(self, what):
        """One boot line, then 1, 2, 3… with none missing or repeated."""
        v = self.values()
        n = len(v) - 1
        check(v[:1] == ["boot"] and v[1:] == list(range(1, n + 1)),
              f"{what}: the guest's serial log is not one boot and 1..{n}: {v}")
        return v[-1]

    def wait_counter(self, above, what, timeout=20):
        wait_until(lambda: (self.serial.counter() or 0) > above, timeout,
                   f"{what}: the guest's counter to pass {above}", interval=0.1)


def domain_state(tn, i):
    """The guest's state on node i ("running", …) or None if it has none."""
    p = virsh(tn, i, "domstate", GUEST)
    return p.stdout.strip() if p.returncode == 0 else None


def listening_ports(tn, i, ranges=((PORT_MIN, PORT_MAX),)):
    """TCP ports in the migration ranges that node i listens on (from the
    /proc/net/tcp of its init, which is in the node's network namespace)."""
    pid = tn.tn.init_pid(i)
    ports = set()
    for name in ("tcp", "tcp6"):
        try:
            with open(f"/proc/{pid}/net/{name}") as f:
                lines = f.readlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            port = int(fields[1].rsplit(":", 1)[1], 16)
            if fields[3] == "0A" and any(lo <= port <= hi for lo, hi in ranges):
                ports.add(port)
    return ports


class PortWatch:
    """Polls node i's listening ports in the migration range in a thread,
    for the report: which port the incoming QEMU took."""

    def __init__(self, tn, i, ranges):
        self.tn, self.i, self.ranges = tn, i, ranges
        self.seen = set()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self.stop.is_set():
            self.seen |= listening_ports(self.tn, self.i, self.ranges)
            time.sleep(0.002)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()
        return False


class HeldPorts:
    """A process in node i listening on @ports of the node's address."""

    def __init__(self, tn, i, ports):
        argv = tn.tn.node_argv(i, [sys.executable, "-c", PORT_HOLDER, f"10.99.0.{i}"]
                               + [str(p) for p in ports])
        self.p = subprocess.Popen(argv, env=tn.tn.node_env(i), stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.p.stdout.readline().strip()
        if line != "ready":
            self.close()
            raise TestFailure(f"n{i}: could not hold ports {list(ports)}: {self.p.stderr.read()}")

    def close(self):
        if self.p.poll() is None:
            self.p.stdin.close()
            try:
                self.p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()


def migrate(tn, guest, src, dst, tls, watch_ports=False, ranges=((PORT_MIN, PORT_MAX),)):
    """virsh migrate --live --p2p [--tls] from node src to node dst; checks
    the guest runs on dst only and counts on.  Returns the ports of @ranges
    dst was seen listening on while it ran (with watch_ports)."""
    last = guest.check_counting(f"before the migration n{src} -> n{dst}")
    args = ["migrate", "--live", "--p2p"] + (["--tls"] if tls else []) + \
        [GUEST, f"qemu+tls://n{dst}/system"]
    before = listening_ports(tn, dst, ranges)
    t0 = time.monotonic()
    if watch_ports:
        with PortWatch(tn, dst, ranges) as watch:
            p = virsh(tn, src, *args, timeout=MIGRATE_TIMEOUT_S)
        seen = watch.seen - before
    else:
        p = virsh(tn, src, *args, timeout=MIGRATE_TIMEOUT_S)
        seen = set()
    took = time.monotonic() - t0
    check(p.returncode == 0, f"n{src}: virsh {' '.join(args)} failed: {output(p)}")
    state_dst, state_src = domain_state(tn, dst), domain_state(tn, src)
    check(state_dst == "running", f"after the migration the guest is {state_dst!r} on n{dst}")
    check(state_src is None, f"after the migration the guest is still {state_src!r} on n{src}")
    guest.wait_counter(last + 2, f"after the migration n{src} -> n{dst}")
    now = guest.check_counting(f"after the migration n{src} -> n{dst}")
    say(f"migrated n{src} -> n{dst} {'with' if tls else 'without'} --tls at counter ~{last} "
        f"(virsh took {took:.2f} s); counter now {now}, one boot line, none missing")
    return seen


def check_tls_needs_certificates(tn, guest):
    """With n3's QEMU server certificate gone, a --tls migration to n3 must
    fail (so --tls does use it) and leave the guest running on n2."""
    key, aside = "/etc/pki/qemu/server-key.pem", "/etc/pki/qemu/server-key.pem.aside"
    tn.exec(3, "mv", key, aside, check=True)
    try:
        last = guest.check_counting("before the migration that must fail")
        p = virsh(tn, 2, "migrate", "--live", "--p2p", "--tls", GUEST, "qemu+tls://n3/system",
                  timeout=MIGRATE_TIMEOUT_S)
        expect(p.returncode != 0, "a --tls migration to n3 succeeded although its QEMU "
               "had no server key")
        say(f"--tls migration to n3 without its QEMU server key: {output(p).splitlines()[-1] if output(p) else '?'}")
    finally:
        tn.exec(3, "mv", aside, key, check=True)
    check(domain_state(tn, 2) == "running", "the guest does not run on n2 after the failed migration")
    check(domain_state(tn, 3) is None, "the failed migration left the guest on n3")
    guest.wait_counter(last + 1, "after the failed migration")
    guest.check_counting("after the failed migration")


# ---------------------------------------------------------------- herd's setup

def conf_values(tn, i):
    """{key: value} of node i's qemu.conf lines that set a key herd keeps."""
    p = tn.exec(i, "cat", "/etc/libvirt/qemu.conf", check=True)
    out = {}
    for line in p.stdout.splitlines():
        key, eq, value = line.partition("=")
        if eq and key.strip() in ("migration_port_min", "migration_port_max",
                                  "migrate_tls_x509_cert_dir", "migrate_tls_x509_verify"):
            out[key.strip()] = value.strip()
    return out


def reserved_ports(tn, i):
    return tn.exec(i, "cat", "/proc/sys/net/ipv4/ip_local_reserved_ports", check=True).stdout.strip()


def libvirtd_pid(tn, i):
    """The PID of node i's libvirtd, or None while it is restarting."""
    p = tn.exec(i, "cat", "/run/node-service/libvirtd.pid")
    return p.stdout.strip() if p.returncode == 0 else None


def node_states(tn):
    """{name: its "herd" object} from herd node list on n1."""
    p = tn.exec(1, "herd", "--json", "node", "list", check=True)
    return {n["name"]: n.get("herd") or {} for n in json.loads(p.stdout)}


def settings(tn):
    p = tn.exec(1, "herd", "--json", "cluster", "settings", check=True)
    return {s["key"]: s["value"] for s in json.loads(p.stdout)}


def check_host_setup(tn, nodes, lo, hi):
    """herd's qemu.conf keys and reserved ports on every node, for lo-hi."""
    for i in nodes:
        want = {"migration_port_min": str(lo), "migration_port_max": str(hi),
                "migrate_tls_x509_cert_dir": '"/etc/pki/qemu"', "migrate_tls_x509_verify": "1"}
        got = conf_values(tn, i)
        expect(got == want, f"n{i}: qemu.conf sets {got}, not {want}")
        ports = reserved_ports(tn, i)
        expect(ports == f"{lo}-{hi}", f"n{i}: the kernel reserves ports {ports!r}, not {lo}-{hi}")
    states = node_states(tn)
    for i in nodes:
        st = states.get(f"n{i}", {})
        expect(st.get("migration_ready") is True,
               f"n{i} is not ready for live migration: {st.get('migration_problem')}")


def check_bad_ranges(tn, nodes):
    """Refused with the reason; nothing changes anywhere."""
    confs = {i: tn.exec(i, "cat", "/etc/libvirt/qemu.conf", check=True).stdout for i in nodes}
    pids = {i: libvirtd_pid(tn, i) for i in nodes}
    before = settings(tn)
    for args, reason in (
            (["migration_port_min=50000"],
             "Setting migration_port_min (50000) is above migration_port_max (49215)"),
            (["migration_port_min=50100", "migration_port_max=50099"],
             "Setting migration_port_min (50100) is above migration_port_max (50099)"),
            (["migration_port_max=60000"],
             "The migration port range 49152-60000 holds 10849 ports; at most 1024")):
        p = tn.exec(1, "herd", "cluster", "set", *args)
        expect(p.returncode != 0, f"herd cluster set {' '.join(args)} was accepted")
        expect(reason in p.stderr, f"herd cluster set {' '.join(args)}: {output(p)!r} does not say "
               f"{reason!r}")
        say(f"herd cluster set {' '.join(args)}: refused: {p.stderr.strip()}")
    expect(settings(tn) == before, "a refused range changed the cluster's settings")
    for i in nodes:
        now = tn.exec(i, "cat", "/etc/libvirt/qemu.conf", check=True).stdout
        expect(now == confs[i], f"n{i}: a refused range changed qemu.conf")
        expect(libvirtd_pid(tn, i) == pids[i], f"n{i}: a refused range restarted libvirtd")


def check_range_change(tn, nodes, guest):
    """The new range on every node, libvirtd restarted, the guest on n2
    unharmed; a migration into n3 then takes a port of the new range."""
    pids = {i: libvirtd_pid(tn, i) for i in nodes}
    last = guest.check_counting("before the range change")
    p = tn.exec(1, "herd", "cluster", "set", f"migration_port_min={NEW_MIN}",
                f"migration_port_max={NEW_MAX}")
    check(p.returncode == 0, f"herd cluster set migration_port_min={NEW_MIN} "
          f"migration_port_max={NEW_MAX}: {output(p)}")

    def applied(i):
        got = conf_values(tn, i)
        return (got.get("migration_port_min") == str(NEW_MIN)
                and got.get("migration_port_max") == str(NEW_MAX)
                and libvirtd_pid(tn, i) not in (None, pids[i])
                and node_states(tn).get(f"n{i}", {}).get("migration_ready") is True)
    for i in nodes:
        wait_until(lambda: applied(i), 60,
                   f"n{i}: qemu.conf with {NEW_MIN}-{NEW_MAX}, libvirtd restarted, ready")
    check_host_setup(tn, nodes, NEW_MIN, NEW_MAX)
    check_expected()
    say(f"{NEW_MIN}-{NEW_MAX} reached qemu.conf and the reserved ports of n1-n3; every "
        "libvirtd restarted (new PID)")
    # A libvirtd restart leaves its guests running.
    check(domain_state(tn, 2) == "running", "the guest does not run on n2 after libvirtd's restart")
    guest.wait_counter(last + 2, "after libvirtd's restart on n2")
    guest.check_counting("after libvirtd's restart on n2")

    # The whole old range held on n3, and the first ports of the new one:
    # only a port of the new range can take the guest.
    held = list(range(PORT_MIN, PORT_MAX + 1)) + [NEW_MIN, NEW_MIN + 1]
    holder = HeldPorts(tn, 3, held)
    try:
        seen = migrate(tn, guest, 2, 3, tls=True, watch_ports=True,
                       ranges=((PORT_MIN, PORT_MAX), (NEW_MIN, NEW_MAX)))
    finally:
        holder.close()
    expect(all(NEW_MIN + 2 <= p <= NEW_MAX for p in seen),
           f"n3 listened anew on {sorted(seen)}, not all in {NEW_MIN + 2}-{NEW_MAX}")
    say(f"with {PORT_MIN}-{PORT_MAX} and {NEW_MIN}-{NEW_MIN + 1} held on n3 the migration "
        f"succeeded; n3 was seen listening on {sorted(seen) or 'no new port (too quick to see)'}")


def main():
    with TestNodes(INSTANCE, 3) as tn, Workdir(INSTANCE) as tmp:
        check_certificates(tn, [1, 2, 3])
        check_host_setup(tn, [1, 2, 3], PORT_MIN, PORT_MAX)
        check_control_connection(tn, tmp)

        guest = Guest(tmp)
        p = virsh(tn, 2, "create", guest.xml)
        check(p.returncode == 0, f"n2: virsh create {guest.xml}: {output(p)}")
        guest.wait_counter(2, "after virsh create on n2")

        migrate(tn, guest, 2, 3, tls=True)
        migrate(tn, guest, 3, 2, tls=False)

        holder = HeldPorts(tn, 3, HELD_PORTS)
        try:
            check(set(HELD_PORTS) <= listening_ports(tn, 3),
                  f"n3 does not listen on {list(HELD_PORTS)} though the holder said so")
            seen = migrate(tn, guest, 2, 3, tls=True, watch_ports=True)
        finally:
            holder.close()
        expect(not (seen & set(HELD_PORTS)), f"n3 listened anew on held ports {sorted(seen)}")
        say(f"with ports {HELD_PORTS.start}-{HELD_PORTS.stop - 1} held on n3 the migration "
            f"succeeded; n3 was seen listening on {sorted(seen) or 'no new port (too quick to see)'}")

        migrate(tn, guest, 3, 2, tls=True)
        check_tls_needs_certificates(tn, guest)

        check_bad_ranges(tn, [1, 2, 3])
        check_range_change(tn, [1, 2, 3], guest)

        p = virsh(tn, 3, "destroy", GUEST)
        expect(p.returncode == 0, f"n3: virsh destroy {GUEST}: {output(p)}")
    return 0


if __name__ == "__main__":
    sys.exit(run_test(main, root=True))

"""What the eSAN tests share: a test CA and node certificates (certtool),
a replica node on loopback (nbdkit with nbdkit-herd-plugin.so, socket-
activated on a unix socket and a TCP port as herd-san runs it), its control
socket (JSON lines), and qemu-io through the local socket.  Python 3 stdlib
only; everything lives in a temporary directory the caller removes.

    with tempfile.TemporaryDirectory() as tmp:
        ca = TestCA(tmp)
        a, b = Replica(tmp, "a", ca), Replica(tmp, "b", ca)
        a.peer, b.peer = b, a
        a.start(uptodate=True); b.start(uptodate=True)
        a.qemu_io("write -P 0x11 0 64k")
"""
import fcntl
import json
import os
import queue
import signal
import socket
import subprocess
import threading
import time

from testlib import build_dir, check, wait_until

UUID = "3f2a6f0e-7c1b-4d55-9a43-5b1d0c2e8a10"
SIZE = 64 << 20
GEN = "1d2c3b4a59687706"


def plugin_path():
    """The plugin of this build, or $HERD_SAN_PLUGIN (e.g. a sanitizer build's,
    with $HERD_SAN_PRELOAD naming the sanitizer runtime nbdkit preloads)."""
    return os.environ.get("HERD_SAN_PLUGIN") or os.path.join(build_dir(), "src", "san",
                                                             "nbdkit-herd-plugin.so")


def run(argv, **kw):
    p = subprocess.run(argv, capture_output=True, text=True, **kw)
    check(p.returncode == 0, f"{argv[0]} failed: {p.stderr.strip()}")
    return p.stdout


class TestCA:
    """A CA and node certificates for 127.0.0.1/localhost, server and
    client, as the cluster CA makes them."""

    def __init__(self, tmp):
        self.dir = os.path.join(tmp, "ca")
        os.makedirs(self.dir)
        self.key = os.path.join(self.dir, "ca.key")
        self.cert = os.path.join(self.dir, "ca.crt")
        tpl = self._template("cn = \"herd test CA\"\nca\ncert_signing_key\nexpiration_days = 2\n")
        run(["certtool", "--generate-privkey", "--key-type=ecdsa", "--outfile", self.key])
        run(["certtool", "--generate-self-signed", "--load-privkey", self.key,
             "--template", tpl, "--outfile", self.cert])

    def _template(self, text):
        path = os.path.join(self.dir, f"tpl{len(os.listdir(self.dir))}")
        with open(path, "w") as f:
            f.write(text)
        return path

    def node(self, name, into, addresses=("127.0.0.1",)):
        """ca.crt, node.crt, node.key for node @name in directory @into,
        valid for @addresses."""
        os.makedirs(into, exist_ok=True)
        key, cert = os.path.join(into, "node.key"), os.path.join(into, "node.crt")
        ips = "".join(f"ip_address = \"{a}\"\n" for a in addresses)
        tpl = self._template(f"cn = \"{name}\"\n{ips}dns_name = \"localhost\"\n"
                             "tls_www_server\ntls_www_client\nsigning_key\nencryption_key\n"
                             "expiration_days = 2\n")
        run(["certtool", "--generate-privkey", "--key-type=ecdsa", "--outfile", key])
        run(["certtool", "--generate-certificate", "--load-privkey", key, "--load-ca-certificate",
             self.cert, "--load-ca-privkey", self.key, "--template", tpl, "--outfile", cert])
        with open(self.cert) as src, open(os.path.join(into, "ca.crt"), "w") as dst:
            dst.write(src.read())


class Control:
    """A client of a plugin's control socket: requests answered in order,
    events collected."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.answers = queue.Queue()
        self.events = []
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        buf = b""
        while True:
            try:
                data = self.sock.recv(65536)
            except OSError:
                return
            if not data:
                return
            buf += data
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                obj = json.loads(line)
                if "ev" in obj:
                    with self.lock:
                        self.events.append(obj)
                else:
                    self.answers.put(obj)

    def request(self, **obj):
        self.sock.sendall(json.dumps(obj).encode() + b"\n")
        try:
            return self.answers.get(timeout=30)
        except queue.Empty:
            check(False, f"no answer to {obj}")

    def raw(self, line):
        self.sock.sendall(line)
        return self.answers.get(timeout=30)

    def seen(self, ev, **match):
        """The events @ev (with the fields in @match) seen so far."""
        with self.lock:
            return [e for e in self.events
                    if e["ev"] == ev and all(e.get(k) == v for k, v in match.items())]

    def state(self):
        """The volume's state, asked now."""
        n = len(self.seen("state"))
        check(self.request(op="status") == {"ok": True}, "status answered")
        wait_until(lambda: len(self.seen("state")) > n, 10, "a state event")
        return self.seen("state")[-1]

    def close(self):
        self.sock.close()


class Replica:
    """One node's replica: its files, sockets and nbdkit."""

    def __init__(self, tmp, name, ca):
        self.name = name
        self.dir = os.path.join(tmp, name)
        self.tls = os.path.join(self.dir, "tls")
        ca.node(name, self.tls)
        # the names nbdkit wants, as herd-san links them
        self.nbdkit_tls = os.path.join(self.dir, "nbdkit-tls")
        os.makedirs(self.nbdkit_tls)
        for src, dst in (("ca.crt", "ca-cert.pem"), ("node.crt", "server-cert.pem"),
                         ("node.key", "server-key.pem")):
            os.symlink(os.path.join(self.tls, src), os.path.join(self.nbdkit_tls, dst))
        self.file = os.path.join(self.dir, "data")
        self.sock_path = os.path.join(self.dir, "vol.sock")
        self.control_path = os.path.join(self.dir, "vol.ctl")
        self.unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.unix.bind(self.sock_path)
        self.unix.listen(16)
        self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.tcp.bind(("127.0.0.1", 0))
        self.tcp.listen(16)
        self.port = self.tcp.getsockname()[1]
        self.peer = None
        self.proc = None
        self.ctl = None
        self.log = os.path.join(self.dir, "nbdkit.log")

    def start(self, uptodate, timeout_ms=1500, resync_rate=0, fault_trigger=None, size=SIZE,
              plugin=None):
        """nbdkit, socket-activated (fds 3 and 4) as herd-san starts it;
        with @fault_trigger, the replica file's I/O fails with EIO once that
        file exists (tests/san/io_fault.c, preloaded); @plugin: another
        build's plugin than plugin_path() (bench/esan-resync-loop)."""
        args = ["nbdkit"] + (["-v"] if os.environ.get("HERD_SAN_VERBOSE") else []) + ["--tls=on", f"--tls-certificates={self.nbdkit_tls}", "--tls-verify-peer",
                plugin or plugin_path(), f"file={self.file}", f"size={size}",
                f"meta={self.file}.meta", f"bitmap={self.file}.bitmap", f"al={self.file}.al",
                f"control={self.control_path}", f"uuid={UUID}",
                f"peer=127.0.0.1:{self.peer.port}", f"tls-dir={self.tls}",
                f"initial-gen={GEN}", f"uptodate={'true' if uptodate else 'false'}",
                f"timeout-ms={timeout_ms}", f"resync-rate={resync_rate}"]
        log = open(self.log, "a")
        env = dict(os.environ, PRELOAD=os.environ.get("HERD_SAN_PRELOAD", ""))
        if fault_trigger:
            shim = os.path.join(build_dir(), "tests", "san", "herd-io-fault.so")
            env.update(PRELOAD=" ".join(p for p in (env["PRELOAD"], shim) if p),
                       HERD_IO_FAULT_TRIGGER=fault_trigger, HERD_IO_FAULT_PATH=self.file)
        self.proc = subprocess.Popen(
            ["sh", "-c", 'LISTEN_PID=$$ LISTEN_FDS=2 LD_PRELOAD="$PRELOAD" exec "$@"', "sh"] + args,
            env=env,
            stdout=log, stderr=log, pass_fds=(3, 4), preexec_fn=self._fds, start_new_session=True)
        log.close()
        wait_until(lambda: os.path.exists(self.control_path) or self.proc.poll() is not None, 20,
                   f"{self.name}'s control socket")
        check(self.proc.poll() is None, f"{self.name}'s nbdkit exited: {self.tail()}")
        self.ctl = Control(self.control_path)

    def _fds(self):
        # in the child: the listening sockets become fds 3 and 4 (through
        # high numbers: either may be 3 or 4 already)
        u = fcntl.fcntl(self.unix.fileno(), fcntl.F_DUPFD, 100)
        t = fcntl.fcntl(self.tcp.fileno(), fcntl.F_DUPFD, 100)
        os.dup2(u, 3)
        os.dup2(t, 4)

    def kill(self):
        """A crash: SIGKILL, no clean close."""
        if self.ctl:
            self.ctl.close()
            self.ctl = None
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        if os.path.exists(self.control_path):
            os.unlink(self.control_path)

    def stop(self):
        """The end of a test.  nbdkit 1.32 exits on SIGTERM only once its
        clients are gone, and the peer's link is one: SIGTERM, then SIGKILL
        after a grace period."""
        if self.ctl:
            self.ctl.close()
            self.ctl = None
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=1)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()

    def tail(self, n=20):
        try:
            with open(self.log) as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def qemu_io(self, *cmds, background=False, fed=False):
        """qemu-io through the local unix socket (the UUID export); with
        @fed, it reads its commands from its stdin (see Writer)."""
        argv = ["qemu-io", "-f", "raw", "-t", "none"]
        for c in cmds:
            argv += ["-c", c]
        argv.append(f"nbd+unix:///{UUID}?socket={self.sock_path}")
        if background:
            return subprocess.Popen(argv, stdin=subprocess.PIPE if fed else None,
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        p = subprocess.run(argv, capture_output=True, text=True, timeout=120)
        return p

    def qemu_io_fed(self):
        """qemu-io through the local unix socket, fed its commands while it
        runs (a Writer)."""
        return Writer(self.qemu_io(background=True, fed=True))

    def content(self):
        with open(self.file, "rb") as f:
            return f.read()


class Writer:
    """A local writer that keeps the volume open until the test lets it
    go, whatever the machine's pace: qemu-io reading its commands from a
    pipe, so what a test checks while it is open does not race a sleep."""

    def __init__(self, proc):
        self.proc = proc

    def send(self, *cmds):
        self.proc.stdin.write("".join(c + "\n" for c in cmds))
        self.proc.stdin.flush()

    def running(self):
        return self.proc.poll() is None

    def finish(self, *cmds, timeout=120):
        """@cmds, then the end of its input: its exit status and output."""
        out, _ = self.proc.communicate("".join(c + "\n" for c in cmds), timeout=timeout)
        return self.proc.returncode, out

    def kill(self):
        if self.running():
            self.proc.kill()
            self.proc.communicate()


def first_difference(a, b):
    if len(a) != len(b):
        return f"sizes {len(a)} and {len(b)}"
    for off in range(0, len(a), 4096):
        if a[off:off + 4096] != b[off:off + 4096]:
            return f"first at {off}"
    return None

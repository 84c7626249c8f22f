#!/usr/bin/python3
"""herd-san, the eSAN daemon, without a cluster: two instances on loopback
("a" and "b", each with its own data and run directories, control socket,
ports and node certificate from a test CA), driven through their control
sockets as herdd drives them, with the build's nbdkit-herd-plugin.so.

1. A volume on both: the replica files are made (sparse, the size), each
   herd-san runs one socket-activated nbdkit, the plugins connect; writes
   through a's unix socket (qemu-io) land on both replica files.
2. Bad ops are refused with a sentence naming the problem, and change
   nothing (files, saved messages, nbdkit processes).
3. herd-san is killed (SIGKILL) while qemu-io writes: the writes go on, and
   the new herd-san adopts the running nbdkit (no second one) and relays
   its events; so does one whose pid file is gone (found in /proc).  An
   nbdkit that dies is started again.
4. `verify` is relayed to the plugin and its answer comes back as an event;
   `resize` grows both replica files and the plugins take it.
   New storage addresses (a volume op whose own or peer address changed):
   both nbdkits start again there and reconnect; not under a local writer,
   whose move waits until it closes.
   Renewed certificates (new files in the node's TLS directory): the
   nbdkit starts again with them (found by herd-san's periodic check) and
   the volume reconnects; under a local writer, once it closes.
5. `remove` stops the nbdkits and deletes every file of the volume.
6. An nbdkit that cannot start (no plugin) is started again, later and later,
   and herdd gets an error event that says so.

Run: meson test -C build --suite san (or this file; HERD_BUILD_DIR=build).
"""
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile

_here = os.path.dirname(os.path.realpath(__file__))
sys.path[:0] = [_here, os.path.dirname(_here)]
from testlib import SKIP, build_dir, check, expect, run_test, say, wait_until  # noqa: E402
from sanlib import UUID, Control, Replica, TestCA, first_difference, plugin_path  # noqa: E402

OTHER = "6b0f2c1e-3d4a-4e5b-8c6d-000000000000"
SIZE = 32 << 20
GEN = "0a1b2c3d4e5f6071"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def nbdkits_under(tmp):
    """PIDs of the nbdkit processes whose command line names @tmp."""
    pids = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"nbdkit") and any(tmp.encode() in a for a in argv) \
                and proc_alive(int(d)):
            pids.append(int(d))
    return pids


class SanNode:
    """One herd-san on loopback, its directories, its control client."""

    def __init__(self, tmp, name, ca):
        self.tmp, self.name = tmp, name
        self.dir = os.path.join(tmp, name)
        self.data = os.path.join(self.dir, "data")
        self.run = os.path.join(self.dir, "run")
        self.socket = os.path.join(self.dir, "san.sock")
        self.sock_path = os.path.join(self.run, f"{UUID}.sock")     # QEMU's
        self.tls = os.path.join(self.dir, "tls")
        # (the storage addresses of part 4b too: the peer's link checks them)
        ca.node(name, self.tls, addresses=("127.0.0.1", "127.0.0.2", "127.0.0.3"))
        self.port = free_port()
        self.address = "127.0.0.1"
        self.log = os.path.join(self.dir, "herd-san.log")
        self.proc = None
        self.ctl = None
        self.plugin = plugin_path()

    def start(self):
        argv = [os.path.join(build_dir(), "src", "san", "herd-san"), "--verbose",
                "--data-dir", self.data, "--run-dir", self.run, "--socket", self.socket,
                "--plugin", self.plugin]
        with open(self.log, "a") as log:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        def listening():
            check(self.proc.poll() is None, f"{self.name}'s herd-san exited: {self.tail()}")
            try:
                return Control(self.socket)
            except OSError:     # not yet, or the last herd-san's socket file
                return None
        self.ctl = wait_until(listening, 20, f"{self.name}'s herd-san to listen")

    def kill(self):
        if self.ctl:
            self.ctl.close()
            self.ctl = None
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
        self.proc = None

    def stop(self):
        if self.ctl:
            self.ctl.close()
            self.ctl = None
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def tail(self, n=15):
        try:
            with open(self.log, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def config(self):
        return dict(op="config", tls_dir=self.tls, resync_rate=64 << 20, timeout_ms=3000)

    def volume(self, peer, **change):
        msg = dict(op="volume", uuid=UUID, name="vol1", size=SIZE,
                   listen={"address": self.address, "port": self.port},
                   peer={"node": peer.name, "address": peer.address, "port": peer.port},
                   local="uptodate", peer_state="uptodate", initial_gen=GEN)
        msg.update(change)
        return msg

    def path(self, suffix, run=False):
        return os.path.join(self.run if run else self.data, f"{UUID}.{suffix}")

    def nbdkit_pid(self):
        try:
            with open(self.path("pid", run=True)) as f:
                pid = int(f.read())
        except (OSError, ValueError):
            return None
        return pid if proc_alive(pid) else None

    def state(self):
        return self.ctl.state()

    # qemu-io through the local unix socket, as sanlib runs it
    qemu_io = Replica.qemu_io
    qemu_io_fed = Replica.qemu_io_fed

    def replica(self):
        with open(self.path("img"), "rb") as f:
            return f.read()

    def snapshot(self):
        """What bad input must not change: the files (names, sizes, saved
        messages) and the nbdkit process."""
        files = {}
        for d in (self.data, self.run):
            for name in sorted(os.listdir(d)):
                p = os.path.join(d, name)
                if name.endswith(".json"):
                    with open(p) as f:
                        files[name] = f.read()
                elif os.path.isfile(p):
                    files[name] = os.path.getsize(p)
                else:
                    files[name] = "present"
        return files, self.nbdkit_pid()


def qemu_ok(p, what):
    out = (p.stdout or "") + (p.stderr or "")
    check(p.returncode == 0 and "failed" not in out, f"{what}: qemu-io: {out.strip()}")


def equal_replicas(a, b, what):
    diff = first_difference(a.replica(), b.replica())
    check(diff is None, f"{what}: the replica files differ ({diff})")


def wait_connected(n):
    wait_until(lambda: n.state().get("conn") == "connected", 60, f"{n.name}'s volume connected",
               interval=0.3)


def create(a, b):
    say("1. a volume on both nodes: files, one nbdkit each, writes reach both replicas")
    for n, peer in ((a, b), (b, a)):
        r = n.ctl.request(**n.volume(peer))
        check(r.get("ok") is False and "config" in r.get("error", ""),
              f"a volume before the config is refused: {r}")
        check(not os.path.exists(n.path("img")), "and made no replica")
        check(n.ctl.request(**n.config()) == {"ok": True}, f"{n.name}: config")
        check(n.ctl.request(**n.volume(peer)) == {"ok": True}, f"{n.name}: volume")
        st = os.stat(n.path("img"))
        check(st.st_size == SIZE, f"{n.name}'s replica has the volume's size ({st.st_size})")
        check(st.st_blocks * 512 < SIZE // 4, f"{n.name}'s replica is sparse")
        # idempotent: the same message again changes nothing
        check(n.ctl.request(**n.volume(peer)) == {"ok": True}, f"{n.name}: volume again")
    for n in (a, b):
        wait_until(n.nbdkit_pid, 20, f"{n.name}'s nbdkit")
        check(len(nbdkits_under(n.dir)) == 1, f"{n.name} runs one nbdkit")
        wait_connected(n)
    qemu_ok(a.qemu_io("write -P 0x5a 0 1M", "write -P 0x3c 17M 64k", "flush"), "writes through a")
    equal_replicas(a, b, "after writes through a")
    check(b.replica()[:4096] == b"\x5a" * 4096, "b's replica holds what a's guest wrote")


def bad_ops(a, b):
    say("2. bad ops: refused with a sentence, nothing changed")
    before = a.snapshot()
    vol = a.volume(b)
    cases = [
        ("not json", b"this is not json\n", "not JSON"),
        ("unknown op", dict(op="frobnicate"), "Unknown op 'frobnicate'"),
        ("no op", dict(uuid=UUID), "\"op\""),
        ("bad uuid", dict(vol, uuid="../../etc/passwd"), "\"uuid\""),
        ("size 0", dict(vol, size=0), "\"size\""),
        ("size not a multiple of 512", dict(vol, size=SIZE + 3), "multiple of 512"),
        ("size a string", dict(vol, size="32M"), "\"size\""),
        ("bad address", dict(vol, listen={"address": "nowhere", "port": a.port}), "listen.address"),
        ("bad port", dict(vol, peer={"node": "b", "address": "127.0.0.1", "port": 70000}), "peer.port"),
        ("bad state", dict(vol, local="maybe"), "\"local\""),
        ("bad gen", dict(vol, initial_gen="xyz"), "initial_gen"),
        ("shrink by volume", dict(vol, size=SIZE // 2), "cannot shrink"),
        ("shrink by resize", dict(op="resize", uuid=UUID, size=SIZE // 2), "cannot shrink"),
        ("resize of no volume", dict(op="resize", uuid=OTHER, size=SIZE), "no volume"),
        ("relay to no volume", dict(op="outdated", uuid=OTHER), "no volume"),
        ("config without its files", dict(a.config(), tls_dir="/nonexistent"), "ca.crt"),
        ("config, relative dir", dict(a.config(), tls_dir="tls"), "absolute"),
        ("a second volume on a used port", dict(vol, uuid=OTHER, listen={"address": "127.0.0.1",
                                                                           "port": b.port}),
         "Address already in use"),
    ]
    for what, msg, needle in cases:
        r = a.ctl.raw(msg) if isinstance(msg, bytes) else a.ctl.request(**msg)
        expect(r.get("ok") is False and needle in r.get("error", ""),
               f"{what}: refused naming '{needle}' (got {r})")
    expect(a.snapshot() == before, f"bad ops changed nothing ({before} → {a.snapshot()})")
    expect(not os.path.exists(os.path.join(a.data, f"{OTHER}.img")), "no replica for the refused volume")
    # a second herd-san on the same directories is refused, the first unharmed
    p = subprocess.run([os.path.join(build_dir(), "src", "san", "herd-san"), "--data-dir", a.data,
                        "--run-dir", a.run, "--socket", a.socket + "2", "--plugin", a.plugin],
                       capture_output=True, text=True, timeout=30)
    expect(p.returncode != 0 and "another herd-san serves this run directory" in p.stderr,
           f"a second herd-san is refused: {p.returncode} {p.stderr.strip()}")
    # still serving, and good ops still answered on the same connection
    expect(a.ctl.request(op="status") == {"ok": True}, "status after the bad ops")


def restart_while_writing(a, b):
    say("3. herd-san killed and started again while qemu-io writes")
    old = a.nbdkit_pid()
    writes = [[f"write -P {i % 250 + 1} {i * 65536} 64k", "flush", "sleep 20"] for i in range(150)]
    # half of the writes before herd-san is killed (some of them while it
    # is away), the other half once a new one runs: the writer's volume
    # stays open throughout, however slow the machine
    writer = a.qemu_io_fed()
    try:
        writer.send(*sum(writes[:75], []))
        wait_until(lambda: b.replica()[0:1] == b"\x01", 30, "the first write on b's replica")
        a.kill()
        check(writer.running(), "qemu-io goes on after herd-san was killed")
        check(a.nbdkit_pid() == old, "the nbdkit outlives herd-san")
        a.start()
        wait_until(lambda: "adopted its running nbdkit" in a.tail(40), 20, "the new herd-san to adopt nbdkit")
        check(f"(pid {old})" in a.tail(40), f"it adopted nbdkit {old}: {a.tail(5)}")
        status, out = writer.finish(*sum(writes[75:], []), timeout=180)
        check(status == 0 and "failed" not in out, f"the writes went on: {out[-500:]}")
    finally:
        writer.kill()
    check(nbdkits_under(a.dir) == [old], f"one nbdkit, the old one ({nbdkits_under(a.dir)})")
    equal_replicas(a, b, "after the writes across the restart")
    data = b.replica()
    for i in range(150):
        blk = data[i * 65536:(i + 1) * 65536]
        check(blk == bytes([i % 250 + 1]) * 65536, f"block {i} holds its pattern on b")
    # herdd's view through the new herd-san: the plugin's events are relayed
    wait_connected(a)
    # a herd-san killed before it wrote the pid file: the next finds nbdkit all the same
    a.kill()
    os.unlink(a.path("pid", run=True))
    a.start()
    wait_until(lambda: a.tail(40).count(f"adopted its running nbdkit (pid {old})") == 2, 20,
               "the third herd-san to adopt nbdkit without its pid file")
    check(a.nbdkit_pid() == old and nbdkits_under(a.dir) == [old], "the pid file is back, one nbdkit")
    wait_connected(a)
    # the config and volume survive in the data directory
    check(a.ctl.request(**a.volume(b)) == {"ok": True}, "the volume message again")

    say("   an nbdkit that dies is started again")
    os.kill(old, signal.SIGKILL)
    wait_until(lambda: a.nbdkit_pid() not in (None, old), 30, "a new nbdkit for a")
    wait_connected(a)
    qemu_ok(a.qemu_io("write -P 0x77 2M 64k", "flush"), "writes through the new nbdkit")
    equal_replicas(a, b, "after writes through the new nbdkit")


def resize_and_verify(a, b):
    say("4. verify is relayed, its result an event; resize grows both replicas")
    n = len(a.ctl.seen("verify"))
    r = a.ctl.request(op="verify", uuid=UUID)
    check(r == {"ok": True}, f"verify: {r}")
    ev = wait_until(lambda: a.ctl.seen("verify")[n:], 60, "the verify event")[0]
    check(ev.get("uuid") == UUID and ev.get("equal") is True, f"verify: the replicas are equal: {ev}")

    for n in (a, b):
        r = n.ctl.request(op="resize", uuid=UUID, size=2 * SIZE)
        check(r == {"ok": True}, f"{n.name}: resize: {r}")
        check(os.path.getsize(n.path("img")) == 2 * SIZE, f"{n.name}'s replica grew")
        check(n.ctl.request(op="resize", uuid=UUID, size=2 * SIZE) == {"ok": True},
              f"{n.name}: the same resize again")
    p = a.qemu_io("length")
    qemu_ok(p, "qemu-io length")
    check(p.stdout.strip() == f"{2 * SIZE >> 20} MiB", f"a new connection sees the new size: {p.stdout}")
    # (the plugin's link sees the peer's new size after it reconnects; a
    # write past the old end before that is taken for a lost peer)
    wait_until(lambda: a.state().get("peer_size") == 2 * SIZE, 30, "a's link to see b's new size",
               interval=0.3)
    qemu_ok(a.qemu_io(f"write -P 0x99 {2 * SIZE - 65536} 64k", "flush"), "a write at the new end")
    equal_replicas(a, b, "after a write at the new end")


def new_addresses(a, b):
    say("4b. new storage addresses: both nbdkits start again there, the volume reconnects")
    old = {n.name: n.nbdkit_pid() for n in (a, b)}
    a.address, b.address = "127.0.0.2", "127.0.0.3"
    for n, peer in ((a, b), (b, a)):
        check(n.ctl.request(**n.volume(peer, size=2 * SIZE)) == {"ok": True},
              f"{n.name}: volume on new addresses")
    for n in (a, b):
        wait_until(lambda: n.nbdkit_pid() not in (None, old[n.name]), 30, f"a new nbdkit for {n.name}")
        wait_connected(n)
        with open(n.path("json")) as f:
            saved = json.load(f)
        check(saved["listen"]["address"] == n.address, f"{n.name} saved its new address: {saved['listen']}")
    listening = subprocess.run(["ss", "-ltnH"], capture_output=True, text=True).stdout
    check(f"127.0.0.2:{a.port}" in listening and f"127.0.0.3:{b.port}" in listening,
          f"the nbdkits listen on the new addresses: {listening}")
    qemu_ok(a.qemu_io("write -P 0x42 5M 64k", "flush"), "writes after the move")
    equal_replicas(a, b, "after writes on the new addresses")

    say("4c. a move while a local writer has the volume open waits until it closes")

    def move_back():
        a.address = "127.0.0.1"
        check(a.ctl.request(**a.volume(b, size=2 * SIZE)) == {"ok": True}, "a: volume back on 127.0.0.1")

    restart_waits_for_writer(a, ("write -P 0x24 6M 64k", "flush"), ("write -P 0x25 7M 64k", "flush"),
                             move_back, "once its local writer closes", "the move", "on the new address")
    check(b.ctl.request(**b.volume(a, size=2 * SIZE)) == {"ok": True}, "b: its peer back on 127.0.0.1")
    for n in (a, b):
        wait_connected(n)
    listening = subprocess.run(["ss", "-ltnH"], capture_output=True, text=True).stdout
    check(f"127.0.0.1:{a.port}" in listening, f"a's nbdkit listens on 127.0.0.1 again: {listening}")
    equal_replicas(a, b, "after the writer's writes and the move")


def restart_waits_for_writer(r, first, then, change, reason, what, after):
    """@change restarts replica @r's nbdkit while a local writer (qemu-io,
    fed @first, then @then) has the volume open: r says it waits (an event
    naming @reason), keeps its nbdkit until the writer, whose I/O goes on,
    closes, and then restarts it."""
    writer = r.qemu_io_fed()
    try:
        writer.send(*first)
        wait_until(lambda: r.state().get("writer") is True, 20, f"{r.name}'s local writer to open", interval=0.2)
        before = r.nbdkit_pid()
        n = len(r.ctl.seen("error", uuid=UUID))
        change()
        ev = wait_until(lambda: r.ctl.seen("error", uuid=UUID)[n:], 10, f"an event that {what} waits")[0]
        check(reason in ev["message"], f"the event says why: {ev}")
        writer.send(*then)
        check(r.state().get("writer") is True and r.nbdkit_pid() == before,
              f"{r.name}'s nbdkit was restarted under its writer")
        status, out = writer.finish(timeout=120)
        check(status == 0 and "failed" not in out, f"the writer's I/O went on: {out.strip()}")
    finally:
        writer.kill()
    wait_until(lambda: r.nbdkit_pid() not in (None, before), 30, f"{r.name}'s nbdkit {after}")


def renewed_certs(a, b, ca):
    say("4d. renewed certificates: the nbdkit starts again with them, the volume reconnects")
    old_a, old_b = a.nbdkit_pid(), b.nbdkit_pid()
    ca.node("a", a.tls, addresses=("127.0.0.1", "127.0.0.2", "127.0.0.3"))
    # herd-san's own check (every few seconds) finds them: no op sent
    wait_until(lambda: a.nbdkit_pid() not in (None, old_a), 30, "a's nbdkit with the new certificate")
    for n in (a, b):
        wait_connected(n)
    check(b.nbdkit_pid() == old_b, "b's nbdkit (its certificate unchanged) goes on")
    qemu_ok(a.qemu_io("write -P 0x4d 9M 64k", "flush"), "writes after the renewal")
    equal_replicas(a, b, "after the renewal")

    say("4e. renewed under a local writer: taken once it closes")

    def renew():
        ca.node("b", b.tls, addresses=("127.0.0.1", "127.0.0.2", "127.0.0.3"))
        check(b.ctl.request(**b.config()) == {"ok": True}, "b: config (the check runs at once)")

    restart_waits_for_writer(b, ("write -P 0x4e 10M 64k", "flush"), ("write -P 0x4f 11M 64k", "flush"),
                             renew, "renewed certificates once its local writer closes", "the renewal",
                             "with the new certificate")
    for n in (a, b):
        wait_connected(n)
    qemu_ok(a.qemu_io("write -P 0x50 12M 64k", "flush"), "writes after both renewals")
    equal_replicas(a, b, "after both renewals")


def remove(a, b):
    say("5. remove: nbdkit stopped, every file deleted")
    for n in (a, b):
        pid = n.nbdkit_pid()
        check(pid, f"{n.name} has an nbdkit")
        check(n.ctl.request(op="remove", uuid=UUID) == {"ok": True}, f"{n.name}: remove")
        check(not proc_alive(pid), f"{n.name}'s nbdkit {pid} stopped")
        left = [f for f in os.listdir(n.data) + os.listdir(n.run) if f.startswith(UUID)]
        check(left == [], f"{n.name}: the volume's files are gone (left: {left})")
        check(n.ctl.request(op="remove", uuid=UUID) == {"ok": True}, f"{n.name}: remove again (idempotent)")
        r = n.ctl.request(op="verify", uuid=UUID)
        check(r.get("ok") is False and "no volume" in r["error"], f"{n.name}: the volume is gone: {r}")


def broken_nbdkit(tmp, ca, peer):
    say("6. an nbdkit that cannot start: started again with backoff, an error event")
    c = SanNode(tmp, "c", ca)
    c.plugin = os.path.join(tmp, "no-such-plugin.so")
    try:
        c.start()
        check(c.ctl.request(**c.config()) == {"ok": True}, "c: config")
        check(c.ctl.request(**c.volume(peer)) == {"ok": True}, "c: volume (its nbdkit fails later)")
        ev = wait_until(lambda: c.ctl.seen("error", uuid=UUID), 60, "an error event from c")[0]
        check("failed 3 times in a row" in ev["message"] and "starting it again in" in ev["message"],
              f"the error event says what happens: {ev}")
        check(c.proc.poll() is None, "herd-san goes on")
        check(c.ctl.request(op="status") == {"ok": True}, "c: status")
        wait_until(lambda: [e for e in c.ctl.seen("error", uuid=UUID) if "no state to report" in e["message"]
                            and "not running" in e["message"]],
                   10, "an error event that says why status has no state for c's volume")
        check(c.ctl.request(op="remove", uuid=UUID) == {"ok": True}, "c: remove while it backs off")
        left = [f for f in os.listdir(c.data) + os.listdir(c.run) if f.startswith(UUID)]
        check(left == [], f"c: the volume's files are gone (left: {left})")
    finally:
        c.stop()


def main():
    if not os.path.exists(plugin_path()):
        print(f"SKIP: {plugin_path()} is not built", flush=True)
        return SKIP
    with tempfile.TemporaryDirectory(prefix="herd-san-") as tmp:
        ca = TestCA(tmp)
        a, b = SanNode(tmp, "a", ca), SanNode(tmp, "b", ca)
        try:
            a.start()
            b.start()
            create(a, b)
            bad_ops(a, b)
            restart_while_writing(a, b)
            resize_and_verify(a, b)
            new_addresses(a, b)
            renewed_certs(a, b, ca)
            remove(a, b)
            broken_nbdkit(tmp, ca, b)
        except BaseException:
            for n in (a, b):
                say(f"{n.name}'s herd-san log:\n{n.tail(30)}")
            raise
        finally:
            for n in (a, b):
                n.stop()
            for pid in nbdkits_under(tmp):
                os.kill(pid, signal.SIGKILL)
    return 0


if __name__ == "__main__":
    sys.exit(run_test(main))

"""Helpers for the tests of the herd test guest (tests/guest/test-*): QEMU
run directly, with a QMP client.  Checks, polling, the serial log and the
test's main come from tests/testlib.py.

Everything a test starts is stopped in a finally block; QEMU children also
get PR_SET_PDEATHSIG so they die with the test even if the test is
SIGKILLed; SIGTERM (meson's timeout) runs the finally blocks (run_test).
"""
import ctypes
import json
import os
import signal
import socket
import struct
import subprocess
import time
from itertools import accumulate

from testlib import SerialLog, TestFailure, wait_until

HERE = os.path.dirname(os.path.realpath(__file__))
QEMU = "/usr/bin/qemu-system-x86_64"
# Serial logs and QMP are cheap to poll: a finer grain for the timings.
POLL_S = 0.02

_libc = ctypes.CDLL(None, use_errno=True)
PR_SET_PDEATHSIG = 1


def die_with_parent():
    """preexec_fn: SIGKILL this child when the test process dies."""
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def writer_block(k, boot, ring):
    """Block k as herd-guest-writer.s writes it, encoded here again from
    README.md's description, so that the tests check the guest, guest-blocks
    and the description against each other."""
    words = [(k << 10 ^ boot ^ i) & 0xFFFFFFFF for i in range(1024)]
    words[0:8] = list(struct.unpack("<2I", b"HERDBLK1")) + [k, 0, boot, ring, 0, 0]
    sums = list(accumulate(words))
    words[6], words[7] = sums[-1] & 0xFFFFFFFF, sum(sums) & 0xFFFFFFFF
    return struct.pack("<1024I", *words)


def stop_process(proc):
    """SIGTERM, and SIGKILL if that has not ended it within 5 s."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def proc_cpu_seconds(pid):
    """utime + stime of a process, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


class Qmp:
    """A minimal QMP client on a unix socket."""

    def __init__(self, path, timeout=10):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.file = self.sock.makefile("rwb")
        json.loads(self.file.readline())  # the greeting
        self.execute("qmp_capabilities")

    def execute(self, cmd, **args):
        msg = {"execute": cmd}
        if args:
            msg["arguments"] = args
        self.file.write(json.dumps(msg).encode() + b"\n")
        self.file.flush()
        while True:
            line = self.file.readline()
            if not line:
                raise TestFailure(f"QMP connection closed during {cmd}")
            reply = json.loads(line)
            if "error" in reply:
                raise TestFailure(f"QMP {cmd}: {reply['error'].get('desc')}")
            if "return" in reply:
                return reply["return"]
            # else an event: ignore

    def close(self):
        try:
            self.file.close()
            self.sock.close()
        except OSError:
            pass


class Qemu:
    """One guest run directly by QEMU (TCG), the image attached read-only
    on virtio-blk as guest-xml does it, COM1 to a file, QMP on a socket.
    @data: the writing guest's data disk, a raw file or an NBD URI, on the
    primary IDE master (guest-xml's --data-disk); only the image boots."""

    def __init__(self, workdir, name, image, memory_mib=32, incoming=None, data=None):
        self.name = name
        self.serial = os.path.join(workdir, f"{name}.serial.log")
        self.qmp_path = os.path.join(workdir, f"{name}.qmp")
        self.stderr_path = os.path.join(workdir, f"{name}.stderr")
        argv = [QEMU, "-accel", "tcg", "-machine", "pc", "-m", str(memory_mib),
                "-nodefaults", "-no-user-config", "-display", "none",
                "-serial", f"file:{self.serial}",
                "-qmp", f"unix:{self.qmp_path},server=on,wait=off"]
        if data is None:
            argv += ["-drive", f"file={image},format=raw,if=virtio,readonly=on"]
        else:
            argv += ["-boot", "strict=on",
                     "-drive", f"file={image},format=raw,if=none,id=boot,readonly=on",
                     "-device", "virtio-blk-pci,drive=boot,bootindex=1",
                     "-drive", f"file={data},format=raw,if=none,id=data",
                     "-device", "ide-hd,drive=data,bus=ide.0,unit=0"]
        if incoming:
            argv += ["-incoming", incoming]
        self.stderr = open(self.stderr_path, "wb")
        self.started = time.monotonic()
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                     stdout=self.stderr, stderr=self.stderr,
                                     preexec_fn=die_with_parent)
        self.qmp = None

    def check_alive(self):
        if self.proc.poll() is not None:
            with open(self.stderr_path, "rb") as f:
                err = f.read().decode(errors="replace").strip()
            raise TestFailure(f"{self.name}: QEMU exited with {self.proc.returncode}: {err}")

    def connect(self):
        def try_connect():
            self.check_alive()
            try:
                return Qmp(self.qmp_path)
            except (FileNotFoundError, ConnectionRefusedError):
                return None
        self.qmp = wait_until(try_connect, 10, f"{self.name}: QMP socket", interval=POLL_S)
        return self.qmp

    def values(self):
        self.check_alive()
        return SerialLog(self.serial).values()

    def wait_incoming_runs(self, timeout=10):
        """The target of a migration runs: the source completes as it sends
        the last of the state, the target runs once it has loaded it (and
        taken over the disk), a moment later.  The states it went through."""
        status = []

        def runs():
            status.append(self.qmp.execute("query-status")["status"])
            if status[-1] not in ("inmigrate", "running"):
                raise TestFailure(f"{self.name} is {status[-1]} after the migration")
            return status[-1] == "running"
        wait_until(runs, timeout, f"{self.name} to run", interval=POLL_S)
        return list(dict.fromkeys(status))

    def stop(self):
        if self.qmp:
            self.qmp.close()
        stop_process(self.proc)
        self.stderr.close()

    def kill(self):
        """SIGKILL, as a crash of the host process would end it."""
        self.proc.kill()
        self.proc.wait()


class Nbdkit:
    """nbdkit serving a raw file on a unix socket (the file plugin, with
    filters and their parameters if given); .uri is its NBD URI, with the
    name as the export's (nbdkit's file plugin serves any export name)."""

    def __init__(self, workdir, name, path, filters=(), params=(), readonly=False):
        self.sock = os.path.join(workdir, f"{name}.nbd")
        self.uri = f"nbd+unix:///{name}?socket={self.sock}"
        self.stderr = open(os.path.join(workdir, f"{name}.nbdkit.stderr"), "wb")
        argv = ["nbdkit", "--foreground", "--exit-with-parent", "--unix", self.sock]
        if readonly:
            argv.append("--readonly")
        argv += [f"--filter={f}" for f in filters]
        argv += ["file", f"file={path}"] + list(params)
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self.stderr,
                                     stderr=self.stderr, preexec_fn=die_with_parent)
        wait_until(lambda: self.proc.poll() is not None or os.path.exists(self.sock),
                   10, f"nbdkit {name} to listen", interval=POLL_S)
        if self.proc.poll() is not None:
            raise TestFailure(f"nbdkit {name} exited with {self.proc.returncode}")

    def stop(self):
        stop_process(self.proc)
        self.stderr.close()

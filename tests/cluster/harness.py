"""Harness for cluster tests: test nodes that are always taken down.

    _here = os.path.dirname(os.path.realpath(__file__))
    sys.path[:0] = [_here, os.path.dirname(_here)]  # harness.py here, testlib.py in tests/
    from harness import TestNodes
    from testlib import run_test

    def main():
        with TestNodes("my-test", 3) as tn:  # testnodes --instance my-test up 3
            tn.wait_members([1, 2, 3], 3)
            tn.exec(1, "herd", "status", check=True)

    sys.exit(run_test(main, root=True))  # skipped (77) unless root

The instance is taken down in __exit__, whatever happened.  SIGTERM, SIGINT
and SIGHUP become a TestInterrupted exception, so they take the same path.
Against SIGKILL (meson kills a test's process group 0.5 s after its SIGTERM
on a timeout) a watchdog in its own session waits for this process to end
and runs `testnodes down` unless the test said it cleaned up itself.
Checks, polling and the test's main are tests/testlib.py's.
"""
import fcntl
import hashlib
import importlib.machinery
import importlib.util
import os
import signal
import subprocess
import sys
import time

from testlib import INTERRUPT_SIGNALS, TestFailure, TestInterrupted, build_dir, interrupt, say, wait_until

HERE = os.path.dirname(os.path.realpath(__file__))
TESTNODES = os.path.join(HERE, "testnodes")


def _load_testnodes():
    loader = importlib.machinery.SourceFileLoader("testnodes", TESTNODES)
    spec = importlib.util.spec_from_loader("testnodes", loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod


testnodes = _load_testnodes()


WATCHDOG = r"""
import os, subprocess, sys
data = b""
while True:
    chunk = os.read(0, 64)
    if not chunk:
        break
    data += chunk
if b"done" not in data:
    subprocess.run(sys.argv[1:], stdin=subprocess.DEVNULL)
"""


# Held while a test's nodes come up (`testnodes up`: boot, cluster create and
# joins), by every test of every checkout on this machine: two tests running
# side by side (scripts/run-checks' lanes) bring their nodes up one after the
# other.  Set-up is the busiest part of a test; two at once on a busy 2-core
# machine starved herdd during `herd cluster create` (its password hash and
# CA were then made on its main loop; on a worker thread now) past the 3 s
# watchdog, which killed it.  The
# lock goes with the process that holds it, however it ends.
UP_LOCK = os.path.join(testnodes.STATE_ROOT, ".up.lock")


def up_lock():
    """An open file holding UP_LOCK (flock); closing it lets go."""
    os.makedirs(testnodes.STATE_ROOT, exist_ok=True)
    f = open(UP_LOCK, "a")
    fcntl.flock(f, fcntl.LOCK_EX)
    return f


def checkout_instance(name):
    """@name made this checkout's own: tests of two checkouts on one machine
    (a developer's worktrees) never take each other's test nodes down as
    leftovers; a rerun in the same checkout still does."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(__file__))))
    return f"{name}-{hashlib.sha1(root.encode()).hexdigest()[:4]}"


class TestNodes:
    """Test nodes of one instance for the length of a `with` block."""

    def __init__(self, instance, n, links=1, blank=False, libvirtd=None):
        """@libvirtd: the nodes that run libvirtd (testnodes up --libvirtd:
        "1-3", "none"; None: all)."""
        instance = checkout_instance(instance)
        self.instance = instance
        self.n = n
        self.links = links
        self.blank = blank
        self.libvirtd = libvirtd
        self.tn = testnodes.Instance(instance)
        self._watchdog = None
        self._watchdog_fd = None
        self._old_handlers = {}
        self.up_s = self.down_s = None

    # -- lifetime

    def __enter__(self):
        for sig in INTERRUPT_SIGNALS:
            self._old_handlers[sig] = signal.signal(sig, interrupt)
        try:
            self._start_watchdog()
            if os.path.exists(self.tn.dir) or self.tn.existing_netns():
                say(f"instance {self.instance} has leftovers of an earlier run: taking it down")
                self.cli("down")
            args = ["up", str(self.n), "--links", str(self.links)]
            if self.blank:
                args.append("--blank")
            if self.libvirtd is not None:
                args += ["--libvirtd", self.libvirtd]
            t_wait = time.monotonic()
            with up_lock():
                t0 = time.monotonic()
                # Each join takes a second or two, more as the cluster grows.
                self.cli(*args, timeout=180 if self.n <= 5 else 180 + 15 * self.n)
                self.up_s = time.monotonic() - t0
            waited = f" (after {t0 - t_wait:.1f} s for another test's set-up)" if t0 - t_wait >= 0.1 else ""
            say(f"up {self.n} node(s), {self.links} link(s): {self.up_s:.1f} s{waited}")
        except BaseException:
            self.__exit__(*sys.exc_info())
            raise
        return self

    def __exit__(self, exc_type, exc, tb):
        # Another signal must not cut the clean-up short.
        for sig in self._old_handlers:
            signal.signal(sig, signal.SIG_IGN)
        try:
            if exc_type is not None and not issubclass(exc_type, TestInterrupted):
                self.dump_logs()
            t0 = time.monotonic()
            # what started after this is no process of the instance's
            # (testnodes.pids_in_netns)
            self.down_started = testnodes.boot_ticks()
            p = subprocess.run([TESTNODES, "--instance", self.instance, "down"],
                               stdin=subprocess.DEVNULL, capture_output=True, text=True,
                               timeout=120)
            self.down_s = time.monotonic() - t0
            if p.returncode != 0:
                say(f"down failed: {p.stderr.strip()}")
                if exc_type is None:
                    raise TestFailure(f"testnodes down failed: {p.stderr.strip()}")
            else:
                say(f"down: {self.down_s:.1f} s")
                self._stop_watchdog()
        finally:
            for sig, h in self._old_handlers.items():
                signal.signal(sig, h)
        return False

    def _start_watchdog(self):
        r, w = os.pipe()
        logdir = os.path.join(build_dir(), "meson-logs")
        log = os.path.join(logdir, "testnodes-watchdog.log") if os.path.isdir(logdir) else os.devnull
        with open(log, "a") as out:
            self._watchdog = subprocess.Popen(
                [sys.executable, "-c", WATCHDOG, TESTNODES, "--instance", self.instance, "down"],
                stdin=r, stdout=out, stderr=out, start_new_session=True)
        os.close(r)
        self._watchdog_fd = w

    def _stop_watchdog(self):
        if self._watchdog_fd is not None:
            os.write(self._watchdog_fd, b"done")
            os.close(self._watchdog_fd)
            self._watchdog_fd = None
            self._watchdog.wait(timeout=10)

    def dump_logs(self, lines=15):
        """Print the tail of every node log (before down removes them)."""
        for i in range(1, self.n + 1):
            logdir = self.tn.log_dir(i)
            # corosync logs to stderr (corosync.out) in a cluster herd formed.
            for name in ("boot.log", "herdd.log", "herd-san.log", "libvirtd.out", "corosync/corosync.out",
                         "corosync/corosync.log", "libvirt/libvirtd.log"):
                path = os.path.join(logdir, name)
                text = testnodes.tail(path, lines)
                if text:
                    print(f"----- n{i} {name} (last {lines} lines)\n{text}", flush=True)
        # The simulated PDU: every outlet switched, every request dropped.
        text = testnodes.tail(os.path.join(self.tn.dir, "pdu", "pdu.log"), lines)
        if text:
            print(f"----- pdu pdu.log (last {lines} lines)\n{text}", flush=True)

    # -- operations

    def cli(self, *args, timeout=60, check=True):
        """Run `testnodes --instance NAME ARGS...`; returns CompletedProcess."""
        p = subprocess.run([TESTNODES, "--instance", self.instance] + list(args),
                           stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=timeout)
        if check and p.returncode != 0:
            raise TestFailure(f"testnodes {' '.join(args)} failed (exit {p.returncode}): "
                              f"{p.stderr.strip()}")
        return p

    def exec(self, i, *argv, check=False, timeout=30, input=None):
        """Run argv inside node i (directly through nsenter: polling loops
        need the speed).  Returns CompletedProcess with text output."""
        p = subprocess.run(self.tn.node_argv(i, argv), env=self.tn.node_env(i),
                           capture_output=True, text=True, timeout=timeout, input=input)
        if check and p.returncode != 0:
            raise TestFailure(f"n{i}: {' '.join(argv)} failed (exit {p.returncode}): "
                              f"{(p.stderr or p.stdout).strip()}")
        return p

    def virsh(self, i, *args, check=True):
        return self.exec(i, "virsh", "-q", "-c", "qemu:///system", *args, check=check)

    def power_off(self, i):
        testnodes.power_off(self.tn, i)

    def kill_together(self, nodes):
        """A power cut of every node of @nodes at the same moment, as a
        whole site's outage (testnodes.power_off_together)."""
        testnodes.power_off_together(self.tn, nodes)

    def start_together(self, nodes, timeout=120):
        """`testnodes start` of every node of @nodes at once, as after a power
        outage; a TestFailure if any of them did not boot."""
        testnodes.parallel([lambda i=i: self.cli("start", str(i), timeout=timeout) for i in nodes])

    def membership(self, i):
        """(members, quorate) from node i's corosync, or None."""
        try:
            return testnodes.corosync_membership(self.tn, i)
        except testnodes.Error:
            return None

    def wait_members(self, nodes, members, timeout=20, quorate=True):
        for i in nodes:
            wait_until(lambda: self.membership(i) == (members, quorate), timeout,
                       f"n{i} to see {members} members (quorate={quorate}); "
                       f"it sees {self.membership(i)}")

    def instance_processes(self):
        """({pid: (comm, starttime, netns inode)} of every live process in the
        instance's network namespaces (nodes and hub), {netns inodes})."""
        inodes = {os.stat(f"/run/netns/{n}").st_ino for n in self.tn.existing_netns()}
        procs = {}
        for pid in testnodes.all_pids():
            ino = testnodes.netns_inode_of(pid)
            if ino in inodes:
                st = testnodes.proc_stat(pid)
                try:
                    with open(f"/proc/{pid}/comm") as f:
                        comm = f.read().strip()
                except OSError:
                    continue
                if st and st[0] not in "ZX":
                    procs[pid] = (comm, st[1], ino)
        return procs, inodes

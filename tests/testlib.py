"""What herd's Python tests share: checks, polling, a test's main, the test
guests.  Used by the cluster tests (with harness.py, halib.py), the guest tests
(with guestlib.py), tests/layout and bench/failover.  Python 3 stdlib only.

A script puts its own folder and tests/ on sys.path, then imports:

    _here = os.path.dirname(os.path.realpath(__file__))
    sys.path[:0] = [_here, os.path.dirname(_here)]
    from testlib import check, expect, run_test, say, wait_until

    def main():
        check(x == 1, "x is 1")             # stops the test (TestFailure)
        expect(y == 2, "y is 2")            # recorded; the test goes on
        wait_until(lambda: ready(), 10, "the thing to be ready")

    if __name__ == "__main__":
        sys.exit(run_test(main))            # PASS / FAIL and the exit status

expect() lets one failed check not hide the next; run_test() fails the test
for what it recorded (check_expected() does so at once, e.g. inside a `with`
block whose clean-up should see the failure).  SerialLog reads the test
guest's serial log, BlockLog the writing guest's (tests/guest/README.md).
"""
import json
import os
import re
import signal
import subprocess
import tempfile
import sys
import time

TESTS = os.path.dirname(os.path.realpath(__file__))
REPO = os.path.dirname(TESTS)
SKIP = 77  # meson: the test was skipped
GUEST_XML = os.path.join(TESTS, "guest", "guest-xml")
GUEST_BLOCKS = os.path.join(TESTS, "guest", "guest-blocks")


def build_dir():
    """The build directory: $HERD_BUILD_DIR (meson sets it for the cluster and
    guest tests), else build/ of this checkout."""
    return os.path.abspath(os.environ.get("HERD_BUILD_DIR") or os.path.join(REPO, "build"))


def guest_image(dirty=False):
    """The test guest's image; @dirty: the variant that keeps dirtying 8 MiB
    of its RAM (tests/guest/README.md)."""
    return os.path.join(build_dir(), "tests", "guest",
                        "herd-guest-dirty.img" if dirty else "herd-guest.img")


def writer_image():
    """The writing test guest's image: numbered, checksummed blocks to a data
    disk, each acknowledged on COM1 (tests/guest/README.md)."""
    return os.path.join(build_dir(), "tests", "guest", "herd-guest-writer.img")


def make_iso(path, tree, volume_id, *mkisofs_args):
    """An ISO 9660 image of directory @tree at @path (xorriso's mkisofs, from
    scripts/install-deps), with further mkisofs arguments.  xorriso crashed
    once on a loaded CI machine (SIGSEGV, "UNIX-SIGNAL" in its output,
    2026-12-07): a crash is tried again, twice at most; a refusal is not."""
    for _ in range(3):
        p = subprocess.run(["xorriso", "-as", "mkisofs", "-quiet", "-V", volume_id, *mkisofs_args,
                            "-o", path, tree], capture_output=True, text=True)
        if p.returncode == 0 or "UNIX-SIGNAL" not in p.stderr:
            break
    check(p.returncode == 0, f"xorriso: {p.stderr.strip()}")
    return path


def make_boot_iso(path, dirty=False):
    """A bootable ISO (El Torito, floppy emulation) of the test guest at
    path: booted from its CD-ROM, the guest prints what it prints booted from
    its disk.  Made with xorriso (scripts/install-deps)."""
    with tempfile.TemporaryDirectory(prefix="herd-iso-") as tree:
        floppy = os.path.join(tree, "boot.img")
        with open(guest_image(dirty), "rb") as src, open(floppy, "wb") as dst:
            dst.write(src.read(512))
            dst.truncate(1474560)       # a 1.44 MB floppy: El Torito's default emulation
        make_iso(path, tree, "HERDGUEST", "-b", "boot.img", "-c", "boot.cat")
    return path


# ---------------------------------------------------------------- checks

class TestFailure(AssertionError):
    pass


class ChecksFailed(TestFailure):
    """check_expected(): the checks expect() recorded failed."""


class TestInterrupted(BaseException):
    """A signal asked the test to stop (BaseException: no `except Exception`
    in a test may swallow it)."""


failures = []  # what expect() recorded


def say(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def check(cond, msg):
    """A check that stops the test."""
    if not cond:
        raise TestFailure(msg)


def expect(cond, msg):
    """A check that does not stop the test: recorded, printed, failed at the end."""
    if not cond:
        failures.append(msg)
        say(f"CHECK FAILED: {msg}")
    return bool(cond)


def check_expected():
    """Fail the test now if an expect() failed."""
    if failures:
        raise ChecksFailed(f"{len(failures)} check(s) failed")


def wait_until(cond, timeout, what, interval=0.05, pause=time.sleep):
    """Poll cond() until it returns a true value, which is returned; raise
    TestFailure naming `what` after timeout seconds.  Between polls,
    pause(seconds) waits: time.sleep, or something that reads meanwhile."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        left = deadline - time.monotonic()
        if left <= 0:
            raise TestFailure(f"timed out after {timeout:g} s waiting for {what}")
        pause(min(interval, left))


# ---------------------------------------------------------------- a test's main

def require_root():
    if os.geteuid() != 0:
        print("SKIP: needs root (namespaces, mounts)", flush=True)
        sys.exit(SKIP)


# SIGTERM (meson's timeout), SIGINT, SIGHUP: see interrupt().
INTERRUPT_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def interrupt(signum, frame):
    """Signal handler: raise TestInterrupted, so that finally and `with`
    blocks clean up (run_test installs it for INTERRUPT_SIGNALS)."""
    raise TestInterrupted(f"stopped by signal {signal.Signals(signum).name}")


def run_test(main, root=False):
    """A test script's main: sys.exit(run_test(main)).  With root, skips (77)
    unless root.  Runs main() and prints PASS with the time taken, or FAIL
    with what failed (a TestFailure, and what expect() recorded).  Returns
    the exit status: 1 on failure, else main's return value (SKIP) or 0."""
    if root:
        require_root()
    for sig in INTERRUPT_SIGNALS:
        signal.signal(sig, interrupt)
    t0 = time.monotonic()
    failed = None
    try:
        rc = main()
    except TestFailure as e:
        failed = e
    except TestInterrupted as e:
        say(f"INTERRUPTED: {e}")
        return 1
    if failed is None and failures:
        failed = ChecksFailed(f"{len(failures)} check(s) failed")
    if failed is not None:
        say(f"FAIL: {failed}")
        if failures and not isinstance(failed, ChecksFailed):
            print(f"  and {len(failures)} check(s) that failed before it:", flush=True)
        for f in failures:
            print(f"  - {f}", flush=True)
        return 1
    if rc:
        return rc
    say(f"PASS ({time.monotonic() - t0:.1f} s)")
    return 0


# ---------------------------------------------------------------- the test guest

def guest_xml(name, path=None, **options):
    """The test guest's libvirt domain XML from tests/guest/guest-xml (options:
    serial_log, image, uuid, vcpus, memory_mib, data_disk), also written to
    path if given."""
    argv = [GUEST_XML, "--name", name]
    for key, value in options.items():
        if value is not None:
            argv += ["--" + key.replace("_", "-"), str(value)]
    p = subprocess.run(argv, capture_output=True, text=True)
    check(p.returncode == 0, f"guest-xml --name {name}: {p.stderr.strip()}")
    if path:
        with open(path, "w") as f:
            f.write(p.stdout)
    return p.stdout


SERIAL_LINE = re.compile(rb"^herd-guest (\d+|boot)\r?$")


class SerialLog:
    """The serial log of a test guest: "herd-guest boot" at each boot, then
    "herd-guest N" about once a second, lines ending in \\r\\n.  Only complete
    lines count: a reader never sees "herd-guest 1" of a "herd-guest 12"
    being written.  A missing log has no lines."""

    CHUNK = 64 * 1024

    def __init__(self, path):
        self.path = path

    def lines(self):
        """The complete lines, without their \\n."""
        try:
            with open(self.path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            return []
        return data.split(b"\n")[:-1]

    def values(self):
        """Every line as "boot" or N; a TestFailure on any other line."""
        out = []
        for line in self.lines():
            m = SERIAL_LINE.match(line)
            check(m and line.endswith(b"\r"),
                  f"unexpected serial line {line.decode('ascii', 'replace')!r}")
            out.append("boot" if m.group(1) == b"boot" else int(m.group(1)))
        return out

    def boots(self):
        """How many times the guest booted (QEMU appends to its log)."""
        return sum(1 for line in self.lines() if line.rstrip(b"\r") == b"herd-guest boot")

    def counter(self, since_boot=False):
        """N of the last "herd-guest N" line, or None (also for a log not
        written yet); with since_boot, None if the guest has printed no N
        since its last boot.  Reads from the end, so a long log costs no more
        than a short one."""
        try:
            f = open(self.path, "rb")
        except FileNotFoundError:
            return None
        with f:
            end = f.seek(0, os.SEEK_END)
            carry = None  # None until the end of the last complete line is found
            while end > 0:
                start = max(0, end - self.CHUNK)
                f.seek(start)
                buf = f.read(end - start)
                end = start
                if carry is None:
                    # Skip what follows the last newline: a line being written.
                    nl = buf.rfind(b"\n")
                    if nl < 0:
                        continue
                    buf, carry = buf[: nl + 1], b""
                pieces = (buf + carry).split(b"\n")
                pieces.pop()  # the empty piece after the final newline
                if start > 0:
                    # The first piece is the end of a line that started earlier.
                    carry = pieces.pop(0) + b"\n"
                for line in reversed(pieces):
                    m = SERIAL_LINE.match(line)
                    if not m:
                        continue
                    if m.group(1) == b"boot":
                        if since_boot:
                            return None
                        continue
                    return int(m.group(1))
        return None


# The writing guest (herd-guest-writer.img): "herd-guest boot", "herd-guest id
# ID ring N", "herd-guest resume K", then "herd-guest ack K" for every block
# written and flushed, "herd-guest error ..." on a failed read or write.
BLOCK_EVENT = re.compile(rb"(boot|id (\d+) ring (\d+)|resume (\d+)|ack (\d+)|error (.*))")
GUEST_PREFIX = b"herd-guest "


class BlockLog:
    """The serial logs of the writing guest, in order (one VM's log, or a
    migration's source log then its target's), read as one stream: a
    migration may stop the source in the middle of a line that the target
    finishes.  Only complete lines count; a line cut short (QEMU killed
    while the guest printed it, the next boot's line appended after it, in
    the same log or the next) is an event of its own, "cut", never mistaken
    for a shorter number."""

    def __init__(self, *paths):
        self.paths = paths

    def lines(self):
        data = b""
        for path in self.paths:
            try:
                with open(path, "rb") as f:
                    data += f.read()
            except FileNotFoundError:
                pass
        return data.split(b"\n")[:-1]

    def events(self):
        """Every line as a tuple: ("boot",), ("id", ID, N), ("resume", K),
        ("ack", K), ("error", TEXT), ("cut", TEXT) or ("other", TEXT)."""
        out = []
        for line in self.lines():
            line = line.rstrip(b"\r")
            pieces = line.split(GUEST_PREFIX)
            if pieces[0]:
                out.append(("other", pieces[0].decode("ascii", "replace")))
            for i, piece in enumerate(pieces[1:], 1):
                text = piece.decode("ascii", "replace")
                m = BLOCK_EVENT.fullmatch(piece)
                if i < len(pieces) - 1:
                    out.append(("cut", text))
                elif not m:
                    out.append(("other", text))
                elif m.group(2):
                    out.append(("id", int(m.group(2)), int(m.group(3))))
                elif m.group(4):
                    out.append(("resume", int(m.group(4))))
                elif m.group(5):
                    out.append(("ack", int(m.group(5))))
                elif m.group(6) is not None:
                    out.append(("error", text[len("error "):]))
                else:
                    out.append(("boot",))
        return out

    def acks(self):
        """The acknowledged block numbers, in order."""
        return [e[1] for e in self.events() if e[0] == "ack"]

    def last(self, kind):
        """The last event of a kind ("ack", "resume", "id"...), or None."""
        for e in reversed(self.events()):
            if e[0] == kind:
                return e
        return None


def guest_blocks(disk, *logs):
    """Run tests/guest/guest-blocks on a data disk (raw file or NBD URI) and
    the writing guest's serial logs: (exit status, its JSON result or None,
    its stderr)."""
    p = subprocess.run([GUEST_BLOCKS, "--json", disk] + list(logs),
                       capture_output=True, text=True)
    result = json.loads(p.stdout) if p.stdout.strip() else None
    return p.returncode, result, p.stderr.strip()

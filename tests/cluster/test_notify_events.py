#!/usr/bin/python3
"""Mails about a fence, a failover and a storage filling up, through the
real SMTP server of test_notify.py (issue 13's "done when";
docs/alerts.md, Notifications).

Two nodes, the test PDU as fence device (fence_action=off), one tiny HA
guest g1 on n2, a dir storage on an 8 MiB tmpfs the test mounts before the
nodes start (so every node has it).  No notify_to: the mails go to the
members of the group with the monitor role (mon1, mon2; the user quiet has
an address and no role), and to the admin when the group is empty.
- kill 2 (power cut): exactly one mail about the fence and one about the
  failover of g1 (different kinds: one notice each), both to mon1 and mon2
  only;
- the storage filled past 80 %: one warning mail; past 90 %: one mail
  saying it is critical; nothing more while it stays so;
- the group emptied and the SMTP server stopped, the storage emptied: herd
  retries, and once the server is back one mail saying the alert cleared
  arrives, to the admin.
"""
import os
import subprocess
import sys
import tempfile
import time

_here = os.path.dirname(os.path.realpath(__file__))
sys.path[:0] = [_here, os.path.dirname(_here)]  # harness.py here, testlib.py in tests/
from halib import Ha, HaNodes, Workdir, add_dir_storage, herdd_log, running_on  # noqa: E402
from notifylib import mails, smtp_relay, subject  # noqa: E402
from testlib import check, run_test, say, wait_until  # noqa: E402

INSTANCE = "test-notify-ev"
PASSWORD = "Relay-pw-9q2bolt-4410"
MONITORS = ["mon1@example.test", "mon2@example.test"]
ADMIN = ["admin@example.test"]
STORE_MIB = 8
# A second notice of a kind would come within the gathering time (3 s), a
# changed storage figure within a reach period (10 s).
QUIET_S = 12
# A kind is notified at most this often (notify_interval_s; the default,
# 60 s, only made the test wait): still longer than QUIET_S.
INTERVAL_S = 15


def about(maildir, text, before=0):
    """The mails after the first @before whose subject holds @text."""
    return [m for m in mails(maildir)[before:] if text in subject(m)]


def one_mail(maildir, text, before, to, what, timeout=120):
    """Wait for a mail about @text, then QUIET_S more: exactly one, to @to."""
    wait_until(lambda: about(maildir, text, before) or None, timeout, what)
    time.sleep(QUIET_S)
    got = about(maildir, text, before)
    check(len(got) == 1, f"{what}: {len(got)} mails: {[subject(m) for m in got]}")
    check(sorted(got[0]["to"]) == to, f"{what}: sent to {got[0]['to']}, not {to}")
    return got[0]


def fill(path, pct):
    """The file @path (on the storage's tmpfs) holds @pct % of it."""
    with open(path, "wb") as f:
        f.write(b"\1" * (STORE_MIB * 1024 * 1024 * pct // 100))


def main():
    mnt = tempfile.mkdtemp(prefix=f"{INSTANCE}-store-", dir="/tmp")
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={STORE_MIB}m", "tmpfs", mnt], check=True)
    try:
        with HaNodes(INSTANCE, 2) as tn, Workdir(INSTANCE) as tmp:
            run(tn, tmp, mnt)
    finally:
        subprocess.run(["umount", "-l", mnt])
        os.rmdir(mnt)


def run(tn, tmp, mnt):
    tn.wait_members([1, 2], 2)
    ha = Ha(tn, tmp)
    smtp, maildir, relay = smtp_relay(tn, tmp, PASSWORD)
    try:
        smtp.start()
        ha.set(1, *relay, "fence_action=off", f"notify_interval_s={INTERVAL_S}")
        pw = os.path.join(tmp, "user-password")
        with open(pw, "w") as f:
            f.write("M0nitor-pw-8812\n")
        ha.ok(1, "user", "set", "admin", "--email", ADMIN[0])
        for name in ("mon1", "mon2", "quiet"):
            ha.ok(1, "user", "add", name, "--new-password-file", pw, "--email", f"{name}@example.test")
        ha.ok(1, "group", "add", "oncall", "--roles", "monitor", "--members", "mon1,mon2")
        ha.add_pdu()
        add_dir_storage(ha, "small", mnt)
        ha.define("g1", preferred="n2", extra=["--shutdown-timeout", "2"])
        ha.ok(1, "vm", "start", "g1")
        ha.wait_counting(["g1"])
        say("SMTP server in n1 (STARTTLS, AUTH); group oncall (monitor) = mon1, mon2; "
            "fence device pdu; HA guest g1 runs on n2")

        # A power cut: one mail about the fence, one about the failover.
        before = len(mails(maildir))
        tn.cli("kill", "2")
        ha.wait_vms(lambda v: running_on(v, ["g1"], ("n1",)), 90, "g1 to run on n1", nodes=(1,))
        fenced = one_mail(maildir, "Node n2 was fenced", before, MONITORS, "the mail about the fence")
        failover = one_mail(maildir, "VM g1 goes to node n1", before, MONITORS,
                            "the mail about the failover")
        say(f"kill 2: one mail '{subject(fenced)}' and one '{subject(failover)}', "
            f"to {', '.join(MONITORS)}; nothing more in {QUIET_S} s")
        others = [m for m in mails(maildir)[before:] if sorted(m["to"]) != MONITORS]
        check(not others, f"mails not to the monitor group: {[(subject(m), m['to']) for m in others]}")

        # The storage filling up: one warning, then one critical mail.
        data = os.path.join(mnt, "data")
        before = len(mails(maildir))
        fill(data, 85)
        m = one_mail(maildir, "Storage small is", before, MONITORS, "the mail about 85 % full")
        check(subject(m).startswith("[herd") and "warning: Storage small is 8" in subject(m),
              f"the first storage mail: {subject(m)}")
        say(f"storage 85 % full: one mail '{subject(m)}'")
        fill(data, 95)
        m = one_mail(maildir, "Storage small is", before + 1, MONITORS, "the mail about 95 % full",
                     timeout=180)
        check("critical: Storage small is 9" in subject(m), f"the second storage mail: {subject(m)}")
        say(f"storage 95 % full: one more mail '{subject(m)}'")

        # Group emptied, relay down, the storage emptied: the mail about
        # it arrives, to the admin, once the relay is back.
        ha.ok(1, "group", "set", "oncall", "--members", "")
        smtp.stop()
        before = len(mails(maildir))
        t0 = time.time()
        os.unlink(data)
        wait_until(lambda: herdd_log(tn, 1, since=t0, pattern="Trying again later") or None, 180,
                   "herdd to fail to reach the relay and retry")
        say("SMTP server down, storage emptied: herd retries")
        smtp.start()
        m = one_mail(maildir, "cleared: Storage small is", before, ADMIN,
                     "the mail about the storage after the relay came back")
        check(len(mails(maildir)) == before + 1,
              f"mails after the relay came back: {[subject(m) for m in mails(maildir)[before:]]}")
        say(f"relay back: one mail '{subject(m)}' to {ADMIN[0]}, {time.time() - t0:.0f} s after "
            f"the storage was emptied")
    finally:
        smtp.stop()


if __name__ == "__main__":
    sys.exit(run_test(main))

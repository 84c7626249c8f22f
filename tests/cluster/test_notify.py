#!/usr/bin/python3
"""Alert notifications by mail on real test nodes, through a real SMTP
server (issue 13, item 5; docs/alerts.md, Notifications).

Two nodes on two links.  A test CA signs a certificate for 10.99.0.1; an
aiosmtpd server (tests/cluster/smtp_sink.py) inside n1 requires STARTTLS and
AUTH.  The notify_* settings point herd at it (bad values are refused with
a sentence naming the setting), and then:
- `herd cluster settings` and the API show that the password is set, never
  the password; `herd notify test` is delivered, and with a wrong password
  it says the relay refused it;
- cutting link 1 of n2 makes exactly one mail that names the nodes and the
  link, and healing it one "cleared" mail;
- with the SMTP server stopped, cutting the link again makes herd retry;
  once the server is back the mail arrives;
- a webhook receiver in n1 gets one JSON POST per notification, and while
  the relay is down only the mail is retried;
- the password appears in no herdd log;
- without notify_to, the mail goes to the members of the group with the
  monitor role, and to the admin's address when that group is empty.
"""
import json
import os
import sys
import time

_here = os.path.dirname(os.path.realpath(__file__))
sys.path[:0] = [_here, os.path.dirname(_here)]  # harness.py here, testlib.py in tests/
from harness import TestNodes  # noqa: E402
from halib import Workdir, api, herdd_log  # noqa: E402
from notifylib import RELAY_PORT, NodeServer, mails, received, smtp_relay, subject  # noqa: E402
from testlib import check, run_test, say, wait_until  # noqa: E402

INSTANCE = "test-notify"
PASSWORD = "Relay-pw-5p1ndle-7731"


hooks = received


def link_hooks(hookdir):
    """The webhook calls about link 1 down: (event, alert) of each event."""
    return [(e["event"], e["alert"]) for h in hooks(hookdir) for e in h["body"]["events"]
            if "link 1 down" in e["message"]]


def herd(tn, *args, check_rc=True):
    p = tn.exec(1, "herd", *args, timeout=60)
    if check_rc:
        check(p.returncode == 0, f"herd {' '.join(args)}: exit {p.returncode}: "
                                 f"{(p.stderr or p.stdout).strip()}")
    return p


def link_mails(maildir, before=0):
    """The mails about link 1 down, after the first @before of them."""
    return [m for m in mails(maildir) if "link 1 down" in m["data"]][before:]


def test_mails(maildir, before):
    """The test messages that arrived after the first @before mails."""
    return [m for m in mails(maildir)[before:] if "test message" in subject(m)]


def recipients(tn, tmp, maildir):
    """Without notify_to: one mail to the members of the group with the
    monitor role; with the group empty, to the admin."""
    herd(tn, "cluster", "set", "notify_to=")
    herd(tn, "user", "set", "admin", "--email", "admin@example.test")
    pw = os.path.join(tmp, "user-password")
    with open(pw, "w") as f:
        f.write("M0nitor-pw-8812\n")
    for name in ("mon1", "mon2"):
        herd(tn, "user", "add", name, "--new-password-file", pw, "--email", f"{name}@example.test")
    herd(tn, "user", "add", "quiet", "--new-password-file", pw, "--email", "quiet@example.test")
    herd(tn, "group", "add", "oncall", "--roles", "monitor", "--members", "mon1,mon2")
    for members, want in (("mon1,mon2", ["mon1@example.test", "mon2@example.test"]),
                          ("", ["admin@example.test"])):
        herd(tn, "group", "set", "oncall", "--members", members)
        before = len(mails(maildir))
        p = herd(tn, "notify", "test")
        got = wait_until(lambda: test_mails(maildir, before) or None, 30, "the test mail")
        time.sleep(2)
        got = test_mails(maildir, before)
        check(len(got) == 1 and sorted(got[0]["to"]) == want,
              f"group members {members or '(none)'}: mails {[m['to'] for m in got]}, not one to {want}")
        say(f"monitor group {members or 'empty'}: one mail to {', '.join(want)} ({p.stdout.splitlines()[0]})")


def main():
    with TestNodes(INSTANCE, 2, links=2) as tn, Workdir(INSTANCE) as tmp:
        tn.wait_members([1, 2], 2)
        smtp, maildir, relay = smtp_relay(tn, tmp, PASSWORD)
        hookdir = os.path.join(tmp, "hooks")
        os.mkdir(hookdir)
        webhook = NodeServer(tn, tmp, "webhook_sink", ["10.99.0.1", "8080", hookdir])
        try:
            smtp.start()
            webhook.start()
            say(f"SMTP server in n1 at 10.99.0.1:{RELAY_PORT}: STARTTLS and AUTH required; "
                f"a webhook receiver at 10.99.0.1:8080")
            p = herd(tn, "notify", "test", check_rc=False)
            check(p.returncode == 1 and "No notifications are set up" in p.stderr,
                  f"herd notify test without settings: exit {p.returncode}: {p.stderr.strip()}")
            # Bad values are refused, naming the setting; nothing changes.
            for bad, name in (("notify_to=ops", "notify_to"),
                              ("notify_webhook=ftp://x/", "notify_webhook"),
                              ("notify_smtp_tls=ssl", "notify_smtp_tls"),
                              ("notify_smtp_host=a b", "notify_smtp_host"),
                              ("notify_interval_s=-1", "notify_interval_s")):
                p = herd(tn, "cluster", "set", bad, check_rc=False)
                check(p.returncode != 0 and name in p.stderr,
                      f"herd cluster set {bad}: exit {p.returncode}: {p.stderr.strip()}")
            say("bad notify_* values refused with the setting named")
            # A kind notified at most every 15 s, not 60 (the default): a
            # second mail of a kind still comes after the checks' quiet time.
            herd(tn, "cluster", "set", *relay, "notify_to=ops@example.test, oncall@example.test",
                 "notify_webhook=http://10.99.0.1:8080/hook", "notify_interval_s=15")
            for i in (1, 2):
                out = tn.exec(i, "herd", "cluster", "settings").stdout
                check(PASSWORD not in out, f"n{i}: herd cluster settings shows the password")
                check(any(l.startswith("notify_smtp_password") and "(set)" in l
                          for l in out.splitlines()),
                      f"n{i}: herd cluster settings does not show the password as set:\n{out}")
                code, settings = api(tn, i, "GET", "/api/v1/cluster/settings")
                check(code == 200 and PASSWORD not in json.dumps(settings),
                      f"n{i}: GET /api/v1/cluster/settings: {code}, shows the password")
                code, status = api(tn, i, "GET", "/api/v1/cluster")
                check(PASSWORD not in json.dumps(status), f"n{i}: GET /api/v1/cluster shows the password")
            say("the password shows as (set) in herd cluster settings and the API, never itself")

            # herd notify test: delivered, and refused with a wrong password.
            p = herd(tn, "notify", "test")
            check("delivered" in p.stdout, f"herd notify test: {p.stdout.strip()}")
            m = wait_until(lambda: [m for m in mails(maildir) if "test message" in subject(m)] or None,
                           30, "the test mail")[0]
            check(sorted(m["to"]) == ["oncall@example.test", "ops@example.test"]
                  and m["from"] == "herd@cluster.test", f"test mail's envelope: {m['from']} {m['to']}")
            check("webhook  delivered" in p.stdout, f"herd notify test, webhook: {p.stdout.strip()}")
            h = [h for h in hooks(hookdir) if h["body"]["kind"] == "test"]
            check(len(h) == 1 and h[0]["type"] == "application/json" and h[0]["path"] == "/hook"
                  and h[0]["body"]["node"] == "n1", f"the test's webhook call: {h}")
            say(f"herd notify test: {p.stdout.strip().splitlines()[0]}; arrived: '{subject(m)}'")
            herd(tn, "cluster", "set", "notify_smtp_password=wrong-one")
            p = herd(tn, "notify", "test", check_rc=False)
            check(p.returncode != 0 and "NOT delivered" in p.stdout and "535" in p.stdout,
                  f"herd notify test with a wrong password: exit {p.returncode}: {p.stdout.strip()}")
            say(f"wrong password: {p.stdout.strip().splitlines()[0]}")
            herd(tn, "cluster", "set", f"notify_smtp_password={PASSWORD}")

            # One link of two cut: exactly one mail naming the nodes and the link.
            base = len(link_mails(maildir))
            tn.cli("cut", "2", "1")
            m = wait_until(lambda: link_mails(maildir, base) or None, 60, "the mail about link 1")[0]
            check("n1" in m["data"] and "n2" in m["data"] and "link 1" in m["data"],
                  f"the link mail names neither nodes nor link:\n{m['data']}")
            # A second mail would come within the gathering time (3 s).
            time.sleep(8)
            check(len(link_mails(maildir, base)) == 1,
                  f"{len(link_mails(maildir, base))} mails about the link, not one")
            say(f"cut 2 1: one mail: '{subject(m)}'")
            tn.cli("heal", "2", "1")
            cleared = wait_until(lambda: [m for m in link_mails(maildir, base) if "CLEARED" in m["data"]]
                                 or None, 120, "the mail saying the link alert cleared")
            time.sleep(5)
            check(len(link_mails(maildir, base)) == 2,
                  f"{len(link_mails(maildir, base))} link mails, not 2")
            say(f"heal 2 1: one more mail: '{subject(cleared[0])}'")
            calls = link_hooks(hookdir)
            check([e for e, _ in calls] == ["raised", "cleared"] and calls[0][1] == calls[1][1],
                  f"webhook calls about the link: {calls}")
            say(f"webhook: one call for the raise, one for the clearing of alert {calls[0][1]}")

            # The relay down: herd retries; the mail arrives once it is back.
            smtp.stop()
            t0 = time.time()
            tn.cli("cut", "2", "1")
            wait_until(lambda: any(herdd_log(tn, i, since=t0, pattern="Trying again later")
                                   for i in (1, 2)) or None,
                       120, "herdd to fail to reach the relay and retry")
            say("SMTP server down: herd retries")
            smtp.start()
            wait_until(lambda: len(link_mails(maildir, base)) == 3 or None, 120,
                       "the mail about the link after the relay came back")
            say(f"relay back: the mail arrived "
                f"({subject(link_mails(maildir, base)[2])}), {time.time() - t0:.0f} s after the cut")
            # The webhook took it the first time: not sent to it again.
            calls = link_hooks(hookdir)
            check([e for e, _ in calls] == ["raised", "cleared", "raised"],
                  f"webhook calls about the link while the relay was down: {calls}")
            tn.cli("heal", "2", "1")
            code, alerts = api(tn, 2, "GET", "/api/v1/alerts?all=true")
            check(code == 200 and all(a["notified_ms"] for a in alerts),
                  f"alert records not all marked notified: {alerts}")
            for i in (1, 2):
                with open(os.path.join(tn.tn.log_dir(i), "herdd.log"), errors="replace") as f:
                    check(PASSWORD not in f.read(), f"n{i}: herdd.log holds the password")
            say("the password is in no herdd.log")
            recipients(tn, tmp, maildir)
        finally:
            smtp.stop()
            webhook.stop()


if __name__ == "__main__":
    sys.exit(run_test(main))

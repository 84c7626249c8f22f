"""Helpers of the notification tests (test_notify.py, test_notify_events.py):
a test CA, the test servers inside n1 (smtp_sink.py, webhook_sink.py) and
what they received."""
import glob
import json
import os
import subprocess

from testlib import check, wait_until

_here = os.path.dirname(os.path.realpath(__file__))
RELAY_USER = "herd-relay"
RELAY_PORT = 2525


def make_ca(tmp):
    """A CA and a certificate for 10.99.0.1 signed by it (openssl)."""
    def ssl(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=tmp)
    ssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=notify test CA",
        "-keyout", "ca.key", "-out", "ca.pem")
    ssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=10.99.0.1", "-keyout", "smtp.key",
        "-out", "smtp.csr")
    with open(os.path.join(tmp, "san.ext"), "w") as f:
        f.write("subjectAltName=IP:10.99.0.1\nextendedKeyUsage=serverAuth\n")
    ssl("x509", "-req", "-in", "smtp.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
        "-days", "2", "-extfile", "san.ext", "-out", "smtp.pem")


class NodeServer:
    """A test server (smtp_sink.py, webhook_sink.py) inside n1, started and
    stopped again: it writes its pid (inside n1) to a file once it listens,
    and is stopped with kill inside n1 (nsenter does not pass signals on)."""

    def __init__(self, tn, tmp, name, args):
        self.tn, self.tmp, self.name, self.args = tn, tmp, name, args
        self.proc = self.log = None
        self.pid_file = os.path.join(tmp, f"{name}.pid")

    def start(self):
        argv = self.tn.tn.node_argv(1, ["/usr/bin/python3", os.path.join(_here, f"{self.name}.py"),
                                        *self.args, self.pid_file])
        self.log = open(os.path.join(self.tmp, f"{self.name}.log"), "a")
        self.proc = subprocess.Popen(argv, env=self.tn.tn.node_env(1), stdin=subprocess.DEVNULL,
                                     stdout=self.log, stderr=subprocess.STDOUT)
        wait_until(lambda: os.path.exists(self.pid_file) or self.proc.poll() is not None or None,
                   20, f"{self.name} to listen", interval=0.3)
        check(self.proc.poll() is None, f"{self.name} did not start ({self.name}.log)")

    def stop(self):
        if self.proc:
            try:
                pid = open(self.pid_file).read().strip()
                self.tn.exec(1, "kill", pid)
                os.unlink(self.pid_file)
            except OSError:
                self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None
        if self.log:
            self.log.close()
            self.log = None


def received(dir):
    """What a sink kept in @dir (mails, webhook calls), oldest first."""
    out = []
    for path in sorted(glob.glob(os.path.join(dir, "*.json")), key=os.path.getmtime):
        with open(path) as f:
            out.append(json.load(f))
    return out


mails = received


def subject(m):
    for line in m["data"].splitlines():
        if line.startswith("Subject:"):
            return line[len("Subject:"):].strip()
    return ""


def smtp_relay(tn, tmp, password):
    """The SMTP server (not started yet) in n1 at 10.99.0.1:RELAY_PORT, with
    a certificate from a test CA, STARTTLS and AUTH (RELAY_USER, @password)
    required, keeping what it receives in @tmp/mail; and the notify_*
    settings that send through it."""
    make_ca(tmp)
    maildir = os.path.join(tmp, "mail")
    os.mkdir(maildir)
    with open(os.path.join(tmp, "relay-password"), "w") as f:
        f.write(password)
    smtp = NodeServer(tn, tmp, "smtp_sink",
                      ["10.99.0.1", str(RELAY_PORT), os.path.join(tmp, "smtp.pem"),
                       os.path.join(tmp, "smtp.key"), RELAY_USER, os.path.join(tmp, "relay-password"),
                       maildir])
    settings = ["notify_smtp_host=10.99.0.1", f"notify_smtp_port={RELAY_PORT}",
                "notify_smtp_tls=starttls", f"notify_smtp_ca={os.path.join(tmp, 'ca.pem')}",
                f"notify_smtp_user={RELAY_USER}", f"notify_smtp_password={password}",
                "notify_from=herd@cluster.test"]
    return smtp, maildir, settings

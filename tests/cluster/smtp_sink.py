#!/usr/bin/python3
"""A real SMTP server for tests (Debian's python3-aiosmtpd): STARTTLS
required, AUTH (PLAIN/LOGIN, only over TLS) required, every message kept
as a JSON file {"from","to","data"} in a directory.

    smtp_sink.py ADDR PORT CERT KEY USER PASSWORD_FILE DIR PID_FILE

Runs until SIGTERM; the test starts it inside a test node's namespaces and
stops it with kill PID (in PID_FILE: nsenter does not pass signals on).
"""
import json
import os
import signal
import ssl
import sys
import threading

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult


class Keep:
    def __init__(self, dir):
        self.dir = dir
        self.n = 0

    async def handle_DATA(self, server, session, envelope):
        self.n += 1
        path = os.path.join(self.dir, f"{os.getpid()}-{self.n:04d}.json")
        with open(path + ".tmp", "w") as f:
            json.dump({"from": envelope.mail_from, "to": envelope.rcpt_tos,
                       "data": envelope.content.decode("utf-8", "replace")}, f)
        os.rename(path + ".tmp", path)
        return "250 Message accepted for delivery"


def main():
    addr, port, cert, key, user, password_file, dir, pid_file = sys.argv[1:9]
    password = open(password_file).read().strip()
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)

    # handled=False: aiosmtpd answers 535 itself.

    def authenticate(server, session, envelope, mechanism, auth_data):
        ok = (auth_data.login.decode() == user and auth_data.password.decode() == password)
        return AuthResult(success=ok, handled=False)

    ctl = Controller(Keep(dir), hostname=addr, port=int(port), tls_context=ctx,
                     require_starttls=True, auth_required=True, auth_require_tls=True,
                     authenticator=authenticate, ready_timeout=10)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: done.set())
    ctl.start()
    with open(pid_file, "w") as f:
        f.write(f"{os.getpid()}\n")
    print(f"listening on {addr}:{port}", flush=True)
    done.wait()
    ctl.stop()


if __name__ == "__main__":
    main()

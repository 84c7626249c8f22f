#!/usr/bin/python3
"""A client of herd's console relay between nodes (daemon/console_proxy.c),
stdlib and openssl(1) only: what test_console uses to knock at a node's
relay with a certificate of its choice.

As a program (run inside a test node, as root):

  relayclient.py HOST PORT VM_UUID VM_NAME [--cn NAME]

connects over TLS to HOST:PORT, trusting the cluster's CA
(/var/lib/herd/tls/ca.crt), with this node's own certificate -- or, with
--cn, a new one for NAME signed by the cluster's CA (its key read from
this node's store, /var/lib/herd/config.db): a certificate no node has.
It asks for VM_UUID's display and prints the relay's one-line answer
({"ok": true} or {"error": SENTENCE}), or {"closed": WHY}.
"""
import argparse
import json
import os
import socket
import sqlite3
import ssl
import subprocess
import sys
import tempfile

TLS = "/var/lib/herd/tls"
DB = "/var/lib/herd/config.db"


def signed_cert(cn, tmp):
    """(cert, key) files for @cn, signed by the cluster's CA."""
    db = sqlite3.connect(f"file:{DB}?mode=ro", uri=True)
    (data,) = db.execute("SELECT data FROM objects WHERE kind = 'cluster'").fetchone()
    ca_key = os.path.join(tmp, "ca.key")
    with open(ca_key, "w") as f:
        f.write(json.loads(data)["ca_key"])
    key, csr, crt = (os.path.join(tmp, n) for n in ("peer.key", "peer.csr", "peer.crt"))
    subprocess.run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-subj", f"/CN={cn}", "-keyout", key, "-out", csr], check=True,
                   capture_output=True)
    subprocess.run(["openssl", "x509", "-req", "-in", csr, "-CA", os.path.join(TLS, "ca.crt"), "-CAkey",
                    ca_key, "-CAcreateserial", "-days", "1", "-out", crt], check=True, capture_output=True)
    return crt, key


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("host")
    ap.add_argument("port", type=int)
    ap.add_argument("vm")
    ap.add_argument("name")
    ap.add_argument("--cn")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.cn:
            crt, key = signed_cert(args.cn, tmp)
        else:
            crt, key = os.path.join(TLS, "node.crt"), os.path.join(TLS, "node.key")
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.load_verify_locations(os.path.join(TLS, "ca.crt"))
        ctx.load_cert_chain(crt, key)
        try:
            with socket.create_connection((args.host, args.port), timeout=20) as raw, \
                    ctx.wrap_socket(raw) as s:
                line = json.dumps({"v": 1, "vm": args.vm, "name": args.name, "user": "relayclient"})
                s.sendall(line.encode() + b"\n")
                answer = b""
                while not answer.endswith(b"\n"):
                    chunk = s.recv(1)
                    if not chunk:
                        break
                    answer += chunk
        except (OSError, ssl.SSLError) as e:
            print(json.dumps({"closed": str(e)}))
            return 0
        print(answer.decode().strip() or json.dumps({"closed": "no answer"}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

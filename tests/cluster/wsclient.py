#!/usr/bin/python3
"""A small WebSocket (RFC 6455) client and an RFB (VNC) handshake over it,
stdlib only: what the tests use to open herd's VM console as noVNC does.

As a program (run inside a test node, where the API is):

  wsclient.py URL [--origin ORIGIN] [--protocol P] [--hold SECONDS]
  wsclient.py --vnc HOST:PORT        (a plain VNC server, e.g. herd vm console --port)

opens URL (https://…/api/v1/vms/NAME/console?ticket=…) as a websocket and
prints one JSON line: {"status": 101, "version": "RFB 003.008", "width": W,
"height": H, "name": NAME} after the RFB handshake, or {"status": CODE,
"body": …} when the upgrade is refused.  With --hold it then waits up to
SECONDS for the server to end the connection, asking for screen updates
now and then, and prints {"closed": true, "code": C, "reason": R} (or
{"closed": false}) when it does.
"""
import argparse
import base64
import hashlib
import json
import os
import socket
import ssl
import struct
import sys
import time
from urllib.parse import urlsplit

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class Closed(Exception):
    """The server closed the websocket: code and reason (None: no close frame)."""

    def __init__(self, code=None, reason=""):
        super().__init__(f"closed: {code} {reason}")
        self.code = code
        self.reason = reason


class WebSocket:
    def __init__(self, url, origin=None, protocol="binary", timeout=30):
        u = urlsplit(url)
        port = u.port or (443 if u.scheme in ("https", "wss") else 80)
        raw = socket.create_connection((u.hostname, port), timeout=timeout)
        if u.scheme in ("https", "wss"):
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            raw = ctx.wrap_socket(raw, server_hostname=u.hostname)
        self.sock = raw
        self.buf = b""
        key = base64.b64encode(os.urandom(16)).decode()
        path = u.path + (f"?{u.query}" if u.query else "")
        host = u.netloc
        lines = [f"GET {path} HTTP/1.1", f"Host: {host}", "Upgrade: websocket",
                 "Connection: Upgrade", f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13"]
        if protocol:
            lines.append(f"Sec-WebSocket-Protocol: {protocol}")
        if origin:
            lines.append(f"Origin: {origin}")
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        head = self._read_until(b"\r\n\r\n")
        status_line, *header_lines = head.decode("iso-8859-1").split("\r\n")
        self.status = int(status_line.split()[1])
        self.headers = {}
        for h in header_lines:
            if ":" in h:
                k, v = h.split(":", 1)
                self.headers[k.strip().lower()] = v.strip()
        self.body = None
        if self.status != 101:
            n = int(self.headers.get("content-length", "0"))
            while len(self.buf) < n:
                chunk = self.sock.recv(65536)
                if not chunk:
                    break
                self.buf += chunk
            try:
                self.body = json.loads(self.buf[:n] or b"null")
            except ValueError:
                self.body = self.buf[:n].decode(errors="replace")
            return
        want = base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()
        if self.headers.get("sec-websocket-accept") != want:
            raise ValueError(f"wrong Sec-WebSocket-Accept: {self.headers}")
        self.data = b""   # payload bytes received, not consumed yet

    def _read_until(self, marker):
        while marker not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise Closed(None, "the connection ended during the handshake")
            self.buf += chunk
        head, self.buf = self.buf.split(marker, 1)
        return head

    def _need(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise Closed(None, "the connection ended")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def send(self, payload, opcode=0x2):
        mask = os.urandom(4)
        n = len(payload)
        head = bytes([0x80 | opcode])
        if n < 126:
            head += bytes([0x80 | n])
        elif n <= 0xFFFF:
            head += bytes([0x80 | 126]) + struct.pack(">H", n)
        else:
            head += bytes([0x80 | 127]) + struct.pack(">Q", n)
        masked = bytes(b ^ mask[i & 3] for i, b in enumerate(payload))
        self.sock.sendall(head + mask + masked)

    def frame(self):
        """The next frame (opcode, payload); answers pings; Closed on close."""
        b0, b1 = self._need(2)
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack(">H", self._need(2))[0]
        elif n == 127:
            n = struct.unpack(">Q", self._need(8))[0]
        if b1 & 0x80:
            raise ValueError("the server masked a frame")
        payload = self._need(n)
        op = b0 & 0x0F
        if op == 0x8:
            code = struct.unpack(">H", payload[:2])[0] if len(payload) >= 2 else None
            raise Closed(code, payload[2:].decode(errors="replace"))
        if op == 0x9:
            self.send(payload, 0xA)
        return op, payload

    def read(self, n):
        """@n bytes of the data stream (binary frames' payloads)."""
        while len(self.data) < n:
            op, payload = self.frame()
            if op in (0x0, 0x2):
                self.data += payload
        out, self.data = self.data[:n], self.data[n:]
        return out

    def close(self):
        try:
            self.send(struct.pack(">H", 1000), 0x8)
        except OSError:
            pass
        self.sock.close()


class PlainVnc:
    """A VNC server on plain TCP, read and written as WebSocket's data."""

    def __init__(self, hostport, timeout=30):
        host, port = hostport.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)

    def read(self, n):
        out = b""
        while len(out) < n:
            chunk = self.sock.recv(n - len(out))
            if not chunk:
                raise Closed(None, "the connection ended")
            out += chunk
        return out

    def send(self, data):
        self.sock.sendall(data)

    def close(self):
        self.sock.close()


def rfb_handshake(ws):
    """RFB 3.8 with security type None; the ServerInit as a dict."""
    version = ws.read(12)
    ws.send(b"RFB 003.008\n")
    n = ws.read(1)[0]
    if n == 0:
        reason_len = struct.unpack(">I", ws.read(4))[0]
        raise ValueError(f"VNC refused: {ws.read(reason_len)!r}")
    types = ws.read(n)
    if 1 not in types:
        raise ValueError(f"no security type None among {list(types)}")
    ws.send(b"\x01")
    result = struct.unpack(">I", ws.read(4))[0]
    if result != 0:
        raise ValueError(f"security result {result}")
    ws.send(b"\x01")  # ClientInit: shared
    width, height = struct.unpack(">HH", ws.read(4))
    ws.read(16)       # the pixel format
    name_len = struct.unpack(">I", ws.read(4))[0]
    name = ws.read(name_len).decode(errors="replace")
    return {"version": version.decode(errors="replace").strip(), "width": width,
            "height": height, "name": name}


def hold(ws, seconds, width, height):
    """Ask for screen updates until the server closes, or @seconds pass."""
    deadline = time.monotonic() + seconds
    ws.sock.settimeout(1)
    last_ask = 0
    while time.monotonic() < deadline:
        if time.monotonic() - last_ask > 1:
            # FramebufferUpdateRequest, incremental, the whole screen
            ws.send(struct.pack(">BBHHHH", 3, 1, 0, 0, width, height))
            last_ask = time.monotonic()
        try:
            ws.frame()
        except socket.timeout:
            continue
        except Closed as c:
            return {"closed": True, "code": c.code, "reason": c.reason}
        except OSError as e:
            return {"closed": True, "code": None, "reason": str(e)}
    return {"closed": False}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("url", nargs="?")
    p.add_argument("--vnc")
    p.add_argument("--origin")
    p.add_argument("--protocol", default="binary")
    p.add_argument("--hold", type=float, default=0)
    a = p.parse_args()
    if a.vnc:
        vnc = PlainVnc(a.vnc)
        print(json.dumps(dict(rfb_handshake(vnc), status=0)), flush=True)
        vnc.close()
        return 0
    ws = WebSocket(a.url, origin=a.origin, protocol=a.protocol or None)
    if ws.status != 101:
        print(json.dumps({"status": ws.status, "body": ws.body}), flush=True)
        return 0
    try:
        init = rfb_handshake(ws)
    except Closed as c:
        print(json.dumps({"status": 101, "closed": True, "code": c.code, "reason": c.reason}),
              flush=True)
        return 0
    print(json.dumps(dict(init, status=101, protocol=ws.headers.get("sec-websocket-protocol"))),
          flush=True)
    if a.hold:
        print(json.dumps(hold(ws, a.hold, init["width"], init["height"])), flush=True)
    ws.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

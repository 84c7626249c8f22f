#!/usr/bin/python3
"""A webhook receiver for tests: every POST's JSON body kept as a file in a
directory, answered 204.

    webhook_sink.py ADDR PORT DIR PID_FILE

Runs until SIGTERM (the test kills PID_FILE's pid inside the test node).
"""
import http.server
import json
import os
import signal
import sys
import threading


def main():
    addr, port, dir, pid_file = sys.argv[1:5]
    count = [0]

    class Keep(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            count[0] += 1
            path = os.path.join(dir, f"{os.getpid()}-{count[0]:04d}.json")
            with open(path + ".tmp", "w") as f:
                json.dump({"path": self.path, "type": self.headers.get("Content-Type"),
                           "body": json.loads(body)}, f)
            os.rename(path + ".tmp", path)
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer((addr, int(port)), Keep)
    signal.signal(signal.SIGTERM, lambda *a: threading.Thread(target=server.shutdown).start())
    with open(pid_file, "w") as f:
        f.write(f"{os.getpid()}\n")
    server.serve_forever()


if __name__ == "__main__":
    main()

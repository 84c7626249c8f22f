"""virt-probe (tests/cluster/virt-probe.c) driven from a cluster test: the
libvirt VM driver inside a test node, one command a line on its stdin, its
reports (facts, completions, a migration's progress) read by a thread.

    probe = Probe(tn, 2, log_path)          # in node n2, stderr to log_path
    probe.wait_for(lambda: "back" in probe.conn, 15, "the probe to connect")
    oid = probe.op("start", uuid, xml_path) # -> "op1"
    ok, fields = probe.done(oid)
    probe.wait_state(uuid, "running")

Used by test_virt.py and test_virt_migrate.py.
"""
import os
import queue
import subprocess
import threading
import time

from testlib import TestFailure, build_dir, check, wait_until


def parse(line):
    """'kind a b k=v … reason=rest of line' -> (kind, [words], {k: v})."""
    kind, _, rest = line.partition(" ")
    words, fields = [], {}
    for key in ("reason=", "msg="):
        if f" {key}" in f" {rest}":
            head, _, tail = f" {rest}".partition(f" {key}")
            rest = head.strip()
            fields[key[:-1]] = tail
    for w in rest.split():
        if "=" in w:
            k, v = w.split("=", 1)
            fields[k] = v
        else:
            words.append(w)
    return kind, words, fields


class Probe:
    """virt-probe inside node i, its output collected by a thread."""

    def __init__(self, tn, i, log_path):
        self.tn = tn
        argv = tn.tn.node_argv(i, [os.path.join(build_dir(), "tests/cluster/virt-probe"),
                                   "qemu:///system"])
        self.errlog = open(log_path, "a")
        self.p = subprocess.Popen(argv, env=tn.tn.node_env(i), stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=self.errlog, text=True,
                                  bufsize=1)
        self.q = queue.Queue()
        self.history = []      # (kind, words, fields) of every line, in order
        self.facts = {}        # uuid -> fields of its last fact (state in "state")
        self.conn = []         # "lost"/"back", in order
        self.next_id = 0
        threading.Thread(target=self._read, daemon=True).start()
        self.wait_for(lambda: self.find("ready"), 10, "the probe to start")

    def _read(self):
        for line in self.p.stdout:
            self.q.put(line.rstrip("\n"))
        self.q.put(None)

    def _take(self, timeout):
        try:
            line = self.q.get(timeout=timeout)
        except queue.Empty:
            return False
        if line is None:
            raise TestFailure(f"virt-probe exited (status {self.p.wait()})")
        kind, words, fields = parse(line)
        self.history.append((kind, words, fields))
        if kind == "fact":
            fields = dict(fields, state=words[1], uuid=words[0])
            self.facts[words[0]] = fields
            self.history[-1] = (kind, words, fields)
        elif kind == "connection":
            self.conn.append(words[0])
        elif kind == "error":
            raise TestFailure(f"virt-probe: {line}")
        return True

    def wait_for(self, pred, timeout, what):
        """wait_until() that takes the probe's output while it waits."""
        return wait_until(pred, timeout, what, interval=0.1, pause=self._take)

    def drain(self, s=0.2):
        """Take whatever arrives within s seconds."""
        end = time.monotonic() + s
        while time.monotonic() < end:
            self._take(max(0.01, end - time.monotonic()))

    def find(self, kind, *words, since=0):
        for k, w, f in self.history[since:]:
            if k == kind and tuple(w[:len(words)]) == words:
                return f or True
        return None

    def send(self, *words):
        self.p.stdin.write(" ".join(str(w) for w in words) + "\n")
        self.p.stdin.flush()

    def op(self, *words):
        """Send an operation; returns its id."""
        self.next_id += 1
        oid = f"op{self.next_id}"
        self.send(words[0], oid, *words[1:])
        return oid

    def done(self, oid, timeout=30):
        """Wait for op oid; returns (ok, fields)."""
        def seen():
            for k, w, f in self.history:
                if k == "done" and w and w[0] == oid:
                    return (w[1] == "ok", dict(f, code=w[2] if len(w) > 2 else None))
            return None
        return self.wait_for(seen, timeout, f"operation {oid} to finish")

    def run(self, *words, timeout=30):
        oid = self.op(*words)
        ok, f = self.done(oid, timeout)
        check(ok, f"{' '.join(map(str, words[:2]))} failed: {f.get('code')}: {f.get('msg')}")
        return f

    def begin_t(self, oid):
        return float(self.find("begin", oid)["t"])

    def state(self, uuid):
        f = self.facts.get(uuid)
        return f["state"] if f else None

    def wait_state(self, uuid, state, timeout=20, since=0):
        """Wait for a fact of uuid with state after history index since."""
        def seen():
            for k, w, f in self.history[since:]:
                if k == "fact" and f["uuid"] == uuid and f["state"] == state:
                    return f
            return None
        return self.wait_for(seen, timeout, f"VM {uuid} to be {state}")

    def facts_of(self, uuid, since=0):
        """[(state, reason)] of every fact of uuid after history index since."""
        return [(f["state"], f.get("reason")) for k, w, f in self.history[since:]
                if k == "fact" and f["uuid"] == uuid]

    def progress(self, oid):
        """The progress lines of migration oid so far, as dicts of ints."""
        return [{k: int(float(v)) for k, v in f.items()} for k, w, f in self.history
                if k == "progress" and w and w[0] == oid]

    def query(self, cmd, end_kind, timeout=10):
        mark = len(self.history)
        self.send(cmd)
        self.wait_for(lambda: self.find(end_kind, since=mark), timeout, f"the answer to {cmd}")
        return self.history[mark:]

    def close(self):
        try:
            if self.p.poll() is None:
                self.send("quit")
                self.p.stdin.close()
                self.p.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired, ValueError):
            self.p.kill()
            self.p.wait()
        self.errlog.close()

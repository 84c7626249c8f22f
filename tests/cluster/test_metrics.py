#!/usr/bin/python3
"""GET /metrics on real test nodes, checked by Debian's promtool and scraped
by a real Prometheus (issue 13, item 6; docs/metrics.md).

Two nodes on two links.  Every node answers /metrics over HTTPS, refuses it
without credentials, and promtool accepts what it says.  A Prometheus inside
n1 (its own network namespace and processes: `testnodes down` takes it with
the node) scrapes both nodes over HTTPS with the cluster's CA and the admin
password; its query API then shows both nodes up, herd_node_online for both
from both, and herd_link_connected for the four (node, peer) views of the two
links.  Cutting link 1 of n2 turns those series to 0 as both nodes see it,
and herd_alerts{severity="warning"} to 1; healing turns them back.
"""
import json
import os
import subprocess
import sys
import urllib.parse

_here = os.path.dirname(os.path.realpath(__file__))
sys.path[:0] = [_here, os.path.dirname(_here)]  # harness.py here, testlib.py in tests/
from harness import TestNodes, testnodes  # noqa: E402
from halib import Workdir, api  # noqa: E402
from testlib import check, run_test, say, wait_until  # noqa: E402

INSTANCE = "test-metrics"


def prometheus_config(tmp, ca_file, password_file):
    path = os.path.join(tmp, "prometheus.yml")
    targets = ", ".join(f'"10.99.0.{i}:8001"' for i in (1, 2))
    with open(path, "w") as f:
        f.write(f"""global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: herd
    scheme: https
    tls_config:
      ca_file: {ca_file}
    basic_auth:
      username: admin
      password_file: {password_file}
    static_configs:
      - targets: [{targets}]
""")
    return path


def query(tn, expr):
    """{labels as a sorted tuple: value} of an instant query at n1's Prometheus."""
    url = "http://127.0.0.1:9090/api/v1/query?query=" + urllib.parse.quote(expr)
    p = tn.exec(1, "curl", "-sf", url)
    if p.returncode != 0:
        return None
    data = json.loads(p.stdout)["data"]["result"]
    return {tuple(sorted((k, v) for k, v in r["metric"].items() if k not in ("job", "__name__"))):
            float(r["value"][1]) for r in data}


def links_seen(tn):
    """{(scraped node, node, peer, link): value} of herd_link_connected."""
    r = query(tn, "herd_link_connected") or {}
    return {(dict(k)["instance"][:9], dict(k)["node"], dict(k)["peer"], dict(k)["link"]): v
            for k, v in r.items()}


def main():
    with TestNodes(INSTANCE, 2, links=2) as tn, Workdir(INSTANCE) as tmp:
        tn.wait_members([1, 2], 2)
        password_file = testnodes.password_path(tn.tn)
        password = open(password_file).read().strip()
        # Over HTTPS: refused without credentials, accepted by promtool.
        for i in (1, 2):
            code, _ = api(tn, i, "GET", "/metrics", tcp=True)
            check(code == 401, f"n{i}: GET /metrics without credentials answered {code}")
            code, text = api(tn, i, "GET", "/metrics", tcp=True, auth=f"admin:{password}")
            check(code == 200 and "herd_node_online" in text, f"n{i}: GET /metrics: {code}")
            p = subprocess.run(["promtool", "check", "metrics"], input=text, text=True,
                               capture_output=True)
            check(p.returncode == 0, f"promtool check metrics on n{i}'s /metrics: "
                                     f"{(p.stdout + p.stderr).strip()}")
            say(f"n{i}: /metrics: {len(text.splitlines())} lines, promtool accepts them; "
                f"401 without credentials")
        code, answer = api(tn, 1, "GET", "/api/v1/cluster/ca")
        check(code == 200, f"GET /api/v1/cluster/ca: {code}")
        ca_file = os.path.join(tmp, "ca.pem")
        with open(ca_file, "w") as f:
            f.write(answer["ca_cert"])
        config = prometheus_config(tmp, ca_file, password_file)
        check(subprocess.run(["promtool", "check", "config", config], capture_output=True)
              .returncode == 0, "promtool rejects the test's Prometheus configuration")
        argv = tn.tn.node_argv(1, ["prometheus", f"--config.file={config}",
                                   f"--storage.tsdb.path={os.path.join(tmp, 'data')}",
                                   "--web.listen-address=127.0.0.1:9090"])
        log = open(os.path.join(tmp, "prometheus.log"), "w")
        prom = subprocess.Popen(argv, env=tn.tn.node_env(1), stdin=subprocess.DEVNULL,
                                stdout=log, stderr=subprocess.STDOUT)
        try:
            ups = wait_until(lambda: (lambda r: r if r and len(r) == 2 and
                                      all(v == 1 for v in r.values()) else None)(query(tn, "up")),
                             60, "Prometheus to scrape both nodes", interval=0.5)
            say(f"Prometheus scrapes {len(ups)} nodes: up == 1 for both")
            online = query(tn, "herd_node_online")
            check(len(online) == 4 and all(v == 1 for v in online.values()),
                  f"herd_node_online from both nodes for both: {online}")

            def views(value):
                seen = links_seen(tn)
                want = {(f"10.99.0.{s}", a, b, l) for s in ("1", "2")
                        for a, b in (("n1", "n2"), ("n2", "n1")) for l in ("0", "1")}
                return set(seen) == want and all(
                    v == value(k) for k, v in seen.items()) and seen
            wait_until(lambda: views(lambda k: 1), 30, "herd_link_connected == 1 for every view",
                       interval=0.5)
            say("herd_link_connected: 8 series (2 scrapes x 2 views x 2 links), all 1")
            tn.cli("cut", "2", "1")
            wait_until(lambda: views(lambda k: 0 if k[3] == "1" else 1), 30,
                       "herd_link_connected of link 1 to drop to 0 in both views", interval=0.5)
            warn = wait_until(lambda: (lambda r: r if r and all(v == 1 for v in r.values())
                                       else None)(query(tn, 'herd_alerts{severity="warning"}')),
                              30, "herd_alerts{severity=\"warning\"} == 1", interval=0.5)
            say(f"cut 2 1: link 1 at 0 in both views; warning alerts {sorted(warn.values())}")
            tn.cli("heal", "2", "1")
            wait_until(lambda: views(lambda k: 1), 30, "herd_link_connected back to 1",
                       interval=0.5)
            say("heal 2 1: link 1 at 1 again")
        finally:
            prom.terminate()
            try:
                prom.wait(timeout=20)
            except subprocess.TimeoutExpired:
                prom.kill()
                prom.wait()
            log.close()


if __name__ == "__main__":
    sys.exit(run_test(main))

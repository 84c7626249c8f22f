#!/usr/bin/python3
"""Jobs on real test nodes (issue 12, item 4; docs/jobs.md).

Three nodes, the test PDU as fence device (fence_action=off), counter
guests on the directory every node sees.

 A. `herd vm migrate g1 n3 --wait` on n1 prints its job; the job, read on
    n3, ran on the source n2, is done at 100 % with a log that ends with
    the VM on n3; `herd job list` shows it only with --all.
 B. A guest dirtying memory faster than migration_bandwidth_mibs=1 (no
    timeout to speak of): its job shows progress and memory passes while
    it runs; an auditor lists it and is refused its cancel with a
    sentence; root's `herd job cancel --wait` ends it cancelled, the VM
    running on at its source, its counter uninterrupted; a second cancel
    is refused.
 F. On n2: `herd disk create` and `herd disk resize` (a dir storage) and
    `herd iso upload` (the cluster share) print their jobs, which read done
    at 100 % on n3, run by n2, with a log that says what was made; bad
    input (a disk twice, a shrink) is refused and starts no job.  A slow
    upload (curl at 64 KiB/s) shows its progress and is cancelled by
    `herd job cancel --wait`: the uploader gets the sentence, no ISO and
    no file are left.
 C. The source's power cut during such a migration: the job ends failed,
    saying that node n2 was lost, and n1 and n3 read the same.  The jobs
    of F, which n2 ran, read done on n1 as before, and n1's audit log
    still names the disk's creation by root from node n2.
 D. `herd node standby n3 --wait`: an evacuation job that counts the VMs
    leaving n3 and ends done once it is empty.
 E. Bad ids and options get clear errors; /metrics counts the jobs.
"""
import json
import os
import re
import subprocess
import sys

_here = os.path.dirname(os.path.realpath(__file__))
sys.path[:0] = [_here, os.path.dirname(_here)]  # harness.py here, testlib.py in tests/
from halib import Ha, HaNodes, Workdir, add_dir_storage, api  # noqa: E402
from testlib import check, check_expected, expect, guest_image, run_test, say, wait_until  # noqa: E402
from test_users import https, login, message, write  # noqa: E402

INSTANCE = os.environ.get("HERD_TESTNODES_INSTANCE", "test-jobs")
AUDITOR_PW = "Aud1tor-pw-5581"


def job(ha, i, ref):
    return ha.json(i, "job", "show", ref)


def job_of(p):
    """The job id a `herd vm migrate` printed."""
    m = re.search(r"^Job ([0-9a-f]{8}) ", p.stdout, re.M)
    check(m, f"herd vm migrate printed no job: {p.stdout!r}")
    return m.group(1)


def texts(j):
    return [line["text"] for line in j.get("log", [])]


def on(ha, name, node, i=1):
    v = ha.json(i, "vm", "info", name)
    return v["state"] == "running" and v["node"] == node and v["assigned"] == node and "move_to" not in v


def slow_guest(ha, name, node):
    """A fresh guest that dirties memory on node: at 1 MiB/s its migration
    does not converge."""
    ha.define(name, preferred=node, image=guest_image(dirty=True), extra=["--no-failback"])
    ha.ok(1, "vm", "start", name)
    ha.wait_counting([name])
    check(ha.json(1, "vm", "info", name)["node"] == node, f"{name} does not run on {node}")


def start_slow_migration(ha, name, dst):
    """herd vm migrate NAME DST (no wait); its job once it shows a memory pass."""
    p = ha.ok(1, "vm", "migrate", name, dst)
    ref = job_of(p)
    j = wait_until(lambda: (lambda j: j if any(t.startswith("Memory pass") for t in texts(j)) else None)(
        job(ha, 3, ref)), 60, f"the job of {name}'s migration to show a memory pass", interval=0.5)
    return ref, j


# ---------------------------------------------------------------- A

def migration_done(tn, ha):
    say("== A. herd vm migrate g1 n3 --wait: a job that ends done")
    p = ha.ok(1, "vm", "migrate", "g1", "n3", "--wait", timeout=300)
    ref = job_of(p)
    expect("runs on node n3 now" in p.stdout, f"vm migrate --wait said: {p.stdout!r}")
    j = wait_until(lambda: (lambda j: j if j["state"] != "running" else None)(job(ha, 3, ref)), 30,
                   f"job {ref} to end", interval=0.5)
    check(j["state"] == "done" and j["progress"] == 100, f"job {ref}: {j}")
    check(j["kind"] == "migrate" and j["target"] == "g1" and j["to"] == "n3" and j["node"] == "n2"
          and j["owner"] == "root" and j["error"] is None, f"job {ref}: {j}")
    log = texts(j)
    expect(len(log) >= 2 and "asked on node n1 to migrate VM g1" in log[0]
           and log[-1] == "VM g1 runs on node n3 now.", f"job {ref}'s log: {log}")
    expect(ref not in [x["name"] for x in ha.json(2, "job", "list")], "herd job list shows a job that ended")
    expect(ref in [x["name"] for x in ha.json(2, "job", "list", "--all")], "herd job list --all lacks it")
    shown = ha.ok(2, "job", "show", ref).stdout
    expect("State:     done, 100 %" in shown and "runs on node n3 now" in shown, f"herd job show: {shown}")
    say(f"job {ref}: done on n2's word, {len(log)} log lines, read on n2 and n3")


# ---------------------------------------------------------------- B

def migration_cancelled(tn, ha, tmp):
    say("== B. a migration that cannot converge: progress, an auditor refused, cancelled by root")
    ha.set(1, "migration_bandwidth_mibs=1", "migration_timeout_min_s=600", "migration_timeout_per_gib_s=0")
    boots = {"d1": ha.boots("d1")}
    ref, j = start_slow_migration(ha, "d1", "n3")
    check(j["state"] == "running" and j["node"] == "n2" and j["cancellable"], f"job {ref}: {j}")
    listed = ha.ok(1, "job", "list").stdout
    expect(ref in listed and "migrate d1 -> n3" in listed and "running" in listed, f"herd job list: {listed}")
    # The auditor reads, and may not cancel.
    data, _ = login(tn, 1, "aud", AUDITOR_PW)
    token = data["token"]
    code, jobs, _ = https(tn, 1, "GET", "/api/v1/jobs", token=token)
    check(code == 200 and ref in [x["name"] for x in jobs], f"the auditor's GET /api/v1/jobs: {code} {jobs}")
    code, data, _ = https(tn, 1, "POST", f"/api/v1/jobs/{ref}/cancel", token=token, body={})
    msg = message(data)
    check(code == 403 and "may cancel only the jobs it started" in msg and msg.endswith("."),
          f"the auditor's cancel: {code} {data}")
    check(job(ha, 1, ref)["state"] == "running" and job(ha, 1, ref)["cancel_by"] is None,
          "the auditor's refused cancel changed the job")
    say(f"  auditor refused: {msg}")
    p = ha.ok(3, "job", "cancel", ref, "--wait", timeout=180)
    expect(f"Job {ref} is cancelled." in p.stdout, f"herd job cancel --wait said: {p.stdout!r}")
    j = job(ha, 1, ref)
    check(j["state"] == "cancelled", f"job {ref} after the cancel: {j}")
    expect(re.match(r"User root cancelled the migration; VM d1 runs on node n2\.$", j["error"] or ""),
           f"job {ref}'s error: {j['error']!r}")
    expect("Asked the hypervisor to abort the migration." in texts(j), f"job {ref}'s log: {texts(j)}")
    check(wait_until(lambda: on(ha, "d1", "n2"), 30, "d1 to run on n2, no move pending", interval=0.5), "d1")
    ha.wait_counting(["d1"])
    expect(ha.boots("d1") == boots["d1"], "d1 booted again after its cancelled migration")
    ha.refused(2, ["job", "cancel", ref], rf"Job {ref} \(migrate of d1\) has ended already: it is cancelled\.")
    say(f"job {ref}: progress {max(0, j['progress'])} %, cancelled; d1 runs on at n2, no boot")


# ---------------------------------------------------------------- F

def printed_job(p, what):
    """The job id a disk or ISO command printed, as it ended."""
    m = re.search(r"^Job ([0-9a-f]{8}) \('herd job show \1' shows its log\)\.$", p.stdout, re.M)
    check(m, f"{what} printed no job: {p.stdout!r}")
    return m.group(1)


def ended_done(ha, ref, kind, target, last):
    j = job(ha, 3, ref)
    check(j["state"] == "done" and j["progress"] == 100 and j["kind"] == kind and j["target"] == target
          and j["node"] == "n2" and j["owner"] == "root" and not j["cancellable"], f"job {ref}: {j}")
    expect(last is None or texts(j)[-1] == last, f"job {ref}'s log: {texts(j)}")
    return j


def disk_and_iso_jobs(tn, ha, tmp):
    say("== F. disk create, disk resize and ISO upload on n2: jobs")
    add_dir_storage(ha, "jobstore", os.path.join(tmp, "jobstore"), share=True)
    before = len(ha.json(1, "job", "list", "--all"))
    p = ha.ok(2, "disk", "create", "jd1", "--storage", "jobstore", "--size", "1M")
    created = printed_job(p, "herd disk create")
    j = ended_done(ha, created, "disk-create", "jd1", "Disk jd1 made: 1 MiB, qcow2, on storage jobstore.")
    expect("User root asked on node n2 to create disk jd1 (1 MiB, qcow2) on storage jobstore." == texts(j)[0],
           f"job {created}'s log: {texts(j)}")
    p = ha.ok(2, "disk", "resize", "jd1", "--size", "2M")
    resized = printed_job(p, "herd disk resize")
    ended_done(ha, resized, "disk-resize", "jd1", "Disk jd1 grown from 1 MiB to 2 MiB.")
    iso = os.path.join(tmp, "jobs.iso")
    with open(iso, "wb") as f:
        f.write(os.urandom(3 << 20))
    p = ha.ok(2, "iso", "upload", iso)
    uploaded = printed_job(p, "herd iso upload")
    j = ended_done(ha, uploaded, "iso-upload", "jobs.iso", None)
    expect(texts(j)[-1].startswith("ISO jobs.iso uploaded: 3 MiB, SHA-256 "), f"job {uploaded}'s log: {texts(j)}")
    # Bad input: refused before any job.
    ha.refused(2, ["disk", "create", "jd1", "--storage", "jobstore", "--size", "1M"], r"Disk jd1 exists already\.")
    ha.refused(2, ["disk", "resize", "jd1", "--size", "1M"], r"jd1")
    ha.refused(2, ["iso", "upload", iso], r"ISO jobs\.iso exists already\.")
    ha.refused(2, ["job", "cancel", created], rf"Job {created} \(disk-create of jd1\) has ended already")
    check(len(ha.json(1, "job", "list", "--all")) == before + 3, "bad input started a job")
    say(f"jobs {created} (create), {resized} (resize), {uploaded} (upload): done, run by n2")
    upload_cancelled(tn, ha, tmp)
    return [created, resized, uploaded]


def upload_cancelled(tn, ha, tmp):
    slow = os.path.join(tmp, "slow.iso")
    with open(slow, "wb") as f:
        f.write(os.urandom(2 << 20))
    pw = open(os.path.join(tn.tn.dir, "admin-password")).read().strip()
    argv = ["curl", "-s", "-k", "-T", slow, "--limit-rate", "64k", "-u", f"admin:{pw}", "-w", "\n%{http_code}",
            "https://10.99.0.2:8001/api/v1/isos/slow.iso"]
    curl = subprocess.Popen(tn.tn.node_argv(2, argv), env=tn.tn.node_env(2), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        def running():
            mine = [x for x in ha.json(1, "job", "list") if x["kind"] == "iso-upload" and x["target"] == "slow.iso"]
            return mine[0] if mine and mine[0]["progress"] > 0 else None
        j = wait_until(running, 60, "the slow upload's job to show progress", interval=0.5)
        check(j["cancellable"] and j["node"] == "n2" and j["owner"] == "admin", f"the upload's job: {j}")
        ref = j["name"]
        p = ha.ok(3, "job", "cancel", ref, "--wait", timeout=120)
        expect(f"Job {ref} is cancelled." in p.stdout, f"herd job cancel --wait said: {p.stdout!r}")
        out, _ = curl.communicate(timeout=120)
    finally:
        if curl.poll() is None:
            curl.kill()
            curl.wait()
    body, _, code = out.rpartition("\n")
    want = f"The upload of ISO slow.iso was cancelled (herd job cancel {ref}); nothing was kept."
    check(code == "409" and want in body, f"the uploader's answer: {code} {body}")
    j = job(ha, 1, ref)
    check(j["state"] == "cancelled" and j["error"] == want and j["cancel_by"] == "root", f"job {ref}: {j}")
    expect("slow.iso" not in [x["name"] for x in ha.json(1, "iso", "list")], "the cancelled ISO was made")
    left = sorted(os.listdir(os.path.join(tmp, "jobstore", "isos")))
    expect(left == ["jobs.iso"], f"isos/ after the cancelled upload: {left}")
    say(f"job {ref}: upload cancelled at {j['progress']} %; the uploader was told: {want}")


# ---------------------------------------------------------------- C

def source_lost(tn, ha, n2_jobs):
    say("== C. the source's power cut during a migration: its job ends failed, on the others' word")
    slow_guest(ha, "d2", "n2")
    ref, _ = start_slow_migration(ha, "d2", "n3")
    tn.cli("kill", "2")
    j = wait_until(lambda: (lambda j: j if j["state"] != "running" else None)(job(ha, 1, ref)), 120,
                   f"job {ref} to end after n2's power cut", interval=0.5)
    check(j["state"] == "failed", f"job {ref} after n2's power cut: {j}")
    expect(re.match(r"Node n2, which ran the job, (left the cluster|went down)", j["error"] or ""),
           f"job {ref}'s error: {j['error']!r}")
    j3 = job(ha, 3, ref)
    expect(j3["state"] == "failed" and j3["error"] == j["error"], f"n3 reads job {ref} as {j3}")
    say(f"job {ref}: failed, read on n1 and n3: {j['error']}")
    # The jobs n2 ran and finished before: their end survived n2.
    for ref2 in n2_jobs:
        j2 = job(ha, 1, ref2)
        check(j2["state"] == "done" and j2["node"] == "n2", f"job {ref2} on n1 after n2's power cut: {j2}")
    # So does the audit log of what was changed from n2: every node
    # records every change it applies.
    audit = ha.json(1, "audit", "--limit", "500")
    made = [e for e in audit if e["kind"] == "disk" and e["name"] == "jd1" and e["change"] == "created"]
    check(made and made[-1]["node"] == "n2" and made[-1]["user"] == "root",
          f"n1's audit log lacks jd1's creation from n2: {made}")
    say(f"after n2's power cut: jobs {', '.join(n2_jobs)} read done on n1; n1's audit log names jd1's creation from n2")
    tn.cli("start", "2")
    tn.wait_members([1, 2, 3], 3, timeout=60)
    wait_until(lambda: ha.nodes(1)["n2"]["down"] is None, 60, "n2's down mark to be cleared")
    # Its final state survived n2, which reads the same now.
    wait_until(lambda: job(ha, 2, ref)["state"] == "failed", 60, f"n2 to read job {ref} as failed", interval=1)


# ---------------------------------------------------------------- D

def evacuation(tn, ha):
    say("== D. herd node standby n3 --wait: an evacuation job")
    ha.set(1, "migration_bandwidth_mibs=0", "migration_timeout_min_s=60", "migration_timeout_per_gib_s=30")
    for name in ("d1", "d2"):  # the guests that dirty memory go
        ha.ok(1, "vm", "destroy", name)
        ha.ok(1, "vm", "undefine", name)
    check(on(ha, "g1", "n3"), f"g1 does not run on n3: {ha.json(1, 'vm', 'info', 'g1')}")
    p = ha.ok(1, "node", "standby", "n3", "--wait", timeout=300)
    m = re.search(r"^Job ([0-9a-f]{8}) follows the VMs leaving it", p.stdout, re.M)
    check(m, f"herd node standby printed no job: {p.stdout!r}")
    ref = m.group(1)
    j = wait_until(lambda: (lambda j: j if j["state"] != "running" else None)(job(ha, 2, ref)), 60,
                   f"job {ref} to end", interval=0.5)
    check(j["state"] == "done" and j["kind"] == "evacuate" and j["target"] == "n3" and j["node"] == "n3",
          f"job {ref}: {j}")
    expect(texts(j)[-1] == "No VM is left on node n3.", f"job {ref}'s log: {texts(j)}")
    ha.ok(1, "node", "online", "n3")
    say(f"job {ref}: n3 evacuated, {len(texts(j))} log lines")


# ---------------------------------------------------------------- E

def bad_input(tn, ha):
    say("== E. bad ids and options; the metrics")
    ha.refused(1, ["job", "show", "nosuch"], r"Job 'nosuch' is not defined\.")
    ha.refused(1, ["job", "cancel", "12345678"], r"Job '12345678' is not defined\.")
    ha.refused(1, ["job", "show"], r"job show")
    ha.refused(1, ["job", "list", "--bogus"], r"bogus")
    code, data = api(tn, 1, "GET", "/api/v1/jobs?all=maybe")
    check(code == 400 and "Parameter 'all' is true or false, not 'maybe'." in json.dumps(data),
          f"GET /api/v1/jobs?all=maybe: {code} {data}")
    code, text = api(tn, 2, "GET", "/metrics")
    check(code == 200, f"GET /metrics: {code}")
    for line in ('herd_jobs{state="running"} 0', 'herd_jobs{state="done"} 5', 'herd_jobs{state="cancelled"} 2',
                 'herd_jobs{state="failed"} 1'):
        expect(line in text, f"/metrics lacks {line}")


def main():
    with HaNodes(INSTANCE, 3) as tn, Workdir(INSTANCE) as tmp:
        ha = Ha(tn, tmp)
        ha.add_pdu()
        ha.set(1, "fence_action=off", "failback_after_s=2")
        ha.ok(1, "user", "add", "aud", "--new-password-file", write(tmp, "aud.pw", AUDITOR_PW))
        ha.ok(1, "group", "add", "auditors", "--roles", "auditor", "--members", "aud")
        ha.define("g1", preferred="n2", extra=["--no-failback"])
        ha.define("d1", preferred="n2", image=guest_image(dirty=True), extra=["--no-failback"])
        ha.ok(1, "vm", "start", "g1")
        ha.ok(1, "vm", "start", "d1")
        ha.wait_counting(["g1", "d1"])
        migration_done(tn, ha)
        migration_cancelled(tn, ha, tmp)
        n2_jobs = disk_and_iso_jobs(tn, ha, tmp)
        source_lost(tn, ha, n2_jobs)
        evacuation(tn, ha)
        bad_input(tn, ha)
        check_expected()
    return 0


if __name__ == "__main__":
    sys.exit(run_test(main, root=True))

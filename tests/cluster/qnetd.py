#!/usr/bin/python3
"""qnetd: the outside host of a testnodes instance that runs corosync-qnetd,
the quorum device's arbiter (`herd cluster qdevice add`).

It lives in the instance's network namespace htn-INSTANCE-qnetd, whose eth0
(10.99.0.251) sits on link 0's bridge next to the nodes, in a mount namespace
of its own: a private /run and, over /etc/corosync/qnetd, the directory
INSTANCE/qnetd/etc (its NSS database, made with corosync-qnetd-certutil -i
as Debian's package does at install).  Its processes, all started by
`testnodes qnetd up` and killed by `qnetd down` or the instance's `down`:

- a holder (`sleep infinity`) that keeps the mount namespace;
- sshd on 10.99.0.251:22 (root logins with the key INSTANCE/qnetd/id_ed25519
  only), as `pvecm qdevice setup` and herd reach a qnetd host;
- corosync-qnetd -f (`qnetd stop` / `qnetd start` stop and start it alone:
  the host stays, qnetd is down).

`qnetd cut I` / `heal I` drop (blackhole routes on both sides) and restore
the traffic between qnetd and node nI: that node no longer reaches qnetd,
the others still do.

testnodes imports this file; it is not run on its own.
"""
import os
import signal
import subprocess
import time

HERE = os.path.dirname(os.path.realpath(__file__))
ADDRESS = "10.99.0.251"        # on link 0, next to the nodes' 10.99.0.I and the PDU's .250
PORT = 5403                    # corosync-qnetd's default


def netns(inst):
    return f"htn-{inst.name}-qnetd"


def qnetd_dir(inst):
    return os.path.join(inst.dir, "qnetd")


def _path(inst, name):
    return os.path.join(qnetd_dir(inst), name)


SSHD_CONFIG = """\
# Written by tests/cluster/testnodes: sshd of instance {name}'s qnetd host.
ListenAddress {address}
HostKey {dir}/ssh_host_ed25519_key
PidFile /run/sshd.pid
AuthorizedKeysFile {dir}/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
"""

# Runs inside the qnetd host's namespaces (unshare -m): its mounts, the
# database, sshd; then it holds the namespace.
HOLDER = """\
set -e
mount --make-rprivate /
mount -t tmpfs -o mode=0755 tmpfs /run
mkdir -p /run/sshd /run/corosync-qnetd
mount --bind "$1/etc" /etc/corosync/qnetd
[ -e /etc/corosync/qnetd/nssdb/qnetd-cacert.crt ] || corosync-qnetd-certutil -i >/dev/null
/usr/sbin/sshd -f "$1/sshd_config" -E "$1/sshd.log"
echo $$ >"$1/holder.pid"
exec sleep infinity
"""


def holder_pid(tn, inst):
    try:
        with open(_path(inst, "holder.pid")) as f:
            pid = int(f.read())
    except (OSError, ValueError):
        return None
    return pid if tn.proc_alive(pid) else None


def _enter(tn, inst):
    pid = holder_pid(tn, inst)
    if pid is None:
        raise tn.Error(f"instance {inst.name!r} has no qnetd host: run `testnodes qnetd up`")
    return ["nsenter", "-t", str(pid), "-m", "-n", "--"]


def _env(tn):
    return {"PATH": tn.SYSTEM_PATH, "LANG": "C.UTF-8", "HOME": "/root"}


def qnetd_pids(tn, inst):
    """PIDs of corosync-qnetd in the qnetd host."""
    try:
        ino = os.stat(f"/run/netns/{netns(inst)}").st_ino
    except OSError:
        return []
    out = []
    for pid in tn.all_pids():
        if tn.netns_inode_of(pid) != ino:
            continue
        try:
            with open(f"/proc/{pid}/comm") as f:
                if f.read().strip() == "corosync-qnetd":
                    out.append(pid)
        except OSError:
            pass
    return out


def up(tn, inst):
    """Make the qnetd host and start corosync-qnetd in it."""
    for tool in ("corosync-qnetd", "corosync-qnetd-certutil", "sshd", "ssh-keygen"):
        path = "/usr/sbin/sshd" if tool == "sshd" else None
        if not (path and os.access(path, os.X_OK)) and not tn.shutil.which(tool, path=tn.SYSTEM_PATH):
            raise tn.Error(f"{tool} is not installed (the qnetd host needs it): run scripts/install-deps")
    inst.meta  # an instance that is up
    if holder_pid(tn, inst):
        raise tn.Error(f"instance {inst.name!r} has a qnetd host already")
    d = qnetd_dir(inst)
    os.makedirs(os.path.join(d, "etc"), exist_ok=True)
    for key in ("ssh_host_ed25519_key", "id_ed25519"):
        if not os.path.exists(os.path.join(d, key)):
            tn.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"herd-testnodes-{key}",
                    "-f", os.path.join(d, key)])
    with open(os.path.join(d, "id_ed25519.pub")) as f:
        tn.write_file(_path(inst, "authorized_keys"), f.read(), 0o600)
    with open(os.path.join(d, "ssh_host_ed25519_key.pub")) as f:
        host_key = " ".join(f.read().split()[:2])
    tn.write_file(_path(inst, "known_hosts"), f"{ADDRESS} {host_key}\n", 0o600)
    tn.write_file(_path(inst, "sshd_config"),
                  SSHD_CONFIG.format(name=inst.name, address=ADDRESS, dir=d), 0o600)

    ns = netns(inst)
    tn.make_netns(ns)
    tn.ip_batch(inst.hub, [f"link add qnetd type veth peer name eth0 netns {ns}",
                           "link set qnetd master br0", "link set qnetd up"])
    tn.ip_batch(ns, [f"addr add {ADDRESS}/24 dev eth0", "link set eth0 up", "link set lo up"])
    try:
        os.unlink(_path(inst, "holder.pid"))
    except FileNotFoundError:
        pass
    with open(_path(inst, "holder.log"), "a") as out:
        # Runs on after testnodes exits; down kills it (it is in the
        # instance's network namespace).
        subprocess.Popen(["nsenter", f"--net=/run/netns/{ns}", "--", "unshare", "-m",
                          "bash", "-c", HOLDER, "qnetd-host", d],
                         stdin=subprocess.DEVNULL, stdout=out, stderr=out, env=_env(tn),
                         start_new_session=True)
    tn.wait_until(lambda: holder_pid(tn, inst), 15,
                  f"the qnetd host did not start (see {_path(inst, 'holder.log')})")
    start(tn, inst)


def start(tn, inst):
    """Start corosync-qnetd in the qnetd host (if it is not running)."""
    if qnetd_pids(tn, inst):
        return
    enter = _enter(tn, inst)
    with open(_path(inst, "qnetd.log"), "a") as out:
        out.write(f"--- start {time.strftime('%F %T')}\n")
        out.flush()
        subprocess.Popen(enter + ["corosync-qnetd", "-f"], stdin=subprocess.DEVNULL,
                         stdout=out, stderr=out, env=_env(tn), start_new_session=True)

    def ready():
        r = subprocess.run(enter + ["corosync-qnetd-tool", "-s"], capture_output=True,
                           env=_env(tn), timeout=10)
        return r.returncode == 0
    tn.wait_until(ready, 15, f"corosync-qnetd did not start (see {_path(inst, 'qnetd.log')})",
                  interval=0.1)


def stop(tn, inst):
    """Stop corosync-qnetd; the host (sshd, addresses) stays."""
    for pid in qnetd_pids(tn, inst):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    tn.wait_until(lambda: not qnetd_pids(tn, inst), 15, "corosync-qnetd did not exit")


def down(tn, inst):
    """Remove the qnetd host (its processes die with its network namespace's)."""
    ns = netns(inst)
    try:
        ino = os.stat(f"/run/netns/{ns}").st_ino
    except OSError:
        return
    for pid in tn.all_pids():
        if tn.netns_inode_of(pid) == ino:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    tn.wait_until(lambda: not any(tn.netns_inode_of(p) == ino for p in tn.all_pids()
                                  if tn.proc_alive(p)), 15, "the qnetd host's processes did not die")
    tn.run(["ip", "netns", "delete", ns], check=False)


def set_reach(tn, inst, i, reach):
    """Node nI reaches qnetd (reach) or not: a blackhole route for its link 0
    address in the qnetd host drops all qnetd sends it."""
    inst.check_node(i)
    verb = "del" if reach else "replace"
    for ns, dst in ((netns(inst), f"10.99.0.{i}/32"), (f"htn-{inst.name}-n{i}", f"{ADDRESS}/32")):
        r = tn.run(["ip", "-n", ns, "route", verb, "blackhole", dst], check=False)
        if r.returncode != 0 and not reach:
            raise tn.Error(f"cannot cut n{i} from qnetd: {r.stderr.strip()}")


def ssh_options(inst):
    """The `herd cluster qdevice add --ssh-option`s that reach the qnetd host."""
    return [f"IdentityFile={_path(inst, 'id_ed25519')}",
            f"UserKnownHostsFile={_path(inst, 'known_hosts')}",
            "StrictHostKeyChecking=yes", "BatchMode=yes"]


def status(tn, inst):
    if not os.path.isdir(qnetd_dir(inst)):
        return None
    return {"address": ADDRESS, "port": PORT, "host": holder_pid(tn, inst) is not None,
            "running": bool(qnetd_pids(tn, inst)), "ssh_options": ssh_options(inst)}

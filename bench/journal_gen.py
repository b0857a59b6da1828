#!/usr/bin/env python3
"""Journal export format for bench/journal.sh: N entries (default 200,000) of a busy node,
in turn sshd (60 %), kubelet (15 %), containerd (15 %), ovs-vswitchd (5 %) and the kernel
(5 %): 80,000 of 200,000 are what `nodedoc check --journal` reads. Written to stdout; pipe it
into systemd-journal-remote."""
import sys

n = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
boot = "5f2c0d6a9b8e4e51a1d2c3b4a5968778"
out = sys.stdout.buffer
t0 = 1796108548000000


def entry(fields):
    out.write("".join(f"{k}={v}\n" for k, v in fields).encode() + b"\n")


for i in range(n):
    r = i % 20
    rt, mono = t0 + i * 1000, 90000000 + i * 1000
    base = [("__REALTIME_TIMESTAMP", rt), ("__MONOTONIC_TIMESTAMP", mono), ("_BOOT_ID", boot),
            ("_HOSTNAME", "node-1")]
    if r < 12:
        entry(base + [("_TRANSPORT", "syslog"), ("PRIORITY", 6), ("SYSLOG_IDENTIFIER", "sshd"),
                      ("_SYSTEMD_UNIT", "ssh.service"), ("_PID", 700 + i % 50),
                      ("MESSAGE", f"Accepted publickey for user{i % 97} from 10.0.{i % 250}.{i % 200} port {30000 + i % 30000} ssh2")])
    elif r < 15:
        entry(base + [("_TRANSPORT", "stdout"), ("PRIORITY", 6), ("SYSLOG_IDENTIFIER", "kubelet"),
                      ("_SYSTEMD_UNIT", "kubelet.service"), ("_PID", 812),
                      ("MESSAGE", f'I1201 07:05:30.123456     812 kubelet.go:{2000 + i % 400}] "SyncLoop (PLEG): event for pod" pod="ns/pod-{i % 300}" event=&{{ID:{i:08x} Type:ContainerStarted}}')])
    elif r < 18:
        entry(base + [("_TRANSPORT", "stdout"), ("PRIORITY", 6), ("SYSLOG_IDENTIFIER", "containerd"),
                      ("_SYSTEMD_UNIT", "containerd.service"), ("_PID", 641),
                      ("MESSAGE", f'time="2026-12-01T07:02:28.566406368Z" level=info msg="StartContainer for \\"{i:064x}\\" returns successfully"')])
    elif r < 19:
        entry(base + [("_TRANSPORT", "syslog"), ("PRIORITY", 6), ("SYSLOG_IDENTIFIER", "ovs-vswitchd"),
                      ("_SYSTEMD_UNIT", "ovs-vswitchd.service"), ("_PID", 1187),
                      ("MESSAGE", f'ovs|{i % 100000:05d}|bridge|INFO|bridge br-int: {"added" if i % 2 else "deleted"} interface tap{i % 500} on port {i % 65000}')])
    else:
        entry(base + [("_TRANSPORT", "kernel"), ("PRIORITY", 6), ("SYSLOG_FACILITY", 0),
                      ("SYSLOG_IDENTIFIER", "kernel"), ("_SOURCE_MONOTONIC_TIMESTAMP", mono - 10),
                      ("MESSAGE", f"IPv6: ADDRCONF(NETDEV_CHANGE): veth{i % 1000}: link becomes ready")])

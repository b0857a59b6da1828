//! Writes a synthetic syslog for the user-rules benchmark (bench/rules.sh): kernel, systemd,
//! kubelet, containerd, dockerd, ovs-vswitchd, sshd and cron lines as they appear on a
//! Kubernetes or OpenStack node, with near misses for the patterns (`EXT4-fs (vda1): mounted`,
//! `XFS (sdb1): Mounting`, `task` and `blocked` in other lines), and a given share of lines
//! that match one of the benchmark's rules.
//!
//!     gen_syslog OUT MEGABYTES MATCHES_PER_MILLION
//!
//! The output is reproducible (fixed seed); the number of lines written to match is printed.

use std::fs::File;
use std::io::{BufWriter, Write};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [out, megabytes, per_million] = &args[..] else {
        eprintln!("usage: gen_syslog OUT MEGABYTES MATCHES_PER_MILLION");
        std::process::exit(2);
    };
    let target: u64 = megabytes.parse::<u64>().expect("MEGABYTES") * 1_000_000;
    let per_million: u32 = per_million.parse().expect("MATCHES_PER_MILLION");
    let mut w = BufWriter::with_capacity(1 << 20, File::create(out).expect("create OUT"));
    let mut rng = fastrand::Rng::with_seed(2026);
    let (mut written, mut lines, mut matching) = (0u64, 0u64, 0u64);
    let mut line = String::with_capacity(512);
    let mut uptime = 1000.0f64;
    let mut clock = 0u32; // seconds into the day
    while written < target {
        line.clear();
        uptime += rng.f64() * 0.01;
        clock = (clock + u32::from(rng.u8(..3) == 0)) % 86_400;
        let (h, m, s) = (clock / 3600, clock / 60 % 60, clock % 60);
        let stamp = format!("Nov 25 {h:02}:{m:02}:{s:02} node-17 ");
        line.push_str(&stamp);
        if rng.u32(..1_000_000) < per_million {
            matching_line(&mut rng, &mut line, uptime);
            matching += 1;
        } else {
            ordinary_line(&mut rng, &mut line, uptime);
        }
        line.push('\n');
        w.write_all(line.as_bytes()).expect("write");
        written += line.len() as u64;
        lines += 1;
    }
    w.flush().expect("write");
    println!("{written} bytes, {lines} lines, {matching} matching");
}

fn hex(rng: &mut fastrand::Rng, n: usize) -> String {
    (0..n)
        .map(|_| char::from(b"0123456789abcdef"[rng.usize(..16)]))
        .collect()
}

const COMMS: &[&str] = &[
    "java",
    "python3",
    "nginx",
    "etcd",
    "containerd-shim",
    "ovs-vswitchd",
    "kubelet",
    "runc",
    "qemu-kvm",
    "postgres",
];

/// A line that one of the benchmark's patterns matches.
fn matching_line(rng: &mut fastrand::Rng, line: &mut String, uptime: f64) {
    let comm = COMMS[rng.usize(..COMMS.len())];
    let pid = rng.u32(100..4_000_000);
    let text = match rng.u8(..8) {
        0 => format!(
            "kernel: [{uptime:.6}] INFO: task {comm}:{pid} blocked for more than {} seconds.",
            [120, 240, 360][rng.usize(..3)]
        ),
        1 => format!(
            "kernel: [{uptime:.6}] unregister_netdevice: waiting for veth{} to become free. Usage count = {}",
            hex(rng, 7),
            rng.u8(1..5)
        ),
        2 => format!(
            "kernel: [{uptime:.6}] Out of memory: Killed process {pid} ({comm}) total-vm:{}kB, anon-rss:{}kB, file-rss:0kB, shmem-rss:0kB, UID:0 pgtables:{}kB oom_score_adj:{}",
            rng.u32(1000..9_000_000),
            rng.u32(1000..8_000_000),
            rng.u32(100..20_000),
            rng.i32(-999..1000)
        ),
        3 => format!(
            "kernel: [{uptime:.6}] EXT4-fs error (device vda{}): ext4_find_entry:1455: inode #{}: comm {comm}: reading directory lblock 0",
            rng.u8(1..4),
            rng.u32(2..1_000_000)
        ),
        4 => format!(
            "kernel: [{uptime:.6}] Buffer I/O error on dev sdb{}, logical block {}, async page read",
            rng.u8(1..4),
            rng.u32(..100_000_000)
        ),
        5 => format!(
            "kernel: [{uptime:.6}] XFS (sdc{}): Corruption of in-memory data detected.  Shutting down filesystem",
            rng.u8(1..4)
        ),
        6 => format!("kernel: [{uptime:.6}] nf_conntrack: nf_conntrack: table full, dropping packet"),
        _ => format!(
            "kernel: [{uptime:.6}] EXT4-fs (vda{}): Remounting filesystem read-only",
            rng.u8(1..4)
        ),
    };
    line.push_str(&text);
}

/// A line none of the benchmark's patterns matches (some come close).
fn ordinary_line(rng: &mut fastrand::Rng, line: &mut String, uptime: f64) {
    let pid = rng.u32(100..4_000_000);
    let id = hex(rng, 12);
    let text = match rng.u8(..20) {
        0 => format!("kernel: [{uptime:.6}] IPv6: ADDRCONF(NETDEV_CHANGE): veth{}: link becomes ready", hex(rng, 7)),
        1 => format!("kernel: [{uptime:.6}] br-int: port {}(tap{}-aa) entered forwarding state", rng.u8(1..200), hex(rng, 8)),
        2 => format!("kernel: [{uptime:.6}] EXT4-fs (vda{}): mounted filesystem with ordered data mode. Quota mode: none.", rng.u8(1..4)),
        3 => format!("kernel: [{uptime:.6}] XFS (sdc{}): Mounting V5 Filesystem {}", rng.u8(1..4), hex(rng, 8)),
        4 => format!("kernel: [{uptime:.6}] audit: type=1400 audit({uptime:.3}:{}): apparmor=\"DENIED\" operation=\"open\" profile=\"cri-containerd.apparmor.d\" name=\"/proc/{pid}/task/\" pid={pid} comm=\"runc\" requested_mask=\"r\" denied_mask=\"r\"", rng.u32(..100_000)),
        5 => format!("systemd[1]: run-containerd-runc-k8s.io-{id}{}-runc.{}.mount: Deactivated successfully.", hex(rng, 52), hex(rng, 6)),
        6 => format!("systemd[1]: Started Session {} of user root.", rng.u32(..100_000)),
        7 => format!("kubelet[{pid}]: I1125 12:55:{:02}.{:06}    {pid} kubelet_pods.go:1082] \"Clean up pod workers for terminated pods\"", rng.u8(..60), rng.u32(..1_000_000)),
        8 => format!("kubelet[{pid}]: E1125 12:55:{:02}.{:06}    {pid} pod_workers.go:965] \"Error syncing pod, skipping\" err=\"failed to \\\"StartContainer\\\" for \\\"app\\\" with CrashLoopBackOff: \\\"back-off 5m0s restarting failed container=app pod=web-{id}_default\\\"\" pod=\"default/web-{id}\"", rng.u8(..60), rng.u32(..1_000_000)),
        9 => format!("kubelet[{pid}]: I1125 12:55:{:02}.{:06}    {pid} reconciler_common.go:300] \"Volume detached for volume \\\"kube-api-access-{}\\\"\" DevicePath=\"\"", rng.u8(..60), rng.u32(..1_000_000), hex(rng, 5)),
        10 => format!("containerd[{pid}]: time=\"2026-11-25T12:55:01.{:09}Z\" level=info msg=\"shim disconnected\" id={id}{} namespace=k8s.io", rng.u32(..1_000_000_000), hex(rng, 52)),
        11 => format!("containerd[{pid}]: time=\"2026-11-25T12:55:01.{:09}Z\" level=info msg=\"TaskExit event in podsandbox handler container_id:\\\"{id}\\\" id:\\\"{id}\\\" pid:{pid} exit_status:137\"", rng.u32(..1_000_000_000)),
        12 => format!("containerd[{pid}]: time=\"2026-11-25T12:55:01.{:09}Z\" level=info msg=\"StartContainer for \\\"{id}\\\" returns successfully\"", rng.u32(..1_000_000_000)),
        13 => format!("dockerd[{pid}]: time=\"2026-11-25T12:55:01.{:09}Z\" level=warning msg=\"Health check for container {id} error: context deadline exceeded: task blocked\"", rng.u32(..1_000_000_000)),
        14 => format!("ovs-vswitchd[{pid}]: ovs|{:05}|bridge|INFO|bridge br-int: added interface tap{}-aa on port {}", rng.u32(..100_000), hex(rng, 8), rng.u16(..5000)),
        15 => format!("ovs-vswitchd[{pid}]: ovs|{:05}|bridge|INFO|bridge br-int: deleted interface tap{}-aa on port {}", rng.u32(..100_000), hex(rng, 8), rng.u16(..5000)),
        16 => format!("sshd[{pid}]: Accepted publickey for ops from 192.0.2.{} port {} ssh2: ED25519 SHA256:{}", rng.u8(1..255), rng.u16(1024..), hex(rng, 43)),
        17 => format!("CRON[{pid}]: (root) CMD (/usr/local/bin/rotate-backups.sh > /dev/null 2>&1)"),
        18 => format!("kernel: [{uptime:.6}] oom_reaper: reaped process {pid} (java), now anon-rss:0kB, file-rss:0kB, shmem-rss:0kB"),
        _ => format!("NetworkManager[{pid}]: <info>  [{uptime:.4}] device (veth{}): carrier: link connected", hex(rng, 7)),
    };
    line.push_str(&text);
}

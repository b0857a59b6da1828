//! Reads the entries `nodedoc check --journal` asks journalctl for (the kernel's, kubelet's,
//! containerd's, dockerd's, ovs-vswitchd's) and the same fields, with the pure-Rust sdjournal
//! crate; prints how many and how long. `NOFILTER=1`: every entry.
use std::time::Instant;

fn main() {
    let dir = std::env::args().nth(1).expect("journal dir");
    let started = Instant::now();
    let journal = sdjournal::Journal::open_dir(&dir).expect("open");
    let mut q = journal.query();
    if std::env::var("NOFILTER").is_err() {
        // In sdjournal 0.1.15 the terms of one group are all required (one branch); the
        // groups are alternatives: one group per term gives journalctl's `A + B + C`.
        let terms = [
            ("_TRANSPORT", "kernel"),
            ("_SYSTEMD_UNIT", "kubelet.service"),
            ("_SYSTEMD_UNIT", "containerd.service"),
            ("_SYSTEMD_UNIT", "docker.service"),
            ("_SYSTEMD_UNIT", "ovs-vswitchd.service"),
            ("SYSLOG_IDENTIFIER", "kubelet"),
            ("SYSLOG_IDENTIFIER", "containerd"),
            ("SYSLOG_IDENTIFIER", "dockerd"),
            ("SYSLOG_IDENTIFIER", "ovs-vswitchd"),
        ];
        for (f, v) in terms {
            q.or_group(|g| { g.match_exact(f, v.as_bytes()); });
        }
    }
    let (mut n, mut bytes) = (0u64, 0u64);
    for entry in q.iter().expect("query") {
        let entry = entry.expect("entry");
        for f in ["MESSAGE", "PRIORITY", "_SYSTEMD_UNIT", "SYSLOG_IDENTIFIER", "_TRANSPORT", "_PID", "_SOURCE_MONOTONIC_TIMESTAMP"] {
            if let Some(v) = entry.get(f) {
                bytes += v.len() as u64;
            }
        }
        bytes += entry.realtime_usec() % 2;
        n += 1;
    }
    eprintln!("sdjournal: {n} entries, {bytes} bytes of fields, {:.1} ms", started.elapsed().as_secs_f64() * 1000.0);
}

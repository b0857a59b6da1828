use nodedoc_model::HostInfo;

/// `CLOCK_MONOTONIC` in microseconds: the clock of kernel log timestamps.
pub fn monotonic_us() -> u64 {
    let ts = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    (ts.tv_sec as u64) * 1_000_000 + (ts.tv_nsec as u64) / 1_000
}

/// Facts about this machine now. Never fails: what cannot be read stays empty.
pub fn host_info() -> HostInfo {
    let uname = rustix::system::uname();
    let text = |c: &std::ffi::CStr| c.to_string_lossy().into_owned();
    let boot_time_unix = std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("btime ").and_then(|v| v.trim().parse().ok()))
        })
        .unwrap_or(0);
    HostInfo {
        hostname: text(uname.nodename()),
        kernel_release: text(uname.release()),
        kernel_version: text(uname.version()),
        machine: text(uname.machine()),
        collected_at_unix: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
        uptime_us: monotonic_us(),
        boot_time_unix,
        clock_ticks_per_sec: rustix::param::clock_ticks_per_second(),
        online_cpus: std::thread::available_parallelism()
            .map(|n| n.get() as u32)
            .unwrap_or(1),
        collector_version: env!("CARGO_PKG_VERSION").to_string(),
    }
}

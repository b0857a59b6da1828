//! `cargo run -p nodedoc-perf --example profile -- PID [WINDOW_MS] [--no-perf]`: samples one
//! process and prints its profile as JSON (what `nodedoc collect` puts in `cpu_profiles`).

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let pid: i32 = args
        .first()
        .and_then(|a| a.parse().ok())
        .expect("usage: profile PID [WINDOW_MS] [--no-perf]");
    let window = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(200);
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("no such process");
    let close = stat.rfind(')').expect("stat");
    let start: u64 = stat[close + 2..]
        .split(' ')
        .nth(19)
        .and_then(|s| s.parse().ok())
        .expect("start time");
    let comm = stat[stat.find('(').expect("stat") + 1..close].to_string();
    let options = nodedoc_perf::ProfileOptions {
        window: std::time::Duration::from_millis(window),
        perf: !args.iter().any(|a| a == "--no-perf"),
        ..Default::default()
    };
    let mut profiler = nodedoc_perf::Profiler::new();
    let out = profiler.profile(
        &[nodedoc_perf::Target {
            pid,
            start_time_ticks: start,
            comm,
        }],
        &options,
    );
    if let Some((symbols, bytes)) = profiler.symbol_table() {
        eprintln!(
            "kallsyms: {symbols} text symbols kept in {} KiB",
            bytes / 1024
        );
    }
    for gap in &out.gaps {
        eprintln!("gap: {}: {}", gap.what, gap.reason);
    }
    println!(
        "{}",
        serde_json::to_string_pretty(&out.profiles).expect("json")
    );
}

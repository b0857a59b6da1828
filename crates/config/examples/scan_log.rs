//! Matches the user rules of a configuration file against a log file, as `nodedoc watch`
//! will on the logs it follows: the benchmark's nodedoc side (bench/rules.sh), and a way to
//! try rules on a saved log.
//!
//!     scan_log CONFIG FILE            # prints the number of matching lines, like grep -c
//!     scan_log CONFIG FILE --events   # prints one JSON event per match
//!
//! The rules are those of the `[[log]]` tables of CONFIG whose `path`/`paths` name FILE.
//! Counts and throughput go to standard error.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use nodedoc_config::{Config, LogSource};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let events = args.iter().any(|a| a == "--events");
    let paths: Vec<&String> = args.iter().filter(|a| *a != "--events").collect();
    let [config, file] = paths[..] else {
        eprintln!("usage: scan_log CONFIG FILE [--events]");
        return ExitCode::from(2);
    };
    let known: Vec<&str> = nodedoc_detectors::detectors()
        .iter()
        .map(|d| d.id())
        .collect();
    let config = match Config::load(Path::new(config), &known) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let source = LogSource::File(PathBuf::from(file));
    let sets: Vec<_> = config.rules_for(&source).collect();
    if sets.is_empty() {
        eprintln!("no [[log]] of the configuration names {file}");
        return ExitCode::from(2);
    }
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut matched = 0;
    for rules in sets {
        let started = Instant::now();
        let input = match File::open(file) {
            Ok(f) => f,
            Err(e) => {
                eprintln!("{file}: {e}");
                return ExitCode::from(2);
            }
        };
        let stats = rules.scan_reader(input, |m| {
            if events {
                let event = m.to_event(file);
                serde_json::to_writer(&mut out, &event).expect("stdout");
                out.write_all(b"\n").expect("stdout");
            }
        });
        let stats = match stats {
            Ok(stats) => stats,
            Err(e) => {
                eprintln!("{file}: {e}");
                return ExitCode::from(2);
            }
        };
        let secs = started.elapsed().as_secs_f64();
        eprintln!(
            "{} bytes, {} lines, {} matching, {} truncated in {:.3} s ({:.0} MB/s)",
            stats.bytes,
            stats.lines,
            stats.matched_lines,
            stats.truncated_lines,
            secs,
            stats.bytes as f64 / secs / 1e6
        );
        for (rule, count) in rules.rules().iter().zip(&stats.matches) {
            eprintln!("  {:<28} {count}", rule.id());
        }
        matched += stats.matched_lines;
    }
    if !events {
        writeln!(out, "{matched}").expect("stdout");
    }
    ExitCode::SUCCESS
}

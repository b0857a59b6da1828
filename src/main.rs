//! `nodedoc`: finds the root cause of Linux node failures.
//!
//! The binary wires the pipeline together — collect (live or from a file) → snapshot →
//! detect → report — and the labs. The work itself lives in the library crates under
//! `crates/`.

mod cli;
mod explain;
mod fds;
mod fix;
mod kube;
mod lab;
mod ovs;
mod probe;
mod report;
mod settings;
mod watch;

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use clap::Parser;
use nodedoc_collect::Collector;
use nodedoc_model::text::Escaped;
use nodedoc_model::{Report, Severity, Snapshot};

use cli::{CheckArgs, Cli, ColorWhen, Command, Format};

/// Exit codes; see `nodedoc --help`.
pub mod exit {
    /// No warning or critical finding.
    pub const OK: u8 = 0;
    /// The worst finding is a warning.
    pub const WARNING: u8 = 1;
    /// The worst finding is critical.
    pub const CRITICAL: u8 = 2;
    /// nodedoc itself failed.
    pub const FAILURE: u8 = 3;
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() {
                exit::FAILURE
            } else {
                exit::OK
            });
        }
    };
    match cli.color {
        ColorWhen::Auto => {}
        ColorWhen::Always => anstream::ColorChoice::Always.write_global(),
        ColorWhen::Never => anstream::ColorChoice::Never.write_global(),
    }
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            let mut err = anstream::stderr();
            let red = anstyle::AnsiColor::Red.on_default().bold();
            // The chain can carry names and paths planted by anyone (a process name, a device,
            // a file name): shown escaped, on one line.
            let text = format!("{e:#}");
            let _ = writeln!(err, "{red}nodedoc: error:{red:#} {}", Escaped(&text));
            ExitCode::from(exit::FAILURE)
        }
    }
}

fn run(cli: Cli) -> Result<u8> {
    match cli.command {
        Command::Check(args) => check(&args),
        Command::Collect(args) => {
            let progress = Progress::new();
            let mut snapshot = Collector::new(args.collection.options()).snapshot(&progress)?;
            args.collection.kube.add_live(&mut snapshot, &progress)?;
            progress.done();
            if args.output.as_os_str() == "-" {
                let mut out = std::io::stdout().lock();
                nodedoc_model::text::write_json(&mut out, &snapshot)?;
                writeln!(out)?;
            } else {
                nodedoc_model::write_snapshot(&args.output, &snapshot)?;
                let shown = args.output.to_string_lossy();
                let analyse = match args.output.to_str() {
                    // A backquote would end the command early in this line.
                    Some(path) if !path.contains('`') => {
                        match nodedoc_model::shell_command!("nodedoc check --from {}", path) {
                            Ok(command) => format!("analyse it with `{command}`"),
                            Err(_) => "analyse it with `nodedoc check --from FILE`".to_string(),
                        }
                    }
                    _ => "analyse it with `nodedoc check --from FILE`".to_string(),
                };
                eprintln!(
                    "nodedoc: wrote {} ({} processes); {analyse}",
                    Escaped(&shown),
                    snapshot.processes.len(),
                );
            }
            Ok(exit::OK)
        }
        Command::Watch(args) => watch::watch(&args),
        Command::Explain { id } => explain::explain(id.as_deref()),
        Command::Fds(args) => fds::fds(&args),
        Command::Probe(cli::ProbeCommand::Cni {
            dirs,
            timeout,
            format,
        }) => probe::cni(&dirs, timeout, format),
        Command::Ovs(args) => match args.action {
            cli::OvsAction::Ports { format, source } => ovs::ports(&source, format),
        },
        Command::Fix(args) => fix::fix(args.action),
        Command::Lab(args) => lab::lab(args.action),
        Command::LabHelper { args } => match nodedoc_lab::run_helper(&args) {
            Ok(()) => Ok(exit::OK),
            Err(e) => {
                // The lab reads this line in place of `ready` (a helper's stderr goes nowhere).
                println!("error: {}", Escaped(&e.to_string()));
                Ok(exit::FAILURE)
            }
        },
    }
}

/// `nodedoc check`.
fn check(args: &CheckArgs) -> Result<u8> {
    let settings = args.thresholds.settings()?;
    let kube = &args.collection.kube;
    let (snapshot, origin) = match &args.from {
        Some(path) => {
            let mut snapshot = nodedoc_model::read_snapshot(path)?;
            kube.add_files(&mut snapshot)?;
            (snapshot, format!("file:{}", path.display()))
        }
        None if args.offline => (kube::offline_snapshot(kube)?, "offline".to_string()),
        None => {
            let progress = Progress::new();
            let mut options = args.collection.options();
            options.log_rules = settings.log_rules.clone();
            let mut snapshot = Collector::new(options).snapshot(&progress)?;
            kube.add_live(&mut snapshot, &progress)?;
            progress.done();
            (snapshot, "live".to_string())
        }
    };
    let report = analyse(&snapshot, origin, &settings);
    print_report(
        &report,
        args.format,
        report::TextOptions {
            verbose: args.verbose,
            limit: (args.limit > 0).then_some(args.limit),
        },
    )?;
    Ok(exit_code(&report))
}

/// Runs every detector the settings leave on over a snapshot.
pub fn analyse(snapshot: &Snapshot, origin: String, settings: &settings::Settings) -> Report {
    let findings =
        nodedoc_detectors::run_with(snapshot, &settings.detectors, &|id| settings.enabled(id));
    Report::new(
        snapshot.host.clone(),
        origin,
        snapshot.sources.clone(),
        snapshot.gaps.clone(),
        findings,
    )
}

/// Prints a report to standard output.
pub fn print_report(report: &Report, format: Format, options: report::TextOptions) -> Result<()> {
    let mut out = anstream::stdout().lock();
    match format {
        Format::Json => report::write_json(&mut out, report),
        Format::Text => report::write_text(&mut out, report, options),
    }
    .context("cannot write the report")
}

/// The exit code of a report.
pub fn exit_code(report: &Report) -> u8 {
    match report.summary.worst {
        Some(Severity::Critical) => exit::CRITICAL,
        Some(Severity::Warning) => exit::WARNING,
        _ => exit::OK,
    }
}

impl nodedoc_collect::Progress for Progress {
    fn step(&self, what: &str) {
        Progress::step(self, what);
    }
}

/// Progress lines on standard error, only when it is a terminal (so pipes and logs stay
/// clean).
pub struct Progress {
    enabled: bool,
}

impl Default for Progress {
    fn default() -> Self {
        Progress::new()
    }
}

impl Progress {
    /// Progress for this process's standard error.
    pub fn new() -> Progress {
        Progress {
            enabled: std::io::stderr().is_terminal(),
        }
    }

    /// Shows the current step, replacing the previous one.
    pub fn step(&self, what: &str) {
        if self.enabled {
            eprint!("\r\x1b[2Knodedoc: {}…", Escaped(what));
        }
    }

    /// Clears the progress line.
    pub fn done(&self) {
        if self.enabled {
            eprint!("\r\x1b[2K");
        }
    }
}

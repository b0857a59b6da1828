//! `nodedoc`: finds the root cause of Linux node failures.
//!
//! The binary wires the pipeline together — collect (live or from a file) → snapshot →
//! detect → report — and the labs. The work itself lives in the library crates under
//! `crates/`.

mod cli;
mod cri;
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
use nodedoc_model::{Report, Severity, Snapshot, SourceState};

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
            print_error(&format!("{e:#}"));
            ExitCode::from(exit::FAILURE)
        }
    }
}

/// `nodedoc: error: MESSAGE` on standard error. The message can carry names and paths planted
/// by anyone (a process name, a device, a file name): shown escaped, on one line.
pub fn print_error(message: &str) {
    let mut err = anstream::stderr();
    let red = anstyle::AnsiColor::Red.on_default().bold();
    let _ = writeln!(err, "{red}nodedoc: error:{red:#} {}", Escaped(message));
}

/// The inputs named on the command line (`--ovsdb`, `--ovs-log`) that could not be used, one
/// message each.
///
/// Naming an input asks for it: when it cannot be read, the run did not do what was asked,
/// and saying nothing would pass an unread source off as a clean one (`check --ovsdb` with a
/// typo used to exit 0, "no problems"). So it is a failure of nodedoc (exit 3). `check` and
/// `collect` still print or save what they did read first — on a sick node a full scan is
/// not to be thrown away, and the failed source is named in it — then fail.
pub fn unusable_named_inputs(ovs: &cli::OvsSourceArgs, snapshot: &Snapshot) -> Vec<String> {
    let read = |name| {
        snapshot
            .source(name)
            .is_some_and(|s| matches!(s.state, SourceState::Collected | SourceState::Partial))
    };
    let detail = |name| snapshot.source(name).map(|s| s.detail.as_str());
    let mut problems = Vec::new();
    if let Some(endpoint) = &ovs.ovsdb {
        if !read("ovsdb") {
            let why = detail("ovsdb").unwrap_or("not read");
            problems.push(format!("--ovsdb {endpoint} could not be read: {why}"));
        }
    }
    if let Some(path) = &ovs.ovs_log {
        if !read("ovs-log") {
            let why = match detail("ovs-log") {
                Some(why) => why.to_string(),
                None => format!(
                    "it is read with its OVSDB, which was not: {}",
                    detail("ovsdb").unwrap_or("not read")
                ),
            };
            problems.push(format!(
                "--ovs-log {} could not be read: {why}",
                path.display()
            ));
        }
    }
    problems
}

/// The files named on the command line (`--kernel-log`) that could not be used, one
/// message each (see [`unusable_named_inputs`]).
pub fn unusable_named_files(files: &cli::FileInputArgs, snapshot: &Snapshot) -> Vec<String> {
    let mut problems = Vec::new();
    if let Some(path) = &files.kernel_log {
        let status = snapshot.source("kernel-log");
        if !status.is_some_and(|s| matches!(s.state, SourceState::Collected | SourceState::Partial))
        {
            problems.push(format!(
                "--kernel-log {} could not be read: {}",
                path.display(),
                status.map_or("not read", |s| s.detail.as_str())
            ));
        }
    }
    for path in &files.logs {
        // A service log, or one in ovs-vswitchd's format read as its log.
        if let Some(why) = unusable_named_path(snapshot, &["service-log", "ovs-log"], path) {
            problems.push(format!("--log {} could not be read: {why}", path.display()));
        }
    }
    for path in &files.journal {
        if let Some(why) = unusable_named_path(snapshot, &["journal"], path) {
            problems.push(format!(
                "--journal {} could not be read: {why}",
                path.display()
            ));
        }
    }
    problems
}

/// Why the file at `path` was not read, when none of the statuses of `sources` whose detail
/// starts with `PATH (` (one per file named) says it was.
fn unusable_named_path(
    snapshot: &Snapshot,
    sources: &[&str],
    path: &std::path::Path,
) -> Option<String> {
    let start = format!("{} (", path.display());
    let statuses: Vec<&nodedoc_model::SourceStatus> = snapshot
        .sources
        .iter()
        .filter(|s| sources.contains(&s.source.as_str()) && s.detail.starts_with(&start))
        .collect();
    if statuses
        .iter()
        .any(|s| matches!(s.state, SourceState::Collected | SourceState::Partial))
    {
        return None;
    }
    Some(statuses.first().map_or("not read".to_string(), |s| {
        // `PATH (FLAG…): WHY`
        s.detail
            .split_once("): ")
            .map_or(s.detail.as_str(), |(_, why)| why)
            .to_string()
    }))
}

/// Prints each unusable named input as an error; the exit code to return when there was one.
pub fn fail_on_unusable(problems: &[String]) -> Option<u8> {
    for problem in problems {
        print_error(problem);
    }
    (!problems.is_empty()).then_some(exit::FAILURE)
}

fn run(cli: Cli) -> Result<u8> {
    match cli.command {
        Command::Check(args) => check(&args),
        Command::Collect(args) => {
            let progress = Progress::new();
            let mut snapshot = Collector::new(args.collection.options()).snapshot(&progress)?;
            let cri_socket = args.collection.sources.cri_socket.as_deref();
            cri::name_containers(&mut snapshot, cri_socket);
            args.collection.kube.add_live(&mut snapshot, &progress)?;
            progress.done();
            let mut unusable = unusable_named_inputs(&args.collection.sources.ovs, &snapshot);
            unusable.extend(unusable_named_files(&args.collection.files, &snapshot));
            unusable.extend(cri::unusable(cri_socket, &snapshot));
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
            Ok(fail_on_unusable(&unusable).unwrap_or(exit::OK))
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
            cli::OvsAction::Ports {
                format,
                watch: false,
                source,
            } => ovs::ports(&source, format),
            cli::OvsAction::Ports {
                format,
                watch: true,
                source,
            } => ovs::watch_ports(&source, format),
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
    let files = &args.collection.files;
    let ovs = &args.collection.sources.ovs;
    // A saved snapshot, a bundle or only Kubernetes objects, with the files named beside it
    // in place of what it holds of their kind (and the --kube-objects files added, which
    // kube::offline_snapshot has read already).
    let offline = |mut snapshot: Snapshot,
                   origin: String,
                   add_kube_files: bool|
     -> Result<(Snapshot, String, Vec<String>)> {
        if add_kube_files {
            kube.add_files(&mut snapshot)?;
        }
        // --ovs-log first, as on a live check (OVS is read before the files): the journal's
        // ovs-vswitchd entries then give way to it.
        if let Some(ovs_log) = &ovs.ovs_log {
            nodedoc_collect::files::apply_ovs_log(ovs_log, "--ovs-log", &mut snapshot);
        }
        nodedoc_collect::files::apply(&files.inputs(), &mut snapshot);
        let mut unusable = unusable_named_inputs(ovs, &snapshot);
        unusable.extend(unusable_named_files(files, &snapshot));
        Ok((snapshot, origin, unusable))
    };
    let (snapshot, origin, unusable) = match (&args.from, &args.sos) {
        (Some(path), _) => offline(
            nodedoc_model::read_snapshot(path)?,
            format!("file:{}", path.display()),
            true,
        )?,
        (None, _) if args.offline => {
            offline(kube::offline_snapshot(kube)?, "offline".to_string(), false)?
        }
        (None, Some(path)) => {
            let progress = Progress::new();
            progress.step("reading the sosreport");
            let snapshot = nodedoc_sos::read_sosreport(path, nodedoc_sos::Limits::default());
            progress.done();
            offline(snapshot?, format!("sos:{}", path.display()), true)?
        }
        (None, None) => {
            let progress = Progress::new();
            let mut options = args.collection.options();
            options.log_rules = settings.log_rules.clone();
            // The collector samples the processes cpu-hog would report.
            options.cpu_hog.threshold = settings.detectors.cpu_hog_share;
            let mut snapshot = Collector::new(options).snapshot(&progress)?;
            let cri_socket = args.collection.sources.cri_socket.as_deref();
            cri::name_containers(&mut snapshot, cri_socket);
            kube.add_live(&mut snapshot, &progress)?;
            progress.done();
            let mut unusable = unusable_named_inputs(&args.collection.sources.ovs, &snapshot);
            unusable.extend(unusable_named_files(files, &snapshot));
            unusable.extend(cri::unusable(cri_socket, &snapshot));
            (snapshot, "live".to_string(), unusable)
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
    Ok(fail_on_unusable(&unusable).unwrap_or_else(|| exit_code(&report)))
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

//! `nodedoc lab`: reproduce a seed incident in a sandbox and show that `check` finds it.

use std::io::Write;
use std::sync::{Arc, Mutex};

use anstyle::{AnsiColor, Style};
use anyhow::{Context as _, Result};
use nodedoc_lab::{Expectation, Instance, LabContext, LabGuard};
use nodedoc_model::text::{write_json_pretty, Escaped};
use nodedoc_model::Report;

use crate::cli::{Format, LabAction};

const BOLD: Style = Style::new().bold();

fn context() -> Result<LabContext> {
    let exe =
        std::env::current_exe().context("cannot find the nodedoc binary to run lab helpers")?;
    Ok(LabContext::new(exe))
}

/// Runs one `lab` action.
pub fn lab(action: LabAction) -> Result<u8> {
    match action {
        LabAction::List => {
            let mut out = anstream::stdout().lock();
            for s in nodedoc_lab::scenarios() {
                writeln!(out, "{BOLD}{:<20}{BOLD:#} {}", s.name, Escaped(s.summary))?;
                writeln!(out, "{:<20} seed {}", "", Escaped(s.seed))?;
            }
            Ok(crate::exit::OK)
        }
        LabAction::Start { scenario, format } => {
            let guard = nodedoc_lab::start(&scenario, &context()?)?;
            let instance = guard.persist()?;
            match format {
                Format::Json => {
                    let mut out = std::io::stdout().lock();
                    write_json_pretty(&mut out, &instance)?;
                    writeln!(out)?;
                }
                Format::Text => {
                    // Facts name processes, devices and paths: shown escaped.
                    println!("started {}", Escaped(&instance.id));
                    for (key, value) in &instance.facts {
                        println!("  {}: {}", Escaped(key), Escaped(value));
                    }
                    match nodedoc_model::shell_command!("nodedoc lab stop {}", instance.id) {
                        Ok(command) => println!("stop it with: {command}"),
                        Err(why) => println!("stop it with `nodedoc lab stop` and its id ({why})"),
                    }
                }
            }
            Ok(crate::exit::OK)
        }
        LabAction::Stop { scenario } => {
            let stopped = nodedoc_lab::stop_saved(&scenario)?;
            if stopped.is_empty() {
                eprintln!("nodedoc: no running lab named \"{}\"", Escaped(&scenario));
            }
            for id in stopped {
                println!("stopped {}", Escaped(&id));
            }
            Ok(crate::exit::OK)
        }
        LabAction::Run { scenario, format } => run(&scenario, format),
    }
}

/// Start, check, verify, stop — with teardown on Ctrl-C and SIGTERM too.
fn run(scenario: &str, format: Format) -> Result<u8> {
    let progress = crate::Progress::new();
    progress.step(&format!("starting lab {scenario}"));
    let guard = nodedoc_lab::start(scenario, &context()?)?;
    // The signal handler runs on its own thread: it needs the instance to tear it down.
    let shared: Arc<Mutex<Option<LabGuard>>> = Arc::new(Mutex::new(Some(guard)));
    let for_signal = shared.clone();
    ctrlc::set_handler(move || {
        if let Some(guard) = for_signal.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = guard.stop();
        }
        std::process::exit(130);
    })
    .context("cannot install the signal handler that cleans up the lab")?;

    let instance: Instance = shared
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
        .map(|g| g.instance().clone())
        .context("lab stopped before it ran")?;
    // A lab with its own Open vSwitch says where it is; CPU shares need a longer second
    // reading than process states do.
    let ovs = nodedoc_collect::OvsSource {
        endpoint: instance.fact("ovsdb").map(str::to_string),
        log: instance.fact("ovs_log").map(std::path::PathBuf::from),
    };
    let interval = if ovs.endpoint.is_some() { 1000 } else { 300 };
    let options = nodedoc_collect::CollectOptions {
        interval: std::time::Duration::from_millis(interval),
        ovs,
        ..nodedoc_collect::CollectOptions::default()
    };
    if let Some(scenario) = nodedoc_lab::scenario(scenario).filter(|s| s.settle_secs > 0) {
        // Some faults only count after a while (a CNI plugin is hung after 10 s).
        for left in (1..=scenario.settle_secs).rev() {
            progress.step(&format!("letting the fault settle: checking in {left} s"));
            std::thread::sleep(std::time::Duration::from_secs(1));
        }
    }
    let result = nodedoc_collect::Collector::new(options).snapshot(&progress);
    progress.done();
    let stop = || -> Result<()> {
        if let Some(guard) = shared.lock().unwrap_or_else(|e| e.into_inner()).take() {
            guard.stop()?;
        }
        Ok(())
    };
    let snapshot = match result {
        Ok(snapshot) => snapshot,
        Err(e) => {
            stop()?;
            return Err(e.into());
        }
    };
    let report = crate::analyse(
        &snapshot,
        format!("live, lab {}", instance.id),
        &crate::settings::Settings::default(),
    );
    crate::print_report(&report, format, crate::report::TextOptions::default())?;
    stop()?;

    let mut err = anstream::stderr().lock();
    let mut all_found = true;
    for expectation in &instance.expect {
        let found = matches(&report, expectation);
        all_found &= found;
        let (style, word) = if found {
            (AnsiColor::Green.on_default().bold(), "found")
        } else {
            (AnsiColor::Red.on_default().bold(), "NOT found")
        };
        writeln!(
            err,
            "{style}lab {}: {word}{style:#} {} for {} with evidence {}",
            Escaped(&instance.id),
            Escaped(&expectation.detector),
            Escaped(&expectation.subject),
            Escaped(&format!("{:?}", expectation.evidence))
        )?;
    }
    writeln!(err, "lab {}: cleaned up", Escaped(&instance.id))?;
    Ok(if all_found {
        crate::exit::OK
    } else {
        crate::exit::WARNING
    })
}

/// True when the report holds the expected finding with its evidence.
pub fn matches(report: &Report, expectation: &Expectation) -> bool {
    report.findings.iter().any(|f| {
        f.detector == expectation.detector
            && f.subject.key() == expectation.subject
            && expectation
                .evidence
                .iter()
                .all(|needle| f.evidence.iter().any(|e| e.fact.contains(needle.as_str())))
    })
}

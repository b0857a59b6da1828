//! `nodedoc fix`: repairs what a detector found, after showing what will change and asking.
//!
//! Read-only unless told: without a terminal to ask on and without `--yes`, it prints what
//! it would do and changes nothing (exit 0).

use std::io::{BufRead, IsTerminal, Write};

use anyhow::{Context as _, Result};
use nodedoc_model::{Finding, SourceState, Subject};
use nodedoc_ovs::fix::OrphanRemoval;

use crate::cli::{FixAction, OvsSourceArgs};

/// Runs one `fix` action.
pub fn fix(action: FixAction) -> Result<u8> {
    match action {
        FixAction::OvsOrphanPort { yes, source } => ovs_orphan_port(&source, yes),
    }
}

/// How the user answered.
enum Consent {
    Yes,
    No,
    CannotAsk,
}

fn ask(question: &str) -> Result<Consent> {
    if !(std::io::stdin().is_terminal() && std::io::stderr().is_terminal()) {
        return Ok(Consent::CannotAsk);
    }
    eprint!("{question} [y/N] ");
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(match answer.trim() {
        "y" | "Y" | "yes" | "YES" | "Yes" => Consent::Yes,
        _ => Consent::No,
    })
}

fn ovs_orphan_port(source: &OvsSourceArgs, yes: bool) -> Result<u8> {
    let snapshot = crate::collect::collect_ovs_only(source)?;
    // Nothing of the OVS view is printed (nor changed) from a source other than the one named.
    let unusable = crate::unusable_named_inputs(source, &snapshot);
    if let Some(code) = crate::fail_on_unusable(&unusable) {
        return Ok(code);
    }
    if snapshot
        .source("ovsdb")
        .is_some_and(|s| s.state == SourceState::Absent)
    {
        println!(
            "nothing to fix: no Open vSwitch here ({})",
            snapshot.source("ovsdb").map_or("", |s| s.detail.as_str())
        );
        return Ok(crate::exit::OK);
    }
    let ovs = crate::ovs::require_ovs(&snapshot)?;
    let findings = nodedoc_detectors::run(&snapshot, &nodedoc_detectors::Config::default());
    let orphans: Vec<&Finding> = findings
        .iter()
        .filter(|f| f.detector == "ovs-orphan-port")
        .collect();
    if orphans.is_empty() {
        println!("no orphaned OVS ports: every kernel-backed interface has its device");
        return Ok(crate::exit::OK);
    }
    let names: Vec<String> = orphans
        .iter()
        .filter_map(|f| match &f.subject {
            Subject::OvsInterface { name, .. } => Some(name.clone()),
            _ => None,
        })
        .collect();
    let plan = OrphanRemoval::plan(ovs, &names)?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{} orphaned OVS port(s):", plan.removals.len())?;
    for finding in &orphans {
        writeln!(out, "  • {}", finding.summary)?;
    }
    writeln!(out, "\nequivalent to:")?;
    for command in plan.vsctl_commands() {
        writeln!(out, "  {command}")?;
    }
    writeln!(
        out,
        "\nOVSDB transaction (one; the `wait`s abort it for any port that changed since it was read):"
    )?;
    serde_json::to_writer_pretty(&mut out, &plan.transaction_json())?;
    writeln!(out)?;
    out.flush()?;
    drop(out);

    if !yes {
        match ask(&format!("delete {} port(s)?", plan.removals.len()))? {
            Consent::Yes => {}
            Consent::No => {
                println!("nothing changed");
                return Ok(crate::exit::OK);
            }
            Consent::CannotAsk => {
                println!(
                    "dry run: nothing changed (no terminal to ask on; run again with --yes to apply)"
                );
                return Ok(crate::exit::OK);
            }
        }
    }

    let endpoint = ovs.endpoint.clone();
    let outcome = nodedoc_ovs::block_on(async {
        let client = nodedoc_ovsdb::Client::connect(endpoint.as_str()).await?;
        plan.apply(&client).await
    })?
    .with_context(|| format!("applying the transaction on {endpoint}"))?;
    for port in &outcome.removed {
        println!("removed {port}");
    }
    for (port, why) in &outcome.spared {
        println!("spared {port}: {why}");
    }
    Ok(crate::exit::OK)
}

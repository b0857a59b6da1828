//! `nodedoc fix`: repairs what a detector found, after showing what will change and asking.
//!
//! Read-only unless told: without a terminal to ask on and without `--yes`, it prints what
//! it would do and changes nothing (exit 0).
//!
//! A fix travels only where nobody can read or alter it on the way: a unix socket or a
//! loopback address, unless `--allow-cleartext-tcp` says the network is trusted (the OVSDB
//! client has no TLS). The check comes before anything connects.

use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;

use anyhow::{bail, Context as _, Result};
use nodedoc_model::text::{write_json_pretty, Escaped};
use nodedoc_model::{Finding, SourceState, Subject};
use nodedoc_ovs::fix::OrphanRemoval;
use nodedoc_ovsdb::Endpoint;

use crate::cli::{FixAction, OvsSourceArgs};

/// Runs one `fix` action.
pub fn fix(action: FixAction) -> Result<u8> {
    match action {
        FixAction::OvsOrphanPort {
            yes,
            allow_cleartext_tcp,
            source,
        } => {
            require_private_transport(&source, allow_cleartext_tcp)?;
            ovs_orphan_port(&source, yes)
        }
        FixAction::ReplicasetHistoryLeak {
            yes,
            keep,
            namespace,
            deployment,
            kubeconfig,
            kube_context,
            kube_timeout,
            format,
        } => crate::kube::fix_history(crate::kube::HistoryFix {
            yes,
            keep,
            namespaces: namespace,
            deployments: deployment,
            kubeconfig,
            context: kube_context,
            timeout: kube_timeout,
            format,
        }),
    }
}

/// Refuses an OVSDB endpoint the fix would reach in clear text over a network.
fn require_private_transport(source: &OvsSourceArgs, allow_cleartext_tcp: bool) -> Result<()> {
    let Some(text) = source.ovsdb.as_deref() else {
        return Ok(()); // the default is a unix socket
    };
    let endpoint: Endpoint = text.parse()?;
    if endpoint.is_local() || allow_cleartext_tcp {
        return Ok(());
    }
    bail!(
        "refusing to fix through {}: the OVSDB transaction would cross the network in clear text \
         (nodedoc's OVSDB client has no TLS, so ssl: is not available), and anyone on the path \
         could read or alter it. Run nodedoc on that host (its unix socket), reach the socket \
         through ssh (ssh -L /tmp/db.sock:/run/openvswitch/db.sock HOST, then --ovsdb \
         unix:/tmp/db.sock), or pass --allow-cleartext-tcp if this network is trusted",
        Escaped(&endpoint.to_string())
    )
}

/// How the user answered.
pub(crate) enum Consent {
    Yes,
    No,
    CannotAsk,
}

pub(crate) fn ask(question: &str) -> Result<Consent> {
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
    let snapshot = nodedoc_collect::collect_ovs_only(&source.source())?;
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
            Escaped(snapshot.source("ovsdb").map_or("", |s| s.detail.as_str()))
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
        writeln!(out, "  • {}", Escaped(&finding.summary))?;
    }
    writeln!(out, "\nequivalent to:")?;
    for (command, removal) in plan.vsctl_commands().into_iter().zip(&plan.removals) {
        match command {
            Ok(command) => writeln!(out, "  {command}")?,
            // The transaction below names the port exactly; no shell line can.
            Err(why) => writeln!(
                out,
                "  (no ovs-vsctl command for port {} on {}: {why})",
                Escaped(&removal.port),
                Escaped(&removal.bridge)
            )?,
        }
    }
    writeln!(
        out,
        "\nOVSDB transaction (one; the `wait`s abort it for any port that changed since it was read):"
    )?;
    // Exact JSON, with the characters a terminal would act on written as \u escapes.
    write_json_pretty(&mut out, &plan.transaction_json())?;
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
    // Every namespace is read again once connected, right before the transaction.
    let outcome = nodedoc_ovs::block_on(async {
        let client = nodedoc_ovsdb::Client::connect(endpoint.as_str()).await?;
        plan.apply_after_recheck(&client, Path::new(nodedoc_ovs::netns::NETNS_RUN_DIR))
            .await
    })?
    .with_context(|| format!("applying the transaction on {endpoint}"))?;
    for port in &outcome.removed {
        println!("removed {}", Escaped(port));
    }
    for (port, why) in &outcome.spared {
        println!("spared {}: {}", Escaped(port), Escaped(why));
    }
    if outcome.removed.is_empty() {
        println!("nothing changed");
    }
    Ok(crate::exit::OK)
}

//! The Kubernetes side of `check`/`collect` (the API and `--kube-objects` files, added to the
//! snapshot after the host's collection) and `fix replicaset-history-leak`.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use nodedoc_kube::api::{ApiOptions, Credentials, Session};
use nodedoc_kube::fix::{HistoryCleanup, Outcome};
use nodedoc_model::text::{write_json_pretty, Escaped};
use nodedoc_model::{HostInfo, Snapshot, SourceState, SourceStatus};
use serde::Serialize;

use crate::cli::{Format, KubeApiArgs, KubeSourceArgs};

impl KubeApiArgs {
    /// The API reading's options, for a host called `hostname`.
    pub fn api_options(&self, hostname: &str) -> ApiOptions {
        ApiOptions {
            kubeconfig: self.kubeconfig.clone(),
            context: self.kube_context.clone(),
            // The kubelet registers a node under its lowercased hostname unless told otherwise.
            node_name: self
                .node_name
                .clone()
                .unwrap_or_else(|| hostname.to_ascii_lowercase()),
            timeout: self.kube_timeout,
            ..ApiOptions::default()
        }
    }
}

impl KubeSourceArgs {
    /// Adds what Kubernetes says to a live snapshot: the API unless --no-kube, then the files.
    pub fn add_live(&self, snapshot: &mut Snapshot, progress: &crate::Progress) -> Result<()> {
        if self.api.no_kube {
            snapshot.sources.push(SourceStatus {
                source: nodedoc_kube::API_SOURCE.to_string(),
                state: SourceState::Skipped,
                detail: "--no-kube".to_string(),
            });
        } else {
            progress.step("reading the Kubernetes API");
            let options = self.api.api_options(&snapshot.host.hostname);
            nodedoc_kube::add_api(snapshot, &options);
        }
        self.add_files(snapshot)
    }

    /// Adds the --kube-objects files.
    pub fn add_files(&self, snapshot: &mut Snapshot) -> Result<()> {
        nodedoc_kube::add_files(snapshot, &self.kube_objects)
            .context("cannot use a --kube-objects file")?;
        if let (Some(kube), Some(node)) = (snapshot.kube.as_mut(), self.api.node_name.as_ref()) {
            kube.node_name.get_or_insert_with(|| node.clone());
        }
        Ok(())
    }
}

/// The snapshot `check --offline` analyses: no host, only the files.
pub fn offline_snapshot(args: &KubeSourceArgs) -> Result<Snapshot> {
    let mut snapshot = Snapshot::new(HostInfo {
        hostname: "offline (--kube-objects only)".to_string(),
        collected_at_unix: nodedoc_kube::now_unix().max(0) as u64,
        collector_version: env!("CARGO_PKG_VERSION").to_string(),
        ..HostInfo::default()
    });
    args.add_files(&mut snapshot)?;
    Ok(snapshot)
}

/// What `fix replicaset-history-leak` was asked.
pub struct HistoryFix {
    pub yes: bool,
    pub keep: Option<u32>,
    pub namespaces: Vec<String>,
    pub deployments: Vec<String>,
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
    pub timeout: Duration,
    pub format: Format,
}

/// The JSON `fix replicaset-history-leak --format json` prints.
#[derive(Serialize)]
struct FixReport<'a> {
    plan: &'a HistoryCleanup,
    applied: bool,
    outcomes: &'a [Outcome],
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// How many ReplicaSet names a text plan lists per Deployment (JSON lists all).
const NAMES_SHOWN: usize = 20;

/// `nodedoc fix replicaset-history-leak`.
pub fn fix_history(args: HistoryFix) -> Result<u8> {
    for d in &args.deployments {
        if d.split_once('/')
            .is_none_or(|(ns, n)| ns.is_empty() || n.is_empty())
        {
            bail!("--deployment takes NAMESPACE/NAME, not {}", Escaped(d));
        }
    }
    let options = ApiOptions {
        kubeconfig: args.kubeconfig.clone(),
        context: args.context.clone(),
        timeout: args.timeout,
        pods: false,
        metrics: false,
        ..ApiOptions::default()
    };
    let mut snapshot = Snapshot::new(nodedoc_procfs::host_info());
    nodedoc_kube::add_api(&mut snapshot, &options);
    let source = snapshot
        .source(nodedoc_kube::API_SOURCE)
        .cloned()
        .expect("the API source records its status");
    match source.state {
        SourceState::Collected => {}
        SourceState::Absent => bail!(
            "no Kubernetes API to fix through: {}",
            Escaped(&source.detail)
        ),
        _ => {
            let gaps: Vec<String> = snapshot
                .gaps
                .iter()
                .map(|g| format!("{}: {}", g.what, g.reason))
                .collect();
            bail!(
                "the Kubernetes API could not be read completely, so nothing is planned on a partial view: {} ({})",
                Escaped(&source.detail),
                Escaped(&gaps.join("; "))
            );
        }
    }
    let Some(kube) = snapshot.kube.as_ref() else {
        bail!("the Kubernetes API gave no objects");
    };
    let findings =
        nodedoc_detectors::run_with(&snapshot, &nodedoc_detectors::Config::default(), &|id| {
            id == "replicaset-history-leak"
        });
    let flagged: std::collections::BTreeSet<String> = findings
        .iter()
        .flat_map(|f| {
            let mut subjects = vec![&f.subject];
            if let Some(group) = &f.group {
                subjects.extend(group.members.iter().map(|m| &m.subject));
            }
            subjects
        })
        .filter_map(|s| match s {
            nodedoc_model::Subject::KubeObject {
                kind,
                namespace,
                name,
            } if kind == "Deployment" => Some(format!("{namespace}/{name}")),
            _ => None,
        })
        .collect();
    // A group finding lists at most 1,000 members: past that, every Deployment with a
    // surplus is planned (the plan itself only ever deletes a surplus).
    let grouped_beyond_members = findings
        .iter()
        .any(|f| f.group.as_ref().is_some_and(|g| g.omitted > 0));
    let wanted = |ns: &str, name: &str| {
        let key = format!("{ns}/{name}");
        (grouped_beyond_members || flagged.contains(&key) || !args.deployments.is_empty())
            && (args.namespaces.is_empty() || args.namespaces.iter().any(|n| n == ns))
            && (args.deployments.is_empty() || args.deployments.contains(&key))
    };
    let plan = HistoryCleanup::plan(kube, &wanted, args.keep);
    let server = kube.origins.first().cloned().unwrap_or_default();

    let json = args.format == Format::Json;
    if !json {
        print_plan(&plan, &server)?;
    }
    if plan.deletions() == 0 {
        if json {
            print_json(&plan, false, &[], None)?;
        } else {
            println!("nothing to delete");
        }
        return Ok(crate::exit::OK);
    }
    if !args.yes {
        let question = format!(
            "delete {} ReplicaSet(s) of {} Deployment(s) on {}?",
            plan.deletions(),
            plan.deployments
                .iter()
                .filter(|d| !d.delete.is_empty())
                .count(),
            server
        );
        match crate::fix::ask(&question)? {
            crate::fix::Consent::Yes => {}
            crate::fix::Consent::No => {
                if json {
                    print_json(&plan, false, &[], None)?;
                } else {
                    println!("nothing changed");
                }
                return Ok(crate::exit::OK);
            }
            crate::fix::Consent::CannotAsk => {
                if json {
                    print_json(&plan, false, &[], None)?;
                } else {
                    println!(
                        "dry run: nothing changed (no terminal to ask on; run again with --yes to apply)"
                    );
                }
                return Ok(crate::exit::OK);
            }
        }
    }
    let total = plan.deletions();
    let mut done = 0usize;
    let progress = crate::Progress::new();
    let (outcomes, failure) = nodedoc_kube::block_on(async {
        let config = match nodedoc_kube::api::credentials(
            args.kubeconfig.as_deref(),
            args.context.as_deref(),
        )
        .await?
        {
            Credentials::Found { config, .. } => config,
            Credentials::Absent(why) => return Err(nodedoc_kube::KubeError::Client(why)),
        };
        // The session lives on this runtime: its connection worker does.
        let session = Session::new(*config, args.timeout, None, 64 << 20)?;
        Ok(plan
            .apply(&session, &mut |outcome| {
                done += 1;
                progress.step(&format!("{done}/{total} ReplicaSets"));
                if !json {
                    progress.done();
                    if outcome.deleted {
                        println!("deleted {}", Escaped(&outcome.replica_set));
                    } else {
                        println!(
                            "spared {}: {}",
                            Escaped(&outcome.replica_set),
                            Escaped(&outcome.detail)
                        );
                    }
                }
            })
            .await)
    })??;
    progress.done();
    let deleted = outcomes.iter().filter(|o| o.deleted).count();
    if json {
        print_json(
            &plan,
            true,
            &outcomes,
            failure.as_ref().map(|f| f.to_string()),
        )?;
    } else {
        println!("{deleted} deleted, {} spared", outcomes.len() - deleted);
    }
    if let Some(failure) = failure {
        bail!(
            "stopped after {deleted} deletion(s): {}",
            Escaped(&failure.to_string())
        );
    }
    Ok(crate::exit::OK)
}

fn print_json(
    plan: &HistoryCleanup,
    applied: bool,
    outcomes: &[Outcome],
    error: Option<String>,
) -> Result<()> {
    let mut out = std::io::stdout().lock();
    write_json_pretty(
        &mut out,
        &FixReport {
            plan,
            applied,
            outcomes,
            error,
        },
    )?;
    writeln!(out)?;
    Ok(())
}

fn print_plan(plan: &HistoryCleanup, server: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    if plan.deployments.is_empty() {
        writeln!(
            out,
            "no Deployment has old ReplicaSets beyond its limit on {}",
            Escaped(server)
        )?;
        return Ok(());
    }
    writeln!(
        out,
        "{} ReplicaSet(s) to delete on {}, oldest revision first; the current revision and ReplicaSets with pods are never deleted:",
        plan.deletions(),
        Escaped(server)
    )?;
    for d in &plan.deployments {
        writeln!(
            out,
            "  • deployment {}/{}: {} old, keep {} ({}), delete {}, spare {}",
            Escaped(&d.namespace),
            Escaped(&d.name),
            d.old,
            d.keep,
            Escaped(&d.keep_why),
            d.delete.len(),
            d.spared.len()
        )?;
        for p in d.delete.iter().take(NAMES_SHOWN) {
            writeln!(
                out,
                "      delete {} (revision {}, resourceVersion {})",
                Escaped(&p.name),
                p.revision.map_or("?".to_string(), |r| r.to_string()),
                Escaped(&p.resource_version)
            )?;
        }
        if d.delete.len() > NAMES_SHOWN {
            writeln!(
                out,
                "      … and {} more (--format json lists them all)",
                d.delete.len() - NAMES_SHOWN
            )?;
        }
        for s in &d.spared {
            writeln!(out, "      spare {}: {}", Escaped(&s.name), Escaped(&s.why))?;
        }
    }
    let patches = plan.patch_commands();
    if !patches.is_empty() {
        writeln!(
            out,
            "\nset a limit first, or the history grows back (and in the manifest that deploys it):"
        )?;
        for patch in patches {
            match patch {
                Ok(command) => writeln!(out, "  {command}")?,
                Err(why) => writeln!(out, "  (no command: {why})")?,
            }
        }
    }
    writeln!(
        out,
        "\neach ReplicaSet is read again right before its DELETE, which carries preconditions on its uid and resourceVersion"
    )?;
    Ok(())
}

/// How often at most the agent reads this node's pods from the API.
pub const WATCH_EVERY: Duration = Duration::from_secs(30);

/// The Kubernetes API as the agent (`watch`) reads it: this node's pods only (not the
/// cluster's Deployments and ReplicaSets, a cluster-wide question for `check`, nor the API
/// server's metrics: a fleet of agents would load the API server with them), at most every
/// [`WATCH_EVERY`], on a thread of its own so that a slow API server never holds a round. The
/// first round waits for the first reading, as `check` would; later rounds use the last one
/// that finished.
pub struct KubeWatch {
    options: Option<ApiOptions>,
    every: Duration,
    reading: Option<std::thread::JoinHandle<nodedoc_kube::api::ApiReading>>,
    last: Option<(std::time::Instant, nodedoc_kube::api::ApiReading)>,
    started: Option<std::time::Instant>,
}

impl KubeWatch {
    /// The reader for `args` on a host called `hostname`, reading every `every` at most.
    pub fn new(args: &KubeApiArgs, hostname: &str, every: Duration) -> KubeWatch {
        let options = (!args.no_kube).then(|| ApiOptions {
            workloads: false,
            metrics: false,
            pods: true,
            ..args.api_options(hostname)
        });
        KubeWatch {
            options,
            every,
            reading: None,
            last: None,
            started: None,
        }
    }

    /// Puts the last reading into a round's snapshot (its `kube` state, the `kubernetes`
    /// source status, its gaps), starting a new reading first when the last one is older than
    /// the interval.
    pub fn round(&mut self, snapshot: &mut Snapshot) {
        let Some(options) = &self.options else {
            snapshot.sources.push(SourceStatus {
                source: nodedoc_kube::API_SOURCE.to_string(),
                state: SourceState::Skipped,
                detail: "--no-kube".to_string(),
            });
            return;
        };
        let now = std::time::Instant::now();
        let due = self
            .started
            .is_none_or(|at| now.saturating_duration_since(at) >= self.every);
        if self.reading.is_none() && due {
            let options = options.clone();
            self.started = Some(now);
            self.reading = Some(std::thread::spawn(move || {
                nodedoc_kube::api::read(&options)
            }));
        }
        // The first reading is waited for; later ones only taken when done.
        let done = self
            .reading
            .as_ref()
            .is_some_and(|r| self.last.is_none() || r.is_finished());
        if done {
            if let Some(Ok(reading)) = self.reading.take().map(|r| r.join()) {
                self.last = Some((std::time::Instant::now(), reading));
            }
        }
        let Some((at, reading)) = &self.last else {
            return;
        };
        let mut status = reading.status.clone();
        if matches!(status.state, SourceState::Collected | SourceState::Partial) {
            status.detail.push_str(&format!(
                " (this node's pods only, read {} s ago; read again every {} s at most)",
                at.elapsed().as_secs(),
                self.every.as_secs()
            ));
        }
        snapshot.sources.push(status);
        snapshot.gaps.extend(reading.gaps.iter().cloned());
        snapshot.kube = reading.state.clone();
    }
}

//! `nodedoc probe cni`: runs every CNI plugin with `CNI_COMMAND=VERSION` and a silent stdin.

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use nodedoc_model::text::{write_json_pretty, Escaped};
use serde::Serialize;

use crate::cli::Format;

const DEFAULT_DIRS: &[&str] = &["/opt/cni/bin", "/usr/lib/cni"];

/// What one plugin did.
#[derive(Debug, Serialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
enum Outcome {
    /// It answered VERSION.
    Answered {
        #[serde(rename = "cniVersion")]
        cni_version: String,
        #[serde(rename = "supportedVersions")]
        supported_versions: Vec<String>,
    },
    /// Still running at the deadline; killed.
    Hung { killed_after_ms: u64 },
    /// It exited without a VERSION answer.
    Failed { status: String, output: String },
    /// Not run: nodedoc runs plugins as root, so only files that no one but root (or the user
    /// running nodedoc) could have put there or changed.
    Skipped { reason: String },
}

#[derive(Debug, Serialize)]
struct PluginResult {
    plugin: PathBuf,
    pid: u32,
    #[serde(flatten)]
    outcome: Outcome,
}

struct Running {
    path: PathBuf,
    child: Child,
    /// Held open and never written: a runtime keeps stdin open for VERSION.
    _stdin: Option<std::process::ChildStdin>,
}

/// Runs the probe and prints the results.
pub fn cni(dirs: &[PathBuf], timeout: Duration, format: Format) -> Result<u8> {
    let dirs: Vec<PathBuf> = if dirs.is_empty() {
        DEFAULT_DIRS
            .iter()
            .map(PathBuf::from)
            .filter(|d| d.is_dir())
            .collect()
    } else {
        dirs.to_vec()
    };
    if dirs.is_empty() {
        bail!(
            "no CNI bin directory found (looked in {}); name one with --dir",
            DEFAULT_DIRS.join(", ")
        );
    }
    let mut plugins = Vec::new();
    let mut results = Vec::new();
    for dir in &dirs {
        let entries =
            std::fs::read_dir(dir).map_err(|e| anyhow::anyhow!("{}: {e}", dir.display()))?;
        let dir_unsafe = unsafe_dir(dir);
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(meta) = std::fs::metadata(&path) else {
                continue;
            };
            if !is_executable_file(&meta) {
                continue;
            }
            match dir_unsafe.clone().or_else(|| untrusted_plugin(&meta)) {
                Some(reason) => results.push(PluginResult {
                    plugin: path,
                    pid: 0,
                    outcome: Outcome::Skipped { reason },
                }),
                None => plugins.push(path),
            }
        }
    }
    plugins.sort();
    let cni_path = std::env::join_paths(&dirs)?;

    // All plugins run at once: a hung one costs the timeout once, not once per plugin.
    let mut running = Vec::new();
    for path in plugins {
        let spawned = Command::new(&path)
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("CNI_COMMAND", "VERSION")
            .env("CNI_PATH", &cni_path)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group, so a hung plugin is killed with its children.
            .process_group(0)
            .spawn();
        match spawned {
            Ok(mut child) => {
                let stdin = child.stdin.take();
                running.push(Running {
                    path,
                    child,
                    _stdin: stdin,
                });
            }
            Err(e) => results.push(PluginResult {
                plugin: path,
                pid: 0,
                outcome: Outcome::Failed {
                    status: format!("could not start: {e}"),
                    output: String::new(),
                },
            }),
        }
    }
    let started = Instant::now();
    while !running.is_empty() {
        let mut still = Vec::new();
        for mut plugin in running {
            match plugin.child.try_wait() {
                Ok(Some(status)) => results.push(finished(plugin, status)),
                Ok(None) if started.elapsed() >= timeout => {
                    let pid = plugin.child.id();
                    // The group of a child we started (and only it).
                    if let Some(group) = rustix::process::Pid::from_raw(pid as i32) {
                        let _ = rustix::process::kill_process_group(
                            group,
                            rustix::process::Signal::KILL,
                        );
                    }
                    let _ = plugin.child.wait();
                    results.push(PluginResult {
                        plugin: plugin.path,
                        pid,
                        outcome: Outcome::Hung {
                            killed_after_ms: started.elapsed().as_millis() as u64,
                        },
                    });
                }
                Ok(None) => still.push(plugin),
                Err(e) => results.push(PluginResult {
                    pid: plugin.child.id(),
                    plugin: plugin.path,
                    outcome: Outcome::Failed {
                        status: e.to_string(),
                        output: String::new(),
                    },
                }),
            }
        }
        running = still;
        if !running.is_empty() {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    results.sort_by(|a, b| a.plugin.cmp(&b.plugin));

    let hung = results
        .iter()
        .filter(|r| matches!(r.outcome, Outcome::Hung { .. }))
        .count();
    let mut out = anstream::stdout().lock();
    match format {
        Format::Json => {
            write_json_pretty(
                &mut out,
                &serde_json::json!({ "dirs": dirs, "timeout_ms": timeout.as_millis() as u64, "plugins": results }),
            )?;
            writeln!(out)?;
        }
        Format::Text => {
            for r in &results {
                // Plugin file names and what plugins print are anyone's text.
                let name = Escaped(&r.plugin.to_string_lossy()).to_string();
                let output = |text: &str| Escaped(text).to_string();
                match &r.outcome {
                    Outcome::Answered { cni_version, supported_versions } => {
                        writeln!(out, "answered  {name}: cniVersion {}, supports {}", output(cni_version), output(&supported_versions.join(" ")))?
                    }
                    Outcome::Hung { killed_after_ms } => writeln!(
                        out,
                        "HUNG      {name}: no answer to VERSION within {killed_after_ms} ms (killed); it probably reads stdin for VERSION (containernetworking/cni skel < 0.7.0): upgrade its cni library"
                    )?,
                    Outcome::Failed { status, output: text } => {
                        writeln!(out, "failed    {name}: {}{}", output(status), if text.is_empty() { String::new() } else { format!(": {}", output(text)) })?
                    }
                    Outcome::Skipped { reason } => writeln!(out, "skipped   {name}: not run: {reason}")?,
                }
            }
            let skipped = results
                .iter()
                .filter(|r| matches!(r.outcome, Outcome::Skipped { .. }))
                .count();
            writeln!(
                out,
                "{} plugins, {} hung, {} skipped",
                results.len(),
                hung,
                skipped
            )?;
        }
    }
    Ok(if hung > 0 {
        crate::exit::WARNING
    } else {
        crate::exit::OK
    })
}

fn is_executable_file(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    meta.is_file() && meta.permissions().mode() & 0o111 != 0
}

/// Why the plugins of `dir` must not be run: others can replace them (a directory they can
/// write, without the sticky bit that stops them renaming files they do not own).
fn unsafe_dir(dir: &Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(dir).ok()?;
    (meta.mode() & 0o022 != 0 && meta.mode() & 0o1000 == 0).then(|| {
        format!(
            "{} can be written by group or others (mode {:o}): anyone could replace its plugins",
            dir.display(),
            meta.mode() & 0o7777
        )
    })
}

/// Why a plugin file must not be run as root: it belongs to someone else, or others can
/// change it. (Symlinks are followed, as `exec` follows them.)
fn untrusted_plugin(meta: &std::fs::Metadata) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let me = rustix::process::geteuid().as_raw();
    if meta.uid() != 0 && meta.uid() != me {
        return Some(format!(
            "owned by uid {}; only plugins owned by root (or uid {me}, which runs nodedoc) are run",
            meta.uid()
        ));
    }
    if meta.mode() & 0o022 != 0 {
        return Some(format!(
            "group or others can write it (mode {:o})",
            meta.mode() & 0o7777
        ));
    }
    None
}

fn finished(mut plugin: Running, status: std::process::ExitStatus) -> PluginResult {
    let mut stdout = String::new();
    let mut stderr = String::new();
    if let Some(mut s) = plugin.child.stdout.take() {
        let _ = s.read_to_string(&mut stdout);
    }
    if let Some(mut s) = plugin.child.stderr.take() {
        let _ = s.read_to_string(&mut stderr);
    }
    #[derive(serde::Deserialize)]
    struct Version {
        #[serde(rename = "cniVersion")]
        cni_version: String,
        #[serde(rename = "supportedVersions", default)]
        supported_versions: Vec<String>,
    }
    let pid = plugin.child.id();
    let outcome = match serde_json::from_str::<Version>(stdout.trim()) {
        Ok(v) if status.success() => Outcome::Answered {
            cni_version: v.cni_version,
            supported_versions: v.supported_versions,
        },
        _ => Outcome::Failed {
            status: status.to_string(),
            output: first_line(if stderr.trim().is_empty() {
                &stdout
            } else {
                &stderr
            }),
        },
    };
    PluginResult {
        plugin: plugin.path,
        pid,
        outcome,
    }
}

fn first_line(text: &str) -> String {
    text.lines()
        .next()
        .unwrap_or("")
        .chars()
        .take(200)
        .collect()
}

//! `nodedoc fds PID`: the fd census of one process.

use std::io::Write;

use anyhow::{Context as _, Result};
use nodedoc_model::text::{write_json_pretty, Escaped};
use nodedoc_model::Gaps;
use nodedoc_procfs::{ProcRoot, ScanOptions};

use crate::cli::{FdsArgs, Format};

/// Prints one process's census.
pub fn fds(args: &FdsArgs) -> Result<u8> {
    let root = ProcRoot::live().context("cannot open /proc")?;
    let options = ScanOptions {
        resolution: args.socket_resolution.into(),
        wants_kernel_detail: &|_| false,
        ..ScanOptions::default()
    };
    let mut gaps = Gaps::new();
    let process = nodedoc_procfs::read_process(&root, args.pid, &options, &mut gaps)
        .with_context(|| format!("cannot read process {}", args.pid))?;
    let census = process
        .fds
        .as_ref()
        .with_context(|| format!("cannot read /proc/{}/fd of {}", args.pid, process.label()))?;
    let mut out = anstream::stdout().lock();
    match args.format {
        Format::Json => {
            write_json_pretty(
                &mut out,
                &serde_json::json!({
                    "pid": process.pid,
                    "comm": process.comm,
                    "nofile": process.nofile,
                    "fds": census,
                }),
            )?;
            writeln!(out)?;
        }
        Format::Text => {
            let limit = process.nofile.map_or_else(
                || "unknown".to_string(),
                |l| format!("soft {} / hard {}", l.soft, l.hard),
            );
            writeln!(
                out,
                "{}: {} open fds (limit: {limit})",
                Escaped(&process.label()),
                census.total
            )?;
            for row in &census.kinds {
                writeln!(
                    out,
                    "  {:>8}  {}",
                    row.count,
                    Escaped(&row.kind.to_string())
                )?;
            }
            writeln!(out, "sockets resolved by {}", census.socket_resolution)?;
        }
    }
    Ok(crate::exit::OK)
}

//! Lookups detectors make per task, built once per run so that a host with thousands of
//! suspects costs linear work: a scan of every process per blocked task (its vfork child, the
//! holders of `/dev/fuse`, the readers stuck in another process's memory) was quadratic.

use std::collections::{HashMap, HashSet};

use nodedoc_model::{Process, Snapshot};

use crate::catalog::catalog;

/// A snapshot's processes, indexed.
pub(crate) struct Processes<'a> {
    /// The snapshot.
    pub snapshot: &'a Snapshot,
    children: HashMap<i32, Vec<&'a Process>>,
    by_pid_namespace: HashMap<u64, Vec<&'a Process>>,
    /// Processes holding `/dev/fuse` open.
    pub fuse_holders: Vec<&'a Process>,
    /// Tasks whose stack is in another process's memory (`remote-memory-access`).
    pub remote_readers: Vec<&'a Process>,
}

impl<'a> Processes<'a> {
    /// Indexes `snapshot`: one pass over its processes.
    pub fn of(snapshot: &'a Snapshot) -> Processes<'a> {
        let remote = catalog()
            .stack_signature
            .iter()
            .find(|s| s.id == "remote-memory-access");
        let mut index = Processes {
            snapshot,
            children: HashMap::new(),
            by_pid_namespace: HashMap::new(),
            fuse_holders: Vec::new(),
            remote_readers: Vec::new(),
        };
        for p in &snapshot.processes {
            if p.ppid != p.pid {
                index.children.entry(p.ppid).or_default().push(p);
            }
            if let Some(ns) = p.namespaces.pid {
                index.by_pid_namespace.entry(ns).or_default().push(p);
            }
            if p.fds.as_ref().is_some_and(|f| f.fuse_device_fds > 0) {
                index.fuse_holders.push(p);
            }
            let reads_remote = remote.is_some_and(|remote| {
                p.kernel_stack
                    .as_deref()
                    .is_some_and(|stack| stack.iter().any(|f| remote.matches(&f.function)))
            });
            if reads_remote {
                index.remote_readers.push(p);
            }
        }
        index
    }

    /// The children of `pid`, by pid.
    pub fn children(&self, pid: i32) -> &[&'a Process] {
        self.children.get(&pid).map_or(&[], Vec::as_slice)
    }

    /// The processes in pid namespace `ns`.
    pub fn in_pid_namespace(&self, ns: u64) -> &[&'a Process] {
        self.by_pid_namespace.get(&ns).map_or(&[], Vec::as_slice)
    }

    /// Processes whose parent chain leads to `ancestor` (not including it), by pid: linear in
    /// their number.
    pub fn descendants(&self, ancestor: i32) -> Vec<&'a Process> {
        let mut seen = HashSet::from([ancestor]);
        let mut found = Vec::new();
        let mut frontier = vec![ancestor];
        while let Some(parent) = frontier.pop() {
            for &child in self.children(parent) {
                if seen.insert(child.pid) {
                    found.push(child);
                    frontier.push(child.pid);
                }
            }
        }
        found.sort_by_key(|p| p.pid);
        found
    }
}

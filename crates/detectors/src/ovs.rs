//! What the OVS detectors share: finding ovs-vswitchd in the snapshot, the log path for
//! commands, and the owner of an interface.

use nodedoc_model::{OvsInterface, OvsState, Process, Snapshot};

use crate::catalog;

/// Where packaged OVS writes its log, for commands when the snapshot has no log path.
pub(crate) const DEFAULT_LOG: &str = "/var/log/openvswitch/ovs-vswitchd.log";

/// The ovs-vswitchd process: the one the OVS collector identified, else the busiest process
/// named `ovs-vswitchd` (with `--monitor`, its worker, which has the threads).
pub(crate) fn vswitchd(snapshot: &Snapshot) -> Option<&Process> {
    if let Some(found) = snapshot.ovs.as_ref().and_then(|o| o.vswitchd.as_ref()) {
        if let Some(p) = snapshot.process(found.pid) {
            if p.start_time_ticks == found.start_time_ticks || found.start_time_ticks == 0 {
                return Some(p);
            }
        }
    }
    snapshot
        .processes
        .iter()
        .filter(|p| p.comm == "ovs-vswitchd")
        .max_by_key(|p| p.threads)
}

/// The log path to put in commands.
pub(crate) fn log_path(ovs: &OvsState) -> &str {
    ovs.log.as_ref().map_or(DEFAULT_LOG, |l| l.path.as_str())
}

/// Who owns an interface: its external ids and the prefix convention, as one line.
pub(crate) fn owner(name: &str, iface: Option<&OvsInterface>) -> String {
    let mut parts = Vec::new();
    if let Some(iface) = iface {
        for (key, label) in [
            ("iface-id", "neutron port (iface-id)"),
            ("vm-uuid", "VM (vm-uuid)"),
            ("attached-mac", "attached-mac"),
        ] {
            if let Some(value) = iface.external_ids.get(key) {
                parts.push(format!("{label} {value}"));
            }
        }
    }
    if let Some(prefix) = catalog().ovs_port_owner(name) {
        parts.push(format!("`{}` prefix: {}", prefix.prefix, prefix.owner));
    }
    if parts.is_empty() {
        "no owner recorded (no iface-id, vm-uuid or known name prefix)".to_string()
    } else {
        parts.join("; ")
    }
}

/// Default `n-handler-threads` of ovs-vswitchd when not configured, from `ofproto_set_threads`
/// (ofproto/ofproto.c): with `threads = max(cpus, 2)`, revalidators default to
/// `threads / 4 + 1` and handlers to `max(threads - revalidators, 1)` — about 3/4 of the
/// CPUs minus one, as seed 000 says.
pub(crate) fn default_handler_threads(online_cpus: u32) -> u32 {
    let threads = online_cpus.max(2);
    let revalidators = threads / 4 + 1;
    threads.saturating_sub(revalidators).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_handler_threads_follow_ofproto_set_threads() {
        assert_eq!(default_handler_threads(1), 1);
        assert_eq!(default_handler_threads(2), 1); // this machine's log: "n-handler-threads to 1"
        assert_eq!(default_handler_threads(8), 5);
        assert_eq!(default_handler_threads(64), 47);
    }
}

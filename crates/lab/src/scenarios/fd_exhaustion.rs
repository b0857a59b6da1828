//! `fd-exhaustion`: seed 000's ovs-vswitchd at its fd limit, nearly all of it
//! `NETLINK_GENERIC` sockets. A helper raises its soft `RLIMIT_NOFILE` to 4,000 (under the
//! hard limit) and holds 3,950 bound generic netlink sockets: 98.9 % of its limit.

use super::Scenario;
use crate::process::spawn_helper;
use crate::{Expectation, LabContext, LabError, LabGuard};

pub(super) const SCENARIO: Scenario = Scenario {
    name: "fd-exhaustion",
    summary: "a process at 99% of its fd limit, holding thousands of NETLINK_GENERIC sockets",
    seed: "000 (ovs-vswitchd: 102,409 fds, nearly all NETLINK_GENERIC, limit 102,400)",
    settle_secs: 0,
    start,
};

const SOFT_LIMIT: u64 = 4_000;
const SOCKETS: u64 = 3_950;

fn start(guard: &mut LabGuard, cx: &LabContext) -> Result<(), LabError> {
    let soft = SOFT_LIMIT.to_string();
    let sockets = SOCKETS.to_string();
    let pid = spawn_helper(
        guard,
        cx,
        "fd-hog",
        &[],
        &[
            "fd-hog",
            "--sockets",
            &sockets,
            "--soft-limit",
            &soft,
            "--protocol",
            "16",
        ],
        |_| {},
    )?;
    let instance = guard.instance_mut();
    instance.facts.insert("hog_pid".into(), pid.to_string());
    instance.facts.insert("sockets".into(), sockets.clone());
    instance.facts.insert("soft_limit".into(), soft);
    instance.expect.push(Expectation {
        detector: "fd-exhaustion".into(),
        subject: format!("pid/{pid}"),
        evidence: vec!["3,950 NETLINK_GENERIC netlink sockets".into()],
    });
    Ok(())
}

//! `netns-gone`: seed 003's task left in a deleted network namespace. A helper started with
//! `ip netns exec` blocks receiving on a UDP socket; then the namespace is deleted
//! (`ip netns delete`) while the helper is still inside.

use std::time::Duration;

use super::{require_root, Scenario};
use crate::process::{spawn_helper, stack_has, wait_until};
use crate::{unique_suffix, Expectation, LabContext, LabError, LabGuard, Resource};

pub(super) const SCENARIO: Scenario = Scenario {
    name: "netns-gone",
    summary: "a task blocked in network code inside a network namespace that was deleted",
    seed: "003 (a ceph client whose network namespace was gone)",
    settle_secs: 0,
    start,
};

fn ip(scenario: &str, args: &[&str]) -> Result<(), LabError> {
    let status = std::process::Command::new("ip")
        .args(args)
        .status()
        .map_err(|e| LabError::setup(scenario, &format!("ip {}", args.join(" ")), e))?;
    if status.success() {
        Ok(())
    } else {
        Err(LabError::setup(
            scenario,
            &format!("ip {}", args.join(" ")),
            status,
        ))
    }
}

fn start(guard: &mut LabGuard, cx: &LabContext) -> Result<(), LabError> {
    require_root(SCENARIO.name)?;
    let name = format!("ndlab-{}", unique_suffix());
    ip(SCENARIO.name, &["netns", "add", &name])?;
    guard
        .instance_mut()
        .resources
        .push(Resource::NetNs { name: name.clone() });
    let pid = spawn_helper(
        guard,
        cx,
        "udp-wait",
        &["ip", "netns", "exec", &name],
        &["udp-wait"],
        |_| {},
    )?;
    ip(SCENARIO.name, &["netns", "delete", &name])?;
    if !wait_until(Duration::from_secs(10), || {
        stack_has(pid, "__skb_wait_for_more_packets")
    }) {
        return Err(LabError::setup(
            SCENARIO.name,
            "block in recv",
            "the helper did not block receiving",
        ));
    }
    let instance = guard.instance_mut();
    instance.facts.insert("pid".into(), pid.to_string());
    instance.facts.insert("netns_name".into(), name);
    instance.expect.push(Expectation {
        detector: "netns-gone".into(),
        subject: format!("pid/{pid}"),
        evidence: vec![
            "no other task is in that namespace".into(),
            "__skb_wait_for_more_packets".into(),
        ],
    });
    Ok(())
}

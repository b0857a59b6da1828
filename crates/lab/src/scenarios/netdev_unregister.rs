//! `netdev-unregister`: seed 001's kernel line
//! `unregister_netdevice: waiting for DEV to become free. Usage count = 1`, for a uniquely
//! named device, written to /dev/kmsg now and every 10 s while the lab runs, as the kernel
//! does while it waits. (Leaking a real device reference needs a patched kernel, as the seed
//! shows; the detector reads the log, so the log line is the fault.)

use super::{require_root, Scenario};
use crate::process::spawn_helper;
use crate::{unique_suffix, Expectation, LabContext, LabError, LabGuard};

pub(super) const SCENARIO: Scenario = Scenario {
    name: "netdev-unregister",
    summary: "the kernel's `unregister_netdevice: waiting for DEV to become free` line, repeating",
    seed: "001 (pods stuck Terminating: waiting for cli-veth to become free. Usage count = 1)",
    settle_secs: 0,
    start,
};

fn start(guard: &mut LabGuard, cx: &LabContext) -> Result<(), LabError> {
    require_root(SCENARIO.name)?;
    // IFNAMSIZ is 16: "ndlab" + 6 hex digits fits.
    let device = format!("ndlab{}", unique_suffix());
    let line =
        format!("unregister_netdevice: waiting for {device} to become free. Usage count = 1");
    spawn_helper(
        guard,
        cx,
        "kmsg-repeat",
        &[],
        &["kmsg-repeat", "--every", "10", "--line", &line],
        |_| {},
    )?;
    let instance = guard.instance_mut();
    instance.facts.insert("device".into(), device.clone());
    instance.expect.push(Expectation {
        detector: "netdev-unregister-stuck".into(),
        subject: format!("netdev/{device}"),
        evidence: vec![format!("waiting for {device} to become free")],
    });
    Ok(())
}

//! `cni-stdin-hang`: seed 003's IPAM plugin that never returns from VERSION. A runtime
//! stand-in starts a plugin built like containernetworking/cni's skel before v0.7.0 (it
//! reads all of stdin for every command) the way a runtime does: `CNI_*` in its environment,
//! stdin a pipe the runtime keeps open and never writes. `check` reports it once it has run
//! 10 s (`--cni-timeout`).

use std::time::Duration;

use super::{release_first, Scenario};
use crate::process::{adopt_child, spawn_helper, wait_until, wchan};
use crate::{unique_suffix, Expectation, LabContext, LabError, LabGuard};

pub(super) const SCENARIO: Scenario = Scenario {
    name: "cni-stdin-hang",
    summary: "a CNI plugin (old skel) blocked reading stdin during VERSION",
    seed: "003 (an IPAM plugin on containernetworking/cni 0.6.0 hangs on CNI_COMMAND=VERSION)",
    settle_secs: 11,
    start,
};

fn start(guard: &mut LabGuard, cx: &LabContext) -> Result<(), LabError> {
    let container = format!("ndlab-{}", unique_suffix());
    let runtime = spawn_helper(
        guard,
        cx,
        "cni-runtime",
        &[],
        &[
            "cni-runtime",
            "--command",
            "VERSION",
            "--container-id",
            &container,
        ],
        |_| {},
    )?;
    let plugin = adopt_child(guard, runtime, "ipam-skel-0.6")?;
    // The runtime reaps the plugin when it stops: let it go first.
    release_first(guard, runtime);
    let reading = wait_until(Duration::from_secs(10), || {
        wchan(plugin).is_some_and(|w| w.contains("pipe"))
    });
    if !reading {
        return Err(LabError::setup(
            SCENARIO.name,
            "start the plugin",
            "it did not block reading stdin",
        ));
    }
    let instance = guard.instance_mut();
    instance
        .facts
        .insert("plugin_pid".into(), plugin.to_string());
    instance
        .facts
        .insert("runtime_pid".into(), runtime.to_string());
    instance
        .facts
        .insert("container_id".into(), container.clone());
    instance.expect.push(Expectation {
        detector: "cni-plugin-hang".into(),
        subject: format!("pid/{plugin}"),
        evidence: vec![
            format!("CNI_COMMAND=VERSION CNI_CONTAINERID={container}"),
            "blocked in read(fd 0)".into(),
            "fd 0 is a pipe".into(),
        ],
    });
    Ok(())
}

//! `pidns-exit-hang`: seed 003's container that never exits. An init of a new pid namespace
//! (`unshare --pid --fork`) has a child frozen by the cgroup v1 freezer; the init gets
//! SIGKILL and then sits in `zap_pid_ns_processes` waiting for the child, which cannot die
//! while frozen. (cgroup2 freezing does not reproduce it: frozen cgroup2 tasks die on
//! SIGKILL.) Teardown thaws the child and everything exits.

use std::time::Duration;

use super::{freeze, require_root, Scenario};
use crate::process::{adopt_child, spawn_helper, stack_has, wait_until};
use crate::{Expectation, LabContext, LabError, LabGuard};

pub(super) const SCENARIO: Scenario = Scenario {
    name: "pidns-exit-hang",
    summary: "a killed container init stuck in zap_pid_ns_processes behind a frozen child",
    seed: "003 (docker cannot stop a container: init in zap_pid_ns_processes, child stuck)",
    settle_secs: 0,
    start,
};

fn start(guard: &mut LabGuard, cx: &LabContext) -> Result<(), LabError> {
    require_root(SCENARIO.name)?;
    super::v1_freezer(SCENARIO.name)?;
    let unshare = spawn_helper(
        guard,
        cx,
        "unshare",
        &["unshare", "--pid", "--fork"],
        &["pidns-init"],
        |_| {},
    )?;
    let init = adopt_child(guard, unshare, "pidns-init")?;
    let child = adopt_child(guard, init, "pidns-child")?;
    let cgroup = freeze(guard, SCENARIO.name, child)?;
    if let Some(target) = rustix::process::Pid::from_raw(init) {
        let _ = rustix::process::kill_process(target, rustix::process::Signal::KILL);
    }
    if !wait_until(Duration::from_secs(10), || {
        stack_has(init, "zap_pid_ns_processes")
    }) {
        return Err(LabError::setup(
            SCENARIO.name,
            "kill the init",
            "it did not reach zap_pid_ns_processes",
        ));
    }
    let instance = guard.instance_mut();
    instance.facts.insert("init_pid".into(), init.to_string());
    instance.facts.insert("child_pid".into(), child.to_string());
    instance
        .facts
        .insert("freezer_cgroup".into(), cgroup.clone());
    instance.expect.push(Expectation {
        detector: "pidns-exit-hang".into(),
        subject: format!("pid/{init}"),
        evidence: vec![
            "zap_pid_ns_processes".into(),
            format!("still in the namespace: pidns-child (pid {child})"),
            format!("its cgroup {cgroup} is FROZEN"),
        ],
    });
    instance.expect.push(Expectation {
        detector: "hung-task".into(),
        subject: format!("pid/{child}"),
        evidence: vec!["stack classified as frozen-cgroup".into()],
    });
    Ok(())
}

//! `d-state`: two tasks in uninterruptible sleep, the kinds `hung-task` classifies without a
//! kernel bug: a vfork parent whose child sleeps without exec (`wait_for_vfork_done`), and a
//! task frozen by the cgroup v1 freezer (state D on this kernel, with an ordinary sleep
//! stack: only the freezer state tells).

use std::time::Duration;

use super::{freeze, release_first, require_root, Scenario};
use crate::process::{adopt_child, spawn_helper, state, wait_until};
use crate::{Expectation, LabContext, LabError, LabGuard};

pub(super) const SCENARIO: Scenario = Scenario {
    name: "d-state",
    summary:
        "a vfork parent stuck waiting for its child, and a task frozen by the cgroup v1 freezer",
    seed: "003 (tasks in D that SIGKILL cannot end)",
    settle_secs: 0,
    start,
};

fn start(guard: &mut LabGuard, cx: &LabContext) -> Result<(), LabError> {
    require_root(SCENARIO.name)?;
    super::v1_freezer(SCENARIO.name)?;
    let parent = spawn_helper(guard, cx, "vfork-parent", &[], &["vfork-parent"], |_| {})?;
    if !wait_until(Duration::from_secs(10), || state(parent) == Some('D')) {
        return Err(LabError::setup(
            SCENARIO.name,
            "vfork",
            "the parent did not enter D state",
        ));
    }
    let child = adopt_child(guard, parent, "vfork-child")?;
    // The parent goes first: a parent released by its child's death would resume on a stack
    // the child has written to.
    release_first(guard, parent);

    let sleeper = spawn_helper(guard, cx, "sleeper", &[], &["sleeper"], |_| {})?;
    let cgroup = freeze(guard, SCENARIO.name, sleeper)?;
    if !wait_until(Duration::from_secs(10), || state(sleeper) == Some('D')) {
        return Err(LabError::setup(
            SCENARIO.name,
            "freeze",
            "the frozen task did not show D state",
        ));
    }

    let instance = guard.instance_mut();
    instance
        .facts
        .insert("vfork_parent_pid".into(), parent.to_string());
    instance
        .facts
        .insert("vfork_child_pid".into(), child.to_string());
    instance
        .facts
        .insert("frozen_pid".into(), sleeper.to_string());
    instance
        .facts
        .insert("freezer_cgroup".into(), cgroup.clone());
    instance.expect.push(Expectation {
        detector: "hung-task".into(),
        subject: format!("pid/{parent}"),
        evidence: vec![
            "stack classified as vfork-parent".into(),
            format!("(pid {child})"),
        ],
    });
    instance.expect.push(Expectation {
        detector: "hung-task".into(),
        subject: format!("pid/{sleeper}"),
        evidence: vec![
            "stack classified as frozen-cgroup".into(),
            format!("its cgroup {cgroup} is FROZEN"),
        ],
    });
    Ok(())
}

//! `zombies`: seed 001's calico CNI zombie. A helper forks three children named `calico`
//! that exit at once and never reaps them.

use super::Scenario;
use crate::process::spawn_helper;
use crate::{Expectation, LabContext, LabError, LabGuard};

pub(super) const SCENARIO: Scenario = Scenario {
    name: "zombies",
    summary: "a parent that never reaps its exited children (three `calico` zombies)",
    seed: "001 (a calico CNI process left as a zombie, never reaped)",
    settle_secs: 0,
    start,
};

fn start(guard: &mut LabGuard, cx: &LabContext) -> Result<(), LabError> {
    let pid = spawn_helper(
        guard,
        cx,
        "zombie-parent",
        &[],
        &["zombie-parent", "--children", "3", "--name", "calico"],
        |_| {},
    )?;
    let instance = guard.instance_mut();
    instance.facts.insert("parent_pid".into(), pid.to_string());
    instance.expect.push(Expectation {
        detector: "zombie-processes".into(),
        subject: format!("pid/{pid}"),
        evidence: vec!["3 zombie children".into(), "zombie calico".into()],
    });
    Ok(())
}

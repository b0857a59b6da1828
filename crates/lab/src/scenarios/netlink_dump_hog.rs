//! `netlink-dump-hog`: seed 003's kube-proxy burning CPU in `NodeIPs()`. A network namespace
//! with a 5,000-address `kube-ipvs0` (a bridge: this kernel may have no `dummy` module; the
//! kernel walks the addresses the same way), and a helper dumping every address of the
//! namespace over NETLINK_ROUTE in a loop on two threads (`RTM_GETADDR`, `NLM_F_DUMP`).
//! Deleting the namespace removes the device and its addresses.

use std::io::Write;
use std::process::{Command, Stdio};

use super::{require_root, Scenario};
use crate::process::spawn_helper;
use crate::{unique_suffix, Expectation, LabContext, LabError, LabGuard, Resource};

pub(super) const SCENARIO: Scenario = Scenario {
    name: "netlink-dump-hog",
    summary: "a process dumping the 5,000 addresses of kube-ipvs0 over netlink in a loop",
    seed: "003 (kube-proxy IPVS at 2 cores in NodeIPs() netlink dumps)",
    settle_secs: 0,
    start,
};

/// Addresses on kube-ipvs0: one per Service ClusterIP in kube-proxy's IPVS mode.
pub(crate) const ADDRESSES: u32 = 5_000;

fn ip(args: &[&str], stdin: Option<&str>) -> Result<(), LabError> {
    let what = format!("ip {}", args.join(" "));
    let mut child = Command::new("ip")
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| LabError::setup(SCENARIO.name, &what, e))?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes())
            .map_err(|e| LabError::setup(SCENARIO.name, &what, e))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| LabError::setup(SCENARIO.name, &what, e))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(LabError::setup(
            SCENARIO.name,
            &what,
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ))
    }
}

/// `ip -batch` lines adding [`ADDRESSES`] /32 addresses from 10.96.0.1 (a Service range).
fn address_batch(device: &str) -> String {
    let mut batch = String::with_capacity(ADDRESSES as usize * 48);
    for i in 0..ADDRESSES {
        let host = 0x0a60_0001u32 + i;
        let [a, b, c, d] = host.to_be_bytes();
        batch.push_str(&format!("address add {a}.{b}.{c}.{d}/32 dev {device}\n"));
    }
    batch
}

fn start(guard: &mut LabGuard, cx: &LabContext) -> Result<(), LabError> {
    require_root(SCENARIO.name)?;
    let netns = format!("ndlab-{}", unique_suffix());
    ip(&["netns", "add", &netns], None)?;
    guard.instance_mut().resources.push(Resource::NetNs {
        name: netns.clone(),
    });
    ip(
        &["-n", &netns, "link", "add", "kube-ipvs0", "type", "bridge"],
        None,
    )?;
    ip(
        &["-n", &netns, "-batch", "-"],
        Some(&address_batch("kube-ipvs0")),
    )?;
    let min = ADDRESSES.to_string();
    let pid = spawn_helper(
        guard,
        cx,
        "netlink-dumper",
        &["ip", "netns", "exec", &netns],
        &["netlink-dumper", "--min-addresses", &min, "--threads", "2"],
        |_| {},
    )?;
    let instance = guard.instance_mut();
    instance.facts.insert("hog_pid".into(), pid.to_string());
    instance.facts.insert("netns_name".into(), netns);
    instance.facts.insert("device".into(), "kube-ipvs0".into());
    instance.facts.insert("addresses".into(), min);
    instance.expect.push(Expectation {
        detector: "cpu-hog".into(),
        subject: format!("pid/{pid}"),
        evidence: vec!["netlink_dump".into(), "inet_dump_addr".into()],
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_batch_adds_every_address_once() {
        let batch = super::address_batch("kube-ipvs0");
        let lines: Vec<&str> = batch.lines().collect();
        assert_eq!(lines.len(), super::ADDRESSES as usize);
        assert_eq!(lines[0], "address add 10.96.0.1/32 dev kube-ipvs0");
        assert_eq!(lines[4999], "address add 10.96.19.136/32 dev kube-ipvs0");
        let unique: std::collections::HashSet<&str> = lines.iter().copied().collect();
        assert_eq!(unique.len(), lines.len());
    }
}

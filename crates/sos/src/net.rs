//! Network devices from `ip address show` text (`ip -d address` for the host, `ip netns exec
//! NS ip address show` for each named namespace, as sos's networking plugin saves them).

use nodedoc_model::NetDevice;

/// Words that start a detail line of `ip -d` and are not a device kind.
const NOT_KINDS: &[&str] = &[
    "inet",
    "inet6",
    "valid_lft",
    "altname",
    "link",
    "prop",
    "alias",
    "vf",
    "RX:",
    "TX:",
];

/// The devices of one `ip address show` listing; lines that do not parse are skipped.
pub(crate) fn parse_ip_address(text: &str) -> Vec<NetDevice> {
    let mut devices: Vec<NetDevice> = Vec::new();
    // Lines after a device's `link/` line, where `ip -d` prints the kind first.
    let mut after_link = false;
    for line in text.lines() {
        if !line.starts_with(char::is_whitespace) {
            after_link = false;
            let Some((index, rest)) = line.split_once(": ") else {
                continue;
            };
            let Ok(ifindex) = index.trim().parse::<u32>() else {
                continue;
            };
            let Some((name, rest)) = rest.split_once(": ") else {
                continue;
            };
            // `veth0@if12`, `eth0.100@eth0`: the name ends at `@`.
            let name = name.split('@').next().unwrap_or(name);
            let flags = rest
                .strip_prefix('<')
                .and_then(|r| r.split_once('>'))
                .map_or("", |(flags, _)| flags);
            devices.push(NetDevice {
                name: name.to_string(),
                ifindex,
                kind: None,
                up: flags.split(',').any(|f| f == "UP"),
            });
            continue;
        }
        let trimmed = line.trim_start();
        if trimmed.starts_with("link/") {
            after_link = true;
            continue;
        }
        if after_link {
            after_link = false;
            let word = trimmed.split_whitespace().next().unwrap_or("");
            if !word.is_empty()
                && !NOT_KINDS.contains(&word)
                && word
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            {
                if let Some(device) = devices.last_mut() {
                    device.kind = Some(word.to_string());
                }
            }
        }
    }
    devices
}

/// `ip netns` lines: `NAME` or `NAME (id: N)`.
pub(crate) fn parse_netns_list(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| !name.is_empty() && *name != "Object")
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_kinds_and_states() {
        // Recorded from sos 4.0's `ip -d address` on this project's test machine.
        let text = "\
1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue state UNKNOWN group default qlen 1000
    link/loopback 00:00:00:00:00:00 brd 00:00:00:00:00:00 promiscuity 0  allmulti 0 minmtu 0 maxmtu 0 numtxqueues 1
    inet 127.0.0.1/8 scope host lo
       valid_lft forever preferred_lft forever
5: ovs-netdev: <BROADCAST,MULTICAST,PROMISC> mtu 1500 qdisc noop state DOWN group default qlen 1000
    link/ether 0a:87:73:47:08:b0 brd ff:ff:ff:ff:ff:ff promiscuity 1  allmulti 0 minmtu 68 maxmtu 65521
    tun type tap pi off vnet_hdr off persist on numtxqueues 1 numrxqueues 1 gso_max_size 65536
12: veth0@if11: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue state UP group default qlen 1000
    link/ether 6a:7c:1b:c8:22:dc brd ff:ff:ff:ff:ff:ff link-netnsid 0
";
        let devices = parse_ip_address(text);
        assert_eq!(devices.len(), 3);
        assert_eq!(
            (
                devices[0].name.as_str(),
                devices[0].up,
                devices[0].kind.as_deref()
            ),
            ("lo", true, None)
        );
        assert_eq!(
            (devices[1].ifindex, devices[1].kind.as_deref()),
            (5, Some("tun"))
        );
        assert_eq!((devices[2].name.as_str(), devices[2].up), ("veth0", true));
        assert_eq!(
            parse_netns_list("qrouter-1 (id: 0)\nplain\n"),
            vec!["qrouter-1", "plain"]
        );
        assert!(parse_ip_address("garbage\n: :\n1: x\n").is_empty());
    }
}

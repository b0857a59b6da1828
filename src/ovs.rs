//! `nodedoc ovs ports`: every OVS interface with its owner, OpenFlow port, state and device —
//! the tap lifecycle of seed 002 (libvirt adds the port with iface-id/attached-mac/vm-uuid,
//! neutron's agent watches it, libvirt deletes it) made visible, with the device's namespace.

use std::io::Write;

use anyhow::{bail, Result};
use nodedoc_model::text::{terminal, write_json, write_json_pretty, Escaped};
use nodedoc_model::{
    NetworkNamespaces, OvsDbEvent, OvsDbEventKind, OvsState, Snapshot, SourceState,
};
use nodedoc_ovs::live::OvsTables;
use nodedoc_ovs::monitor::{Inbox, MonitorMessage, MonitorThread};
use serde::Serialize;
use unicode_width::UnicodeWidthStr;

use crate::cli::{Format, OvsSourceArgs};

/// One row of `ovs ports` (`--format json` prints an array of these).
#[derive(Debug, Serialize)]
pub struct PortRow {
    /// The bridge.
    pub bridge: String,
    /// Its datapath type (`system` when empty).
    pub datapath_type: String,
    /// The port.
    pub port: String,
    /// The interface.
    pub interface: String,
    /// The interface type (`system` when empty).
    #[serde(rename = "type")]
    pub interface_type: String,
    /// The OpenFlow port (null while unassigned, -1 when ovs-vswitchd failed).
    pub ofport: Option<i64>,
    /// `link_state`.
    pub link_state: Option<String>,
    /// `admin_state`.
    pub admin_state: Option<String>,
    /// `ifindex` as ovs-vswitchd sees it.
    pub ifindex: Option<i64>,
    /// `error`.
    pub error: Option<String>,
    /// `external_ids:iface-id`.
    pub iface_id: Option<String>,
    /// `external_ids:vm-uuid`.
    pub vm_uuid: Option<String>,
    /// `external_ids:attached-mac`.
    pub attached_mac: Option<String>,
    /// `external_ids:iface-status`.
    pub iface_status: Option<String>,
    /// Where its device is: one entry per namespace holding a device of that name.
    pub device: Vec<DeviceLocation>,
    /// True when the kernel-backed interface has no device in any namespace read.
    pub device_missing: bool,
}

/// A device found for an interface.
#[derive(Debug, Serialize)]
pub struct DeviceLocation {
    /// `host`, the `ip netns` name, or `net:[INODE]`.
    pub namespace: String,
    /// The namespace inode.
    pub netns_inode: u64,
    /// The device's ifindex there.
    pub ifindex: u32,
}

fn kernel_backed(interface_type: &str) -> bool {
    nodedoc_detectors::catalog()
        .ovs
        .kernel_device_types
        .iter()
        .any(|t| t == interface_type)
}

/// The rows of `ovs ports`.
pub fn rows(ovs: &OvsState, network: Option<&NetworkNamespaces>) -> Vec<PortRow> {
    let system = |t: &str| {
        if t.is_empty() {
            "system".to_string()
        } else {
            t.to_string()
        }
    };
    ovs.interfaces()
        .map(|(bridge, port, iface)| {
            let device: Vec<DeviceLocation> = network
                .map(|n| n.find(&iface.name))
                .unwrap_or_default()
                .into_iter()
                .map(|(ns, d)| DeviceLocation {
                    namespace: if ns.initial {
                        "host".to_string()
                    } else {
                        ns.names
                            .first()
                            .cloned()
                            .unwrap_or_else(|| format!("net:[{}]", ns.inode))
                    },
                    netns_inode: ns.inode,
                    ifindex: d.ifindex,
                })
                .collect();
            let device_missing =
                network.is_some() && device.is_empty() && kernel_backed(&iface.interface_type);
            PortRow {
                bridge: bridge.name.clone(),
                datapath_type: system(&bridge.datapath_type),
                port: port.name.clone(),
                interface: iface.name.clone(),
                interface_type: system(&iface.interface_type),
                ofport: iface.ofport,
                link_state: iface.link_state.clone(),
                admin_state: iface.admin_state.clone(),
                ifindex: iface.ifindex,
                error: iface.error.clone(),
                iface_id: iface.iface_id().map(str::to_string),
                vm_uuid: iface.vm_uuid().map(str::to_string),
                attached_mac: iface.attached_mac().map(str::to_string),
                iface_status: iface.iface_status().map(str::to_string),
                device,
                device_missing,
            }
        })
        .collect()
}

/// Fails unless the snapshot holds Open vSwitch; says why.
pub fn require_ovs(snapshot: &Snapshot) -> Result<&OvsState> {
    match &snapshot.ovs {
        Some(ovs) => Ok(ovs),
        None => {
            let why = snapshot
                .source("ovsdb")
                .map_or("not read".to_string(), |s| s.detail.clone());
            bail!("cannot read Open vSwitch: {why}")
        }
    }
}

/// `nodedoc ovs ports`.
pub fn ports(source: &OvsSourceArgs, format: Format) -> Result<u8> {
    let snapshot = nodedoc_collect::collect_ovs_only(&source.source())?;
    // Nothing of the OVS view is printed (nor changed) from a source other than the one named.
    let unusable = crate::unusable_named_inputs(source, &snapshot);
    if let Some(code) = crate::fail_on_unusable(&unusable) {
        return Ok(code);
    }
    if snapshot
        .source("ovsdb")
        .is_some_and(|s| s.state == SourceState::Absent)
        && format == Format::Text
    {
        println!(
            "no Open vSwitch here ({})",
            Escaped(snapshot.source("ovsdb").map_or("", |s| s.detail.as_str()))
        );
        return Ok(crate::exit::OK);
    }
    let ovs = require_ovs(&snapshot)?;
    let rows = rows(ovs, snapshot.network.as_ref());
    // Thousands of rows: one buffer, not a write per line (and no colour to strip).
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    match format {
        Format::Json => {
            write_json_pretty(&mut out, &rows)?;
            writeln!(out)?;
        }
        Format::Text => write_table(&mut out, &rows, ovs.bridges.len())?,
    }
    out.flush()?;
    Ok(crate::exit::OK)
}

/// How long `ovs ports --watch` waits for the monitor's first copy of the database.
const FIRST_COPY: std::time::Duration = std::time::Duration::from_secs(10);

/// An interface as it was when `ovs ports --watch` started (`--format json`).
#[derive(Debug, Serialize)]
struct Present<'a> {
    at: String,
    event: &'static str,
    interface: &'a str,
    uuid: &'a str,
    bridge: &'a str,
    #[serde(rename = "type")]
    interface_type: &'a str,
    ofport: Option<i64>,
    external_ids: &'a std::collections::BTreeMap<String, String>,
}

/// One event of `ovs ports --watch --format json`.
#[derive(Debug, Serialize)]
struct WatchLine<'a> {
    at: String,
    #[serde(flatten)]
    event: &'a OvsDbEvent,
}

fn rfc3339(unix_ms: u64) -> String {
    humantime::format_rfc3339_millis(
        std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(unix_ms),
    )
    .to_string()
}

/// One line of `ovs ports --watch`: when, what, which interface on which bridge, the facts;
/// escaped for a terminal (names and external_ids are anyone's text).
pub fn event_line(event: &OvsDbEvent) -> String {
    let ofport = |p: Option<i64>| p.map_or("unassigned".to_string(), |p| p.to_string());
    let ids = |map: &std::collections::BTreeMap<String, String>| {
        map.iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let detail = match &event.kind {
        OvsDbEventKind::Inserted {
            interface_type,
            ofport: port,
            external_ids,
        } => {
            let mut detail = format!(
                ": type {}",
                if interface_type.is_empty() {
                    "system"
                } else {
                    interface_type
                }
            );
            if port.is_some() {
                detail.push_str(&format!(", ofport {}", ofport(*port)));
            }
            if !external_ids.is_empty() {
                detail.push_str(&format!(", {}", ids(external_ids)));
            }
            detail
        }
        OvsDbEventKind::Ofport { from, to } => {
            format!(": ofport {} -> {}", ofport(*from), ofport(*to))
        }
        OvsDbEventKind::ExternalIds { external_ids } => format!(": {}", ids(external_ids)),
        OvsDbEventKind::Error { error } => match error {
            Some(error) => format!(": {error}"),
            None => ": cleared".to_string(),
        },
        OvsDbEventKind::LinkState { link_state } => {
            format!(": {}", link_state.as_deref().unwrap_or("unknown"))
        }
        OvsDbEventKind::Deleted { ofport: port } => format!(" (ofport {})", ofport(*port)),
    };
    let line = format!(
        "{}  {:<12} {} on {}{detail}",
        rfc3339(event.at_unix_ms),
        event.kind.name(),
        event.interface,
        event.bridge.as_deref().unwrap_or("no bridge"),
    );
    terminal(&line).into_owned()
}

/// `nodedoc ovs ports --watch`: the interfaces now, then every change of their rows as it
/// happens (see the flag's help).
pub fn watch_ports(source: &OvsSourceArgs, format: Format) -> Result<u8> {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    let explicit = source.ovsdb.is_some();
    let text = source
        .ovsdb
        .as_deref()
        .unwrap_or(nodedoc_ovs::DEFAULT_ENDPOINT);
    let endpoint: nodedoc_ovsdb::Endpoint = text.parse()?;
    if let Err(missing) = nodedoc_ovs::socket_check(&endpoint, explicit) {
        if missing.state == SourceState::Absent && format == Format::Text {
            println!("no Open vSwitch here ({})", Escaped(&missing.detail));
            return Ok(crate::exit::OK);
        }
        bail!("cannot read Open vSwitch: {}", missing.detail);
    }
    let inbox = Inbox::new();
    let _monitor = MonitorThread::spawn(endpoint.clone(), Default::default(), &inbox)?;
    let stop = Arc::new(AtomicBool::new(false));
    {
        let (stop, waker) = (stop.clone(), inbox.waker());
        ctrlc::set_handler(move || {
            stop.store(true, Ordering::SeqCst);
            waker.wake();
        })?;
    }
    let deadline = std::time::Instant::now() + FIRST_COPY;
    let (mut tables, at) = loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match inbox.recv_timeout(left) {
            Some(MonitorMessage::Resync {
                rows, at_unix_ms, ..
            }) => break (OvsTables::from_rows(rows), at_unix_ms),
            Some(MonitorMessage::Disconnected { error, .. }) => {
                bail!("cannot read Open vSwitch at {endpoint}: {error}")
            }
            _ if stop.load(Ordering::SeqCst) => return Ok(crate::exit::OK),
            Some(_) => {}
            None => bail!("no answer from {endpoint} within {}s", FIRST_COPY.as_secs()),
        }
    };
    let state = tables.to_state(&endpoint.to_string());
    let mut out = std::io::stdout().lock();
    match format {
        Format::Text => {
            let network = nodedoc_ovs::netns::collect(
                &nodedoc_ovs::netns::process_namespaces(),
                std::path::Path::new(nodedoc_ovs::netns::NETNS_RUN_DIR),
            );
            write_table(&mut out, &rows(&state, Some(&network)), state.bridges.len())?;
            eprintln!("nodedoc: following {endpoint} (interrupt to stop)");
        }
        Format::Json => {
            for (bridge, _, interface) in state.interfaces() {
                let line = Present {
                    at: rfc3339(at),
                    event: "present",
                    interface: &interface.name,
                    uuid: &interface.uuid,
                    bridge: &bridge.name,
                    interface_type: &interface.interface_type,
                    ofport: interface.ofport,
                    external_ids: &interface.external_ids,
                };
                write_json(&mut out, &line)?;
                writeln!(out)?;
            }
        }
    }
    out.flush()?;
    while !stop.load(Ordering::SeqCst) {
        let Some(message) = inbox.recv_timeout(std::time::Duration::from_secs(1)) else {
            continue;
        };
        let events = match message {
            MonitorMessage::Update { rows, at_unix_ms } => tables.apply(rows, at_unix_ms).events,
            MonitorMessage::Resync {
                rows, at_unix_ms, ..
            } => {
                eprintln!("nodedoc: reconnected to {endpoint}; changes meanwhile follow");
                tables.replace(rows, at_unix_ms)
            }
            MonitorMessage::Disconnected { error, retry_in } => {
                eprintln!(
                    "nodedoc: lost {endpoint}: {}; retrying in {:.1}s",
                    Escaped(&error),
                    retry_in.as_secs_f64()
                );
                continue;
            }
            MonitorMessage::Wake => continue,
        };
        for event in &events {
            match format {
                Format::Text => writeln!(out, "{}", event_line(event))?,
                Format::Json => {
                    write_json(
                        &mut out,
                        &WatchLine {
                            at: rfc3339(event.at_unix_ms),
                            event,
                        },
                    )?;
                    writeln!(out)?;
                }
            }
        }
        out.flush()?;
    }
    Ok(crate::exit::OK)
}

/// The `ovs ports` table. Every cell is escaped first (names, namespace names and
/// external_ids are anyone's text), and columns are as wide as the escaped cells look on a
/// terminal (a CJK character takes two columns).
fn write_table(out: &mut dyn Write, rows: &[PortRow], bridges: usize) -> std::io::Result<()> {
    let dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".to_string());
    let lines: Vec<[String; 7]> = rows
        .iter()
        .map(|row| {
            let device = if row.device.is_empty() {
                if row.device_missing {
                    "MISSING (no netns has it)".to_string()
                } else {
                    "-".to_string()
                }
            } else {
                row.device
                    .iter()
                    .map(|d| format!("{} #{}", d.namespace, d.ifindex))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let mut owner = Vec::new();
            if let Some(v) = &row.iface_id {
                owner.push(format!("iface-id={v}"));
            }
            if let Some(v) = &row.vm_uuid {
                owner.push(format!("vm-uuid={v}"));
            }
            if let Some(v) = &row.attached_mac {
                owner.push(format!("mac={v}"));
            }
            [
                row.bridge.clone(),
                row.interface.clone(),
                row.interface_type.clone(),
                row.ofport.map_or("-".to_string(), |p| p.to_string()),
                format!("{}/{}", dash(&row.admin_state), dash(&row.link_state)),
                device,
                owner.join(" "),
            ]
            .map(|cell| terminal(&cell).into_owned())
        })
        .collect();
    let header = [
        "BRIDGE",
        "INTERFACE",
        "TYPE",
        "OFPORT",
        "ADMIN/LINK",
        "DEVICE",
        "OWNER",
    ];
    let mut widths = header.map(str::len);
    for line in &lines {
        for (width, cell) in widths.iter_mut().zip(line) {
            *width = (*width).max(cell.width());
        }
    }
    // `{:<width$}` pads by characters, not columns: pad by hand.
    let write_line = |out: &mut dyn Write, cells: [&str; 7]| -> std::io::Result<()> {
        for (i, (cell, width)) in cells.iter().zip(widths).enumerate() {
            let pad = " ".repeat(width.saturating_sub(cell.width()));
            match i {
                3 => write!(out, "{pad}{cell}  ")?,
                6 => write!(out, "{cell}")?,
                _ => write!(out, "{cell}{pad}  ")?,
            }
        }
        writeln!(out)
    };
    write_line(out, header)?;
    for (line, row) in lines.iter().zip(rows) {
        write_line(out, line.each_ref().map(String::as_str))?;
        if let Some(error) = &row.error {
            writeln!(
                out,
                "{:>w$}error: {}",
                "",
                Escaped(error),
                w = widths[0] + 2
            )?;
        }
    }
    let missing = rows.iter().filter(|r| r.device_missing).count();
    writeln!(
        out,
        "{} interfaces on {bridges} bridges; {missing} without a device (see `nodedoc check`, `nodedoc fix ovs-orphan-port`)",
        rows.len(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(bridge: &str, interface: &str, iface_id: Option<&str>) -> PortRow {
        PortRow {
            bridge: bridge.into(),
            datapath_type: "netdev".into(),
            port: interface.into(),
            interface: interface.into(),
            interface_type: "system".into(),
            ofport: Some(-1),
            link_state: None,
            admin_state: None,
            ifindex: None,
            error: Some(format!(
                "could not open network device {interface} (No such device)"
            )),
            iface_id: iface_id.map(str::to_string),
            vm_uuid: None,
            attached_mac: None,
            iface_status: None,
            device: vec![],
            device_missing: true,
        }
    }

    #[test]
    fn watch_lines_name_the_event_and_escape_host_text() {
        let event = OvsDbEvent {
            at_unix_ms: 1_780_000_000_123,
            interface: "tap\u{1b}[2Jx".into(),
            uuid: "u".into(),
            bridge: Some("br-int".into()),
            kind: OvsDbEventKind::Inserted {
                interface_type: String::new(),
                ofport: None,
                external_ids: [
                    ("vm-uuid".to_string(), "8f6b\nFAKE".to_string()),
                    ("iface-id".to_string(), "5bd1".to_string()),
                ]
                .into(),
            },
        };
        let line = event_line(&event);
        assert_eq!(
            line,
            "2026-05-28T20:26:40.123Z  inserted     tap\\e[2Jx on br-int: type system, iface-id=5bd1 vm-uuid=8f6b\\nFAKE"
        );
        let ofport = OvsDbEvent {
            kind: OvsDbEventKind::Ofport {
                from: None,
                to: Some(5),
            },
            interface: "tap0".into(),
            ..event.clone()
        };
        assert!(
            event_line(&ofport).ends_with("ofport       tap0 on br-int: ofport unassigned -> 5")
        );
        let deleted = OvsDbEvent {
            kind: OvsDbEventKind::Deleted { ofport: Some(5) },
            interface: "tap0".into(),
            bridge: None,
            ..event
        };
        assert!(event_line(&deleted).ends_with("deleted      tap0 on no bridge (ofport 5)"));
    }

    #[test]
    fn the_table_escapes_names_and_aligns_on_what_the_terminal_shows() {
        let rows = [
            row("br0", "z$(touch${IFS}pwned)", None),
            row("br0", "e\u{1b}]0;x\u{7}\nCRITICAL", Some("\u{1b}[2J")),
            row("br0", "日本語", Some("plain")),
            row("br0", "tap0", None),
        ];
        let mut out = Vec::new();
        write_table(&mut out, &rows, 1).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            !text
                .chars()
                .any(|c| c != '\n' && nodedoc_model::text::is_unsafe_char(c)),
            "{text:?}"
        );
        let lines: Vec<&str> = text.lines().collect();
        // A header, then each row with its error line, then the total: no forged line.
        assert_eq!(lines.len(), 1 + 2 * rows.len() + 1, "{text}");
        assert!(
            lines[3].starts_with("br0     e\\e]0;x\\x07\\nCRITICAL  system"),
            "{text}"
        );
        assert!(lines[3].ends_with("iface-id=\\e[2J"), "{text}");
        assert!(lines[4].contains("error: could not open network device e\\e]0;x\\x07\\nCRITICAL"));
        // Every row's TYPE column starts at the header's column, counted in terminal columns.
        let column = |line: &str| {
            let at = line.find("TYPE").or_else(|| line.find("system")).unwrap();
            line[..at].width()
        };
        let header = column(lines[0]);
        for line in [lines[1], lines[3], lines[5], lines[7]] {
            assert_eq!(column(line), header, "{text}");
        }
    }
}

//! Open vSwitch as sos saved it: the database in OVSDB's `list` text format
//! (`ovsdb-client -f list dump`, else `ovs-vsctl -t 5 list interface` with `ovs-vsctl show`
//! for the topology), turned into the snapshot's [`OvsState`].
//!
//! The `list` format is one `column : value` line per column, a blank line between rows and,
//! in a dump, a `NAME table` line before each table. Values are OVSDB's text atoms: bare words
//! or double-quoted strings with backslash escapes, sets `[a, b]`, maps `{k=v, "k 2"="v"}`.

use std::collections::{BTreeMap, HashMap};

use nodedoc_model::{OvsBridge, OvsInterface, OvsPort, OvsState};

/// One row: column → raw value text.
pub(crate) type Row = BTreeMap<String, String>;

/// Parses `list` text into rows by table (`""` for a listing without table lines).
pub(crate) fn parse_tables(text: &str) -> HashMap<String, Vec<Row>> {
    let mut tables: HashMap<String, Vec<Row>> = HashMap::new();
    let mut table = String::new();
    let mut row = Row::new();
    let flush = |tables: &mut HashMap<String, Vec<Row>>, table: &str, row: &mut Row| {
        if !row.is_empty() {
            tables
                .entry(table.to_string())
                .or_default()
                .push(std::mem::take(row));
        }
    };
    for line in text.lines() {
        if line.trim().is_empty() {
            flush(&mut tables, &table, &mut row);
            continue;
        }
        if let Some(name) = line.strip_suffix(" table") {
            if !name.contains(' ') && !name.contains(':') {
                flush(&mut tables, &table, &mut row);
                table = name.to_string();
                continue;
            }
        }
        if let Some((key, value)) = line.split_once(':') {
            let key = key.trim();
            if !key.is_empty() && !key.contains(' ') {
                row.insert(key.to_string(), value.trim().to_string());
            }
        }
    }
    flush(&mut tables, &table, &mut row);
    tables
}

/// Splits `a, "b, c", d` at top-level commas (outside quotes and brackets).
fn split_top(text: &str, separator: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut quoted, mut escaped, mut start) = (0i32, false, false, 0);
    for (i, c) in text.char_indices() {
        if quoted {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => quoted = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => quoted = true,
            '[' | '{' => depth += 1,
            ']' | '}' => depth -= 1,
            c if c == separator && depth == 0 => {
                parts.push(text[start..i].trim());
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    let last = text[start..].trim();
    if !last.is_empty() {
        parts.push(last);
    }
    parts
}

/// An atom: a quoted string unescaped, or a bare word.
pub(crate) fn atom(text: &str) -> String {
    let text = text.trim();
    let Some(inner) = text.strip_prefix('"').and_then(|t| t.strip_suffix('"')) else {
        return text.to_string();
    };
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

/// An optional atom: `[]` is none.
fn optional(text: Option<&String>) -> Option<String> {
    let text = text?.trim();
    (text != "[]" && !text.is_empty()).then(|| atom(text))
}

fn set(text: Option<&String>) -> Vec<String> {
    let Some(text) = text else { return Vec::new() };
    let text = text.trim();
    let inner = text
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(text);
    split_top(inner, ',').into_iter().map(atom).collect()
}

fn map(text: Option<&String>) -> BTreeMap<String, String> {
    let Some(text) = text else {
        return BTreeMap::new();
    };
    let inner = text
        .trim()
        .strip_prefix('{')
        .and_then(|t| t.strip_suffix('}'))
        .unwrap_or("");
    split_top(inner, ',')
        .into_iter()
        .filter_map(|pair| {
            let parts = split_top(pair, '=');
            match parts.as_slice() {
                [k, v] => Some((atom(k), atom(v))),
                _ => None,
            }
        })
        .collect()
}

fn int(text: Option<&String>) -> Option<i64> {
    optional(text)?.parse().ok()
}

fn interface(row: &Row) -> OvsInterface {
    OvsInterface {
        uuid: atom(row.get("_uuid").map_or("", String::as_str)),
        name: atom(row.get("name").map_or("", String::as_str)),
        interface_type: atom(row.get("type").map_or("", String::as_str)),
        ofport: int(row.get("ofport")),
        error: optional(row.get("error")),
        link_state: optional(row.get("link_state")),
        admin_state: optional(row.get("admin_state")),
        ifindex: int(row.get("ifindex")),
        mac_in_use: optional(row.get("mac_in_use")),
        external_ids: map(row.get("external_ids")),
    }
}

/// The state from `ovsdb-client -f list dump`: every bridge with its ports and interfaces.
pub(crate) fn from_dump(text: &str, endpoint: &str) -> Option<OvsState> {
    let tables = parse_tables(text);
    let interfaces: HashMap<String, OvsInterface> = tables
        .get("Interface")?
        .iter()
        .map(interface)
        .map(|i| (i.uuid.clone(), i))
        .collect();
    let ports: HashMap<String, &Row> = tables
        .get("Port")
        .into_iter()
        .flatten()
        .map(|r| (atom(r.get("_uuid").map_or("", String::as_str)), r))
        .collect();
    let mut state = root_state(tables.get("Open_vSwitch").and_then(|r| r.first()), endpoint);
    for bridge in tables.get("Bridge").into_iter().flatten() {
        let mut b = OvsBridge {
            uuid: atom(bridge.get("_uuid").map_or("", String::as_str)),
            name: atom(bridge.get("name").map_or("", String::as_str)),
            datapath_type: atom(bridge.get("datapath_type").map_or("", String::as_str)),
            ports: Vec::new(),
        };
        for port_uuid in set(bridge.get("ports")) {
            let Some(port) = ports.get(&port_uuid) else {
                continue;
            };
            let mut p = OvsPort {
                uuid: port_uuid.clone(),
                name: atom(port.get("name").map_or("", String::as_str)),
                interfaces: set(port.get("interfaces"))
                    .iter()
                    .filter_map(|u| interfaces.get(u).cloned())
                    .collect(),
            };
            p.interfaces.sort_by(|a, b| a.name.cmp(&b.name));
            b.ports.push(p);
        }
        b.ports.sort_by(|a, b| a.name.cmp(&b.name));
        state.bridges.push(b);
    }
    state.bridges.sort_by(|a, b| a.name.cmp(&b.name));
    Some(state)
}

fn root_state(root: Option<&Row>, endpoint: &str) -> OvsState {
    let other_config = root.map(|r| map(r.get("other_config"))).unwrap_or_default();
    let number = |key: &str| other_config.get(key).and_then(|v| v.parse::<u32>().ok());
    OvsState {
        endpoint: endpoint.to_string(),
        ovs_version: root.and_then(|r| optional(r.get("ovs_version"))),
        db_version: root.and_then(|r| optional(r.get("db_version"))),
        datapath_types: root
            .map(|r| set(r.get("datapath_types")))
            .unwrap_or_default(),
        n_handler_threads: number("n-handler-threads"),
        n_revalidator_threads: number("n-revalidator-threads"),
        next_cfg: root.and_then(|r| int(r.get("next_cfg"))).unwrap_or(0),
        cur_cfg: root.and_then(|r| int(r.get("cur_cfg"))).unwrap_or(0),
        other_config,
        ..OvsState::default()
    }
}

/// The state from `ovs-vsctl list interface` (rows), `ovs-vsctl show` (which bridge and port
/// each interface is on) and `ovs-vsctl list Open_vSwitch`, when the dump is missing.
pub(crate) fn from_listings(
    interfaces: &str,
    show: Option<&str>,
    root: Option<&str>,
    endpoint: &str,
) -> Option<OvsState> {
    let rows = parse_tables(interfaces);
    let rows: HashMap<String, OvsInterface> = rows
        .get("")?
        .iter()
        .map(interface)
        .map(|i| (i.name.clone(), i))
        .collect();
    let root_rows = root.map(parse_tables);
    let mut state = root_state(
        root_rows
            .as_ref()
            .and_then(|t| t.get(""))
            .and_then(|r| r.first()),
        endpoint,
    );
    let mut placed: Vec<String> = Vec::new();
    for line in show.unwrap_or("").lines() {
        let trimmed = line.trim_start();
        if let Some(name) = trimmed.strip_prefix("Bridge ") {
            state.bridges.push(OvsBridge {
                name: atom(name),
                ..OvsBridge::default()
            });
        } else if let Some(name) = trimmed.strip_prefix("Port ") {
            if let Some(b) = state.bridges.last_mut() {
                b.ports.push(OvsPort {
                    name: atom(name),
                    ..OvsPort::default()
                });
            }
        } else if let Some(name) = trimmed.strip_prefix("Interface ") {
            let name = atom(name);
            if let Some(p) = state.bridges.last_mut().and_then(|b| b.ports.last_mut()) {
                if let Some(row) = rows.get(&name) {
                    p.interfaces.push(row.clone());
                    placed.push(name);
                }
            }
        } else if let Some(kind) = trimmed.strip_prefix("datapath_type: ") {
            if let Some(b) = state.bridges.last_mut() {
                b.datapath_type = atom(kind);
            }
        }
    }
    // Interfaces `show` did not place stay visible, on a bridge of unknown name.
    let mut unplaced: Vec<&OvsInterface> = rows
        .values()
        .filter(|i| !placed.contains(&i.name))
        .collect();
    if !unplaced.is_empty() {
        unplaced.sort_by(|a, b| a.name.cmp(&b.name));
        state.bridges.push(OvsBridge {
            name: "?".to_string(),
            ports: unplaced
                .into_iter()
                .map(|i| OvsPort {
                    name: i.name.clone(),
                    interfaces: vec![i.clone()],
                    ..OvsPort::default()
                })
                .collect(),
            ..OvsBridge::default()
        });
    }
    Some(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Trimmed from `ovsdb-client -f list dump` as sos 4.0 saved it on this project's test
    /// machine with the ovs-netns-leak lab running (OVS 3.1).
    const DUMP: &str = r#"AutoAttach table

Bridge table
_uuid               : 5b1c3b0e-0000-4000-8000-000000000001
datapath_type       : netdev
name                : br-int-dbbc25
ports               : [0c28980a-21c3-4cb5-9e6f-67965f1bc98e, df58d52f-d234-4b62-bb40-4a30df879d53]

Interface table
_uuid               : 25b9b02c-9242-4f4f-a992-f55df18c2c5f
admin_state         : down
error               : []
external_ids        : {attached-mac="fa:16:3e:4a:52:36", iface-id="d489f511-9f9f-49e9-b772-f43bf3bfa04b", iface-status=active, "odd key"="a, b=c"}
ifindex             : 0
link_state          : down
mac_in_use          : "9e:55:b8:56:b9:5a"
name                : ha-dbbc25-9f
ofport              : 6
type                : internal

_uuid               : 46cf225c-2c75-42bc-85b8-654dc2042212
error               : "could not open network device tap-x (No such device)"
ifindex             : []
name                : br-int-dbbc25
ofport              : -1
type                : internal

Open_vSwitch table
_uuid               : 1d7b6f35-0000-4000-8000-000000000009
cur_cfg             : 12
datapath_types      : [netdev, system]
next_cfg            : 12
other_config        : {n-handler-threads="4"}
ovs_version         : "3.1.0"

Port table
_uuid               : df58d52f-d234-4b62-bb40-4a30df879d53
interfaces          : [46cf225c-2c75-42bc-85b8-654dc2042212]
name                : br-int-dbbc25

_uuid               : 0c28980a-21c3-4cb5-9e6f-67965f1bc98e
interfaces          : [25b9b02c-9242-4f4f-a992-f55df18c2c5f]
name                : ha-dbbc25-9f
"#;

    #[test]
    fn the_dump_gives_bridges_ports_and_interfaces() {
        let state = from_dump(DUMP, "sos").unwrap();
        assert_eq!(state.ovs_version.as_deref(), Some("3.1.0"));
        assert_eq!(state.datapath_types, vec!["netdev", "system"]);
        assert_eq!(state.n_handler_threads, Some(4));
        assert_eq!((state.next_cfg, state.cur_cfg), (12, 12));
        assert_eq!(state.bridges.len(), 1);
        assert_eq!(state.bridges[0].datapath_type, "netdev");
        let (bridge, port, ha) = state.interface("ha-dbbc25-9f").unwrap();
        assert_eq!(
            (bridge.name.as_str(), port.name.as_str()),
            ("br-int-dbbc25", "ha-dbbc25-9f")
        );
        assert_eq!(
            (ha.ofport, ha.ifindex, ha.error.as_deref()),
            (Some(6), Some(0), None)
        );
        assert_eq!(ha.iface_id(), Some("d489f511-9f9f-49e9-b772-f43bf3bfa04b"));
        assert_eq!(ha.external_ids["odd key"], "a, b=c");
        assert_eq!(ha.mac_in_use.as_deref(), Some("9e:55:b8:56:b9:5a"));
        let (_, _, br) = state.interface("br-int-dbbc25").unwrap();
        assert_eq!(br.ofport, Some(-1));
        assert_eq!(br.ifindex, None);
        assert!(br.error.as_deref().unwrap().contains("No such device"));
    }

    #[test]
    fn listings_stand_in_for_a_missing_dump() {
        let interfaces = "_uuid               : 25b9\nname                : ha-1\nofport              : 6\nifindex             : 0\ntype                : \"\"\n\n_uuid : 77\nname : lost\n";
        let show = "1d7b\n    Bridge br-int\n        datapath_type: netdev\n        Port ha-1\n            Interface ha-1\n                type: internal\n    ovs_version: \"3.1.0\"\n";
        let state = from_listings(interfaces, Some(show), None, "sos").unwrap();
        let (bridge, _, ha) = state.interface("ha-1").unwrap();
        assert_eq!(
            (bridge.name.as_str(), bridge.datapath_type.as_str()),
            ("br-int", "netdev")
        );
        assert_eq!(ha.interface_type, "");
        assert_eq!(ha.ofport, Some(6));
        assert_eq!(state.interface("lost").unwrap().0.name, "?");
    }

    #[test]
    fn odd_text_does_not_panic() {
        for text in [
            "",
            "x",
            ":",
            "Interface table\n: :\n[[[",
            "name : \"unterminated\\",
        ] {
            let _ = from_dump(text, "sos");
            let _ = from_listings(text, Some(text), Some(text), "sos");
        }
    }
}

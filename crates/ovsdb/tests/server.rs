//! End-to-end tests against a real, private ovsdb-server (see `nodedoc_ovsdb::testing`).
//! Changes are made both through this client and externally with `ovs-vsctl`.

use std::time::Duration;

use nodedoc_ovsdb::testing::{TestServer, TestServerOptions};
use nodedoc_ovsdb::{
    Atom, Client, Condition, Datum, Error, Insert, Interface, MonitorEvent, MonitorRequest, Mutate,
    Mutation, Operation, OvsDump, ReconnectOptions, ReconnectingMonitor, Row, RowUpdate2, Select,
    TableReplica, TableUpdates2, Update, Wait, WaitUntil, OPEN_VSWITCH_DB,
};
use serde_json::json;

/// Generous bound so a broken test fails instead of hanging; never a performance assertion.
const PATIENCE: Duration = Duration::from_secs(30);

fn server() -> TestServer {
    TestServer::start().expect("start ovsdb-server (is openvswitch-switch installed?)")
}

async fn connect(server: &TestServer) -> Client {
    Client::connect(server.endpoint()).await.expect("connect")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_dbs_and_get_schema() {
    let server = server();
    let client = connect(&server).await;
    let dbs = client.list_dbs().await.unwrap();
    assert!(dbs.contains(&"Open_vSwitch".to_owned()), "{dbs:?}");
    assert!(dbs.contains(&"_Server".to_owned()), "{dbs:?}");

    let schema = client.get_schema(OPEN_VSWITCH_DB).await.unwrap();
    assert_eq!(schema.name, "Open_vSwitch");
    assert!(schema.version.is_some());
    assert!(schema
        .column_type("Interface", "ofport")
        .unwrap()
        .is_optional_scalar());
    assert!(schema
        .column_type("Bridge", "ports")
        .unwrap()
        .is_multi_set());

    match client.get_schema("Nope").await.unwrap_err() {
        Error::Rpc { error, .. } => assert_eq!(error.error, "unknown database"),
        other => panic!("{other}"),
    }
    assert_eq!(
        client
            .echo(vec![json!("ping"), json!({"n": 1})])
            .await
            .unwrap(),
        vec![json!("ping"), json!({"n": 1})]
    );
}

/// Inserts br-test with a bonded port (two interfaces) and a single-interface port.
fn insert_bridge_ops() -> Vec<Operation> {
    vec![
        Insert::new("Interface")
            .value("name", "vif1")
            .value(
                "external_ids",
                Datum::map([
                    ("iface-id", "lport-1"),
                    ("attached-mac", "fa:16:3e:00:00:01"),
                    ("vm-uuid", "8c1a0c52-1c3b-4a3f-9a57-8b0f6c1d2e3f"),
                    ("iface-status", "active"),
                ]),
            )
            .value("options", Datum::map([("key", "flow")]))
            .uuid_name("vif1")
            .into(),
        Insert::new("Interface")
            .value("name", "bond-a")
            .uuid_name("bond_a")
            .into(),
        Insert::new("Interface")
            .value("name", "bond-b")
            .value("type", "internal")
            .uuid_name("bond_b")
            .into(),
        // A set of one written as the bare atom (the single-element-set shorthand).
        Insert::new("Port")
            .value("name", "vif1")
            .value("interfaces", Datum::named_uuid("vif1"))
            .uuid_name("port_vif1")
            .into(),
        Insert::new("Port")
            .value("name", "bond0")
            .value(
                "interfaces",
                Datum::set([
                    Atom::NamedUuid("bond_a".into()),
                    Atom::NamedUuid("bond_b".into()),
                ]),
            )
            .value("tag", 42i64)
            .uuid_name("port_bond")
            .into(),
        Insert::new("Bridge")
            .value("name", "br-test")
            .value(
                "ports",
                Datum::set([
                    Atom::NamedUuid("port_vif1".into()),
                    Atom::NamedUuid("port_bond".into()),
                ]),
            )
            .value("external_ids", Datum::map([("owner", "nodedoc")]))
            .value(
                "other_config",
                Datum::map([("hwaddr", "02:00:00:00:00:01")]),
            )
            .uuid_name("br")
            .into(),
        Mutate::new("Open_vSwitch")
            .mutation(Mutation::insert("bridges", Datum::named_uuid("br")))
            .into(),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transact_insert_then_read_back_with_typed_helpers() {
    let server = TestServer::start_with(TestServerOptions { tcp: true }).unwrap();
    let client = connect(&server).await;

    let results = client
        .transact(OPEN_VSWITCH_DB, insert_bridge_ops())
        .await
        .unwrap();
    assert_eq!(results.len(), 7);
    let bridge_uuid = results[5].uuid.expect("insert returns the uuid");
    assert_eq!(results[6].count, Some(1));

    let selected = client
        .transact(
            OPEN_VSWITCH_DB,
            [Select::new("Bridge")
                .where_eq("name", "br-test")
                .columns(["_uuid", "name", "ports"])
                .into()],
        )
        .await
        .unwrap();
    let rows = selected[0].rows();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].uuid(), Some(bridge_uuid));
    assert_eq!(rows[0].reader("Bridge").uuid_set("ports").unwrap().len(), 2);

    // Mark vif1 as a failed port the way ovs-vswitchd would.
    client
        .transact(
            OPEN_VSWITCH_DB,
            [Update::new("Interface")
                .where_eq("name", "vif1")
                .value("ofport", -1i64)
                .value(
                    "error",
                    "could not open network device vif1 (No such device)",
                )
                .into()],
        )
        .await
        .unwrap();

    // Over TCP this time, through the one-call dump.
    let tcp = server.tcp_endpoint().unwrap();
    let dump = nodedoc_ovsdb::dump(tcp.as_str(), PATIENCE).await.unwrap();
    let ovs = dump.open_vswitch.as_ref().unwrap();
    assert!(ovs.bridges.contains(&bridge_uuid));
    let br = dump.bridge("br-test").unwrap();
    assert_eq!(br.bridge.uuid, bridge_uuid);
    assert_eq!(br.bridge.external_ids["owner"], "nodedoc");
    assert_eq!(br.bridge.other_config["hwaddr"], "02:00:00:00:00:01");
    let port_names: Vec<_> = br.ports.iter().map(|p| p.port.name.as_str()).collect();
    assert_eq!(port_names, ["bond0", "vif1"]);
    let bond = &br.ports[0];
    assert_eq!(bond.port.tag, Some(42));
    let bond_ifaces: Vec<_> = bond.interfaces.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(bond_ifaces, ["bond-a", "bond-b"]);
    assert_eq!(bond.interfaces[1].interface_type, "internal");
    assert_eq!(
        bond.interfaces[0].ofport, None,
        "unassigned ofport is an empty set"
    );

    let (bridge, port, vif) = dump.find_interface("vif1").unwrap();
    assert_eq!(
        (bridge.name.as_str(), port.name.as_str()),
        ("br-test", "vif1")
    );
    assert_eq!(vif.ofport, Some(-1));
    assert!(vif.has_failed());
    assert!(vif.error.as_deref().unwrap().contains("No such device"));
    assert_eq!(vif.iface_id(), Some("lport-1"));
    assert_eq!(vif.attached_mac(), Some("fa:16:3e:00:00:01"));
    assert_eq!(vif.vm_uuid(), Some("8c1a0c52-1c3b-4a3f-9a57-8b0f6c1d2e3f"));
    assert_eq!(vif.iface_status(), Some("active"));
    assert_eq!(vif.options["key"], "flow");
    assert!(dump.unattached_ports.is_empty());
    assert!(dump.unattached_interfaces.is_empty());
    assert!(dump.dangling_references.is_empty());

    // The same through an existing connection over unix.
    let again = OvsDump::fetch(&client).await.unwrap();
    assert_eq!(again, dump);
}

fn transaction_failure(err: Error) -> nodedoc_ovsdb::OperationFailure {
    match err {
        Error::Transaction { failure, .. } => *failure,
        other => panic!("expected a transaction failure, got {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_operation_errors_name_the_failing_index() {
    let server = server();
    let client = connect(&server).await;

    // A wait whose rows never match fails with "timed out" at its own index.
    let failure = transaction_failure(
        client
            .transact(
                OPEN_VSWITCH_DB,
                [
                    Operation::comment("nodedoc test"),
                    Wait::new(
                        "Bridge",
                        ["name"],
                        WaitUntil::Equal,
                        vec![Row::new().with("name", "never-there")],
                    )
                    .timeout(Duration::ZERO)
                    .into(),
                    Select::new("Bridge").into(),
                ],
            )
            .await
            .unwrap_err(),
    );
    assert_eq!(failure.index, 1);
    assert_eq!(failure.operation.as_deref(), Some("wait"));
    assert_eq!(failure.error, "timed out");

    // An unknown column.
    let failure = transaction_failure(
        client
            .transact(
                OPEN_VSWITCH_DB,
                [
                    Select::new("Bridge").into(),
                    Select::new("Bridge").columns(["no_such_column"]).into(),
                ],
            )
            .await
            .unwrap_err(),
    );
    assert_eq!(failure.index, 1);
    assert_eq!(failure.error, "syntax error");
    assert!(failure.details.unwrap().contains("no_such_column"));

    // A constraint checked at commit: Open_vSwitch allows one row. The error is the extra
    // element after the last operation.
    let err = client
        .transact(OPEN_VSWITCH_DB, [Insert::new("Open_vSwitch").into()])
        .await
        .unwrap_err();
    let message = err.to_string();
    let failure = transaction_failure(err);
    assert_eq!(failure.index, 1);
    assert_eq!(failure.operation, None);
    assert_eq!(failure.error, "constraint violation");
    assert!(
        message.contains("commit after 1 operations failed: constraint violation"),
        "{message}"
    );

    // A reference to a row that does not exist, also caught at commit.
    let failure = transaction_failure(
        client
            .transact(
                OPEN_VSWITCH_DB,
                [
                    Insert::new("Port")
                        .value("name", "dangling")
                        .value(
                            "interfaces",
                            Atom::Uuid("2f5b1f1a-3b0c-4e3f-9a47-4c8d8d4c2b11".parse().unwrap()),
                        )
                        .uuid_name("p")
                        .into(),
                    Mutate::new("Open_vSwitch")
                        .mutation(Mutation::insert(
                            "manager_options",
                            Datum::set(Vec::<Atom>::new()),
                        ))
                        .into(),
                ],
            )
            .await
            .unwrap_err(),
    );
    assert_eq!(failure.index, 2);
    assert_eq!(failure.error, "referential integrity violation");

    // The raw escape hatch, with a type error in an update.
    let failure = transaction_failure(
        client
            .transact(
                OPEN_VSWITCH_DB,
                [Operation::Raw(json!({"op": "update", "table": "Interface",
                    "where": [], "row": {"mtu_request": "not a number"}}))],
            )
            .await
            .unwrap_err(),
    );
    assert_eq!(
        (failure.index, failure.operation.as_deref()),
        (0, Some("update"))
    );

    // The connection survives all of it.
    assert!(client.list_dbs().await.is_ok());
}

/// The next update of a monitor (`update` or `update2`), or a failed test.
async fn next_update<U: nodedoc_ovsdb::UpdateFormat>(
    updates: &mut nodedoc_ovsdb::MonitorUpdates<U>,
) -> U {
    tokio::time::timeout(PATIENCE, updates.next())
        .await
        .expect("no update arrived")
        .expect("monitor ended")
        .expect("monitor failed")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitor_cond_follows_external_vsctl_changes() {
    let server = server();
    server.vsctl(&["add-br", "br0"]).unwrap();
    let client = connect(&server).await;
    let schema = client.get_schema(OPEN_VSWITCH_DB).await.unwrap();
    let requests = [
        MonitorRequest::new("Bridge"),
        MonitorRequest::new("Port"),
        MonitorRequest::new("Interface"),
        MonitorRequest::new("Open_vSwitch"),
    ];
    let mut monitor = client
        .monitor_cond(OPEN_VSWITCH_DB, &requests)
        .await
        .unwrap();
    assert!(monitor
        .initial
        .iter()
        .all(|(_, _, u)| matches!(u, RowUpdate2::Initial(_))));
    let mut replica = TableReplica::new(schema);
    replica.reset(&monitor.initial).unwrap();
    let dump = OvsDump::from_replica(&replica).unwrap();
    assert_eq!(
        dump.bridge("br0").unwrap().ports.len(),
        1,
        "the bridge's own port"
    );

    // Insert.
    server
        .vsctl(&[
            "add-port",
            "br0",
            "tap1",
            "--",
            "set",
            "Interface",
            "tap1",
            "external_ids:iface-id=lport-9",
            "external_ids:attached-mac=fa:16:3e:00:00:09",
        ])
        .unwrap();
    let mut inserted = None;
    while inserted.is_none() {
        let update = next_update(&mut monitor.updates).await;
        replica.apply(&update).unwrap();
        inserted = update.tables.get("Interface").and_then(|rows| {
            rows.iter()
                .find(|(_, u)| matches!(u, RowUpdate2::Insert(r) if r.get("name") == Some(&Datum::from("tap1"))))
                .map(|(uuid, _)| *uuid)
        });
    }
    let tap_uuid = inserted.unwrap();
    let dump = OvsDump::from_replica(&replica).unwrap();
    let (_, port, tap) = dump.find_interface("tap1").unwrap();
    assert_eq!(port.name, "tap1");
    assert_eq!(tap.iface_id(), Some("lport-9"));

    // Modify: ofport, error and a map key change, a key removal.
    server
        .vsctl(&[
            "set",
            "Interface",
            "tap1",
            "ofport=-1",
            "error=\"could not open network device tap1 (No such device)\"",
            "external_ids:iface-id=lport-10",
            "--",
            "remove",
            "Interface",
            "tap1",
            "external_ids",
            "attached-mac",
        ])
        .unwrap();
    loop {
        let update = next_update(&mut monitor.updates).await;
        replica.apply(&update).unwrap();
        if matches!(
            update
                .tables
                .get("Interface")
                .and_then(|r| r.get(&tap_uuid)),
            Some(RowUpdate2::Modify(_))
        ) {
            break;
        }
    }
    let tap =
        Interface::from_row(Some(tap_uuid), replica.row("Interface", tap_uuid).unwrap()).unwrap();
    assert_eq!(tap.ofport, Some(-1));
    assert!(tap.has_failed());
    assert_eq!(tap.iface_id(), Some("lport-10"));
    assert_eq!(tap.attached_mac(), None);

    // Clearing an optional column and changing ofport again.
    server
        .vsctl(&["set", "Interface", "tap1", "ofport=7"])
        .unwrap();
    server
        .vsctl(&["clear", "Interface", "tap1", "error"])
        .unwrap();
    while replica
        .row("Interface", tap_uuid)
        .and_then(|r| r.get("error"))
        .is_some_and(|e| !e.is_empty())
    {
        let update = next_update(&mut monitor.updates).await;
        replica.apply(&update).unwrap();
    }
    let tap =
        Interface::from_row(Some(tap_uuid), replica.row("Interface", tap_uuid).unwrap()).unwrap();
    assert_eq!((tap.ofport, tap.error), (Some(7), None));

    // Delete.
    server.vsctl(&["del-port", "br0", "tap1"]).unwrap();
    while replica.row("Interface", tap_uuid).is_some() {
        let update = next_update(&mut monitor.updates).await;
        replica.apply(&update).unwrap();
    }
    let dump = OvsDump::from_replica(&replica).unwrap();
    assert!(dump.find_interface("tap1").is_none());
    assert_eq!(dump.bridge("br0").unwrap().ports.len(), 1);

    // Compare the replica with a fresh read: the diffs were applied correctly.
    let fresh = OvsDump::fetch(&client).await.unwrap();
    assert_eq!(dump.bridges, fresh.bridges);

    monitor.updates.cancel().await.unwrap();
    assert!(client.list_dbs().await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitor_cond_conditions_filter_rows() {
    let server = server();
    server.vsctl(&["add-br", "br0"]).unwrap();
    let client = connect(&server).await;
    let mut monitor = client
        .monitor_cond(
            OPEN_VSWITCH_DB,
            &[MonitorRequest::new("Interface")
                .columns(["name", "ofport"])
                .condition(Condition::eq("name", "wanted"))],
        )
        .await
        .unwrap();
    assert!(monitor.initial.is_empty(), "{:?}", monitor.initial);
    server.vsctl(&["add-port", "br0", "unwanted"]).unwrap();
    server.vsctl(&["add-port", "br0", "wanted"]).unwrap();
    let update = next_update(&mut monitor.updates).await;
    let names: Vec<_> = update
        .iter()
        .filter_map(|(_, _, u)| match u {
            RowUpdate2::Insert(row) => row.get("name").cloned(),
            _ => None,
        })
        .collect();
    assert_eq!(names, vec![Datum::from("wanted")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_monitor_reports_old_and_new_rows() {
    let server = server();
    server.vsctl(&["add-br", "br0"]).unwrap();
    let client = connect(&server).await;
    let mut monitor = client
        .monitor(
            OPEN_VSWITCH_DB,
            &[MonitorRequest::new("Interface").columns(["name", "ofport"])],
        )
        .await
        .unwrap();
    assert_eq!(monitor.initial.tables["Interface"].len(), 1);

    server.vsctl(&["add-port", "br0", "p1"]).unwrap();
    let update = next_update(&mut monitor.updates).await;
    let (uuid, change) = update.tables["Interface"].iter().next().unwrap();
    assert!(change.old.is_none());
    assert_eq!(
        change.new.as_ref().unwrap().get("name"),
        Some(&Datum::from("p1"))
    );

    server
        .vsctl(&["set", "Interface", "p1", "ofport=3"])
        .unwrap();
    let update = next_update(&mut monitor.updates).await;
    let change = &update.tables["Interface"][uuid];
    // "old" holds only the changed columns' previous values; "new" the whole row.
    assert_eq!(
        change.old.as_ref().unwrap().get("ofport"),
        Some(&Datum::empty_set())
    );
    assert!(change.old.as_ref().unwrap().get("name").is_none());
    assert_eq!(
        change.new.as_ref().unwrap().get("ofport"),
        Some(&Datum::from(3i64))
    );

    server.vsctl(&["del-port", "p1"]).unwrap();
    let update = next_update(&mut monitor.updates).await;
    let change = &update.tables["Interface"][uuid];
    assert!(change.new.is_none());
    assert!(change.old.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_monitors_and_calls_leave_the_connection_usable() {
    let server = server();
    let client = connect(&server).await;
    for _ in 0..3 {
        let monitor = client
            .monitor_cond(OPEN_VSWITCH_DB, &[MonitorRequest::new("Bridge")])
            .await
            .unwrap();
        drop(monitor);
    }
    // A transact that blocks in the server (a wait without timeout), abandoned by timeout.
    let blocked = tokio::time::timeout(
        Duration::from_millis(200),
        client.transact(
            OPEN_VSWITCH_DB,
            [Wait::new(
                "Bridge",
                ["name"],
                WaitUntil::Equal,
                vec![Row::new().with("name", "never-there")],
            )
            .into()],
        ),
    )
    .await;
    assert!(blocked.is_err(), "the wait cannot complete");
    server.vsctl(&["add-br", "br-after"]).unwrap();
    let dump = OvsDump::fetch(&client).await.unwrap();
    assert!(dump.bridge("br-after").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_the_servers_inactivity_probes() {
    let server = server();
    // A listener whose clients ovsdb-server probes after 1 s of silence and drops when a
    // probe goes unanswered for another second.
    let endpoint = server
        .add_probed_listener("probed", Duration::from_secs(1))
        .unwrap();
    let client = Client::connect(endpoint.as_str()).await.unwrap();
    assert!(client.list_dbs().await.is_ok());
    // Stay idle until the server has probed us twice.
    tokio::time::timeout(PATIENCE, async {
        while client.stats().echo_requests_answered < 2 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no echo requests arrived; server log:\n{}", server.log()));
    assert!(
        client.closed_reason().is_none(),
        "{:?}",
        client.closed_reason()
    );
    assert!(client.list_dbs().await.is_ok());
    assert!(
        !server.log().contains("no response to inactivity probe"),
        "{}",
        server.log()
    );
}

async fn next_event(monitor: &mut ReconnectingMonitor) -> MonitorEvent {
    tokio::time::timeout(PATIENCE, monitor.next())
        .await
        .expect("no monitor event")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnecting_monitor_resumes_after_server_restart() {
    let mut server = server();
    server.vsctl(&["add-br", "br0"]).unwrap();
    let mut monitor = ReconnectingMonitor::new(
        server.endpoint(),
        OPEN_VSWITCH_DB,
        vec![MonitorRequest::new("Bridge").columns(["name", "ports"])],
        ReconnectOptions {
            initial_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_millis(500),
            ..ReconnectOptions::default()
        },
    )
    .unwrap();
    let bridge_names = |state: &TableUpdates2| {
        let mut names: Vec<String> = state
            .iter()
            .filter_map(|(_, _, u)| match u {
                RowUpdate2::Initial(r) => r.reader("Bridge").string("name").ok(),
                _ => None,
            })
            .collect();
        names.sort();
        names
    };

    match next_event(&mut monitor).await {
        MonitorEvent::Initial {
            generation,
            state,
            schema,
        } => {
            assert_eq!(generation, 1);
            assert_eq!(schema.name, "Open_vSwitch");
            assert_eq!(bridge_names(&state), ["br0"]);
        }
        other => panic!("expected the initial state, got {other:?}"),
    }

    // A crash: SIGKILL leaves the socket file behind.
    server.kill().unwrap();
    match next_event(&mut monitor).await {
        MonitorEvent::Disconnected { error, .. } => assert!(error.is_connection_error(), "{error}"),
        other => panic!("expected a disconnection, got {other:?}"),
    }
    // While it is down, attempts fail and back off.
    match next_event(&mut monitor).await {
        MonitorEvent::Disconnected { error, retry_in } => {
            assert!(matches!(error, Error::Connect { .. }), "{error}");
            assert!(retry_in > Duration::ZERO);
        }
        other => panic!("expected a failed attempt, got {other:?}"),
    }

    server.restart().unwrap();
    server.vsctl(&["add-br", "br1"]).unwrap();
    let state = loop {
        match next_event(&mut monitor).await {
            MonitorEvent::Initial {
                generation, state, ..
            } => {
                assert_eq!(generation, 2);
                break state;
            }
            MonitorEvent::Disconnected { .. } => continue,
            MonitorEvent::Update(u) => panic!("update before the fresh initial state: {u:?}"),
        }
    };
    // The fresh initial state includes what changed while we were away.
    let names = bridge_names(&state);
    assert!(names == ["br0", "br1"] || names == ["br0"], "{names:?}");
    if names == ["br0"] {
        // br1 was committed after the monitor started: it arrives as an update.
        loop {
            if let MonitorEvent::Update(u) = next_event(&mut monitor).await {
                if u.iter().any(|(_, _, c)| matches!(c, RowUpdate2::Insert(_))) {
                    break;
                }
            }
        }
    }
    // And live updates flow again.
    server.vsctl(&["add-br", "br2"]).unwrap();
    loop {
        match next_event(&mut monitor).await {
            MonitorEvent::Update(u) => {
                let inserted: Vec<_> = u
                    .iter()
                    .filter_map(|(_, _, c)| match c {
                        RowUpdate2::Insert(r) => r.reader("Bridge").string("name").ok(),
                        _ => None,
                    })
                    .collect();
                if inserted == ["br2"] {
                    break;
                }
            }
            other => panic!("expected updates, got {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connecting_to_a_missing_socket_is_a_typed_error() {
    let dir = std::env::temp_dir().join("nodedoc-ovsdb-no-such-dir/db.sock");
    let endpoint = format!("unix:{}", dir.display());
    match nodedoc_ovsdb::dump(endpoint.as_str(), PATIENCE)
        .await
        .unwrap_err()
    {
        Error::Connect { endpoint: e, .. } => assert_eq!(e, endpoint),
        other => panic!("{other}"),
    }
    assert!(matches!(
        Client::connect("ptcp:6640").await.unwrap_err(),
        Error::InvalidEndpoint(_)
    ));
}

#[test]
fn test_server_is_stopped_and_removed_even_when_a_test_panics() {
    let started = std::sync::Mutex::new(None);
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let server = server();
        *started.lock().unwrap() = Some((server.pid().unwrap(), server.dir().to_owned()));
        panic!("a failing test");
    }));
    assert!(outcome.is_err());
    let (pid, dir) = started.into_inner().unwrap().unwrap();
    // Reaped (not even a zombie) and its directory removed.
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
    assert!(!dir.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitored_and_transacted_dumps_agree() {
    let server = server();
    server
        .vsctl(&[
            "add-br",
            "br-m",
            "--",
            "add-port",
            "br-m",
            "tap1",
            "--",
            "set",
            "Interface",
            "tap1",
            "external_ids:iface-id=lp1",
            "external_ids:vm-uuid=vm1",
            "--",
            "add-port",
            "br-m",
            "tap2",
        ])
        .unwrap();
    let client = connect(&server).await;
    let lean = OvsDump::fetch_lean(&client).await.unwrap();
    let monitored = OvsDump::fetch_monitored(&client).await.unwrap();
    assert_eq!(lean, monitored);
    let (bridge, port, iface) = monitored.find_interface("tap1").unwrap();
    assert_eq!((bridge.name.as_str(), port.name.as_str()), ("br-m", "tap1"));
    assert_eq!(iface.iface_id(), Some("lp1"));
    assert_eq!(iface.vm_uuid(), Some("vm1"));
    // The lean dump leaves out what it does not read; the full one has it.
    let full = OvsDump::fetch(&client).await.unwrap();
    assert_eq!(full.bridges.len(), 1);
    assert_eq!(full.interfaces().count(), lean.interfaces().count());
    // The monitor used for the dump was cancelled: the connection still answers.
    assert_eq!(client.echo(vec![json!(1)]).await.unwrap(), vec![json!(1)]);
}

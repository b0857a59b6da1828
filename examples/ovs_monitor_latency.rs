//! Measures how long an OVSDB change takes to become a finding, two ways, on the same server
//! in one run. Each round gives one interface the error ovs-vswitchd writes for a vanished
//! device (`could not open network device X (No such device)`) with a `transact`, and the
//! clock runs from the `transact` until `ovs-orphan-port` reports X:
//!
//! - `rebuild` (what a one-shot reading costs): a `monitor_cond` replica of the four tables;
//!   each update is applied, the dump rebuilt from the replica, the OVS state built, every
//!   detector run;
//! - `agent` (what `nodedoc watch` does): the agent's collector after one round (every
//!   process, the namespaces, OVS); between rounds the update comes through its monitor
//!   thread, is applied to the replica, patched into the last round's snapshot, and only the
//!   detectors that read OVSDB run again.
//!
//! Used by bench/ovs.sh. Usage:
//! `cargo run --release --example ovs_monitor_latency -- unix:DIR/db.sock ROUNDS`

use std::time::{Duration, Instant};

use nodedoc_model::{HostInfo, Snapshot};
use nodedoc_ovsdb::{
    Client, Datum, MonitorRequest, OvsDump, TableReplica, Update, OPEN_VSWITCH_DB,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let endpoint = args
        .get(1)
        .ok_or("usage: ovs_monitor_latency ENDPOINT [ROUNDS]")?;
    let rounds: usize = args.get(2).map_or(Ok(50), |r| r.parse())?;
    nodedoc_ovs::block_on(run(endpoint.clone(), rounds))??;
    Ok(())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn summary(what: &str, mut samples: Vec<Duration>) -> String {
    samples.sort();
    format!(
        "{what}: median {:.2} ms, p90 {:.2} ms, max {:.2} ms (min {:.2} ms)",
        ms(percentile(&samples, 0.5)),
        ms(percentile(&samples, 0.9)),
        ms(*samples.last().unwrap()),
        ms(samples[0]),
    )
}

/// Sets (or clears) interface `name`'s error.
async fn set_error(
    client: &Client,
    name: &str,
    error: Option<String>,
) -> Result<(), Box<dyn std::error::Error>> {
    let value = match error {
        Some(error) => Datum::from(error),
        None => Datum::empty_set(),
    };
    client
        .transact(
            OPEN_VSWITCH_DB,
            [Update::new("Interface")
                .where_eq("name", name)
                .value("error", value)
                .into()],
        )
        .await?;
    Ok(())
}

async fn run(endpoint: String, rounds: usize) -> Result<(), Box<dyn std::error::Error>> {
    let client = Client::connect(endpoint.as_str()).await?;
    let schema = client.get_schema(OPEN_VSWITCH_DB).await?;
    let mut replica = TableReplica::new(schema);
    let tables = ["Open_vSwitch", "Bridge", "Port", "Interface"].map(MonitorRequest::new);
    let mut monitor = client.monitor_cond(OPEN_VSWITCH_DB, &tables).await?;
    replica.reset(&monitor.initial)?;
    let names: Vec<String> = replica
        .rows("Interface")
        .filter_map(|(_, row)| row.reader("Interface").string("name").ok())
        .filter(|name| !name.starts_with("br"))
        .collect();
    println!("{} interfaces in the replica", replica.len("Interface"));
    let found = |findings: &[nodedoc_model::Finding], name: &str| {
        findings.iter().any(|f| {
            f.detector == "ovs-orphan-port" && f.subject.key() == format!("ovs-interface/{name}")
        })
    };

    // The one-shot rebuild.
    let mut latencies = Vec::with_capacity(rounds);
    let mut analysis = Vec::with_capacity(rounds);
    for round in 0..rounds {
        let name = &names[round * 97 % names.len()];
        let error = format!("could not open network device {name} (No such device)");
        let started = Instant::now();
        set_error(&client, name, Some(error)).await?;
        loop {
            let update = monitor.updates.next().await.ok_or("monitor ended")??;
            replica.apply(&update)?;
            let analysed = Instant::now();
            let dump = OvsDump::from_replica(&replica)?;
            let mut snapshot = Snapshot::new(HostInfo::default());
            snapshot.ovs = Some(nodedoc_ovs::state_from_dump(&dump, &endpoint));
            let findings = nodedoc_detectors::run(&snapshot, &Default::default());
            if found(&findings, name) {
                latencies.push(started.elapsed());
                analysis.push(analysed.elapsed());
                break;
            }
        }
        // Put the row back; consume its update so the next round starts clean.
        set_error(&client, name, None).await?;
        let update = monitor.updates.next().await.ok_or("monitor ended")??;
        replica.apply(&update)?;
    }
    drop(monitor);
    println!(
        "{}",
        summary(
            &format!("rebuild: transact -> finding over {rounds} rounds"),
            latencies
        )
    );
    println!(
        "{}",
        summary(
            "  of which analysis (replica -> dump -> OVS state -> every detector)",
            analysis
        )
    );

    // The agent. Its collector runs its own threads; the calls below block this (client's)
    // runtime while they wait, which only delays the client's own housekeeping.
    let mut collector = nodedoc_collect::Collector::new(nodedoc_collect::CollectOptions {
        interval: Duration::ZERO,
        ovs: nodedoc_collect::OvsSource {
            endpoint: Some(endpoint.clone()),
            log: None,
        },
        ..nodedoc_collect::CollectOptions::default()
    });
    let mut snapshot = collector.round(&nodedoc_collect::Silent)?;
    println!(
        "agent: after one round, {} processes and {} interfaces in the snapshot",
        snapshot.processes.len(),
        snapshot.ovs.as_ref().map_or(0, |o| o.interfaces().count())
    );
    let config = nodedoc_detectors::Config::default();
    let earlier = nodedoc_detectors::run(&snapshot, &config);
    let only = nodedoc_detectors::detectors_reading("ovsdb");
    let wait_for_news = |collector: &mut nodedoc_collect::Collector, snapshot: &mut Snapshot| {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if collector
                .follow_streams(Some(snapshot), Duration::from_secs(1))
                .changed
            {
                return Ok(());
            }
        }
        Err("no update within 30 s")
    };
    let (mut latencies, mut delivery, mut detection) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        let name = &names[round * 89 % names.len()];
        let error = format!("could not open network device {name} (No such device)");
        let started = Instant::now();
        set_error(&client, name, Some(error)).await?;
        let committed = Instant::now();
        wait_for_news(&mut collector, &mut snapshot)?;
        let patched = Instant::now();
        let findings = nodedoc_detectors::run_only(&snapshot, &config, &only, &earlier);
        if !found(&findings, name) {
            return Err(format!("agent: no ovs-orphan-port finding for {name}").into());
        }
        let done = Instant::now();
        latencies.push(done - started);
        delivery.push(patched - committed);
        detection.push(done - patched);
        set_error(&client, name, None).await?;
        wait_for_news(&mut collector, &mut snapshot)?;
    }
    println!(
        "{}",
        summary(
            &format!("agent: transact -> finding over {rounds} rounds"),
            latencies
        )
    );
    println!(
        "{}",
        summary(
            "  of which update received, applied and patched into the snapshot (from the commit)",
            delivery
        )
    );
    println!(
        "{}",
        summary(
            &format!("  of which the {} OVSDB detectors", only.len()),
            detection
        )
    );
    Ok(())
}

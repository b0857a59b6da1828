//! Measures how long an OVSDB change takes to become a finding: a monitor (`monitor_cond`)
//! keeps a replica of the Open_vSwitch tables; for each round an interface is given the
//! error ovs-vswitchd writes for a vanished device, and the clock runs from the `transact`
//! until `ovs-orphan-port` reports that interface (update received, replica updated, OVS
//! state rebuilt, every detector run). Used by bench/ovs.sh.
//!
//! Usage: `cargo run --release --example ovs_monitor_latency -- unix:DIR/db.sock ROUNDS`

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
    let mut latencies = Vec::with_capacity(rounds);
    let mut analysis = Vec::with_capacity(rounds);
    for round in 0..rounds {
        let name = &names[round * 97 % names.len()];
        let error = format!("could not open network device {name} (No such device)");
        let started = Instant::now();
        client
            .transact(
                OPEN_VSWITCH_DB,
                [Update::new("Interface")
                    .where_eq("name", name.as_str())
                    .value("error", error)
                    .into()],
            )
            .await?;
        loop {
            let update = monitor.updates.next().await.ok_or("monitor ended")??;
            replica.apply(&update)?;
            let analysed = Instant::now();
            let dump = OvsDump::from_replica(&replica)?;
            let mut snapshot = Snapshot::new(HostInfo::default());
            snapshot.ovs = Some(nodedoc_ovs::state_from_dump(&dump, &endpoint));
            let findings = nodedoc_detectors::run(&snapshot, &Default::default());
            let found = findings.iter().any(|f| {
                f.detector == "ovs-orphan-port"
                    && f.subject.key() == format!("ovs-interface/{name}")
            });
            if found {
                latencies.push(started.elapsed());
                analysis.push(analysed.elapsed());
                break;
            }
        }
        // Put the row back; consume its update so the next round starts clean.
        client
            .transact(
                OPEN_VSWITCH_DB,
                [Update::new("Interface")
                    .where_eq("name", name.as_str())
                    .value("error", Datum::empty_set())
                    .into()],
            )
            .await?;
        let update = monitor.updates.next().await.ok_or("monitor ended")??;
        replica.apply(&update)?;
    }
    latencies.sort();
    analysis.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "update -> finding over {rounds} rounds: median {:.1} ms, p90 {:.1} ms, max {:.1} ms (min {:.1} ms)",
        ms(percentile(&latencies, 0.5)),
        ms(percentile(&latencies, 0.9)),
        ms(*latencies.last().unwrap()),
        ms(latencies[0]),
    );
    println!(
        "of which analysis (replica -> dump -> OVS state -> every detector): median {:.1} ms, p90 {:.1} ms",
        ms(percentile(&analysis, 0.5)),
        ms(percentile(&analysis, 0.9)),
    );
    Ok(())
}

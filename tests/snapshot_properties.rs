//! Property tests of snapshot files (`check --from FILE`: a file from another machine, or
//! from anyone). Issue 8: fuzz the parsers of untrusted input; the cargo-fuzz target
//! `snapshot` in fuzz/ does the same for longer. Starting from real snapshots (the seeds of
//! that target), any value replaced by any other, any cut and any flipped byte gives either a
//! snapshot every detector runs on, or an error that names the file — never a panic.

use std::path::Path;

use nodedoc_model::{parse_snapshot, SnapshotFileError};
use proptest::prelude::*;
use serde_json::Value;

const SEEDS: &[&str] = &[
    "tests/fixtures/seed-000-ovs-snapshot.json",
    "fuzz/corpus/snapshot/labs-pidns-netdev-zombies",
];

fn seed(i: usize) -> (Vec<u8>, Value) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(SEEDS[i % SEEDS.len()]);
    let bytes = std::fs::read(&path).unwrap();
    let value = serde_json::from_slice(&bytes).unwrap();
    (bytes, value)
}

/// Every location in a JSON document, as a path of keys and indices.
fn locations(value: &Value, path: &mut Vec<Value>, out: &mut Vec<Vec<Value>>) {
    out.push(path.clone());
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                path.push(Value::from(k.as_str()));
                locations(v, path, out);
                path.pop();
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                path.push(Value::from(i));
                locations(v, path, out);
                path.pop();
            }
        }
        _ => {}
    }
}

fn at<'a>(value: &'a mut Value, path: &[Value]) -> &'a mut Value {
    path.iter().fold(value, |v, key| match key {
        Value::String(k) => &mut v[k.as_str()],
        _ => &mut v[key.as_u64().unwrap() as usize],
    })
}

/// Values that break assumptions: extremes, wrong types, hostile text.
fn replacement() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        prop::sample::select(vec![0i64, -1, 1, i64::MIN, i64::MAX, i32::MAX as i64 + 1])
            .prop_map(Value::from),
        prop::sample::select(vec![u64::MAX, u64::MAX / 2, u32::MAX as u64]).prop_map(Value::from),
        prop::sample::select(vec![0.5f64, -1e308, 1e308]).prop_map(Value::from),
        "[a-zA-Z0-9 ()\\[\\]:/_.\u{1b}\n\u{e9}-]{0,24}".prop_map(Value::from),
        Just(Value::Array(Vec::new())),
        Just(Value::Object(Default::default())),
    ]
}

fn check(bytes: &[u8]) -> Result<(), TestCaseError> {
    match parse_snapshot(Path::new("node-1.json"), bytes) {
        Ok(snapshot) => {
            let _ = nodedoc_detectors::run(&snapshot, &nodedoc_detectors::Config::default());
        }
        Err(e) => {
            prop_assert!(e.to_string().starts_with("node-1.json: "), "{}", e);
            let io = matches!(e, SnapshotFileError::Io { .. });
            prop_assert!(!io, "{}", e);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn any_value_replaced_gives_a_snapshot_or_a_named_error(
        which in any::<usize>(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), replacement()), 1..4),
    ) {
        let (_, mut value) = seed(which);
        for (index, new) in edits {
            let mut all = Vec::new();
            locations(&value, &mut Vec::new(), &mut all);
            let path = index.get(&all).clone();
            *at(&mut value, &path) = new;
        }
        check(&serde_json::to_vec(&value).unwrap())?;
    }

    #[test]
    fn cut_or_flipped_files_give_a_named_error_or_a_snapshot(
        which in any::<usize>(),
        cut in any::<prop::sample::Index>(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
    ) {
        let (mut bytes, _) = seed(which);
        for (at, byte) in flips {
            let i = at.index(bytes.len());
            bytes[i] = byte;
        }
        let end = cut.index(bytes.len() + 1);
        check(&bytes[..end])?;
    }

    #[test]
    fn arbitrary_bytes_give_a_named_error(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        check(&bytes)?;
    }
}

/// The seeds themselves load, and survive a write and a read unchanged.
#[test]
fn the_seed_snapshots_round_trip() {
    for i in 0..SEEDS.len() {
        let (bytes, _) = seed(i);
        let snapshot = parse_snapshot(Path::new("seed.json"), &bytes).unwrap();
        let again = parse_snapshot(
            Path::new("seed.json"),
            &serde_json::to_vec(&snapshot).unwrap(),
        );
        assert_eq!(again.unwrap(), snapshot);
    }
}

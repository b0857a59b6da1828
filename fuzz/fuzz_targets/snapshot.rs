//! Snapshot files (`check --from FILE`: a file from another machine, or anyone's), then
//! every detector on what parses.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(snapshot) = nodedoc_model::parse_snapshot(std::path::Path::new("fuzz.json"), data)
    else {
        return;
    };
    let _ = nodedoc_detectors::run(&snapshot, &nodedoc_detectors::Config::default());
});

//! What the unit tests of the followed files share.

use std::io::Write;
use std::path::Path;

/// Appends `text` to the file at `path`, creating it: what a service writing its log does.
pub fn append(path: &Path, text: &str) {
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
}

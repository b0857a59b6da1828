//! Whether the live `/dev/kmsg` can be used by a test, shared by the test files that write
//! records and read them back.

use nodedoc_kmsg::DEV_KMSG;

/// Why the live kernel log cannot be used for these tests, if it cannot.
pub fn unusable_reason() -> Option<String> {
    if let Err(error) = std::fs::OpenOptions::new().write(true).open(DEV_KMSG) {
        return Some(format!("{DEV_KMSG} is not writable: {error}"));
    }
    // With printk_devkmsg=off the kernel accepts writes and drops them.
    match std::fs::read_to_string("/proc/sys/kernel/printk_devkmsg") {
        Ok(mode) if mode.trim() == "off" => {
            Some("kernel.printk_devkmsg=off drops records written to /dev/kmsg".to_string())
        }
        _ => None,
    }
}

/// Returns from the test, saying why, when the live kernel log cannot be used.
macro_rules! require_live_kmsg {
    () => {
        if let Some(reason) = crate::live::unusable_reason() {
            eprintln!("skipping: {reason}");
            return;
        }
    };
}

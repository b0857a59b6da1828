use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Something a collector could not read, aggregated over every place it happened.
///
/// On a live host, processes vanish mid-scan and some files are unreadable even to root; that
/// is normal. The report says so in one line per kind of gap, never one line per process.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gap {
    /// The source that met the gap, e.g. `procfs` or `kernel-log`.
    pub source: String,
    /// What could not be read, with placeholders for the varying part, e.g. `/proc/PID/stack`.
    pub what: String,
    /// Why, as the OS said it, e.g. `permission denied`.
    pub reason: String,
    /// How many times it happened.
    pub count: u64,
    /// A few concrete instances (pids, paths), to reproduce by hand.
    pub examples: Vec<String>,
}

/// Collects [`Gap`]s while a collector runs, merging repeats.
#[derive(Debug, Default, Clone)]
pub struct Gaps {
    by_key: BTreeMap<(String, String, String), Gap>,
}

/// How many concrete examples a gap keeps; the count carries the rest.
const MAX_EXAMPLES: usize = 5;

impl Gaps {
    /// An empty recorder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records that `what` from `source` could not be read because of `reason`.
    pub fn record(
        &mut self,
        source: &str,
        what: &str,
        reason: impl Into<String>,
        example: impl Into<String>,
    ) {
        let reason = reason.into();
        let key = (source.to_string(), what.to_string(), reason.clone());
        let gap = self.by_key.entry(key).or_insert_with(|| Gap {
            source: source.to_string(),
            what: what.to_string(),
            reason,
            count: 0,
            examples: Vec::new(),
        });
        gap.count += 1;
        let example = example.into();
        if gap.examples.len() < MAX_EXAMPLES && !gap.examples.contains(&example) {
            gap.examples.push(example);
        }
    }

    /// Merges another recorder into this one (used when collection ran on several threads).
    pub fn merge(&mut self, other: Gaps) {
        for (key, gap) in other.by_key {
            match self.by_key.get_mut(&key) {
                Some(mine) => {
                    mine.count += gap.count;
                    let room = MAX_EXAMPLES.saturating_sub(mine.examples.len());
                    mine.examples.extend(gap.examples.into_iter().take(room));
                }
                None => {
                    self.by_key.insert(key, gap);
                }
            }
        }
    }

    /// True when nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }

    /// The gaps, most frequent first.
    pub fn into_vec(self) -> Vec<Gap> {
        let mut gaps: Vec<Gap> = self.by_key.into_values().collect();
        gaps.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.what.cmp(&b.what)));
        gaps
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_merge_into_one_gap_with_a_few_examples() {
        let mut gaps = Gaps::new();
        for pid in 0..20 {
            gaps.record(
                "procfs",
                "/proc/PID/stack",
                "permission denied",
                pid.to_string(),
            );
        }
        let mut other = Gaps::new();
        other.record("procfs", "/proc/PID/stack", "permission denied", "99");
        other.record("procfs", "/proc/PID/environ", "permission denied", "7");
        gaps.merge(other);
        let gaps = gaps.into_vec();
        assert_eq!(gaps.len(), 2);
        assert_eq!(gaps[0].what, "/proc/PID/stack");
        assert_eq!(gaps[0].count, 21);
        assert_eq!(gaps[0].examples.len(), MAX_EXAMPLES);
        assert_eq!(gaps[1].count, 1);
    }
}

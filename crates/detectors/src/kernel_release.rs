//! Kernel release strings (`uname -r`) and whether a release carries a fix.

use std::cmp::Ordering;
use std::fmt;

use crate::catalog::KernelBug;

/// A parsed `uname -r`: `6.18.44-fc-v782` is 6.18.44 with suffix `-fc-v782`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KernelRelease {
    /// Version numbers (major, minor, patch; patch 0 when absent).
    pub version: (u32, u32, u32),
    /// Everything after the numbers.
    pub suffix: String,
}

impl KernelRelease {
    /// Parses a release; `None` when it does not start with `MAJOR.MINOR`.
    pub fn parse(release: &str) -> Option<KernelRelease> {
        let end = release
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(release.len());
        let mut numbers = release[..end].split('.').filter(|s| !s.is_empty());
        let major = numbers.next()?.parse().ok()?;
        let minor = numbers.next()?.parse().ok()?;
        let patch = numbers.next().map_or(Some(0), |p| p.parse().ok())?;
        Some(KernelRelease {
            version: (major, minor, patch),
            suffix: release[end..].to_string(),
        })
    }

    /// True for distribution builds (`3.10.0-693.el7`, `5.4.0-42-generic`, `6.1.0-18-amd64`):
    /// they number the package build after a dash and backport fixes without changing the
    /// base version, so the base version alone does not tell which fixes they carry.
    pub fn is_distribution_build(&self) -> bool {
        let mut chars = self.suffix.chars();
        chars.next() == Some('-') && chars.next().is_some_and(|c| c.is_ascii_digit())
    }

    /// `major.minor`, the stable series.
    pub fn series(&self) -> (u32, u32) {
        (self.version.0, self.version.1)
    }
}

impl fmt::Display for KernelRelease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (a, b, c) = self.version;
        write!(f, "{a}.{b}.{c}{}", self.suffix)
    }
}

/// Whether a release carries the fix of a [`KernelBug`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FixVerdict {
    /// The fix is in: the bug cannot be the cause.
    Fixed {
        /// How we know (`mainline 5.1`, `stable 3.16.70`).
        because: String,
    },
    /// The release predates the fix and has no known backport.
    Affected {
        /// Why.
        because: String,
    },
    /// The release predates the bug.
    NotAffected,
    /// Cannot tell from the release string.
    Unknown {
        /// Why not.
        because: String,
    },
}

/// Decides whether `release` carries the fix for `bug`.
pub fn fix_verdict(release: &KernelRelease, bug: &KernelBug) -> FixVerdict {
    let Some(fixed) = KernelRelease::parse(&bug.fixed_in) else {
        return FixVerdict::Unknown {
            because: format!("the catalog's fix release {:?} is unreadable", bug.fixed_in),
        };
    };
    if release.version >= fixed.version {
        return FixVerdict::Fixed {
            because: format!("the fix is in mainline {}", bug.fixed_in),
        };
    }
    if let Some(introduced) = bug.introduced_in.as_deref().and_then(KernelRelease::parse) {
        if release.version.cmp(&introduced.version) == Ordering::Less {
            return FixVerdict::NotAffected;
        }
    }
    if release.is_distribution_build() {
        return FixVerdict::Unknown {
            because: format!(
                "{release} is a distribution build based on {}.{}.{}, older than the fix (mainline {}); distributions backport fixes, so check its changelog for commit {}",
                release.version.0,
                release.version.1,
                release.version.2,
                bug.fixed_in,
                &bug.commit[..12.min(bug.commit.len())]
            ),
        };
    }
    let backport = bug
        .fixed_in_stable
        .iter()
        .filter_map(|s| KernelRelease::parse(s))
        .find(|s| s.series() == release.series());
    match backport {
        Some(stable) if release.version >= stable.version => FixVerdict::Fixed {
            because: format!("the fix was backported to stable {stable}"),
        },
        Some(stable) => FixVerdict::Affected {
            because: format!(
                "{}.{}.{} is older than the {}.{} stable release that carries the fix ({stable})",
                release.version.0, release.version.1, release.version.2, stable.version.0, stable.version.1
            ),
        },
        None => FixVerdict::Unknown {
            because: format!(
                "{}.{}.{} predates the fix (mainline {}) and nodedoc has no record of a backport to the {}.{} series",
                release.version.0, release.version.1, release.version.2, bug.fixed_in, release.version.0, release.version.1
            ),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bug() -> KernelBug {
        KernelBug {
            id: "fnhe".into(),
            commit: "ee60ad219f5c7c4fb2f047f88037770063ef785f".into(),
            subject: "route: …".into(),
            devices: vec![],
            introduced_in: Some("3.6".into()),
            fixed_in: "5.1".into(),
            fixed_in_stable: vec!["3.16.70".into()],
            explanation: String::new(),
            references: vec![],
        }
    }

    fn verdict(release: &str) -> FixVerdict {
        fix_verdict(&KernelRelease::parse(release).unwrap(), &bug())
    }

    #[test]
    fn releases_parse() {
        let r = KernelRelease::parse("6.18.44-fc-v782").unwrap();
        assert_eq!(r.version, (6, 18, 44));
        assert!(!r.is_distribution_build());
        let el = KernelRelease::parse("3.10.0-693.el7.x86_64").unwrap();
        assert!(el.is_distribution_build());
        assert_eq!(KernelRelease::parse("5.4").unwrap().version, (5, 4, 0));
        assert!(KernelRelease::parse("").is_none());
        assert!(KernelRelease::parse("linux").is_none());
        assert!(KernelRelease::parse("5").is_none());
        assert!(KernelRelease::parse("5.99999999999.1").is_none());
    }

    #[test]
    fn verdicts() {
        assert!(matches!(
            verdict("6.18.44-fc-v782"),
            FixVerdict::Fixed { .. }
        ));
        assert!(matches!(
            verdict("5.4.0-42-generic"),
            FixVerdict::Fixed { .. }
        ));
        assert!(matches!(
            verdict("3.10.0-693.el7.x86_64"),
            FixVerdict::Unknown { .. }
        ));
        assert!(matches!(verdict("3.16.69"), FixVerdict::Affected { .. }));
        assert!(matches!(verdict("3.16.70"), FixVerdict::Fixed { .. }));
        assert!(matches!(verdict("4.14.1"), FixVerdict::Unknown { .. }));
        assert!(matches!(verdict("3.2.0"), FixVerdict::NotAffected));
    }
}

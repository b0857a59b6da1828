//! The recorded kernel-log corpus under `tests/fixtures/`: real excerpts from public bug
//! trackers, mailing lists and syzbot, each with a header that names its source and says
//! what a parser and a classifier must find in it:
//!
//! ```text
//! # source: https://…                  (one or more)
//! # kernel: 5.13.0-7614-generic …      (what the excerpt shows of the kernel)
//! # reports: 2                         (blocked-task reports in the excerpt)
//! # expect: comm=X pid=N secs=N class=ID frame=F [site=S] [inner=ID] [blocker=C:P] [unreliable]
//! # expect: device=D count=N users=N/M holder=F      (netdev_ref_tracker/)
//! ```
//!
//! The lines after the header are the excerpt, verbatim. Shared by the kmsg parser's tests
//! and the detectors' classification tests (`#[path]`-included there).
#![allow(dead_code)]

use std::path::PathBuf;

/// One fixture file.
#[derive(Debug)]
pub struct Fixture {
    pub name: String,
    pub sources: Vec<String>,
    pub kernel: String,
    pub reports: Option<usize>,
    pub expects: Vec<Expect>,
    pub body: String,
}

/// One `# expect:` line.
#[derive(Debug, Default)]
pub struct Expect {
    pub comm: Option<String>,
    pub pid: Option<i32>,
    /// `secs=none` is `Some(None)`.
    pub secs: Option<Option<u64>>,
    pub class: Option<String>,
    pub frame: Option<String>,
    pub site: Option<String>,
    pub inner: Option<String>,
    pub unreliable: bool,
    pub device: Option<String>,
    pub count: Option<i64>,
    pub users: Option<(u32, Option<u32>)>,
    pub holder: Option<String>,
    /// `blocker=COMM:PID`: the lock owner a 6.14+ kernel named.
    pub blocker: Option<(String, i32)>,
}

const KEYS: &[&str] = &[
    "comm", "pid", "secs", "class", "frame", "site", "inner", "device", "count", "users", "holder",
    "blocker",
];

fn parse_expect(text: &str) -> Expect {
    let mut pairs: Vec<(String, String)> = Vec::new();
    let mut expect = Expect::default();
    for word in text.split_whitespace() {
        match word.split_once('=') {
            Some((key, value)) if KEYS.contains(&key) => pairs.push((key.into(), value.into())),
            _ if word == "unreliable" => expect.unreliable = true,
            // A value with spaces (`comm=FwgThread OpFor`).
            _ => {
                let last = pairs
                    .last_mut()
                    .unwrap_or_else(|| panic!("stray word in {text:?}"));
                last.1.push(' ');
                last.1.push_str(word);
            }
        }
    }
    for (key, value) in pairs {
        match key.as_str() {
            "comm" => expect.comm = Some(value),
            "pid" => expect.pid = Some(value.parse().unwrap()),
            "secs" => expect.secs = Some((value != "none").then(|| value.parse().unwrap())),
            "class" => expect.class = Some(value),
            "frame" => expect.frame = Some(value),
            "site" => expect.site = Some(value),
            "inner" => expect.inner = Some(value),
            "device" => expect.device = Some(value),
            "count" => expect.count = Some(value.parse().unwrap()),
            "users" => {
                let (users, total) = value.split_once('/').unwrap();
                expect.users = Some((users.parse().unwrap(), total.parse().ok()));
            }
            "holder" => expect.holder = Some(value),
            "blocker" => {
                let (comm, pid) = value.rsplit_once(':').unwrap();
                expect.blocker = Some((comm.to_string(), pid.parse().unwrap()));
            }
            _ => unreachable!(),
        }
    }
    expect
}

/// The fixtures of `tests/fixtures/<kind>/`, by file name.
pub fn fixtures(kind: &str) -> Vec<Fixture> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../kmsg/tests/fixtures")
        .join(kind);
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).unwrap();
            let mut fixture = Fixture {
                name: path.file_name().unwrap().to_string_lossy().into_owned(),
                sources: Vec::new(),
                kernel: String::new(),
                reports: None,
                expects: Vec::new(),
                body: String::new(),
            };
            let mut lines = text.lines().peekable();
            while let Some(line) = lines.next_if(|l| l.starts_with("# ")) {
                let line = &line[2..];
                if let Some(url) = line.strip_prefix("source: ") {
                    fixture.sources.push(url.to_string());
                } else if let Some(kernel) = line.strip_prefix("kernel: ") {
                    fixture.kernel = kernel.to_string();
                } else if let Some(n) = line.strip_prefix("reports: ") {
                    fixture.reports = Some(n.parse().unwrap());
                } else if let Some(expect) = line.strip_prefix("expect: ") {
                    if !expect.starts_with("no ") {
                        fixture.expects.push(parse_expect(expect));
                    }
                }
            }
            for line in lines {
                fixture.body.push_str(line);
                fixture.body.push('\n');
            }
            assert!(!fixture.sources.is_empty(), "{}: no source", fixture.name);
            assert!(
                fixture.sources.iter().all(|s| s.starts_with("https://")),
                "{}: sources must be public https URLs",
                fixture.name
            );
            assert!(
                !fixture.kernel.is_empty(),
                "{}: no kernel line",
                fixture.name
            );
            fixture
        })
        .collect()
}

//! The matcher: captures into templates, line numbers and offsets, non-UTF-8 and overlong
//! lines, CRLF, and the same answers however the stream is cut into pieces — checked against
//! a plain line-by-line loop with the `regex` crate on random input.

use nodedoc_config::{LogEvent, RuleKind, RuleSet, RuleSpec, ScanStats};
use nodedoc_model::Severity;

fn rule(id: &str, patterns: &[&str], summary: Option<&str>) -> RuleSpec {
    RuleSpec {
        id: id.to_string(),
        kind: RuleKind::Event,
        severity: Severity::Warning,
        patterns: patterns.iter().map(|p| p.to_string()).collect(),
        summary: summary.map(str::to_string),
        explanation: None,
        fix: None,
    }
}

/// (rule id, line number, offset, summary, truncated) of every match.
type Hit = (String, u64, u64, String, bool);

fn scan(rules: &RuleSet, input: &[u8]) -> (Vec<Hit>, ScanStats) {
    let mut hits = Vec::new();
    let stats = rules
        .scan_reader(input, |m| {
            hits.push((
                m.rule().id().to_string(),
                m.line_number(),
                m.offset(),
                m.summary(),
                m.truncated(),
            ))
        })
        .unwrap();
    (hits, stats)
}

fn hit(id: &str, line: u64, offset: u64, summary: &str) -> Hit {
    (id.to_string(), line, offset, summary.to_string(), false)
}

#[test]
fn captures_fill_the_templates() {
    let mut spec = rule(
        "netdev-wait",
        &[
            r"unregister_netdevice: waiting for (?P<device>\w+) to become free\. Usage count = (?P<count>\d+)",
        ],
        Some("{device} still referenced ({count}); {{raw}}"),
    );
    spec.explanation = Some("{device} cannot be freed".into());
    spec.fix = Some("find who holds {device}: {0}".into());
    let rules = RuleSet::new(vec![spec]).unwrap();
    let input = b"kernel: hello\n[ 1.0] unregister_netdevice: waiting for veth1a2b to become free. Usage count = 2\n";
    let mut events: Vec<LogEvent> = Vec::new();
    rules
        .scan_reader(&input[..], |m| events.push(m.to_event("/dev/kmsg")))
        .unwrap();
    assert_eq!(events.len(), 1);
    let e = &events[0];
    assert_eq!(e.rule, "netdev-wait");
    assert_eq!(e.severity, Severity::Warning);
    assert_eq!(e.summary, "veth1a2b still referenced (2); {raw}");
    assert_eq!(e.explanation.as_deref(), Some("veth1a2b cannot be freed"));
    assert_eq!(
        e.fix.as_deref(),
        Some("find who holds veth1a2b: unregister_netdevice: waiting for veth1a2b to become free. Usage count = 2")
    );
    assert_eq!((e.line_number, e.offset), (2, 14));
    assert_eq!(e.source, "/dev/kmsg");
    assert!(e.line.starts_with("[ 1.0] unregister"));
    let json = serde_json::to_value(e).unwrap();
    assert_eq!(json["kind"], "event");
    assert_eq!(json["severity"], "warning");
    assert_eq!(json["line_number"], 2);
}

#[test]
fn every_matching_rule_reports_once_per_line() {
    let rules = RuleSet::new(vec![
        rule(
            "oom",
            &["Out of memory", r"Killed process (?P<pid>\d+)"],
            None,
        ),
        rule(
            "killed",
            &[r"Killed process (?P<pid>\d+)"],
            Some("pid {pid}"),
        ),
        rule("never", &["xyzzy"], None),
    ])
    .unwrap();
    let input = b"a\nOut of memory: Killed process 12 (java)\nKilled process 13\nb\n";
    let (hits, stats) = scan(&rules, input);
    assert_eq!(
        hits,
        vec![
            hit("oom", 2, 2, "Out of memory"),
            hit("killed", 2, 2, "pid 12"),
            // The first pattern that matches gives the captures.
            hit("oom", 3, 42, "Killed process 13"),
            hit("killed", 3, 42, "pid 13"),
        ]
    );
    assert_eq!(stats.matches, vec![2, 2, 0]);
    assert_eq!(stats.matched_lines, 2);
    assert_eq!(stats.lines, 4);
    assert_eq!(stats.bytes, input.len() as u64);
}

#[test]
fn patterns_match_within_one_line_with_line_anchors() {
    let rules = RuleSet::new(vec![
        rule("anchored", &[r"^start (\w+)$"], None),
        rule("spanning", &[r"alpha\s+beta", r"gamma[^x]*delta"], None),
        rule("text-anchors", &[r"\Aonly\z"], None),
    ])
    .unwrap();
    let input = b"xstart a\nstart b\nstart c d\nalpha\nbeta\ngamma\ndelta\nonly\nnot only\n";
    let (hits, _) = scan(&rules, input);
    assert_eq!(
        hits,
        vec![
            hit("anchored", 2, 9, "start b"),
            hit("text-anchors", 8, 50, "only")
        ]
    );
}

#[test]
fn lines_that_are_not_utf8_are_matched_and_shown_lossily() {
    let rules = RuleSet::new(vec![rule(
        "dev-error",
        &[r"error on (?P<dev>\S+)"],
        Some("{dev}"),
    )])
    .unwrap();
    let input = b"\xff\xfe garbage \xc3\n\x80 error on sd\xffb1 now\nplain\n";
    let (hits, stats) = scan(&rules, input);
    // `\S` matches no invalid byte: the capture stops at \xff.
    assert_eq!(hits, vec![hit("dev-error", 2, 13, "sd")]);
    assert_eq!(stats.lines, 3);
    let rules = RuleSet::new(vec![rule(
        "any",
        &[r"error on (?P<dev>(?s-u:.)+) now"],
        Some("{dev}"),
    )])
    .unwrap();
    let (hits, _) = scan(&rules, input);
    assert_eq!(hits, vec![hit("any", 2, 13, "sd\u{fffd}b1")]);
}

#[test]
fn crlf_lines_end_before_the_carriage_return() {
    let rules = RuleSet::new(vec![rule(
        "eol",
        &[r"(?P<word>\w+) down$"],
        Some("{word}|{0}"),
    )])
    .unwrap();
    let input = b"eth0 down\r\neth1 down now\r\nlast down\r\n";
    let (hits, _) = scan(&rules, input);
    assert_eq!(
        hits,
        vec![
            hit("eol", 1, 0, "eth0|eth0 down"),
            hit("eol", 3, 26, "last|last down")
        ]
    );
    let mut lines = Vec::new();
    rules
        .scan_reader(&input[..], |m| lines.push(m.line().to_vec()))
        .unwrap();
    assert_eq!(lines, vec![b"eth0 down".to_vec(), b"last down".to_vec()]);
}

#[test]
fn overlong_lines_are_matched_on_their_beginning_and_counted() {
    let rules = RuleSet::new(vec![rule("marker", &["MARK"], None)]).unwrap();
    let cap = 64;
    let mut input = Vec::new();
    input.extend_from_slice(b"MARK short\n"); // line 1
    input.extend_from_slice(&[b'a'; 100]); // line 2: over the cap, marker after it
    input.extend_from_slice(b"MARK\n");
    input.extend_from_slice(b"MARK");
    input.extend_from_slice(&[b'b'; 100]); // line 3: over the cap, marker at its start
    input.push(b'\n');
    input.extend_from_slice(&[b'c'; 64]); // line 4: exactly the cap: not truncated
    input.extend_from_slice(b"\nMARK end"); // line 5: no final newline
                                            // Fed whole and fed byte by byte: the same answers, memory bounded by the cap.
    for piece in [input.len(), 1, 7] {
        let mut scanner = rules.scanner().with_max_line_len(cap);
        let mut hits = Vec::new();
        for chunk in input.chunks(piece) {
            scanner.feed(chunk, |m| {
                hits.push((m.line_number(), m.offset(), m.truncated(), m.line().len()))
            });
        }
        scanner.finish(|m| hits.push((m.line_number(), m.offset(), m.truncated(), m.line().len())));
        assert_eq!(
            hits,
            vec![(1, 0, false, 10), (3, 116, true, cap), (5, 286, false, 8)],
            "pieces of {piece}"
        );
        let stats = scanner.stats();
        assert_eq!(stats.truncated_lines, 2, "pieces of {piece}");
        assert_eq!(stats.lines, 5, "pieces of {piece}");
        assert_eq!(scanner.position(), (input.len() as u64, 6));
    }
}

#[test]
fn a_resumed_stream_numbers_from_where_it_was() {
    let rules = RuleSet::new(vec![rule("x", &["x"], None)]).unwrap();
    let mut scanner = rules.scanner().with_position(1000, 50);
    let mut hits = Vec::new();
    scanner.feed(b"a\nx\npartial x", |m| {
        hits.push((m.line_number(), m.offset()))
    });
    assert_eq!(hits, vec![(51, 1002)]);
    // The incomplete line waits for its newline.
    assert_eq!(scanner.position(), (1004, 52));
    scanner.feed(b" done\n", |m| hits.push((m.line_number(), m.offset())));
    assert_eq!(hits, vec![(51, 1002), (52, 1004)]);
    assert_eq!(scanner.position(), (1019, 53));
}

#[test]
fn records_fed_as_lines_end_without_a_newline() {
    let rules = RuleSet::new(vec![rule("end", &[r"down$"], None)]).unwrap();
    let mut scanner = rules.scanner();
    let mut hits = Vec::new();
    for record in [&b"eth0 down"[..], b"eth1 up", b"eth2 down\n"] {
        scanner.feed_line(record, |m| hits.push(m.line_number()));
    }
    assert_eq!(hits, vec![1, 3]);
    assert_eq!(scanner.stats().lines, 3);
}

#[test]
fn rule_sets_and_scanners_can_move_to_other_threads() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    send_sync::<RuleSet>();
    send::<nodedoc_config::Scanner>();
    send_sync::<nodedoc_config::Config>();
}

#[test]
fn a_rule_set_without_rules_counts_lines() {
    let rules = RuleSet::new(vec![]).unwrap();
    assert!(rules.is_empty());
    let (hits, stats) = scan(&rules, b"a\nb\nc");
    assert!(hits.is_empty());
    assert_eq!((stats.lines, stats.bytes), (3, 5));
}

#[test]
fn long_summaries_are_bounded() {
    let rules = RuleSet::new(vec![rule("x", &["x+"], None)]).unwrap();
    let input = format!("{}\n", "x".repeat(10_000));
    let (hits, _) = scan(&rules, input.as_bytes());
    assert_eq!(
        hits[0].3.len(),
        nodedoc_config::MAX_RENDERED_LEN + '…'.len_utf8()
    );
}

/// The reference: split lines, truncate, match each rule's patterns on each line alone.
fn reference(
    regexes: &[Vec<regex::bytes::Regex>],
    input: &[u8],
    cap: usize,
) -> Vec<(usize, u64, u64, bool)> {
    let mut out = Vec::new();
    let mut offset = 0u64;
    let mut number = 1u64;
    let mut rest = input;
    while !rest.is_empty() {
        let (line, next) = match rest.iter().position(|&b| b == b'\n') {
            Some(i) => (&rest[..i], i + 1),
            None => (rest, rest.len()),
        };
        let truncated = line.len() > cap;
        let hay = &line[..line.len().min(cap)];
        for (r, res) in regexes.iter().enumerate() {
            if res.iter().any(|re| re.is_match(hay)) {
                out.push((r, number, offset, truncated));
            }
        }
        offset += next as u64;
        number += 1;
        rest = &rest[next..];
    }
    out
}

/// Random streams over a small alphabet, cut into random pieces, with random line caps.
fn agrees_with_a_line_by_line_loop(patterns: &[Vec<&str>], alphabet: &[u8], seed: u64) {
    let specs = patterns
        .iter()
        .enumerate()
        .map(|(i, ps)| rule(&format!("r{i}"), ps, None))
        .collect();
    let rules = RuleSet::new(specs).unwrap();
    let regexes: Vec<Vec<regex::bytes::Regex>> = patterns
        .iter()
        .map(|ps| {
            ps.iter()
                .map(|p| regex::bytes::Regex::new(&format!("(?mR){p}")).unwrap())
                .collect()
        })
        .collect();
    let mut rng = fastrand::Rng::with_seed(seed);
    for round in 0..1000 {
        let len = rng.usize(0..200);
        let input: Vec<u8> = (0..len)
            .map(|_| alphabet[rng.usize(..alphabet.len())])
            .collect();
        let cap = rng.usize(1..40);
        let expected = reference(&regexes, &input, cap);
        let mut scanner = rules.scanner().with_max_line_len(cap);
        let mut got = Vec::new();
        let mut rest = &input[..];
        while !rest.is_empty() {
            let n = rng.usize(1..=rest.len());
            scanner.feed(&rest[..n], |m| {
                got.push((m.rule_index(), m.line_number(), m.offset(), m.truncated()))
            });
            rest = &rest[n..];
        }
        scanner.finish(|m| got.push((m.rule_index(), m.line_number(), m.offset(), m.truncated())));
        assert_eq!(
            got,
            expected,
            "round {round}, cap {cap}, input {:?}",
            String::from_utf8_lossy(&input)
        );
        let lines = input.split(|&b| b == b'\n').count() as u64
            - u64::from(input.last().is_none_or(|&b| b == b'\n'));
        assert_eq!(scanner.stats().lines, lines, "round {round}");
    }
}

/// Patterns with no selective literal (`d$`): the regexes search every byte.
#[test]
fn random_streams_agree_when_the_regexes_search_everything() {
    let patterns = vec![
        vec!["ab"],
        vec![r"^c\d+", r"d$"],
        vec![r"b\s+a"],
        vec![r"(?i)CAB"],
        vec![r"\bda\b"],
        vec![r"a[^b]*c"],
    ];
    agrees_with_a_line_by_line_loop(&patterns, b"abcd0 \n\n\r\xff\t", 9);
}

/// Every pattern holds a literal of 3 bytes or more, inside it or at its start: only lines
/// holding one are searched.
#[test]
fn random_streams_agree_when_only_lines_with_a_literal_are_searched() {
    let patterns = vec![
        vec!["abc"],
        vec![r"\w+ cab$", r"^dd0\d"],
        vec![r"a[^b]*(bad|dab)\s"],
        vec![r"(?i)cAd\b"],
        vec![r"(x|\d)? ?bcd"],
    ];
    agrees_with_a_line_by_line_loop(&patterns, b"abcdabcd0 \n\r\xffA", 10);
}

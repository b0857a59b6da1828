//! User log rules: regex patterns matched against the lines of a log, each match an event
//! with a rule id, a severity and a summary filled from the pattern's capture groups.
//!
//! # Semantics
//!
//! A pattern is matched against one line at a time, as `grep` does: `^` and `$` (and `\A`,
//! `\z`) anchor at the start and end of the line, a `\r\n` ending counts as the end of the
//! line, and no pattern can match across lines (a newline in a pattern is an error; classes
//! such as `\s` or `[^x]` never match one). Lines are bytes: a line that is not UTF-8 is
//! matched as it is (`.` matches no invalid byte) and shown with U+FFFD. A line longer than
//! [`Scanner::max_line_len`] is matched on its first that many bytes and counted in
//! [`ScanStats::truncated_lines`].
//!
//! # How it is fast
//!
//! The input is not split into lines. Each pattern contributes a set of literals one of
//! which every match of it contains (`" blocked for more than "` for
//! `task \S+:\w+ blocked for more than \w+ seconds\.`); an Aho-Corasick searcher (SIMD
//! Teddy for small sets) finds the next occurrence of any of them in a block of whole lines,
//! and only the line around it is examined: which rules match it (one overlapping pass of
//! all patterns compiled together, a lazy DFA), and the captures of those. When some pattern
//! has no selective literal, the compiled patterns search the blocks themselves (the regex
//! engine's own prefix prefilter, then its lazy DFA). With 0.1 % of lines matching, almost
//! every byte is seen only by the literal search and one vectorised newline count for line
//! numbers. This is how ripgrep searches; it is written here rather than taken from
//! `grep-searcher` because that crate stops at a line longer than its heap limit instead of
//! truncating it, and wants the whole input behind a reader, where an agent feeds the bytes
//! a tailed file grew by.

use std::io::{self, Read};
use std::sync::Arc;

use aho_corasick::AhoCorasick;
use memchr::{memchr, memchr_iter, memrchr};
use nodedoc_model::{RuleKind, RuleMatch, Severity};
use regex_automata::util::captures::Captures;
use regex_automata::{meta, Input, MatchKind, PatternSet};
use regex_syntax::hir::{self, Class, Hir, HirKind, Look};
use serde::Serialize;

use crate::template::{lossy_bounded, Template};

/// A rule as written, before it is compiled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleSpec {
    /// The finding id, lowercase kebab-case (`ext4-error`).
    pub id: String,
    /// Event or condition.
    pub kind: RuleKind,
    /// How bad a match is.
    pub severity: Severity,
    /// One or more regexes (Rust `regex` syntax); a line matching any of them matches.
    pub patterns: Vec<String>,
    /// The one-line summary; `{group}` placeholders. `None` is `{0}`, the matched text.
    pub summary: Option<String>,
    /// Why it happens (a template as well).
    pub explanation: Option<String>,
    /// What to do (a template as well).
    pub fix: Option<String>,
}

/// Which part of a [`RuleSpec`] an error is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RuleField {
    /// `id`.
    Id,
    /// The pattern at this index.
    Pattern(usize),
    /// `summary`.
    Summary,
    /// `explanation`.
    Explanation,
    /// `fix`.
    Fix,
}

/// Why a set of rules does not compile.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("rule {rule}: {message}")]
pub struct RuleError {
    /// Index of the rule in the specs given to [`RuleSet::new`].
    pub rule: usize,
    /// The field at fault.
    pub field: RuleField,
    /// Byte offset in that field's value, when known.
    pub offset: Option<usize>,
    /// What is wrong.
    pub message: String,
}

/// One compiled rule.
#[derive(Clone, Debug)]
pub struct Rule {
    id: String,
    kind: RuleKind,
    severity: Severity,
    patterns: Vec<String>,
    regexes: Vec<meta::Regex>,
    summary: Template,
    explanation: Option<Template>,
    fix: Option<Template>,
}

impl Rule {
    /// The finding id.
    pub fn id(&self) -> &str {
        &self.id
    }
    /// Event or condition.
    pub fn kind(&self) -> RuleKind {
        self.kind
    }
    /// How bad a match is.
    pub fn severity(&self) -> Severity {
        self.severity
    }
    /// The patterns as written.
    pub fn patterns(&self) -> &[String] {
        &self.patterns
    }
    /// The summary template.
    pub fn summary(&self) -> &Template {
        &self.summary
    }
    /// The explanation template.
    pub fn explanation(&self) -> Option<&Template> {
        self.explanation.as_ref()
    }
    /// The fix template.
    pub fn fix(&self) -> Option<&Template> {
        self.fix.as_ref()
    }
}

/// Compiled rules, ready to scan. Cloning is cheap (shared).
#[derive(Clone, Debug)]
pub struct RuleSet {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    rules: Vec<Rule>,
    /// Every pattern of every rule, leftmost-first: finds the next line where any matches.
    any: meta::Regex,
    /// The same patterns reporting every one that matches a line.
    all: meta::Regex,
    /// Pattern id → (rule index, pattern index in the rule). Ascending in both.
    owner: Vec<(usize, usize)>,
    /// Literals at least one of which every match of every pattern contains, when each
    /// pattern has such a set: a line without any of them cannot match.
    required: Option<AhoCorasick>,
}

/// True when `id` is lowercase kebab-case: `[a-z][a-z0-9]*(-[a-z0-9]+)*`.
pub fn is_kebab_case(id: &str) -> bool {
    !id.is_empty()
        && id.starts_with(|c: char| c.is_ascii_lowercase())
        && id.split('-').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
}

impl RuleSet {
    /// Compiles `specs`. Checks ids (kebab-case, unique), patterns (syntax, one line), and
    /// that every template placeholder names a capture group of every pattern of its rule.
    pub fn new(specs: Vec<RuleSpec>) -> Result<RuleSet, RuleError> {
        let mut rules = Vec::with_capacity(specs.len());
        let mut hirs = Vec::new();
        let mut owner = Vec::new();
        for (index, spec) in specs.into_iter().enumerate() {
            let err = |field, offset, message: String| RuleError {
                rule: index,
                field,
                offset,
                message,
            };
            if !is_kebab_case(&spec.id) {
                return Err(err(
                    RuleField::Id,
                    None,
                    format!(
                        "rule id `{}` is not lowercase kebab-case (like `ext4-error`: \
                         lowercase letters and digits, words joined by `-`)",
                        spec.id
                    ),
                ));
            }
            if rules.iter().any(|r: &Rule| r.id == spec.id) {
                return Err(err(
                    RuleField::Id,
                    None,
                    format!("rule id `{}` is used twice", spec.id),
                ));
            }
            if spec.patterns.is_empty() {
                return Err(err(
                    RuleField::Pattern(0),
                    None,
                    "a rule needs at least one pattern".to_string(),
                ));
            }
            let mut regexes = Vec::with_capacity(spec.patterns.len());
            for (p, pattern) in spec.patterns.iter().enumerate() {
                let hir = parse_line_pattern(pattern)
                    .map_err(|(offset, message)| err(RuleField::Pattern(p), offset, message))?;
                let regex = meta::Builder::new()
                    .build_from_hir(&hir)
                    .map_err(|e| err(RuleField::Pattern(p), None, e.to_string()))?;
                hirs.push(hir);
                owner.push((index, p));
                regexes.push(regex);
            }
            let template = |field, source: &str| -> Result<Template, RuleError> {
                let template =
                    Template::parse(source).map_err(|e| err(field, Some(e.offset), e.message))?;
                for (name, offset) in template.placeholders() {
                    if name == "0" {
                        continue;
                    }
                    for (p, regex) in regexes.iter().enumerate() {
                        let names = group_names(regex);
                        if !names.iter().any(|n| n == name) {
                            let which = if regexes.len() == 1 {
                                "the pattern".to_string()
                            } else {
                                format!("pattern {} of this rule", p + 1)
                            };
                            let known = if names.is_empty() {
                                "it has no named groups; write `(?P<name>…)`".to_string()
                            } else {
                                format!("its named groups: {}", names.join(", "))
                            };
                            return Err(err(
                                field,
                                Some(offset),
                                format!("`{{{name}}}` is not a named group of {which} ({known})"),
                            ));
                        }
                    }
                }
                Ok(template)
            };
            let summary = template(RuleField::Summary, spec.summary.as_deref().unwrap_or("{0}"))?;
            let explanation = spec
                .explanation
                .as_deref()
                .map(|s| template(RuleField::Explanation, s))
                .transpose()?;
            let fix = spec
                .fix
                .as_deref()
                .map(|s| template(RuleField::Fix, s))
                .transpose()?;
            rules.push(Rule {
                id: spec.id,
                kind: spec.kind,
                severity: spec.severity,
                patterns: spec.patterns,
                regexes,
                summary,
                explanation,
                fix,
            });
        }
        let set_error = |e: regex_automata::meta::BuildError| RuleError {
            rule: 0,
            field: RuleField::Pattern(0),
            offset: None,
            message: format!("the patterns together are too large to compile: {e}"),
        };
        let any = meta::Builder::new()
            .build_many_from_hir(&hirs)
            .map_err(set_error)?;
        let all = meta::Builder::new()
            .configure(meta::Config::new().match_kind(MatchKind::All))
            .build_many_from_hir(&hirs)
            .map_err(set_error)?;
        let required = required_literals(&hirs).and_then(|literals| {
            AhoCorasick::builder()
                .match_kind(aho_corasick::MatchKind::LeftmostFirst)
                .build(literals)
                .ok()
        });
        Ok(RuleSet {
            inner: Arc::new(Inner {
                rules,
                any,
                all,
                owner,
                required,
            }),
        })
    }

    /// The rules, in the order given.
    pub fn rules(&self) -> &[Rule] {
        &self.inner.rules
    }

    /// True when there are no rules.
    pub fn is_empty(&self) -> bool {
        self.inner.rules.is_empty()
    }

    /// A scanner at the start of a stream (offset 0, line 1).
    pub fn scanner(&self) -> Scanner {
        Scanner::new(self.clone())
    }

    /// Scans everything `reader` gives, in large blocks, calling `on_match` for each rule that
    /// matches a line. The last line counts even without a final newline.
    pub fn scan_reader<R: Read>(
        &self,
        reader: R,
        on_match: impl FnMut(&Match<'_>),
    ) -> io::Result<ScanStats> {
        let mut scanner = self.scanner();
        scanner.scan_reader(reader, on_match)?;
        Ok(scanner.finish_stats())
    }
}

/// Group names of a single-pattern regex, in order.
fn group_names(regex: &meta::Regex) -> Vec<String> {
    regex
        .group_info()
        .pattern_names(regex_automata::PatternID::ZERO)
        .flatten()
        .map(str::to_string)
        .collect()
}

/// Parses `pattern` for matching within one line: multi-line and CRLF anchors, and no way to
/// match `\n`. Errors carry the byte offset in the pattern when the parser knows it.
fn parse_line_pattern(pattern: &str) -> Result<Hir, (Option<usize>, String)> {
    if pattern.is_empty() {
        return Err((
            None,
            "an empty pattern matches every line; write what the line contains".to_string(),
        ));
    }
    let hir = regex_syntax::ParserBuilder::new()
        .multi_line(true)
        .crlf(true)
        // Logs are bytes: `(?-u:\xff)` may match a byte that is not UTF-8.
        .utf8(false)
        .build()
        .parse(pattern)
        .map_err(|e| match e {
            regex_syntax::Error::Parse(e) => (Some(e.span().start.offset), e.kind().to_string()),
            regex_syntax::Error::Translate(e) => {
                (Some(e.span().start.offset), e.kind().to_string())
            }
            e => (None, e.to_string()),
        })?;
    within_one_line(hir).map_err(|m| (None, m))
}

/// Rewrites `hir` so it can only match inside one line: classes lose `\n`, anchors become
/// line anchors. Searching a block of lines then finds exactly the matches that searching
/// each line alone would.
fn within_one_line(hir: Hir) -> Result<Hir, String> {
    Ok(match hir.into_kind() {
        HirKind::Empty => Hir::empty(),
        HirKind::Literal(hir::Literal(bytes)) => {
            if bytes.contains(&b'\n') {
                return Err(
                    "the pattern contains a newline, but rules match one line at a \
                            time; split it into two rules"
                        .to_string(),
                );
            }
            Hir::literal(bytes)
        }
        HirKind::Class(Class::Unicode(mut class)) => {
            class.difference(&hir::ClassUnicode::new([hir::ClassUnicodeRange::new(
                '\n', '\n',
            )]));
            if class.ranges().is_empty() {
                return Err(only_newline());
            }
            Hir::class(Class::Unicode(class))
        }
        HirKind::Class(Class::Bytes(mut class)) => {
            class.difference(&hir::ClassBytes::new([hir::ClassBytesRange::new(
                b'\n', b'\n',
            )]));
            if class.ranges().is_empty() {
                return Err(only_newline());
            }
            Hir::class(Class::Bytes(class))
        }
        HirKind::Look(look) => Hir::look(match look {
            Look::Start | Look::StartLF => Look::StartCRLF,
            Look::End | Look::EndLF => Look::EndCRLF,
            other => other,
        }),
        HirKind::Repetition(mut rep) => {
            rep.sub = Box::new(within_one_line(*rep.sub)?);
            Hir::repetition(rep)
        }
        HirKind::Capture(mut cap) => {
            cap.sub = Box::new(within_one_line(*cap.sub)?);
            Hir::capture(cap)
        }
        HirKind::Concat(subs) => Hir::concat(
            subs.into_iter()
                .map(within_one_line)
                .collect::<Result<_, _>>()?,
        ),
        HirKind::Alternation(subs) => Hir::alternation(
            subs.into_iter()
                .map(within_one_line)
                .collect::<Result<_, _>>()?,
        ),
    })
}

/// Shortest literal worth a prefilter: shorter ones occur on too many lines.
const MIN_REQUIRED_LITERAL: usize = 3;

/// For each pattern, a set of literals one of which every match contains; their union, or
/// `None` when some pattern has no such set.
///
/// The regex engine's own prefilter uses literal *prefixes* only, so one pattern starting
/// with `\w+` or `.*` sends every byte of the input through its automaton (measured here: a
/// tenth of the speed). A literal in the middle of a pattern (`\w+: carrier: link down`)
/// rules out as many lines: every match of a concatenation contains a match of each of its
/// parts, and every match of a part begins with one of that part's prefix literals. So the
/// scan looks for these literals, and runs the regexes only on the lines that hold one —
/// ripgrep's "inner literal" optimisation.
fn required_literals(hirs: &[Hir]) -> Option<Vec<Vec<u8>>> {
    let extractor = hir::literal::Extractor::new();
    // A usable set: finite, and no literal too short to be selective.
    let usable = |hir: &Hir| -> Option<Vec<Vec<u8>>> {
        let seq = extractor.extract(hir);
        if seq.min_literal_len()? < MIN_REQUIRED_LITERAL {
            return None;
        }
        Some(
            seq.literals()?
                .iter()
                .map(|l| l.as_bytes().to_vec())
                .collect(),
        )
    };
    let mut all = Vec::new();
    for hir in hirs {
        let mut hir = hir;
        while let HirKind::Capture(cap) = hir.kind() {
            hir = &cap.sub;
        }
        let mut candidates: Vec<Vec<Vec<u8>>> = usable(hir).into_iter().collect();
        if let HirKind::Concat(parts) = hir.kind() {
            candidates.extend(parts.iter().filter_map(usable));
        }
        // The longest shortest literal is the most selective; then the smaller set.
        let best = candidates.into_iter().max_by_key(|set| {
            let shortest = set.iter().map(Vec::len).min().unwrap_or(0);
            (shortest, std::cmp::Reverse(set.len()))
        })?;
        all.extend(best);
    }
    all.sort();
    all.dedup();
    // A line holding `adef` holds `ade`: the longer one adds nothing.
    let redundant = |l: &Vec<u8>| {
        all.iter()
            .any(|m| m.len() < l.len() && memchr::memmem::find(l, m).is_some())
    };
    let kept = all.iter().filter(|l| !redundant(l)).cloned().collect();
    Some(kept)
}

fn only_newline() -> String {
    "a class in the pattern matches only a newline, but rules match one line at a time".to_string()
}

/// Counts of one scan.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ScanStats {
    /// Bytes fed.
    pub bytes: u64,
    /// Lines seen (a last line without a newline counts once finished).
    pub lines: u64,
    /// Lines that matched at least one rule.
    pub matched_lines: u64,
    /// Lines longer than the cap, matched on their beginning only.
    pub truncated_lines: u64,
    /// Matching lines per rule, in rule order.
    pub matches: Vec<u64>,
}

/// A rule that matched a line. Borrowed: the summary and other texts are rendered on demand.
pub struct Match<'a> {
    rule: &'a Rule,
    rule_index: usize,
    /// The line as matched, with its terminator (captures index into it).
    haystack: &'a [u8],
    captures: &'a Captures,
    line_number: u64,
    offset: u64,
    truncated: bool,
}

impl<'a> Match<'a> {
    /// The rule.
    pub fn rule(&self) -> &'a Rule {
        self.rule
    }
    /// The rule's index in its set.
    pub fn rule_index(&self) -> usize {
        self.rule_index
    }
    /// The line, without `\n` or `\r\n` (its first [`Scanner::max_line_len`] bytes if
    /// [truncated](Self::truncated)).
    pub fn line(&self) -> &'a [u8] {
        let line = self.haystack;
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        line.strip_suffix(b"\r").unwrap_or(line)
    }
    /// 1-based line number in the stream.
    pub fn line_number(&self) -> u64 {
        self.line_number
    }
    /// Byte offset of the line's start in the stream.
    pub fn offset(&self) -> u64 {
        self.offset
    }
    /// True when the line was longer than the cap.
    pub fn truncated(&self) -> bool {
        self.truncated
    }
    /// The bytes a named group (or `"0"`, the whole match) captured.
    pub fn group(&self, name: &str) -> Option<&'a [u8]> {
        let span = if name == "0" {
            self.captures.get_match()?.span()
        } else {
            self.captures.get_group_by_name(name)?
        };
        self.haystack.get(span.range())
    }
    /// The summary with its placeholders filled.
    pub fn summary(&self) -> String {
        self.rule.summary.render(|name| self.group(name))
    }
    /// The explanation with its placeholders filled.
    pub fn explanation(&self) -> Option<String> {
        let t = self.rule.explanation.as_ref()?;
        Some(t.render(|name| self.group(name)))
    }
    /// The fix with its placeholders filled.
    pub fn fix(&self) -> Option<String> {
        let t = self.rule.fix.as_ref()?;
        Some(t.render(|name| self.group(name)))
    }
    /// An owned event, `source` naming the log (its path).
    pub fn to_event(&self, source: &str) -> LogEvent {
        LogEvent {
            rule: self.rule.id.clone(),
            kind: self.rule.kind,
            severity: self.rule.severity,
            summary: self.summary(),
            explanation: self.explanation(),
            fix: self.fix(),
            source: source.to_string(),
            line_number: self.line_number,
            offset: self.offset,
            line: lossy_bounded(self.line()),
            truncated: self.truncated,
        }
    }
}

/// A match as owned data (see [`nodedoc_model::RuleMatch`]).
pub type LogEvent = RuleMatch;

/// The default line cap: longer lines are matched on their first 64 KiB.
pub const DEFAULT_MAX_LINE_LEN: usize = 64 * 1024;

/// Block size of [`Scanner::scan_reader`].
const READ_BLOCK: usize = 256 * 1024;

/// Scans a stream fed in pieces of any size: keeps the incomplete last line (at most the line
/// cap of it) between calls, counts lines and bytes. Memory is bounded by the cap.
pub struct Scanner {
    rules: RuleSet,
    any_cache: meta::Cache,
    all_cache: meta::Cache,
    patterns: PatternSet,
    max_line_len: usize,
    /// The start of the incomplete line (at most `max_line_len + 1` bytes of it).
    partial: Vec<u8>,
    /// Bytes of the incomplete line beyond what `partial` keeps.
    dropped: u64,
    /// Stream offset of the next line's start (the start of `partial`).
    offset: u64,
    /// Number of the next line to start.
    line_number: u64,
    stats: ScanStats,
}

impl Scanner {
    /// A scanner at offset 0, line 1, with the default line cap.
    pub fn new(rules: RuleSet) -> Scanner {
        let inner = &rules.inner;
        Scanner {
            any_cache: inner.any.create_cache(),
            all_cache: inner.all.create_cache(),
            patterns: PatternSet::new(inner.all.pattern_len()),
            max_line_len: DEFAULT_MAX_LINE_LEN,
            partial: Vec::new(),
            dropped: 0,
            offset: 0,
            line_number: 1,
            stats: ScanStats {
                matches: vec![0; inner.rules.len()],
                ..ScanStats::default()
            },
            rules,
        }
    }

    /// Sets the line cap (at least 1 byte).
    pub fn with_max_line_len(mut self, bytes: usize) -> Scanner {
        self.max_line_len = bytes.max(1);
        self
    }

    /// Starts numbering at `offset` and `line_number`, for a stream resumed where an earlier
    /// scan stopped (a tailed file reopened at a saved offset).
    pub fn with_position(mut self, offset: u64, line_number: u64) -> Scanner {
        self.offset = offset;
        self.line_number = line_number.max(1);
        self
    }

    /// The line cap.
    pub fn max_line_len(&self) -> usize {
        self.max_line_len
    }

    /// Offset and number of the next line to start, after everything fed so far that ended
    /// with a newline. An incomplete last line is not yet counted.
    pub fn position(&self) -> (u64, u64) {
        (self.offset, self.line_number)
    }

    /// Counts so far.
    pub fn stats(&self) -> &ScanStats {
        &self.stats
    }

    /// Feeds the next bytes of the stream. Complete lines are matched now; an incomplete
    /// last line waits for its newline (or [`finish`](Self::finish)).
    pub fn feed(&mut self, mut bytes: &[u8], mut on_match: impl FnMut(&Match<'_>)) {
        self.stats.bytes += bytes.len() as u64;
        if !self.partial.is_empty() || self.dropped > 0 {
            let Some(nl) = memchr(b'\n', bytes) else {
                self.keep_partial(bytes);
                return;
            };
            self.keep_partial(&bytes[..=nl]);
            self.flush_partial(&mut on_match);
            bytes = &bytes[nl + 1..];
        }
        let complete = memrchr(b'\n', bytes).map_or(0, |nl| nl + 1);
        if complete > 0 {
            self.scan_lines(&bytes[..complete], &mut on_match);
        }
        self.keep_partial(&bytes[complete..]);
    }

    /// Feeds one whole line (a kernel log record's message, a journal entry): the line ends
    /// here even without a newline.
    pub fn feed_line(&mut self, line: &[u8], mut on_match: impl FnMut(&Match<'_>)) {
        self.feed(line, &mut on_match);
        if !line.ends_with(b"\n") {
            self.feed(b"\n", &mut on_match);
        }
    }

    /// Matches the incomplete last line, if any (end of file, or the file rotated away).
    pub fn finish(&mut self, mut on_match: impl FnMut(&Match<'_>)) {
        if !self.partial.is_empty() || self.dropped > 0 {
            self.flush_partial(&mut on_match);
        }
    }

    /// Reads `reader` to its end in large blocks, feeding each, then [`finish`](Self::finish)es.
    pub fn scan_reader<R: Read>(
        &mut self,
        mut reader: R,
        mut on_match: impl FnMut(&Match<'_>),
    ) -> io::Result<()> {
        let mut block = vec![0u8; READ_BLOCK];
        loop {
            let n = match reader.read(&mut block) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            self.feed(&block[..n], &mut on_match);
        }
        self.finish(&mut on_match);
        Ok(())
    }

    fn finish_stats(self) -> ScanStats {
        self.stats
    }

    fn keep_partial(&mut self, bytes: &[u8]) {
        let room = (self.max_line_len + 1).saturating_sub(self.partial.len());
        let kept = bytes.len().min(room);
        self.partial.extend_from_slice(&bytes[..kept]);
        self.dropped += (bytes.len() - kept) as u64;
    }

    /// Matches the line held in `partial` (complete, or the last one at the end).
    fn flush_partial(&mut self, on_match: &mut impl FnMut(&Match<'_>)) {
        let partial = std::mem::take(&mut self.partial);
        let total = partial.len() as u64 + self.dropped;
        let newline = self.dropped == 0 && partial.last() == Some(&b'\n');
        let truncated = total - u64::from(newline) > self.max_line_len as u64;
        let haystack = if truncated {
            &partial[..self.max_line_len]
        } else {
            &partial[..]
        };
        let rules = self.rules.clone();
        self.match_line(&rules, haystack, self.offset, truncated, on_match);
        self.count_line(truncated);
        self.offset += total;
        self.dropped = 0;
        self.partial = partial;
        self.partial.clear();
    }

    fn count_line(&mut self, truncated: bool) {
        self.line_number += 1;
        self.stats.lines += 1;
        self.stats.truncated_lines += u64::from(truncated);
    }

    /// Scans complete lines (`lines` ends with `\n`) starting at `self.offset`, in windows
    /// of whole lines no longer than the cap; a longer line is matched on its beginning.
    fn scan_lines(&mut self, lines: &[u8], on_match: &mut impl FnMut(&Match<'_>)) {
        let rules = self.rules.clone();
        let cap = self.max_line_len;
        let mut pos = 0;
        while pos < lines.len() {
            // A line of `cap` bytes and its newline fit before `limit`.
            let limit = pos + cap + 1;
            if limit >= lines.len() {
                self.scan_window(&rules, &lines[pos..], on_match);
                break;
            }
            // Every line starting before the last newline of [pos, limit) ends there, so
            // none of them is longer than the cap.
            if let Some(nl) = memrchr(b'\n', &lines[pos..limit]) {
                self.scan_window(&rules, &lines[pos..=pos + nl], on_match);
                pos += nl + 1;
                continue;
            }
            let end = limit + memchr(b'\n', &lines[limit..]).expect("lines end with a newline");
            self.match_line(&rules, &lines[pos..pos + cap], self.offset, true, on_match);
            self.count_line(true);
            self.offset += (end + 1 - pos) as u64;
            pos = end + 1;
        }
    }

    /// Scans whole lines, none longer than the cap, starting at `self.offset`.
    fn scan_window(
        &mut self,
        rules: &RuleSet,
        window: &[u8],
        on_match: &mut impl FnMut(&Match<'_>),
    ) {
        let inner = &*rules.inner;
        let lines_before = self.line_number;
        let mut counted = 0; // newlines up to here are in line_number
        let mut at = 0;
        while at < window.len() {
            // A position on the next line that may match: a required literal, or else where
            // the regexes find the earliest match. No pattern or literal holds a newline, so
            // the line around that position is the one to examine.
            let end = if let Some(required) = &inner.required {
                let input = aho_corasick::Input::new(window).range(at..);
                match required.find(input) {
                    Some(hit) => hit.start(),
                    None => break,
                }
            } else {
                let input = Input::new(window).range(at..).earliest(true);
                match inner.any.search_half_with(&mut self.any_cache, &input) {
                    Some(hit) => hit.offset(),
                    None => break,
                }
            };
            let start = memrchr(b'\n', &window[..end]).map_or(0, |i| i + 1);
            let stop = memchr(b'\n', &window[end..]).map_or(window.len(), |i| end + i + 1);
            self.line_number += memchr_iter(b'\n', &window[counted..start]).count() as u64;
            counted = start;
            let offset = self.offset + start as u64;
            self.match_line(rules, &window[start..stop], offset, false, on_match);
            at = stop;
        }
        self.line_number += memchr_iter(b'\n', &window[counted..]).count() as u64;
        self.stats.lines += self.line_number - lines_before;
        self.offset += window.len() as u64;
    }

    /// Reports every rule that matches `line` (the line with its terminator, or the
    /// beginning of a truncated line).
    fn match_line(
        &mut self,
        rules: &RuleSet,
        line: &[u8],
        offset: u64,
        truncated: bool,
        on_match: &mut impl FnMut(&Match<'_>),
    ) {
        let inner = &*rules.inner;
        if inner.rules.is_empty() {
            return;
        }
        self.patterns.clear();
        inner.all.which_overlapping_matches_with(
            &mut self.all_cache,
            &Input::new(line),
            &mut self.patterns,
        );
        if self.patterns.is_empty() {
            return;
        }
        self.stats.matched_lines += 1;
        let mut last_rule = usize::MAX;
        for pattern in self.patterns.iter() {
            let (rule_index, p) = inner.owner[pattern.as_usize()];
            // A rule reports once per line, with its first pattern that matches.
            if rule_index == last_rule {
                continue;
            }
            last_rule = rule_index;
            let rule = &inner.rules[rule_index];
            let regex = &rule.regexes[p];
            let mut captures = regex.create_captures();
            regex.search_captures(&Input::new(line), &mut captures);
            self.stats.matches[rule_index] += 1;
            on_match(&Match {
                rule,
                rule_index,
                haystack: line,
                captures: &captures,
                line_number: self.line_number,
                offset,
                truncated,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn literals(patterns: &[&str]) -> Option<Vec<String>> {
        let hirs: Vec<Hir> = patterns
            .iter()
            .map(|p| parse_line_pattern(p).unwrap())
            .collect();
        required_literals(&hirs).map(|set| {
            set.into_iter()
                .map(|l| String::from_utf8(l).unwrap())
                .collect()
        })
    }

    #[test]
    fn the_most_selective_literal_of_each_pattern_is_required() {
        assert_eq!(
            literals(&[
                r"task \S+:\w+ blocked for more than \w+ seconds\.",
                r"\w+: carrier: link (?P<state>down|up)",
                r"nf_conntrack: (nf_conntrack: )?table full",
            ])
            .unwrap(),
            [
                " blocked for more than ",
                ": carrier: link ",
                // The whole pattern's exact literals beat its part "table full"; the longer
                // of them holds the shorter.
                "nf_conntrack: table full",
            ]
        );
        assert_eq!(literals(&[r"(?i)oom"]).unwrap().len(), 8, "case variants");
        // One pattern without a selective literal: the regexes search everything.
        assert_eq!(literals(&["abc", r"\d+ x"]), None);
        assert_eq!(literals(&[r"(a|bc)def?"]).unwrap(), ["ade", "bcde"]);
        // The patterns of tests/matching.rs's literal test do all have one.
        assert!(literals(&[
            "abc",
            r"\w+ cab$",
            r"^dd0\d",
            r"a[^b]*(bad|dab)\s",
            r"(?i)cAd\b",
            r"(x|\d)? ?bcd"
        ])
        .is_some());
    }
}

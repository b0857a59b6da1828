//! Blocked-task reports in the kernel log: what the hung-task detector prints,
//!
//! ```text
//! INFO: task jbd2/sda1-8:245 blocked for more than 120 seconds.
//!       Not tainted 4.4.0-21-generic #37-Ubuntu
//! "echo 0 > /proc/sys/kernel/hung_task_timeout_secs" disables this message.
//! jbd2/sda1-8     D ffff88003f9f7c68     0   245      2 0x00000000     (before 5.x)
//! task:jbd2/sda1-8 state:D stack:0 pid:245 ppid:2 flags:0x00004000    (5.x and later)
//! Call Trace:
//!  <TASK>
//!  __schedule+0x2a0/0x880
//!  ? bit_wait+0x50/0x50
//!  io_schedule+0x16/0x40
//!  …
//!  </TASK>
//! ```
//!
//! and what `echo w > /proc/sysrq-trigger` prints (`sysrq: Show Blocked State`, then the
//! same task line and trace for each task in D). Reports are parsed out of the lines as the
//! tools wrote them (see [`parse_log_line`]): every frame format since 2.6
//! (`[<ffffffff…>] func+0x…/0x…`, `func+0x…/0x… [module]`, ARM's `(func) from (caller…)`,
//! powerpc's two addresses), `? ` frames kept and marked unreliable, register dumps and
//! stack words skipped, and 6.14+'s `INFO: task X:PID is blocked on a mutex likely owned by
//! task Y:PID.` attached as the blocker with the owner's trace.
//!
//! Other CPUs print while a report is being printed. Where the kernel tags lines with the
//! printk caller id (`[ T123]`, `caller=T123`), lines of other callers are skipped; where
//! it does not, a report ends at the first line that is not part of a trace (inside
//! `<TASK>` … `</TASK>`, a few stray lines are tolerated).
//!
//! Memory is bounded: at most [`MAX_FRAMES`] frames per trace and [`MAX_REPORTS`] reports
//! are kept, the rest counted; lines are looked at up to [`MAX_LINE_BYTES`].

use std::sync::LazyLock;

use memchr::memmem;
use nodedoc_model::{
    BlockedTaskOrigin, BlockedTaskReport, BlockerLock, KmsgRecord, LockBlocker, LogPosition,
    PrintkCaller, TaskStateLine, TraceFrame,
};

use crate::log_line::{parse_log_line, LogLine};

/// Frames kept per trace; the rest are counted in `frames_dropped`. Real hung-task traces
/// are 10 to 40 frames; a deeper one is recursion or garbage.
pub const MAX_FRAMES: usize = 64;
/// Reports kept per log; the rest are counted. The kernel prints at most
/// `kernel.hung_task_warnings` (10 by default) hung-task reports per boot, but a log file
/// can hold many boots and `-1` removes the limit.
pub const MAX_REPORTS: usize = 256;
/// The longest line looked at; the rest of a longer line is ignored.
pub const MAX_LINE_BYTES: usize = 4096;
/// Lines that are not part of a trace that a report in progress tolerates before it is
/// taken as ended, where caller ids cannot tell them apart.
const MAX_STRAY_LINES: u32 = 8;
/// The longest command name kept: the kernel's is 15 bytes, but a garbled report can run on.
const MAX_COMM_BYTES: usize = 64;

/// The blocked-task reports of a log.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BlockedTaskReports {
    /// Reports in log order.
    pub reports: Vec<BlockedTaskReport>,
    /// Reports beyond [`MAX_REPORTS`].
    pub dropped: u64,
}

/// The blocked-task reports in `records`, as read from `/dev/kmsg` or parsed from text.
///
/// A record's message may hold several lines (a multi-line printk); each is a line here.
/// Prefixes a text log left in the message (a syslog stamp, `dmesg -T`'s date) are taken
/// off as in [`blocked_task_reports_in_text`].
pub fn blocked_task_reports(records: &[KmsgRecord]) -> BlockedTaskReports {
    let mut parser = Parser::default();
    for record in records {
        if parser.idle() && !may_start_a_report(&record.message) {
            continue;
        }
        for piece in record.message.split('\n') {
            let mut line = parse_log_line(cut(piece));
            line.caller = record.caller.or(line.caller);
            line.facility = Some(record.facility);
            if record.monotonic_us > 0 || record.sequence > 0 {
                line.monotonic_us = Some(record.monotonic_us);
            }
            let sequence = (record.sequence > 0).then_some(record.sequence);
            parser.line(&line, sequence);
        }
    }
    parser.finish()
}

/// The blocked-task reports in a kernel log saved as text: `dmesg` (with or without `-T`,
/// `-x`, `--raw`), `journalctl -k` in its usual outputs, or a syslog file
/// (`/var/log/kern.log`, `/var/log/messages`), where other programs' lines are skipped.
pub fn blocked_task_reports_in_text(text: &str) -> BlockedTaskReports {
    let mut parser = Parser::default();
    for line in text.lines() {
        if parser.idle() && !may_start_a_report(line) {
            continue;
        }
        parser.line(&parse_log_line(cut(line)), None);
    }
    parser.finish()
}

/// A quick look for the text every line that starts a report holds (`INFO: task`,
/// `task:`, `Show Blocked State`), so that the lines of a long log outside reports cost a
/// substring search and no parsing.
fn may_start_a_report(text: &str) -> bool {
    static TASK: LazyLock<memmem::Finder<'static>> = LazyLock::new(|| memmem::Finder::new("task"));
    static BLOCKED: LazyLock<memmem::Finder<'static>> =
        LazyLock::new(|| memmem::Finder::new("Blocked State"));
    TASK.find(text.as_bytes()).is_some() || BLOCKED.find(text.as_bytes()).is_some()
}

/// `line` cut to [`MAX_LINE_BYTES`] at a character boundary.
pub(crate) fn cut(line: &str) -> &str {
    if line.len() <= MAX_LINE_BYTES {
        return line;
    }
    let mut end = MAX_LINE_BYTES;
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    &line[..end]
}

/// Parses one line of a call trace: `[<ffffffff8135077c>] ? mutex_lock+0x1a/0x2d [zfs]`,
/// ` __schedule+0x2a0/0x880`, `[<80c1eb20>] (schedule) from [<80c1ec14>] (…)`,
/// `[c000…] [c000…] schedule+0x3c/0xa0 (unreliable)`, `[<0>] func+0x1/0x2` of
/// `/proc/PID/stack`. `None` for anything else, for a bare address (`? 0xffffffffa05ecfff`)
/// and for the `func file.c:12 [inline]` lines a symbolizer adds.
pub fn parse_trace_frame(line: &str) -> Option<TraceFrame> {
    let mut rest = line.trim();
    // `[<ffffffff…>]` addresses (x86 before 4.14, ARM, /proc/PID/stack) and powerpc's
    // `[c00000037d482e00] [c000000000efcf7c]`.
    while let Some(inside) = rest.strip_prefix('[') {
        let close = inside.find(']')?;
        let address = inside[..close]
            .trim_start_matches('<')
            .trim_end_matches('>');
        if address.is_empty() || !address.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        rest = inside[close + 1..].trim_start();
    }
    // ARM: `(__schedule) from [<80c1eb20>] (schedule+0x60/0xdc)`; the first name is this
    // frame, the second its caller (the next line's frame).
    // A module frame is `(fuse_writepages [fuse])`.
    if let Some(inside) = rest.strip_prefix('(') {
        let name = &inside[..inside.find(')')?];
        let (name, module) = match name.split_once(" [") {
            Some((name, module)) => (name, Some(module.trim_end_matches(']'))),
            None => (name, None),
        };
        let (function, offset) = match name.split_once('+') {
            Some((function, offset)) => (function, Some(offset)),
            None => (name, None),
        };
        return is_symbol(function).then(|| TraceFrame {
            function: function.to_string(),
            offset: offset.map(str::to_string),
            module: module.filter(|m| is_symbol(m)).map(str::to_string),
            reliable: true,
        });
    }
    let (reliable, rest) = match rest.strip_prefix("? ") {
        Some(rest) => (false, rest.trim_start()),
        None => (true, rest),
    };
    let mut tokens = rest.split_whitespace();
    let (function, offset) = tokens.next()?.split_once('+')?;
    if !offset.starts_with("0x") || !is_symbol(function) {
        return None;
    }
    let mut frame = TraceFrame {
        function: function.to_string(),
        offset: Some(offset.to_string()),
        module: None,
        reliable,
    };
    for token in tokens {
        if token == "(unreliable)" {
            frame.reliable = false;
        } else if let Some(module) = token.strip_prefix('[') {
            // `[nfs]`, or `[nfs 3f2a…]` with a build id (CONFIG_STACKTRACE_BUILD_ID).
            let module = module.trim_end_matches(']');
            if frame.module.is_none() && is_symbol(module) {
                frame.module = Some(module.to_string());
            }
        }
    }
    Some(frame)
}

/// A kernel symbol: `[A-Za-z_][A-Za-z0-9_.$]*` (`.isra.0`, `.cold` are compiler suffixes).
fn is_symbol(text: &str) -> bool {
    let mut bytes = text.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'$')
}

/// `INFO: task COMM:PID blocked[ in I/O wait] for more than N seconds.` (` in I/O wait` since
/// 2026: "hung_task: explicitly report I/O wait state in log output").
#[derive(Debug, PartialEq, Eq)]
struct HungLine<'a> {
    comm: &'a str,
    pid: i32,
    seconds: u64,
    in_io_wait: bool,
}

fn parse_hung_line(text: &str) -> Option<HungLine<'_>> {
    let rest = text.strip_prefix("INFO: task ")?;
    let (who, after) = rest.rsplit_once(" for more than ")?;
    let (who, in_io_wait) = match who.strip_suffix(" blocked") {
        Some(who) => (who, false),
        None => (who.strip_suffix(" blocked in I/O wait")?, true),
    };
    let (comm, pid) = who.rsplit_once(':')?;
    let seconds = after.split_whitespace().next()?.parse().ok()?;
    Some(HungLine {
        comm,
        pid: pid.parse().ok()?,
        seconds,
        in_io_wait,
    })
}

/// 6.14+: `INFO: task X:P is blocked on a mutex likely owned by task Y:Q.`, `… blocked on a
/// semaphore likely last held by task Y:Q`, `INFO: task X:P <writer> blocked on an
/// rw-semaphore likely owned by task Y:Q <reader>`, and the `… but the owner is not found.`
/// forms.
#[derive(Debug, PartialEq, Eq)]
struct BlockerLine<'a> {
    pid: i32,
    lock: BlockerLock,
    owner: Option<(&'a str, i32)>,
}

fn parse_blocker_line(text: &str) -> Option<BlockerLine<'_>> {
    let rest = text.strip_prefix("INFO: task ")?;
    let (who, what) = rest.split_once(" blocked on a")?;
    let who = who.strip_suffix(" is").unwrap_or(who);
    let (who, role) = match who.rsplit_once(" <") {
        Some((who, role)) => (who, Some(role.trim_end_matches('>'))),
        None => (who, None),
    };
    let pid = who.rsplit_once(':')?.1.parse().ok()?;
    let what = what.trim_start_matches('n').trim_start();
    let lock = if what.starts_with("mutex") {
        BlockerLock::Mutex
    } else if what.starts_with("semaphore") {
        BlockerLock::Semaphore
    } else if what.starts_with("rw-semaphore") {
        if role == Some("reader") {
            BlockerLock::RwSemaphoreRead
        } else {
            BlockerLock::RwSemaphoreWrite
        }
    } else {
        return None;
    };
    let owner = what.split_once(" by task ").and_then(|(_, owner)| {
        let owner = owner.split(" <").next()?.trim_end_matches('.');
        let (comm, pid) = owner.rsplit_once(':')?;
        Some((comm, pid.trim().parse().ok()?))
    });
    Some(BlockerLine { pid, lock, owner })
}

/// `task:NAME state:D stack:0 pid:123 [tgid:123] ppid:1 [task_flags:0x…] flags:0x…`, the
/// task line of 5.x and later. Values may be padded (`pid: 1801`).
fn parse_task_line(text: &str) -> Option<TaskStateLine> {
    let rest = text.strip_prefix("task:")?;
    let (comm, after) = rest.split_once(" state:")?;
    let state: String = after
        .chars()
        .take_while(|c| c.is_ascii_alphabetic())
        .collect();
    if state.is_empty() {
        return None;
    }
    Some(TaskStateLine {
        comm: truncate(comm.trim_end()),
        state,
        pid: field(after, "pid:").and_then(|v| v.parse().ok()),
        tgid: field(after, "tgid:").and_then(|v| v.parse().ok()),
        ppid: field(after, "ppid:").and_then(|v| v.parse().ok()),
        flags: field(after, "flags:").map(str::to_string),
    })
}

/// The value of ` name:` in a task line: the word after it, padding skipped. The name must
/// follow a space so that `pid:` does not find `ppid:` or `tgid:`.
fn field<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    let mut search = text;
    loop {
        let at = search.find(name)?;
        let before_ok = at > 0 && search.as_bytes()[at - 1] == b' ';
        let value = search[at + name.len()..].trim_start();
        if before_ok {
            let end = value.find(' ').unwrap_or(value.len());
            let value = &value[..end];
            return (!value.is_empty()).then_some(value);
        }
        search = &search[at + name.len()..];
    }
}

/// The task line before 5.x: `COMM STATE [pc] stack-free pid ppid [extra] 0xflags`, e.g.
/// `jbd2/vda1-8 D 0000000000000000 0 404 2 0x00000000`, `jbd2/sda-8      D22600  3563
/// 2 0x80000000` (state and stack run together), `spl_system_ta D ffff… 0 3209 2 0
/// 0x00000000` (an extra column). The comm is cut to 13 or 15 characters and can differ
/// from the report's, so the line is recognised by its shape and, when known, its pid.
fn parse_old_task_line(text: &str, pid: Option<i32>) -> Option<TaskStateLine> {
    let tokens: Vec<&str> = text.split_whitespace().collect();
    if tokens.len() < 4 || tokens.len() > 16 {
        return None;
    }
    let flags = *tokens.last()?;
    if !flags.starts_with("0x") {
        return None;
    }
    // The state token: one letter, possibly run together with the stack-free number.
    let state_at = (1..tokens.len() - 2).find(|&i| {
        let token = tokens[i];
        let mut chars = token.chars();
        chars.next().is_some_and(|c| "RSDTtXZPIWKN".contains(c))
            && chars.all(|c| c.is_ascii_digit())
    })?;
    let numbers: Vec<i32> = tokens[state_at + 1..tokens.len() - 1]
        .iter()
        .filter_map(|t| t.parse().ok())
        .collect();
    let (task_pid, ppid) = match pid {
        Some(pid) => {
            let at = numbers.iter().position(|&n| n == pid)?;
            (pid, numbers.get(at + 1).copied())
        }
        // Without a known pid the usual layout: … pid ppid 0xflags.
        None => {
            let [.., pid, ppid] = numbers.as_slice() else {
                return None;
            };
            (*pid, Some(*ppid))
        }
    };
    Some(TaskStateLine {
        comm: truncate(&tokens[..state_at].join(" ")),
        state: tokens[state_at][..1].to_string(),
        pid: Some(task_pid),
        tgid: None,
        ppid,
        flags: Some(flags.to_string()),
    })
}

/// What one line of a report is.
#[derive(Debug, PartialEq, Eq)]
enum LineKind {
    CallTrace,
    TaskStart,
    TaskEnd,
    /// `<IRQ>`, `</IRQ>`, `<EOI>`, `<NMI>` …
    Marker,
    Frame(TraceFrame),
    Taint {
        release: Option<String>,
        flags: String,
    },
    Workqueue(String),
    /// Lines a report carries that say nothing nodedoc uses: the `echo 0 >` hint, stack
    /// words, register dumps, `[inline]` frames of a symbolizer, exception stacks.
    Skip,
    /// The end marker of a WARN/BUG trace.
    EndTrace,
    Other,
}

fn line_kind(text: &str) -> LineKind {
    match text {
        "Call Trace:" | "Call trace:" | "Backtrace:" => return LineKind::CallTrace,
        "<TASK>" => return LineKind::TaskStart,
        "</TASK>" => return LineKind::TaskEnd,
        _ => {}
    }
    if text.len() <= 12
        && text.starts_with('<')
        && text.ends_with('>')
        && text[1..text.len() - 1]
            .trim_start_matches('/')
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b == b'#')
    {
        return LineKind::Marker;
    }
    if let Some(frame) = parse_trace_frame(text) {
        return LineKind::Frame(frame);
    }
    if let Some(rest) = text.strip_prefix("Not tainted ") {
        return LineKind::Taint {
            release: release_in(rest),
            flags: String::new(),
        };
    }
    if let Some(rest) = text.strip_prefix("Tainted: ") {
        let release = release_in(rest);
        let flags_text = match &release {
            Some(release) => rest.split(release.as_str()).next().unwrap_or(""),
            None => rest,
        };
        // The flags are capital letters (`P`, `OE`); RHEL adds dashes, syzbot a word.
        let flags = flags_text
            .split_whitespace()
            .filter(|word| word.bytes().all(|b| b.is_ascii_uppercase()))
            .collect();
        return LineKind::Taint { release, flags };
    }
    if let Some(work) = text.strip_prefix("Workqueue: ") {
        return LineKind::Workqueue(truncate(work));
    }
    if text.starts_with("---[ end trace") {
        return LineKind::EndTrace;
    }
    // The column header of an old `Show Blocked State` dump.
    let dump_header = text.starts_with("task ") && text.contains(" PC ") && text.contains(" pid ");
    if dump_header
        || text.contains("hung_task_timeout_secs")
        || text.ends_with("[inline]")
        || text.starts_with("Exception stack(")
        || text.starts_with("--- interrupt:")
        || text.starts_with("Hardware name:")
        || is_register_line(text)
        || is_hex_words(text)
    {
        return LineKind::Skip;
    }
    LineKind::Other
}

/// The kernel release in the rest of a taint line: the first word that starts with
/// `digits.digits` (`4.18.0-240.el8.x86_64`, `4.2.0tmem-tmem`).
fn release_in(text: &str) -> Option<String> {
    text.split_whitespace()
        .find(|word| {
            let mut parts = word.splitn(2, '.');
            let major = parts.next().unwrap_or("");
            let minor = parts.next().unwrap_or("");
            !major.is_empty()
                && major.bytes().all(|b| b.is_ascii_digit())
                && minor.bytes().next().is_some_and(|b| b.is_ascii_digit())
        })
        .map(truncate)
}

/// `RIP: 0010:…`, `RSP: 0018:…`, `RAX: … RBX: …`, `R13: …`, `FS: …`, `CR2: …`, `Code: …`,
/// `PKRU: …`, and the `9fa0: 00000000 …` rows of an ARM exception stack.
fn is_register_line(text: &str) -> bool {
    let Some((name, _)) = text.split_once(':') else {
        return false;
    };
    if name == "Code" {
        return true;
    }
    if matches!(name, "INFO" | "BUG" | "WARNING" | "NMI") {
        return false;
    }
    let registers = (2..=8).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
        && name.bytes().next().is_some_and(|b| b.is_ascii_uppercase());
    let hex_row = name.len() >= 4 && name.bytes().all(|b| b.is_ascii_hexdigit());
    registers || hex_row
}

/// The stack words old kernels print under the task line:
/// ` ffff88003f9f7c68 0000000000000046 ffff88003f9f7bb0 ffffffff81041e98`.
fn is_hex_words(text: &str) -> bool {
    let mut words = 0;
    for word in text.split_whitespace() {
        if !(word.len() == 8 || word.len() == 16) || !word.bytes().all(|b| b.is_ascii_hexdigit()) {
            return false;
        }
        words += 1;
    }
    words > 0
}

fn truncate(text: &str) -> String {
    let mut end = text.len().min(MAX_COMM_BYTES);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Between the report's first line and `Call Trace:`.
    Header,
    /// In the task's trace.
    Frames,
    /// After a blocker line, before the owner's trace.
    OwnerHeader,
    /// In the lock owner's trace.
    OwnerFrames,
}

struct Open {
    report: BlockedTaskReport,
    caller: Option<PrintkCaller>,
    phase: Phase,
    in_task_block: bool,
    stray_lines: u32,
}

/// A line that a newline inside a comm cut in two: `INFO: task ab` + `c:12 blocked …`.
struct Fragment {
    text: String,
    caller: Option<PrintkCaller>,
    position: LogPosition,
}

#[derive(Default)]
struct Parser {
    done: Vec<BlockedTaskReport>,
    dropped: u64,
    open: Option<Open>,
    fragment: Option<Fragment>,
    /// Inside a `Show Blocked State` dump, where task lines start reports.
    show_blocked: bool,
}

impl Parser {
    /// No report in progress: only a line that starts one matters.
    fn idle(&self) -> bool {
        self.open.is_none() && self.fragment.is_none() && !self.show_blocked
    }

    fn line(&mut self, line: &LogLine<'_>, sequence: Option<u64>) {
        if !line.is_kernel() {
            return;
        }
        let text = line.message.trim();
        if text.is_empty() {
            return;
        }
        let position = LogPosition {
            sequence,
            monotonic_us: line.monotonic_us,
            wall_clock: line.wall_clock.map(str::to_string),
            wall_clock_ms: None,
            facility: line.facility.filter(|&f| f != 0),
        };
        if let Some(fragment) = self.fragment.take() {
            if fragment.caller == line.caller {
                let joined = format!("{}\n{}", fragment.text, text);
                if parse_hung_line(&joined).is_some() || parse_task_line(&joined).is_some() {
                    self.handle(&joined, line.caller, fragment.position);
                    return;
                }
            }
            self.handle(&fragment.text, fragment.caller, fragment.position);
        }
        let cut_in_two = (text.starts_with("INFO: task ")
            && !text.contains(" for more than ")
            && !text.contains(" blocked on a"))
            || (text.starts_with("task:") && !text.contains(" state:"));
        if cut_in_two {
            self.fragment = Some(Fragment {
                text: text.to_string(),
                caller: line.caller,
                position,
            });
            return;
        }
        self.handle(text, line.caller, position);
    }

    fn handle(&mut self, text: &str, caller: Option<PrintkCaller>, position: LogPosition) {
        if let Some(hung) = parse_hung_line(text) {
            self.close();
            self.show_blocked = false;
            self.open = Some(Open {
                report: BlockedTaskReport {
                    origin: BlockedTaskOrigin::HungTaskDetector,
                    comm: truncate(hung.comm),
                    pid: hung.pid,
                    blocked_secs: Some(hung.seconds),
                    in_io_wait: hung.in_io_wait,
                    logged_at: position,
                    ..BlockedTaskReport::default()
                },
                caller,
                phase: Phase::Header,
                in_task_block: false,
                stray_lines: 0,
            });
            return;
        }
        if let Some(blocker) = parse_blocker_line(text) {
            self.attach_blocker(blocker, caller);
            return;
        }
        if text.ends_with("Show Blocked State") {
            self.close();
            self.show_blocked = true;
            return;
        }
        // Another CPU's line in the middle of a report: not ours.
        if let Some(open) = &self.open {
            if open.caller.is_some() && caller.is_some() && open.caller != caller {
                return;
            }
        }
        if let Some(task) = parse_task_line(text) {
            self.task_line(task, caller, position);
            return;
        }
        if let Some(open) = &mut self.open {
            if open.phase == Phase::Header && open.report.task.is_none() {
                if let Some(task) = parse_old_task_line(text, Some(open.report.pid)) {
                    open.report.task = Some(task);
                    return;
                }
            }
        }
        if self.show_blocked && self.open.as_ref().is_none_or(|o| o.phase == Phase::Frames) {
            if let Some(task) = parse_old_task_line(text, None) {
                self.task_line(task, caller, position);
                return;
            }
        }
        let kind = line_kind(text);
        let Some(open) = &mut self.open else {
            if kind == LineKind::Other {
                self.show_blocked = false;
            }
            return;
        };
        match kind {
            LineKind::CallTrace => match open.phase {
                Phase::Header => open.phase = Phase::Frames,
                Phase::OwnerHeader => open.phase = Phase::OwnerFrames,
                // A second trace with no task line of its own is someone else's.
                Phase::Frames | Phase::OwnerFrames => self.close(),
            },
            LineKind::TaskStart => open.in_task_block = true,
            LineKind::TaskEnd => {
                open.in_task_block = false;
                if matches!(open.phase, Phase::Frames | Phase::OwnerFrames) {
                    self.close();
                }
            }
            LineKind::Marker | LineKind::Skip => {}
            LineKind::Frame(frame) => {
                open.stray_lines = 0;
                match open.phase {
                    Phase::Header => {
                        open.phase = Phase::Frames;
                        push_frame(&mut open.report, frame);
                    }
                    Phase::Frames => push_frame(&mut open.report, frame),
                    Phase::OwnerHeader | Phase::OwnerFrames => {
                        open.phase = Phase::OwnerFrames;
                        if let Some(blocker) = &mut open.report.blocker {
                            if blocker.owner_frames.len() < MAX_FRAMES {
                                blocker.owner_frames.push(frame);
                            }
                        }
                    }
                }
            }
            LineKind::Taint { release, flags } => {
                if open.phase == Phase::Header && open.report.kernel_release.is_none() {
                    open.report.kernel_release = release;
                    open.report.taint = Some(flags);
                }
            }
            LineKind::Workqueue(work) => {
                if open.phase == Phase::Header {
                    open.report.workqueue = Some(work);
                }
            }
            LineKind::EndTrace => self.close(),
            LineKind::Other => {
                let same_caller = open.caller.is_some() && open.caller == caller;
                let trace_over =
                    matches!(open.phase, Phase::Frames | Phase::OwnerFrames) && !open.in_task_block;
                open.stray_lines += 1;
                if same_caller || trace_over || open.stray_lines > MAX_STRAY_LINES {
                    self.close();
                    self.show_blocked = false;
                }
            }
        }
    }

    /// A task line: the current report's own, the lock owner's, or the start of a task of a
    /// Show Blocked State dump.
    fn task_line(
        &mut self,
        task: TaskStateLine,
        caller: Option<PrintkCaller>,
        position: LogPosition,
    ) {
        if let Some(open) = &mut self.open {
            match open.phase {
                Phase::Header
                    if open.report.task.is_none()
                        && task.pid.is_none_or(|pid| pid == open.report.pid) =>
                {
                    open.report.task = Some(task);
                    return;
                }
                Phase::OwnerHeader => {
                    let owner = open.report.blocker.as_ref().and_then(|b| b.owner_pid);
                    if task.pid.is_some() && task.pid == owner {
                        return;
                    }
                }
                _ => {}
            }
        }
        self.close();
        // Only tasks in D are blocked; a task line in another state is another dump's.
        let Some(pid) = task.pid.filter(|_| task.state == "D") else {
            return;
        };
        self.open = Some(Open {
            report: BlockedTaskReport {
                origin: BlockedTaskOrigin::ShowBlockedState,
                comm: task.comm.clone(),
                pid,
                logged_at: position,
                task: Some(task),
                ..BlockedTaskReport::default()
            },
            caller,
            phase: Phase::Header,
            in_task_block: false,
            stray_lines: 0,
        });
    }

    /// Attaches a blocker line to the report of its task: the one in progress or the last
    /// one finished (the kernel prints it right after the task's trace).
    fn attach_blocker(&mut self, line: BlockerLine<'_>, caller: Option<PrintkCaller>) {
        let reopen = match &self.open {
            Some(open) => open.report.pid != line.pid,
            None => true,
        };
        if reopen {
            self.close();
            let last_matches = self.done.last().is_some_and(|r| r.pid == line.pid);
            if !last_matches {
                return;
            }
            let report = self.done.pop().expect("checked above");
            self.open = Some(Open {
                report,
                caller,
                phase: Phase::OwnerHeader,
                in_task_block: false,
                stray_lines: 0,
            });
        }
        let open = self.open.as_mut().expect("set above");
        open.phase = Phase::OwnerHeader;
        open.in_task_block = false;
        open.report.blocker = Some(LockBlocker {
            lock: line.lock,
            owner_comm: line.owner.map(|(comm, _)| truncate(comm)),
            owner_pid: line.owner.map(|(_, pid)| pid),
            owner_frames: Vec::new(),
        });
        if line.owner.is_none() {
            self.close();
        }
    }

    fn close(&mut self) {
        if let Some(open) = self.open.take() {
            if self.done.len() < MAX_REPORTS {
                self.done.push(open.report);
            } else {
                self.dropped += 1;
            }
        }
    }

    fn finish(mut self) -> BlockedTaskReports {
        if let Some(fragment) = self.fragment.take() {
            self.handle(&fragment.text, fragment.caller, fragment.position);
        }
        self.close();
        BlockedTaskReports {
            reports: self.done,
            dropped: self.dropped,
        }
    }
}

fn push_frame(report: &mut BlockedTaskReport, frame: TraceFrame) {
    if report.frames.len() < MAX_FRAMES {
        report.frames.push(frame);
    } else {
        report.frames_dropped = report.frames_dropped.saturating_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(
        function: &str,
        offset: Option<&str>,
        module: Option<&str>,
        reliable: bool,
    ) -> TraceFrame {
        TraceFrame {
            function: function.into(),
            offset: offset.map(Into::into),
            module: module.map(Into::into),
            reliable,
        }
    }

    #[test]
    fn every_frame_format() {
        let cases: &[(&str, TraceFrame)] = &[
            (
                " [<ffffffff816442f9>] schedule+0x29/0x70",
                frame("schedule", Some("0x29/0x70"), None, true),
            ),
            (
                " [<ffffffffa0689705>] nfs4_lock_state+0x15/0x20 [nfsd]",
                frame("nfs4_lock_state", Some("0x15/0x20"), Some("nfsd"), true),
            ),
            (
                "[<ffffffff8135077c>] ? __mutex_lock_common.isra.5+0xff/0x164",
                frame(
                    "__mutex_lock_common.isra.5",
                    Some("0xff/0x164"),
                    None,
                    false,
                ),
            ),
            (
                "  __schedule+0x2ee/0x900",
                frame("__schedule", Some("0x2ee/0x900"), None, true),
            ),
            (
                " ? rpc_init_task+0x150/0x150 [sunrpc]",
                frame("rpc_init_task", Some("0x150/0x150"), Some("sunrpc"), false),
            ),
            (
                "[<0>] rpc_wait_bit_killable+0x1e/0x90 [sunrpc]",
                frame(
                    "rpc_wait_bit_killable",
                    Some("0x1e/0x90"),
                    Some("sunrpc"),
                    true,
                ),
            ),
            (
                "[<80c1eb20>] (schedule) from [<80c1ec14>] (io_schedule+0x48/0x6c)",
                frame("schedule", None, None, true),
            ),
            (
                "[<7f4ba618>] (fuse_writepages [fuse]) from [<8022e284>] (do_writepages+0x30/0x8c)",
                frame("fuse_writepages", None, Some("fuse"), true),
            ),
            (
                "[c00000037d482e30] [c0080000061c4f84] rpc_wait_bit_killable+0x3c/0x110 [sunrpc]",
                frame(
                    "rpc_wait_bit_killable",
                    Some("0x3c/0x110"),
                    Some("sunrpc"),
                    true,
                ),
            ),
            (
                "[c00000037d482c50] [c0000000008427d0] dump_stack_lvl+0x74/0xa8 (unreliable)",
                frame("dump_stack_lvl", Some("0x74/0xa8"), None, false),
            ),
            (
                "__switch_to+0xf8/0x168 (T)",
                frame("__switch_to", Some("0xf8/0x168"), None, true),
            ),
            (
                "dst_init+0xda/0x580 net/core/dst.c:52",
                frame("dst_init", Some("0xda/0x580"), None, true),
            ),
            (
                "snd_ctl_ioctl+0x7a4/0xaec [snd 852e63996474051c57bcd1a86ebfd81083073853]",
                frame("snd_ctl_ioctl", Some("0x7a4/0xaec"), Some("snd"), true),
            ),
        ];
        for (line, expected) in cases {
            assert_eq!(parse_trace_frame(line).as_ref(), Some(expected), "{line:?}");
        }
        for line in [
            "[<ffffffffa05ed000>] ? 0xffffffffa05ecfff",
            "context_switch kernel/sched/core.c:5178 [inline]",
            "Call Trace:",
            "? checkpacket_write_wait: Connection to 216.239.38.127 port 9600: Broken pipe",
            "RIP: 0033:0x7f7a66acfad4",
            "[<ffffffffffffffff>] 0xffffffffffffffff",
            "[drm] func+0x1/0x2",
            "+0x1/0x2",
            "9func+0x1/0x2",
            "",
        ] {
            assert_eq!(parse_trace_frame(line), None, "{line:?}");
        }
    }

    #[test]
    fn hung_and_blocker_lines() {
        assert_eq!(
            parse_hung_line("INFO: task FwgThread OpFor:15341 blocked for more than 120 seconds."),
            Some(HungLine {
                comm: "FwgThread OpFor",
                pid: 15341,
                seconds: 120,
                in_io_wait: false
            })
        );
        assert_eq!(
            parse_hung_line("INFO: task udevd:5612 blocked in I/O wait for more than 143 seconds."),
            Some(HungLine {
                comm: "udevd",
                pid: 5612,
                seconds: 143,
                in_io_wait: true
            })
        );
        assert_eq!(
            parse_hung_line("INFO: task a:b:7 blocked for more than 1 seconds.").map(|h| h.comm),
            Some("a:b")
        );
        for line in [
            "INFO: task $NAME:$PID blocked for more than 120 seconds.",
            "INFO: task x:1 blocked for more than many seconds.",
            "INFO: rcu_sched self-detected stall on CPU",
            "INFO: task x:1 is blocked on a mutex likely owned by task y:2.",
        ] {
            assert_eq!(parse_hung_line(line), None, "{line:?}");
        }
        assert_eq!(
            parse_blocker_line(
                "INFO: task kworker/0:1:11 is blocked on a mutex likely owned by task dhcpcd:615."
            ),
            Some(BlockerLine {
                pid: 11,
                lock: BlockerLock::Mutex,
                owner: Some(("dhcpcd", 615))
            })
        );
        assert_eq!(
            parse_blocker_line("INFO: task modprobe:31634 <writer> blocked on an rw-semaphore likely owned by task kworker/u16:0:12 <reader>"),
            Some(BlockerLine { pid: 31634, lock: BlockerLock::RwSemaphoreWrite, owner: Some(("kworker/u16:0", 12)) })
        );
        assert_eq!(
            parse_blocker_line("INFO: task NvmlTaskRunner:11290 <reader> blocked on an rw-semaphore likely owned by task VLLM::EngineCor:46249 <writer>"),
            Some(BlockerLine { pid: 11290, lock: BlockerLock::RwSemaphoreRead, owner: Some(("VLLM::EngineCor", 46249)) })
        );
        assert_eq!(
            parse_blocker_line(
                "INFO: task a:1 blocked on a semaphore likely last held by task b:2"
            ),
            Some(BlockerLine {
                pid: 1,
                lock: BlockerLock::Semaphore,
                owner: Some(("b", 2))
            })
        );
        assert_eq!(
            parse_blocker_line("INFO: task modprobe:2342 is blocked on an rw-semaphore, but the owner is not found."),
            Some(BlockerLine { pid: 2342, lock: BlockerLock::RwSemaphoreWrite, owner: None })
        );
    }

    #[test]
    fn task_lines_old_and_new() {
        let new = parse_task_line("task:kworker/4:2     state:D stack:0     pid:1520  tgid:1520  ppid:2      task_flags:0x4288060 flags:0x00080000").unwrap();
        assert_eq!(
            (
                new.comm.as_str(),
                new.state.as_str(),
                new.pid,
                new.tgid,
                new.ppid,
                new.flags.as_deref()
            ),
            (
                "kworker/4:2",
                "D",
                Some(1520),
                Some(1520),
                Some(2),
                Some("0x00080000")
            )
        );
        let padded = parse_task_line(
            "task:ThreadPoolForeg state:D stack:    0 pid:1181536 ppid:  5453 flags:0x00000000",
        )
        .unwrap();
        assert_eq!((padded.pid, padded.ppid), (Some(1181536), Some(5453)));
        let running = parse_task_line("task:syz.0.2297      state:R  running task     stack:24168 pid:14797 tgid:14796 ppid:5615").unwrap();
        assert_eq!((running.state.as_str(), running.pid), ("R", Some(14797)));

        let old = parse_old_task_line(
            "jbd2/vda1-8 D 0000000000000000 0 404 2 0x00000000",
            Some(404),
        )
        .unwrap();
        assert_eq!(
            (old.comm.as_str(), old.state.as_str(), old.pid, old.ppid),
            ("jbd2/vda1-8", "D", Some(404), Some(2))
        );
        let glued =
            parse_old_task_line("jbd2/sda-8      D22600  3563      2 0x80000000", Some(3563))
                .unwrap();
        assert_eq!((glued.state.as_str(), glued.ppid), ("D", Some(2)));
        let lve = parse_old_task_line(
            "spl_system_ta D ffff88087bb0ae60     0  3209      2    0 0x00000000",
            Some(3209),
        )
        .unwrap();
        assert_eq!((lve.comm.as_str(), lve.ppid), ("spl_system_ta", Some(2)));
        let spaced = parse_old_task_line(
            "FwgThread OpFor D    0 15341  15184 0x000040a0",
            Some(15341),
        )
        .unwrap();
        assert_eq!(
            (spaced.comm.as_str(), spaced.ppid),
            ("FwgThread OpFor", Some(15184))
        );
        let unknown_pid =
            parse_old_task_line("jbd2/vdt-8      D   0   390      2 0x00000000", None).unwrap();
        assert_eq!((unknown_pid.pid, unknown_pid.ppid), (Some(390), Some(2)));
        assert_eq!(
            parse_old_task_line("jbd2/vda1-8 D 0 404 2 0x00000000", Some(9)),
            None
        );
        assert_eq!(
            parse_old_task_line(
                " ffff88003f9f7c68 0000000000000046 ffff88003f9f7bb0 ffffffff81041e98",
                None
            ),
            None
        );
        assert_eq!(parse_old_task_line("Call Trace:", None), None);
    }

    #[test]
    fn taint_lines() {
        assert_eq!(
            line_kind("Tainted: G           OE    --------- -  - 4.18.0-240.el8.x86_64 #1"),
            LineKind::Taint {
                release: Some("4.18.0-240.el8.x86_64".into()),
                flags: "GOE".into()
            }
        );
        assert_eq!(
            line_kind("Not tainted 4.2.0tmem-tmem #1"),
            LineKind::Taint {
                release: Some("4.2.0tmem-tmem".into()),
                flags: String::new()
            }
        );
        assert_eq!(
            line_kind("Tainted: G             L      syzkaller #0"),
            LineKind::Taint {
                release: None,
                flags: "GL".into()
            }
        );
    }

    fn only(text: &str) -> BlockedTaskReport {
        let parsed = blocked_task_reports_in_text(text);
        assert_eq!(parsed.reports.len(), 1, "{:#?}", parsed.reports);
        parsed.reports.into_iter().next().unwrap()
    }

    const NEW_FORMAT: &str = "[  5.0] INFO: task kworker/u8:2:87 blocked for more than 122 seconds.
[  5.0]       Not tainted 6.1.0-18-amd64 #1 Debian 6.1.76-1
[  5.0] \"echo 0 > /proc/sys/kernel/hung_task_timeout_secs\" disables this message.
[  5.0] task:kworker/u8:2    state:D stack:0     pid:87    ppid:2      flags:0x00004000
[  5.0] Workqueue: writeback wb_workfn (flush-8:0)
[  5.0] Call Trace:
[  5.0]  <TASK>
[  5.0]  __schedule+0x34d/0x9e0
[  5.0]  ? blk_mq_flush_plug_list+0x1b/0x30
[  5.0]  io_schedule+0x46/0x70
[  5.0]  </TASK>
[  6.0] EXT4-fs (sda1): something else";

    #[test]
    fn a_new_format_report_end_to_end() {
        let report = only(NEW_FORMAT);
        assert_eq!(report.origin, BlockedTaskOrigin::HungTaskDetector);
        assert_eq!(
            (report.comm.as_str(), report.pid, report.blocked_secs),
            ("kworker/u8:2", 87, Some(122))
        );
        assert_eq!(report.kernel_release.as_deref(), Some("6.1.0-18-amd64"));
        assert_eq!(report.taint.as_deref(), Some(""));
        assert_eq!(
            report.workqueue.as_deref(),
            Some("writeback wb_workfn (flush-8:0)")
        );
        assert_eq!(report.task.as_ref().and_then(|t| t.ppid), Some(2));
        assert_eq!(report.logged_at.monotonic_us, Some(5_000_000));
        let frames: Vec<String> = report.frames.iter().map(ToString::to_string).collect();
        assert_eq!(
            frames,
            [
                "__schedule+0x34d/0x9e0",
                "? blk_mq_flush_plug_list+0x1b/0x30",
                "io_schedule+0x46/0x70"
            ]
        );
    }

    #[test]
    fn the_same_report_from_records_with_caller_ids_and_interleaving() {
        let mut records = Vec::new();
        let mut push = |caller: PrintkCaller, message: &str| {
            records.push(KmsgRecord {
                level: 3,
                facility: 0,
                sequence: records.len() as u64 + 1,
                monotonic_us: 7_000_000,
                continuation: false,
                message: message.to_string(),
                dictionary: vec![],
                caller: Some(caller),
                wall_clock_ms: None,
            })
        };
        let khungtaskd = PrintkCaller::Thread(29);
        let other_cpu = PrintkCaller::Cpu(1);
        push(
            khungtaskd,
            "INFO: task dd:4242 blocked for more than 120 seconds.",
        );
        push(
            khungtaskd,
            "task:dd              state:D stack:0     pid:4242  ppid:1      flags:0x00000000",
        );
        push(other_cpu, "eth0: link down");
        push(khungtaskd, "Call Trace:");
        push(khungtaskd, " <TASK>");
        push(other_cpu, " tcp_v4_rcv+0x1/0x2");
        push(khungtaskd, " __schedule+0x1/0x2");
        push(other_cpu, "Call Trace:");
        push(
            khungtaskd,
            " io_schedule+0x1/0x2\n folio_wait_bit_common+0x1/0x2",
        );
        push(khungtaskd, " </TASK>");
        let parsed = blocked_task_reports(&records);
        assert_eq!(parsed.reports.len(), 1);
        let report = &parsed.reports[0];
        let functions: Vec<&str> = report.frames.iter().map(|f| f.function.as_str()).collect();
        assert_eq!(
            functions,
            ["__schedule", "io_schedule", "folio_wait_bit_common"]
        );
        assert_eq!(report.logged_at.sequence, Some(1));
    }

    #[test]
    fn without_caller_ids_a_trace_ends_at_the_first_foreign_line() {
        let text = "INFO: task a:1 blocked for more than 120 seconds.
Call Trace:
 [<ffffffff816442f9>] schedule+0x29/0x70
 [<ffffffff816442f9>] io_schedule+0x29/0x70
usb 1-1: new high-speed USB device number 3
 [<ffffffff816442f9>] tcp_recvmsg+0x29/0x70";
        let report = only(text);
        assert_eq!(report.frames.len(), 2);
    }

    #[test]
    fn a_blocker_and_its_owner_trace() {
        let text = "INFO: task kworker/0:1:11 blocked for more than 122 seconds.
      Not tainted 6.15.0 #1
task:kworker/0:1     state:D stack:0     pid:11    tgid:11    ppid:2      task_flags:0x4208060 flags:0x00000010
Call Trace:
 <TASK>
 __schedule+0x3f8/0xda8
 schedule_preempt_disabled+0x2c/0x58
 __mutex_lock.constprop.0+0x4d0/0xab8
 rtnl_lock+0x20/0x38
 </TASK>
INFO: task kworker/0:1:11 is blocked on a mutex likely owned by task dhcpcd:615.
task:dhcpcd          state:D stack:0     pid:615   tgid:615   ppid:614    task_flags:0x400140 flags:0x00000018
Call Trace:
 <TASK>
 __schedule+0x3f8/0xda8
 rwsem_down_write_slowpath+0x1e4/0x750
 down_write+0x98/0xb0
 led_trigger_register+0x134/0x1c0
 </TASK>
INFO: task dhcpcd:615 blocked for more than 122 seconds.";
        let parsed = blocked_task_reports_in_text(text);
        assert_eq!(parsed.reports.len(), 2, "{:#?}", parsed.reports);
        let kworker = &parsed.reports[0];
        assert_eq!(kworker.frames.len(), 4);
        let blocker = kworker.blocker.as_ref().unwrap();
        assert_eq!(blocker.lock, BlockerLock::Mutex);
        assert_eq!(
            (blocker.owner_comm.as_deref(), blocker.owner_pid),
            (Some("dhcpcd"), Some(615))
        );
        let owner: Vec<&str> = blocker
            .owner_frames
            .iter()
            .map(|f| f.function.as_str())
            .collect();
        assert_eq!(
            owner,
            [
                "__schedule",
                "rwsem_down_write_slowpath",
                "down_write",
                "led_trigger_register"
            ]
        );
        assert_eq!(parsed.reports[1].pid, 615);
    }

    #[test]
    fn show_blocked_state_old_format() {
        let text = "SysRq : Show Blocked State
  task                        PC stack   pid father
jbd2/sda1-8     D ffff88003f9f7c68     0   245      2 0x00000000
 ffff88003f9f7c68 0000000000000046 ffff88003f9f7bb0 ffffffff81041e98
Call Trace:
 [<ffffffff8152a173>] io_schedule+0x73/0xc0
Sched Debug Version: v0.11, 3.10.0 #1";
        let report = only(text);
        assert_eq!(report.origin, BlockedTaskOrigin::ShowBlockedState);
        assert_eq!(
            (report.comm.as_str(), report.pid, report.blocked_secs),
            ("jbd2/sda1-8", 245, None)
        );
        assert_eq!(report.frames.len(), 1);
    }

    #[test]
    fn bounded_and_never_panicking() {
        let mut text =
            String::from("INFO: task deep:1 blocked for more than 120 seconds.\nCall Trace:\n");
        for i in 0..500 {
            text.push_str(&format!(" f{i}+0x1/0x2\n"));
        }
        let report = only(&text);
        assert_eq!(report.frames.len(), MAX_FRAMES);
        assert_eq!(report.frames_dropped as usize, 500 - MAX_FRAMES);

        let mut many = String::new();
        for pid in 0..(MAX_REPORTS + 10) {
            many.push_str(&format!(
                "INFO: task t:{pid} blocked for more than 120 seconds.\n"
            ));
        }
        let parsed = blocked_task_reports_in_text(&many);
        assert_eq!((parsed.reports.len(), parsed.dropped), (MAX_REPORTS, 10));

        let long = format!(
            "INFO: task {}:1 blocked for more than 120 seconds.",
            "x".repeat(100_000)
        );
        let _ = blocked_task_reports_in_text(&long);
        for garbage in [
            "\0\0\0",
            "INFO: task ",
            "task:",
            "task: state:D pid:",
            "Call Trace:\n</TASK>",
            "<TASK>",
            "INFO: task é:1 blocked on a",
        ] {
            let _ = blocked_task_reports_in_text(garbage);
        }
    }
}

//! Hostile text, end to end (issue 8, item 3): names chosen by whoever runs on the node reach
//! the operator's terminal only escaped, and the operator's shell only quoted.
//!
//! - A real process whose name and command line hold escape sequences, a bell, a carriage
//!   return and a newline that would forge a `CRITICAL` line, at its fd limit and neglecting
//!   a zombie: `check` names it exactly in JSON, `fds PID` shows it escaped.
//! - `/dev/kmsg` records for devices named `…q'$(touch${IFS}/tmp/…)'z` and with an escape
//!   sequence: the suggested `dmesg | grep` passes the name as one literal word and finds
//!   the record; the escaped one gets no command, and says why.
//! - A private Open vSwitch (its own ovsdb-server and ovs-vswitchd, in a network namespace of
//!   its own) with interfaces named `z$(touch${IFS}pwned)` and with an escape sequence:
//!   `ovs ports` escapes, `fix ovs-orphan-port` quotes, and the suggested commands, pasted
//!   into `sh`, remove exactly the port they name and run nothing else.
//! - Error messages and `probe cni` output with planted names.
//!
//! JSON output stays exact: each test reads the names back from it byte for byte.

mod common;

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use common::{check_json, finding, nodedoc, NODEDOC};
use nodedoc_model::text::{is_unsafe_char, shell_word, terminal};
use nodedoc_model::{Evidence, Finding, Subject};

/// Fails when `text` holds anything a terminal would act on (a newline ends a line and is
/// allowed; every other control character, C1 and bidi character is not).
fn assert_terminal_safe(text: &str, what: &str) {
    if let Some(c) = text.chars().find(|&c| c != '\n' && is_unsafe_char(c)) {
        panic!("{what}: raw {c:?} reaches the terminal:\n{text}");
    }
}

/// Fails when a line of `text` starts with `word`, as a line forged by a newline in a name
/// would.
fn assert_no_line_starts_with(text: &str, word: &str, what: &str) {
    if let Some(line) = text.lines().find(|l| l.trim_start().starts_with(word)) {
        panic!("{what}: forged line {line:?} in:\n{text}");
    }
}

fn stdout(output: &std::process::Output) -> String {
    String::from_utf8(output.stdout.clone()).expect("utf-8 output")
}

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8(output.stderr.clone()).expect("utf-8 output")
}

/// A process name: OSC "set window title", a bell, a C1 CSI, and a newline starting a forged
/// `CRITICAL` line. 15 bytes, the most a comm holds.
const COMM: &str = "\u{1b}]0\u{7}\u{9b}\nCRITICAL";

/// Its command line's first word: clear the screen, and a forged line after CR LF.
const ARGV0: &str = "\u{1b}[2J\u{1b}]0;pwned\u{7}\r\nCRITICAL forged line";

/// The name its zombie child takes (15 bytes).
const ZOMBIE_COMM: &str = "\u{1b}[2J\nCRITICAL z";

/// Its soft and hard RLIMIT_NOFILE: it holds every descriptor it may.
const FD_LIMIT: i32 = 40;

/// A `sleep` run through a symlink named [`COMM`] (the kernel names a process after the file
/// it executes), with [`ARGV0`] as its first argument, 95 % of its descriptors open, and a
/// child that exited and that it never reaps. Killed, and its zombie reaped, on drop.
struct HostileProcess {
    child: Child,
    zombie: i32,
    _dir: tempfile::TempDir,
}

impl HostileProcess {
    fn start() -> HostileProcess {
        // The zombie is re-parented to this test process when the sleep dies: reap it here.
        // SAFETY: PR_SET_CHILD_SUBREAPER on ourselves.
        unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join(COMM);
        let sleep = std::fs::canonicalize("/bin/sleep").unwrap();
        std::os::unix::fs::symlink(&sleep, &link).unwrap();
        let mut zombie_name = [0u8; 16];
        zombie_name[..ZOMBIE_COMM.len()].copy_from_slice(ZOMBIE_COMM.as_bytes());
        let mut command = Command::new(&link);
        command
            .arg0(ARGV0)
            .arg("600")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // SAFETY: only async-signal-safe calls between fork and exec (setrlimit, open, dup2,
        // fork, prctl, _exit).
        unsafe {
            command.pre_exec(move || {
                let limit = libc::rlimit {
                    rlim_cur: FD_LIMIT as libc::rlim_t,
                    rlim_max: FD_LIMIT as libc::rlim_t,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // Every descriptor below the limit but the last two, which the dynamic loader
                // needs to open the libraries, over the close-on-exec ones the spawner holds
                // here too (they would leave holes at exec).
                let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY);
                for fd in 3..FD_LIMIT - 2 {
                    if fd != null {
                        libc::dup2(null, fd);
                    }
                }
                match libc::fork() {
                    -1 => return Err(std::io::Error::last_os_error()),
                    0 => {
                        libc::prctl(
                            libc::PR_SET_NAME,
                            zombie_name.as_ptr() as libc::c_ulong,
                            0,
                            0,
                            0,
                        );
                        libc::_exit(0);
                    }
                    _ => {}
                }
                Ok(())
            });
        }
        let child = command.spawn().expect("start the hostile sleep");
        let pid = child.id();
        // Its zombie: the one child it has, once it has exited.
        let children = format!("/proc/{pid}/task/{pid}/children");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let zombie = loop {
            let zombie = std::fs::read_to_string(&children)
                .ok()
                .and_then(|text| text.split_whitespace().next()?.parse::<i32>().ok())
                .filter(|z| {
                    std::fs::read_to_string(format!("/proc/{z}/stat")).is_ok_and(|stat| {
                        stat.rsplit_once(") ")
                            .is_some_and(|(_, r)| r.starts_with('Z'))
                    })
                });
            // The exec has happened once the name is the symlink's.
            let named = std::fs::read(format!("/proc/{pid}/comm"))
                .is_ok_and(|comm| comm == format!("{COMM}\n").as_bytes());
            if let (Some(zombie), true) = (zombie, named) {
                break zombie;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no zombie under {pid}: children {:?}, comm {:?}, stat {:?}",
                std::fs::read_to_string(&children),
                std::fs::read(format!("/proc/{pid}/comm")).map(String::from_utf8),
                std::fs::read_to_string(format!("/proc/{pid}/stat")),
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        };
        HostileProcess {
            child,
            zombie,
            _dir: dir,
        }
    }

    fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Its open descriptors, as /proc/PID/fd lists them.
    fn open_fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .unwrap()
            .count()
    }
}

impl Drop for HostileProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Re-parented to us (a subreaper) when the sleep died.
        // SAFETY: reaping a process that is, by now, our child.
        unsafe { libc::waitpid(self.zombie, std::ptr::null_mut(), 0) };
    }
}

#[test]
fn a_hostile_process_is_named_exactly_in_json_and_escaped_by_fds() {
    let hostile = HostileProcess::start();
    let pid = hostile.pid();

    // check --format json: both findings, every name exact.
    let (report, _) = check_json(&["--interval", "300ms"]);
    let key = format!("pid/{pid}");
    let exhausted = finding(&report, "fd-exhaustion", &key);
    assert_eq!(
        exhausted.subject,
        Subject::Process {
            pid,
            comm: COMM.to_string()
        }
    );
    let zombies = finding(&report, "zombie-processes", &key);
    assert_eq!(zombies.subject, exhausted.subject);
    let fact = |f: &Finding, needle: &str| -> Evidence {
        f.evidence
            .iter()
            .find(|e| e.fact.contains(needle))
            .unwrap_or_else(|| panic!("no evidence with {needle:?}: {:#?}", f.evidence))
            .clone()
    };
    let zombie = fact(zombies, &format!("(pid {})", hostile.zombie));
    assert_eq!(
        zombie.fact.split(" (pid").next(),
        Some(&*format!("zombie {ZOMBIE_COMM}"))
    );
    let parent = fact(zombies, "parent command: ");
    assert_eq!(parent.fact, format!("parent command: {ARGV0} 600"));
    // Their commands name pids only.
    for f in [exhausted, zombies] {
        for e in &f.evidence {
            if let Some(command) = &e.command {
                assert_terminal_safe(command, "an evidence command");
            }
        }
    }

    // fds PID: escaped on the terminal, exact in JSON.
    let text = nodedoc(&["fds", &pid.to_string()]);
    assert!(text.status.success(), "{}", stderr(&text));
    let out = stdout(&text);
    assert_terminal_safe(&out, "fds");
    assert_no_line_starts_with(&out, "CRITICAL", "fds");
    let open = hostile.open_fds();
    assert!(open >= FD_LIMIT as usize - 2, "{open}");
    assert!(
        out.starts_with(&format!(
            "{} (pid {pid}): {open} open fds (limit: soft {FD_LIMIT} / hard {FD_LIMIT})\n",
            terminal(COMM)
        )),
        "{out}"
    );
    assert!(out.starts_with("\\e]0\\x07\\x9b\\nCRITICAL (pid "), "{out}");
    let json = nodedoc(&["fds", &pid.to_string(), "--format", "json"]);
    let json_text = stdout(&json);
    assert_terminal_safe(&json_text, "fds --format json");
    let value: serde_json::Value = serde_json::from_str(&json_text).unwrap();
    assert_eq!(value["comm"], COMM);
    assert_eq!(value["fds"]["total"], open);
}

#[test]
fn the_check_report_shows_a_hostile_process_escaped_and_forges_no_line() {
    let hostile = HostileProcess::start();
    let output = nodedoc(&["check", "--interval", "300ms"]);
    let out = stdout(&output);
    assert_terminal_safe(&out, "check");
    assert_no_line_starts_with(&out, "CRITICAL forged", "check");
    assert_no_line_starts_with(&out, "CRITICAL z", "check");
    // Every line that starts with a severity is the report's own: a severity and a detector.
    let detectors: Vec<&str> = nodedoc_detectors::detectors()
        .iter()
        .map(|d| d.id())
        .collect();
    for line in out.lines().map(str::trim_start) {
        if let Some(rest) = line.strip_prefix("CRITICAL ") {
            let word = rest.split_whitespace().next().unwrap_or("");
            assert!(detectors.contains(&word), "a forged line: {line:?}\n{out}");
        }
    }
    assert!(
        out.contains(&format!("{} (pid {})", terminal(COMM), hostile.pid())),
        "{out}"
    );
    assert!(out.contains(&*terminal(ARGV0)), "{out}");
}

/// Writes a `waiting for DEVICE to become free` record to /dev/kmsg, as the kernel does.
fn kmsg_waiting_for(device: &str) {
    nodedoc_kmsg::write_kmsg_with_level(
        4,
        &format!("unregister_netdevice: waiting for {device} to become free. Usage count = 1"),
    )
    .expect("write /dev/kmsg");
}

#[test]
fn kernel_log_device_names_are_one_literal_word_in_the_suggested_command() {
    let suffix = nodedoc_lab::unique_suffix();
    let planted = PathBuf::from(format!("/tmp/nodedoc-pwned-{suffix}"));
    // `ndlab` marks the records as a lab's for tests/a_healthy_host.rs.
    let device = format!("ndlabq'$(touch${{IFS}}{})'z", planted.display());
    let escaped_device = format!("ndlab{suffix}\u{1b}]0;pw\u{7}x");
    kmsg_waiting_for(&device);
    kmsg_waiting_for(&escaped_device);

    let (report, _) = check_json(&["--interval", "0"]);
    let stuck = finding(
        &report,
        "netdev-unregister-stuck",
        &format!("netdev/{device}"),
    );
    assert_eq!(
        stuck.subject,
        Subject::NetDevice {
            name: device.clone()
        }
    );
    let command = stuck
        .evidence
        .iter()
        .find_map(|e| e.command.as_deref().filter(|c| c.starts_with("dmesg")))
        .expect("a dmesg command");
    let pattern = format!("waiting for {device} to become free");
    assert_eq!(
        command,
        format!("dmesg | grep -F -- {}", shell_word(&pattern).unwrap())
    );

    // Parsed by sh with the programs replaced by printf: grep gets the name as one literal
    // word inside its pattern.
    let parsed = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "dmesg() {{ :; }}; grep() {{ printf '%s\\n' \"$@\"; }}; {command}"
        ))
        .output()
        .unwrap();
    assert_eq!(stdout(&parsed), format!("-F\n--\n{pattern}\n"));
    // Run for real: it finds the record, and creates nothing.
    let real = Command::new("sh").arg("-c").arg(command).output().unwrap();
    assert!(
        stdout(&real).contains(&format!("unregister_netdevice: {pattern}")),
        "{}{}",
        stdout(&real),
        stderr(&real)
    );
    assert!(!planted.exists(), "the pasted command ran the device name");

    // A name with an escape sequence: exact in JSON, no command, and why.
    let escaped = finding(
        &report,
        "netdev-unregister-stuck",
        &format!("netdev/{escaped_device}"),
    );
    let withheld = &escaped.evidence[0];
    assert!(withheld.fact.contains(&escaped_device), "{withheld:?}");
    assert_eq!(withheld.command, None);
    assert_eq!(
        withheld.command_withheld.as_deref(),
        Some(&*format!(
            "\"waiting for ndlab{suffix}\\e]0;pw\\x07x to become free\" contains control characters and cannot be pasted safely into a shell"
        ))
    );
}

#[test]
fn error_messages_on_stderr_are_escaped_and_one_line() {
    let planted = format!(
        "/nonexistent-{}/\u{1b}]0;pwned\u{7}\nCRITICAL forged",
        nodedoc_lab::unique_suffix()
    );
    let output = nodedoc(&["check", "--from", &planted]);
    assert_eq!(output.status.code(), Some(3));
    let err = stderr(&output);
    assert_terminal_safe(&err, "stderr");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("nodedoc: error: "), "{err}");
    assert!(err.contains("\\e]0;pwned\\x07\\nCRITICAL forged"), "{err}");
}

#[test]
fn probe_cni_shows_planted_plugin_names_and_output_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let name = "\u{1b}]0;pw\u{7}\nHUNG forged";
    let plugin = dir.path().join(name);
    // A plugin that answers VERSION with an escape sequence and a forged line, then fails.
    std::fs::write(
        &plugin,
        "#!/bin/sh\nprintf '\\033[2J\\033]0;pwned\\007 bad\\r\\nHUNG forged\\n'\nexit 1\n",
    )
    .unwrap();
    std::fs::set_permissions(&plugin, std::fs::Permissions::from_mode(0o755)).unwrap();
    let dir_text = dir.path().to_str().unwrap();

    let output = nodedoc(&["probe", "cni", "--dir", dir_text]);
    let out = stdout(&output);
    assert_terminal_safe(&out, "probe cni");
    assert_no_line_starts_with(&out, "HUNG forged", "probe cni");
    assert!(
        out.contains(&format!(
            "failed    {}",
            terminal(&plugin.to_string_lossy())
        )),
        "{out}"
    );
    // Its first line only, escaped.
    assert!(out.contains(": \\e[2J\\e]0;pwned\\x07 bad\n"), "{out}");

    let json = nodedoc(&["probe", "cni", "--dir", dir_text, "--format", "json"]);
    let json_text = stdout(&json);
    assert_terminal_safe(&json_text, "probe cni --format json");
    let value: serde_json::Value = serde_json::from_str(&json_text).unwrap();
    assert_eq!(value["plugins"][0]["plugin"], plugin.to_str().unwrap());
}

/// A private Open vSwitch: `nodedoc lab-helper ovs-daemons` (ovsdb-server and ovs-vswitchd
/// with the userspace datapath) in a network namespace of its own, so that every device the
/// datapath makes (`ovs-netdev`, one tap per bridge) goes with the namespace. Torn down on
/// drop: the daemons stopped, the namespace deleted, the directory removed.
struct PrivateOvs {
    helper: Child,
    netns: String,
    dir: PathBuf,
}

impl PrivateOvs {
    fn start() -> PrivateOvs {
        let suffix = nodedoc_lab::unique_suffix();
        let netns = format!("ndhostile-{suffix}");
        // Short: unix socket paths are limited to 107 bytes.
        let dir = PathBuf::from(format!("/tmp/ndovsh-{suffix}"));
        std::fs::create_dir(&dir).expect("create the OVS directory");
        let status = Command::new("ip")
            .args(["netns", "add", &netns])
            .status()
            .unwrap();
        assert!(status.success(), "ip netns add {netns}");
        // `ip netns exec` executes the helper itself: its pid is the helper's.
        let mut helper = Command::new("ip")
            .args([
                "netns",
                "exec",
                &netns,
                NODEDOC,
                "lab-helper",
                "ovs-daemons",
                "--dir",
            ])
            .arg(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start ovs-daemons");
        let mut line = String::new();
        BufReader::new(helper.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let ovs = PrivateOvs { helper, netns, dir };
        assert_eq!(line.trim(), "ready", "ovs-daemons: {line}");
        ovs
    }

    fn db(&self) -> String {
        format!("unix:{}", self.dir.join("db.sock").display())
    }

    /// The names of every Interface row, exact (ovs-vsctl's JSON output).
    fn interfaces(&self) -> Vec<String> {
        let text = self.vsctl(&["--format=json", "--columns=name", "list", "Interface"]);
        let table: serde_json::Value = serde_json::from_str(&text).unwrap();
        let mut names: Vec<String> = table["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|row| row[0].as_str().unwrap().to_string())
            .collect();
        names.sort();
        names
    }

    fn vsctl(&self, args: &[&str]) -> String {
        let output = Command::new("ovs-vsctl")
            .arg(format!("--db={}", self.db()))
            .arg("--timeout=20")
            .args(args)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "ovs-vsctl {args:?}: {}",
            stderr(&output)
        );
        stdout(&output)
    }
}

impl Drop for PrivateOvs {
    fn drop(&mut self) {
        // SAFETY: SIGTERM to our own child, not reaped yet: it stops and reaps both daemons.
        unsafe { libc::kill(self.helper.id() as i32, libc::SIGTERM) };
        let _ = self.helper.wait();
        let _ = Command::new("ip")
            .args(["netns", "delete", &self.netns])
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn ovs_names_are_escaped_in_ports_quoted_in_fix_and_pasted_commands_remove_exactly_them() {
    let ovs = PrivateOvs::start();
    let db = ovs.db();
    let bridge = format!("brh{}", nodedoc_lab::unique_suffix());
    let pwned = "z$(touch${IFS}pwned)";
    let escaped = "e\u{1b}[2J\u{7}\nCRITICAL";
    ovs.vsctl(&[
        "add-br",
        &bridge,
        "--",
        "set",
        "Bridge",
        &bridge,
        "datapath_type=netdev",
    ]);
    // Type `system` with no such device: ovs-vswitchd reports "No such device", as for a
    // port whose device is gone.
    for name in [pwned, escaped] {
        ovs.vsctl(&[
            "--",
            "add-port",
            &bridge,
            name,
            "--",
            "set",
            "Interface",
            name,
            "type=system",
            // ovs-vsctl reads a value as a bare word or a JSON string.
            &format!(
                "external_ids:iface-id={}",
                serde_json::to_string(name).unwrap()
            ),
        ]);
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !ovs
        .vsctl(&["--columns=error", "list", "Interface"])
        .matches("No such device")
        .count()
        .eq(&2)
    {
        assert!(
            std::time::Instant::now() < deadline,
            "ovs-vswitchd never tried the ports"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }

    // ovs ports: escaped cells, aligned on what the terminal shows; JSON exact.
    let ports = nodedoc(&["ovs", "ports", "--ovsdb", &db]);
    let table = stdout(&ports);
    assert!(ports.status.success(), "{}", stderr(&ports));
    assert_terminal_safe(&table, "ovs ports");
    assert_no_line_starts_with(&table, "CRITICAL", "ovs ports");
    let lines: Vec<&str> = table.lines().collect();
    let row = |needle: &str| {
        *lines
            .iter()
            .find(|l| l.contains(needle) && l.starts_with(&bridge))
            .unwrap_or_else(|| panic!("no row for {needle}:\n{table}"))
    };
    let shown = terminal(escaped).into_owned();
    let type_column = lines[0].find("TYPE").unwrap();
    for name in [pwned, shown.as_str()] {
        let line = row(name);
        assert_eq!(
            line.find(" system ").map(|i| i + 1),
            Some(type_column),
            "{table}"
        );
        assert!(line.contains("MISSING"), "{table}");
    }
    assert!(
        row(&shown).ends_with(&format!("iface-id={shown}")),
        "{table}"
    );
    let json = nodedoc(&["ovs", "ports", "--ovsdb", &db, "--format", "json"]);
    let json_text = stdout(&json);
    assert_terminal_safe(&json_text, "ovs ports --format json");
    let rows: Vec<serde_json::Value> = serde_json::from_str(&json_text).unwrap();
    for name in [pwned, escaped] {
        let row = rows
            .iter()
            .find(|r| r["interface"] == name)
            .unwrap_or_else(|| panic!("{name:?} not exact in {rows:#?}"));
        assert_eq!(row["iface_id"], name);
    }

    // fix, dry run: the transaction and the equivalent commands, quoted or refused.
    let dry = nodedoc(&["fix", "ovs-orphan-port", "--ovsdb", &db]);
    let out = stdout(&dry);
    assert_eq!(dry.status.code(), Some(0), "{out}{}", stderr(&dry));
    assert_terminal_safe(&out, "fix ovs-orphan-port");
    assert_no_line_starts_with(&out, "CRITICAL", "fix ovs-orphan-port");
    assert!(out.contains("2 orphaned OVS port(s)"), "{out}");
    assert!(
        out.contains(&format!(
            "\n  ovs-vsctl --if-exists del-port {bridge} 'z$(touch${{IFS}}pwned)'\n"
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "\n  (no ovs-vsctl command for port {shown} on {bridge}: \"{shown}\" contains control characters"
        )),
        "{out}"
    );
    assert!(out.contains("\"e\\u001b[2J\\u0007\\nCRITICAL\""), "{out}");
    assert!(out.contains("dry run: nothing changed"), "{out}");

    // check: every command suggested for the quotable port, pasted into sh, runs nothing
    // and passes the name as one word; ovs-vsctl without --db finds the private database
    // through OVS_RUNDIR, so the pasted del-port removes exactly that port.
    let (report, _) = check_json(&["--interval", "0", "--ovsdb", &db]);
    let quotable = finding(
        &report,
        "ovs-orphan-port",
        &format!("ovs-interface/{pwned}"),
    );
    let mut commands: Vec<String> = quotable
        .evidence
        .iter()
        .filter_map(|e| e.command.clone())
        .collect();
    let spans: Vec<&str> = quotable.fix.split('`').skip(1).step_by(2).collect();
    let del_port = format!("ovs-vsctl --if-exists del-port {bridge} 'z$(touch${{IFS}}pwned)'");
    assert!(spans.contains(&del_port.as_str()), "{}", quotable.fix);
    commands.push(del_port);
    let scratch = tempfile::tempdir().unwrap();
    for command in &commands {
        assert!(command.contains(pwned), "{command}");
        let run = Command::new("sh")
            .arg("-c")
            .arg(command)
            .current_dir(scratch.path())
            .env("OVS_RUNDIR", &ovs.dir)
            .output()
            .unwrap();
        assert!(
            !scratch.path().join("pwned").exists(),
            "{command} ran the name: {}",
            stderr(&run)
        );
        // The quoted name names the row: ovs-vsctl shows it.
        if command.starts_with("ovs-vsctl --columns=") {
            assert!(
                stdout(&run).contains("(No such device)"),
                "{command}: {}{}",
                stdout(&run),
                stderr(&run)
            );
        }
    }
    let mut expected = vec![bridge.clone(), escaped.to_string()];
    expected.sort();
    assert_eq!(
        ovs.interfaces(),
        expected,
        "the pasted del-port removed exactly {pwned}"
    );

    // The port no command can name: the guarded transaction removes it, and says so escaped.
    let unquotable = finding(
        &report,
        "ovs-orphan-port",
        &format!("ovs-interface/{escaped}"),
    );
    assert!(unquotable.fix.contains(&format!(
        "(no command given: \"{shown}\" contains control characters"
    )));
    for evidence in unquotable.evidence.iter().filter(|e| e.command.is_none()) {
        if let Some(why) = &evidence.command_withheld {
            assert!(why.contains(&shown), "{why}");
        }
    }
    let applied = nodedoc(&["fix", "ovs-orphan-port", "--ovsdb", &db, "--yes"]);
    let out = stdout(&applied);
    assert_eq!(applied.status.code(), Some(0), "{out}{}", stderr(&applied));
    assert_terminal_safe(&out, "fix ovs-orphan-port --yes");
    assert!(out.contains(&format!("removed {bridge}/{shown}")), "{out}");
    assert_eq!(ovs.interfaces(), [bridge.as_str()]);
    drop(ovs);
}

#[test]
fn a_planted_directory_path_in_collect_output_is_quoted() {
    let dir = tempfile::tempdir().unwrap();
    let planted = dir.path().join("snap $(touch pwned).json");
    let output = nodedoc(&[
        "collect",
        "-o",
        planted.to_str().unwrap(),
        "--interval",
        "0",
        "--no-fds",
    ]);
    let err = stderr(&output);
    assert!(output.status.success(), "{err}");
    let command = err
        .split('`')
        .nth(1)
        .unwrap_or_else(|| panic!("no command in {err}"));
    assert_eq!(
        command,
        format!(
            "nodedoc check --from {}",
            shell_word(planted.to_str().unwrap()).unwrap()
        )
    );
}

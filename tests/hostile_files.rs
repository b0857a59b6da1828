//! Hostile files and processes (issue 8, items 1 and 2, and item 4's snapshot input): an
//! unprivileged user (`setpriv` to uid 65534) plants FIFOs, symlinks, state files and a fake
//! `ovs-vswitchd` in a world-writable sticky directory, the way anyone can in `/tmp`. Root's
//! nodedoc must finish, open nothing that is not a regular file (an inotify watch sees every
//! open of the FIFOs), say what it ignored and why, and write through no planted link.
//!
//! Every nodedoc run here is bounded: a run that does not end is the bug, and fails the test
//! instead of hanging it.

mod common;

use std::ffi::CString;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nodedoc_model::Report;

/// What nobody runs as.
const NOBODY: u32 = 65534;

/// Long enough for a whole-host `check` on a loaded machine; a hang is forever.
const RUN_LIMIT: Duration = Duration::from_secs(300);

/// `program ARGS` as uid/gid 65534 with no supplementary groups.
fn as_nobody(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut command = Command::new("setpriv");
    command
        .args([
            &format!("--reuid={NOBODY}"),
            &format!("--regid={NOBODY}"),
            "--clear-groups",
        ])
        .arg(program);
    command
}

/// Runs `command` to success.
fn run_ok(mut command: Command) {
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("{command:?}: {e}"));
    assert!(
        out.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs the shell `script` as nobody with `args` as $1…, `stdin` on its standard input.
fn plant(script: &str, args: &[&Path], stdin: &[u8]) {
    let mut sh = as_nobody("sh");
    sh.arg("-c")
        .arg(script)
        .arg("sh")
        .args(args)
        .stdin(Stdio::piped());
    let mut planting = sh.spawn().expect("run setpriv (util-linux) as nobody");
    planting.stdin.take().unwrap().write_all(stdin).unwrap();
    assert!(planting.wait().unwrap().success(), "{script}");
}

/// A directory anyone can write, sticky like /tmp (mode 1777); removed with what was planted
/// in it when dropped.
fn sticky_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o1777)).unwrap();
    dir
}

fn mkfifo(path: &Path) {
    let c = CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: a valid C string; mkfifo keeps nothing.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o666) }, 0, "mkfifo");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666)).unwrap();
}

/// A child we started, killed by its pid (ours until we reap it) and reaped when dropped.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Sees every open of one file (inotify `IN_OPEN`; `stat` does not count).
struct OpenWatch {
    fd: OwnedFd,
    path: PathBuf,
}

impl OpenWatch {
    fn new(path: &Path) -> OpenWatch {
        // SAFETY: plain syscalls; the fd is owned below.
        let raw = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
        assert!(raw >= 0, "inotify_init1");
        // SAFETY: `raw` is a fresh descriptor nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let c = CString::new(path.as_os_str().as_bytes()).unwrap();
        // SAFETY: a valid fd and C string.
        let watch = unsafe { libc::inotify_add_watch(fd.as_raw_fd(), c.as_ptr(), libc::IN_OPEN) };
        assert!(watch >= 0, "inotify_add_watch {}", path.display());
        OpenWatch {
            fd,
            path: path.to_path_buf(),
        }
    }

    /// Fails the test if anyone opened the file since the watch began.
    fn assert_never_opened(&self) {
        let mut buf = [0u8; 4096];
        // SAFETY: reading into our own buffer from our own fd.
        let n = unsafe { libc::read(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        assert!(
            n < 0,
            "{} was opened ({n} bytes of inotify events)",
            self.path.display()
        );
    }
}

/// What a bounded nodedoc run gave.
struct Run {
    code: i32,
    stdout: Vec<u8>,
    stderr: String,
}

/// Runs `nodedoc ARGS` (with `env`), failing the test if it has not ended within
/// [`RUN_LIMIT`]: then it hangs, which is the bug.
fn run_bounded(args: &[&str], env: &[(&str, &Path)]) -> Run {
    let out = tempfile::tempdir().unwrap();
    let (stdout_path, stderr_path) = (out.path().join("stdout"), out.path().join("stderr"));
    let mut command = Command::new(common::NODEDOC);
    command
        .args(args)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout_path).unwrap())
        .stderr(std::fs::File::create(&stderr_path).unwrap());
    for (key, value) in env {
        command.env(key, value);
    }
    let mut child = Reaped(command.spawn().expect("run nodedoc"));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > RUN_LIMIT {
            drop(child);
            panic!(
                "nodedoc {args:?} did not finish within {RUN_LIMIT:?} (hung); stderr:\n{}",
                std::fs::read_to_string(&stderr_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Run {
        code: status.code().expect("exited, not killed"),
        stdout: std::fs::read(&stdout_path).unwrap(),
        stderr: std::fs::read_to_string(&stderr_path).unwrap(),
    }
}

fn report_of(run: &Run) -> Report {
    assert!(
        (0..=2).contains(&run.code),
        "check failed (exit {}): {}",
        run.code,
        run.stderr
    );
    serde_json::from_slice(&run.stdout).expect("a JSON report")
}

/// `check --format json` against `db` (one reading), with `extra` arguments.
fn check_ovs(db: &Ovsdb, extra: &[&str]) -> Report {
    let mut args = vec![
        "check",
        "--format",
        "json",
        "--interval",
        "0",
        "--ovsdb",
        &db.endpoint,
    ];
    args.extend_from_slice(extra);
    report_of(&run_bounded(&args, &[]))
}

fn source<'a>(report: &'a Report, name: &str) -> &'a nodedoc_model::SourceStatus {
    report
        .sources
        .iter()
        .find(|s| s.source == name)
        .unwrap_or_else(|| panic!("no {name} source in {:#?}", report.sources))
}

/// A private ovsdb-server (root) with an initialised Open_vSwitch database; nothing of it
/// outlives the value.
struct Ovsdb {
    endpoint: String,
    socket: PathBuf,
    _server: Reaped,
    _dir: tempfile::TempDir,
}

impl Ovsdb {
    fn start() -> Ovsdb {
        let dir = tempfile::tempdir().unwrap();
        let path = |name: &str| dir.path().join(name).display().to_string();
        let ovs = |program: &str| {
            let mut command = Command::new(program);
            for var in ["OVS_RUNDIR", "OVS_LOGDIR", "OVS_DBDIR"] {
                command.env(var, dir.path());
            }
            command.stdin(Stdio::null());
            command
        };
        let mut create = ovs("ovsdb-tool");
        create.args([
            "create",
            &path("conf.db"),
            "/usr/share/openvswitch/vswitch.ovsschema",
        ]);
        run_ok(create);
        let server = ovs("ovsdb-server")
            .args([
                path("conf.db"),
                format!("--remote=punix:{}", path("db.sock")),
                format!("--unixctl={}", path("ovsdb-server.ctl")),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start ovsdb-server (openvswitch-switch)");
        let server = Reaped(server);
        let socket = dir.path().join("db.sock");
        let deadline = Instant::now() + Duration::from_secs(30);
        while !socket.exists() {
            assert!(Instant::now() < deadline, "ovsdb-server made no socket");
            std::thread::sleep(Duration::from_millis(20));
        }
        let endpoint = format!("unix:{}", socket.display());
        let mut init = ovs("ovs-vsctl");
        init.args([&format!("--db={endpoint}"), "--no-wait", "init"]);
        run_ok(init);
        Ovsdb {
            endpoint,
            socket,
            _server: server,
            _dir: dir,
        }
    }
}

/// A process that calls itself `ovs-vswitchd` (the kernel names a process after the file it
/// executed: here a symlink to /bin/sh), names the database on its command line, and holds
/// the read end of `fifo` open with no writer left: a reader that opens the FIFO the usual way
/// then waits in `fifo_open` for a writer that never comes. (The shell opens it read-write
/// first so that its own read-only open does not wait, then closes the read-write one.) It
/// waits on its stdin, a pipe the test holds and never writes. `nobody`: run as uid 65534,
/// else as root.
fn fake_vswitchd(dir: &Path, socket: &Path, fifo: &Path, nobody: bool) -> (Reaped, i32) {
    let name = dir.join("ovs-vswitchd");
    if !name.exists() {
        std::os::unix::fs::symlink("/bin/sh", &name).unwrap();
    }
    let mut command = if nobody {
        as_nobody(&name)
    } else {
        Command::new(&name)
    };
    command
        .arg("-c")
        .arg(r#"exec 3<>"$1" 4<"$1" 3>&-; echo ready; read line"#)
        .arg(format!("unix:{}", socket.display()))
        .arg(fifo)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let mut child = Reaped(command.spawn().expect("start the fake ovs-vswitchd"));
    let pid = child.0.id() as i32;
    let mut ready = String::new();
    BufReader::new(child.0.stdout.take().unwrap())
        .read_line(&mut ready)
        .unwrap();
    assert_eq!(ready.trim(), "ready");
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
    assert_eq!(comm.trim(), "ovs-vswitchd", "the fake must look the part");
    (child, pid)
}

#[test]
fn a_fake_ovs_vswitchd_holding_a_fifo_neither_hangs_check_nor_is_trusted() {
    let db = Ovsdb::start();
    let planted = sticky_dir();
    // Its name ends in .log and contains "vswitchd": what nodedoc looks for among the fds.
    let fifo = planted.path().join("ovs-vswitchd.log");
    mkfifo(&fifo);
    let (_nobodys, nobody_pid) = fake_vswitchd(planted.path(), &db.socket, &fifo, true);
    // Root's own process under the name fails on its executable (a shell, not OVS).
    let root_fifo = planted.path().join("root-vswitchd.log");
    mkfifo(&root_fifo);
    let (_roots, root_pid) = fake_vswitchd(planted.path(), &db.socket, &root_fifo, false);
    let watches = [OpenWatch::new(&fifo), OpenWatch::new(&root_fifo)];

    let report = check_ovs(&db, &[]);
    let log = source(&report, "ovs-log");
    assert_eq!(log.state, nodedoc_model::SourceState::Absent, "{log:?}");
    assert!(
        log.detail.contains(&format!(
            "ovs-vswitchd candidate pid {nobody_pid} ignored: runs as uid {NOBODY}, not root"
        )),
        "{log:?}"
    );
    assert!(
        log.detail.contains(&format!(
            "ovs-vswitchd candidate pid {root_pid} ignored: its executable is "
        )),
        "{log:?}"
    );
    let gap = report
        .gaps
        .iter()
        .find(|g| g.source == "ovs-vswitchd" && g.reason == "runs as uid 65534, not root")
        .unwrap_or_else(|| panic!("no gap for the fake: {:#?}", report.gaps));
    assert!(
        gap.examples
            .contains(&format!("ovs-vswitchd candidate pid {nobody_pid}")),
        "{gap:?}"
    );

    // `ovs ports` reads the same way.
    let run = run_bounded(&["ovs", "ports", "--ovsdb", &db.endpoint], &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);

    for watch in &watches {
        watch.assert_never_opened();
    }
}

#[test]
fn an_ovs_log_that_is_a_fifo_is_refused_unopened() {
    let db = Ovsdb::start();
    let planted = sticky_dir();
    let fifo = planted.path().join("ovs-vswitchd.log");
    mkfifo(&fifo);
    let watch = OpenWatch::new(&fifo);
    let fifo_text = fifo.display().to_string();
    // A log named on the command line that cannot be read fails the run (exit 3), after the
    // report, which says why.
    let run = run_bounded(
        &[
            "check",
            "--format",
            "json",
            "--interval",
            "0",
            "--ovsdb",
            &db.endpoint,
            "--ovs-log",
            &fifo_text,
        ],
        &[],
    );
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("is a FIFO (named pipe), not a regular file: not opened"),
        "{}",
        run.stderr
    );
    let report: Report = serde_json::from_slice(&run.stdout).expect("the report, before the error");
    let log = source(&report, "ovs-log");
    assert_eq!(log.state, nodedoc_model::SourceState::Failed, "{log:?}");
    assert_eq!(
        log.detail,
        format!(
            "ovs-vswitchd log {fifo_text} is a FIFO (named pipe), not a regular file: not opened"
        )
    );
    watch.assert_never_opened();
}

#[test]
fn snapshot_inputs_that_are_fifos_devices_or_huge_are_refused_with_exit_3() {
    let planted = sticky_dir();
    let fifo = planted.path().join("node-1.json");
    mkfifo(&fifo);
    let watch = OpenWatch::new(&fifo);
    let fifo_text = fifo.display().to_string();
    let run = run_bounded(&["check", "--from", &fifo_text], &[]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!(
            "{fifo_text} is a FIFO (named pipe), not a regular file: not opened"
        )),
        "{}",
        run.stderr
    );
    watch.assert_never_opened();

    // Grew past 3.9 GB before: now refused before a byte is read.
    let run = run_bounded(&["check", "--from", "/dev/zero"], &[]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("/dev/zero is a character device, not a regular file: not opened"),
        "{}",
        run.stderr
    );

    // A regular file over the limit (sparse: it costs no disk).
    let huge = planted.path().join("huge.json");
    let file = std::fs::File::create(&huge).unwrap();
    file.set_len(nodedoc_model::DEFAULT_MAX_SNAPSHOT_BYTES + 1)
        .unwrap();
    drop(file);
    let huge_text = huge.display().to_string();
    let run = run_bounded(&["check", "--from", &huge_text], &[]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!(
            "{huge_text} is larger than 1 GiB (1073741825 bytes): not read"
        )),
        "{}",
        run.stderr
    );
}

#[test]
fn collect_in_a_world_writable_dir_never_writes_through_a_planted_symlink() {
    let private = tempfile::tempdir().unwrap();
    let precious = private.path().join("precious");
    std::fs::write(&precious, "precious\n").unwrap();
    // Nobody may read the target's directory; a symlink needs no access to what it names.
    let planted = sticky_dir();

    // 1. The output itself is a planted link: refused, its target untouched.
    let linked = planted.path().join("linked.json");
    plant(r#"ln -s "$1" "$2""#, &[&precious, &linked], b"");
    let linked_text = linked.display().to_string();
    let run = run_bounded(&["collect", "-o", &linked_text], &[]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(
        run.stderr
            .contains(&format!("{linked_text} is a symbolic link: nodedoc writes")),
        "{}",
        run.stderr
    );
    assert_eq!(std::fs::read_to_string(&precious).unwrap(), "precious\n");

    // 2. A link planted where nodedoc's temporary file used to go (`.NAME.tmpPID`, created
    // with O_CREAT|O_TRUNC, which follows links), while nodedoc collects.
    let output = planted.path().join("node-1.json");
    let output_text = output.display().to_string();
    let mut command = Command::new(common::NODEDOC);
    command
        .args(["collect", "-o", &output_text])
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = Reaped(command.spawn().unwrap());
    let guessed = planted
        .path()
        .join(format!(".node-1.json.tmp{}", child.0.id()));
    plant(r#"ln -s "$1" "$2""#, &[&precious, &guessed], b"");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            break status;
        }
        assert!(started.elapsed() < RUN_LIMIT, "collect hung");
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.0.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(status.success(), "{stderr}");

    assert_eq!(
        std::fs::read_to_string(&precious).unwrap(),
        "precious\n",
        "root wrote through the planted link"
    );
    let written = std::fs::symlink_metadata(&output).unwrap();
    assert!(written.file_type().is_file());
    assert_eq!(written.uid(), 0);
    assert_eq!(
        written.mode() & 0o777,
        0o600,
        "command lines inside: private"
    );
    let snapshot = nodedoc_model::read_snapshot(&output).expect("a whole snapshot");
    assert!(!snapshot.processes.is_empty());
    // The planted link is left as it was, and no temporary file is left behind.
    assert_eq!(std::fs::read_link(&guessed).unwrap(), precious);
    let mut names: Vec<String> = std::fs::read_dir(planted.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let guessed_name = guessed.file_name().unwrap().to_string_lossy().into_owned();
    assert_eq!(
        names,
        [guessed_name, "linked.json".into(), "node-1.json".into()]
    );
}

#[test]
fn a_planted_lab_state_dir_is_neither_obeyed_nor_written_through() {
    let private = tempfile::tempdir().unwrap();
    // What a planted state file would make root delete.
    let canary = private.path().join("canary");
    std::fs::create_dir(&canary).unwrap();
    std::fs::write(canary.join("keep"), "keep").unwrap();
    let planted = sticky_dir();

    // 1. A state directory made by nobody, holding an "instance" whose teardown removes the
    // canary.
    let state = planted.path().join("labs");
    let evil = serde_json::json!({
        "id": "evil-000001",
        "scenario": "evil",
        "resources": [{ "type": "dir", "path": canary }],
        "expect": [],
        "facts": {},
    });
    plant(
        r#"mkdir -m 777 "$1" && cat > "$1/evil-000001.json""#,
        &[&state],
        evil.to_string().as_bytes(),
    );
    let run = run_bounded(
        &["lab", "stop", "evil"],
        &[("NODEDOC_LAB_STATE_DIR", &state)],
    );
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!(
            "lab state directory {} is not safe to use: it is owned by uid 65534, not by uid 0",
            state.display()
        )),
        "{}",
        run.stderr
    );
    assert!(
        canary.join("keep").exists(),
        "root obeyed a planted state file"
    );

    // 2. A state directory that is nobody's symlink to nobody's directory: `lab start` writes
    // nothing through it (and stops the lab it cannot record).
    let theirs = planted.path().join("theirs");
    let link = planted.path().join("labs-link");
    plant(
        r#"mkdir -m 777 "$1" && ln -s "$1" "$2""#,
        &[&theirs, &link],
        b"",
    );
    let run = run_bounded(
        &["lab", "start", "zombies"],
        &[("NODEDOC_LAB_STATE_DIR", &link)],
    );
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("is not safe to use: it is a symbolic link"),
        "{}",
        run.stderr
    );
    assert_eq!(
        std::fs::read_dir(&theirs).unwrap().count(),
        0,
        "a state file was written through the link"
    );
}

#[test]
fn probe_cni_never_runs_a_plugin_someone_else_planted() {
    let planted = sticky_dir();
    let private = tempfile::tempdir().unwrap();
    let marker = private.path().join("ran-as-root");
    // What the plant would do as root: here, only leave a mark.
    let script = format!("#!/bin/sh\ntouch '{}'\n", marker.display());
    let plugin = planted.path().join("bridge");
    plant(
        r#"cat > "$1" && chmod 755 "$1""#,
        &[&plugin],
        script.as_bytes(),
    );
    let dir = planted.path().display().to_string();
    let run = run_bounded(
        &[
            "probe",
            "cni",
            "--dir",
            &dir,
            "--timeout",
            "2s",
            "--format",
            "json",
        ],
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let result: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    let plugins = result["plugins"].as_array().unwrap();
    assert_eq!(plugins.len(), 1, "{result}");
    assert_eq!(plugins[0]["plugin"], plugin.display().to_string());
    assert_eq!(plugins[0]["outcome"], "skipped", "{result}");
    assert_eq!(
        plugins[0]["reason"],
        "owned by uid 65534; only plugins owned by root (or uid 0, which runs nodedoc) are run"
    );
    assert!(!marker.exists(), "root ran a plugin nobody planted");
}

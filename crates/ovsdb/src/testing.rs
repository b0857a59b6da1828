//! A private ovsdb-server for tests (feature `test-server`), and a hostile peer
//! ([`HostilePeer`]) that floods or overwhelms its clients.
//!
//! Each [`TestServer`] runs its own `ovsdb-server` on a fresh Open_vSwitch database in its
//! own temporary directory, so tests can run concurrently. Dropping it stops exactly that
//! server (the pid from its pidfile, never by name), waits until it is gone and removes the
//! directory — also when the test panics.
//!
//! Needs `ovsdb-tool`, `ovsdb-server`, `ovs-vsctl` and `ovs-appctl` (Debian:
//! `openvswitch-switch`) and `/usr/share/openvswitch/vswitch.ovsschema`. No ovs-vswitchd is
//! started, so always change the database with `--no-wait` ([`TestServer::vsctl`] does).
//!
//! ```no_run
//! use nodedoc_ovsdb::testing::TestServer;
//! # async fn demo() {
//! let server = TestServer::start().expect("ovsdb-server");
//! server.vsctl(&["add-br", "br0"]).unwrap();
//! let dump = nodedoc_ovsdb::dump(server.endpoint(), std::time::Duration::from_secs(10))
//!     .await
//!     .unwrap();
//! assert!(dump.bridge("br0").is_some());
//! # }
//! ```
//!
//! Zombies: `ovsdb-server --detach` daemonizes, so the server is not our child and, once
//! killed, would wait for PID 1 to reap it (a non-reaping PID 1 leaves `<defunct>` entries
//! that `pgrep` still lists). The helper therefore marks the test process as a child
//! subreaper (`PR_SET_CHILD_SUBREAPER`) before starting a server: the daemon is re-parented
//! to the test process, which reaps exactly that pid when stopping it.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Once;
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, WaitOptions};

/// Where Debian installs the Open_vSwitch schema.
pub const VSWITCH_SCHEMA: &str = "/usr/share/openvswitch/vswitch.ovsschema";

/// Starting, controlling or stopping the test server failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TestServerError {
    /// A command could not be run at all (not installed?).
    #[error("cannot run {command}: {source}")]
    Spawn {
        /// The command line.
        command: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A command exited unsuccessfully.
    #[error("{command} failed ({status}): {stderr}")]
    Command {
        /// The command line.
        command: String,
        /// Its exit status.
        status: std::process::ExitStatus,
        /// Its standard error.
        stderr: String,
    },
    /// Filesystem trouble in the server's directory.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
    /// The server did not reach the expected state in time.
    #[error("{0}")]
    Timeout(String),
}

/// How to start a [`TestServer`].
#[derive(Debug, Clone, Default)]
pub struct TestServerOptions {
    /// Also listen on a TCP port on 127.0.0.1 (chosen by the kernel; see
    /// [`TestServer::tcp_endpoint`]). ovsdb-server probes idle TCP clients with `echo` every
    /// 5 s by default.
    pub tcp: bool,
}

/// A running private ovsdb-server. See the [module documentation](self).
#[derive(Debug)]
pub struct TestServer {
    dir: tempfile::TempDir,
    options: TestServerOptions,
    pid: Option<i32>,
    tcp_port: Option<u16>,
}

fn command_line(program: &str, args: &[&OsStr]) -> String {
    let mut line = program.to_owned();
    for arg in args {
        line.push(' ');
        line.push_str(&arg.to_string_lossy());
    }
    line
}

impl TestServer {
    /// Creates a database and starts a server on `DIR/db.sock`, then runs
    /// `ovs-vsctl --no-wait init` so the `Open_vSwitch` row exists.
    pub fn start() -> Result<TestServer, TestServerError> {
        TestServer::start_with(TestServerOptions::default())
    }

    /// Like [`start`](Self::start) with options.
    pub fn start_with(options: TestServerOptions) -> Result<TestServer, TestServerError> {
        // Short paths: unix socket paths are limited to 107 bytes.
        let dir = tempfile::Builder::new()
            .prefix("ovsdb-test.")
            .tempdir_in(std::env::temp_dir())
            .map_err(|source| TestServerError::Io {
                what: "creating the server directory".into(),
                source,
            })?;
        let mut server = TestServer {
            dir,
            options,
            pid: None,
            tcp_port: None,
        };
        let db = server.path("conf.db");
        server.run(
            "ovsdb-tool",
            &[
                OsStr::new("create"),
                db.as_os_str(),
                OsStr::new(VSWITCH_SCHEMA),
            ],
        )?;
        server.launch()?;
        server.vsctl(&["init"])?;
        Ok(server)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The server's directory (database, socket, pidfile, log).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The unix socket path.
    pub fn socket_path(&self) -> PathBuf {
        self.path("db.sock")
    }

    /// The unixctl socket path (for `ovs-appctl -t`).
    pub fn control_path(&self) -> PathBuf {
        self.path("ovsdb-server.ctl")
    }

    /// The server's log file.
    pub fn log_path(&self) -> PathBuf {
        self.path("ovsdb-server.log")
    }

    /// `unix:DIR/db.sock`.
    pub fn endpoint(&self) -> String {
        format!("unix:{}", self.socket_path().display())
    }

    /// `tcp:127.0.0.1:PORT` when started with [`TestServerOptions::tcp`]. The port changes
    /// across [`restart`](Self::restart)s.
    pub fn tcp_endpoint(&self) -> Option<String> {
        self.tcp_port.map(|port| format!("tcp:127.0.0.1:{port}"))
    }

    /// The server's pid while it runs.
    pub fn pid(&self) -> Option<i32> {
        self.pid
    }

    /// The server's log so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn run(&self, program: &str, args: &[&OsStr]) -> Result<Output, TestServerError> {
        let command = command_line(program, args);
        let output = Command::new(program)
            .args(args)
            // Keep every OVS tool's default paths inside our directory.
            .env("OVS_RUNDIR", self.dir())
            .env("OVS_LOGDIR", self.dir())
            .env("OVS_DBDIR", self.dir())
            .output()
            .map_err(|source| TestServerError::Spawn {
                command: command.clone(),
                source,
            })?;
        if !output.status.success() {
            return Err(TestServerError::Command {
                command,
                status: output.status,
                stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
            });
        }
        Ok(output)
    }

    fn launch(&mut self) -> Result<(), TestServerError> {
        static SUBREAPER: Once = Once::new();
        SUBREAPER.call_once(|| {
            // Best effort: without it, a killed server is reaped by PID 1 instead.
            let _ = rustix::process::set_child_subreaper(Some(rustix::process::getpid()));
        });
        let _ = std::fs::remove_file(self.path("ovsdb-server.pid"));
        let remote = format!("--remote=punix:{}", self.socket_path().display());
        let pidfile = format!("--pidfile={}", self.path("ovsdb-server.pid").display());
        let unixctl = format!("--unixctl={}", self.control_path().display());
        let log_file = format!("--log-file={}", self.log_path().display());
        let db = self.path("conf.db");
        let mut args: Vec<&OsStr> = vec![
            db.as_os_str(),
            OsStr::new(&remote),
            // Lets tests add listeners with their own inactivity probe through the Manager
            // table (see `add_probed_listener`).
            OsStr::new("--remote=db:Open_vSwitch,Open_vSwitch,manager_options"),
            OsStr::new(&pidfile),
            OsStr::new(&unixctl),
            OsStr::new(&log_file),
            OsStr::new("--detach"),
        ];
        if self.options.tcp {
            args.push(OsStr::new("--remote=ptcp:0:127.0.0.1"));
        }
        // Remember how much log there was, to find this run's "listening on port" line.
        let log_offset = std::fs::metadata(self.log_path()).map_or(0, |m| m.len() as usize);
        self.run("ovsdb-server", &args)?;
        // --detach returns once the daemon is ready, after it wrote the pidfile.
        let pid_text =
            std::fs::read_to_string(self.path("ovsdb-server.pid")).map_err(|source| {
                TestServerError::Io {
                    what: "reading the pidfile".into(),
                    source,
                }
            })?;
        let pid = pid_text
            .trim()
            .parse::<i32>()
            .map_err(|_| TestServerError::Io {
                what: format!("parsing pidfile contents {pid_text:?}"),
                source: std::io::ErrorKind::InvalidData.into(),
            })?;
        self.pid = Some(pid);
        if self.options.tcp {
            self.tcp_port = Some(self.find_tcp_port(log_offset)?);
        }
        Ok(())
    }

    fn find_tcp_port(&self, log_offset: usize) -> Result<u16, TestServerError> {
        // ovsdb-server logs "0:127.0.0.1: listening on port N" when it binds port 0.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let log = self.log();
            let port = log
                .get(log_offset..)
                .unwrap_or_default()
                .lines()
                .filter_map(|line| line.split("listening on port ").nth(1))
                .find_map(|rest| rest.trim().parse::<u16>().ok());
            if let Some(port) = port {
                return Ok(port);
            }
            if Instant::now() > deadline {
                return Err(TestServerError::Timeout(
                    "ovsdb-server did not log its TCP port".into(),
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Runs `ovs-vsctl --db=unix:DIR/db.sock --no-wait ARGS` and returns its output.
    pub fn vsctl(&self, args: &[&str]) -> Result<String, TestServerError> {
        let db = format!("--db={}", self.endpoint());
        let mut all: Vec<&OsStr> = vec![OsStr::new(&db), OsStr::new("--no-wait")];
        all.extend(args.iter().map(OsStr::new));
        let output = self.run("ovs-vsctl", &all)?;
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// Runs `ovs-appctl -t DIR/ovsdb-server.ctl ARGS` and returns its output.
    pub fn appctl(&self, args: &[&str]) -> Result<String, TestServerError> {
        let target = self.control_path();
        let mut all: Vec<&OsStr> = vec![OsStr::new("-t"), target.as_os_str()];
        all.extend(args.iter().map(OsStr::new));
        let output = self.run("ovs-appctl", &all)?;
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// Adds a second unix listener, `DIR/NAME.sock`, whose connections the server probes
    /// with `echo` after `inactivity_probe` of silence (minimum 1 s) and drops if the probe
    /// is not answered within the same interval. Returns its endpoint. (Listeners given on
    /// the command line never probe unix clients.)
    pub fn add_probed_listener(
        &self,
        name: &str,
        inactivity_probe: Duration,
    ) -> Result<String, TestServerError> {
        let socket = self.path(&format!("{name}.sock"));
        let target = format!("target=\"punix:{}\"", socket.display());
        let probe = format!("inactivity_probe={}", inactivity_probe.as_millis());
        self.vsctl(&[
            "--",
            "--id=@manager",
            "create",
            "Manager",
            &target,
            &probe,
            "--",
            "add",
            "Open_vSwitch",
            ".",
            "manager_options",
            "@manager",
        ])?;
        // The server opens the listener when it next processes its remotes.
        let deadline = Instant::now() + Duration::from_secs(10);
        while !socket.exists() {
            if Instant::now() > deadline {
                return Err(TestServerError::Timeout(format!(
                    "{} did not appear",
                    socket.display()
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(format!("unix:{}", socket.display()))
    }

    /// Stops the server (SIGTERM, then SIGKILL after 10 s) and waits until it is gone.
    /// Doing nothing when it is not running.
    pub fn stop(&mut self) -> Result<(), TestServerError> {
        let Some(pid) = self.pid.take() else {
            return Ok(());
        };
        stop_process(pid)
    }

    /// Kills the server with SIGKILL, as a crash would (the socket file stays behind), and
    /// waits until it is gone.
    pub fn kill(&mut self) -> Result<(), TestServerError> {
        let Some(pid) = self.pid.take() else {
            return Ok(());
        };
        signal_and_wait(pid, Signal::KILL, Duration::from_secs(10))
    }

    /// Starts the server again on the same database and socket (after [`stop`](Self::stop)
    /// or [`kill`](Self::kill); stops it first if it is running).
    pub fn restart(&mut self) -> Result<(), TestServerError> {
        self.stop()?;
        self.launch()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            eprintln!("nodedoc_ovsdb::testing: stopping ovsdb-server: {e}");
        }
        // The TempDir field removes the directory after this.
    }
}

/// Whether `pid` is still an ovsdb-server: guards against signalling a recycled pid.
fn is_ovsdb_server(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|comm| comm.trim() == "ovsdb-server")
        .unwrap_or(false)
}

fn stop_process(pid: i32) -> Result<(), TestServerError> {
    match signal_and_wait(pid, Signal::TERM, Duration::from_secs(10)) {
        Err(TestServerError::Timeout(_)) => {
            signal_and_wait(pid, Signal::KILL, Duration::from_secs(10))
        }
        other => other,
    }
}

fn signal_and_wait(pid: i32, signal: Signal, timeout: Duration) -> Result<(), TestServerError> {
    let Some(rpid) = Pid::from_raw(pid) else {
        return Ok(());
    };
    if is_ovsdb_server(pid) && !is_zombie(pid) {
        // ESRCH just means it already exited.
        let _ = rustix::process::kill_process(rpid, signal);
    }
    let deadline = Instant::now() + timeout;
    loop {
        match rustix::process::waitpid(Some(rpid), WaitOptions::NOHANG) {
            Ok(Some(_)) => return Ok(()),
            Ok(None) => {}
            // Not our child (subreaper unavailable): it is gone once /proc says so, or once
            // it is a zombie waiting for PID 1.
            Err(_) => {
                if !is_ovsdb_server(pid) || is_zombie(pid) {
                    return Ok(());
                }
            }
        }
        if Instant::now() > deadline {
            return Err(TestServerError::Timeout(format!(
                "ovsdb-server pid {pid} still running {timeout:?} after signal {signal:?}"
            )));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn is_zombie(pid: i32) -> bool {
    // /proc/PID/stat: "pid (comm) STATE ..."; comm may contain spaces, so split after ')'.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            stat.rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().next().map(|s| s == "Z"))
        })
        .unwrap_or(false)
}

/// What a [`HostilePeer`] does to its clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostileMode {
    /// Sends `echo` requests as fast as it can and never reads.
    EchoFlood,
    /// Answers the first request with a 120 MB reply.
    HugeReply,
    /// Answers the first request with a 4 MB reply of tiny objects, about 360 MB once
    /// decoded.
    CostlyReply,
    /// Serves `get_schema` and `list_dbs`, then floods every monitor with updates: 20,000
    /// before the initial state, then forever.
    UpdateFlood,
}

impl HostileMode {
    fn argument(self) -> &'static str {
        match self {
            HostileMode::EchoFlood => "echo-flood",
            HostileMode::HugeReply => "huge-reply",
            HostileMode::CostlyReply => "costly-reply",
            HostileMode::UpdateFlood => "update-flood",
        }
    }
}

/// A hostile OVSDB peer: the Python script `tests/hostile_ovsdb_peer.py` of this crate,
/// listening on a unix socket in its own temporary directory. Dropping it kills exactly that
/// process (our child) and removes the directory.
#[derive(Debug)]
pub struct HostilePeer {
    dir: tempfile::TempDir,
    child: std::process::Child,
}

/// The script, carried in the library so that other crates' tests can start it too.
const HOSTILE_PEER_SCRIPT: &str = include_str!("../tests/hostile_ovsdb_peer.py");

impl HostilePeer {
    /// Starts the peer (needs `python3`) and waits until it listens.
    pub fn start(mode: HostileMode) -> Result<HostilePeer, TestServerError> {
        use std::io::BufRead;
        let dir = tempfile::Builder::new()
            .prefix("ovsdb-hostile.")
            .tempdir_in(std::env::temp_dir())
            .map_err(|source| TestServerError::Io {
                what: "creating the peer's directory".into(),
                source,
            })?;
        let script = dir.path().join("hostile_ovsdb_peer.py");
        std::fs::write(&script, HOSTILE_PEER_SCRIPT).map_err(|source| TestServerError::Io {
            what: format!("writing {}", script.display()),
            source,
        })?;
        let socket = dir.path().join("peer.sock");
        let mut command = Command::new("python3");
        command
            .arg(&script)
            .arg(mode.argument())
            .arg(&socket)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped());
        let line = command_line(
            "python3",
            &[script.as_os_str(), OsStr::new(mode.argument())],
        );
        let mut child = command.spawn().map_err(|source| TestServerError::Spawn {
            command: line.clone(),
            source,
        })?;
        let mut ready = String::new();
        let read = child
            .stdout
            .take()
            .map(|out| std::io::BufReader::new(out).read_line(&mut ready));
        if !matches!(read, Some(Ok(_))) || ready.trim() != "ready" {
            let _ = child.kill();
            let status = child.wait().map_err(|source| TestServerError::Io {
                what: "waiting for the peer".into(),
                source,
            })?;
            return Err(TestServerError::Command {
                command: line,
                status,
                stderr: format!("did not say ready (said {ready:?})"),
            });
        }
        Ok(HostilePeer { dir, child })
    }

    /// `unix:DIR/peer.sock`.
    pub fn endpoint(&self) -> String {
        format!("unix:{}", self.dir.path().join("peer.sock").display())
    }
}

impl Drop for HostilePeer {
    fn drop(&mut self) {
        // Our own child, not yet reaped: its pid cannot have been reused.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

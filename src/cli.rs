//! The command line: what each command does, its options, and the exit codes.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

const AFTER_HELP: &str = "\
Exit status of `check`, `lab run` and `fds` (Nagios-compatible):
  0  no warning or critical finding
  1  the worst finding is a warning
  2  the worst finding is critical
  3  nodedoc itself failed: bad arguments, unreadable or invalid input, internal error

Examples:
  nodedoc check                         diagnose this host now
  nodedoc check --format json | jq '.findings[] | {detector, severity, pid, summary}'
  nodedoc collect -o node-1.json        save a snapshot to analyse elsewhere
  nodedoc check --from node-1.json      analyse a saved snapshot
  nodedoc check --kernel-log dmesg.txt  this host, with a kernel log saved elsewhere
  nodedoc check --journal /var/log/journal --log kubelet.log   journal files and a service's log
  nodedoc check --sos sosreport-node-1-2024-05-01-abcdef.tar.xz   analyse a sosreport
  nodedoc explain fd-exhaustion         what a finding means and how it is detected
  nodedoc ovs ports                     Open vSwitch interfaces, owners and devices
  nodedoc fix ovs-orphan-port           delete OVS ports whose device is gone (asks first)
  nodedoc check --offline --kube-objects rs.json
                                        ReplicaSet history of a `kubectl get deploy,rs -A -o json`
  nodedoc fix replicaset-history-leak   delete leaked old ReplicaSets (dry run, asks first)
  sudo nodedoc lab run fd-exhaustion    reproduce a known failure in a sandbox and detect it";

/// nodedoc finds the root cause of Linux node failures.
///
/// It gathers what an SRE would read by hand (lsof, /proc/PID/stack, dmesg, ovs-vsctl),
/// matches known failure signatures, and prints the root-cause chain: what is wrong, the
/// evidence (with the command that shows it), why, and the fix.
#[derive(Debug, Parser)]
#[command(name = "nodedoc", version, after_help = AFTER_HELP, max_term_width = 100)]
pub struct Cli {
    /// When to use colour: auto uses it only on a terminal (and honours NO_COLOR).
    #[arg(long, global = true, value_enum, default_value_t = ColorWhen::Auto)]
    pub color: ColorWhen,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Diagnose this host now (or a saved snapshot with --from) and print the findings.
    ///
    /// Reads every process from /proc (state, limits, namespaces, an exact fd census with
    /// netlink sockets by protocol) and the kernel log, reads every process's state once more
    /// after --interval, then runs every detector. Read-only: it changes nothing.
    Check(CheckArgs),
    /// Save a snapshot of this host to a file, for `check --from` on another machine.
    Collect(CollectArgs),
    /// Run as the node agent: check this host every --interval and report findings as they
    /// open, change and resolve.
    ///
    /// A finding seen round after round is reported once (`open`), again when its severity,
    /// chain or facts change (`update`), and once more when it has been gone for
    /// --resolve-after rounds (`resolve`). With --format json each event is one line:
    /// {"event": "open"|"update"|"resolve", "at": RFC 3339, "finding": <as in check's JSON>}.
    /// With --listen, Prometheus metrics are served on /metrics. With --state-file, what is
    /// open survives a restart: it is not announced again. Read-only, like check.
    ///
    /// This node's pods (only them: for pod-stuck-terminating) are read from the Kubernetes
    /// API at most every 30 s, on a thread of their own so that a slow API server never
    /// delays a round; each round's detectors see the last reading. Without a kubeconfig (or
    /// with --no-kube) the API is not read.
    Watch(WatchArgs),
    /// Explain what a detector finds, how, and where to read more (all detectors if no ID).
    Explain {
        /// A detector id, e.g. fd-exhaustion.
        id: Option<String>,
    },
    /// Show the fd census of one process: descriptors by kind, netlink sockets by protocol.
    Fds(FdsArgs),
    /// Actively test components (opt-in: this runs programs).
    #[command(subcommand)]
    Probe(ProbeCommand),
    /// Open vSwitch: every interface with its owner, OpenFlow port, state and device.
    Ovs(OvsArgs),
    /// Repair what a detector found, after showing what will change and asking.
    ///
    /// Dry run by default: without a terminal to ask on and without --yes, nothing changes.
    Fix(FixArgs),
    /// Reproduce a known failure in a sandbox, to prove a detector on this kernel.
    ///
    /// Labs create real processes, network namespaces, cgroups and kernel log records, all
    /// with unique names, and remove them on every exit path. They need root.
    Lab(LabArgs),
    /// Internal: the processes labs start (fd hogs, neglectful parents, ...).
    #[command(hide = true, name = "lab-helper")]
    LabHelper {
        /// The helper and its arguments.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorWhen {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Human-readable report.
    Text,
    /// One JSON object (schema: docs/json.md).
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SocketResolutionArg {
    /// pidfd_getfd where allowed, else the /proc/PID/net tables.
    Auto,
    /// pidfd_getfd only (exact; sockets it cannot reach stay unresolved).
    Pidfd,
    /// The /proc/PID/net tables only, as lsof does (slow with many netlink sockets).
    ProcNet,
    /// Count sockets without resolving their family.
    None,
}

/// What a live collection reads.
#[derive(Debug, Args, Clone)]
pub struct CollectionArgs {
    /// Read every process's state a second time after this interval, to tell stuck tasks
    /// from passing ones and measure CPU shares (e.g. 300ms, 1s; 0 for a single reading).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "300ms")]
    pub interval: Duration,

    /// Only read kernel log records from this recent past (e.g. 10m, 2h). Default: since boot.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub since: Option<Duration>,

    #[command(flatten)]
    pub sources: SourceArgs,

    #[command(flatten)]
    pub files: FileInputArgs,

    #[command(flatten)]
    pub kube: KubeSourceArgs,
}

/// Evidence from files instead of (or besides) this host: what an SRE holds after the fact.
#[derive(Debug, Args, Clone, Default)]
pub struct FileInputArgs {
    /// Read the kernel log from FILE instead of this host's: saved `dmesg` (plain, -T, -x,
    /// --raw), `journalctl -k`, or a syslog file (/var/log/kern.log, /var/log/messages; lines
    /// of other programs are skipped); only its last 64 MiB. The log keeps its own clock:
    /// "still waiting" is judged against its last line, not this host's uptime, and its pids
    /// are not looked up among this host's processes. --since does not apply to it. With
    /// --from, it replaces the snapshot's kernel log. A file that cannot be read is an error
    /// (exit 3), after the report.
    #[arg(long, value_name = "FILE")]
    pub kernel_log: Option<PathBuf>,

    /// A service's log (repeatable): kubelet (klog), containerd or dockerd (logfmt), or
    /// `journalctl -u UNIT` output; the format is recognised from the lines, the service
    /// from a syslog/journal prefix or the file name. ovs-vswitchd's log is read as with
    /// --ovs-log. Only the last 64 MiB and the last 100,000 entries of each are kept. A file
    /// that cannot be read is an error (exit 3), after the report.
    #[arg(long = "log", value_name = "FILE")]
    pub logs: Vec<PathBuf>,

    /// systemd journal files: a directory (/var/log/journal, or a copy of it) or one
    /// .journal file (repeatable), read with journalctl. kubelet, containerd, dockerd and
    /// ovs-vswitchd entries (by _SYSTEMD_UNIT or SYSLOG_IDENTIFIER) are read as with --log
    /// (ovs-vswitchd's unless an ovs-vswitchd.log was read, named or found);
    /// the kernel's entries of the last boot replace this host's kernel log, unless
    /// --kernel-log names one. At most the last 200,000 entries. A path that cannot be read
    /// is an error (exit 3), after the report.
    #[arg(long, value_name = "DIR|FILE")]
    pub journal: Vec<PathBuf>,
}

impl FileInputArgs {
    /// The collector's view of it.
    pub fn inputs(&self) -> nodedoc_collect::files::FileInputs {
        nodedoc_collect::files::FileInputs {
            kernel_log: self.kernel_log.clone(),
            logs: self.logs.clone(),
            journal: self.journal.clone(),
        }
    }
}

/// Where Kubernetes objects come from, for `check` and `collect`.
#[derive(Debug, Args, Clone, Default)]
pub struct KubeSourceArgs {
    #[command(flatten)]
    pub api: KubeApiArgs,

    /// `kubectl get … -o json` output to analyse (repeatable): e.g. `kubectl get deploy,rs -A
    /// -o json` for replicaset-history-leak, `kubectl get pods -A -o json` for
    /// pod-stuck-terminating. Read as given, with the live reading or a --from snapshot.
    #[arg(long = "kube-objects", value_name = "FILE")]
    pub kube_objects: Vec<PathBuf>,
}

/// How the Kubernetes API is read, for `check`, `collect` and `watch` alike.
#[derive(Debug, Args, Clone, Default)]
pub struct KubeApiArgs {
    /// The kubeconfig to read the Kubernetes API with. Default: $KUBECONFIG, ~/.kube/config,
    /// then the pod's service account when nodedoc runs in a pod; none of them: the API is
    /// not read (not an error). On a node, the kubelet's own credentials can list its pods:
    /// --kubeconfig /etc/kubernetes/kubelet.conf.
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,

    /// The kubeconfig context to use (default: its current context).
    #[arg(long, value_name = "NAME")]
    pub kube_context: Option<String>,

    /// This node's name in Kubernetes, whose pods are read (default: the hostname, as the
    /// kubelet names a node unless told otherwise).
    #[arg(long, value_name = "NAME")]
    pub node_name: Option<String>,

    /// Do not read the Kubernetes API (with check and collect, files given with
    /// --kube-objects are still read).
    #[arg(long)]
    pub no_kube: bool,

    /// Every request to the Kubernetes API must be answered within this long of the first.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "60s")]
    pub kube_timeout: Duration,
}

/// How the host is read, for `check`, `collect` and `watch` alike.
#[derive(Debug, Args, Clone)]
pub struct SourceArgs {
    /// How sockets are told apart in the fd census.
    #[arg(long, value_enum, default_value_t = SocketResolutionArg::Auto)]
    pub socket_resolution: SocketResolutionArg,

    /// Skip the fd census (faster; fd-exhaustion then finds nothing).
    #[arg(long)]
    pub no_fds: bool,

    /// Worker threads for the process scan (default: online CPUs; at most 4 per CPU, since
    /// the scan mostly waits on the kernel and more threads only cost memory).
    #[arg(long, value_parser = parse_threads)]
    pub threads: Option<usize>,

    /// Give up reading a process's command line after this long. The read waits for the
    /// process's memory-map lock, which a stuck task can hold forever (why `ps` hangs on a
    /// sick node); such a process is reported, not waited for.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "2s")]
    pub memory_map_deadline: Duration,

    #[command(flatten)]
    pub ovs: OvsSourceArgs,

    /// A container runtime's CRI socket to ask which pod each container belongs to (names the
    /// pods of findings about tasks in containers; read-only `ListPodSandbox` and
    /// `ListContainers`, 5 s at most). Default: /run/containerd/containerd.sock, then
    /// /run/crio/crio.sock, when present.
    #[arg(long, value_name = "PATH")]
    pub cri_socket: Option<PathBuf>,
}

impl CollectionArgs {
    /// The collector's options.
    pub fn options(&self) -> nodedoc_collect::CollectOptions {
        nodedoc_collect::CollectOptions {
            interval: self.interval,
            since: self.since,
            files: self.files.inputs(),
            ..self.sources.options()
        }
    }
}

impl SourceArgs {
    /// The collector's options (second reading and kernel log window at their defaults).
    pub fn options(&self) -> nodedoc_collect::CollectOptions {
        nodedoc_collect::CollectOptions {
            socket_resolution: self.socket_resolution.into(),
            fd_census: !self.no_fds,
            threads: self.scan_threads(),
            memory_map_deadline: self.memory_map_deadline,
            ovs: self.ovs.source(),
            ..nodedoc_collect::CollectOptions::default()
        }
    }
}

impl From<SocketResolutionArg> for nodedoc_procfs::ResolutionMode {
    fn from(arg: SocketResolutionArg) -> Self {
        use nodedoc_procfs::ResolutionMode;
        match arg {
            SocketResolutionArg::Auto => ResolutionMode::Auto,
            SocketResolutionArg::Pidfd => ResolutionMode::PidfdOnly,
            SocketResolutionArg::ProcNet => ResolutionMode::ProcNetTables,
            SocketResolutionArg::None => ResolutionMode::None,
        }
    }
}

fn parse_threads(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(0) => Err("the scan needs at least one thread".to_string()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

/// How many scan threads help at most on this machine: 4 per online CPU.
pub fn max_scan_threads() -> usize {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    cpus.saturating_mul(4)
}

impl SourceArgs {
    /// Worker threads for the process scan: `--threads` (default: online CPUs), clamped to
    /// [`max_scan_threads`] with a note on standard error when it asked for more. Asking for
    /// 50,000 used to panic when the system refused to create that many (issue 8).
    pub fn scan_threads(&self) -> usize {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let max = max_scan_threads();
        match self.threads {
            None => cpus,
            Some(n) if n > max => {
                eprintln!(
                    "nodedoc: note: --threads {n} is more than the scan can use; using {max} (4 per CPU, {cpus} CPUs)"
                );
                max
            }
            Some(n) => n.max(1),
        }
    }
}

/// Where Open vSwitch is.
#[derive(Debug, Args, Clone, Default)]
pub struct OvsSourceArgs {
    /// The OVSDB to read: unix:PATH or tcp:HOST:PORT. Default: unix:/var/run/openvswitch/db.sock
    /// when that socket exists (no socket: no Open vSwitch here, which is not an error). An
    /// OVSDB named here that cannot be read is an error (exit 3), after the report.
    #[arg(long, value_name = "ENDPOINT", value_parser = parse_endpoint)]
    pub ovsdb: Option<String>,

    /// ovs-vswitchd's log, when it is not among the daemon's open files (only its end is read).
    /// It is read whether or not an OVSDB is reachable: without one (a copied log, a host
    /// without OVS) the log alone gives what it can (flapping ports, devices that do not
    /// exist). A log named here that cannot be read is an error (exit 3), after the report.
    #[arg(long, value_name = "FILE")]
    pub ovs_log: Option<PathBuf>,
}

/// Checks an `--ovsdb` endpoint's syntax while the command line is read (a typo is a usage
/// error, not a failed source found after the whole host was scanned).
fn parse_endpoint(text: &str) -> Result<String, String> {
    text.parse::<nodedoc_ovsdb::Endpoint>()
        .map(|_| text.to_string())
        .map_err(|e| e.to_string())
}

impl OvsSourceArgs {
    /// The collector's view of it.
    pub fn source(&self) -> nodedoc_collect::OvsSource {
        nodedoc_collect::OvsSource {
            endpoint: self.ovsdb.clone(),
            log: self.ovs_log.clone(),
        }
    }
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Analyse a snapshot written by `nodedoc collect` instead of this host (the Kubernetes
    /// API is not read either; --kube-objects files are added). Files named with
    /// --kernel-log, --ovs-log, --log and --journal replace what it holds of their kind.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["ovsdb", "sos"])]
    pub from: Option<PathBuf>,

    /// Analyse a sosreport (the directory `sos report` wrote, or its .tar.xz/.tar.gz) instead
    /// of this host. Every detector its content supports runs; what the report lacks (sos 4.0
    /// saves no /proc/PID/limits, later sos stacks for 2,048 pids only, an lsof its timeout
    /// killed) is listed per detector among the gaps. A tarball is read, never extracted.
    /// Files named with --kernel-log and --ovs-log replace what the report holds of their kind.
    #[arg(long, value_name = "PATH", conflicts_with = "ovsdb")]
    pub sos: Option<PathBuf>,

    /// Read nothing from this host or its Kubernetes API: analyse only the files given with
    /// --kube-objects (e.g. a `kubectl get deploy,rs -A -o json` export of a cluster).
    #[arg(long, conflicts_with_all = ["from", "sos"], requires = "kube_objects")]
    pub offline: bool,

    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,

    /// Also show informational findings in the text report (JSON always has them).
    #[arg(long, short)]
    pub verbose: bool,

    /// Show at most N chains in detail, and N evidence lines per finding, in the text report;
    /// a line says what was left out (0: show everything; JSON always has everything).
    #[arg(long, value_name = "N", default_value_t = crate::report::DEFAULT_LIMIT)]
    pub limit: usize,

    #[command(flatten)]
    pub collection: CollectionArgs,

    #[command(flatten)]
    pub thresholds: ThresholdArgs,
}

/// Detector thresholds and the config file.
#[derive(Debug, Args, Clone)]
pub struct ThresholdArgs {
    /// A nodedoc config file (TOML): thresholds, detectors switched off, agent settings and
    /// your own log rules (see docs/nodedoc.example.toml). Flags given on the command line win
    /// over the file.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Report CNI plugins (processes with CNI_COMMAND in their environment) running longer
    /// than this (cni-plugin-hang) [default: 10s].
    #[arg(long, value_parser = humantime::parse_duration)]
    pub cni_timeout: Option<Duration>,

    /// Report pods still there this long after their deletionTimestamp, which already
    /// includes the grace period (pod-stuck-terminating) [default: 60s].
    #[arg(long, value_parser = humantime::parse_duration)]
    pub pod_terminating_margin: Option<Duration>,
}

#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Time between rounds (a random ±5 % is added, so a fleet does not read /proc in
    /// lockstep) [default: 10s].
    #[arg(long, value_parser = humantime::parse_duration)]
    pub interval: Option<Duration>,

    /// Within a round, read every process's state twice this far apart (tells a stuck task
    /// from a passing one).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "300ms")]
    pub sample: Duration,

    /// Event format: text (for a terminal) or json (one event per line) [default: text].
    #[arg(long, value_enum)]
    pub format: Option<Format>,

    /// Append events to FILE instead of standard output (never through a symbolic link).
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Serve Prometheus metrics on http://ADDR/metrics (e.g. 127.0.0.1:9477).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<std::net::SocketAddr>,

    /// Keep open findings here across restarts (written atomically each round).
    #[arg(long, value_name = "FILE")]
    pub state_file: Option<PathBuf>,

    /// Announce findings again even if the state file says they were reported open.
    #[arg(long)]
    pub reopen: bool,

    /// Rounds a finding must be missing from before it resolves [default: 3].
    #[arg(long, value_name = "N")]
    pub resolve_after: Option<u32>,

    /// Stop after N rounds (for scripts and tests; default: run until SIGINT/SIGTERM).
    #[arg(long, value_name = "N")]
    pub rounds: Option<u64>,

    /// A service's log to follow (repeatable), as `check --log` reads one: kubelet (klog),
    /// containerd or dockerd (logfmt), `journalctl -u UNIT` output. Followed across rotation
    /// and truncation; each round's detectors see its entries of the last --log-window (at
    /// most 10,000 per file), so a finding made of its lines (container-stop-failed,
    /// kubelet-pleg-unhealthy) resolves once they age out. When the agent starts, only the
    /// lines of the file's last 16 MiB whose own time is inside the window count. A file that
    /// cannot be read (yet) is said in the round's sources and tried again each round.
    #[arg(long = "log", value_name = "FILE")]
    pub logs: Vec<PathBuf>,

    /// How long a followed log's entries count (an entry ages from the earlier of its own
    /// time and when it was read) [default: 15m].
    #[arg(long, value_parser = humantime::parse_duration, value_name = "DUR")]
    pub log_window: Option<Duration>,

    // This node's pods, from the Kubernetes API (see `Command::Watch`).
    #[command(flatten)]
    pub kube: KubeApiArgs,

    /// Test only: read the Kubernetes API this often instead of every 30 s.
    #[arg(long, hide = true, value_parser = humantime::parse_duration)]
    pub kube_every: Option<Duration>,

    #[command(flatten)]
    pub sources: SourceArgs,

    #[command(flatten)]
    pub thresholds: ThresholdArgs,
}

#[derive(Debug, Args)]
pub struct CollectArgs {
    /// Where to write the snapshot (`-` for standard output).
    #[arg(long, short, value_name = "FILE")]
    pub output: PathBuf,

    #[command(flatten)]
    pub collection: CollectionArgs,
}

#[derive(Debug, Args)]
pub struct FdsArgs {
    /// The process.
    pub pid: i32,

    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,

    /// How sockets are told apart.
    #[arg(long, value_enum, default_value_t = SocketResolutionArg::Auto)]
    pub socket_resolution: SocketResolutionArg,
}

#[derive(Debug, Args)]
pub struct OvsArgs {
    #[command(subcommand)]
    pub action: OvsAction,
}

#[derive(Debug, Subcommand)]
pub enum OvsAction {
    /// Every interface: bridge, port, type, owner ids (iface-id, vm-uuid, attached-mac),
    /// ofport, state, and whether its device exists and in which network namespace.
    Ports {
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,

        /// Then follow the Interface rows over an OVSDB monitor and print each change as it
        /// happens, one line per event (JSON lines with --format json, after one `present`
        /// line per interface): a tap's lifecycle — libvirt's add-port with its iface-id and
        /// vm-uuid, the ofport ovs-vswitchd assigns, an error, del-port at shutdown. Runs
        /// until interrupted.
        #[arg(long)]
        watch: bool,

        #[command(flatten)]
        source: OvsSourceArgs,
    },
}

#[derive(Debug, Args)]
pub struct FixArgs {
    #[command(subcommand)]
    pub action: FixAction,
}

#[derive(Debug, Subcommand)]
pub enum FixAction {
    /// Delete the OVS ports whose device no longer exists (the ovs-orphan-port findings).
    ///
    /// Shows the OVSDB transaction, asks on a terminal, then deletes every orphaned port in
    /// one transaction guarded by `wait` operations on the rows it read: a port that came
    /// back meanwhile (re-created, or with a new ofport or ifindex) is left alone.
    ///
    /// Right before the transaction, every network namespace is read again: a port whose
    /// device was re-created somewhere while the prompt waited is spared, and the output says
    /// where the device is.
    ///
    /// The fix is sent only over a unix socket or to a loopback address: nodedoc's OVSDB
    /// client has no TLS, so over tcp: to another host anyone on the path could read or alter
    /// the transaction (use the remote host's unix socket, e.g. through ssh, or pass
    /// --allow-cleartext-tcp on a network you trust).
    #[command(name = "ovs-orphan-port")]
    OvsOrphanPort {
        /// Apply without asking.
        #[arg(long)]
        yes: bool,

        /// Allow --ovsdb tcp:HOST:PORT to a host other than this one, in clear text.
        #[arg(long)]
        allow_cleartext_tcp: bool,

        #[command(flatten)]
        source: OvsSourceArgs,
    },
    /// Delete the old ReplicaSets a Deployment's history limit would have removed (the
    /// replicaset-history-leak findings).
    ///
    /// Reads every Deployment and ReplicaSet, and for each Deployment with the finding plans
    /// what the deployment controller does with a finite limit: of its old ReplicaSets, lowest
    /// revision first, those beyond the limit that have no pods and want none. It keeps
    /// --keep, else the Deployment's own limit, else 10 (apps/v1's default) when its limit is
    /// 2147483647. The current revision and ReplicaSets with pods are never deleted.
    ///
    /// Shows the plan and the `kubectl patch` that sets a limit (without it the history grows
    /// back), asks on a terminal, then re-reads the Deployment and each ReplicaSet right before
    /// deleting it: one that changed, was replaced, became current or got pods is spared, and
    /// each DELETE carries preconditions on the uid and resourceVersion just read. Deletes are
    /// sequential, as the controller's are. Without a terminal and without --yes it changes
    /// nothing. A ReplicaSet list the API did not give completely is not acted on.
    #[command(name = "replicaset-history-leak")]
    ReplicasetHistoryLeak {
        /// Apply without asking.
        #[arg(long)]
        yes: bool,

        /// Keep this many old ReplicaSets per Deployment.
        #[arg(long, value_name = "N")]
        keep: Option<u32>,

        /// Only Deployments of this namespace (repeatable).
        #[arg(long, value_name = "NS")]
        namespace: Vec<String>,

        /// Only this Deployment, as NAMESPACE/NAME (repeatable).
        #[arg(long, value_name = "NS/NAME")]
        deployment: Vec<String>,

        /// The kubeconfig (default: $KUBECONFIG, ~/.kube/config, in-cluster).
        #[arg(long, value_name = "FILE")]
        kubeconfig: Option<PathBuf>,

        /// The kubeconfig context.
        #[arg(long, value_name = "NAME")]
        kube_context: Option<String>,

        /// Each request must be answered within this long.
        #[arg(long, value_parser = humantime::parse_duration, default_value = "60s")]
        kube_timeout: Duration,

        /// Output format: the plan and outcomes as text, or as one JSON object.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
}

#[derive(Debug, Args)]
pub struct LabArgs {
    #[command(subcommand)]
    pub action: LabAction,
}

#[derive(Debug, Subcommand)]
pub enum LabAction {
    /// List the scenarios.
    List,
    /// Start a scenario, run `check`, show what it found, and clean up.
    Run {
        /// The scenario (see `nodedoc lab list`).
        scenario: String,
        /// Output format of the check.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Start a scenario and leave it running (stop it with `lab stop`).
    Start {
        /// The scenario.
        scenario: String,
        /// Print what was started as JSON (pids, names), for scripts and tests.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Stop a scenario started with `lab start` and remove everything it created.
    Stop {
        /// The scenario.
        scenario: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum ProbeCommand {
    /// Run every CNI plugin with CNI_COMMAND=VERSION and report which answer and which hang.
    ///
    /// Each executable in the CNI bin directories is started as a runtime would start it for
    /// VERSION: CNI_COMMAND=VERSION in its environment and standard input an open pipe that
    /// stays silent. Plugins that answer print their supported versions; plugins still running
    /// after --timeout hang (containernetworking/cni skel < 0.7.0 reads stdin even for VERSION)
    /// and are killed. Plugins run as the user running nodedoc (root), so a file owned by
    /// another user, or that group or others can write, or in a directory they can write
    /// (without the sticky bit), is skipped and reported as such.
    Cni {
        /// A CNI bin directory (repeatable). Default: /opt/cni/bin and /usr/lib/cni.
        #[arg(long = "dir", value_name = "DIR")]
        dirs: Vec<PathBuf>,
        /// How long a plugin may take to answer.
        #[arg(long, value_parser = humantime::parse_duration, default_value = "5s")]
        timeout: Duration,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
}

//! Builders for detector unit tests.

use nodedoc_model::{HostInfo, NamespaceIds, Process, Resample, Snapshot, TaskSample, TaskState};

/// A sleeping user process with nothing else filled in.
pub(crate) fn process(pid: i32, comm: &str) -> Process {
    Process {
        pid,
        ppid: 1,
        comm: comm.to_string(),
        cmdline: vec![comm.to_string()],
        state: TaskState::Sleeping,
        start_time_ticks: 100,
        uid: Some(0),
        threads: 1,
        kernel_thread: false,
        nofile: None,
        namespaces: NamespaceIds::default(),
        cgroups: vec![],
        wchan: None,
        utime_ticks: 0,
        stime_ticks: 0,
        sampled_at_us: 0,
        fds: None,
        kernel_stack: None,
        nspid: vec![pid],
        environment: Default::default(),
        syscall: None,
        sigkill_pending: false,
        memory_map_blocked: false,
        context_switches: None,
    }
}

/// A snapshot of `processes` (sorted by pid) on a host that has been up 10,000 s.
pub(crate) fn snapshot(mut processes: Vec<Process>) -> Snapshot {
    processes.sort_by_key(|p| p.pid);
    let mut snapshot = Snapshot::new(HostInfo {
        hostname: "test".into(),
        kernel_release: "6.18.44".into(),
        uptime_us: 10_000_000_000,
        boot_time_unix: 1_764_000_000,
        clock_ticks_per_sec: 100,
        collector_version: "test".into(),
        ..HostInfo::default()
    });
    snapshot.processes = processes;
    snapshot
}

/// The second reading of `p`, in `state`.
pub(crate) fn sample(p: &Process, state: TaskState) -> TaskSample {
    TaskSample {
        pid: p.pid,
        start_time_ticks: p.start_time_ticks,
        state,
        utime_ticks: 0,
        stime_ticks: 0,
        sampled_at_us: 0,
        blocked: None,
    }
}

/// A second reading 300 ms later that finds every one of `processes` in `state`.
pub(crate) fn resampled(processes: &[&Process], state: TaskState) -> Resample {
    let mut tasks: Vec<TaskSample> = processes.iter().map(|p| sample(p, state)).collect();
    tasks.sort_by_key(|t| t.pid);
    Resample {
        interval_ms: 300,
        tasks,
    }
}

/// An OVS state with one kernel-datapath bridge and the events of `log_text`.
pub(crate) fn ovs_with_log(log_text: &str) -> nodedoc_model::OvsState {
    let mut log = nodedoc_ovs::log::reduce(log_text, Some(1));
    log.path = "/var/log/openvswitch/ovs-vswitchd.log".into();
    nodedoc_model::OvsState {
        endpoint: "unix:/var/run/openvswitch/db.sock".into(),
        ovs_version: Some("2.12.0".into()),
        bridges: vec![nodedoc_model::OvsBridge {
            uuid: "b".into(),
            name: "br-int".into(),
            datapath_type: "system".into(),
            ports: vec![],
        }],
        vswitchd: Some(nodedoc_model::VswitchdProcess {
            pid: 812,
            start_time_ticks: 100,
            found_by: "pidfile /var/run/openvswitch/ovs-vswitchd.pid".into(),
            handler_threads: 1,
            revalidator_threads: 1,
            threads: 6,
        }),
        log: Some(log),
        ..Default::default()
    }
}

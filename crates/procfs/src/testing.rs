//! A fake `/proc` in a directory, for tests of the scan and of detectors without a live host
//! (enable the `fake-root` feature). Symlinks stand in for `/proc/PID/fd/N` and
//! `/proc/PID/ns/*`; sockets are resolved through the tree's own `PID/net/netlink`.

use std::fs;
use std::io;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use nodedoc_model::{Gaps, Process, TaskSample};

use crate::parse::PF_KTHREAD;
use crate::{ProcRoot, ReadStep};

/// One fake process.
#[derive(Clone, Debug)]
pub struct FakeProcess {
    /// Pid.
    pub pid: i32,
    /// Parent pid.
    pub ppid: i32,
    /// comm (any bytes the kernel allows, `)` and spaces included).
    pub comm: String,
    /// State letter.
    pub state: char,
    /// Start time in clock ticks after boot.
    pub start_time_ticks: u64,
    /// `Max open files` soft and hard, as the limits file writes them (`1024`, `unlimited`).
    pub nofile: (String, String),
    /// fd link targets, fd 0 first: `socket:[1001]`, `pipe:[7]`, `/dev/null`, …
    pub fds: Vec<String>,
    /// Network namespace inode.
    pub netns: u64,
    /// `wchan` (`0` when running).
    pub wchan: String,
    /// `stack`, as the kernel prints it (`[<0>] function+0x1/0x2` lines).
    pub stack: String,
    /// `voluntary_ctxt_switches` of `status` (`nonvoluntary_ctxt_switches` is 0).
    pub context_switches: u64,
    /// A kernel thread (`PF_KTHREAD` in the flags of `stat`).
    pub kernel_thread: bool,
}

impl FakeProcess {
    /// A sleeping process with a 1024/4096 limit and stdin, stdout and stderr on /dev/null.
    pub fn new(pid: i32, comm: &str) -> FakeProcess {
        FakeProcess {
            pid,
            ppid: 1,
            comm: comm.to_string(),
            state: 'S',
            start_time_ticks: 5000,
            nofile: ("1024".into(), "4096".into()),
            fds: vec!["/dev/null".into(), "/dev/null".into(), "/dev/null".into()],
            netns: 4026531840,
            wchan: "do_select".into(),
            stack: "[<0>] do_select+0x1/0x2\n".into(),
            context_switches: 10,
            kernel_thread: false,
        }
    }
}

/// A fake `/proc` tree.
#[derive(Debug)]
pub struct FakeProc {
    root: PathBuf,
    netlink_rows: Vec<(u64, u16, i32)>,
}

impl FakeProc {
    /// Lays the tree out in `root` (which must exist).
    pub fn new(root: &Path) -> FakeProc {
        FakeProc {
            root: root.to_path_buf(),
            netlink_rows: Vec::new(),
        }
    }

    /// The tree's root, for [`ProcRoot::at`](crate::ProcRoot::at).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Declares a netlink socket (inode, protocol, owner pid) in every process's
    /// `net/netlink` table. Call before adding the processes that hold it.
    pub fn netlink_socket(&mut self, inode: u64, protocol: u16, owner: i32) -> &mut FakeProc {
        self.netlink_rows.push((inode, protocol, owner));
        self
    }

    /// Rewrites what changes while a process lives — `stat`, `status`, `wchan`, `stack` — of
    /// a process written before: a task that leaves `D`, runs, or whose pid is reused.
    pub fn update(&self, p: &FakeProcess) -> io::Result<()> {
        let dir = self.root.join(p.pid.to_string());
        let flags = 4194560 | if p.kernel_thread { PF_KTHREAD } else { 0 };
        fs::write(
            dir.join("stat"),
            format!(
                "{} ({}) {} {} {} 0 0 -1 {flags} 0 0 0 0 70 30 0 0 20 0 1 0 {} 0 0\n",
                p.pid, p.comm, p.state, p.ppid, p.pid, p.start_time_ticks
            ),
        )?;
        fs::write(
            dir.join("status"),
            format!(
                "Name:\tx\nUid:\t0\t0\t0\t0\nNSpid:\t{}\nvoluntary_ctxt_switches:\t{}\nnonvoluntary_ctxt_switches:\t0\n",
                p.pid, p.context_switches
            ),
        )?;
        fs::write(dir.join("wchan"), &p.wchan)?;
        fs::write(dir.join("stack"), &p.stack)?;
        Ok(())
    }

    /// Writes one process.
    pub fn process(&mut self, p: &FakeProcess) -> io::Result<&mut FakeProc> {
        let dir = self.root.join(p.pid.to_string());
        for sub in ["fd", "ns", "net"] {
            fs::create_dir_all(dir.join(sub))?;
        }
        self.update(p)?;
        fs::write(
            dir.join("limits"),
            format!(
                "Limit                     Soft Limit           Hard Limit           Units     \nMax open files            {:<20} {:<20} files     \n",
                p.nofile.0, p.nofile.1
            ),
        )?;
        fs::write(dir.join("cmdline"), format!("{}\0", p.comm))?;
        fs::write(dir.join("cgroup"), "0::/\n")?;
        fs::write(dir.join("syscall"), "running\n")?;
        fs::write(dir.join("environ"), "PATH=/bin\0")?;
        symlink("pid:[4026531836]", dir.join("ns/pid"))?;
        symlink(format!("net:[{}]", p.netns), dir.join("ns/net"))?;
        symlink("mnt:[4026531841]", dir.join("ns/mnt"))?;
        if p.state != 'Z' {
            for (n, target) in p.fds.iter().enumerate() {
                symlink(target, dir.join("fd").join(n.to_string()))?;
            }
        }
        let mut table = String::from("sk               Eth Pid        Groups   Rmem     Wmem     Dump  Locks    Drops    Inode\n");
        for (inode, protocol, owner) in &self.netlink_rows {
            table.push_str(&format!(
                "ffff000000000001 {protocol:<3} {owner:<10} 00000000 0        0        0     2        0        {inode}\n"
            ));
        }
        fs::write(dir.join("net/netlink"), table)?;
        Ok(self)
    }
}

/// [`resample`](crate::resample), calling `between(pid, step)` between its reads of a task in
/// `D`, so a test can change the fake root exactly there (a task that leaves `D` while its stack
/// is read).
pub fn resample_between(
    root: &ProcRoot,
    processes: &mut [Process],
    gaps: &mut Gaps,
    between: &mut dyn FnMut(i32, ReadStep),
) -> Vec<TaskSample> {
    crate::resample::resample_between(root, processes, gaps, between)
}

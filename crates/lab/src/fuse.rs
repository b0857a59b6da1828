//! The `fuse-hang` lab's filesystem: one file, `stuck`, whose reads the daemon receives and
//! never answers — a FUSE daemon that hung.

use std::ffi::OsStr;
use std::sync::Mutex;
use std::time::{Duration, UNIX_EPOCH};

use fuser::{
    Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, INodeNo, LockOwner, MountOption,
    OpenFlags, ReplyAttr, ReplyData, ReplyDirectory, ReplyEntry, ReplyOpen, Request,
};

use crate::helpers::{arg, helper_error, ready, wait_forever};
use crate::LabError;

/// The file whose reads never return.
pub(crate) const STUCK_FILE: &str = "stuck";
/// The filesystem name (`fuse.nodedoc-lab` in mountinfo).
pub(crate) const FS_NAME: &str = "nodedoc-lab";

const STUCK_INODE: INodeNo = INodeNo(2);
const TTL: Duration = Duration::from_secs(60);

fn attr(ino: INodeNo, kind: FileType) -> FileAttr {
    FileAttr {
        ino,
        size: if kind == FileType::RegularFile {
            4096
        } else {
            0
        },
        blocks: 0,
        atime: UNIX_EPOCH,
        mtime: UNIX_EPOCH,
        ctime: UNIX_EPOCH,
        crtime: UNIX_EPOCH,
        kind,
        perm: if kind == FileType::Directory {
            0o755
        } else {
            0o444
        },
        nlink: if kind == FileType::Directory { 2 } else { 1 },
        uid: 0,
        gid: 0,
        rdev: 0,
        flags: 0,
        blksize: 4096,
    }
}

struct HungFs {
    /// Replies never sent. Dropping a reply makes fuser answer EIO, so they are kept.
    unanswered: Mutex<Vec<ReplyData>>,
    /// Created when a read arrives: the lab waits for it before killing the reader, because a
    /// request still queued in the kernel is simply dropped when its task is killed.
    received_marker: std::path::PathBuf,
}

impl Filesystem for HungFs {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        if parent == INodeNo::ROOT && name == STUCK_FILE {
            reply.entry(
                &TTL,
                &attr(STUCK_INODE, FileType::RegularFile),
                fuser::Generation(0),
            );
        } else {
            reply.error(Errno::ENOENT);
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match ino {
            INodeNo::ROOT => reply.attr(&TTL, &attr(ino, FileType::Directory)),
            STUCK_INODE => reply.attr(&TTL, &attr(ino, FileType::RegularFile)),
            _ => reply.error(Errno::ENOENT),
        }
    }

    fn open(&self, _req: &Request, _ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        // Direct I/O: the reader's read(2) itself waits for the reply (request_wait_answer),
        // instead of a readahead it would wait for on a page lock.
        reply.opened(FileHandle(1), FopenFlags::FOPEN_DIRECT_IO);
    }

    fn read(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _offset: u64,
        _size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        self.unanswered
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(reply);
        let _ = std::fs::write(&self.received_marker, b"read received\n");
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        if ino != INodeNo::ROOT {
            reply.error(Errno::ENOTDIR);
            return;
        }
        let entries = [
            (INodeNo::ROOT, FileType::Directory, "."),
            (INodeNo::ROOT, FileType::Directory, ".."),
            (STUCK_INODE, FileType::RegularFile, STUCK_FILE),
        ];
        for (i, (ino, kind, name)) in entries.iter().enumerate().skip(offset as usize) {
            if reply.add(*ino, (i + 1) as u64, *kind, name) {
                break;
            }
        }
        reply.ok();
    }
}

/// `lab-helper fuse-daemon --mountpoint DIR`: mounts the filesystem and serves it until
/// killed. The mount outlives the daemon (disconnected); the lab unmounts it.
pub(crate) fn serve(args: &[String]) -> Result<(), LabError> {
    const NAME: &str = "fuse-daemon";
    let mountpoint =
        arg(args, "--mountpoint").ok_or_else(|| helper_error(NAME, "--mountpoint is required"))?;
    let received = arg(args, "--received-marker")
        .ok_or_else(|| helper_error(NAME, "--received-marker is required"))?;
    let mut config = fuser::Config::default();
    config.mount_options = vec![
        MountOption::FSName(FS_NAME.into()),
        MountOption::Subtype(FS_NAME.into()),
    ];
    let filesystem = HungFs {
        unanswered: Mutex::new(Vec::new()),
        received_marker: received.into(),
    };
    let _session = fuser::spawn_mount(filesystem, mountpoint, &config)
        .map_err(|e| helper_error(NAME, format!("mount on {mountpoint}: {e}")))?;
    ready();
    wait_forever()
}

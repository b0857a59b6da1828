//! Property tests of the `/proc` parsers (issue 8: fuzz the parsers of untrusted input; the
//! cargo-fuzz target `procfs` in fuzz/ runs the same parsers for longer). A process controls
//! its comm, command line, environment and the paths of its mounts: whatever those hold, the
//! parsers return, read the fields the kernel wrote, and never keep a variable outside the
//! selected prefixes.

use nodedoc_model::Limit;
use nodedoc_procfs::parse::{self, FdTarget};
use proptest::prelude::*;

/// Bytes a process may put in its comm (`prctl(PR_SET_NAME)`: anything but NUL), biased to
/// the ones that confuse a naive parser.
fn comm() -> impl Strategy<Value = Vec<u8>> {
    let tricky = prop::sample::select(b"() \n\tR1Sx)(\x1b\xff".to_vec());
    prop::collection::vec(prop_oneof![tricky, 1u8..=255], 0..16)
}

/// What the kernel's mountinfo escapes (space, tab, newline, backslash) and everything else.
fn mount_path() -> impl Strategy<Value = String> {
    "/[a-z \t\n\\\\é$'()-]{0,24}"
}

/// The kernel's `mangle_path` for mountinfo: ` \t\n\\` as three-digit octal.
fn mangle(path: &str) -> String {
    let mut out = String::new();
    for c in path.chars() {
        match c {
            ' ' | '\t' | '\n' | '\\' => out.push_str(&format!("\\{:03o}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let text = String::from_utf8_lossy(&bytes);
        let _ = parse::parse_stat(&bytes);
        let _ = parse::parse_status(&text);
        let _ = parse::parse_syscall(&text);
        let _ = parse::parse_mountinfo(&text);
        let _ = parse::parse_limits_nofile(&text);
        let _ = parse::parse_cgroup(&text);
        let _ = parse::parse_stack(&text);
        let _ = parse::parse_namespace_link(&bytes);
        let _ = parse::classify_fd_target(&bytes);
        let _ = parse::parse_proc_net_netlink(&text);
        let _ = parse::parse_proc_net_inodes(&text, 9);
        let _ = parse::parse_cmdline(&bytes);
        let _ = parse::parse_wchan(&bytes);
    }

    /// The comm is whatever lies between the first `(` and the last `)`, so no comm shifts the
    /// fields after it (a process named `a) D 1 (` must not look like a task in D).
    #[test]
    fn stat_fields_survive_any_comm(
        comm in comm(),
        pid in 1i32..=4_194_304,
        state in prop::sample::select(vec!['R', 'S', 'D', 'Z', 'T', 't', 'I', 'X']),
        ppid in 0i32..=4_194_304,
        flags in any::<u32>(),
        utime in any::<u64>(),
        stime in any::<u64>(),
        threads in 1u32..100_000,
        start in any::<u64>(),
    ) {
        let mut line = format!("{pid} (").into_bytes();
        line.extend_from_slice(&comm);
        line.extend_from_slice(format!(
            ") {state} {ppid} 1 1 0 -1 {flags} 0 0 0 0 {utime} {stime} 0 0 20 0 {threads} 0 {start} 8192 10 18446744073709551615\n"
        ).as_bytes());
        let stat = parse::parse_stat(&line).unwrap();
        prop_assert_eq!(stat.comm, String::from_utf8_lossy(&comm).into_owned());
        prop_assert_eq!((stat.pid, stat.state, stat.ppid, stat.flags), (pid, state, ppid, flags));
        prop_assert_eq!((stat.utime, stat.stime), (utime, stime));
        prop_assert_eq!((stat.num_threads, stat.start_time), (threads, start));
    }

    #[test]
    fn status_lines_round_trip(
        uid in any::<u32>(),
        nspid in prop::collection::vec(1i32..=4_194_304, 0..4),
        pending in any::<u64>(),
        shared in any::<u64>(),
        name in "[ -~]{0,16}",
    ) {
        let nspid_text: Vec<String> = nspid.iter().map(i32::to_string).collect();
        let text = format!(
            "Name:\t{name}\nSigPnd:\t{pending:016x}\nShdPnd:\t{shared:016x}\nUid:\t{uid}\t{uid}\t{uid}\t{uid}\nNSpid:\t{}\n",
            nspid_text.join("\t")
        );
        let status = parse::parse_status(&text).unwrap();
        prop_assert_eq!(status.uid, uid);
        prop_assert_eq!(status.nspid, nspid);
        prop_assert_eq!(status.sigkill_pending, (pending | shared) & (1 << 8) != 0);
    }

    /// Secrets stay out: only variables with a selected prefix are kept, each with its value
    /// (the last one when a name repeats), whatever the other variables hold.
    #[test]
    fn environ_keeps_only_the_selected_variables(
        vars in prop::collection::vec(
            (prop_oneof!["CNI_[A-Z_]{0,8}", "[A-Z_]{1,10}", "CNI[^=\0]{0,4}"], "[^\0]{0,24}"),
            0..12,
        ),
    ) {
        let mut bytes = Vec::new();
        let mut expected = std::collections::BTreeMap::new();
        for (name, value) in &vars {
            bytes.extend_from_slice(format!("{name}={value}\0").as_bytes());
            if name.starts_with("CNI_") {
                expected.insert(name.clone(), value.clone());
            }
        }
        let selected = parse::parse_environ_selected(&bytes, &["CNI_"]);
        prop_assert_eq!(selected, expected);
    }

    #[test]
    fn cmdline_round_trips(args in prop::collection::vec("[^\0]{0,12}", 1..6)) {
        let mut bytes = args.join("\0").into_bytes();
        bytes.push(0);
        let parsed = parse::parse_cmdline(&bytes);
        if args == [String::new()] {
            prop_assert!(parsed.is_empty());
        } else {
            prop_assert_eq!(parsed, args);
        }
    }

    /// Mount points with spaces, tabs, newlines and backslashes come back as they were.
    #[test]
    fn mountinfo_paths_round_trip(
        mounts in prop::collection::vec((mount_path(), mount_path(), 0u32..4096, 0u32..1 << 20), 1..6),
        fs_type in prop::sample::select(vec!["nsfs", "fuse.sshfs", "ext4", "nfs4"]),
    ) {
        let mut text = String::new();
        for (i, (root, point, major, minor)) in mounts.iter().enumerate() {
            text.push_str(&format!(
                "{} 1 {major}:{minor} {} {} rw,relatime shared:1 - {fs_type} {} rw\n",
                i + 20,
                mangle(root),
                mangle(point),
                mangle(point),
            ));
        }
        let (parsed, bad) = parse::parse_mountinfo(&text);
        prop_assert!(bad.is_empty(), "{:?}", bad);
        prop_assert_eq!(parsed.len(), mounts.len());
        for (entry, (root, point, major, minor)) in parsed.iter().zip(&mounts) {
            prop_assert_eq!(&entry.root, root);
            prop_assert_eq!(&entry.mount_point, point);
            prop_assert_eq!(&entry.source, point);
            prop_assert_eq!((entry.major, entry.minor), (*major, *minor));
            prop_assert_eq!(&entry.fs_type, fs_type);
        }
    }

    #[test]
    fn cgroup_lines_round_trip(
        lines in prop::collection::vec((0u32..64, "[a-z_,=]{0,20}", "/[^\n]{0,30}"), 0..8),
    ) {
        let text: String = lines.iter().map(|(id, c, p)| format!("{id}:{c}:{p}\n")).collect();
        let (parsed, bad) = parse::parse_cgroup(&text);
        prop_assert!(bad.is_empty());
        prop_assert_eq!(parsed.len(), lines.len());
        for (m, (id, controllers, path)) in parsed.iter().zip(&lines) {
            prop_assert_eq!(m.hierarchy, *id);
            prop_assert_eq!(&m.controllers, controllers);
            prop_assert_eq!(&m.path, path);
        }
    }

    #[test]
    fn limits_round_trip(soft in prop::option::of(any::<u64>()), hard in prop::option::of(any::<u64>())) {
        let show = |l: Option<u64>| l.map_or("unlimited".to_string(), |n| n.to_string());
        let text = format!(
            "Limit                     Soft Limit           Hard Limit           Units     \nMax open files            {:<20} {:<20} files     \n",
            show(soft), show(hard)
        );
        let limit = parse::parse_limits_nofile(&text).unwrap();
        let want = |l: Option<u64>| l.map_or(Limit::Unlimited, Limit::Finite);
        prop_assert_eq!(limit.soft, want(soft));
        prop_assert_eq!(limit.hard, want(hard));
    }

    #[test]
    fn stack_lines_keep_function_offset_and_module(
        function in "[a-z_][a-z0-9_.]{0,30}",
        offset in (any::<u32>(), any::<u32>()),
        module in prop::option::of("[a-z0-9_]{1,12}"),
        hidden in any::<bool>(),
    ) {
        let address = if hidden { "0".to_string() } else { "ffffffffc08766ce".to_string() };
        let mut line = format!("[<{address}>] {function}+{:#x}/{:#x}", offset.0, offset.1);
        if let Some(m) = &module {
            line.push_str(&format!(" [{m}]"));
        }
        let frame = parse::parse_stack_line(&line).unwrap();
        prop_assert_eq!(frame.function, function);
        prop_assert_eq!(frame.offset, Some(format!("{:#x}/{:#x}", offset.0, offset.1)));
        prop_assert_eq!(frame.module, module);
    }

    #[test]
    fn fd_targets_and_namespace_links_round_trip(inode in any::<u64>(), ns in "[a-z_]{1,8}") {
        let socket = format!("socket:[{inode}]");
        prop_assert_eq!(parse::classify_fd_target(socket.as_bytes()), FdTarget::Socket { inode });
        let link = format!("{ns}:[{inode}]");
        prop_assert_eq!(parse::parse_namespace_link(link.as_bytes()), Some((ns.as_str(), inode)));
    }

    #[test]
    fn syscall_lines_round_trip(number in -1i64..600, args in prop::collection::vec(any::<u64>(), 6)) {
        let mut text = number.to_string();
        for a in &args {
            text.push_str(&format!(" {a:#x}"));
        }
        text.push_str(" 0x7ffc 0x7f01\n");
        let (parsed_number, parsed_args) = parse::parse_syscall(&text).unwrap().unwrap();
        prop_assert_eq!(parsed_number, number);
        prop_assert_eq!(parsed_args, if number < 0 { Vec::new() } else { args });
    }
}

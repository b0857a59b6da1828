//! The `/proc` parsers. A process controls much of what its own files say (comm, cmdline,
//! environ, the paths of its mounts and fds), so each parser gets the same hostile bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nodedoc_procfs::parse;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(stat) = parse::parse_stat(data) {
        // The comm is what lies between the first `(` and the last `)`, whatever is inside.
        let open = data.iter().position(|&b| b == b'(').unwrap();
        let close = data.iter().rposition(|&b| b == b')').unwrap();
        assert_eq!(stat.comm, String::from_utf8_lossy(&data[open + 1..close]));
    }
    let _ = parse::parse_status(&text);
    let environ = parse::parse_environ_selected(data, &["CNI_"]);
    assert!(environ.keys().all(|k| k.starts_with("CNI_")));
    let _ = parse::parse_syscall(&text);
    let (mounts, bad) = parse::parse_mountinfo(&text);
    assert!(mounts.len() + bad.len() <= text.lines().count());
    let _ = parse::parse_limits_nofile(&text);
    let (cgroups, bad) = parse::parse_cgroup(&text);
    assert!(cgroups.len() + bad.len() <= text.lines().count());
    for frame in parse::parse_stack(&text) {
        assert!(!frame.function.is_empty());
    }
    let _ = parse::parse_namespace_link(data);
    let _ = parse::classify_fd_target(data);
    let _ = parse::parse_proc_net_netlink(&text);
    for column in [6, 8, 9] {
        let _ = parse::parse_proc_net_inodes(&text, column);
    }
    let _ = parse::parse_cmdline(data);
    let _ = parse::parse_wchan(data);
});

//! CPU cost of following `/dev/kmsg` through a burst, side by side in one run:
//!
//! - a [`FollowerThread`] with the default limits (the agent's way), a consumer taking its
//!   records;
//! - a [`KmsgFollower`] drained every 10 ms by the caller (`drain()` only);
//! - util-linux's `dmesg --follow-new --raw` writing to a file, what a user would run.
//!
//! All three are attached before a separate process writes RECORDS records to `/dev/kmsg`
//! (one open per record, so `printk_devkmsg=ratelimit` drops none), and read the same burst.
//!
//! Run as root: `cargo run --release -p nodedoc-kmsg --example follow_cpu -- [RECORDS]`
//! (default 50,000).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nodedoc_kmsg::{write_kmsg_with_level, FollowStats, FollowerThread, KmsgFollower, Start};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [flag, tag, count] = args.as_slice() {
        if flag == "--write" {
            let count: u64 = count.parse().expect("a record count");
            for n in 0..count {
                write_kmsg_with_level(6, &format!("{tag}: {n}")).expect("writing /dev/kmsg");
            }
            return;
        }
    }
    let records: u64 = args
        .first()
        .map_or(50_000, |count| count.parse().expect("RECORDS is a number"));
    let tag = format!("ndfollow-bench-{}", std::process::id());
    let end = format!("{tag}: end");

    // The agent's way: a thread, a bounded queue, a consumer.
    let thread = KmsgFollower::open(Start::End)
        .expect("opening /dev/kmsg")
        .spawn(usize::try_from(records).unwrap_or(usize::MAX))
        .expect("starting the follower thread");
    let consumer = std::thread::spawn({
        let end = end.clone();
        move || {
            take_until(&thread, &end);
            thread
        }
    });

    // The caller's way: drain every 10 ms.
    let polled = std::thread::spawn({
        let end = end.clone();
        move || {
            let mut follower = KmsgFollower::open(Start::End).expect("opening /dev/kmsg");
            let mut seen_end = false;
            while !seen_end {
                follower
                    .drain(|record| seen_end |= record.message == end)
                    .expect("draining /dev/kmsg");
                std::thread::sleep(Duration::from_millis(10));
            }
            (follower.stats(), thread_cpu())
        }
    });

    // The user's way.
    let dmesg_out = std::env::temp_dir().join(format!("{tag}.dmesg"));
    let mut dmesg = Started::new(
        Command::new("dmesg")
            .args(["--follow-new", "--raw"])
            .stdout(std::fs::File::create(&dmesg_out).expect("creating the dmesg output file"))
            .spawn()
            .expect("starting dmesg"),
    );
    dmesg.1 = Some(dmesg_out.clone());
    std::thread::sleep(Duration::from_millis(200));

    let started = Instant::now();
    let mut writer = Started::new(
        Command::new(std::env::current_exe().unwrap())
            .args(["--write", &tag, &records.to_string()])
            .stdout(Stdio::null())
            .spawn()
            .expect("starting the writer"),
    );
    let writer_cpu = writer.wait_with_cpu();
    let written_in = started.elapsed();
    write_kmsg_with_level(6, &end).expect("writing the end record");

    let (polled_stats, polled_thread_cpu) = polled.join().unwrap();
    let mut thread = consumer.join().unwrap();
    let thread_stats = thread.stats();
    // dmesg is done when the end record is in its file.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !std::fs::read_to_string(&dmesg_out).is_ok_and(|text| text.contains(&end)) {
        assert!(
            Instant::now() < deadline,
            "dmesg never printed the end record"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let dmesg_lines = std::fs::read_to_string(&dmesg_out).map_or(0, |text| {
        text.lines().filter(|line| line.contains(&tag)).count()
    });
    dmesg.0.kill().expect("stopping dmesg");
    let dmesg_cpu = dmesg.wait_with_cpu();
    drop(dmesg);

    // Idle: the thread's CPU over two quiet seconds.
    let idle_before = thread.stats();
    std::thread::sleep(Duration::from_secs(2));
    let idle_after = thread.stats();

    println!(
        "burst: {records} records written by a separate process in {written_in:.2?} \
         ({writer_cpu:.2?} CPU in the writer)"
    );
    println!("reader                                   records read  lost  drains  CPU        CPU per 10,000 read");
    report(
        "FollowerThread (defaults)",
        &thread_stats,
        thread_stats.cpu_time,
    );
    report(
        "KmsgFollower::drain every 10 ms",
        &polled_stats,
        polled_stats.cpu_time,
    );
    println!(
        "{:<40} (its whole thread, sleeps included: {polled_thread_cpu:.2?})",
        ""
    );
    println!(
        "{:<40} {:>12}  {:>4}  {:>6}  {:<9.2?}  {:.2?}",
        "dmesg --follow-new --raw > file",
        dmesg_lines,
        "-",
        "-",
        dmesg_cpu,
        per_10k(dmesg_cpu, dmesg_lines as u64)
    );
    println!(
        "idle 2 s after the burst: FollowerThread {} drains, {:.2?} CPU",
        idle_after.drains - idle_before.drains,
        idle_after.cpu_time.saturating_sub(idle_before.cpu_time)
    );
    thread.stop().expect("the follower thread failed");
}

fn take_until(thread: &FollowerThread, end: &str) {
    loop {
        match thread.recv_timeout(Duration::from_secs(60)) {
            Ok(record) if record.message == end => break,
            Ok(_) => {}
            Err(error) => panic!("the follower thread: {error}"),
        }
    }
}

fn report(name: &str, stats: &FollowStats, cpu: Duration) {
    println!(
        "{name:<40} {:>12}  {:>4}  {:>6}  {cpu:<9.2?}  {:.2?}",
        stats.read,
        stats.lost,
        stats.drains,
        per_10k(cpu, stats.read)
    );
}

fn per_10k(cpu: Duration, records: u64) -> Duration {
    if records == 0 {
        return Duration::ZERO;
    }
    Duration::from_secs_f64(cpu.as_secs_f64() * 10_000.0 / records as f64)
}

fn thread_cpu() -> Duration {
    rusage_cpu(libc::RUSAGE_THREAD)
}

/// A child process, killed and reaped (and its output file removed) however the run ends.
struct Started(Child, Option<std::path::PathBuf>);

impl Started {
    fn new(child: Child) -> Started {
        Started(child, None)
    }

    /// Waits for the child and returns the CPU time it used (user + system): what the
    /// reaped children's total grew by.
    fn wait_with_cpu(&mut self) -> Duration {
        let before = rusage_cpu(libc::RUSAGE_CHILDREN);
        self.0.wait().expect("waiting for a child");
        rusage_cpu(libc::RUSAGE_CHILDREN).saturating_sub(before)
    }
}

impl Drop for Started {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
        if let Some(path) = &self.1 {
            let _ = std::fs::remove_file(path);
        }
    }
}

fn rusage_cpu(who: libc::c_int) -> Duration {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage only writes the struct it is given, and zeroed is a valid rusage.
    let usage = unsafe {
        libc::getrusage(who, usage.as_mut_ptr());
        usage.assume_init()
    };
    let micros = |time: libc::timeval| time.tv_sec as u64 * 1_000_000 + time.tv_usec as u64;
    Duration::from_micros(micros(usage.ru_utime) + micros(usage.ru_stime))
}

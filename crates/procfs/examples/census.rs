//! Prints the fd census of one process: `cargo run --release --example census -- PID`.
fn main() {
    let pid: i32 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .expect("usage: census PID");
    let root = nodedoc_procfs::ProcRoot::live().unwrap();
    let mut gaps = nodedoc_procfs::Gaps::new();
    let t = std::time::Instant::now();
    let p = nodedoc_procfs::read_process(&root, pid, &Default::default(), &mut gaps).unwrap();
    let el = t.elapsed();
    println!("{:?}", p.fds);
    println!("{el:?}");
}

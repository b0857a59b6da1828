#!/usr/bin/env bash
# What cpu-hog's sampling costs (issue 11: at most 1 % of a core while sampling).
#   - the netlink-dump-hog lab: a helper dumping the 5,000 addresses of a kube-ipvs0 over
#     netlink in a loop on two threads (seed 003's kube-proxy);
#   - A: the sampler alone (crates/perf/examples/profile.rs, the code `check` and `watch`
#     run), RUNS windows of 200 ms and of 1 s: each profile records the CPU time of the
#     sampling thread from opening the events to closing them (`cost.cpu_us`) and the wall
#     time (`cost.wall_us`); the share of a core is their ratio. The whole example process
#     (start, /proc/kallsyms read and parse, naming, JSON) is timed with /usr/bin/time too;
#   - B: `nodedoc check` with the lab running, with cpu_hog_share = 0.2 (the dumper is
#     sampled even on a loaded machine) vs 100 (nothing sampled): what a check pays for the
#     window.
# Run on an otherwise idle machine, as root: `bash bench/cpu_hog.sh`. Results go to
# bench/results/cpu-hog.md; docs/benchmarks.md records them. The lab is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet --bin nodedoc
cargo build --release --quiet -p nodedoc-perf --example profile
NODEDOC="$PWD/target/release/nodedoc"
PROFILE="$PWD/target/release/examples/profile"
OUT="$PWD/bench/results"
RUNS=${RUNS:-10}
mkdir -p "$OUT"
DIR=$(mktemp -d /tmp/nodedoc-bench-cpuhog.XXXXXX)
LAB=""
cleanup() {
    [ -n "$LAB" ] && "$NODEDOC" lab stop "$LAB" >/dev/null 2>&1 || true
    rm -rf "$DIR"
}
trap cleanup EXIT

echo "machine: $(nproc) cores, kernel $(uname -r), $(date -u +%Y-%m-%dT%H:%MZ), perf_event_paranoid $(cat /proc/sys/kernel/perf_event_paranoid)"
"$NODEDOC" lab start netlink-dump-hog >"$DIR/lab.txt"
LAB=$(sed -n 's/^started //p' "$DIR/lab.txt")
PID=$(sed -n 's/^  hog_pid: //p' "$DIR/lab.txt")
echo "lab $LAB: dumper pid $PID"
sleep 2

summarise() { # window_ms
    python3 - "$DIR" "$1" <<'PY'
import json, sys, glob, statistics
d, w = sys.argv[1], sys.argv[2]
rows = []
for f in sorted(glob.glob(f"{d}/w{w}-*.json")):
    p = json.load(open(f))[0]
    t = open(f.replace(".json", ".time")).read().split()
    rows.append((p["cost"]["cpu_us"], p["cost"]["wall_us"], p["samples"], p["user_samples"],
                 p["cpu_cores"], p["cost"]["ring_bytes"], float(t[0]) + float(t[1]), float(t[2])))
share = [r[0] / r[1] * 100 for r in rows]
proc = [r[6] / r[7] * 100 for r in rows]
print(f"| {w} ms | {statistics.mean(r[0] for r in rows):.0f} µs | {statistics.mean(share):.2f} % (max {max(share):.2f} %) "
      f"| {statistics.mean(r[2] for r in rows):.0f} ({statistics.mean(r[3] for r in rows):.0f} user) "
      f"| {statistics.mean(r[4] for r in rows):.2f} | {rows[0][5] // 1024} KiB "
      f"| {statistics.mean(r[6] for r in rows) * 1000:.0f} ms / {statistics.mean(r[7] for r in rows) * 1000:.0f} ms |")
PY
}

{
    echo "| window | sampler CPU (mean of $RUNS) | sampler CPU / wall | samples | dumper cores | rings | whole example process CPU / wall |"
    echo "|---:|---:|---:|---:|---:|---:|---:|"
    for w in 200 1000; do
        for i in $(seq 1 "$RUNS"); do
            /usr/bin/time -f "%U %S %e" -o "$DIR/w$w-$i.time" "$PROFILE" "$PID" "$w" >"$DIR/w$w-$i.json" 2>/dev/null
        done
        summarise "$w"
    done
} | tee "$OUT/cpu-hog.md"

# B: a whole check with and without the window.
printf '[thresholds]\ncpu_hog_share = 100\n' >"$DIR/off.toml"
printf '[thresholds]\ncpu_hog_share = 0.2\n' >"$DIR/on.toml"
"$PROFILE" "$PID" 200 2>&1 >/dev/null | sed -n 's/^kallsyms/symbol table (kallsyms)/p' | tee -a "$OUT/cpu-hog.md"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT/cpu-hog.md"
for mode in with without; do
    args=(check --format json)
    if [ "$mode" = without ]; then args+=(--config "$DIR/off.toml"); else args+=(--config "$DIR/on.toml"); fi
    start=$(date +%s%N)
    "$NODEDOC" "${args[@]}" >"$DIR/check-$mode.json" || true
    end=$(date +%s%N)
    echo "check $mode the cpu-hog window: $(((end - start) / 1000000)) ms wall; cpu-profile: $(python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print([s['detail'] for s in r['sources'] if s['source']=='cpu-profile'])" "$DIR/check-$mode.json")"
done | tee -a "$OUT/cpu-hog.md"
python3 - "$DIR/check-with.json" "$PID" <<'PY' | tee -a "$OUT/cpu-hog.md"
import json, sys
r = json.load(open(sys.argv[1]))
for f in r["findings"]:
    if f["detector"] == "cpu-hog" and f["pid"] == int(sys.argv[2]):
        print(f"finding: {f['severity']}: {f['summary']}")
        for e in f["evidence"]:
            print(f"  - {e['fact']}")
PY

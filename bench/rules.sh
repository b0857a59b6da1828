#!/usr/bin/env bash
# nodedoc's user log rules against grep -E and ripgrep on the same patterns (issue 9):
#   - a 1 GB synthetic syslog (crates/config/examples/gen_syslog.rs: kernel, systemd, kubelet,
#     containerd, dockerd, ovs-vswitchd, sshd, cron lines, with near misses), 0.1 % of its
#     lines matching one of eight node-problem-detector-like kernel patterns;
#   - A: those eight patterns, each starting with a literal;
#   - B: the same plus one that starts with `\w+` (no literal prefix; its inner literal
#        ": carrier: link " occurs on 5 % of the lines);
#   - each: `scan_log CONFIG FILE` (crates/config/examples/scan_log.rs: the rules of a
#     nodedoc configuration file, matched as `nodedoc watch` will) vs `grep -E -c -e P …`
#     (in this machine's C.UTF-8 locale, and in the C locale) vs `rg -c -e P …`.
# Every tool must report the same number of matching lines before its time counts. The file
# is read once before timing (warm page cache), and each command runs 5 times after 1 warm-up.
# Run on an otherwise idle machine: `bash bench/rules.sh`. Needs hyperfine and ripgrep
# (Debian packages). Results go to bench/results/rules-*.md; docs/benchmarks.md records
# them. The generated file (in /tmp) is deleted on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet -p nodedoc-config --examples
GEN="$PWD/target/release/examples/gen_syslog"
SCAN="$PWD/target/release/examples/scan_log"
OUT="$PWD/bench/results"
mkdir -p "$OUT"
DIR=$(mktemp -d /tmp/nodedoc-bench-rules.XXXXXX)
trap 'rm -rf "$DIR"' EXIT
LOG="$DIR/syslog"
SIZE_MB=${SIZE_MB:-1000}
PER_MILLION=${PER_MILLION:-1000} # 0.1 % of lines
RUNS=${RUNS:-5}

echo "machine: $(nproc) cores, kernel $(uname -r), $(date -u +%Y-%m-%dT%H:%MZ)"
echo "tools: $(grep --version | sed -n 1p); $(rg --version | sed -n 1p); $(hyperfine --version)"
echo "generating $SIZE_MB MB, $PER_MILLION matching lines per million:"
"$GEN" "$LOG" "$SIZE_MB" "$PER_MILLION"
BYTES=$(stat -c %s "$LOG")

# POSIX ERE and Rust regex read these the same way (no \d: GNU grep has none).
A=(
    'task \S+:\w+ blocked for more than \w+ seconds\.'
    'unregister_netdevice: waiting for \w+ to become free\. Usage count = [0-9]+'
    'Out of memory: Kill(ed)? process [0-9]+ .+'
    'EXT4-fs error \(device [^)]+\)'
    'Buffer I/O error on dev \w+, logical block [0-9]+'
    'XFS \(\w+\): .* Shutting down filesystem'
    'nf_conntrack: (nf_conntrack: )?table full, dropping packet'
    'Remounting filesystem read-only'
)
B=("${A[@]}" '\w+: carrier: link disconnected')

# A nodedoc configuration with one rule per pattern, on $LOG.
config() {
    local file=$1 i=0
    shift
    { echo "[[log]]"; echo "path = \"$LOG\""; } >"$file"
    for p in "$@"; do
        i=$((i + 1))
        printf "\n[[log.rule]]\nid = \"rule-%d\"\nseverity = \"warning\"\npattern = '%s'\n" "$i" "$p" >>"$file"
    done
}

run() {
    local name=$1
    shift
    local conf="$DIR/$name.toml" args=() p
    config "$conf" "$@"
    for p in "$@"; do args+=(-e "$(printf %q "$p")"); done
    local nd="$SCAN $conf $LOG"
    local grep_utf8="grep -E -c ${args[*]} $LOG"
    local grep_c="LC_ALL=C grep -E -c ${args[*]} $LOG"
    local rg="rg -c ${args[*]} $LOG"
    echo
    echo "== $name: $# patterns"
    echo "$ $nd"
    echo "$ $grep_utf8"
    echo "$ $grep_c"
    echo "$ $rg"
    local counts
    counts="$(bash -c "$nd" 2>/dev/null) $(bash -c "$grep_utf8") $(bash -c "$grep_c") $(bash -c "$rg")"
    echo "matching lines (nodedoc, grep, grep C, rg): $counts"
    if [ "$(tr ' ' '\n' <<<"$counts" | sort -u | wc -l)" != 1 ]; then
        echo "the tools disagree: no timing" >&2
        exit 1
    fi
    cat "$LOG" >/dev/null
    # Other work on the machine shows in wall times, not much in CPU times: say how busy it was.
    echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
    # Output to a file: GNU grep stops at the first match when its output is /dev/null
    # (where hyperfine sends it), as if -q.
    local o="$DIR/out.txt"
    hyperfine --shell=bash --warmup 1 --runs "$RUNS" --export-json "$DIR/$name.json" \
        -n "nodedoc scan_log" "$nd >$o 2>/dev/null" \
        -n "grep -E -c (C.UTF-8)" "$grep_utf8 >$o" \
        -n "grep -E -c (LC_ALL=C)" "$grep_c >$o" \
        -n "rg -c" "$rg >$o"
    echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
    python3 - "$DIR/$name.json" "$BYTES" >"$OUT/rules-$name.md" <<'EOF'
import json, sys
results = json.load(open(sys.argv[1]))["results"]
size = int(sys.argv[2])
grep = next(r for r in results if r["command"] == "grep -E -c (C.UTF-8)")["mean"]
# CPU time (user + system) beside wall time: it says the same when other work shares the cores.
print("| command | wall, mean | MB/s | vs grep -E | CPU (user + sys) | MB per CPU-second |")
print("|---|---:|---:|---:|---:|---:|")
for r in results:
    cpu = r["user"] + r["system"]
    print(f"| {r['command']} | {r['mean']:.3f} s ± {r['stddev']:.3f} | {size / r['mean'] / 1e6:,.0f} "
          f"| {grep / r['mean']:.2f} × | {cpu:.3f} s | {size / cpu / 1e6:,.0f} |")
EOF
    cat "$OUT/rules-$name.md"
}

run A "${A[@]}"
run B "${B[@]}"

#!/usr/bin/env bash
# nodedoc's benchmarks against what a user would otherwise run (lsof, ls), as in issue 3:
#   - one process holding 19,990 bound NETLINK_GENERIC sockets, while five others hold 80,000
#     more in the same network namespace (100,000 in all, as in seed 000), and 1,000 idle
#     processes besides;
#   - A: the census of that one process: `nodedoc fds PID` vs `lsof -p PID | grep -c GENERIC`
#        vs `ls -l /proc/PID/fd | grep -c socket`;
#   - B: a whole-host `nodedoc check` vs `lsof -n -P`.
# Run as root on an otherwise idle machine: `bash bench/run.sh`. Needs hyperfine and lsof
# (Debian packages). Results go to bench/results/ as Markdown tables; docs/benchmarks.md
# records them. Everything started here is killed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
ND="$PWD/target/release/nodedoc"
OUT="$PWD/bench/results"
mkdir -p "$OUT"
WORK=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

# A process holding $1 bound NETLINK_GENERIC sockets under a soft fd limit of 20,000.
start_hog() {
    local ready="$WORK/hog.$RANDOM"
    "$ND" lab-helper fd-hog --sockets "$1" --soft-limit 20000 --protocol 16 >"$ready" &
    pids+=($!)
    until grep -q ready "$ready" 2>/dev/null; do sleep 0.1; done
    echo $!
}

BIG=$(start_hog 19990)
pids+=("$BIG") # start_hog ran in a subshell: its own pids+= did not reach this one
for _ in 1 2 3 4 5; do start_hog 16000 >/dev/null; done
for _ in $(seq 1000); do sleep 3600 & pids+=($!); done
echo "census target: pid $BIG; netlink sockets in this netns: $(($(wc -l </proc/net/netlink) - 1))"
echo "processes: $(ls -d /proc/[0-9]* | wc -l)"
echo "machine: $(nproc) cores, kernel $(uname -r), $(date -u +%Y-%m-%dT%H:%MZ)"

# Every tool must agree on the count before its speed means anything.
echo "nodedoc fds:  $("$ND" fds "$BIG" --format json | python3 -c 'import json,sys; print(next(k["count"] for k in json.load(sys.stdin)["fds"]["kinds"] if k.get("protocol") == "NETLINK_GENERIC"))')"
echo "lsof | grep:  $(lsof -p "$BIG" | grep -c GENERIC)"
echo "ls -l | grep: $(ls -l /proc/"$BIG"/fd | grep -c socket)"

hyperfine --warmup 1 --runs 3 --export-markdown "$OUT/census.md" \
    -n "nodedoc fds PID" "$ND fds $BIG" \
    -n "lsof -p PID | grep -c GENERIC" "lsof -p $BIG | grep -c GENERIC" \
    -n "ls -l /proc/PID/fd | grep -c socket" "ls -l /proc/$BIG/fd | grep -c socket"

hyperfine --warmup 1 --runs 10 --export-markdown "$OUT/census-fast.md" \
    -n "nodedoc fds PID" "$ND fds $BIG" \
    -n "ls -l /proc/PID/fd | grep -c socket" "ls -l /proc/$BIG/fd | grep -c socket"

# `check` exits 2 here (the hogs are at their limit): -i keeps hyperfine going.
hyperfine -i --warmup 1 --runs 10 --export-markdown "$OUT/check.md" \
    -n "nodedoc check" "$ND check --format json"
hyperfine -i --warmup 1 --runs 3 --export-markdown "$OUT/check-vs-lsof.md" \
    -n "nodedoc check" "$ND check --format json" \
    -n "lsof -n -P" "lsof -n -P"

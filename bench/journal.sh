#!/usr/bin/env bash
# issue 10: `nodedoc check --journal` and the journal readers it could use, on the same files.
#
#   1. bench/journal_gen.py writes 200,000 entries of a busy node in journal export format;
#      Debian's systemd-journal-remote makes real journal files of them (compact and keyed
#      hash off; it rotates at its header limit, so the directory holds two files):
#      DIR/MACHINE-ID/system*.journal, 101 MB.
#   2. hyperfine -N: the journalctl command nodedoc runs (-o export, with its matches, fields
#      and --lines), the same with -o json and -o cat, the pure-Rust sdjournal crate reading
#      the same entries and fields (bench/sdjournal-reader), and the whole
#      `nodedoc check --journal DIR` over an empty snapshot.
#
# Run as root: `bash bench/journal.sh`. Needs hyperfine, systemd (journalctl) and
# systemd-journal-remote. Results go to bench/results/journal.md; docs/benchmarks.md
# records them.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet --bin nodedoc
ND="${CARGO_TARGET_DIR:-$PWD/target}/release/nodedoc"
(cd bench/sdjournal-reader && cargo build --release --quiet)
SDJ="$PWD/bench/sdjournal-reader/target/release/sdjournal-reader"
OUT="$PWD/bench/results"
mkdir -p "$OUT"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

DIR="$WORK/journal"
mkdir -p "$DIR/8c3bd2f7a2e94a4d8a1c9e3f5b7d6e21"
python3 bench/journal_gen.py 200000 |
    SYSTEMD_JOURNAL_COMPACT=0 SYSTEMD_JOURNAL_KEYED_HASH=0 \
        /lib/systemd/systemd-journal-remote \
        --output="$DIR/8c3bd2f7a2e94a4d8a1c9e3f5b7d6e21/system.journal" - 2>&1 | tail -1
du -sh "$DIR"
"$ND" collect -o "$WORK/empty.json" --interval 0 --no-fds 2>/dev/null || true
# An empty snapshot: only the journal's findings and costs count.
python3 - "$WORK/empty.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
for k in ("processes", "service_logs", "rule_matches"):
    if k in s: s[k] = []
s["kernel_log"] = None
s["ovs"] = None
json.dump(s, open(sys.argv[1], "w"))
PY

MATCHES="_TRANSPORT=kernel + _SYSTEMD_UNIT=kubelet.service + _SYSTEMD_UNIT=containerd.service + _SYSTEMD_UNIT=docker.service + _SYSTEMD_UNIT=ovs-vswitchd.service + SYSLOG_IDENTIFIER=kubelet + SYSLOG_IDENTIFIER=containerd + SYSLOG_IDENTIFIER=dockerd + SYSLOG_IDENTIFIER=ovs-vswitchd"
FIELDS=MESSAGE,PRIORITY,_SYSTEMD_UNIT,SYSLOG_IDENTIFIER,_TRANSPORT,_PID,_SOURCE_MONOTONIC_TIMESTAMP,_BOOT_ID
JC="journalctl --directory=$DIR --no-pager --all --quiet --output-fields=$FIELDS --lines=200000 $MATCHES"
echo "entries read: $($JC -o json | wc -l) (journalctl), $("$SDJ" "$DIR" 2>&1)"
"$ND" check --from "$WORK/empty.json" --journal "$DIR" --format json |
    python3 -c 'import json,sys; r=json.load(sys.stdin); print([s["detail"] for s in r["sources"] if s["source"]=="journal"][0])'
uptime

hyperfine -N --warmup 2 --runs 10 --export-markdown "$OUT/journal.md" \
    -n "journalctl -o export (what nodedoc runs)" "$JC -o export" \
    -n "journalctl -o json" "$JC -o json" \
    -n "journalctl -o cat (MESSAGE only)" "$JC -o cat" \
    -n "sdjournal 0.1.15 (pure Rust)" "$SDJ $DIR" \
    -n "nodedoc check --journal DIR" "$ND check --from $WORK/empty.json --journal $DIR --format json"
uptime

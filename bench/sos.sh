#!/usr/bin/env bash
# issue 10's benchmark: `nodedoc check --sos` on a sosreport of seed 000's scale against
# insights-core's lsof parser (`insights.parsers.lsof.Lsof`) on the same lsof file.
#
#   1. Debian's sosreport (sos 4.0) makes a real report of this host (plugins process, kernel,
#      host, date, filesys, openvswitch), while a `sleep` of ours runs.
#   2. Its lsof listing is rewritten with 100,000 more NETLINK_GENERIC rows held by that
#      `sleep` (bench/sos_lsof.py grow: lsof's own row format and column widths): what lsof
#      prints for ovs-vswitchd in seed 000. Running lsof on 100,000 real sockets takes 41 s here
#      and the file is the same either way.
#   3. hyperfine: `nodedoc check --sos DIR`, `nodedoc check --sos TARBALL` (the report packed
#      again as .tar.xz, as sos ships it) and insights-core parsing that one lsof file.
#
# Run as root on an otherwise idle machine: `bash bench/sos.sh`. Needs hyperfine, sosreport
# and python3-venv (Debian) and insights-core (PyPI: installed into a private venv here).
# Results go to bench/results/sos.md; docs/benchmarks.md records them.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
ND="${CARGO_TARGET_DIR:-$PWD/target}/release/nodedoc"
OUT="$PWD/bench/results"
mkdir -p "$OUT"
WORK=$(mktemp -d)
SLEEPER=
cleanup() {
    [ -n "$SLEEPER" ] && kill "$SLEEPER" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

VENV="${INSIGHTS_VENV:-$WORK/venv}"
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet insights-core
fi
echo "insights-core $("$VENV/bin/pip" show insights-core | awk '/^Version/ {print $2}')"

sleep 3600 &
SLEEPER=$!
start=$(date +%s.%N)
sosreport --batch --tmp-dir "$WORK" --only-plugins process,kernel,host,date,filesys,openvswitch >/dev/null
echo "sosreport took $(echo "$(date +%s.%N) - $start" | bc) s"
tarball=$(ls "$WORK"/sosreport-*.tar.xz)
mkdir "$WORK/report"
tar -xJf "$tarball" -C "$WORK/report" --strip-components=1
LSOF=$(ls "$WORK"/report/sos_commands/process/lsof_*)
# The same report with sos's own lsof listing: what the rest of `check` costs.
cp -a "$WORK/report" "$WORK/report-as-collected"
python3 bench/sos_lsof.py grow "$LSOF" "$SLEEPER" 100000 >"$WORK/lsof.big"
mv "$WORK/lsof.big" "$LSOF"
echo "lsof listing: $(wc -l <"$LSOF") lines, $(du -h "$LSOF" | cut -f1)"
name=$(basename "$tarball" .tar.xz)
tar -cJf "$WORK/big.tar.xz" -C "$WORK/report" --transform "s,^\.,$name," .

# The answer both must give: the sleeper's NETLINK_GENERIC count.
# (check exits 1 or 2 when it finds something: not a failure here.)
{ "$ND" check --sos "$WORK/report" --format json || true; } |
    python3 -c 'import json,sys; r=json.load(sys.stdin); print([f["summary"] for f in r["findings"] if f["detector"]=="fd-exhaustion"])'
"$VENV/bin/python" bench/sos_lsof.py insights "$LSOF"

hyperfine -N --ignore-failure --warmup 3 --runs 30 --export-markdown "$OUT/sos.md" \
    -n "nodedoc check --sos DIR" "$ND check --sos $WORK/report --format json" \
    -n "nodedoc check --sos TARBALL (.tar.xz)" "$ND check --sos $WORK/big.tar.xz --format json" \
    -n "insights-core Lsof parser (python, incl. start-up)" "$VENV/bin/python bench/sos_lsof.py insights $LSOF" \
    -n "python start-up + import of insights' Lsof" "$VENV/bin/python -c 'from insights.core.context import Context; from insights.parsers.lsof import Lsof'" \
    -n "nodedoc check --sos DIR, lsof as collected ($(wc -l <"$WORK/report-as-collected/sos_commands/process/$(basename "$LSOF")") lines)" "$ND check --sos $WORK/report-as-collected --format json"
cat "$OUT/sos.md"

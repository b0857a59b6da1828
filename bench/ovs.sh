#!/usr/bin/env bash
# nodedoc's Open vSwitch benchmarks (issue 5), on a private ovsdb-server holding one bridge
# with 5,000 interfaces (each with neutron/libvirt external_ids, as seed 002's taps carry):
#   - A: the initial dump + analysis: `nodedoc ovs ports --format json` (process scan,
#        one OVSDB transaction for the four tables, the devices of every network namespace,
#        the join) and a whole `nodedoc check` with OVS, against `ovs-vsctl list Interface`
#        on the same server;
#   - B: OVSDB update -> finding latency (examples/ovs_monitor_latency.rs): an Interface given
#        ovs-vswitchd's "No such device" error with a transact, the clock stopped when
#        ovs-orphan-port reports it; side by side, the one-shot rebuild (replica -> dump ->
#        state -> every detector) and the agent (`nodedoc watch`'s collector: the update
#        patched into the last round's snapshot, the OVSDB detectors run again).
# Run as root on an otherwise idle machine: `bash bench/ovs.sh`. Needs hyperfine and
# openvswitch-switch (Debian packages). Results go to bench/results/ovs-*.md|txt;
# docs/benchmarks.md records them. The server is this script's child and is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet --bin nodedoc --example ovs_monitor_latency
TARGET=${CARGO_TARGET_DIR:-$PWD/target}
ND="$TARGET/release/nodedoc"
LATENCY="$TARGET/release/examples/ovs_monitor_latency"
OUT="$PWD/bench/results"
mkdir -p "$OUT"
DIR=$(mktemp -d /tmp/nodedoc-bench-ovs.XXXXXX)
SERVER=
cleanup() {
    if [ -n "$SERVER" ]; then kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true; fi
    rm -rf "$DIR"
}
trap cleanup EXIT
export OVS_RUNDIR=$DIR OVS_LOGDIR=$DIR OVS_DBDIR=$DIR
N=${N:-5000}

ovsdb-tool create "$DIR/conf.db" /usr/share/openvswitch/vswitch.ovsschema
ovsdb-server "$DIR/conf.db" --remote="punix:$DIR/db.sock" --pidfile="$DIR/ovsdb-server.pid" \
    --unixctl="$DIR/ovsdb-server.ctl" --log-file="$DIR/ovsdb-server.log" </dev/null &
SERVER=$!
until [ -S "$DIR/db.sock" ]; do sleep 0.05; done
DB="unix:$DIR/db.sock"
ovs-vsctl --db="$DB" --no-wait init
args=(-- add-br br-bench)
for i in $(seq "$N"); do
    args+=(-- add-port br-bench "tap$i" -- set Interface "tap$i"
        "external_ids:iface-id=$(printf '%08x-9f9f-49e9-b772-%012x' "$i" "$i")"
        "external_ids:attached-mac=$(printf 'fa:16:3e:%02x:%02x:%02x' $((i >> 16 & 255)) $((i >> 8 & 255)) $((i & 255)))"
        "external_ids:vm-uuid=$(printf '%08x-5d2a-4e71-b9a4-%012x' "$i" "$i")"
        external_ids:iface-status=active)
done
ovs-vsctl --db="$DB" --no-wait "${args[@]}"
echo "machine: $(nproc) cores, kernel $(uname -r), $(ovsdb-server --version | head -1), $(date -u +%Y-%m-%dT%H:%MZ)"

# Both tools must see the same interfaces before their speed means anything.
echo "ovs-vsctl list Interface: $(ovs-vsctl --db="$DB" list Interface | grep -c '^_uuid')"
echo "nodedoc ovs ports:        $("$ND" ovs ports --ovsdb "$DB" --format json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')"

# `check` may exit non-zero on findings elsewhere on the host: -i keeps hyperfine going.
hyperfine -i --warmup 2 --runs 20 --export-markdown "$OUT/ovs-dump.md" \
    -n "nodedoc ovs ports --format json" "$ND ovs ports --ovsdb $DB --format json" \
    -n "nodedoc check --interval 0 (host + OVS)" "$ND check --ovsdb $DB --interval 0 --format json" \
    -n "ovs-vsctl list Interface" "ovs-vsctl --db=$DB list Interface"

"$LATENCY" "$DB" 100 | tee "$OUT/ovs-monitor-latency.txt"

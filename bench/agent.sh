#!/usr/bin/env bash
# The agent's cost, side by side with Debian's prometheus-node-exporter, in one run:
# 1,000 extra processes and about 100,000 NETLINK_GENERIC sockets (6 holders of 16,700: the
# hard RLIMIT_NOFILE here is 20,000) present; both agents scraped every INTERVAL for DURATION.
# Prints RSS (now and peak) and CPU share of one core for each.
#
#   bash bench/agent.sh [DURATION_SECONDS] [INTERVAL_SECONDS]
#
# Needs root, a release build (cargo build --release), prometheus-node-exporter and curl.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-300}
INTERVAL=${2:-10}
NODEDOC=target/release/nodedoc
EXPORTER=/usr/bin/prometheus-node-exporter
[ -x "$NODEDOC" ] || { echo "build first: cargo build --release" >&2; exit 1; }
[ -x "$EXPORTER" ] || { echo "apt-get install prometheus-node-exporter" >&2; exit 1; }

pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT

for _ in $(seq 1000); do sleep infinity & pids+=($!); done
for _ in $(seq 6); do
    "$NODEDOC" lab-helper fd-hog --sockets 16700 --soft-limit 19000 > /tmp/nodedoc-bench-hog.$$ &
    pids+=($!)
done
sleep 5
echo "processes: $(ls /proc | grep -c '^[0-9]')"
echo "netlink sockets held: $(cat /proc/net/netlink | wc -l) (host namespace table)"

"$NODEDOC" watch --interval "${INTERVAL}s" --format json --output /dev/null --listen 127.0.0.1:19477 2>/dev/null &
agent=$!; pids+=($agent)
"$EXPORTER" --web.listen-address=127.0.0.1:19100 >/dev/null 2>&1 &
exporter=$!; pids+=($exporter)
sleep 2

ticks=$(getconf CLK_TCK)
cpu() { awk -v t="$ticks" '{ print ($14 + $15) / t }' "/proc/$1/stat"; }
start_agent=$(cpu $agent); start_exporter=$(cpu $exporter); start=$(date +%s.%N)
end=$(( $(date +%s) + DURATION ))
while [ "$(date +%s)" -lt "$end" ]; do
    curl -s 127.0.0.1:19477/metrics > /dev/null
    curl -s 127.0.0.1:19100/metrics > /dev/null
    sleep "$INTERVAL"
done
wall=$(echo "$(date +%s.%N) - $start" | bc)
for who in agent exporter; do
    pid=${!who}; s=start_$who
    used=$(echo "$(cpu $pid) - ${!s}" | bc)
    rss=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)
    hwm=$(awk '/VmHWM/ {print $2}' /proc/$pid/status)
    printf '%-9s RSS %6.1f MB (peak %6.1f MB)  CPU %6.2f s in %4.0f s = %5.2f %% of a core\n' \
        "$who" "$(echo "$rss/1024" | bc -l)" "$(echo "$hwm/1024" | bc -l)" "$used" "$wall" \
        "$(echo "100*$used/$wall" | bc -l)"
done
curl -s 127.0.0.1:19477/metrics | grep -E '^nodedoc_agent_(round_duration|rounds)'

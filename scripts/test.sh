#!/usr/bin/env bash
# The one test command: installs what the tests need, then format, lint and every test.
# Usage: scripts/test.sh            (CI runs exactly this through .ci/run)
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the openssl crate builds against.
if ! dpkg -s libssl-dev pkg-config >/dev/null 2>&1; then
  echo "==> installing libssl-dev pkg-config"
  apt-get update -qq && apt-get install -y -qq libssl-dev pkg-config
fi

# promtool (Debian's prometheus package) checks every component's /metrics body.
if ! command -v promtool >/dev/null 2>&1; then
  echo "==> installing prometheus (for promtool)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus
fi

# Debian's Chromium: the browser tests load the HTML report and the dashboard headless.
if ! command -v chromium >/dev/null 2>&1; then
  echo "==> installing chromium (headless browser tests)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium
fi

# Rust components used below.
for component in rustfmt clippy; do
  if ! rustup component list --installed 2>/dev/null | grep -q "^${component}"; then
    rustup component add "$component"
  fi
done

# Python validators in a local venv (never the system's older tools).
if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv"
  python3 -m venv .venv
fi
if ! .venv/bin/pip install -q --disable-pip-version-check -r scripts/requirements-test.txt; then
  echo "error: cannot install the Python validators (scripts/requirements-test.txt)" >&2
  exit 1
fi
export PATH="$PWD/.venv/bin:$PATH"
export KUBE_DEVOPS_REQUIRE_VALIDATORS=1

echo "==> cargo fmt --check"
cargo fmt --all --check
echo "==> cargo clippy"
cargo clippy --locked --workspace --all-targets -- -D warnings
echo "==> cargo test"
# No doctests exist; leaving them out keeps the last line a real result. The benches are
# compiled by clippy above and run by `cargo bench --bench governance`.
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
# --no-fail-fast: every test binary runs even when an earlier one fails, so the total below
# counts every test and names every failing target.
cargo test --locked --workspace --lib --bins --tests --no-fail-fast 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
# One closing line over every test binary, then the targets that failed (a binary that crashed
# without its "test result" line is named there too).
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i; if ($(i+1) ~ /^ignored/) s += $i } }
     END { printf "total: %d passed, %d failed, %d skipped\n", p, f, s }' "$log"
grep -E '^error: test failed, to rerun pass' "$log" | sed 's/.*to rerun pass /failed: /' || true
if [ "$status" -ne 0 ]; then
  echo "FAILED (cargo test exited with $status)" >&2
fi
exit "$status"

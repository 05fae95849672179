#!/usr/bin/env bash
# Run every check and test of Gatehouse: the one command for developers and CI.
#
#   scripts/test.sh            (from any directory)
#
# Steps: system packages (Debian Chromium for the browser tests, Node.js and
# npm for the openid-client test), the Python venv, rustfmt, clippy, cargo
# build, cargo test (the store tests also against PostgreSQL: see
# scripts/postgres.sh), the unit tests of the Python helper package in
# python/tests, the npm packages of tests/e2e/oidc_rp (npm ci, from its
# package-lock.json), and the end-to-end browser tests in tests/e2e
# (pytest + Playwright against the debug binary).
# Honours CARGO_TARGET_DIR. Needs root or sudo only to apt-get install what
# is missing.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

started=$SECONDS
current_step="setup"
steps_done=()

section() {
    current_step="$1"
    printf '\n==================== %s ====================\n' "$1"
}

finish() {
    local status=$?
    local elapsed=$((SECONDS - started))
    echo
    stop_throwaway_cluster
    if [ "$status" -eq 0 ]; then
        echo "==> scripts/test.sh: OK, every step succeeded (${steps_done[*]}) in ${elapsed}s"
    else
        echo "==> scripts/test.sh: FAILED at step '${current_step}' (exit ${status}) after ${elapsed}s" >&2
    fi
}
trap finish EXIT

# shellcheck source=scripts/lib.sh
. "$repo/scripts/lib.sh"
# shellcheck source=scripts/postgres.sh
. "$repo/scripts/postgres.sh"

section "system packages"
if [ -x /usr/bin/chromium ]; then
    echo "chromium: $(/usr/bin/chromium --version 2>/dev/null || echo present)"
else
    echo "installing Debian's chromium (apt-get)"
    as_root apt-get update
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium
fi
if ! command -v psql >/dev/null 2>&1; then
    # The PostgreSQL browser test makes its own schema with psql.
    echo "installing Debian's postgresql-client (apt-get)"
    as_root apt-get update
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql-client
fi
if ! command -v npm >/dev/null 2>&1; then
    # tests/e2e/test_oidc.py runs openid-client (npm) as a relying party.
    echo "installing Debian's nodejs and npm (apt-get)"
    as_root apt-get update
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nodejs npm
fi
if ! command -v cargo >/dev/null 2>&1; then
    echo "error: cargo not found on PATH (install the Rust toolchain)" >&2
    exit 1
fi
steps_done+=("packages")

section "python venv"
"$repo/scripts/setup-venv.sh"
export PATH="$repo/.venv/bin:$PATH"
steps_done+=("venv")

section "cargo fmt --all -- --check"
cargo fmt --all -- --check
steps_done+=("fmt")

section "cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets -- -D warnings
steps_done+=("clippy")

section "cargo build"
cargo build
steps_done+=("build")

section "cargo test"
postgres_for_tests
cargo test
steps_done+=("cargo-test")

section "pytest python/tests (helper package unit tests)"
python -m pytest "$repo/python/tests" -q
steps_done+=("python-unit")

section "npm ci tests/e2e/oidc_rp (openid-client)"
node_major="$(node -p 'process.versions.node.split(".")[0]')"
if [ "$node_major" -lt 20 ]; then
    echo "error: openid-client needs Node.js 20 or newer; $(command -v node) is $(node --version)" >&2
    exit 1
fi
(cd "$repo/tests/e2e/oidc_rp" && npm ci --no-audit --no-fund)
steps_done+=("npm")

section "pytest tests/e2e (browser tests)"
target_dir="${CARGO_TARGET_DIR:-target}"
case "$target_dir" in
/*) ;;
*) target_dir="$repo/$target_dir" ;;
esac
export GATEHOUSE_BIN="$target_dir/debug/gatehouse"
if [ ! -x "$GATEHOUSE_BIN" ]; then
    echo "error: $GATEHOUSE_BIN was not built" >&2
    exit 1
fi
set +e
python -m pytest "$repo/tests/e2e" -v
pytest_status=$?
set -e
case "$pytest_status" in
0) ;;
5)
    echo "error: pytest collected no tests in tests/e2e" >&2
    exit 1
    ;;
*) exit "$pytest_status" ;;
esac
steps_done+=("e2e")

#!/usr/bin/env bash
# Run the demo: demo/app.py (an ordinary Streamlit app) behind Gatehouse.
#
#   scripts/demo.sh [GATEHOUSE RUN OPTIONS]     e.g. --listen 0.0.0.0:8501
#
# Uses $GATEHOUSE_BIN when set; otherwise the release binary, built only when
# it is missing or older than a source file (the first build takes about
# 6 minutes on 2 cores). Keeps its database in ./demo-data/, and serves the
# app on http://127.0.0.1:8501 (unless --listen says otherwise). On the first
# run Gatehouse prints a one-time setup link to create the first (admin)
# account. Honours CARGO_TARGET_DIR.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

echo "==> python venv (Streamlit)"
"$repo/scripts/setup-venv.sh"

target_dir="${CARGO_TARGET_DIR:-target}"
case "$target_dir" in
/*) ;;
*) target_dir="$repo/$target_dir" ;;
esac

# Whether $1 is older than anything it is built from.
stale() {
    [ -n "$(find src templates static migrations Cargo.toml Cargo.lock -newer "$1" -print -quit 2>/dev/null)" ]
}

if [ -n "${GATEHOUSE_BIN:-}" ]; then
    if [ ! -x "$GATEHOUSE_BIN" ]; then
        echo "GATEHOUSE_BIN=$GATEHOUSE_BIN is not an executable file" >&2
        exit 2
    fi
    binary="$GATEHOUSE_BIN"
    echo "==> using $binary (GATEHOUSE_BIN)"
else
    binary="$target_dir/release/gatehouse"
    if [ -x "$binary" ] && ! stale "$binary"; then
        echo "==> using $binary (up to date)"
    else
        if [ -x "$binary" ]; then
            echo "==> cargo build --release (sources changed since the last build)"
        else
            echo "==> cargo build --release (the first build takes about 6 minutes on 2 cores)"
        fi
        cargo build --release
    fi
fi

mkdir -p "$repo/demo-data"
export GATEHOUSE_DATABASE__URL="sqlite://demo-data/gatehouse.db"
export PATH="$repo/.venv/bin:$PATH"

echo "==> gatehouse run $* -- streamlit run demo/app.py"
exec "$binary" run "$@" -- streamlit run demo/app.py

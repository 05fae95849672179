#!/usr/bin/env bash
# Run the demo: demo/app.py (an ordinary Streamlit app) behind Gatehouse.
#
#   scripts/demo.sh [GATEHOUSE RUN OPTIONS]     e.g. --listen 0.0.0.0:8501
#
# Builds the release binary, keeps its database in ./demo-data/, and serves
# the app on http://127.0.0.1:8501 (unless --listen says otherwise). On the
# first run Gatehouse prints a one-time setup link to create the first
# (admin) account. Honours CARGO_TARGET_DIR.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

echo "==> python venv (Streamlit)"
"$repo/scripts/setup-venv.sh"

echo "==> cargo build --release"
cargo build --release

target_dir="${CARGO_TARGET_DIR:-target}"
case "$target_dir" in
/*) ;;
*) target_dir="$repo/$target_dir" ;;
esac

mkdir -p "$repo/demo-data"
export GATEHOUSE_DATABASE__URL="sqlite://demo-data/gatehouse.db"
export PATH="$repo/.venv/bin:$PATH"

echo "==> gatehouse run $* -- streamlit run demo/app.py"
exec "$target_dir/release/gatehouse" run "$@" -- streamlit run demo/app.py

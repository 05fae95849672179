#!/usr/bin/env bash
# Create or refresh <repo>/.venv from tests/e2e/requirements.txt, plus the
# streamlit-gatehouse helper package from python/ (installed editable, so
# changes to its code need no reinstall).
#
# Used by scripts/test.sh and scripts/demo.sh; safe to run by hand.
# pip runs only when the requirements, python/pyproject.toml (or the Python
# version) changed since the last successful install, recorded in
# .venv/.requirements.sha256.
# Installs python3-venv with apt-get when Python cannot create a venv.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$repo/.venv"
requirements="$repo/tests/e2e/requirements.txt"
helper="$repo/python"
stamp="$venv/.requirements.sha256"
python="${PYTHON:-python3}"

# shellcheck source=scripts/lib.sh
. "$repo/scripts/lib.sh"

if ! command -v "$python" >/dev/null 2>&1; then
    echo "==> installing python3 (apt-get)"
    as_root apt-get update
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 python3-venv
fi

if ! "$python" -c 'import ensurepip, venv' >/dev/null 2>&1; then
    echo "==> installing python3-venv (apt-get)"
    as_root apt-get update
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3-venv
fi

want="$(
    {
        sha256sum "$requirements" "$helper/pyproject.toml" | cut -d' ' -f1
        "$python" -c 'import sys; print(sys.version)'
    } | sha256sum | cut -d' ' -f1
)"

if [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] \
    && "$venv/bin/python" -c 'import streamlit, playwright, pytest, requests, streamlit_gatehouse' >/dev/null 2>&1; then
    echo "==> .venv is up to date with tests/e2e/requirements.txt and python/"
    exit 0
fi

version='import sys; print(sys.version)'
if [ ! -x "$venv/bin/python" ] \
    || [ "$("$venv/bin/python" -c "$version" 2>/dev/null)" != "$("$python" -c "$version")" ]; then
    echo "==> creating $venv ($("$python" --version))"
    rm -rf "$venv"
    "$python" -m venv "$venv"
fi

echo "==> installing tests/e2e/requirements.txt into .venv"
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
"$venv/bin/python" -m pip install --quiet --requirement "$requirements"
echo "==> installing python/ (streamlit-gatehouse, editable) into .venv"
"$venv/bin/python" -m pip install --quiet --editable "$helper"
echo "$want" >"$stamp"

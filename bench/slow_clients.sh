#!/usr/bin/env bash
# Slow clients (issue 14, item 5): 10,000 connections that announce a 60,000-byte body and never send it,
# and a trickle of one byte every 5 s, against a release Gatehouse, with its RSS. Prints what the server still
# holds each second and a summary per scenario. Not a timed test: nothing fails on a figure.
#
#   bench/slow_clients.sh              # builds the release binary unless GATEHOUSE_BIN is set
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bench="$repo/bench"
# shellcheck source=scripts/lib.sh
. "$repo/scripts/lib.sh"
# shellcheck source=bench/lib.sh
. "$bench/lib.sh"
build_binaries
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
bench_processes_init
read -r PORT_DEFAULT PORT_OPEN <<<"$(free_ports 2)"
unset GATEHOUSE_CONFIG

# Defaults (per-client limit 512), and the per-client limit lifted so only the timeouts act.
start gatehouse-default "$TMP/default.log" env GATEHOUSE_DATABASE__URL="sqlite://$TMP/default.db" \
    GATEHOUSE_LOG__LEVEL=warn "$GATEHOUSE" serve --listen "127.0.0.1:$PORT_DEFAULT"
start gatehouse-open "$TMP/open.log" env GATEHOUSE_DATABASE__URL="sqlite://$TMP/open.db" GATEHOUSE_LOG__LEVEL=warn \
    GATEHOUSE_SERVER__MAX_CONNECTIONS_PER_CLIENT=16384 "$GATEHOUSE" serve --listen "127.0.0.1:$PORT_OPEN"
wait_http "http://127.0.0.1:$PORT_DEFAULT/_gatehouse/health"
wait_http "http://127.0.0.1:$PORT_OPEN/_gatehouse/health"

scenario() {
    local title="$1" port="$2" name="$3"
    shift 3
    log "$title"
    python3 "$bench/slow_clients.py" --port "$port" --pid "$(pid_of "$name")" "$@"
}
scenario "10,000 stalled POST /_gatehouse/login, per-client limit lifted (timeouts only)" "$PORT_OPEN" gatehouse-open \
    --count 10000 --seconds 25
scenario "10,000 stalled POST /_gatehouse/login, defaults (512 per client)" "$PORT_DEFAULT" gatehouse-default \
    --count 10000 --seconds 25
scenario "100 POST /_gatehouse/login trickling one byte every 5 s" "$PORT_OPEN" gatehouse-open \
    --count 100 --trickle 5 --seconds 30

#!/usr/bin/env bash
# What isolating the app costs (issue 14, item 4): two `gatehouse run` instances of the same binary in front
# of the same Streamlit app, one with `[upstream] isolation = "required"` (the app's listener in a private
# network, connections through the keeper's sockets) and one with `"off"`, measured in turns (A B A B A B)
# with wrk on `/_stcore/health` and a 468 KiB JS asset, signed in. Prints each run and the ratio of the
# medians. Not a timed test: nothing fails on a figure.
#
#   bench/isolation.sh          # builds the release binary unless GATEHOUSE_BIN is set
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bench="$repo/bench"
THREADS=2
CONNECTIONS=32
DURATION="${BENCH_DURATION:-10}"
ROUNDS="${BENCH_ROUNDS:-3}"
# shellcheck source=scripts/lib.sh
. "$repo/scripts/lib.sh"
# shellcheck source=bench/lib.sh
. "$bench/lib.sh"
command -v wrk >/dev/null 2>&1 || die "wrk is needed (apt-get install wrk)"
"$repo/scripts/setup-venv.sh" >&2
STREAMLIT="$repo/.venv/bin/streamlit"
build_binaries
bench_processes_init
read -r P_ISOLATED P_SHARED <<<"$(free_ports 2)"
unset GATEHOUSE_CONFIG
BENCH_PASSWORD="bench-password-$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"

start_run() {
    local name="$1" port="$2" isolation="$3"
    printf '%s' "$BENCH_PASSWORD" | (cd "$TMP" && GATEHOUSE_DATABASE__URL="sqlite://$TMP/$name.db" \
        GATEHOUSE_LOG__LEVEL=warn "$GATEHOUSE" users add bench --password-stdin) >"$TMP/$name-users.log" 2>&1 \
        || die "gatehouse users add failed"
    start "$name" "$TMP/$name.log" env HOME="$TMP" STREAMLIT_BROWSER_GATHER_USAGE_STATS=false \
        GATEHOUSE_DATABASE__URL="sqlite://$TMP/$name.db" GATEHOUSE_LOG__LEVEL=warn \
        GATEHOUSE_UPSTREAM__ISOLATION="$isolation" "$GATEHOUSE" run --listen "127.0.0.1:$port" -- \
        "$STREAMLIT" run "$bench/app.py" --browser.gatherUsageStats false --server.fileWatcherType none
}
start_run isolated "$P_ISOLATED" required
start_run shared "$P_SHARED" off
for port in "$P_ISOLATED" "$P_SHARED"; do
    for _ in $(seq 1 900); do
        [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/_gatehouse/health")" = 200 ] && break
        sleep 0.1
    done
done
COOKIE_ISOLATED="$(sign_in "$P_ISOLATED")"
COOKIE_SHARED="$(sign_in "$P_SHARED")"
asset="$(curl -s -H "Cookie: gatehouse_session=$COOKIE_SHARED" "http://127.0.0.1:$P_SHARED/" | grep -o 'static/js/[^"]*\.js' | head -n 1)"
[ -n "$asset" ] || die "no static/js/*.js asset in Streamlit's index.html"

ROWS=()
declare -A RPS P50 P99
declare -A RUNS
for path in "/_stcore/health" "/$asset"; do
    for round in $(seq 1 "$ROUNDS"); do
        measure "iso-$round" "isolated $path" "http://127.0.0.1:$P_ISOLATED$path" -H "Cookie: gatehouse_session=$COOKIE_ISOLATED"
        RUNS[isolated $path]+="${RPS[iso-$round]} "
        measure "shr-$round" "shared $path" "http://127.0.0.1:$P_SHARED$path" -H "Cookie: gatehouse_session=$COOKIE_SHARED"
        RUNS[shared $path]+="${RPS[shr-$round]} "
    done
done
median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
echo
echo "Machine: $(nproc) cores, Linux $(uname -r); wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s, $ROUNDS rounds each, in turns"
for path in "/_stcore/health" "/$asset"; do
    iso="$(printf '%s' "${RUNS[isolated $path]}" | median)"
    shr="$(printf '%s' "${RUNS[shared $path]}" | median)"
    echo "$path: isolated ${RUNS[isolated $path]}req/s (median $iso); shared ${RUNS[shared $path]}req/s (median $shr); isolated/shared $(ratio "$iso" "$shr")"
done

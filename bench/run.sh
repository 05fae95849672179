#!/usr/bin/env bash
# Gatehouse benchmarks side by side with nginx (issue 3). See bench/README.md.
#
#   bench/run.sh                 # install what is missing, build the release binary, run, print one table
#   GATEHOUSE_BIN=path bench/run.sh   # use that binary, skip `cargo build --release`
#
# Installs nginx, wrk and curl from Debian when missing (apt-get, through sudo when not root) and the
# project's venv (Streamlit) with scripts/setup-venv.sh. Every process listens on 127.0.0.1 only, on free
# ports, and lives in a temporary directory; everything the script started is stopped when it exits.
#
# Environment:
#   GATEHOUSE_BIN     a gatehouse binary to use instead of building one
#   CARGO_TARGET_DIR  honoured by the build (default <repo>/target)
#   BENCH_DURATION    seconds per wrk row (default 10, at most 14 so each run stays under 15 s)
#   BENCH_RATE        requests/s of the fixed-rate latency rows (default 500)
#   BENCH_OUT         also write the final table to this file
#   BENCH_KEEP_TMP=1  keep the temporary directory (configs, logs, raw wrk output)
#   BENCH_WS_IDLE     idle WebSockets to hold through Gatehouse (default 10000, capped by the fd limit)
#   BENCH_SESSIONS    sessions in the database for the footprint row (default 100000)
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bench="$repo/bench"

THREADS=2
CONNECTIONS=32
DURATION="${BENCH_DURATION:-10}"
RATE="${BENCH_RATE:-500}"
RATE_CONNECTIONS=4
WS_IDLE="${BENCH_WS_IDLE:-10000}"
SESSIONS="${BENCH_SESSIONS:-100000}"
STORM_CLIENTS=$(( $(nproc) * 2 ))
case "$DURATION" in
    '' | *[!0-9]*) echo "error: BENCH_DURATION must be whole seconds" >&2; exit 2 ;;
esac
if [ "$DURATION" -lt 1 ] || [ "$DURATION" -gt 14 ]; then
    echo "error: BENCH_DURATION must be 1..14 (each wrk run stays under 15 s)" >&2
    exit 2
fi


# shellcheck source=scripts/lib.sh
. "$repo/scripts/lib.sh"
# shellcheck source=bench/lib.sh
. "$bench/lib.sh"

# ---------------------------------------------------------------------------------------------------------
# Tools
# ---------------------------------------------------------------------------------------------------------
missing=()
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx)
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
command -v curl >/dev/null 2>&1 || missing+=(curl)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
if [ "${#missing[@]}" -gt 0 ]; then
    log "installing ${missing[*]} (apt-get)"
    as_root apt-get update
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
fi
NGINX="$(command -v nginx || echo /usr/sbin/nginx)"
"$NGINX" -V 2>&1 | grep -q -- '--with-http_auth_request_module' \
    || die "this nginx lacks the auth_request module (needed for row c)"

log "preparing the venv (scripts/setup-venv.sh)"
"$repo/scripts/setup-venv.sh" >&2
STREAMLIT="$repo/.venv/bin/streamlit"
[ -x "$STREAMLIT" ] || die "$STREAMLIT not found after scripts/setup-venv.sh"

# Gatehouse, and the compiled load generators (WebSocket, fixed rate, sign-in storm, start-up): bench/tool.rs.
build_binaries

# Each idle WebSocket costs Gatehouse two descriptors (browser side and app side); stay under the limit.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
fd_limit="$(ulimit -n)"
if [ "$fd_limit" != unlimited ] && [ $((WS_IDLE * 2 + 200)) -gt "$fd_limit" ]; then
    capped=$(( (fd_limit - 200) / 2 / 100 * 100 ))
    log "holding $capped idle WebSockets instead of $WS_IDLE: the open-file limit is $fd_limit and each needs two"
    WS_IDLE_NOTE="capped from $WS_IDLE by the open-file limit ($fd_limit; two per tunnel)"
    WS_IDLE="$capped"
fi

bench_processes_init

read -r P_SYNTH P_NGINX_B P_NGINX_C P_GH P_ST P_NGINX_ST P_GH_ST P_WS P_GH_WS P_GH_F P_GH_RUN <<<"$(free_ports 11)"

# ---------------------------------------------------------------------------------------------------------
# nginx: one instance for the synthetic upstream, one for the front proxies (rows b, c and Streamlit)
# ---------------------------------------------------------------------------------------------------------
nginx_user=""
if [ "$(id -u)" -eq 0 ]; then
    # As root, workers would otherwise run as nobody and could not write the temp dirs in $TMP.
    nginx_user="user root;"
fi


nginx_conf "$TMP/nginx-synth" "
    server {
        listen 127.0.0.1:$P_SYNTH;
        location / { return 200 \"ok\"; }
    }"

# What nginx copies from Gatehouse's forward-auth answer onto the proxied request (row c).
auth_copy=""
for h in user email name roles logged_in assertion; do
    header="X-Gatehouse-$(echo "$h" | sed -e 's/_in$/-In/' -e 's/^./\U&/')"
    auth_copy+="
            auth_request_set \$gh_$h \$upstream_http_x_gatehouse_$h;
            proxy_set_header $header \$gh_$h;"
done

nginx_conf "$TMP/nginx-front" "
    upstream synth { server 127.0.0.1:$P_SYNTH; keepalive 64; }
    upstream gatehouse_auth { server 127.0.0.1:$P_GH; keepalive 64; }
    upstream streamlit { server 127.0.0.1:$P_ST; keepalive 64; }

    # (b) plain reverse proxy with an upstream keep-alive pool
    server {
        listen 127.0.0.1:$P_NGINX_B;
        location / {
            proxy_pass http://synth;
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
        }
    }

    # (c) auth_request to Gatehouse's forward-auth endpoint, then the same proxying as (b)
    server {
        listen 127.0.0.1:$P_NGINX_C;
        location / {
            auth_request /_gatehouse_forward_auth;$auth_copy
            proxy_pass http://synth;
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
        }
        location = /_gatehouse_forward_auth {
            internal;
            proxy_pass http://gatehouse_auth/_gatehouse/auth;
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
            proxy_pass_request_body off;
            proxy_set_header Content-Length \"\";
            proxy_set_header Cookie \$http_cookie;
        }
    }

    # Streamlit behind nginx, the way people configure it (keep-alive pool)
    server {
        listen 127.0.0.1:$P_NGINX_ST;
        location / {
            proxy_pass http://streamlit;
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
            proxy_set_header Host \$http_host;
        }
    }"

log "starting nginx (synthetic upstream on :$P_SYNTH, front proxies on :$P_NGINX_B :$P_NGINX_C :$P_NGINX_ST)"
start nginx-synth "$TMP/nginx-synth.log" \
    "$NGINX" -p "$TMP/nginx-synth/" -c "$TMP/nginx-synth/nginx.conf" -e "$TMP/nginx-synth/error.log"
start nginx-front "$TMP/nginx-front.log" \
    "$NGINX" -p "$TMP/nginx-front/" -c "$TMP/nginx-front/nginx.conf" -e "$TMP/nginx-front/error.log"
wait_http "http://127.0.0.1:$P_SYNTH/"
wait_http "http://127.0.0.1:$P_NGINX_B/"

# ---------------------------------------------------------------------------------------------------------
# Streamlit
# ---------------------------------------------------------------------------------------------------------
log "starting Streamlit on :$P_ST"
start streamlit "$TMP/streamlit.log" env HOME="$TMP" STREAMLIT_BROWSER_GATHER_USAGE_STATS=false \
    "$STREAMLIT" run "$bench/app.py" --server.headless true --server.port "$P_ST" \
    --server.address 127.0.0.1 --browser.gatherUsageStats false --server.fileWatcherType none

# ---------------------------------------------------------------------------------------------------------
# Gatehouse: one instance in front of the synthetic upstream (rows c, d, e), one in front of Streamlit
# ---------------------------------------------------------------------------------------------------------
unset GATEHOUSE_CONFIG
BENCH_PASSWORD="bench-password-$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"

# start_gatehouse NAME PORT UPSTREAM_PORT : creates a database with user "bench", starts `serve`.
start_gatehouse() {
    local name="$1" port="$2" upstream="$3"
    printf '%s' "$BENCH_PASSWORD" | (cd "$TMP" && GATEHOUSE_DATABASE__URL="sqlite://$TMP/$name.db" \
        GATEHOUSE_LOG__LEVEL=warn "$GATEHOUSE" users add bench --password-stdin) >"$TMP/$name-users.log" 2>&1 \
        || { cat "$TMP/$name-users.log" >&2; die "gatehouse users add failed"; }
    start "$name" "$TMP/$name.log" env GATEHOUSE_DATABASE__URL="sqlite://$TMP/$name.db" GATEHOUSE_LOG__LEVEL=warn \
        "$GATEHOUSE" serve --listen "127.0.0.1:$port" --upstream "http://127.0.0.1:$upstream"
}


# Users for the sign-in storm: one per client, because Gatehouse lets one attempt per login run at a time.
STORM_USERS=""
for ((i = 0; i < STORM_CLIENTS; i++)); do
    printf '%s' "$BENCH_PASSWORD" | (cd "$TMP" && GATEHOUSE_DATABASE__URL="sqlite://$TMP/gatehouse-synth.db" \
        GATEHOUSE_LOG__LEVEL=warn "$GATEHOUSE" users add "storm$i" --password-stdin) >>"$TMP/storm-users.log" 2>&1 \
        || { cat "$TMP/storm-users.log" >&2; die "gatehouse users add failed"; }
    STORM_USERS+="${STORM_USERS:+,}storm$i"
done

log "starting the WebSocket echo upstream on :$P_WS"
start ws-echo "$TMP/ws-echo.log" "$TOOL" ws-echo --listen "127.0.0.1:$P_WS"

# `gatehouse run` with its own Streamlit, isolated (the app's listener in a private network; rows h4, j4).
start_gatehouse_run() {
    local name="$1" port="$2"
    printf '%s' "$BENCH_PASSWORD" | (cd "$TMP" && GATEHOUSE_DATABASE__URL="sqlite://$TMP/$name.db" \
        GATEHOUSE_LOG__LEVEL=warn "$GATEHOUSE" users add bench --password-stdin) >"$TMP/$name-users.log" 2>&1 \
        || { cat "$TMP/$name-users.log" >&2; die "gatehouse users add failed"; }
    start "$name" "$TMP/$name.log" env HOME="$TMP" STREAMLIT_BROWSER_GATHER_USAGE_STATS=false \
        GATEHOUSE_DATABASE__URL="sqlite://$TMP/$name.db" GATEHOUSE_LOG__LEVEL=warn GATEHOUSE_UPSTREAM__ISOLATION=required \
        "$GATEHOUSE" run --listen "127.0.0.1:$port" -- "$STREAMLIT" run "$bench/app.py" \
        --browser.gatherUsageStats false --server.fileWatcherType none
}

log "starting Gatehouse on :$P_GH (upstream :$P_SYNTH), :$P_GH_ST (upstream Streamlit :$P_ST) and :$P_GH_WS (upstream WebSocket echo :$P_WS), and \`gatehouse run\` with its own isolated Streamlit on :$P_GH_RUN"
start_gatehouse gatehouse-synth "$P_GH" "$P_SYNTH"
start_gatehouse gatehouse-streamlit "$P_GH_ST" "$P_ST"
start_gatehouse gatehouse-ws "$P_GH_WS" "$P_WS"
start_gatehouse_run gatehouse-run "$P_GH_RUN"
wait_http "http://127.0.0.1:$P_GH/_gatehouse/health"
wait_http "http://127.0.0.1:$P_GH_ST/_gatehouse/health"
wait_http "http://127.0.0.1:$P_GH_WS/_gatehouse/health"
wait_http "http://127.0.0.1:$P_ST/_stcore/health" 90
for _ in $(seq 1 900); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$P_GH_RUN/_gatehouse/health")" = 200 ] && break
    sleep 0.1
done
COOKIE_SYNTH="$(sign_in "$P_GH")"
COOKIE_ST="$(sign_in "$P_GH_ST")"
COOKIE_WS="$(sign_in "$P_GH_WS")"
COOKIE_RUN="$(sign_in "$P_GH_RUN")"

# ---------------------------------------------------------------------------------------------------------
# Sanity checks: every row answers what it should before it is measured
# ---------------------------------------------------------------------------------------------------------
# expect URL STATUS [BODY] [curl args...]
expect() {
    local url="$1" want="$2" body="$3"
    shift 3
    local out status got
    out="$(curl -s -w '\n%{http_code}' --max-time 5 "$@" "$url" || true)"
    status="${out##*$'\n'}"
    got="${out%$'\n'*}"
    [ "$status" = "$want" ] || die "$url answered $status, expected $want"
    if [ -n "$body" ] && [ "$got" != "$body" ]; then
        die "$url answered a body other than '$body'"
    fi
}
expect "http://127.0.0.1:$P_SYNTH/" 200 ok
expect "http://127.0.0.1:$P_NGINX_B/" 200 ok
expect "http://127.0.0.1:$P_NGINX_C/" 401 ""
expect "http://127.0.0.1:$P_NGINX_C/" 200 ok -H "Cookie: gatehouse_session=$COOKIE_SYNTH"
expect "http://127.0.0.1:$P_GH/_gatehouse/auth" 200 "" -H "Cookie: gatehouse_session=$COOKIE_SYNTH"
expect "http://127.0.0.1:$P_GH/" 200 ok -H "Cookie: gatehouse_session=$COOKIE_SYNTH"
redirect_status="$(curl -s -o /dev/null -w '%{http_code}' -H 'Accept: text/html' "http://127.0.0.1:$P_GH/")"
case "$redirect_status" in 30[1237]) ;; *) die "Gatehouse without a cookie answered $redirect_status, not a redirect" ;; esac

index="$(curl -s "http://127.0.0.1:$P_ST/")"
asset="$(printf '%s' "$index" | grep -o 'static/js/[^"]*\.js' | head -n 1)"
[ -n "$asset" ] || die "no static/js/*.js asset in Streamlit's index.html"
ASSET="/$asset"
asset_bytes="$(curl -s -o /dev/null -w '%{size_download}' "http://127.0.0.1:$P_ST$ASSET")"
expect "http://127.0.0.1:$P_ST/_stcore/health" 200 ok
expect "http://127.0.0.1:$P_NGINX_ST/_stcore/health" 200 ok
expect "http://127.0.0.1:$P_GH_ST/_stcore/health" 200 ok -H "Cookie: gatehouse_session=$COOKIE_ST"
for p in "$P_ST" "$P_NGINX_ST"; do expect "http://127.0.0.1:$p$ASSET" 200 ""; done
expect "http://127.0.0.1:$P_GH_ST$ASSET" 200 "" -H "Cookie: gatehouse_session=$COOKIE_ST"
expect "http://127.0.0.1:$P_GH_RUN/_stcore/health" 200 ok -H "Cookie: gatehouse_session=$COOKIE_RUN"
expect "http://127.0.0.1:$P_GH_RUN$ASSET" 200 "" -H "Cookie: gatehouse_session=$COOKIE_RUN"

# ---------------------------------------------------------------------------------------------------------
# Measurements
# ---------------------------------------------------------------------------------------------------------
ROWS=()   # "id|label|rps|p50_ms|p99_ms|errors|note"
declare -A RPS P50 P99


# fixed_rate ID LABEL URL [-H header]...
declare -A FR_P50 FR_P99
fixed_rate() {
    local id="$1" label="$2" url="$3"
    shift 3
    local out="$TMP/rate-$id.json"
    log "($id) $label at $RATE req/s: $url"
    # Warm-up (not reported), then the measured run.
    timeout -k 2 10 "$TOOL" fixed-rate "$url" --rate "$RATE" --seconds 1 --connections "$RATE_CONNECTIONS" "$@" \
        >/dev/null || die "bench-tool fixed-rate failed for ($id)"
    timeout -k 2 $((DURATION + 10)) "$TOOL" fixed-rate "$url" --rate "$RATE" --seconds "$DURATION" \
        --connections "$RATE_CONNECTIONS" "$@" >"$out" || die "bench-tool fixed-rate failed for ($id)"
    local achieved p50 p99 errors late
    read -r achieved p50 p99 errors late <<<"$(json_fields "$out" achieved_rps p50_ms p99_ms errors late_sends)"
    FR_P50[$id]="$p50"
    FR_P99[$id]="$p99"
    ROWS+=("$id|$label|$achieved (fixed)|$p50|$p99|$errors|late sends: $late")
    printf '    %s req/s, p50 %s ms, p99 %s ms, errors %s, late sends %s\n' "$achieved" "$p50" "$p99" "$errors" "$late" >&2
}


session_synth=(-H "Cookie: gatehouse_session=$COOKIE_SYNTH")
session_st=(-H "Cookie: gatehouse_session=$COOKIE_ST")

load_start="$(cut -d' ' -f1-3 /proc/loadavg)"

measure a "synthetic upstream (nginx \`return 200\`) direct" "http://127.0.0.1:$P_SYNTH/"
measure b "nginx reverse proxy, keep-alive pool" "http://127.0.0.1:$P_NGINX_B/"
measure c "nginx + \`auth_request\` to Gatehouse \`/_gatehouse/auth\`" "http://127.0.0.1:$P_NGINX_C/" \
    "${session_synth[@]}"
measure d "Gatehouse \`serve\`, signed in (session cookie)" "http://127.0.0.1:$P_GH/" "${session_synth[@]}"
measure e "Gatehouse, no cookie (redirect to sign-in)" "http://127.0.0.1:$P_GH/" -H "Accept: text/html"

measure h1 "Streamlit \`/_stcore/health\` direct" "http://127.0.0.1:$P_ST/_stcore/health"
measure h2 "Streamlit \`/_stcore/health\` via nginx keep-alive pool" "http://127.0.0.1:$P_NGINX_ST/_stcore/health"
measure h3 "Streamlit \`/_stcore/health\` via Gatehouse, signed in" "http://127.0.0.1:$P_GH_ST/_stcore/health" \
    "${session_st[@]}"
measure h4 "Streamlit \`/_stcore/health\` via \`gatehouse run\` (app isolated in a private network), signed in" \
    "http://127.0.0.1:$P_GH_RUN/_stcore/health" -H "Cookie: gatehouse_session=$COOKIE_RUN"
asset_label="Streamlit JS asset ($((asset_bytes / 1024)) KiB)"
measure j1 "$asset_label direct" "http://127.0.0.1:$P_ST$ASSET"
measure j2 "$asset_label via nginx keep-alive pool" "http://127.0.0.1:$P_NGINX_ST$ASSET"
measure j3 "$asset_label via Gatehouse, signed in" "http://127.0.0.1:$P_GH_ST$ASSET" "${session_st[@]}"
measure j4 "$asset_label via \`gatehouse run\` (app isolated), signed in" "http://127.0.0.1:$P_GH_RUN$ASSET" \
    -H "Cookie: gatehouse_session=$COOKIE_RUN"

fixed_rate r1 "fixed rate: synthetic upstream direct" "http://127.0.0.1:$P_SYNTH/"
fixed_rate r2 "fixed rate: nginx keep-alive pool" "http://127.0.0.1:$P_NGINX_B/"
fixed_rate r3 "fixed rate: Gatehouse, signed in" "http://127.0.0.1:$P_GH/" "${session_synth[@]}"

# --- WebSocket -------------------------------------------------------------------------------------------
WS_SIZE=1024
declare -A WS_RATE WS_P50 WS_P99
# ws_row ID LABEL MODE CONNECTIONS URL [--cookie C]
ws_row() {
    local id="$1" label="$2" mode="$3" connections="$4" url="$5"
    shift 5
    local out="$TMP/ws-$id.json"
    log "($id) $label: $url"
    timeout -k 2 $((DURATION + 20)) "$TOOL" ws-load "$url" --mode "$mode" --connections "$connections" \
        --seconds "$DURATION" --size "$WS_SIZE" "$@" >"$out" || die "bench-tool ws-load failed for ($id)"
    local rate p50="" p99=""
    if [ "$mode" = echo ]; then
        read -r rate p50 p99 <<<"$(json_fields "$out" messages_per_s p50_ms p99_ms)"
    else
        read -r rate <<<"$(json_fields "$out" messages_per_s)"
    fi
    WS_RATE[$id]="$rate"
    WS_P50[$id]="$p50"
    WS_P99[$id]="$p99"
    ROWS+=("$id|$label|${rate%.*} msg/s|${p50:--}|${p99:--}|0|")
    printf '    %s msg/s %s\n' "$rate" "${p50:+p50 $p50 ms, p99 $p99 ms}" >&2
}
ws_direct="ws://127.0.0.1:$P_WS/"
ws_gatehouse="ws://127.0.0.1:$P_GH_WS/"
ws_cookie=(--cookie "gatehouse_session=$COOKIE_WS")
ws_row w1 "WebSocket stream, $WS_SIZE-byte messages, 4 connections: direct" stream 4 "$ws_direct"
ws_row w2 "WebSocket stream, $WS_SIZE-byte messages, 4 connections: via Gatehouse" stream 4 "$ws_gatehouse" "${ws_cookie[@]}"
ws_row w3 "WebSocket echo round trips, 1 connection: direct" echo 1 "$ws_direct"
ws_row w4 "WebSocket echo round trips, 1 connection: via Gatehouse" echo 1 "$ws_gatehouse" "${ws_cookie[@]}"

# Idle WebSockets held through Gatehouse: its RSS before and while they are open.
gh_ws_pid="$(pid_of gatehouse-ws)"
rss_before="$(rss_kib "$gh_ws_pid")"
log "(i1) opening $WS_IDLE idle WebSockets through Gatehouse"
"$TOOL" ws-idle "$ws_gatehouse" "${ws_cookie[@]}" --count "$WS_IDLE" --hold-seconds 8 \
    >"$TMP/ws-idle.json" 2>"$TMP/ws-idle.err" &
idle_pid=$!
for _ in $(seq 1 600); do
    grep -q ' open$' "$TMP/ws-idle.err" 2>/dev/null && break
    kill -0 "$idle_pid" 2>/dev/null || break
    sleep 0.1
done
sleep 2
rss_idle="$(rss_kib "$gh_ws_pid")"
wait "$idle_pid" || die "bench-tool ws-idle failed: $(cat "$TMP/ws-idle.err")"
read -r ws_opened ws_alive <<<"$(json_fields "$TMP/ws-idle.json" opened alive_after_hold)"
per_conn="$(awk -v a="$rss_idle" -v b="$rss_before" -v n="$ws_opened" 'BEGIN { if (n > 0) printf "%.2f", (a - b) / n; else print "n/a" }')"
ROWS+=("i1|$WS_IDLE idle WebSockets through Gatehouse|$ws_opened open, $ws_alive alive after the hold|-|-|$((WS_IDLE - ws_alive))|Gatehouse RSS $((rss_before / 1024)) MiB before, $((rss_idle / 1024)) MiB with them open: **$per_conn KiB per connection**${WS_IDLE_NOTE:+ ($WS_IDLE_NOTE)}")
printf '    %s open, RSS %s -> %s KiB, %s KiB per connection\n' "$ws_opened" "$rss_before" "$rss_idle" "$per_conn" >&2

# --- Sign-in storm -----------------------------------------------------------------------------------------
log "(h) one password hash with Gatehouse's parameters"
"$TOOL" hash-time --samples 20 >"$TMP/hash-time.json" || die "bench-tool hash-time failed"
read -r hash_ms <<<"$(json_fields "$TMP/hash-time.json" median_ms)"
hash_bound="$(awk -v c="$(nproc)" -v ms="$hash_ms" 'BEGIN { printf "%.1f", c * 1000 / ms }')"
log "(s1) sign-in storm: $STORM_CLIENTS clients on :$P_GH while a probe sends 200 proxied req/s"
timeout -k 2 $((DURATION * 2 + 30)) "$TOOL" sign-in-storm "http://127.0.0.1:$P_GH" --users "$STORM_USERS" \
    --password "$BENCH_PASSWORD" --seconds "$DURATION" --probe-url "http://127.0.0.1:$P_GH/" \
    --probe-cookie "gatehouse_session=$COOKIE_SYNTH" --probe-rate 200 >"$TMP/storm.json" \
    || die "bench-tool sign-in-storm failed"
read -r storm_rate storm_failed quiet_p50 quiet_p99 storm_p50 storm_p99 storm_errors <<<"$(json_fields "$TMP/storm.json" \
    sign_ins_per_s failed probe_quiet.p50_ms probe_quiet.p99_ms probe_storm.p50_ms probe_storm.p99_ms probe_storm.errors)"
ROWS+=("s0|probe alone: 200 req/s to Gatehouse, signed in|200 (fixed)|$quiet_p50|$quiet_p99|0|")
ROWS+=("s1|same probe during a storm of $STORM_CLIENTS clients signing in|200 (fixed)|$storm_p50|$storm_p99|$((storm_failed + storm_errors))|**${storm_rate} sign-ins/s**, $(ratio "$storm_rate" "$hash_bound") of the hash bound ($(nproc) cores / $hash_ms ms per argon2id hash = $hash_bound/s); probe p99 $(ratio "$storm_p99" "$quiet_p99") of its value alone")
printf '    %s sign-ins/s (bound %s/s), probe p99 %s -> %s ms\n' "$storm_rate" "$hash_bound" "$quiet_p99" "$storm_p99" >&2

# --- Footprint ---------------------------------------------------------------------------------------------
# A database with one user and N sessions (plus the one whose cookie the probe sends), made directly with
# SQLite so that it takes seconds; then `first-request` spawns `gatehouse serve` on it and reports the time
# from the spawn to the first proxied 200 and the RSS at that point.
footprint_db() {
    local db="$1" sessions="$2"
    printf '%s' "$BENCH_PASSWORD" | GATEHOUSE_DATABASE__URL="sqlite://$db" GATEHOUSE_LOG__LEVEL=warn \
        "$GATEHOUSE" users add bench --password-stdin >/dev/null 2>&1 || die "gatehouse users add failed"
    python3 - "$db" "$sessions" <<'PY'
import hashlib, secrets, sqlite3, sys, time
db, count = sys.argv[1], int(sys.argv[2])
conn = sqlite3.connect(db)
user = conn.execute("SELECT id FROM users WHERE username = 'bench'").fetchone()[0]
now = int(time.time())
def row(token):
    return (secrets.token_hex(16), hashlib.sha256(token.encode()).hexdigest(), user, now, now, now + 86400, 43200)
cookie = secrets.token_urlsafe(32)
rows = [row(cookie)] + [row(secrets.token_urlsafe(32)) for _ in range(count)]
conn.executemany("INSERT INTO sessions (id, token_hash, user_id, created_at, last_seen_at, expires_at, idle_timeout_secs) VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
conn.commit()
print(cookie)
PY
}
# footprint_row ID LABEL SESSIONS
footprint_row() {
    local id="$1" label="$2" sessions="$3" db="$TMP/footprint-$1.db" cookie
    log "($id) $label"
    cookie="$(footprint_db "$db" "$sessions")"
    timeout -k 2 30 "$TOOL" first-request "http://127.0.0.1:$P_GH_F/" --cookie "gatehouse_session=$cookie" -- \
        env GATEHOUSE_DATABASE__URL="sqlite://$db" GATEHOUSE_LOG__LEVEL=warn "$GATEHOUSE" serve \
        --listen "127.0.0.1:$P_GH_F" --upstream "http://127.0.0.1:$P_SYNTH" >"$TMP/first-$id.json" \
        || die "bench-tool first-request failed for ($id)"
    local ms rss_first rss_idle
    read -r ms rss_first rss_idle <<<"$(json_fields "$TMP/first-$id.json" first_200_ms rss_kib_at_first_request rss_kib_idle)"
    mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
    ROWS+=("$id|$label|-|-|-|0|ready to proxy **$ms ms** after start; idle RSS **$(mib "$rss_idle") MiB** (2 s after the first proxied request; $(mib "$rss_first") MiB at it, while the start-up's background password hash still ran)")
    printf '    first proxied 200 after %s ms, RSS %s KiB then %s KiB idle\n' "$ms" "$rss_first" "$rss_idle" >&2
}
footprint_row f1 "footprint: fresh database (1 session)" 0
footprint_row f2 "footprint: $SESSIONS sessions in the database" "$SESSIONS"

load_end="$(cut -d' ' -f1-3 /proc/loadavg)"

# ---------------------------------------------------------------------------------------------------------
# Table
# ---------------------------------------------------------------------------------------------------------

note_for() {
    case "$1" in
        d) echo "(d)/(b) $(ratio "${RPS[d]}" "${RPS[b]}"), (d)/(c) $(ratio "${RPS[d]}" "${RPS[c]}")" ;;
        h3) echo "Gatehouse/nginx $(ratio "${RPS[h3]}" "${RPS[h2]}")" ;;
        j3) echo "Gatehouse/nginx $(ratio "${RPS[j3]}" "${RPS[j2]}")" ;;
        h4) echo "isolated/not isolated (h4/h3) $(ratio "${RPS[h4]}" "${RPS[h3]}"), Gatehouse/nginx $(ratio "${RPS[h4]}" "${RPS[h2]}")" ;;
        j4) echo "isolated/not isolated (j4/j3) $(ratio "${RPS[j4]}" "${RPS[j3]}"), Gatehouse/nginx $(ratio "${RPS[j4]}" "${RPS[j2]}")" ;;
        r2) echo "added over direct: p50 $(delta "${FR_P50[r2]}" "${FR_P50[r1]}"), p99 $(delta "${FR_P99[r2]}" "${FR_P99[r1]}")" ;;
        r3) echo "added over direct: p50 $(delta "${FR_P50[r3]}" "${FR_P50[r1]}"), p99 $(delta "${FR_P99[r3]}" "${FR_P99[r1]}")" ;;
        w2) echo "via Gatehouse / direct $(ratio "${WS_RATE[w2]}" "${WS_RATE[w1]}")" ;;
        w4) echo "via Gatehouse / direct $(ratio "${WS_RATE[w4]}" "${WS_RATE[w3]}"); added p50 $(delta "${WS_P50[w4]}" "${WS_P50[w3]}"), p99 $(delta "${WS_P99[w4]}" "${WS_P99[w3]}")" ;;
    esac
}

cpu_model="$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
table="$TMP/table.md"
{
    echo "Machine: $(nproc) cores, ${cpu_model:-unknown CPU}, Linux $(uname -r); load average before/after: $load_start / $load_end"
    echo "Versions: $("$GATEHOUSE" --version), $("$NGINX" -v 2>&1 | sed 's/^nginx version: //'), $(wrk -v 2>&1 | head -n 1 | awk '{print $1, $2}'), Streamlit $("$repo/.venv/bin/python" -c 'import streamlit; print(streamlit.__version__)')"
    echo "Load: wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s --latency (keep-alive) for every throughput row; the other rows use bench-tool (bench/tool.rs, Rust): fixed rate over $RATE_CONNECTIONS keep-alive connections, WebSocket stream and echo, idle WebSockets, sign-in storm, start-up. The load generators run on the same cores as the servers they measure."
    echo
    echo "| Row | Path | req/s | p50 (ms) | p99 (ms) | errors | Ratio / note |"
    echo "|---|---|---:|---:|---:|---:|---|"
    for row in "${ROWS[@]}"; do
        IFS='|' read -r id label rps p50 p99 errors note <<<"$row"
        extra="$(note_for "$id")"
        [ -n "$note" ] && extra="${extra:+$extra; }$note"
        echo "| $id | $label | $rps | $p50 | $p99 | $errors | $extra |"
    done
} >"$table"

echo
cat "$table"
if [ -n "${BENCH_OUT:-}" ]; then
    cp "$table" "$BENCH_OUT"
fi

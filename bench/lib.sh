#!/usr/bin/env bash
# Helpers shared by the benchmark scripts (bench/run.sh, bench/postgres.sh); sourced, not run. They use the
# caller's globals where noted: NGINX and nginx_user (nginx_conf), GATEHOUSE and BENCH_PASSWORD (sign_in),
# THREADS, CONNECTIONS, DURATION, ROWS and RPS/P50/P99 (measure).

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------------------------------------------------
# Processes: started in the background, stopped on exit
# ---------------------------------------------------------------------------------------------------------

cleanup() {
    local status=$?
    trap - EXIT INT TERM
    local i pid
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
        pid="${PIDS[$i]}"
        kill -TERM "$pid" 2>/dev/null || true
    done
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
        pid="${PIDS[$i]}"
        for _ in $(seq 1 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            log "${NAMES[$i]} (pid $pid) did not stop; killing it"
            kill -KILL "$pid" 2>/dev/null || true
        fi
        wait "$pid" 2>/dev/null || true
    done
    if [ "$status" -ne 0 ] && [ -d "$TMP" ]; then
        for f in "$TMP"/*.log "$TMP"/*/error.log; do
            [ -s "$f" ] || continue
            printf -- '--- last lines of %s\n' "${f#"$TMP"/}" >&2
            tail -n 15 "$f" >&2
        done
    fi
    if [ "${BENCH_KEEP_TMP:-0}" = 1 ]; then
        log "kept $TMP"
    else
        rm -rf "$TMP"
    fi
    exit "$status"
}
# build_binaries : sets GATEHOUSE (GATEHOUSE_BIN, or a release build honouring CARGO_TARGET_DIR) and TOOL
# (the load generators of bench/tool.rs, always built in release). Uses the caller's $repo.
build_binaries() {
    local target_dir="${CARGO_TARGET_DIR:-target}"
    case "$target_dir" in /*) ;; *) target_dir="$repo/$target_dir" ;; esac
    if [ -n "${GATEHOUSE_BIN:-}" ]; then
        GATEHOUSE="$(cd "$(dirname "$GATEHOUSE_BIN")" && pwd)/$(basename "$GATEHOUSE_BIN")"
        log "using GATEHOUSE_BIN=$GATEHOUSE (no build)"
    else
        log "building Gatehouse (cargo build --release)"
        (cd "$repo" && cargo build --release) >&2
        GATEHOUSE="$target_dir/release/gatehouse"
    fi
    [ -x "$GATEHOUSE" ] || die "no gatehouse binary at $GATEHOUSE"
    log "building bench-tool (cargo build --release --example bench-tool)"
    (cd "$repo" && cargo build --release --example bench-tool) >&2
    TOOL="$target_dir/release/examples/bench-tool"
    [ -x "$TOOL" ] || die "no bench-tool at $TOOL"
}

# bench_processes_init : the temp dir, and stopping everything started when the script exits.
bench_processes_init() {
    TMP="$(mktemp -d "${TMPDIR:-/tmp}/gatehouse-bench.XXXXXX")"
    PIDS=()
    NAMES=()
    trap cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}

# start NAME LOGFILE COMMAND... : run COMMAND in the background (in $TMP), remember its pid.
start() {
    local name="$1" logfile="$2"
    shift 2
    (cd "$TMP" && exec "$@") >"$logfile" 2>&1 &
    PIDS+=("$!")
    NAMES+=("$name")
}

# Free loopback ports, all distinct (bound together, then released).
free_ports() {
    python3 - "$1" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
}

# wait_http URL [SECONDS] : until URL answers (any HTTP status).
wait_http() {
    local url="$1" limit="${2:-30}" i
    for ((i = 0; i < limit * 10; i++)); do
        if curl -s -o /dev/null --max-time 1 "$url"; then
            return 0
        fi
        sleep 0.1
    done
    die "$url did not answer within ${limit}s"
}

# nginx_conf DIR HTTP_BODY : write DIR/nginx.conf with the common main/events/http settings.
nginx_conf() {
    local dir="$1" body="$2"
    mkdir -p "$dir/tmp"
    cat >"$dir/nginx.conf" <<EOF
$nginx_user
worker_processes auto;
daemon off;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    default_type text/plain;
    client_body_temp_path $dir/tmp/body;
    proxy_temp_path $dir/tmp/proxy;
    fastcgi_temp_path $dir/tmp/fastcgi;
    uwsgi_temp_path $dir/tmp/uwsgi;
    scgi_temp_path $dir/tmp/scgi;
$body
}
EOF
    "$NGINX" -t -q -p "$dir/" -c "$dir/nginx.conf" -e "$dir/error.log" \
        || die "nginx rejected $dir/nginx.conf"
}

# sign_in PORT : prints a valid gatehouse_session cookie value for user bench.
sign_in() {
    local port="$1" jar="$TMP/jar-$1.txt" page csrf status session
    local base="http://127.0.0.1:$port"
    page="$(curl -s -c "$jar" -b "$jar" "$base/_gatehouse/login?rd=/")"
    csrf="$(printf '%s' "$page" | sed -n 's/.*name="csrf_token" value="\([^"]*\)".*/\1/p' | head -n 1)"
    [ -n "$csrf" ] || die "no csrf_token on $base/_gatehouse/login"
    status="$(curl -s -o /dev/null -w '%{http_code}' -c "$jar" -b "$jar" -H "Origin: $base" \
        --data-urlencode "username=bench" --data-urlencode "password=$BENCH_PASSWORD" \
        --data-urlencode "csrf_token=$csrf" --data-urlencode "rd=/" "$base/_gatehouse/login")"
    session="$(awk '$6 == "gatehouse_session" { print $7 }' "$jar" | tail -n 1)"
    [ -n "$session" ] || die "sign-in on $base failed (HTTP $status, no gatehouse_session cookie)"
    printf '%s' "$session"
}

# to_ms VALUE : wrk's "1.23ms" / "456.00us" / "1.20s" in milliseconds.
to_ms() {
    awk -v v="$1" 'BEGIN {
        n = v + 0
        if (v ~ /us$/) n = n / 1000; else if (v ~ /ms$/) n = n; else if (v ~ /m$/) n = n * 60000; else if (v ~ /s$/) n = n * 1000
        printf "%.3f", n }'
}

# measure ID LABEL URL [wrk args...]
measure() {
    local id="$1" label="$2" url="$3"
    shift 3
    local out="$TMP/wrk-$id.txt"
    log "($id) $label: $url"
    # Warm-up (not reported): fills connection pools and caches.
    timeout -k 2 5 wrk -t"$THREADS" -c"$CONNECTIONS" -d1s "$@" "$url" >/dev/null 2>&1 || true
    timeout -k 2 15 wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency "$@" "$url" >"$out" 2>&1 \
        || die "wrk failed for ($id): $(cat "$out")"
    local rps p50 p99 non2xx sockerr errors
    rps="$(awk '/^Requests\/sec:/ { printf "%.0f", $2 }' "$out")"
    p50="$(to_ms "$(awk '$1 == "50%" { print $2 }' "$out")")"
    p99="$(to_ms "$(awk '$1 == "99%" { print $2 }' "$out")")"
    non2xx="$(awk '/Non-2xx or 3xx responses:/ { print $NF }' "$out")"
    sockerr="$(awk '/Socket errors:/ { for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+,?$/) n += $i } END { print n + 0 }' "$out")"
    errors=$((${non2xx:-0} + ${sockerr:-0}))
    RPS[$id]="$rps"
    P50[$id]="$p50"
    P99[$id]="$p99"
    ROWS+=("$id|$label|$rps|$p50|$p99|$errors|")
    printf '    %s req/s, p50 %s ms, p99 %s ms, errors %s\n' "$rps" "$p50" "$p99" "$errors" >&2
}

# json_fields FILE KEY... : the values of top-level (or dotted, one level deep) keys, space-separated;
# floats with three decimals.
json_fields() {
    python3 - "$@" <<'PY'
import json, sys
data = json.load(open(sys.argv[1]))
out = []
for key in sys.argv[2:]:
    value = data
    for part in key.split("."):
        value = value[part]
    out.append("%.3f" % value if isinstance(value, float) else str(value))
print(" ".join(out))
PY
}

# ratio A B : A/B as "1.23x"; delta A B : A-B in ms.
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else print "n/a" }'; }
delta() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%+.3f ms", a - b }'; }

# rss_kib PID : resident set size of a process.
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

# pid_of NAME : the pid of a process started with `start`.
pid_of() {
    local i
    for i in "${!NAMES[@]}"; do
        if [ "${NAMES[$i]}" = "$1" ]; then
            echo "${PIDS[$i]}"
            return
        fi
    done
    die "no process named $1"
}

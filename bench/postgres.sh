#!/usr/bin/env bash
# Gatehouse on PostgreSQL against Gatehouse on SQLite, with a big installation in each: 100,000 users and
# 1,000,000 sessions (issue 4). See bench/README.md.
#
#   bench/postgres.sh                 # needs a PostgreSQL server: BENCH_POSTGRES_URL, else 127.0.0.1:5432
#
# Rows, for each backend: session validation (requests each carrying another of 10,000 session cookies, so
# most of them make Gatehouse look the session up), sign-in (the storm of bench/run.sh, with 100,000 users in
# the table), and the proxied-request figures of row (d) (one session, cached). The PostgreSQL data lives in
# a schema of its own, dropped at the end; everything else in a temp dir, as in bench/run.sh.
#
# Environment: GATEHOUSE_BIN, CARGO_TARGET_DIR, BENCH_DURATION (default 10), BENCH_USERS (100000),
# BENCH_SESSIONS (1000000), BENCH_POSTGRES_URL, BENCH_OUT, BENCH_KEEP_TMP=1.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bench="$repo/bench"
# shellcheck source=scripts/lib.sh
. "$repo/scripts/lib.sh"
# shellcheck source=bench/lib.sh
. "$bench/lib.sh"

THREADS=2
CONNECTIONS=32
DURATION="${BENCH_DURATION:-10}"
USERS="${BENCH_USERS:-100000}"
SESSIONS="${BENCH_SESSIONS:-1000000}"
KNOWN_COOKIES=10000
STORM_CLIENTS=$(($(nproc) * 2))
case "$DURATION" in '' | *[!0-9]*) die "BENCH_DURATION must be whole seconds" ;; esac
[ "$DURATION" -ge 1 ] && [ "$DURATION" -le 14 ] || die "BENCH_DURATION must be 1..14"

for tool in nginx wrk curl psql python3; do
    command -v "$tool" >/dev/null 2>&1 || [ -x "/usr/sbin/$tool" ] \
        || die "$tool is missing (bench/run.sh installs nginx, wrk and curl; psql comes with postgresql-client)"
done
NGINX="$(command -v nginx || echo /usr/sbin/nginx)"
PG_SERVER="${BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"
psql "$PG_SERVER" -qtAc 'SELECT 1' >/dev/null 2>&1 || die "no PostgreSQL answers at $PG_SERVER (set BENCH_POSTGRES_URL)"

build_binaries

bench_processes_init
SCHEMA="gh_bench_$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')"
# Keeps the exit status for cleanup, which reports failures.
drop_schema() {
    local status=$?
    psql "$PG_SERVER" -qc "DROP SCHEMA IF EXISTS $SCHEMA CASCADE" >/dev/null 2>&1 || true
    return "$status"
}
trap 'drop_schema; cleanup' EXIT
psql "$PG_SERVER" -qc "CREATE SCHEMA $SCHEMA" >/dev/null
# libpq's `options` parameter, which psql and sqlx both read: every connection uses only this schema.
PG_URL="$PG_SERVER?options=-c%20search_path%3D$SCHEMA"
case "$PG_SERVER" in *\?*) PG_URL="$PG_SERVER&options=-c%20search_path%3D$SCHEMA" ;; esac
SQLITE_URL="sqlite://$TMP/big.db"

nginx_user=""
[ "$(id -u)" -eq 0 ] && nginx_user="user root;"
read -r P_SYNTH P_SQLITE P_PG <<<"$(free_ports 3)"
nginx_conf "$TMP/nginx-synth" "
    server {
        listen 127.0.0.1:$P_SYNTH;
        location / { return 200 \"ok\"; }
    }"
start nginx-synth "$TMP/nginx-synth.log" \
    "$NGINX" -p "$TMP/nginx-synth/" -c "$TMP/nginx-synth/nginx.conf" -e "$TMP/nginx-synth/error.log"
wait_http "http://127.0.0.1:$P_SYNTH/"

# ---------------------------------------------------------------------------------------------------------
# The installation: USERS users with one known password, SESSIONS sessions (the first KNOWN_COOKIES with
# cookies we keep), generated once as CSV and loaded into both databases.
# ---------------------------------------------------------------------------------------------------------
unset GATEHOUSE_CONFIG
BENCH_PASSWORD="bench-password-$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
HASH="$(printf '%s' "$BENCH_PASSWORD" | "$GATEHOUSE" hash)"
for url in "$SQLITE_URL" "$PG_URL"; do
    GATEHOUSE_DATABASE__URL="$url" GATEHOUSE_LOG__LEVEL=warn "$GATEHOUSE" migrate >/dev/null
done
log "generating $USERS users and $SESSIONS sessions"
python3 - "$TMP" "$USERS" "$SESSIONS" "$KNOWN_COOKIES" "$HASH" <<'PY'
import csv, hashlib, os, secrets, sys, time
tmp, users, sessions, known, pw_hash = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
now = int(time.time())
with open(f"{tmp}/users.csv", "w", newline="") as f:
    w = csv.writer(f)
    for i in range(users):
        w.writerow([f"u{i:07d}", f"user{i:07d}", f"user{i:07d}@example.com", f"User {i}", pw_hash, 0, now, now, "", 0])
with open(f"{tmp}/sessions.csv", "w", newline="") as f, open(f"{tmp}/cookies.txt", "w") as cookies:
    w = csv.writer(f)
    for i in range(sessions):
        token = secrets.token_urlsafe(32) if i < known else os.urandom(16).hex()
        if i < known:
            cookies.write(token + "\n")
        digest = hashlib.sha256(token.encode()).hexdigest()
        w.writerow([f"s{i:08d}", digest, f"u{i % users:07d}", now, now, now + 86400, 43200, 0, "", ""])
PY
log "loading them into SQLite"
python3 - "$TMP/big.db" "$TMP" <<'PY'
import csv, sqlite3, sys
db, tmp = sys.argv[1], sys.argv[2]
conn = sqlite3.connect(db)
none = lambda v: None if v == "" else v
with open(f"{tmp}/users.csv") as f:
    conn.executemany("INSERT INTO users VALUES (?,?,?,?,?,?,?,?,?,?)", ([none(v) for v in row] for row in csv.reader(f)))
with open(f"{tmp}/sessions.csv") as f:
    conn.executemany("INSERT INTO sessions VALUES (?,?,?,?,?,?,?,?,?,?)", ([none(v) for v in row] for row in csv.reader(f)))
conn.commit()
PY
log "loading them into PostgreSQL (schema $SCHEMA)"
psql "$PG_URL" -q -v ON_ERROR_STOP=1 <<EOF
\copy users (id, username, email, display_name, password_hash, disabled, created_at, updated_at, last_login_at, login_count) FROM '$TMP/users.csv' WITH (FORMAT csv, NULL '')
\copy sessions (id, token_hash, user_id, created_at, last_seen_at, expires_at, idle_timeout_secs, remember_me, client_ip, user_agent) FROM '$TMP/sessions.csv' WITH (FORMAT csv, NULL '')
ANALYZE;
EOF

start gatehouse-sqlite "$TMP/gatehouse-sqlite.log" env GATEHOUSE_DATABASE__URL="$SQLITE_URL" GATEHOUSE_LOG__LEVEL=warn \
    "$GATEHOUSE" serve --listen "127.0.0.1:$P_SQLITE" --upstream "http://127.0.0.1:$P_SYNTH"
start gatehouse-postgres "$TMP/gatehouse-postgres.log" env GATEHOUSE_DATABASE__URL="$PG_URL" GATEHOUSE_LOG__LEVEL=warn \
    "$GATEHOUSE" serve --listen "127.0.0.1:$P_PG" --upstream "http://127.0.0.1:$P_SYNTH"
wait_http "http://127.0.0.1:$P_SQLITE/_gatehouse/health"
wait_http "http://127.0.0.1:$P_PG/_gatehouse/health"

# ---------------------------------------------------------------------------------------------------------
# Measurements
# ---------------------------------------------------------------------------------------------------------
ROWS=()
declare -A RPS P50 P99 V_RPS S_RATE S_P99
first_cookie="$(head -n 1 "$TMP/cookies.txt")"
storm_users="$(seq 0 $((STORM_CLIENTS - 1)) | awk '{ printf "%suser%07d", (NR > 1 ? "," : ""), $1 }')"
for backend in sqlite postgres; do
    port="$P_SQLITE"
    [ "$backend" = postgres ] && port="$P_PG"
    base="http://127.0.0.1:$port"

    log "($backend) session validation: $KNOWN_COOKIES sessions in turn, 16 connections"
    timeout -k 2 $((DURATION + 10)) "$TOOL" many-sessions "$base/" --cookies "$TMP/cookies.txt" \
        --connections 16 --seconds "$DURATION" >"$TMP/validate-$backend.json" || die "many-sessions failed"
    read -r rps p50 p99 errors <<<"$(json_fields "$TMP/validate-$backend.json" rps p50_ms p99_ms errors)"
    V_RPS[$backend]="$rps"
    ROWS+=("v-$backend|$backend: requests with $KNOWN_COOKIES different sessions (of $SESSIONS)|${rps%.*}|$p50|$p99|$errors|")

    log "($backend) sign-in storm, $STORM_CLIENTS clients, $USERS users in the table"
    timeout -k 2 $((DURATION * 2 + 30)) "$TOOL" sign-in-storm "$base" --users "$storm_users" \
        --password "$BENCH_PASSWORD" --seconds "$DURATION" --probe-url "$base/" \
        --probe-cookie "gatehouse_session=$first_cookie" --probe-rate 200 >"$TMP/storm-$backend.json" \
        || die "sign-in-storm failed"
    read -r rate failed p50 p99 <<<"$(json_fields "$TMP/storm-$backend.json" sign_ins_per_s failed probe_storm.p50_ms probe_storm.p99_ms)"
    S_RATE[$backend]="$rate"
    ROWS+=("s-$backend|$backend: sign-in storm (probe at 200 req/s alongside)|$rate sign-ins/s|$p50|$p99|$failed|probe latency during the storm")

    measure "d-$backend" "$backend: one cached session, proxied (row d of bench/run.sh)" "$base/" \
        -H "Cookie: gatehouse_session=$first_cookie"
done

ROWS+=("ratio|PostgreSQL / SQLite|-|-|-|-|validation $(ratio "${V_RPS[postgres]}" "${V_RPS[sqlite]}"), sign-in $(ratio "${S_RATE[postgres]}" "${S_RATE[sqlite]}"), proxied $(ratio "${RPS[d-postgres]}" "${RPS[d-sqlite]}")")

table="$TMP/table.md"
{
    echo "Machine: $(nproc) cores, $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo), Linux $(uname -r)"
    echo "Versions: $("$GATEHOUSE" --version), PostgreSQL $(psql "$PG_SERVER" -qtAc 'SHOW server_version'), SQLite $(python3 -c 'import sqlite3; print(sqlite3.sqlite_version)') (Python's; Gatehouse bundles its own)"
    echo "Data: $USERS users and $SESSIONS sessions in each database; wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s for the proxied rows. The load generators share the cores."
    echo
    echo "| Row | Path | req/s | p50 (ms) | p99 (ms) | errors | Note |"
    echo "|---|---|---:|---:|---:|---:|---|"
    for row in "${ROWS[@]}"; do
        IFS='|' read -r id label rps p50 p99 errors note <<<"$row"
        echo "| $id | $label | $rps | $p50 | $p99 | $errors | $note |"
    done
} >"$table"
echo
cat "$table"
[ -n "${BENCH_OUT:-}" ] && cp "$table" "$BENCH_OUT"
exit 0

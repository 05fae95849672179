#!/usr/bin/env bash
# Gatehouse's OpenID Connect provider against oidc-provider (npm, the certified provider many Node identity
# servers are built on), on one machine, in one run: how many sign-ins per second each completes for an app
# using `st.login()`-style code flows with a signed-in browser session (single sign-on), and what one costs.
# See bench/README.md.
#
#   bench/oidc.sh
#   GATEHOUSE_BIN=target/release/gatehouse bench/oidc.sh
#
# Rows: code flows (authorization request with the session cookie -> redirect with a code -> token request
# with client_secret_basic and PKCE -> ID token), closed loop over 1 and 8 connections, for each provider;
# then the discovery document and the JWKS with wrk. Gatehouse keeps its codes and tokens in SQLite (durable,
# shared with other processes); oidc-provider runs with its default in-memory storage (lost on restart).
#
# Installs wrk, curl, python3, nodejs and npm from Debian when missing (apt-get, through sudo when not root),
# and oidc-provider from bench/oidc_peer/package-lock.json (npm ci).
#
# Environment: GATEHOUSE_BIN, CARGO_TARGET_DIR, BENCH_DURATION (default 10), BENCH_OUT, BENCH_KEEP_TMP=1.
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
case "$DURATION" in '' | *[!0-9]*) die "BENCH_DURATION must be whole seconds" ;; esac
[ "$DURATION" -ge 1 ] && [ "$DURATION" -le 14 ] || die "BENCH_DURATION must be 1..14"
missing=()
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
command -v curl >/dev/null 2>&1 || missing+=(curl)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)
if [ "${#missing[@]}" -gt 0 ]; then
    log "installing ${missing[*]} (apt-get)"
    as_root apt-get update
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
fi
[ "$(node -p 'process.versions.node.split(".")[0]')" -ge 20 ] || die "oidc-provider needs Node.js 20 or newer"

build_binaries
log "installing oidc-provider (npm ci in bench/oidc_peer)"
(cd "$bench/oidc_peer" && npm ci --no-audit --no-fund --silent) >&2

bench_processes_init
read -r P_GH P_PEER <<<"$(free_ports 2)"
# The apps' redirect URI: never contacted (the benchmark reads the code from the redirect).
REDIRECT="http://127.0.0.1:1/oauth2callback"
SECRET="$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')"
BENCH_PASSWORD="bench-password-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
# RFC 7636's example verifier and its S256 challenge, reused for every flow (each code is still new).
VERIFIER="dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
CHALLENGE="E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
QUERY="response_type=code&client_id=bench&redirect_uri=http%3A%2F%2F127.0.0.1%3A1%2Foauth2callback&scope=openid%20email%20profile&state=bench-state&nonce=bench-nonce&code_challenge=$CHALLENGE&code_challenge_method=S256"

# Gatehouse, provider only, with the client in its configuration and one user.
printf '%s\n' "$SECRET" >"$TMP/client-secret"
cat >"$TMP/gatehouse.toml" <<TOML
[server]
listen = "127.0.0.1:$P_GH"
public_url = "http://127.0.0.1:$P_GH"
[database]
url = "sqlite://$TMP/gatehouse.db"
[log]
level = "warn"
[[oidc.clients]]
client_id = "bench"
client_secret_file = "$TMP/client-secret"
redirect_uris = ["$REDIRECT"]
first_party = true
TOML
printf '%s' "$BENCH_PASSWORD" | "$GATEHOUSE" users add bench --email bench@example.com --name "Bench User" \
    --password-stdin --config "$TMP/gatehouse.toml" >"$TMP/users.log" 2>&1 || { cat "$TMP/users.log" >&2; die "users add failed"; }
start gatehouse "$TMP/gatehouse.log" "$GATEHOUSE" serve --config "$TMP/gatehouse.toml"
start oidc-provider "$TMP/oidc-provider.log" env PORT="$P_PEER" CLIENT_SECRET="$SECRET" REDIRECT_URI="$REDIRECT" \
    node "$bench/oidc_peer/server.mjs"
wait_http "http://127.0.0.1:$P_GH/_gatehouse/health"
wait_http "http://127.0.0.1:$P_PEER/.well-known/openid-configuration"

# A signed-in browser for each: Gatehouse's sign-in form; oidc-provider's interaction (answered at once).
GH_COOKIE="gatehouse_session=$(sign_in "$P_GH")"
peer_jar="$TMP/peer-jar.txt"
curl -s -o /dev/null -c "$peer_jar" -b "$peer_jar" -L --max-redirs 10 "http://127.0.0.1:$P_PEER/auth?$QUERY" || true
PEER_COOKIE="$(sed -n 's/^#HttpOnly_//; /^#/d; /^$/d; p' "$peer_jar" | awk '{ printf "%s%s=%s", sep, $6, $7; sep = "; " }')"
[ -n "$PEER_COOKIE" ] || die "no session cookie from oidc-provider"

GH_AUTHORIZE="http://127.0.0.1:$P_GH/_gatehouse/oidc/authorize?$QUERY"
GH_TOKEN="http://127.0.0.1:$P_GH/_gatehouse/oidc/token"
PEER_AUTHORIZE="http://127.0.0.1:$P_PEER/auth?$QUERY"
PEER_TOKEN="http://127.0.0.1:$P_PEER/token"

ROWS=()
declare -A RPS P50 P99
# flows ID LABEL AUTHORIZE TOKEN COOKIE CONNECTIONS
flows() {
    local id="$1" label="$2" authorize="$3" token="$4" cookie="$5" connections="$6" out="$TMP/flows-$1.json"
    log "$label"
    # A 1 s warm-up, not reported.
    "$TOOL" code-flows "$authorize" --token-url "$token" --cookie "$cookie" --client-id bench --client-secret "$SECRET" \
        --redirect-uri "$REDIRECT" --verifier "$VERIFIER" --seconds 1 --connections "$connections" >/dev/null
    "$TOOL" code-flows "$authorize" --token-url "$token" --cookie "$cookie" --client-id bench --client-secret "$SECRET" \
        --redirect-uri "$REDIRECT" --verifier "$VERIFIER" --seconds "$DURATION" --connections "$connections" >"$out"
    local rate p50 p99 errors
    read -r rate p50 p99 errors <<<"$(json_fields "$out" flows_per_s p50_ms p99_ms errors)"
    rate="${rate%.*}"
    [ "$rate" -gt 0 ] || die "$label: no flow completed ($(cat "$out"))"
    ROWS+=("$id|$label|$rate|$p50|$p99|$errors")
    printf '    %s flows/s, p50 %s ms, p99 %s ms, errors %s\n' "$rate" "$p50" "$p99" "$errors" >&2
}

flows a1 "Gatehouse: code flow, 1 connection" "$GH_AUTHORIZE" "$GH_TOKEN" "$GH_COOKIE" 1
flows b1 "oidc-provider: code flow, 1 connection" "$PEER_AUTHORIZE" "$PEER_TOKEN" "$PEER_COOKIE" 1
flows a8 "Gatehouse: code flow, 8 connections" "$GH_AUTHORIZE" "$GH_TOKEN" "$GH_COOKIE" 8
flows b8 "oidc-provider: code flow, 8 connections" "$PEER_AUTHORIZE" "$PEER_TOKEN" "$PEER_COOKIE" 8
# measure (bench/lib.sh) adds wrk rows: ID|LABEL|RPS|P50|P99|ERRORS|
measure c "Gatehouse: discovery document" "http://127.0.0.1:$P_GH/_gatehouse/.well-known/openid-configuration"
measure d "oidc-provider: discovery document" "http://127.0.0.1:$P_PEER/.well-known/openid-configuration"
measure e "Gatehouse: JWKS" "http://127.0.0.1:$P_GH/_gatehouse/oidc/jwks"
measure f "oidc-provider: JWKS" "http://127.0.0.1:$P_PEER/jwks"

value_of() { # value_of ID FIELD(3=rate,4=p50,5=p99)
    local row
    for row in "${ROWS[@]}"; do
        if [ "${row%%|*}" = "$1" ]; then
            printf '%s' "$row" | cut -d'|' -f"$2"
            return
        fi
    done
}

{
    printf '## Gatehouse OpenID Connect provider vs oidc-provider %s (%s cores, %s; %s s per row)\n\n' \
        "$(cd "$bench/oidc_peer" && node -p 'require("./node_modules/oidc-provider/package.json").version')" \
        "$(nproc)" "$(node --version)" "$DURATION"
    printf '| row | what | per s | p50 ms | p99 ms | errors |\n|---|---|---|---|---|---|\n'
    for row in "${ROWS[@]}"; do
        IFS='|' read -r id label rate p50 p99 errors _ <<<"$row"
        printf '| %s | %s | %s | %s | %s | %s |\n' "$id" "$label" "$rate" "$p50" "$p99" "$errors"
    done
    printf '\nGatehouse / oidc-provider: code flows %s (1 connection), %s (8 connections); discovery %s; JWKS %s.\n' \
        "$(ratio "$(value_of a1 3)" "$(value_of b1 3)")" "$(ratio "$(value_of a8 3)" "$(value_of b8 3)")" \
        "$(ratio "$(value_of c 3)" "$(value_of d 3)")" "$(ratio "$(value_of e 3)" "$(value_of f 3)")"
    printf 'Code flows are sign-ins per second (authorization request + token request); discovery and JWKS are wrk -t%s -c%s requests per second.\n' \
        "$THREADS" "$CONNECTIONS"
} | tee "${BENCH_OUT:-/dev/null}"

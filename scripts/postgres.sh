#!/usr/bin/env bash
# PostgreSQL for the test suite, sourced by scripts/test.sh. Sets GATEHOUSE_TEST_POSTGRES_URL:
#   1. as given, when it is already set;
#   2. to the server on 127.0.0.1:5432 when one answers (user postgres, database test, else postgres);
#   3. to a throw-away cluster in a temp dir, started with Debian's postgresql package when it is installed
#      and stopped when the calling script exits;
#   4. else leaves it unset and says loudly that the PostgreSQL tests will be skipped. With
#      GATEHOUSE_REQUIRE_POSTGRES=1 (set by .ci/run) the tests then fail instead.

# pg_answers URL : whether a query over URL works.
pg_answers() {
    psql "$1" -qtAc 'SELECT 1' >/dev/null 2>&1
}

postgres_for_tests() {
    if [ -n "${GATEHOUSE_TEST_POSTGRES_URL:-}" ]; then
        echo "PostgreSQL: GATEHOUSE_TEST_POSTGRES_URL is set"
        return 0
    fi
    if command -v psql >/dev/null 2>&1; then
        local url
        for url in postgres://postgres@127.0.0.1:5432/test postgres://postgres@127.0.0.1:5432/postgres; do
            if pg_answers "$url"; then
                export GATEHOUSE_TEST_POSTGRES_URL="$url"
                echo "PostgreSQL: using the server on 127.0.0.1:5432 ($url)"
                return 0
            fi
        done
    fi
    local bin
    bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
    if [ -n "$bin" ] && [ -x "$bin/initdb" ]; then
        start_throwaway_cluster "$bin"
        return 0
    fi
    echo
    echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
    echo "!! No PostgreSQL: nothing answers on 127.0.0.1:5432 and Debian's postgresql is not     !!"
    echo "!! installed. The PostgreSQL tests will be SKIPPED (each prints SKIPPED).              !!"
    echo "!! Install it (apt-get install postgresql) or set GATEHOUSE_TEST_POSTGRES_URL.          !!"
    echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
    echo
}

# start_throwaway_cluster BIN_DIR : initdb + pg_ctl start on a free loopback port, in a temp dir.
start_throwaway_cluster() {
    local bin="$1" dir port run=()
    dir="$(mktemp -d "${TMPDIR:-/tmp}/gatehouse-pg.XXXXXX")"
    port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    if [ "$(id -u)" -eq 0 ]; then
        # initdb refuses to run as root; the Debian package creates the postgres user.
        chown postgres "$dir"
        run=(runuser -u postgres --)
    fi
    "${run[@]}" "$bin/initdb" -D "$dir/data" -A trust -U postgres >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log" >&2; return 1; }
    "${run[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
        -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null \
        || { cat "$dir/server.log" >&2; return 1; }
    PG_THROWAWAY=("${run[@]}" "$bin/pg_ctl" -D "$dir/data" -m immediate stop)
    PG_THROWAWAY_DIR="$dir"
    export GATEHOUSE_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$port/postgres"
    echo "PostgreSQL: started a throw-away cluster on 127.0.0.1:$port ($dir)"
}

# stop_throwaway_cluster : stops and deletes the cluster start_throwaway_cluster made, if any.
stop_throwaway_cluster() {
    if [ -n "${PG_THROWAWAY_DIR:-}" ]; then
        "${PG_THROWAWAY[@]}" >/dev/null 2>&1 || true
        rm -rf "$PG_THROWAWAY_DIR"
        PG_THROWAWAY_DIR=""
    fi
}

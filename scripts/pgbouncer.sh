#!/usr/bin/env bash
# A PgBouncer of our own, in transaction pooling mode, in front of the PostgreSQL server on
# 127.0.0.1:5432 (or $PGBOUNCER_SERVER_HOST:$PGBOUNCER_SERVER_PORT), for tests and benchmarks.
# It never touches a system PgBouncer: its own config, auth file, log and pid live in
# $PGBOUNCER_DIR (/tmp/jalon-pgbouncer-<port> by default) and it listens on 127.0.0.1:<port>.
#
#   scripts/pgbouncer.sh start   write the config and start it (daemonized; a no-op if running)
#   scripts/pgbouncer.sh stop    stop it (SIGINT: safe shutdown) and remove its directory
#   scripts/pgbouncer.sh url [USER [DATABASE]]
#                                print the URL to connect through it (postgres and postgres by
#                                default), with ?statement_cache_size=0 when PgBouncer is
#                                older than 1.21
#
# Port: $PGBOUNCER_PORT, 6440 by default. Every database reaches the server through the `*`
# wildcard entry (so a test run's jalon_test_<pid> needs nothing more). Authentication is
# `trust`, as on the server it fronts; PgBouncer still wants every user listed in its auth
# file: postgres, jalon_app, $JALON_DB_RUNTIME_ROLE and $PGBOUNCER_USERS (space-separated).
#
# Prepared statements: PgBouncer tracks protocol-level prepared statements in transaction
# mode from 1.21 on (`max_prepared_statements`), which this script then sets. Debian bookworm
# ships 1.18, which has no such setting: there the client must not keep named prepared
# statements, and `url` says so with asyncpg's statement_cache_size=0 (core.database.configure
# passes it to the pool). See docs/scaling.md, "PgBouncer".
#
# Needs the pgbouncer binary (Debian's `pgbouncer`, installed by scripts/install-system.sh).
# Run as root, it drops to the `postgres` system user (PgBouncer refuses to run as root).
set -euo pipefail

PORT=${PGBOUNCER_PORT:-6440}
DIR=${PGBOUNCER_DIR:-${TMPDIR:-/tmp}/jalon-pgbouncer-$PORT}
SERVER_HOST=${PGBOUNCER_SERVER_HOST:-127.0.0.1}
SERVER_PORT=${PGBOUNCER_SERVER_PORT:-5432}
POOL_SIZE=${PGBOUNCER_POOL_SIZE:-20}
PREPARED=${PGBOUNCER_MAX_PREPARED_STATEMENTS:-200}
BIN=${PGBOUNCER_BIN:-$(command -v pgbouncer || echo /usr/sbin/pgbouncer)}

version() { # the binary's version as one comparable number: 1.18.0 -> 11800
    "$BIN" --version | awk 'NR == 1 { split($2, v, "."); print v[1] * 10000 + v[2] * 100 + v[3] }'
}

tracks_prepared() { [ "$(version)" -ge 12100 ]; }

running() { [ -f "$DIR/pgbouncer.pid" ] && kill -0 "$(cat "$DIR/pgbouncer.pid")" 2>/dev/null; }

start() {
    running && return 0
    mkdir -p "$DIR"
    local users=(postgres jalon_app ${JALON_DB_RUNTIME_ROLE:-} ${PGBOUNCER_USERS:-})
    : >"$DIR/userlist.txt"
    for user in $(printf '%s\n' "${users[@]}" | sort -u); do
        printf '"%s" ""\n' "$user" >>"$DIR/userlist.txt"
    done
    local prepared="; max_prepared_statements: needs PgBouncer 1.21 (this one: $("$BIN" --version | head -1))"
    if tracks_prepared; then prepared="max_prepared_statements = $PREPARED"; fi
    cat >"$DIR/pgbouncer.ini" <<INI
[databases]
* = host=$SERVER_HOST port=$SERVER_PORT

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $PORT
unix_socket_dir =
auth_type = trust
auth_file = $DIR/userlist.txt
admin_users = postgres
pool_mode = transaction
$prepared
default_pool_size = $POOL_SIZE
max_client_conn = 1000
; asyncpg and psql send nothing else PgBouncer would refuse; JDBC clients send this one
ignore_startup_parameters = extra_float_digits
server_lifetime = 3600
logfile = $DIR/pgbouncer.log
pidfile = $DIR/pgbouncer.pid
INI
    local as=()
    if [ "$(id -u)" = 0 ]; then
        chown -R postgres:postgres "$DIR"
        as=(-u postgres)
    fi
    "$BIN" -d -q "${as[@]}" "$DIR/pgbouncer.ini"
    for _ in $(seq 50); do
        running && (echo >"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
        sleep 0.1
    done
    if ! running; then
        echo "PgBouncer did not start; its log:" >&2
        cat "$DIR/pgbouncer.log" >&2 || true
        exit 1
    fi
    echo "$("$BIN" --version | head -1) on 127.0.0.1:$PORT, transaction pooling, to $SERVER_HOST:$SERVER_PORT ($DIR)" >&2
}

stop() {
    if running; then
        local pid
        pid=$(cat "$DIR/pgbouncer.pid")
        kill -INT "$pid"
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
    rm -rf "$DIR"
}

url() {
    local query=""
    tracks_prepared || query="?statement_cache_size=0"
    echo "postgresql://${1:-postgres}@127.0.0.1:$PORT/${2:-postgres}$query"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    url) url "${@:2}" ;;
    *) echo "usage: $0 start|stop|url [USER [DATABASE]]" >&2; exit 2 ;;
esac

#!/usr/bin/env bash
# A local Citus cluster for tests and rehearsals: a coordinator and two workers, each its own
# PostgreSQL server on 127.0.0.1 (trust authentication, durability off: test data).
#
#   scripts/citus-cluster.sh start    create (first time) and start the three servers, join them
#   scripts/citus-cluster.sh stop     stop them (the data directories stay, in $CITUS_DIR:
#                                     /tmp/jalon-citus by default, outside the clone, so that
#                                     the `postgres` user can reach it wherever the clone is)
#   scripts/citus-cluster.sh url      print the coordinator's owner URL
#   scripts/citus-cluster.sh workers  print the workers' owner URLs, comma-separated
#
# Needs PostgreSQL's server binaries (pg_config --bindir, or /usr/lib/postgresql/15/bin) and the
# Citus extension installed for them (Debian's postgresql-15-citus, or built from source: see
# .ci/run). Run as root, the servers run as the `postgres` system user.
set -euo pipefail

cd "$(dirname "$0")/.."
CITUS_DIR=${CITUS_DIR:-${TMPDIR:-/tmp}/jalon-citus}
COORDINATOR_PORT=${CITUS_COORDINATOR_PORT:-9700}
WORKER_PORTS=${CITUS_WORKER_PORTS:-"9701 9702"}
PGBIN=${PGBIN:-$(pg_config --bindir 2>/dev/null || echo /usr/lib/postgresql/15/bin)}
SUPERUSER=postgres

as_owner() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

node_dir() { echo "$CITUS_DIR/node-$1"; }

sql() { # port, database, statement
    PGOPTIONS="-c client_min_messages=warning" as_owner "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$1" -U "$SUPERUSER" -d "$2" -c "$3"
}

init_node() {
    local port=$1 dir
    dir=$(node_dir "$port")
    [ -f "$dir/PG_VERSION" ] && return 0
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown -R postgres:postgres "$CITUS_DIR"
    as_owner "$PGBIN/initdb" -D "$dir" -U "$SUPERUSER" --auth=trust --encoding=UTF8 \
        --locale=C.UTF-8 >/dev/null
    cat >>"$dir/postgresql.conf" <<CONF
shared_preload_libraries = 'citus'
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
max_connections = 300
fsync = off
synchronous_commit = off
full_page_writes = off
citus.propagate_set_commands = 'local'
citus.enable_create_database_propagation = on
# Citus's default, sslmode=require between nodes, breaks the cluster as soon as TLS is off on
# one of them (as here); the nodes use TLS when a node offers it.
citus.node_conninfo = 'sslmode=prefer'
CONF
    echo "host all all 127.0.0.1/32 trust" >"$dir/pg_hba.conf"
    echo "local all all trust" >>"$dir/pg_hba.conf"
}

start_node() {
    local port=$1 dir
    dir=$(node_dir "$port")
    if as_owner "$PGBIN/pg_ctl" -D "$dir" status >/dev/null 2>&1; then return 0; fi
    as_owner "$PGBIN/pg_ctl" -D "$dir" -l "$dir/server.log" -w -t 60 start >/dev/null
}

start() {
    mkdir -p "$CITUS_DIR"
    for port in $COORDINATOR_PORT $WORKER_PORTS; do
        init_node "$port"
        start_node "$port"
        sql "$port" postgres "CREATE EXTENSION IF NOT EXISTS citus"
    done
    sql "$COORDINATOR_PORT" postgres \
        "SELECT citus_set_coordinator_host('127.0.0.1', $COORDINATOR_PORT)" >/dev/null
    for port in $WORKER_PORTS; do
        sql "$COORDINATOR_PORT" postgres "SELECT citus_add_node('127.0.0.1', $port)" >/dev/null
    done
    echo "Citus: coordinator 127.0.0.1:$COORDINATOR_PORT, workers $WORKER_PORTS ($CITUS_DIR)"
}

stop() {
    for port in $WORKER_PORTS $COORDINATOR_PORT; do
        local dir
        dir=$(node_dir "$port")
        [ -f "$dir/PG_VERSION" ] || continue
        as_owner "$PGBIN/pg_ctl" -D "$dir" -m fast -w stop >/dev/null 2>&1 || true
    done
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    url) echo "postgresql://$SUPERUSER@127.0.0.1:$COORDINATOR_PORT/postgres" ;;
    workers)
        urls=()
        for port in $WORKER_PORTS; do urls+=("postgresql://$SUPERUSER@127.0.0.1:$port/postgres"); done
        (IFS=,; echo "${urls[*]}")
        ;;
    *) echo "usage: $0 start|stop|url|workers" >&2; exit 2 ;;
esac

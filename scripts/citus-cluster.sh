#!/usr/bin/env bash
# A Citus cluster on this machine for the Citus tests and figures (see README,
# "Scaling out"): a coordinator and two workers, each its own PostgreSQL server with
# citus preloaded, in $CITUS_DIR (default ./citus-cluster) on ports $CITUS_PORT (default
# 9700: coordinator) and the two after it (workers). Needs PostgreSQL's server programs
# and the Citus extension installed. Not part of CI, which has no Citus.
#
#   scripts/citus-cluster.sh start       # create on first use, start, print the test URL
#   scripts/citus-cluster.sh db NAME     # a database with Citus and the workers, its URL
#   scripts/citus-cluster.sh url [NAME]  # a database's URL (default: the tests' one)
#   scripts/citus-cluster.sh stop
#   LOGCTL_TEST_CITUS_URL=$(scripts/citus-cluster.sh url) cargo test --test citus
#
# As root the servers run as the user postgres (PostgreSQL refuses root), so $CITUS_DIR
# must be a directory postgres can enter.
set -euo pipefail
dir=$(realpath -m "${CITUS_DIR:-citus-cluster}")
port=${CITUS_PORT:-9700}
bin=$(pg_config --bindir 2>/dev/null || ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
nodes=(coord w1 w2)

as_owner() {
    if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

psql_on() { # port, sql
    as_owner "$bin/psql" -X -q -v ON_ERROR_STOP=1 -h "$dir" -p "$1" -d postgres -c "$2"
}

url() { echo "postgresql://postgres@localhost:$port/${1:-logctl_citus_test}?host=$dir"; }

# A database of that name on every node, with the extension in each (Citus does not
# create databases on the workers), the coordinator's workers added by socket path.
database() {
    local name=$1 exists
    exists=$(as_owner "$bin/psql" -X -A -t -h "$dir" -p "$port" -d postgres \
        -c "SELECT 1 FROM pg_database WHERE datname = '$name'")
    if [ -z "$exists" ]; then
        for i in "${!nodes[@]}"; do
            psql_on $((port + i)) "CREATE DATABASE $name"
            as_owner "$bin/psql" -X -q -v ON_ERROR_STOP=1 -h "$dir" -p $((port + i)) \
                -d "$name" -c "CREATE EXTENSION citus"
        done
        as_owner "$bin/psql" -X -q -v ON_ERROR_STOP=1 -h "$dir" -p "$port" -d "$name" \
            -c "SELECT citus_set_coordinator_host('$dir', $port)" \
            -c "SELECT citus_add_node('$dir', $((port + 1)))" \
            -c "SELECT citus_add_node('$dir', $((port + 2)))" >/dev/null
    fi
    url "$name"
}

start() {
    mkdir -p "$dir"
    [ "$(id -u)" -eq 0 ] && chown postgres: "$dir"
    for i in "${!nodes[@]}"; do
        local node=${nodes[$i]} p=$((port + i))
        if [ ! -d "$dir/$node" ]; then
            as_owner "$bin/initdb" -D "$dir/$node" -U postgres --auth=trust >/dev/null
            cat >>"$dir/$node/postgresql.conf" <<CONF
shared_preload_libraries = 'citus'
listen_addresses = ''
unix_socket_directories = '$dir'
port = $p
CONF
        fi
        as_owner "$bin/pg_ctl" -D "$dir/$node" -l "$dir/$node.log" -w status >/dev/null ||
            as_owner "$bin/pg_ctl" -D "$dir/$node" -l "$dir/$node.log" -w start >/dev/null
    done
    database logctl_citus_test
}

stop() {
    for node in "${nodes[@]}"; do
        [ -d "$dir/$node" ] && as_owner "$bin/pg_ctl" -D "$dir/$node" -w -m fast stop >/dev/null || true
    done
}

case "${1:-}" in
start) start ;;
stop) stop ;;
db) database "${2:?a database name}" ;;
url) url "${2:-}" ;;
*) echo "usage: $0 start|db NAME|url [NAME]|stop" >&2; exit 2 ;;
esac

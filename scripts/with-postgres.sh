#!/usr/bin/env bash
# Run a command against a throwaway PostgreSQL cluster, e.g.
#     scripts/with-postgres.sh .venv/bin/pytest
# Uses Debian's `postgresql` package (initdb/pg_ctl); the cluster lives in a temp
# directory, listens on 127.0.0.1 only, and is stopped and deleted on exit. As root the
# server runs as the `postgres` user, since initdb refuses to run as root.
set -euo pipefail

pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
if [ -z "$pg_bin" ] || [ ! -x "$pg_bin/initdb" ]; then
    echo "PostgreSQL server not found: apt-get install -y postgresql" >&2
    exit 1
fi

workdir=$(mktemp -d /tmp/signalements-pg.XXXXXX)
port=${PGPORT_TEST:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}

as_owner() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

if [ "$(id -u)" = 0 ]; then chown postgres "$workdir"; fi

cleanup() {
    as_owner "$pg_bin/pg_ctl" -D "$workdir/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$workdir"
}
trap cleanup EXIT

as_owner "$pg_bin/initdb" -D "$workdir/data" -U postgres -A trust -E UTF8 --no-sync >/dev/null
# Durability is pointless for a throwaway test cluster: trade it for speed.
as_owner "$pg_bin/pg_ctl" -D "$workdir/data" -l "$workdir/server.log" -w -o \
    "-c listen_addresses=127.0.0.1 -p $port -k $workdir -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
    start >/dev/null
echo "PostgreSQL $("$pg_bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port" >&2

export DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres"
"$@"

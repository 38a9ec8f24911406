#!/usr/bin/env bash
# Run a command beside a real Chroma server and a real PostgreSQL server, both on loopback on
# free ports, in a temporary directory; both are stopped (and the directory removed) after it.
#
#   bash scripts/with-servers.sh COMMAND [ARGS...]
#
# The command sees MEMES_TEST_CHROMA_URL and MEMES_TEST_RECORDS_URL (the test suite runs its
# store and CLI tests against them as well as against the embedded default). Needs .venv (for
# `chroma`) and PostgreSQL's server programs (scripts/setup.sh installs Debian's `postgresql`).
set -euo pipefail
cd "$(dirname "$0")/.."

pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
if [ -z "$pg_bin" ] || [ ! -x "$pg_bin/initdb" ]; then
    echo "with-servers: PostgreSQL's server programs are missing (apt-get install postgresql);" \
         "running without servers: their tests are skipped" >&2
    exec "$@"
fi

work=$(mktemp -d /tmp/memes-servers.XXXXXX)
chmod 755 "$work"
free_port() {
    .venv/bin/python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
as_postgres() {  # PostgreSQL refuses to run as root
    if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
chroma_pid=""
cleanup() {
    [ -n "$chroma_pid" ] && kill "$chroma_pid" 2>/dev/null && wait "$chroma_pid" 2>/dev/null
    [ -f "$work/pg/postmaster.pid" ] && as_postgres "$pg_bin/pg_ctl" -D "$work/pg" -m immediate stop >/dev/null 2>&1
    rm -rf "$work"
}
trap cleanup EXIT

mkdir "$work/pg" "$work/pglog"
if [ "$(id -u)" -eq 0 ]; then chown postgres "$work/pg" "$work/pglog"; fi
pg_port=$(free_port)
as_postgres "$pg_bin/initdb" -D "$work/pg" -U memes -A trust --no-sync >"$work/initdb.log" 2>&1 \
    || { cat "$work/initdb.log" >&2; exit 1; }
as_postgres "$pg_bin/pg_ctl" -D "$work/pg" -l "$work/pglog/pg.log" -w \
    -o "-p $pg_port -k $work/pg -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200" \
    start >/dev/null || { cat "$work/pglog/pg.log" >&2; exit 1; }

chroma_port=$(free_port)
.venv/bin/chroma run --path "$work/chroma" --host 127.0.0.1 --port "$chroma_port" >"$work/chroma.log" 2>&1 &
chroma_pid=$!
for _ in $(seq 1 100); do
    if .venv/bin/python -c "import urllib.request as u; u.urlopen('http://127.0.0.1:$chroma_port/api/v2/heartbeat', timeout=1)" 2>/dev/null; then
        break
    fi
    sleep 0.2
done

export MEMES_TEST_CHROMA_URL="http://127.0.0.1:$chroma_port"
export MEMES_TEST_RECORDS_URL="postgresql://memes@127.0.0.1:$pg_port/postgres"
echo "with-servers: Chroma at $MEMES_TEST_CHROMA_URL, PostgreSQL at $MEMES_TEST_RECORDS_URL" >&2
set +e
"$@"
status=$?
set -e
exit "$status"

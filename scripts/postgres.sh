#!/usr/bin/env bash
# A PostgreSQL server for the jobs tests (tests/jobs) and for trying a team job store locally:
# Debian's postgresql package, a throw-away data directory, 127.0.0.1 only. No systemd needed.
#
#   scripts/postgres.sh start    # initdb (first time), start, create the login role; idempotent
#   scripts/postgres.sh stop
#   scripts/postgres.sh status
#   scripts/postgres.sh url      # postgresql://ita_vc@127.0.0.1:54329/ita_vc (password: ita_vc)
#
# Environment: ITA_VC_PG_DIR (default /tmp/ita-vc-pg), ITA_VC_PG_PORT (default 54329).
# PostgreSQL refuses to run as root: as root, the server runs as the `postgres` user.
set -euo pipefail

DIR="${ITA_VC_PG_DIR:-/tmp/ita-vc-pg}"
PORT="${ITA_VC_PG_PORT:-54329}"
DATA="$DIR/data"
SOCKETS="$DIR/sockets"
LOG="$DIR/server.log"
ROLE=ita_vc
PASSWORD=ita_vc

bindir() {
    local found
    if command -v pg_config >/dev/null 2>&1 && [ -x "$(pg_config --bindir)/initdb" ]; then
        pg_config --bindir
        return
    fi
    found=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
    if [ -z "$found" ] || [ ! -x "$found/initdb" ]; then
        echo "postgres.sh: PostgreSQL's server binaries are missing: apt-get install postgresql" >&2
        exit 1
    fi
    echo "$found"
}

as_owner() {  # run a command as the data directory's owner (postgres when we are root)
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

running() {
    [ -f "$DATA/postmaster.pid" ] && as_owner "$BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1
}

start() {
    BIN=$(bindir)
    if [ "$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1; then
        useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
    fi
    mkdir -p "$DIR" "$SOCKETS"
    if [ "$(id -u)" = 0 ]; then chown postgres "$DIR" "$SOCKETS"; fi
    if running; then
        echo "postgres.sh: running on 127.0.0.1:$PORT ($DATA)"
    else
        if [ ! -f "$DATA/PG_VERSION" ]; then
            local pwfile
            pwfile=$(mktemp)
            echo "$PASSWORD" >"$pwfile"
            chmod 644 "$pwfile"
            as_owner "$BIN/initdb" -D "$DATA" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
                --pwfile="$pwfile" -E UTF8 --no-locale >/dev/null
            rm -f "$pwfile"
        fi
        as_owner "$BIN/pg_ctl" -D "$DATA" -l "$LOG" -w -t 60 \
            -o "-c listen_addresses=127.0.0.1 -p $PORT -k $SOCKETS -c fsync=off -c max_connections=200" \
            start >/dev/null || { cat "$LOG" >&2; exit 1; }
    fi
    as_owner psql -h "$SOCKETS" -p "$PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 -q <<SQL
DO \$\$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$ROLE') THEN
    CREATE ROLE $ROLE LOGIN CREATEDB PASSWORD '$PASSWORD';
  END IF;
END \$\$;
SELECT 'CREATE DATABASE $ROLE OWNER $ROLE' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '$ROLE')\gexec
SQL
    echo "postgres.sh: ready on 127.0.0.1:$PORT ($DATA); database and login $ROLE, PGPASSWORD=$PASSWORD"
}

stop() {
    BIN=$(bindir)
    if running; then
        as_owner "$BIN/pg_ctl" -D "$DATA" -m fast -w stop >/dev/null
        echo "postgres.sh: stopped"
    else
        echo "postgres.sh: not running"
    fi
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) BIN=$(bindir); if running; then echo "running on 127.0.0.1:$PORT"; else echo "not running"; exit 3; fi ;;
    url) echo "postgresql://$ROLE@127.0.0.1:$PORT/$ROLE" ;;
    *) echo "usage: $0 start|stop|status|url" >&2; exit 2 ;;
esac

#!/usr/bin/env bash
# Stop a cluster started by scripts/pg-start.sh. Usage: scripts/pg-stop.sh DIR
set -euo pipefail

if [ $# -ne 1 ]; then
  echo "usage: $0 DIR" >&2
  exit 2
fi
DATA=$1/data

PG_BIN=${PG_BIN:-}
if [ -z "$PG_BIN" ]; then
  for candidate in /usr/lib/postgresql/*/bin; do
    [ -x "$candidate/pg_ctl" ] && PG_BIN=$candidate
  done
fi
if [ ! -f "$DATA/PG_VERSION" ]; then
  echo "pg-stop: no cluster in $DATA" >&2
  exit 1
fi

if [ "$(id -u)" -eq 0 ]; then
  as_pg() { runuser -u postgres -- "$@"; }
else
  as_pg() { "$@"; }
fi

if as_pg "$PG_BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; then
  as_pg "$PG_BIN/pg_ctl" -D "$DATA" -m fast -w -t 60 stop >/dev/null
fi

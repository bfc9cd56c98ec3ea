#!/usr/bin/env bash
# Start a throwaway PostgreSQL 15 cluster for tests and local runs.
# Usage: scripts/pg-start.sh DIR PORT
# Prints the database URL (postgres://postgres@127.0.0.1:PORT/idverify) on stdout; logs go to DIR/postgres.log.
# Trust auth, loopback only, fsync off: never use for real data.
# PG_TLS=1: also make a test CA and serve TLS (ssl=on) with a certificate it signed for the host name
# `localhost` only; DIR/tls/ca.crt is that CA, DIR/tls/other-ca.crt an unrelated one (for refusals).
# Needs the openssl command. Connections without TLS are still accepted.
set -euo pipefail

if [ $# -ne 2 ]; then
  echo "usage: $0 DIR PORT" >&2
  exit 2
fi
DIR=$1
PORT=$2
case $PORT in
  ''|*[!0-9]*) echo "pg-start: PORT must be a number" >&2; exit 2 ;;
esac

PG_BIN=${PG_BIN:-}
if [ -z "$PG_BIN" ]; then
  for candidate in /usr/lib/postgresql/*/bin; do
    [ -x "$candidate/initdb" ] && PG_BIN=$candidate
  done
fi
if [ -z "$PG_BIN" ] || [ ! -x "$PG_BIN/initdb" ]; then
  echo "pg-start: PostgreSQL server binaries not found (apt-get install postgresql)" >&2
  exit 1
fi

mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
DATA=$DIR/data

# PostgreSQL refuses to run as root: run the server as the `postgres` OS user when we are root.
if [ "$(id -u)" -eq 0 ]; then
  if ! id postgres >/dev/null 2>&1; then
    echo "pg-start: running as root but there is no 'postgres' user" >&2
    exit 1
  fi
  chown postgres: "$DIR"
  chmod 700 "$DIR"
  as_pg() { runuser -u postgres -- "$@"; }
  # The server user must be able to reach DIR through every parent directory.
  if ! as_pg test -x "$DIR"; then
    echo "pg-start: user postgres cannot access $DIR (choose a directory under /tmp)" >&2
    exit 1
  fi
else
  as_pg() { "$@"; }
fi

SSL_OPTS=""
if [ "${PG_TLS:-0}" = 1 ]; then
  command -v openssl >/dev/null || { echo "pg-start: PG_TLS=1 needs the openssl command" >&2; exit 1; }
  TLS=$DIR/tls
  if [ ! -f "$TLS/server.crt" ]; then
    mkdir -p "$TLS"
    (
      cd "$TLS"
      ec() { echo -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes; }
      for ca in ca other-ca; do
        # shellcheck disable=SC2046
        openssl req -x509 $(ec) -keyout "$ca.key" -out "$ca.crt" -days 7 -subj "/CN=idverify test $ca" \
          -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
      done
      # shellcheck disable=SC2046
      openssl req $(ec) -keyout server.key -out server.csr -subj /CN=localhost
      printf '%s\n' subjectAltName=DNS:localhost basicConstraints=critical,CA:FALSE \
        keyUsage=critical,digitalSignature extendedKeyUsage=serverAuth >server.ext
      openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 7 \
        -extfile server.ext -out server.crt
    ) >"$DIR/tls.log" 2>&1 || { echo "pg-start: making test certificates failed, see $DIR/tls.log" >&2; exit 1; }
  fi
  # The server refuses a key that others can read; it must own it.
  chmod 600 "$TLS/server.key"
  [ "$(id -u)" -eq 0 ] && chown -R postgres: "$TLS"
  SSL_OPTS="-c ssl=on -c ssl_cert_file=$TLS/server.crt -c ssl_key_file=$TLS/server.key"
fi

if [ ! -f "$DATA/PG_VERSION" ]; then
  as_pg "$PG_BIN/initdb" -D "$DATA" -U postgres -A trust -E UTF8 --no-sync >"$DIR/initdb.log" 2>&1 || {
    echo "pg-start: initdb failed, see $DIR/initdb.log" >&2
    exit 1
  }
fi

if ! as_pg "$PG_BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; then
  as_pg "$PG_BIN/pg_ctl" -D "$DATA" -l "$DIR/postgres.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $PORT -k $DIR -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200 $SSL_OPTS" \
    start >/dev/null || {
    echo "pg-start: server did not start, see $DIR/postgres.log" >&2
    exit 1
  }
fi

for _ in $(seq 1 60); do
  if "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PORT" -U postgres; then
    break
  fi
  sleep 0.5
done
"$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PORT" -U postgres || {
  echo "pg-start: server not ready on 127.0.0.1:$PORT, see $DIR/postgres.log" >&2
  exit 1
}

exists=$("$PG_BIN/psql" -h 127.0.0.1 -p "$PORT" -U postgres -d postgres -tAc \
  "SELECT 1 FROM pg_database WHERE datname = 'idverify'")
if [ "$exists" != "1" ]; then
  "$PG_BIN/createdb" -h 127.0.0.1 -p "$PORT" -U postgres idverify
fi

echo "postgres://postgres@127.0.0.1:$PORT/idverify"

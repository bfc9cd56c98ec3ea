#!/usr/bin/env bash
# Three replicas of the real binary behind nginx with the shipped deploy/nginx.conf (round-robin,
# the next replica tried on a connection failure only), sharing one PostgreSQL and one SeaweedFS, under a bounded load of verify,
# scan and detect requests from careful clients (Idempotency-Key on every request, retried on
# documented retryable answers). During the load one replica is restarted the rolling way
# (SIGTERM, drain, start) and another is SIGKILLed and started again. Then:
#   - every request got a 200 in the end, and every attempt a 200 or a documented retryable error;
#   - the ledger is exact: debits - refunds = the price of the requests answered 200, and the
#     balance agrees; no reservation is left open once the sweep bound has passed;
#   - an organization limited to N/s gets no more than N per second plus its burst through the
#     three replicas;
#   - an Idempotency-Key used on one replica replays on another.
# Last line: requests=… ok=… retryable=… lost_charges=0 ledger=exact rate_limit=held idempotency=shared
#
# Usage: scripts/cluster-test.sh PATH/TO/idverify
# Uses IDVERIFY_TEST_DATABASE_URL and IDVERIFY_TEST_S3_* when set (scripts/test.sh sets them),
# otherwise starts a throwaway PostgreSQL and SeaweedFS. Installs nginx from Debian if absent.
set -euo pipefail

BIN="$(realpath "$1")"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
SHARED="$ROOT/../shared/data"
WORK="$(mktemp -d /tmp/idverify-cluster.XXXXXX)"
chmod 755 "$WORK"
export IDVERIFY_MODELS_DIR="${IDVERIFY_MODELS_DIR:-$ROOT/models}"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
log() { echo "cluster: $*"; }
declare -a PIDS PORTS
# Organization names unique to this run (the test database may be shared with other tests).
RUN="$(date +%s)-$$"

cleanup() {
  for pid in "${PIDS[@]:-}"; do [[ -n "$pid" ]] && kill -9 "$pid" 2>/dev/null; done
  [[ -f "$WORK/nginx/nginx.pid" ]] && kill "$(cat "$WORK/nginx/nginx.pid")" 2>/dev/null
  [[ -n "${OWN_S3:-}" ]] && bash "$ROOT/scripts/s3-stop.sh" "$WORK/s3" >/dev/null 2>&1
  [[ -n "${OWN_PG:-}" ]] && bash "$ROOT/scripts/pg-stop.sh" "$WORK/pg" >/dev/null 2>&1
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 1' TERM INT

# --- Shared services ----------------------------------------------------------------------------
if [[ -n "${IDVERIFY_TEST_DATABASE_URL:-}" ]]; then
  DB_URL="$IDVERIFY_TEST_DATABASE_URL"
else
  OWN_PG=1
  DB_URL="$(bash "$ROOT/scripts/pg-start.sh" "$WORK/pg" "$(free_port)")"
fi
if [[ -z "${IDVERIFY_TEST_S3_ENDPOINT:-}" ]]; then
  OWN_S3=1
  while IFS= read -r line; do
    [[ "$line" == IDVERIFY_S3_* ]] && export "IDVERIFY_TEST_${line#IDVERIFY_}"
  done < <(bash "$ROOT/scripts/s3-start.sh" "$WORK/s3" "$(free_port)")
fi
# The replicas' S3 settings are the test server's.
while IFS='=' read -r name value; do
  export "IDVERIFY_S3_${name#IDVERIFY_TEST_S3_}=$value"
done < <(env | grep '^IDVERIFY_TEST_S3_')
if ! command -v nginx >/dev/null 2>&1 && [[ ! -x /usr/sbin/nginx ]]; then
  log "installing nginx from Debian's packages"
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nginx >/dev/null
  # The package may start its own daemon on port 80; this test runs its own.
  /usr/sbin/nginx -s quit 2>/dev/null || true
fi
NGINX="$(command -v nginx || echo /usr/sbin/nginx)"

# --- Replicas -----------------------------------------------------------------------------------
# Short bounds so the test waits seconds: a request runs at most 10 s, shutdown drains for at most
# 5 s after a 2 s readiness drain, and a reservation older than 10 + 5 + 2 s is swept.
export IDVERIFY_DATABASE_URL="$DB_URL" IDVERIFY_REQUEST_TIMEOUT_SECS=10 IDVERIFY_SHUTDOWN_GRACE_SECS=5 \
  IDVERIFY_RESERVATION_SWEEP_MARGIN_SECS=2 IDVERIFY_SHUTDOWN_DRAIN_DELAY_SECS=2 \
  IDVERIFY_ENGINE_SESSIONS=1 IDVERIFY_MAX_IN_FLIGHT=2 IDVERIFY_QUEUE_WAIT_MS=8000
SWEEP_BOUND_S=17
for i in 0 1 2; do PORTS[$i]="$(free_port)"; done

start_replica() { # index
  local i="$1"
  IDVERIFY_LISTEN="127.0.0.1:${PORTS[$i]}" IDVERIFY_DATA_DIR="$WORK/replica$i" \
    "$BIN" serve >> "$WORK/replica$i.log" 2>&1 &
  PIDS[$i]=$!
}
wait_ready() { # index
  local i="$1"
  for _ in $(seq 1 300); do
    curl -fsS "http://127.0.0.1:${PORTS[$i]}/readyz" >/dev/null 2>&1 && return 0
    kill -0 "${PIDS[$i]}" 2>/dev/null || break
    sleep 0.2
  done
  log "FAIL replica $i did not become ready"; tail -5 "$WORK/replica$i.log"; exit 1
}
# Migrations run once, before the replicas race for them.
"$BIN" org create cluster-load-$RUN --tokens 1000000 > "$WORK/load.key"
for i in 0 1 2; do start_replica "$i"; done
for i in 0 1 2; do wait_ready "$i"; done
log "3 replicas ready on ports ${PORTS[*]}"

# --- nginx (the shipped deploy/nginx.conf) ---------------------------------------------------
NGINX_PORT="$(free_port)"
mkdir -p "$WORK/nginx"
python3 "$ROOT/scripts/lib/cluster_nginx.py" "$ROOT/deploy/nginx.conf" "$WORK/nginx" "$NGINX_PORT" "${PORTS[@]}" \
  > "$WORK/nginx/nginx.conf"
"$NGINX" -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" -e "$WORK/nginx/error.log"
BASE="http://127.0.0.1:$NGINX_PORT"
for _ in $(seq 1 50); do curl -fsS "$BASE/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
log "nginx on $BASE"

# --- Load, with a rolling restart and a SIGKILL in the middle -----------------------------------
if [[ -d "$SHARED" ]]; then
  DOC="$SHARED/mrz_docs/dev/Arg0s1080-mrz__docs_images_passports_ICAO_Example.png"
  FACE="$SHARED/faces/dev/$(sed -n '2p' "$SHARED/faces/dev/pairs.csv" | cut -d, -f1)"
else
  echo "SKIP: ../shared/data absent: the load uses a generated image (no face, no document)"
  python3 "$ROOT/scripts/lib/generated_png.py" "$WORK/img.png" 320 240
  DOC="$WORK/img.png"; FACE="$WORK/img.png"
fi
LOAD_KEY="$(tail -n 1 "$WORK/load.key")"
LOAD_SECONDS="${CLUSTER_LOAD_SECONDS:-40}"
python3 "$ROOT/scripts/cluster_load.py" --base "$BASE" --key "$LOAD_KEY" --doc "$DOC" --face "$FACE" \
  --seconds "$LOAD_SECONDS" --concurrency 4 > "$WORK/load.json" &
LOAD_PID=$!

sleep 8
log "rolling restart of replica 0: SIGTERM, drain, start"
kill -TERM "${PIDS[0]}"
wait "${PIDS[0]}" || { log "FAIL replica 0 did not exit cleanly on SIGTERM"; exit 1; }
start_replica 0
wait_ready 0
log "replica 0 back"

sleep 4
log "SIGKILL of replica 1 with requests in flight"
kill -KILL "${PIDS[1]}"
wait "${PIDS[1]}" 2>/dev/null || true
KILLED_AT="$(date +%s)"
start_replica 1
wait_ready 1
log "replica 1 back"

wait "$LOAD_PID"
log "load: $(cat "$WORK/load.json")"

# --- Checks -------------------------------------------------------------------------------------
psql_value() { psql "$DB_URL" -XAtq -c "$1"; }
ORG_ID="$(psql_value "SELECT id FROM orgs WHERE name = 'cluster-load-$RUN'")"
# The unanswered requests of the killed replica are refunded once the sweep bound has passed.
deadline=$(( KILLED_AT + SWEEP_BOUND_S + 30 ))
while (( $(date +%s) < deadline )); do
  [[ "$(psql_value "SELECT COUNT(*) FROM reservations WHERE org_id = '$ORG_ID'")" == 0 ]] && break
  sleep 1
done
OPEN="$(psql_value "SELECT COUNT(*) FROM reservations WHERE org_id = '$ORG_ID'")"
NET="$(psql_value "SELECT COALESCE(SUM(CASE kind WHEN 'debit' THEN amount WHEN 'refund' THEN -amount ELSE 0 END), 0) FROM ledger WHERE org_id = '$ORG_ID'")"
BALANCE="$(psql_value "SELECT balance FROM orgs WHERE id = '$ORG_ID'")"
SWEPT="$(cat "$WORK"/replica*.log | grep -c 'refunded the charges of requests left unanswered' || true)"

read -r REQUESTS OK RETRYABLE EXPECTED BAD < <(python3 - "$WORK/load.json" <<'PY'
import json, sys
load = json.load(open(sys.argv[1]))
price = {"/v1/identity/verify": 3, "/v1/document/scan": 1, "/v1/face/detect": 1}
ok = sum(load["answered"].values())
requests = ok + sum(load["unanswered"].values())
retryable = sum(n for s, n in load["statuses"].items() if s in ("409", "429", "500", "502", "503", "504", "conn"))
bad = sum(n for s, n in load["statuses"].items() if s not in ("200", "409", "429", "500", "502", "503", "504", "conn"))
expected = sum(price[p] * n for p, n in load["answered"].items())
print(requests, ok, retryable, expected, bad)
PY
)
FAILED=0
fail() { log "FAIL $*"; FAILED=1; }
(( REQUESTS > 0 && OK == REQUESTS )) || fail "$((REQUESTS - OK)) of $REQUESTS requests never got a 200"
(( BAD == 0 )) || fail "$BAD attempts got an undocumented status"
(( OPEN == 0 )) || fail "$OPEN reservations still open ${SWEEP_BOUND_S}s after the kill"
LOST=$(( NET > EXPECTED ? NET - EXPECTED : 0 ))
LEDGER=exact
if (( NET != EXPECTED || BALANCE != 1000000 - NET )); then
  LEDGER=wrong
  fail "ledger: debits - refunds = $NET tokens, answered requests cost $EXPECTED, balance $BALANCE"
fi
log "charged $NET tokens for answers worth $EXPECTED; $SWEPT sweep rounds refunded requests of the killed replica"

# Rate limit shared by the replicas: 2/s with a burst of 4, 30 requests at once through nginx.
RATE_KEY="$("$BIN" org create cluster-rate-$RUN --tokens 0 | tail -n 1)"
"$BIN" org rate-limit cluster-rate-$RUN --per-second 2 --burst 4 >/dev/null
START_NS="$(date +%s%N)"
RATE_PIDS=()
for n in $(seq 1 30); do
  curl -sS -o /dev/null -w '%{http_code}\n' -H "x-api-key: $RATE_KEY" "$BASE/v1/info" > "$WORK/rate.$n" &
  RATE_PIDS+=($!)
done
wait "${RATE_PIDS[@]}"
ELAPSED_MS=$(( ($(date +%s%N) - START_NS) / 1000000 ))
RATE_OK="$(cat "$WORK"/rate.* | grep -c '^200$' || true)"
RATE_429="$(cat "$WORK"/rate.* | grep -c '^429$' || true)"
ALLOWED=$(( 4 + 2 * (ELAPSED_MS + 999) / 1000 ))
RATE=held
if (( RATE_OK > ALLOWED || RATE_429 == 0 || RATE_OK + RATE_429 != 30 )); then
  RATE=broken
  fail "rate limit: $RATE_OK of 30 passed in ${ELAPSED_MS} ms (at most $ALLOWED allowed), $RATE_429 got 429"
fi
log "rate limit: $RATE_OK of 30 passed in ${ELAPSED_MS} ms (at most $ALLOWED allowed), $RATE_429 got 429"

# An Idempotency-Key used on one replica replays on another, charged once.
IDEM_KEY="$("$BIN" org create cluster-idem-$RUN --tokens 10 | tail -n 1)"
printf '{"image":"%s"}' "$(base64 -w0 "$FACE")" > "$WORK/detect.json"
for i in 0 2; do
  curl -sS -D "$WORK/idem$i.headers" -o "$WORK/idem$i.json" -H "x-api-key: $IDEM_KEY" \
    -H "Idempotency-Key: cluster-shared-1" -H 'content-type: application/json' \
    --data-binary "@$WORK/detect.json" "http://127.0.0.1:${PORTS[$i]}/v1/face/detect"
done
IDEM=shared
if ! { cmp -s "$WORK/idem0.json" "$WORK/idem2.json" && grep -qi '^idempotent-replayed: true' "$WORK/idem2.headers" \
  && [[ "$(psql_value "SELECT balance FROM orgs WHERE name = 'cluster-idem-$RUN'")" == 9 ]]; }; then
  IDEM=not-shared
  fail "idempotency: replica 2 did not replay replica 0's answer (or charged twice)"
fi

# An upload presigned by one replica is read by another (one bucket).
UPLOAD="$(curl -sS -H "x-api-key: $IDEM_KEY" -H 'content-type: application/json' -d '{"contentType":"image/png"}' \
  "http://127.0.0.1:${PORTS[0]}/v1/uploads")"
URL="$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["url"])' "$UPLOAD")"
URI="$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["uri"])' "$UPLOAD")"
curl -fsS -X PUT -H 'content-type: image/png' --data-binary "@$FACE" "$URL" >/dev/null
S3_STATUS="$(curl -sS -o /dev/null -w '%{http_code}' -H "x-api-key: $IDEM_KEY" -F "image=$URI" \
  "http://127.0.0.1:${PORTS[1]}/v1/face/detect")"
[[ "$S3_STATUS" == 200 ]] || fail "an upload presigned by replica 0 could not be read by replica 1 ($S3_STATUS)"

for i in 0 1 2; do kill -TERM "${PIDS[$i]}" 2>/dev/null; done
for i in 0 1 2; do wait "${PIDS[$i]}" 2>/dev/null || true; PIDS[$i]=""; done
if grep -q -- "$LOAD_KEY" "$WORK"/replica*.log; then fail "a replica logged an API key"; fi

echo "requests=$REQUESTS ok=$OK retryable=$RETRYABLE lost_charges=$LOST ledger=$LEDGER rate_limit=$RATE idempotency=$IDEM"
exit "$FAILED"

#!/usr/bin/env bash
# Load test of POST /v1/identity/verify on the release binary with embedded defaults.
#
#   scripts/bench-load.sh [-c CONCURRENCY] [-d SECONDS] [--no-build]
#   (defaults: -c 1 -d 30; env CONCURRENCY / DURATION work too)
#
# Starts its own server on a free 127.0.0.1 port with a temp data dir (SQLite), creates an org
# with enough tokens and a generous rate limit, drives it with wrk for a bounded time, and
# prints latency percentiles, throughput, errors, 503s and peak RSS. Last line:
#   p50_ms=… p99_ms=… rps=… errors=… rss_mb=… overloaded=… load=… cpu_ms_per_verify=… sface_share=…
# rps counts 200 answers per second. errors = socket errors, timeouts and every non-200 answer
# except a 503 that carries Retry-After (that one is counted as `overloaded`).
# Images (read-only): a 1600x1200 phone-size passport photo from mrz_docs/dev and a 910x1137
# (~1 MP) selfie from faces/dev. Override with DOC_IMAGE / FACE_IMAGE; DOC_TYPE sets the
# documentType part (e.g. drivers_license for a licence front; none by default).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

CONC="${CONCURRENCY:-1}"
DUR="${DURATION:-30}"
BUILD=1
while [[ $# -gt 0 ]]; do
    case "$1" in
        -c) CONC="$2"; shift 2 ;;
        -d) DUR="$2"; shift 2 ;;
        --no-build) BUILD=0; shift ;;
        -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
    esac
done
[[ "$CONC" =~ ^[0-9]+$ && "$CONC" -ge 1 && "$CONC" -le 256 ]] || { echo "concurrency must be 1..256" >&2; exit 2; }
[[ "$DUR" =~ ^[0-9]+$ && "$DUR" -ge 1 && "$DUR" -le 600 ]] || { echo "duration must be 1..600 s" >&2; exit 2; }

DATA="${IDVERIFY_SHARED_DATA:-$ROOT/../shared/data}"
DOC_IMAGE="${DOC_IMAGE:-$DATA/mrz_docs/dev/konstantint-PassportEye__passporteye_mrz_testdata_100_pass-lux.jpg}"
FACE_IMAGE="${FACE_IMAGE:-$DATA/faces/dev/barack_obama/ageitgey-face_recognition__examples_obama.jpg}"
for f in "$DOC_IMAGE" "$FACE_IMAGE"; do
    [[ -f "$f" ]] || { echo "missing image: $f (set IDVERIFY_SHARED_DATA, DOC_IMAGE, FACE_IMAGE)" >&2; exit 1; }
done

# Tools, installed idempotently (Debian).
need=()
command -v wrk >/dev/null || need+=(wrk)
command -v curl >/dev/null || need+=(curl)
command -v python3 >/dev/null || need+=(python3)
if [[ ${#need[@]} -gt 0 ]]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

# shellcheck source=scripts/lib/serve.sh
source "$ROOT/scripts/lib/serve.sh"
prepare_release "$ROOT" "$BUILD"

WORK="$(mktemp -d)"
SERVER_PID=""
SAMPLER_PID=""
cleanup() {
    [[ -n "$SAMPLER_PID" ]] && kill "$SAMPLER_PID" 2>/dev/null || true
    stop_idverify
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

export IDVERIFY_MODELS_DIR="$MODELS"
export IDVERIFY_LOG_LEVEL="${IDVERIFY_LOG_LEVEL:-warn}"
start_idverify "$BIN" "$WORK" bench 100000000 1000

# One multipart body, built once, replayed by wrk.
BOUNDARY="idverifybench$RANDOM$RANDOM"
{
    printf -- '--%s\r\nContent-Disposition: form-data; name="documentImage"; filename="doc.jpg"\r\nContent-Type: image/jpeg\r\n\r\n' "$BOUNDARY"
    cat "$DOC_IMAGE"
    printf -- '\r\n--%s\r\nContent-Disposition: form-data; name="faceImage"; filename="face.jpg"\r\nContent-Type: image/jpeg\r\n\r\n' "$BOUNDARY"
    cat "$FACE_IMAGE"
    if [[ -n "${DOC_TYPE:-}" ]]; then
        printf -- '\r\n--%s\r\nContent-Disposition: form-data; name="documentType"\r\n\r\n%s' "$BOUNDARY" "$DOC_TYPE"
    fi
    printf -- '\r\n--%s--\r\n' "$BOUNDARY"
} >"$WORK/body.bin"

# Warm-up (also checks the request is well formed): must answer 200.
code="$(curl -s -o "$WORK/warm.json" -w '%{http_code}' "$URL/v1/identity/verify" -H "x-api-key: $KEY" \
    -H "content-type: multipart/form-data; boundary=$BOUNDARY" --data-binary @"$WORK/body.bin")"
if [[ "$code" != 200 ]]; then
    echo "warm-up answered $code: $(head -c 300 "$WORK/warm.json")" >&2
    exit 1
fi
python3 - "$WORK/warm.json" <<'EOF' >&2
import json, sys
r = json.load(open(sys.argv[1]))
d, f, m = r.get("document") or {}, r.get("faceDetection") or {}, r.get("faceMatch") or {}
print(f"warm-up: verified={r.get('verified')} document.source={d.get('source')} "
      f"document.error={(d.get('error') or {}).get('code')} faceDetected={f.get('faceDetected')} "
      f"faceMatch.error={(m.get('error') or {}).get('code')} isMatch={m.get('isMatch')}")
EOF

cat >"$WORK/verify.lua" <<EOF
wrk.method = "POST"
wrk.headers["x-api-key"] = "$KEY"
wrk.headers["content-type"] = "multipart/form-data; boundary=$BOUNDARY"
local f = assert(io.open("$WORK/body.bin", "rb"))
wrk.body = f:read("*a")
f:close()

local threads = {}
function setup(thread) table.insert(threads, thread) end

ok, overloaded, bad503, other = 0, 0, 0, 0
function response(status, headers, body)
    if status == 200 then
        ok = ok + 1
    elseif status == 503 then
        local retry = false
        for k, _ in pairs(headers) do
            if string.lower(k) == "retry-after" then retry = true end
        end
        if retry then overloaded = overloaded + 1 else bad503 = bad503 + 1 end
    else
        other = other + 1
    end
end

function done(summary, latency, requests)
    local o, ov, b, x = 0, 0, 0, 0
    for _, t in ipairs(threads) do
        o = o + t:get("ok"); ov = ov + t:get("overloaded"); b = b + t:get("bad503"); x = x + t:get("other")
    end
    local e = summary.errors
    local sock = e.connect + e.read + e.write + e.timeout
    io.write(string.format("RESULT requests=%d duration_s=%.3f ok=%d overloaded=%d bad503=%d other=%d sock=%d timeouts=%d "
        .. "p50_us=%d p90_us=%d p99_us=%d max_us=%d mean_us=%.0f\n",
        summary.requests, summary.duration / 1e6, o, ov, b, x, sock, e.timeout,
        latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end
EOF

# Peak RSS: the kernel's high-water mark (VmHWM) covers the whole run; VmRSS is sampled too.
(
    peak=0
    while kill -0 "$SERVER_PID" 2>/dev/null; do
        rss="$(awk '/^VmRSS:/ {print $2}' "/proc/$SERVER_PID/status" 2>/dev/null || echo 0)"
        [[ -n "$rss" && "$rss" -gt "$peak" ]] && { peak=$rss; echo "$peak" >"$WORK/rss_peak"; }
        sleep 0.2
    done
) &
SAMPLER_PID=$!

THREADS=$((CONC < 2 ? CONC : 2))
LOAD_BEFORE="$(cut -d' ' -f1-3 /proc/loadavg)"
# Server CPU time (user + system, clock ticks) around the run: CPU per request does not depend
# on how busy the rest of the machine is, so it gives the capacity of an idle machine.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$SERVER_PID/stat"; }
CPU_BEFORE="$(cpu_ticks)"
echo "running: wrk -t$THREADS -c$CONC -d${DUR}s against $URL/v1/identity/verify (load before: $LOAD_BEFORE)" >&2
wrk -t"$THREADS" -c"$CONC" -d"${DUR}s" --timeout 60s --latency -s "$WORK/verify.lua" "$URL/v1/identity/verify" \
    >"$WORK/wrk.out" 2>&1 || { cat "$WORK/wrk.out" >&2; exit 1; }
LOAD_AFTER="$(cut -d' ' -f1-3 /proc/loadavg)"
CPU_MS=$(( ($(cpu_ticks) - CPU_BEFORE) * 1000 / $(getconf CLK_TCK) ))
# The server must still answer after the run (never hangs).
curl -fs --max-time 10 "$URL/healthz" >/dev/null || { echo "server did not answer /healthz after the run" >&2; exit 1; }

# Where the time goes: mean of each engine stage over the run (server-side histograms).
curl -fs --max-time 10 "$URL/metrics" | awk '
    /^idverify_engine_stage_duration_seconds_sum/ { match($0, /stage="[^"]*"/); s = substr($0, RSTART + 7, RLENGTH - 8); sum[s] = $2 }
    /^idverify_engine_stage_duration_seconds_count/ { match($0, /stage="[^"]*"/); s = substr($0, RSTART + 7, RLENGTH - 8); cnt[s] = $2 }
    END { line = "stage means (ms):"; for (s in sum) if (cnt[s] > 0) line = line sprintf(" %s=%.0f", s, 1000 * sum[s] / cnt[s]); print line }
' >&2 || true
# Share of the face matches that reached SFace (the cascade's second recognizer), from the
# server's counter; the warm-up's match is counted too. Every request here sends the same two
# images, so the share is all or nothing for one body; LFW's share is in BENCHMARKS.md.
SFACE_SHARE="$(curl -fs --max-time 10 "$URL/metrics" | awk '
    /^idverify_face_recognizer_decisions_total/ { n[$0 ~ /recognizers="dlib\+sface"/] += $2 }
    END { t = n[0] + n[1]; if (t > 0) printf "%.1f", 100 * n[1] / t; else printf "na" }
')" || SFACE_SHARE=na
echo "face matches that reached SFace: $SFACE_SHARE % (face_recognizers=${IDVERIFY_FACE_RECOGNIZERS:-default})" >&2
HWM_KB="$(awk '/^VmHWM:/ {print $2}' "/proc/$SERVER_PID/status")"
SAMPLED_KB="$(cat "$WORK/rss_peak" 2>/dev/null || echo 0)"
grep -v '^RESULT' "$WORK/wrk.out" >&2 || true
RESULT="$(grep '^RESULT' "$WORK/wrk.out")"
python3 - "$RESULT" "$HWM_KB" "$SAMPLED_KB" "$CONC" "$DUR" "$LOAD_BEFORE" "$LOAD_AFTER" "$CPU_MS" "$(nproc)" "$SFACE_SHARE" <<'EOF'
import sys
kv = dict(x.split("=") for x in sys.argv[1].split()[1:])
hwm, sampled = int(sys.argv[2]), int(sys.argv[3])
conc, dur, load_before, load_after = sys.argv[4], sys.argv[5], sys.argv[6], sys.argv[7]
n, secs = int(kv["requests"]), float(kv["duration_s"])
ok, ov = int(kv["ok"]), int(kv["overloaded"])
errors = int(kv["bad503"]) + int(kv["other"]) + int(kv["sock"])
ms = lambda k: int(kv[k]) / 1000
rss_mb = max(hwm, sampled) / 1024
print(f"concurrency={conc} duration_s={secs:.1f} requests={n} ok_200={ok} overloaded_503={ov} "
      f"503_without_retry_after={kv['bad503']} other_status={kv['other']} socket_errors={kv['sock']} (timeouts {kv['timeouts']})")
print(f"latency_ms p50={ms('p50_us'):.0f} p90={ms('p90_us'):.0f} p99={ms('p99_us'):.0f} max={ms('max_us'):.0f} mean={ms('mean_us'):.0f} (all answers)")
print(f"throughput: {ok / secs:.2f} verifies/s (200), {n / secs:.2f} answers/s")
print(f"peak_rss: VmHWM={hwm / 1024:.0f} MB sampled_VmRSS={sampled / 1024:.0f} MB")
cpu_ms, cores = int(sys.argv[8]), int(sys.argv[9])
if ok:
    per = cpu_ms / ok
    print(f"server cpu: {cpu_ms / 1000:.1f} s over the run = {per:.0f} ms per 200 answer "
          f"(an idle {cores}-core machine could serve about {cores * 1000 / max(per, 1):.1f}/s)")
print(f"loadavg before={load_before} after={load_after}")
cpu_per = f"{cpu_ms / ok:.0f}" if ok else "na"
print(f"p50_ms={ms('p50_us'):.0f} p99_ms={ms('p99_us'):.0f} rps={ok / secs:.2f} errors={errors} rss_mb={rss_mb:.0f} "
      f"overloaded={ov} load={load_after.split()[0]} cpu_ms_per_verify={cpu_per} sface_share={sys.argv[10]}")
EOF

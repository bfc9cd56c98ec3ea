#!/usr/bin/env bash
# Stop the SeaweedFS server started by scripts/s3-start.sh DIR. Data in DIR is kept.
set -euo pipefail

die() { echo "s3-stop: $*" >&2; exit 1; }
[ $# -eq 1 ] || die "usage: $0 DIR"
PID_FILE="$1/weed.pid"
if [ ! -f "$PID_FILE" ]; then
    echo "s3-stop: no $PID_FILE, nothing to stop" >&2
    exit 0
fi
PID=$(cat "$PID_FILE")
# Only signal the pid if it is still our weed process (pids get reused).
if [[ "$PID" =~ ^[0-9]+$ ]] && kill -0 "$PID" 2>/dev/null && grep -qa weed "/proc/$PID/cmdline" 2>/dev/null; then
    kill -TERM "$PID"
    for _ in $(seq 1 50); do
        kill -0 "$PID" 2>/dev/null || break
        sleep 0.2
    done
    if kill -0 "$PID" 2>/dev/null; then
        echo "s3-stop: weed (pid $PID) ignored SIGTERM for 10 s, sending SIGKILL" >&2
        kill -KILL "$PID"
    fi
fi
rm -f "$PID_FILE"

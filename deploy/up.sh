#!/usr/bin/env bash
# Starts deploy/compose.yaml with one command: makes random secrets under deploy/secrets/ the first
# time (kept across runs, never committed), then `docker compose up -d --build`, or podman-compose
# when there is no Docker engine. Extra arguments go to `up` (e.g. --no-build).
set -euo pipefail
DEPLOY="$(cd "$(dirname "$0")" && pwd)"
SECRETS="$DEPLOY/secrets"

# write_secrets DIR: the five secret files compose.yaml mounts, made once. The directory is 0700;
# the files are 0644 because compose bind-mounts them as they are and idverify runs as uid 10001.
write_secrets() {
    local dir="$1" pg_password access_key secret_key
    [[ -f "$dir/database_url" ]] && return 0
    mkdir -p "$dir" && chmod 700 "$dir"
    pg_password="$(od -An -N18 -tx1 /dev/urandom | tr -d ' \n')"
    access_key="IDV$(od -An -N9 -tx1 /dev/urandom | tr -d ' \n' | tr a-f A-F)"
    secret_key="$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')"
    printf '%s' "$pg_password" > "$dir/postgres_password"
    printf 'postgres://idverify:%s@postgres:5432/idverify' "$pg_password" > "$dir/database_url"
    printf '%s' "$access_key" > "$dir/s3_access_key_id"
    printf '%s' "$secret_key" > "$dir/s3_secret_access_key"
    printf '{"identities": [{"name": "idverify", "credentials": [{"accessKey": "%s", "secretKey": "%s"}], "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}\n' \
        "$access_key" "$secret_key" > "$dir/s3.json"
    chmod 644 "$dir"/*
}

write_secrets "$SECRETS"
if docker info >/dev/null 2>&1; then
    exec docker compose -f "$DEPLOY/compose.yaml" up -d --build "$@"
fi
exec podman-compose -f "$DEPLOY/compose.yaml" up -d "$@"

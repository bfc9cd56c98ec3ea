#!/usr/bin/env bash
# Stand-in base images for a machine that reaches no image registry: makes, from Debian packages,
# the two images the Dockerfile names, under exactly those names, so the Dockerfile builds
# unchanged here and anywhere the real images can be pulled.
#   docker.io/library/debian:bookworm-slim      debootstrap --variant=minbase bookworm, slimmed
#                                               the way the official image is (no docs, man, locales)
#   docker.io/library/rust:1.95-slim-bookworm   the same plus this machine's Rust 1.95 toolchain at
#                                               /usr/local/rustup + /usr/local/cargo (the official
#                                               image's layout and env) and gcc, libc6-dev, pkg-config
# Skips an image whose tag exists (FORCE=1 remakes both). The debootstrap tree is cached under
# ~/.cache/idverify/container, so a second run on a machine without the images is fast.
# Needs (apt-get): debootstrap podman buildah runc.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
CACHE="${IDVERIFY_CACHE_DIR:-$HOME/.cache/idverify}/container"
DEBIAN_IMAGE=docker.io/library/debian:bookworm-slim
RUST_IMAGE=docker.io/library/rust:1.95-slim-bookworm
RUST_VERSION=1.95.0
# shellcheck source=scripts/lib/podman.sh
source "$ROOT/scripts/lib/podman.sh"
podman_setup "$CACHE"

log() { echo "[base-images] $*" >&2; }
have_image() { [[ "${FORCE:-0}" != 1 ]] && "${PODMAN[@]}" image exists "$1"; }

# The Debian mirror this machine's apt uses (deb822 sources or a one-line sources.list).
mirror() {
    local uri
    uri="$(grep -hs -m1 -E '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}' || true)"
    [[ -n "$uri" ]] || uri="$(grep -hs -m1 -E '^deb ' /etc/apt/sources.list | awk '{print $2}' || true)"
    echo "${uri:-http://deb.debian.org/debian}"
}

make_debian() {
    local tree="$CACHE/rootfs-bookworm-slim" tarball="$CACHE/bookworm-slim.tar"
    if [[ ! -f "$tarball" ]]; then
        command -v debootstrap >/dev/null || { log "debootstrap missing: apt-get install debootstrap"; exit 1; }
        rm -rf "$tree" "$tree.tmp"
        log "debootstrap --variant=minbase bookworm from $(mirror)"
        debootstrap --variant=minbase bookworm "$tree.tmp" "$(mirror)" >"$CACHE/debootstrap.log" 2>&1 \
            || { tail -20 "$CACHE/debootstrap.log" >&2; exit 1; }
        # What the official slim image does: no docs, man pages or locales, now or on later installs.
        mkdir -p "$tree.tmp/etc/dpkg/dpkg.cfg.d"
        cat > "$tree.tmp/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
EOF
        # And its apt settings: no package caches left in a layer after apt-get (80 MB otherwise).
        cat > "$tree.tmp/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
        echo 'Acquire::Languages "none";' > "$tree.tmp/etc/apt/apt.conf.d/docker-no-languages"
        echo 'Acquire::GzipIndexes "true";' > "$tree.tmp/etc/apt/apt.conf.d/docker-gzip-indexes"
        echo 'Apt::AutoRemove::SuggestsImportant "false";' > "$tree.tmp/etc/apt/apt.conf.d/docker-autoremove-suggests"
        rm -f "$tree.tmp"/var/cache/apt/*.bin
        find "$tree.tmp/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
        rm -rf "$tree.tmp"/usr/share/{man,groff,info,lintian,linda}/* "$tree.tmp"/var/cache/apt/archives/*.deb \
            "$tree.tmp"/var/lib/apt/lists/* "$tree.tmp"/var/log/*.log "$tree.tmp/var/cache/debconf"/*-old
        find "$tree.tmp/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} +
        # The same mirror and suites as the official image (main, updates, security).
        rm -f "$tree.tmp/etc/apt/sources.list"
        if compgen -G "/etc/apt/sources.list.d/*.sources" >/dev/null; then
            cp /etc/apt/sources.list.d/*.sources "$tree.tmp/etc/apt/sources.list.d/"
        else
            cp /etc/apt/sources.list "$tree.tmp/etc/apt/sources.list"
        fi
        : > "$tree.tmp/etc/resolv.conf"
        echo localhost > "$tree.tmp/etc/hostname"
        tar -C "$tree.tmp" --numeric-owner -cf "$tarball.tmp" .
        mv "$tarball.tmp" "$tarball"
        rm -rf "$tree.tmp"
    fi
    log "importing $DEBIAN_IMAGE"
    "${PODMAN[@]}" import --change 'CMD ["bash"]' "$tarball" "$DEBIAN_IMAGE" >/dev/null
}

make_rust() {
    local toolchain ctx
    toolchain="$(rustup +"$RUST_VERSION" which rustc 2>/dev/null || true)"
    toolchain="${toolchain%/bin/rustc}"
    [[ -d "$toolchain" ]] || { log "Rust $RUST_VERSION not installed here: rustup toolchain install $RUST_VERSION"; exit 1; }
    toolchain="$(realpath "$toolchain")"
    ctx="$(mktemp -d "$CACHE/rust-context.XXXXXX")"
    trap 'rm -rf "$ctx"' RETURN
    # The toolchain without its HTML docs (share/doc is most of its size).
    mkdir -p "$ctx/rustup/toolchains/$RUST_VERSION-x86_64-unknown-linux-gnu" "$ctx/cargo/bin"
    tar -C "$toolchain" --exclude=./share/doc -cf - . \
        | tar -C "$ctx/rustup/toolchains/$RUST_VERSION-x86_64-unknown-linux-gnu" -xf -
    printf 'version = "12"\ndefault_toolchain = "%s-x86_64-unknown-linux-gnu"\nprofile = "minimal"\n' \
        "$RUST_VERSION" > "$ctx/rustup/settings.toml"
    cp "$(command -v rustup)" "$ctx/cargo/bin/rustup"
    # This machine's own extra CAs (a TLS-intercepting egress proxy's, say): without them the
    # build stage's pip, npm and cargo cannot reach the registries that the host reaches.
    mkdir -p "$ctx/extra-ca"
    cp /usr/local/share/ca-certificates/*.crt "$ctx/extra-ca/" 2>/dev/null || true
    cat > "$ctx/Containerfile" <<EOF
FROM $DEBIAN_IMAGE
ENV RUSTUP_HOME=/usr/local/rustup CARGO_HOME=/usr/local/cargo \
    PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    RUST_VERSION=$RUST_VERSION
COPY extra-ca /usr/local/share/ca-certificates
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates gcc libc6-dev pkg-config \
 && rm -rf /var/lib/apt/lists/* && update-ca-certificates
ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt
COPY rustup /usr/local/rustup
COPY cargo /usr/local/cargo
RUN cd /usr/local/cargo/bin \
 && for t in cargo cargo-clippy cargo-fmt clippy-driver rustc rustdoc rustfmt rust-gdb rust-lldb; do ln -f rustup \$t; done \
 && chmod -R a+w /usr/local/rustup /usr/local/cargo \
 && rustup --version && cargo --version && rustc --version
EOF
    log "building $RUST_IMAGE (toolchain from $toolchain)"
    "${PODMAN[@]}" build --network host -q -f "$ctx/Containerfile" -t "$RUST_IMAGE" "$ctx" >/dev/null
}

if have_image "$DEBIAN_IMAGE"; then log "$DEBIAN_IMAGE exists"; else make_debian; fi
if have_image "$RUST_IMAGE"; then log "$RUST_IMAGE exists"; else make_rust; fi
"${PODMAN[@]}" images --format '{{.Repository}}:{{.Tag}} {{.Size}}' \
    | grep -E "^($DEBIAN_IMAGE|$RUST_IMAGE) " >&2

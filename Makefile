# The two commands a new user needs: `make run` and `make test`.
.PHONY: run test models build release lint clean-cache test-container deploy-validate

MODELS_DIR ?= $(or $(IDVERIFY_MODELS_DIR),./models)

models:
	bash scripts/fetch-models.sh

# Start the server on embedded defaults: 127.0.0.1:8080, SQLite under ./data, models in ./models.
run: models
	cargo run --release --bin idverify -- serve

# The whole suite: unit, integration (SQLite, PostgreSQL, SeaweedFS), real-model tests, curl smoke.
test: models
	bash scripts/test.sh

# The container image built with podman, run, and smoke-tested with curl (scripts/container-test.sh).
test-container:
	bash scripts/container-test.sh

# The compose file and the Kubernetes manifests, validated offline.
deploy-validate:
	bash scripts/deploy-validate.sh

release:
	cargo build --release --bin idverify

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

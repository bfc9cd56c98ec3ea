#!/usr/bin/env bash
# Validates deploy/ offline: the compose file (podman-compose config), nginx.conf (nginx -t, when
# Debian's nginx is installed), the Kubernetes manifests against the API schemas bundled in the
# PyPI package kubernetes-validate (strict: unknown fields fail), and the consistency checks of
# scripts/deploy_checks.py (secrets mounted, probes, grace periods, ports, config key names).
# Installs its tools into ${IDVERIFY_CACHE_DIR:-~/.cache/idverify}/venv-deploy on first use.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
CACHE="${IDVERIFY_CACHE_DIR:-$HOME/.cache/idverify}"
VENV="$CACHE/venv-deploy"
KUBERNETES_VALIDATE=1.37.0
PODMAN_COMPOSE=1.6.0
# Oldest Kubernetes the manifests are for: the native preStop sleep action is on by default from 1.30.
KUBERNETES_VERSION=1.30.0

if ! "$VENV/bin/python" -c "import kubernetes_validate, podman_compose" 2>/dev/null \
  || ! "$VENV/bin/pip" freeze 2>/dev/null | grep -qx "kubernetes-validate==$KUBERNETES_VALIDATE"; then
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet "kubernetes-validate==$KUBERNETES_VALIDATE" "podman-compose==$PODMAN_COMPOSE"
fi

# Compose: parsed and normalized. --dry-run: no podman needed (nor used).
"$VENV/bin/podman-compose" --dry-run -f "$ROOT/deploy/compose.yaml" config > /dev/null
echo "compose: deploy/compose.yaml parses (podman-compose $PODMAN_COMPOSE config)"

# nginx.conf with the replica names replaced by loopback, so nginx -t needs no DNS.
if command -v nginx >/dev/null; then
    WORK="$(mktemp -d)"
    trap 'rm -rf "$WORK"' EXIT
    sed -E 's/^(\s*server\s+)idverify-[0-9]+:/\1127.0.0.1:/; s#^pid .*#pid '"$WORK"'/nginx.pid;#' \
        "$ROOT/deploy/nginx.conf" > "$WORK/nginx.conf"
    nginx -t -q -c "$WORK/nginx.conf" -e "$WORK/error.log" -g "error_log $WORK/error.log;" 2>&1
    echo "nginx: deploy/nginx.conf passes nginx -t"
else
    echo "SKIP: nginx -t (nginx not installed)"
fi

"$VENV/bin/kubernetes-validate" --quiet --strict -k "$KUBERNETES_VERSION" \
    "$ROOT"/deploy/kubernetes/*.yaml "$ROOT"/deploy/kubernetes/examples/*.yaml
echo "kubernetes: deploy/kubernetes valid against $KUBERNETES_VERSION (kubernetes-validate $KUBERNETES_VALIDATE, strict)"

"$VENV/bin/python" "$ROOT/scripts/deploy_checks.py" "$ROOT"

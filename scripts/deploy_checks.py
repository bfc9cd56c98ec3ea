"""Consistency checks of deploy/ that schema validation does not catch.

Usage: python deploy_checks.py REPO_ROOT
Prints one line per failed check and exits 1 if any failed. Run by scripts/deploy-validate.sh
(after podman-compose config and kubernetes-validate) with the PyYAML of its venv.
"""

import re
import sys
import tomllib
from pathlib import Path

import yaml

failures = []


def check(ok, message):
    if not ok:
        failures.append(message)


def config_keys(root):
    with open(root / "config/default.toml", "rb") as f:
        return set(tomllib.load(f))


def check_env_names(where, names, keys):
    for name in names:
        if name.startswith("IDVERIFY_"):
            key = name.removeprefix("IDVERIFY_").lower()
            check(key in keys, f"{where}: {name} is no config key (config/default.toml)")


def seconds(value):
    m = re.fullmatch(r"(\d+)s", str(value))
    return int(m.group(1)) if m else int(value)


def check_compose(root, keys):
    deploy = root / "deploy"
    compose = yaml.safe_load((deploy / "compose.yaml").read_text())
    services = compose["services"]
    secrets = compose.get("secrets", {})
    for name, svc in services.items():
        for dep in svc.get("depends_on", []):
            check(dep in services, f"compose {name}: depends_on unknown service {dep}")
        mounted = set(svc.get("secrets", []))
        for s in mounted:
            check(s in secrets, f"compose {name}: secret {s} is not declared")
        env = svc.get("environment", {})
        check_env_names(f"compose {name}", env, keys)
        for var, value in env.items():
            if var.endswith("_FILE"):
                m = re.fullmatch(r"/run/secrets/([\w.-]+)", str(value))
                check(m and m.group(1) in mounted, f"compose {name}: {var}={value} is not a mounted secret")
    for s, spec in secrets.items():
        check("file" in spec, f"compose secret {s}: not from a file")
    replicas = {n: s for n, s in services.items() if "IDVERIFY_LISTEN" in s.get("environment", {})}
    check(len(replicas) >= 2, "compose: fewer than two idverify replicas")
    for name, svc in replicas.items():
        env = svc["environment"]
        budget = int(env.get("IDVERIFY_SHUTDOWN_DRAIN_DELAY_SECS", 5)) + int(env.get("IDVERIFY_SHUTDOWN_GRACE_SECS", 20))
        check(seconds(svc.get("stop_grace_period", 10)) > budget,
              f"compose {name}: stop_grace_period must exceed drain delay + shutdown grace ({budget}s)")

    nginx = (deploy / "nginx.conf").read_text()
    code = "\n".join(line.split("#", 1)[0] for line in nginx.splitlines())
    upstreams = set(re.findall(r"^\s*server\s+([\w.-]+:\d+)", code, re.M))
    expected = {f"{n}:{services[n]['environment']['IDVERIFY_LISTEN'].rsplit(':', 1)[1]}" for n in replicas}
    check(upstreams == expected, f"nginx.conf upstream {sorted(upstreams)} != compose replicas {sorted(expected)}")
    retry = re.findall(r"proxy_next_upstream\s+([^;]+);", code)
    # Connection failures only: never non_idempotent (a POST that reached a replica may be charged),
    # never an HTTP status (the replica answered).
    check(retry == ["error timeout"], f"nginx.conf: proxy_next_upstream must be 'error timeout', is {retry}")


def check_kubernetes(root, keys):
    docs = {}
    for path in sorted((root / "deploy/kubernetes").rglob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                docs[doc["kind"]] = doc
    dep = docs["Deployment"]
    labels = dep["spec"]["template"]["metadata"]["labels"]
    check(dep["spec"]["selector"]["matchLabels"].items() <= labels.items(), "Deployment selector != pod labels")
    for kind in ("Service", "PodDisruptionBudget"):
        spec = docs[kind]["spec"]
        selector = spec["selector"].get("matchLabels", spec["selector"])
        check(selector.items() <= labels.items(), f"{kind} selector does not match the pods")
    check(docs["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"]["name"] == dep["metadata"]["name"],
          "HPA targets another Deployment")

    pod = dep["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    env = {e["name"]: e.get("value") for e in c["env"]}
    check_env_names("Deployment", env, keys)
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    check(env["IDVERIFY_LISTEN"].endswith(f":{ports['http']}"), "IDVERIFY_LISTEN port != http containerPort")
    check(env["IDVERIFY_METRICS_LISTEN"].endswith(f":{ports['metrics']}"), "metrics_listen port != metrics containerPort")
    ann = dep["spec"]["template"]["metadata"]["annotations"]
    check(ann.get("prometheus.io/port") == str(ports["metrics"]), "prometheus.io/port != metrics port")
    check(c["startupProbe"]["httpGet"]["path"] == "/readyz", "startupProbe must be /readyz")
    check(c["readinessProbe"]["httpGet"]["path"] == "/readyz", "readinessProbe must be /readyz")
    check(c["livenessProbe"]["httpGet"]["path"] == "/healthz", "livenessProbe must be /healthz (never the database)")
    pre_stop = c["lifecycle"]["preStop"]["sleep"]["seconds"]
    budget = pre_stop + int(env.get("IDVERIFY_SHUTDOWN_DRAIN_DELAY_SECS", 5)) + int(env.get("IDVERIFY_SHUTDOWN_GRACE_SECS", 20))
    check(pod["terminationGracePeriodSeconds"] > budget,
          f"terminationGracePeriodSeconds must exceed preStop + drain delay + shutdown grace ({budget}s)")
    check("cpu" in c["resources"]["requests"] and "memory" in c["resources"]["limits"], "resources incomplete")

    # Every *_FILE is a key of the mounted Secret (the example Secret lists the keys).
    mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    secret_keys = set(docs["Secret"]["stringData"])
    for var, value in env.items():
        if var.endswith("_FILE"):
            vol, key = next(((n, value[len(p) + 1:]) for n, p in mounts.items() if value.startswith(p + "/")), (None, None))
            check(vol and "secret" in volumes[vol] and key in secret_keys,
                  f"Deployment: {var}={value} is no key of the mounted Secret")


def main():
    root = Path(sys.argv[1]).resolve()
    keys = config_keys(root)
    check_compose(root, keys)
    check_kubernetes(root, keys)
    for f in failures:
        print(f"FAIL {f}")
    print(f"deploy checks: {'ok' if not failures else f'{len(failures)} failed'}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()

"""The shipped deploy/nginx.conf, pointed at local replicas, for scripts/cluster-test.sh.

Usage: cluster_nginx.py DEPLOY_NGINX_CONF WORK_DIR LISTEN_PORT REPLICA_PORT...
Prints the config: the upstream servers replaced by 127.0.0.1:REPLICA_PORT, the listener on
127.0.0.1:LISTEN_PORT, pid, logs and temp files under WORK_DIR. Everything else is as shipped.
"""

import os
import re
import sys

conf, work, port, replicas = open(sys.argv[1]).read(), sys.argv[2], sys.argv[3], sys.argv[4:]
servers = "".join(f"        server 127.0.0.1:{p} max_fails=1 fail_timeout=5s;\n" for p in replicas)
conf, n = re.subn(r"(\s*server idverify-\d+:8080[^;]*;\n)+", "\n" + servers, conf)
assert n == 1, "deploy/nginx.conf: upstream servers not found"
for pattern, value in [
    (r"pid [^;]+;", f"pid {work}/nginx.pid;"),
    (r"access_log [^;]+;", f"access_log {work}/access.log;"),
    (r"error_log [^;]+;", f"error_log {work}/error.log warn;"),
    (r"listen 8080;", f"listen 127.0.0.1:{port};"),
]:
    conf, n = re.subn(pattern, value, conf)
    assert n == 1, f"deploy/nginx.conf: {pattern} not found exactly once"
temp = "".join(f"    {k}_temp_path {work}/{k};\n" for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
conf = conf.replace("http {\n", "http {\n" + temp, 1)
print(("user root;\n" if os.geteuid() == 0 else "") + conf)

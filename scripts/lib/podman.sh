# Sourced by the container scripts: runs podman the way it works on this kind of sandbox and on an
# ordinary Linux host alike. Sets PODMAN (an array) and exports CONTAINERS_CONF.
#
# Why each setting (all found by trying, see README "Deploying"):
# - runtime runc: crun refuses a cgroup v1 + v2 "hybrid" host ("cgroups in hybrid mode not
#   supported"); runc runs there, and anywhere else.
# - cgroupfs + file events: no systemd is running as PID 1 here.
# - default_ulimits: podman raises RLIMIT_NOFILE/NPROC for containers by default; without
#   CAP_SYS_RESOURCE that fails ("setrlimit RLIMIT_NOFILE: Operation not permitted"), so the
#   containers get the limits this shell already has (never more).
# - --network host (given per command): builds reach PyPI/npm/Debian the way the host does.

podman_setup() {
    local cache="$1" nofile nproc
    command -v podman >/dev/null || {
        echo "podman missing: apt-get install podman buildah runc debootstrap" >&2
        return 1
    }
    mkdir -p "$cache"
    nofile="$(ulimit -Hn)"
    [[ "$nofile" == unlimited ]] && nofile=1048576
    nproc="$(ulimit -Hu)"
    [[ "$nproc" == unlimited || "$nproc" -gt 32768 ]] && nproc=32768
    cat > "$cache/containers.conf" <<CONF
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF
    export CONTAINERS_CONF="$cache/containers.conf"
    PODMAN=(podman)
}

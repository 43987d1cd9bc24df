# Shell helpers of the host-side scripts (test.sh, demo.sh, docker/build-images.sh,
# docker/smoke.sh):
# `die`, `phase`, which prints a phase's name and its duration, and `make_secrets`. Sourced,
# not run.

die() {
    echo "${0##*/}: $*" >&2
    exit 1
}

phase() {
    local name=$1
    shift
    local start=$SECONDS
    echo "=== ${name}"
    "$@"
    echo "=== ${name}: $((SECONDS - start)) s"
}

# The demo cluster's tokens (docker/secrets/, named in docker/etc/mmm_common.conf's <socket>):
# made once per checkout, random, mode 600, never committed. Every container mounts the
# directory; the entrypoints install the files where the configuration names them.
make_secrets() {
    local dir name
    dir="$(dirname "${BASH_SOURCE[0]}")/secrets"
    install -d -m 700 "${dir}"
    for name in api api-readonly raft agent; do
        if [ ! -s "${dir}/${name}.secret" ]; then
            (umask 077 && head -c 32 /dev/urandom | base64 >"${dir}/${name}.secret")
        fi
    done
}

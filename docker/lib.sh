# Shell helpers of the host-side scripts (test.sh, demo.sh, docker/build-images.sh,
# docker/smoke.sh):
# `die` and `phase`, which prints a phase's name and its duration. Sourced, not run.

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

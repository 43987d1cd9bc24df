#!/usr/bin/env bash
# The chaos suite against the demo cluster of docker-compose.yml:
#   jepsen-like-tests/run.sh                      the short suite: every kind of fault once
#   jepsen-like-tests/run.sh ci                   the faults the cluster heals from on its own (CI)
#   jepsen-like-tests/run.sh long [--minutes N] [--seed S]
#                                                 random faults for N minutes (default 30)
# It starts the cluster afresh (./demo.sh down, then ./demo.sh: images built if absent), runs
# mmm-jepsen from the host (the harness reaches the containers on their bridge and enters their
# network namespaces for partitions, so it needs root), then takes the cluster down unless
# MMM_JEPSEN_KEEP=1. The history and summary go to target/jepsen/<suite>-<time>/.
# Environment: MMM_SKIP_BUILD=1 (use the images as they are), CARGO_TARGET_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=docker/lib.sh
. docker/lib.sh

suite=short
if [ $# -gt 0 ] && [ "$1" != "${1#[a-z]}" ]; then
    suite=$1
    shift
fi
case "${suite}" in
ci | short | long) ;;
*) die "unknown suite '${suite}': ci, short or long" ;;
esac
[ "$(id -u)" -eq 0 ] || die "run as root: partitions enter the containers' network namespaces (nsenter, nft)"
for tool in nsenter nft docker docker-compose; do
    command -v "${tool}" >/dev/null || die "${tool} is missing (apt-get install util-linux nftables docker.io docker-compose)"
done

target=${CARGO_TARGET_DIR:-target}
out="target/jepsen/${suite}-$(date -u +%Y%m%dT%H%M%SZ)"

teardown() {
    local status=$?
    if [ "${MMM_JEPSEN_KEEP:-0}" = 1 ]; then
        echo "=== MMM_JEPSEN_KEEP=1: the cluster stays up (./demo.sh down removes it)"
    else
        ./demo.sh down >/dev/null 2>&1 || echo "run.sh: ./demo.sh down failed" >&2
    fi
    if [ "${status}" -ne 0 ] && [ -d "${out}" ]; then
        echo "run.sh: FAILED; the history is in ${out}" >&2
    fi
    exit "${status}"
}

phase "build mmm-jepsen" cargo build --locked -p mmm-jepsen
phase "fresh demo cluster" bash -c './demo.sh down >/dev/null 2>&1; ./demo.sh'
trap teardown EXIT
phase "chaos suite (${suite})" "${target}/debug/mmm-jepsen" --suite "${suite}" --out "${out}" "$@"

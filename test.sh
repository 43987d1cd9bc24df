#!/usr/bin/env bash
# Runs the whole test suite: formatting, lints, the core purity rule, every cargo test, 2000
# seeds of the deterministic simulation, the systemd units' check, then the demo cluster's smoke test (docker/smoke.sh) and the CI chaos
# suite (jepsen-like-tests/run.sh ci). Each phase prints its duration so a slow step is visible.
#   ./test.sh              everything (as root, with the Docker engine)
#   ./test.sh --no-docker  the cargo phases only
set -euo pipefail
cd "$(dirname "$0")"
# shellcheck source=docker/lib.sh
. docker/lib.sh

core_is_pure() {
    # The core has no IO: none of these may appear among its normal dependencies.
    local deps
    deps=$(cargo tree -p mmm-core -e normal --prefix none)
    if grep -E '^(tokio|sled|axum|mysql_async|rtnetlink|reqwest|hyper) ' <<<"$deps"; then
        echo "mmm-core depends on an IO crate (above); the core must stay pure" >&2
        return 1
    fi
}

prerequisites() {
    # Real MariaDB servers, network namespaces and nft for the integration tests.
    local missing=()
    [ -x /usr/sbin/mariadbd ] || missing+=(mariadb-server)
    [ -x /usr/bin/mariadb-install-db ] || missing+=(mariadb-server)
    command -v ip >/dev/null || missing+=(iproute2)
    # Cloning streams a hot copy with mariabackup and unpacks it with mbstream.
    command -v mariabackup >/dev/null || missing+=(mariadb-backup)
    command -v mbstream >/dev/null || missing+=(mariadb-backup)
    # The switchover test holds a replication stream back with nft.
    command -v nft >/dev/null || missing+=(nftables)
    if [ ${#missing[@]} -gt 0 ]; then
        if [ "$(id -u)" -ne 0 ]; then
            echo "missing: ${missing[*]}; install them (apt-get install ${missing[*]}) or run as root" >&2
            return 1
        fi
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
    /usr/sbin/mariadbd --version
    mariabackup --version 2>&1 | head -1
}

phase "prerequisites" prerequisites
simulation() {
    # The deterministic simulation (sim/): a fixed budget of seeded fault schedules against the
    # real monitor and agent code; any violation prints its seed, its trace and the replay line.
    cargo build --release --locked -p mmm-sim
    "${CARGO_TARGET_DIR:-target}/release/mmm_sim" --seeds 2000
}

phase "cargo fmt --check" cargo fmt --all -- --check
phase "cargo clippy" cargo clippy --workspace --all-targets --locked -- -D warnings
phase "core purity" core_is_pure
phase "cargo test" cargo test --workspace --locked
phase "simulation, 2000 seeds (mmm_sim)" simulation
phase "systemd units (packaging/systemd/verify.sh)" packaging/systemd/verify.sh "${CARGO_TARGET_DIR:-target}/debug"
if [ "${1:-}" = --no-docker ]; then
    echo "=== --no-docker: the smoke test and the chaos suite were not run"
    exit 0
fi
phase "docker smoke test (docker/smoke.sh)" docker/smoke.sh
# The smoke test built the images from this checkout.
phase "chaos suite, ci (jepsen-like-tests/run.sh ci)" env MMM_SKIP_BUILD=1 jepsen-like-tests/run.sh ci

#!/usr/bin/env bash
# The demo cluster (docker-compose.yml): three mmm_mond replicas, four MariaDB 10.11 hosts with
# their mmm_agentd, and a client.
#
#   ./demo.sh [up]   builds the images (docker/build-images.sh: needs root, the Docker engine and
#                    the Rust toolchain; no registry), starts the cluster, waits until the
#                    monitors have a leader and every host is ONLINE, and prints `mmm_control show`
#   ./demo.sh down   stops the cluster and removes its volumes (the images stay)
#
# Then, for example:
#   docker-compose exec client mmm_control show
#   docker-compose exec client mariadb -h 10.214.0.100 -u mmm_app -papp-pw demo
#   docker-compose exec master1 pkill -9 mariadbd        # the writer moves to master2
#   docker-compose exec master1 mmm-start-mysqld          # master1's server is back
#
# Environment: MMM_DEMO_WAIT (seconds to wait for the cluster, default 180), MMM_SKIP_BUILD=1
# (use the images as they are), and what docker/build-images.sh reads (CARGO_TARGET_DIR, ...).
set -euo pipefail
cd "$(dirname "$0")"
# shellcheck source=docker/lib.sh
. docker/lib.sh

HOSTS=(master1 master2 slave1 slave2)
WAIT=${MMM_DEMO_WAIT:-180}

prerequisites() {
    command -v docker >/dev/null || die "docker is missing: install the Docker engine (apt-get install docker.io)"
    command -v docker-compose >/dev/null ||
        die "docker-compose is missing: install it (apt-get install docker-compose); this file is for docker-compose 1.29"
    docker info >/dev/null 2>&1 || die "the Docker daemon does not answer (is it running, and may this user use it?)"
}

control() {
    docker-compose exec -T client mmm_control "$@"
}

diagnose() {
    echo "--- docker-compose ps" >&2
    docker-compose ps >&2 || true
    echo "--- mmm_control show" >&2
    control show >&2 || true
    echo "--- docker-compose logs (last 40 lines of each)" >&2
    docker-compose logs --no-color --tail=40 >&2 || true
}

# Waits until a majority of the monitors knows one leader, every host is known to them (no
# UNKNOWN state), then sets the hosts that wait in AWAITING_RECOVERY online, as an operator of
# MMM does for new hosts, until all four are ONLINE with one writer.
wait_online() {
    local deadline=$((SECONDS + WAIT)) shown host online writers
    until control status >/dev/null 2>&1; do
        if [ "${SECONDS}" -ge "${deadline}" ]; then
            diagnose
            die "the monitor group has no leader after ${WAIT} s (mmm_control status; logs above)"
        fi
        sleep 1
    done
    echo "the monitor group has a leader after $((SECONDS - deadline + WAIT)) s"
    while :; do
        shown=$(control show 2>&1) || true
        online=0
        for host in "${HOSTS[@]}"; do
            if grep -q "^  ${host}([0-9.]*) [a-z]*/ONLINE\." <<<"${shown}"; then
                online=$((online + 1))
            elif grep -q "^  ${host}([0-9.]*) [a-z]*/AWAITING_RECOVERY\." <<<"${shown}"; then
                # It may have gone ONLINE meanwhile, or its agent may not be reachable yet:
                # the next pass sees.
                control set_online "${host}" || true
            fi
        done
        writers=$(grep -c "writer(" <<<"${shown}" || true)
        if [ "${online}" -eq "${#HOSTS[@]}" ] && [ "${writers}" -eq 1 ]; then
            return 0
        fi
        if [ "${SECONDS}" -ge "${deadline}" ]; then
            diagnose
            die "not every host is ONLINE with one writer after ${WAIT} s (show and logs above)"
        fi
        sleep 1
    done
}

compose_up() {
    if ! docker-compose up -d; then
        diagnose
        die "docker-compose up failed (logs above)"
    fi
}

up() {
    local total=$SECONDS
    phase "prerequisites" prerequisites
    if [ "${MMM_SKIP_BUILD:-0}" = 1 ]; then
        echo "=== images: MMM_SKIP_BUILD=1, using them as they are"
    else
        phase "images (docker/build-images.sh)" docker/build-images.sh
    fi
    make_secrets
    phase "docker-compose up -d" compose_up
    phase "wait for a leader and every host ONLINE" wait_online
    echo "=== mmm_control show"
    control show
    echo "=== demo.sh total: $((SECONDS - total)) s"
}

down() {
    prerequisites
    phase "docker-compose down -v" docker-compose down -v --remove-orphans --timeout 40
}

case "${1:-up}" in
up) up ;;
down) down ;;
*) die "usage: ./demo.sh [up|down]" ;;
esac

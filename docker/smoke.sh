#!/usr/bin/env bash
# Smoke test of the demo cluster (run by CI): ./demo.sh brings it up, then
#   1. `mmm_control show`: every host ONLINE, exactly one writer, on master1;
#   2. a write through the writer VIP from the client, replicated to the three other hosts;
#   3. master1's mariadbd is killed (SIGKILL): within 30 s the writer role is on master2 and a
#      write through the writer VIP succeeds;
#   4. slave1 and slave2 replicate from master2 and have that write;
# then ./demo.sh down. Exits non-zero, saying what failed, on any failure.
# MMM_SMOKE_KEEP=1 leaves the cluster running afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=docker/lib.sh
. docker/lib.sh

WRITER_VIP=10.214.0.100
MASTER2_IP=10.214.0.22
HOSTS=(master1 master2 slave1 slave2)
FAILOVER_LIMIT=30

diagnose() {
    echo "--- mmm_control show" >&2
    docker-compose exec -T client mmm_control show >&2 || true
    echo "--- docker-compose ps" >&2
    docker-compose ps >&2 || true
    echo "--- docker-compose logs (last 60 lines of each)" >&2
    docker-compose logs --no-color --tail=60 >&2 || true
}

fail() {
    echo "smoke.sh: FAILED: $*" >&2
    diagnose
    exit 1
}

teardown() {
    local status=$?
    if [ "${MMM_SMOKE_KEEP:-0}" = 1 ]; then
        echo "=== MMM_SMOKE_KEEP=1: the cluster stays up (./demo.sh down removes it)"
    else
        ./demo.sh down || echo "smoke.sh: ./demo.sh down failed" >&2
    fi
    if [ "${status}" -eq 0 ]; then
        echo "smoke.sh: PASSED"
    fi
    exit "${status}"
}

show() {
    docker-compose exec -T client mmm_control show
}

# One INSERT through the writer VIP as the application account, from the client host.
write_through_vip() {
    docker-compose exec -T client mariadb -h "${WRITER_VIP}" -u mmm_app -papp-pw \
        --connect-timeout=2 -e "INSERT INTO demo.w (v, host) VALUES ($1, @@hostname)"
}

# A query as root over the server's socket on a database host; prints the first column.
query() {
    docker-compose exec -T "$1" mariadb -N -B -e "$2"
}

# The hosts whose show line has the writer role.
writers() {
    grep -E '^  [a-z0-9]+\(' <<<"$1" | grep 'writer(' | sed -E 's/^  ([a-z0-9]+)\(.*/\1/' || true
}

# Waits up to 20 s until `host` has the row `v`.
wait_for_row() {
    local host=$1 v=$2 deadline=$((SECONDS + 20))
    until [ "$(query "${host}" "SELECT COUNT(*) FROM demo.w WHERE v=${v}" 2>/dev/null)" = 1 ]; do
        [ "${SECONDS}" -lt "${deadline}" ] || fail "${host} does not have the row v=${v} after 20 s"
        sleep 0.5
    done
}

check_cluster() {
    local shown host w
    shown=$(show) || fail "mmm_control show failed"
    echo "${shown}"
    for host in "${HOSTS[@]}"; do
        grep -q "^  ${host}([0-9.]*) [a-z]*/ONLINE\." <<<"${shown}" || fail "${host} is not ONLINE"
    done
    w=$(writers "${shown}")
    [ "$(grep -c . <<<"${w}")" -eq 1 ] || fail "not exactly one host has the writer role: '${w}'"
    [ "${w}" = master1 ] || fail "the writer is '${w}', not master1"
    grep -q "writer(${WRITER_VIP})" <<<"${shown}" || fail "the writer role does not show ${WRITER_VIP}"
}

check_write() {
    write_through_vip 1 || fail "a write through the writer VIP ${WRITER_VIP} failed"
    local host
    for host in master2 slave1 slave2; do
        wait_for_row "${host}" 1
    done
    echo "the write through ${WRITER_VIP} went to $(query master1 'SELECT host FROM demo.w WHERE v=1') and reached master2, slave1, slave2"
}

failover() {
    local start shown w moved_at="" written_at=""
    docker-compose exec -T master1 pkill -9 -x mariadbd || fail "could not kill master1's mariadbd"
    start=$(date +%s%N)
    local deadline=$((SECONDS + FAILOVER_LIMIT))
    while [ -z "${written_at}" ]; do
        if [ "${SECONDS}" -ge "${deadline}" ]; then
            fail "within ${FAILOVER_LIMIT} s of killing master1's mariadbd: $([ -n "${moved_at}" ] &&
                echo "the writer role moved to master2 but no write through ${WRITER_VIP} succeeded" ||
                echo "the writer role did not move to master2")"
        fi
        if [ -z "${moved_at}" ]; then
            shown=$(show 2>/dev/null) || true
            w=$(writers "${shown}")
            if [ "${w}" = master2 ]; then
                moved_at=$(date +%s%N)
                echo "${shown}"
            fi
        fi
        if [ -n "${moved_at}" ] && write_through_vip 2 2>/dev/null; then
            written_at=$(date +%s%N)
        else
            sleep 0.2
        fi
    done
    echo "writer role on master2 $(((moved_at - start) / 1000000)) ms after the kill (as seen by polling mmm_control show)"
    echo "first write through ${WRITER_VIP} acknowledged $(((written_at - start) / 1000000)) ms after the kill"
    [ "$(query master2 'SELECT host FROM demo.w WHERE v=2')" = master2 ] ||
        fail "the write after the failover did not land on master2"
}

check_slaves() {
    local host deadline master
    for host in slave1 slave2; do
        deadline=$((SECONDS + 20))
        while :; do
            master=$(docker-compose exec -T "${host}" mariadb -e 'SHOW SLAVE STATUS\G' 2>/dev/null |
                sed -n 's/^ *Master_Host: //p')
            [ "${master}" = "${MASTER2_IP}" ] && break
            [ "${SECONDS}" -lt "${deadline}" ] ||
                fail "${host} replicates from '${master}', not master2 (${MASTER2_IP}), 20 s after the failover"
            sleep 0.5
        done
        wait_for_row "${host}" 2
        echo "${host} replicates from master2 and has the write"
    done
}

trap teardown EXIT
total=$SECONDS
phase "demo.sh" ./demo.sh
phase "one writer (master1), every host ONLINE" check_cluster
phase "a write through the writer VIP, replicated" check_write
phase "kill master1's mariadbd: failover to master2" failover
phase "the slaves follow master2" check_slaves
echo "=== smoke.sh total: $((SECONDS - total)) s"

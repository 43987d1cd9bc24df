# shellcheck shell=bash
# Shared by the entrypoints (sourced, not run).

# The configuration files are mounted read-only at /etc/mmm-ro with whatever mode the checkout
# gave them; the daemons refuse a file readable by others, so they are copied with mode 600.
MMM_CONFIG_SOURCE=/etc/mmm-ro
MMM_CONFIG_DIR=/etc/mysql-mmm

mmm_log() {
    echo "$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ) ${0##*/}: $*" >&2
}

mmm_die() {
    mmm_log "$*"
    exit 1
}

mmm_install_configs() {
    local f n=0
    [ -d "${MMM_CONFIG_SOURCE}" ] ||
        mmm_die "${MMM_CONFIG_SOURCE} is missing: mount the configuration files there (see docker-compose.yml)"
    install -d -m 700 "${MMM_CONFIG_DIR}"
    for f in "${MMM_CONFIG_SOURCE}"/*.conf; do
        [ -e "${f}" ] || continue
        install -m 600 "${f}" "${MMM_CONFIG_DIR}/${f##*/}"
        n=$((n + 1))
    done
    [ "${n}" -gt 0 ] || mmm_die "no .conf file in ${MMM_CONFIG_SOURCE}"
    # The tokens of <socket> (docker/secrets/, made by docker/build-images.sh or ./demo.sh).
    n=0
    for f in "${MMM_CONFIG_SOURCE}"/secrets/*.secret; do
        [ -e "${f}" ] || continue
        install -m 600 "${f}" "${MMM_CONFIG_DIR}/${f##*/}"
        n=$((n + 1))
    done
    [ "${n}" -gt 0 ] ||
        mmm_die "no token in ${MMM_CONFIG_SOURCE}/secrets: run docker/build-images.sh or ./demo.sh, which make docker/secrets/"
}

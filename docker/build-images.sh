#!/usr/bin/env bash
# Builds the demo cluster's images locally, with no registry:
#
#   mmm-raft/base:bookworm  Debian bookworm with MariaDB 10.11, iproute2, tini and a few tools:
#                           a debootstrap'd root file system brought in with `docker import`;
#                           built once, reused while it exists.
#   mmm-raft/node:latest    the base plus mmm_mond, mmm_agentd, mmm_control and the entrypoints
#                           (docker/Dockerfile); rebuilt on every run, which is quick.
#
# Host-built binaries go into the image, so the host must run Debian bookworm (or anything whose
# glibc is not newer than bookworm's). Runs as root (debootstrap, chroot). Prints each phase and
# its duration.
#
# Environment:
#   CARGO_TARGET_DIR       where cargo builds (default ./target)
#   MMM_BASE_IMAGE         the base image (default mmm-raft/base:bookworm); with a registry,
#                          MMM_BASE_IMAGE=debian:bookworm works too: the Dockerfile installs the
#                          packages when the base lacks them
#   MMM_IMAGE              the image to build (default mmm-raft/node:latest)
#   MMM_REBUILD_BASE=1     build the base image again even if it exists
#   DEBIAN_MIRROR          default http://deb.debian.org/debian
#   DEBIAN_SECURITY_MIRROR default http://deb.debian.org/debian-security ("" to leave it out)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=docker/lib.sh
. docker/lib.sh

BASE_IMAGE=${MMM_BASE_IMAGE:-mmm-raft/base:bookworm}
IMAGE=${MMM_IMAGE:-mmm-raft/node:latest}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=${DEBIAN_SECURITY_MIRROR-http://deb.debian.org/debian-security}
TARGET_DIR=${CARGO_TARGET_DIR:-target}
BINARIES=(mmm_mond mmm_agentd mmm_control mmm_backup mmm_restore mmm_clone)
# What the base image holds; the Dockerfile installs the same list on a plain Debian base.
PACKAGES=(mariadb-server mariadb-client mariadb-backup iproute2 iptables nftables procps ca-certificates tini)

prerequisites() {
    command -v docker >/dev/null || die "docker is missing: install the Docker engine (apt-get install docker.io)"
    docker info >/dev/null 2>&1 || die "the Docker daemon does not answer (is it running, and may this user use it?)"
    command -v cargo >/dev/null || die "cargo is missing: install the Rust toolchain (rustup)"
    docker --version
}

rootfs_dir=""

unmount_rootfs() {
    [ -n "${rootfs_dir}" ] || return 0
    local m
    for m in dev/pts proc sys; do
        if mountpoint -q "${rootfs_dir}/${m}" 2>/dev/null; then
            umount -l "${rootfs_dir}/${m}" || true
        fi
    done
}

cleanup_rootfs() {
    [ -n "${rootfs_dir}" ] || return 0
    unmount_rootfs
    # --one-file-system: never follow a mount that failed to come off into the host.
    rm -rf --one-file-system "$(dirname "${rootfs_dir}")"
    rootfs_dir=""
}

in_chroot() {
    chroot "${rootfs_dir}" /usr/bin/env -i \
        PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
        DEBIAN_FRONTEND=noninteractive "$@"
}

debootstrap_rootfs() {
    if ! command -v debootstrap >/dev/null; then
        [ "$(id -u)" -eq 0 ] || die "debootstrap is missing and this is not root: apt-get install debootstrap"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
    fi
    local work
    # Under /var/tmp: a real disk, unlike a tmpfs /tmp.
    work=$(mktemp -d /var/tmp/mmm-raft-base.XXXXXX)
    rootfs_dir="${work}/rootfs"
    trap cleanup_rootfs EXIT
    debootstrap --variant=minbase bookworm "${rootfs_dir}" "${MIRROR}" >"${work}/debootstrap.log" 2>&1 || {
        tail -n 30 "${work}/debootstrap.log" >&2
        die "debootstrap of bookworm from ${MIRROR} failed (log above)"
    }
}

install_packages() {
    local r=${rootfs_dir}
    {
        echo "deb ${MIRROR} bookworm main"
        echo "deb ${MIRROR} bookworm-updates main"
        if [ -n "${SECURITY_MIRROR}" ]; then
            echo "deb ${SECURITY_MIRROR} bookworm-security main"
        fi
    } >"${r}/etc/apt/sources.list"
    # No service starts inside the chroot (nor, later, inside a container on a package install).
    printf '#!/bin/sh\nexit 101\n' >"${r}/usr/sbin/policy-rc.d"
    chmod 755 "${r}/usr/sbin/policy-rc.d"
    cp /etc/resolv.conf "${r}/etc/resolv.conf"
    mount -t proc proc "${r}/proc"
    mount -t sysfs sysfs "${r}/sys"
    in_chroot apt-get update -qq
    in_chroot apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" >"${r}/../install.log" 2>&1 || {
        tail -n 30 "${r}/../install.log" >&2
        die "installing ${PACKAGES[*]} in the bookworm chroot failed (log above)"
    }
    in_chroot /usr/sbin/mariadbd --version
    in_chroot apt-get clean
    unmount_rootfs
    rm -rf "${r}/var/lib/apt/lists/"* "${r}/var/cache/apt/"*.bin "${r}/var/cache/debconf/"*-old \
        "${r}/usr/share/doc/"* "${r}/usr/share/man/"* "${r}/usr/share/info/"* \
        "${r}/var/log/"*.log "${r}/var/log/apt/"* "${r}/tmp/"* "${r}/root/.bash_history"
    # Docker provides these at run time.
    : >"${r}/etc/resolv.conf"
    echo "localhost" >"${r}/etc/hostname"
}

import_base() {
    tar --numeric-owner -C "${rootfs_dir}" -c . |
        docker import \
            -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
            -c 'ENV LANG=C.UTF-8' \
            -c 'CMD ["/bin/bash"]' \
            -c "LABEL mmm-raft.packages=\"${PACKAGES[*]}\"" \
            -m "Debian bookworm minbase with ${PACKAGES[*]}" \
            - "${BASE_IMAGE}"
    cleanup_rootfs
    trap - EXIT
    docker image ls "${BASE_IMAGE}"
}

build_binaries() {
    cargo build --release --locked -p mmm-mond -p mmm-agent -p mmm-control --bins
    local b
    for b in "${BINARIES[@]}"; do
        [ -x "${TARGET_DIR}/release/${b}" ] || die "${TARGET_DIR}/release/${b} was not built"
    done
}

context_dir=""

build_image() {
    context_dir=$(mktemp -d)
    trap 'rm -rf "${context_dir}"' EXIT
    # A small build context: the Dockerfile, the scripts and the binaries.
    cp docker/Dockerfile "${context_dir}/Dockerfile"
    cp -r docker/scripts "${context_dir}/scripts"
    mkdir "${context_dir}/bin"
    local b
    for b in "${BINARIES[@]}"; do
        cp "${TARGET_DIR}/release/${b}" "${context_dir}/bin/${b}"
    done
    # The legacy builder: it needs no buildx plugin and no registry.
    DOCKER_BUILDKIT=${DOCKER_BUILDKIT:-0} docker build --build-arg "BASE=${BASE_IMAGE}" \
        -t "${IMAGE}" "${context_dir}"
    rm -rf "${context_dir}"
    trap - EXIT
    # The previous build of this image, now untagged.
    docker image prune -f --filter "label=mmm-raft.image=node" >/dev/null
    docker image ls "${IMAGE}"
}

total=$SECONDS
phase "prerequisites" prerequisites
# Our own base is built again when it was made with another package list (its label).
base_outdated() {
    [ "${BASE_IMAGE}" = "mmm-raft/base:bookworm" ] || return 1
    local had
    had=$(docker image inspect -f '{{ index .Config.Labels "mmm-raft.packages" }}' "${BASE_IMAGE}" 2>/dev/null) || return 1
    [ "${had}" != "${PACKAGES[*]}" ]
}
if base_outdated; then
    echo "=== base image ${BASE_IMAGE} lacks some of ${PACKAGES[*]}: building it again"
    MMM_REBUILD_BASE=1
fi
if [ "${MMM_REBUILD_BASE:-0}" = 1 ] || ! docker image inspect "${BASE_IMAGE}" >/dev/null 2>&1; then
    if [ "${BASE_IMAGE}" != "mmm-raft/base:bookworm" ] && [ "${MMM_REBUILD_BASE:-0}" != 1 ]; then
        die "the base image ${BASE_IMAGE} is missing: pull it first (docker pull ${BASE_IMAGE})"
    fi
    [ "$(id -u)" -eq 0 ] || die "building the base image needs root (debootstrap, chroot): run as root, or build it once as root"
    phase "base image: debootstrap bookworm" debootstrap_rootfs
    phase "base image: install ${PACKAGES[*]}" install_packages
    phase "base image: docker import ${BASE_IMAGE}" import_base
else
    echo "=== base image ${BASE_IMAGE} exists: reused (MMM_REBUILD_BASE=1 builds it again)"
fi
phase "cargo build --release (${TARGET_DIR})" build_binaries
phase "docker build ${IMAGE}" build_image
make_secrets
echo "=== build-images.sh total: $((SECONDS - total)) s"

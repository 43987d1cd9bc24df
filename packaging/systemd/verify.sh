#!/bin/bash
# Checks the systemd units in this directory.
#
#   packaging/systemd/verify.sh [BIN_DIR] [UNIT_FILE...]
#
# A unit's drop-ins beside it (NAME.service.d/*.conf) are checked too: each appended to a copy
# of the unit, which goes through the same checks.
#
# BIN_DIR holds built mmm_mond and mmm_agentd (default: the first of
# ${CARGO_TARGET_DIR:-<repo>/target}/release and .../debug that has them). UNIT_FILE defaults
# to every *.service beside this script.
#
# 1. `systemd-analyze verify` on a copy of each unit whose Exec*= binaries are replaced by
#    the built ones from BIN_DIR (or by stand-in executables when there are none), so that
#    the check does not depend on what is installed in /usr/local/sbin. Any diagnostic at
#    all fails the check: systemd-analyze reports an unknown or misspelled key only as a
#    warning and still exits 0.
# 2. A negative control: the same check on a copy with one key misspelled must fail;
#    otherwise the verifier on this machine proves nothing and the script fails.
# 3. Every Exec*= command line must be accepted by the real binary: its options must appear
#    in the binary's --help, and the binary must parse the whole line (the line followed by
#    --help must exit 0; an unknown option or a missing value exits 2). Without a built
#    binary this step says so and is not counted as passed.
#
# systemd-analyze comes with the Debian package `systemd`; when it is missing and this runs
# as root with apt-get, it is installed; otherwise the script fails and says what to install.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "${here}/../.." && pwd)

die() {
    echo "verify.sh: $*" >&2
    exit 1
}

bin_dir=""
if [ $# -gt 0 ] && [ -d "$1" ]; then
    bin_dir=$(cd "$1" && pwd)
    shift
fi
if [ $# -gt 0 ]; then
    units=("$@")
else
    units=("${here}"/*.service)
fi
[ -e "${units[0]}" ] || die "no unit files given or found in ${here}"
for unit in "${units[@]}"; do
    [ -f "${unit}" ] || die "${unit}: no such file"
done

if [ -z "${bin_dir}" ]; then
    target=${CARGO_TARGET_DIR:-${repo}/target}
    for profile in release debug; do
        if [ -x "${target}/${profile}/mmm_mond" ] || [ -x "${target}/${profile}/mmm_agentd" ]; then
            bin_dir="${target}/${profile}"
            break
        fi
    done
fi

# systemd-analyze, installed if it can be.
if ! command -v systemd-analyze >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "systemd-analyze is missing: installing the Debian package systemd" >&2
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends systemd >/dev/null
    fi
    command -v systemd-analyze >/dev/null 2>&1 ||
        die "systemd-analyze is missing: install the package that provides it (Debian/Ubuntu: apt-get install systemd; it needs root)"
fi

work=$(mktemp -d)
trap 'rm -rf "${work}"' EXIT
mkdir -p "${work}/standin" "${work}/units" "${work}/control" "${work}/merged"

# Each drop-in appended to its unit: the unit as systemd would run it with that drop-in.
for unit in "${units[@]}"; do
    for dropin in "${unit}.d"/*.conf; do
        [ -f "${dropin}" ] || continue
        merged="${work}/merged/$(basename "${unit}" .service)-with-$(basename "${dropin}" .conf).service"
        cat "${unit}" "${dropin}" >"${merged}"
        units+=("${merged}")
    done
done

# The binary of an Exec*= value: the first word after systemd's prefixes (-@:+!).
exec_binary() {
    local value=$1
    [[ ${value} =~ ^[-@:+!]*([^[:space:]]*) ]]
    printf '%s\n' "${BASH_REMATCH[1]}"
}

# The built binary for a unit's binary path, or a stand-in executable.
resolve_binary() {
    local name
    name=$(basename "$1")
    if [ -n "${bin_dir}" ] && [ -x "${bin_dir}/${name}" ]; then
        printf '%s\n' "${bin_dir}/${name}"
    else
        if [ ! -x "${work}/standin/${name}" ]; then
            printf '#!/bin/sh\nexit 0\n' >"${work}/standin/${name}"
            chmod 755 "${work}/standin/${name}"
        fi
        printf '%s\n' "${work}/standin/${name}"
    fi
}

# Copies a unit to DIR with every Exec*= binary replaced by resolve_binary's.
rewrite_unit() {
    local unit=$1 dir=$2 copy line binary replacement
    copy="${dir}/$(basename "${unit}")"
    cp "${unit}" "${copy}"
    while IFS= read -r line; do
        binary=$(exec_binary "${line#*=}")
        [ -n "${binary}" ] || continue
        replacement=$(resolve_binary "${binary}")
        # Replace that path wherever it starts an Exec*= value.
        sed -i -E "s#^(Exec[A-Za-z]*=[-@:+!]*)${binary}( |\$)#\\1${replacement}\\2#" "${copy}"
    done < <(grep -E '^Exec[A-Za-z]*=' "${unit}" || true)
    printf '%s\n' "${copy}"
}

# systemd-analyze verify; prints its diagnostics and returns 1 if there are any.
analyze() {
    local out status=0
    out=$(cd "$(dirname "$1")" && systemd-analyze verify "./$(basename "$1")" 2>&1) || status=$?
    if [ "${status}" != 0 ] || [ -n "${out}" ]; then
        printf '%s\n' "${out}" | sed 's/^/    /'
        return 1
    fi
}

failed=0
unchecked=0

echo "systemd-analyze: $(systemd-analyze --version | head -n 1)"
if [ -n "${bin_dir}" ]; then
    echo "binaries: ${bin_dir}"
else
    echo "binaries: none built (looked in ${CARGO_TARGET_DIR:-${repo}/target}/{release,debug}); stand-ins are used"
fi

for unit in "${units[@]}"; do
    name=$(basename "${unit}")
    copy=$(rewrite_unit "${unit}" "${work}/units")

    # 1. systemd-analyze verify.
    if diagnostics=$(analyze "${copy}"); then
        echo "ok   ${name}: systemd-analyze verify reports nothing"
    else
        echo "FAIL ${name}: systemd-analyze verify says:"
        printf '%s\n' "${diagnostics}"
        failed=1
    fi

    # 2. The negative control: a misspelled key must be reported.
    control="${work}/control/${name}"
    sed -E '0,/^(Type|ExecStart)=/s//X\1=/' "${copy}" >"${control}"
    if cmp -s "${copy}" "${control}"; then
        echo "FAIL ${name}: no Type= or ExecStart= line to misspell for the negative control"
        failed=1
    elif analyze "${control}" >/dev/null; then
        echo "FAIL ${name}: a misspelled key went unreported, so this systemd-analyze proves nothing"
        failed=1
    else
        echo "ok   ${name}: a copy with a misspelled key is rejected (negative control)"
    fi

    # 3. The command lines against the real binaries.
    while IFS= read -r line; do
        value=${line#*=}
        binary=$(exec_binary "${value}")
        real="${bin_dir:+${bin_dir}/$(basename "${binary}")}"
        if [ -z "${real}" ] || [ ! -x "${real}" ]; then
            echo "NOTE ${name}: ${line%%=*} not checked: no built $(basename "${binary}")" \
                "(build it: cargo build --bin $(basename "${binary}"), or give BIN_DIR)"
            unchecked=1
            continue
        fi
        args=${value#*"${binary}"}
        # The units use no quoting, so splitting on spaces is the command line.
        read -r -a argv <<<"${args}"
        help=$("${real}" --help 2>&1) || die "${real} --help failed: ${help}"
        bad=0
        for arg in "${argv[@]}"; do
            case "${arg}" in
            --*)
                option=${arg%%=*}
                if ! grep -qE -- "(^|[ ,])${option}([ =,<]|\$)" <<<"${help}"; then
                    echo "FAIL ${name}: ${option} is not an option of $(basename "${binary}") (not in its --help)"
                    bad=1
                fi
                ;;
            esac
        done
        parse_out=$("${real}" "${argv[@]}" --help 2>&1) || {
            echo "FAIL ${name}: $(basename "${binary}") does not accept '${args# }':"
            printf '%s\n' "${parse_out}" | sed 's/^/    /'
            bad=1
        }
        if [ "${bad}" = 0 ]; then
            echo "ok   ${name}: $(basename "${binary}") accepts '${args# }'"
        else
            failed=1
        fi
    done < <(grep -E '^Exec[A-Za-z]*=' "${unit}" || true)
done

if [ "${failed}" != 0 ]; then
    echo "verify.sh: FAILED" >&2
    exit 1
fi
if [ "${unchecked}" != 0 ]; then
    echo "verify.sh: units pass systemd-analyze; command-line flags NOT checked (no built binaries)"
else
    echo "verify.sh: all checks passed"
fi

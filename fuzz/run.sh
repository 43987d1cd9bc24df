#!/usr/bin/env bash
# Builds the fuzz targets and runs each for a while, one after the other (docs/fuzzing.md).
#
#   fuzz/run.sh [seconds-per-target] [target...]
#
# With no target, runs every target cargo-fuzz lists. Default: 60 s per target. Prints each
# target's executions and executions per second; exits 1 if any target crashed (the input is
# in fuzz/artifacts/<target>/) and 2 on a usage or build error.
#
# Environment: FUZZ_ARGS adds libFuzzer options (e.g. FUZZ_ARGS="-max_len=8192");
# FUZZ_KEEP_GOING=1 goes on fuzzing after a crash (fork mode) instead of stopping at the first.
# New inputs the fuzzer finds go to fuzz/work/corpus/<target>/; the seeds in
# fuzz/corpus/<target>/ are read, never written. Logs: fuzz/work/logs/<target>/.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
cd "$root"

seconds="${1:-60}"
if ! [[ "$seconds" =~ ^[0-9]+$ ]] || [ "$seconds" -eq 0 ]; then
    echo "usage: fuzz/run.sh [seconds-per-target] [target...]" >&2
    exit 2
fi
shift || true

# cargo-fuzz needs nightly flags (-Zsanitizer, -Cpasses=sancov-module); the stable toolchain
# accepts them with RUSTC_BOOTSTRAP=1. The fuzz crate is its own workspace with its own
# target directory.
export RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$here/target}"

if ! command -v cargo-fuzz >/dev/null 2>&1; then
    echo "cargo-fuzz is not installed: cargo install cargo-fuzz" >&2
    exit 2
fi

if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo fuzz list)
fi
known="$(cargo fuzz list)"
for t in "${targets[@]}"; do
    if ! grep -qx "$t" <<<"$known"; then
        echo "unknown target '$t'; targets: $(tr '\n' ' ' <<<"$known")" >&2
        exit 2
    fi
done

echo "== building ${#targets[@]} target(s)"
if [ "$#" -gt 0 ]; then
    for t in "${targets[@]}"; do
        cargo fuzz build "$t" || exit 2
    done
else
    cargo fuzz build || exit 2
fi

bin_dir="$CARGO_TARGET_DIR/x86_64-unknown-linux-gnu/release"
crashed=()
summary=()
for t in "${targets[@]}"; do
    work="$here/work/corpus/$t"
    seeds="$here/corpus/$t"
    logdir="$here/work/logs/$t"
    artifacts="$here/artifacts/$t"
    mkdir -p "$work" "$seeds" "$logdir" "$artifacts"
    log="$logdir/run.log"
    before="$(find "$artifacts" -type f | wc -l)"
    # The binary runs directly rather than through `cargo fuzz run`, so that a change to the
    # tree during the run cannot trigger a rebuild. -jobs=1 runs one fuzzing job, whose
    # output libFuzzer writes to fuzz-0.log in the current directory. With
    # FUZZ_KEEP_GOING=1 the job instead runs in fork mode and goes on after a crash (each
    # crash is still saved), so that a known crash does not end the run early.
    if [ "${FUZZ_KEEP_GOING:-0}" = 1 ]; then
        mode=(-fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1)
        out="$log"
    else
        mode=(-jobs=1)
        out="$logdir/fuzz-0.log"
    fi
    echo "== $t: ${seconds}s (log: ${out#"$root"/})"
    status=0
    # shellcheck disable=SC2086 # FUZZ_ARGS is a list of options
    (cd "$logdir" && rm -f fuzz-0.log &&
        "$bin_dir/$t" "${mode[@]}" -max_total_time="$seconds" -timeout=10 \
            -print_final_stats=1 -artifact_prefix="$artifacts/" ${FUZZ_ARGS:-} \
            "$work" "$seeds") >"$log" 2>&1 || status=$?
    after="$(find "$artifacts" -type f | wc -l)"
    runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$out" | tail -n1)"
    rate="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$out" | tail -n1)"
    if [ -z "$runs" ]; then
        # Fork mode prints no final stats; its last progress line has the total.
        runs="$(sed -n 's/^#\([0-9]*\): cov:.*/\1/p' "$out" | tail -n1)"
        [ -n "$runs" ] && rate=$((runs / seconds))
    fi
    if [ "$after" -gt "$before" ] || [ "$status" -ne 0 ]; then
        crashed+=("$t")
        line="$t: CRASH, ${runs:-?} executions (${rate:-?} exec/s), exit $status,"
        line="$line $((after - before)) new input(s) in ${artifacts#"$root"/}/"
    else
        line="$t: ${runs:-?} executions, ${rate:-?} exec/s, no crash"
    fi
    echo "$line"
    summary+=("$line")
done

echo "== summary (${seconds}s per target)"
printf '%s\n' "${summary[@]}"
if [ "${#crashed[@]}" -gt 0 ]; then
    echo "crashed: ${crashed[*]} (reproduce: docs/fuzzing.md)" >&2
    exit 1
fi

#!/usr/bin/env bash
# Breaks one rule of the lease protocol at a time in the daemons' code and shows that the
# simulation catches it within the seeds test.sh runs: each mutant must make `mmm_sim` fail.
#   sim/mutants.sh            every mutant
#   sim/mutants.sh NAME...    some of them (early-promote renew-without-quorum
#                             accept-lower-epoch skip-relay-wait)
# The tree must be clean: each mutant is a sed on a committed file, undone with git checkout.
set -euo pipefail
cd "$(dirname "$0")/.."
SEEDS=${MMM_MUTANT_SEEDS:-2000}

if ! git diff --quiet; then
    echo "the working tree has changes: commit or stash them first" >&2
    exit 2
fi

mutate() {
    # name file sed-expression what
    case "$1" in
    early-promote)
        # The leader's fence gate waits a quarter of the lease instead of lease x (1 + drift)
        # before it lets a new writer in while the old one has not confirmed its demotion.
        echo "core/src/fence.rs" 's/let until = from.plus(self.bound);/let until = from.plus(self.bound \/ 4);/' ;;
    renew-without-quorum)
        # The leader grants the lease without confirming with a quorum that it still leads.
        echo "src/lease.rs" 's/match tokio::time::timeout(confirm_within, raft.ensure_linearizable()).await {/match Ok::<Result<(), String>, ()>(Ok(())) {/' ;;
    accept-lower-epoch)
        # The agent accepts a status of an epoch lower than the highest it has seen.
        echo "agent/src/agent.rs" 's/        if epoch < seen {/        if epoch < seen \&\& false {/' ;;
    skip-relay-wait)
        # A new writer takes writes without waiting for its relay log to be applied.
        echo "agent/src/agent.rs" 's/None => match self.mysql.wait_relay_applied(limit).await {/None => match Ok::<(), crate::ops::MysqlError>(()) {/' ;;
    *)
        echo "unknown mutant $1" >&2
        return 2 ;;
    esac
}

names=("$@")
[ ${#names[@]} -gt 0 ] || names=(early-promote renew-without-quorum accept-lower-epoch skip-relay-wait)
status=0
for name in "${names[@]}"; do
    read -r file expr < <(mutate "$name")
    trap 'git checkout -- "$file"' EXIT
    sed -i "$expr" "$file"
    if git diff --quiet -- "$file"; then
        echo "$name: the sed did not change $file (the code moved?)" >&2
        exit 2
    fi
    echo "=== $name: $(git diff --stat -- "$file" | head -1)"
    cargo build --release --locked -q -p mmm-sim
    if out=$("${CARGO_TARGET_DIR:-target}/release/mmm_sim" --seeds "$SEEDS" 2>&1); then
        echo "$name: NOT CAUGHT in $SEEDS seeds"
        status=1
    else
        echo "$name: caught: $(grep -E '^VIOLATION' <<<"$out")"
    fi
    git checkout -- "$file"
    trap - EXIT
done
cargo build --release --locked -q -p mmm-sim
exit $status

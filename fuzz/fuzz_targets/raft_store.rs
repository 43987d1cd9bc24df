//! The values the Raft store reads back from sled, decoded with `mmm_raft::codec::decode`:
//! log entries (`logs` tree), the vote, the committed and last purged log ids and the group id
//! (`meta` tree), and the stored snapshot (`snapshot` tree) whose data is the encoded
//! `AppliedState`. A corrupt disk must give an error naming the value, never a panic. Every
//! input is tried as each type; a stored snapshot that decodes has its data decoded too.
//!
//! Invariants beyond "no panic": decoding allocates at most `codec::MAX_ENCODED_LEN` bytes; a
//! decode error names what was decoded; a value that decodes survives encode → decode (same
//! bytes when re-encoded, and an equal value).

#![no_main]

use libfuzzer_sys::fuzz_target;
use mmm_fuzz::codec_round_trip_eq;
use mmm_raft::typ::{Entry, LogId, SnapshotMeta, Vote};
use mmm_raft::AppliedState;
use serde::{Deserialize, Serialize};

/// The shape of `mmm_raft`'s private `StoredSnapshot` (`raft/src/state_machine.rs`): bincode
/// encodes a struct as its fields in order, so this decodes the same bytes.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct StoredSnapshot {
    meta: SnapshotMeta,
    data: Vec<u8>,
}

fuzz_target!(|data: &[u8]| {
    codec_round_trip_eq::<Entry>("log entry", data);
    codec_round_trip_eq::<Vote>("vote", data);
    codec_round_trip_eq::<LogId>("committed log id", data);
    codec_round_trip_eq::<String>("group id", data);
    codec_round_trip_eq::<AppliedState>("snapshot", data);
    if let Some(stored) = codec_round_trip_eq::<StoredSnapshot>("stored snapshot", data) {
        codec_round_trip_eq::<AppliedState>("snapshot", &stored.data);
    }
});

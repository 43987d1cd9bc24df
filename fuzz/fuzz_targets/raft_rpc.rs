//! Raft RPC bodies, decoded with `mmm_raft::codec::decode` as `mmm_raft::network` does: the
//! server side's `AppendEntriesRequest`, `VoteRequest` and `InstallSnapshotRequest` (for the
//! crate's `TypeConfig`), and the client side's `Result<…Response, RaftError<…>>` replies.
//! Every input is tried as each of the six types.
//!
//! Invariants beyond "no panic": decoding allocates at most `codec::MAX_ENCODED_LEN` bytes
//! (the bound `raft/src/codec.rs` documents); a decode error names what was decoded; a value
//! that decodes survives encode → decode (same bytes when re-encoded, and an equal value where
//! the type has `PartialEq`).

#![no_main]

use libfuzzer_sys::fuzz_target;
use mmm_fuzz::{codec_round_trip, codec_round_trip_eq};
use mmm_raft::typ::NodeId;
use mmm_raft::TypeConfig;
use openraft::error::{InstallSnapshotError, RaftError};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};

fuzz_target!(|data: &[u8]| {
    // Server side: the request bodies of /raft/append, /raft/vote and /raft/snapshot.
    if let Some((first, second)) =
        codec_round_trip::<AppendEntriesRequest<TypeConfig>>("append request", data)
    {
        // `AppendEntriesRequest` has no `PartialEq`; its fields do.
        assert_eq!(first.vote, second.vote);
        assert_eq!(first.prev_log_id, second.prev_log_id);
        assert_eq!(first.leader_commit, second.leader_commit);
        assert_eq!(first.entries, second.entries);
    }
    codec_round_trip_eq::<VoteRequest<NodeId>>("vote request", data);
    codec_round_trip_eq::<InstallSnapshotRequest<TypeConfig>>("snapshot request", data);

    // Client side: the peer's encoded `Result`.
    codec_round_trip_eq::<Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>>(
        "raft response",
        data,
    );
    codec_round_trip_eq::<Result<VoteResponse<NodeId>, RaftError<NodeId>>>("raft response", data);
    // `InstallSnapshotError` has no `PartialEq`: the re-encoded bytes are compared.
    codec_round_trip::<
        Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>>,
    >("raft response", data);
});

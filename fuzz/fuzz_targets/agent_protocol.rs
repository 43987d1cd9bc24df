//! The agent protocol's JSON bodies (`mmm_agent::protocol`), decoded with serde_json as the
//! agent's axum `Json` extractor and the monitor's and tools' reqwest `json()` do. Requests
//! the agent decodes: `SetStatus`, `ClearBadRoles`, `Repoint`, `CloneRequest`. Replies the
//! monitor and the tools decode: `Pong`, `StatusReply`, `SystemStatus`, `Cleared`,
//! `RepointReply`, `CloneProgress`, `BackupReport`, and `BackupStatus` (`_mmm/status.json`
//! beside a backup). Every input is tried as each. A `CloneProgress` that decodes is rendered
//! as `mmm_clone` prints it (`line`, `eta_secs`).
//!
//! Invariants beyond "no panic": every body that decodes survives serialize → decode: the
//! same JSON and an equal value. The three replies with an `f64` uptime are compared with
//! the uptime allowed to move by a few ULPs, since serde_json (without its `float_roundtrip`
//! feature, as the project builds it) parses floats with a fast, slightly lossy algorithm
//! (which also refuses some printed values near `f64::MAX`; those are let through).

#![no_main]

use libfuzzer_sys::fuzz_target;
use mmm_agent::protocol::{
    BackupReport, BackupStatus, ClearBadRoles, Cleared, CloneProgress, CloneRequest, Pong, Repoint,
    RepointReply, SetStatus, StatusReply, SystemStatus,
};
use mmm_fuzz::{json_round_trip_eq, json_round_trip_floats};

fuzz_target!(|data: &[u8]| {
    // What the agent decodes.
    json_round_trip_eq::<SetStatus>(data);
    json_round_trip_eq::<ClearBadRoles>(data);
    json_round_trip_eq::<Repoint>(data);
    json_round_trip_eq::<CloneRequest>(data);

    // What the monitor and the tools decode.
    json_round_trip_floats::<Pong>(data, |p| &mut p.uptime_secs);
    json_round_trip_floats::<StatusReply>(data, |r| &mut r.uptime_secs);
    json_round_trip_floats::<SystemStatus>(data, |s| &mut s.uptime_secs);
    json_round_trip_eq::<Cleared>(data);
    json_round_trip_eq::<RepointReply>(data);
    if let Some(progress) = json_round_trip_eq::<CloneProgress>(data) {
        let _ = progress.line();
        let _ = progress.eta_secs();
        let _ = progress.finished();
    }
    json_round_trip_eq::<BackupReport>(data);
    json_round_trip_eq::<BackupStatus>(data);
});

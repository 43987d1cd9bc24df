//! The monitor API's JSON bodies (`mmm_core::api`), decoded with serde_json as axum's `Json`
//! extractor and reqwest's `json()` do. Requests the monitor decodes: `CommandRequest`,
//! `LeaseRequest`, `HostReport` and the observations body `mmm_core::observe::ReplicaReport`.
//! Replies its clients decode: `LeaderInfo`, `CommandReply`, `LeaseGrant`, `StateReply`,
//! `ReportReply`, `GroupStatus` and the error body `ApiError`. Every input is tried as each.
//!
//! A `CommandRequest` that decodes goes through what `src/api.rs` `command` does with its
//! text: `mmm_mond::membership::GroupCommand::parse`, then `mmm_core::Command::parse`, then
//! `render::query` (read-only commands) or `mmm_core::step` (the others) on the seed cluster.
//! A `ReplicaReport` is recorded in the leader's `Observations` and decided on.
//!
//! Invariants beyond "no panic": every body that decodes survives serialize → decode (same
//! JSON, equal value); a parsed command prints (`Display`) as a line that parses back to the
//! same command; read-only commands have a `render::query` reply and are refused by `step`,
//! the others the reverse; a membership command's usage error is an MMM error reply.

#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use mmm_core::api::{
    reply_is_error, ApiError, CommandReply, CommandRequest, GroupStatus, HostReport, LeaderInfo,
    LeaseGrant, LeaseRequest, ReportReply, StateReply,
};
use mmm_core::observe::{Observations, ReplicaReport};
use mmm_core::{render, step, ClusterState, Command, Event, StepError, Time};
use mmm_fuzz::{json_round_trip_eq, seed_topology};
use mmm_mond::membership::GroupCommand;

fuzz_target!(|data: &[u8]| {
    if let Some(req) = json_round_trip_eq::<CommandRequest>(data) {
        command(&req.line);
    }
    json_round_trip_eq::<LeaseRequest>(data);
    json_round_trip_eq::<HostReport>(data);
    if let Some(report) = json_round_trip_eq::<ReplicaReport>(data) {
        observations(report);
    }

    json_round_trip_eq::<LeaderInfo>(data);
    json_round_trip_eq::<CommandReply>(data);
    json_round_trip_eq::<LeaseGrant>(data);
    json_round_trip_eq::<StateReply>(data);
    json_round_trip_eq::<ReportReply>(data);
    json_round_trip_eq::<GroupStatus>(data);
    json_round_trip_eq::<ApiError>(data);
});

/// The handling of a command line in `src/api.rs` `command`, without Raft.
fn command(line: &str) {
    if let Some(parsed) = GroupCommand::parse(line) {
        match parsed {
            Ok(GroupCommand::Add { name, .. } | GroupCommand::Remove { name }) => {
                assert!(!name.is_empty() && !name.contains(char::is_whitespace));
            }
            Err(usage) => assert!(reply_is_error(&usage), "{usage}"),
        }
        return;
    }
    let cmd = Command::parse(line);
    assert_eq!(
        Command::parse(&cmd.to_string()),
        cmd,
        "the command prints as a line that parses differently"
    );
    let topo = seed_topology();
    let mut st = ClusterState::new(&topo, Time(0));
    let query = render::query(&topo, &st, &cmd, 3600);
    let stepped = step(&topo, &mut st, Time(1_000), Event::Admin(cmd.clone()));
    if cmd.is_read_only() {
        assert!(query.is_some(), "read-only {cmd:?} has no reply");
        assert!(
            matches!(stepped, Err(StepError::ReadOnly(_))),
            "step took read-only {cmd:?}: {stepped:?}"
        );
    } else {
        assert!(query.is_none(), "render::query answered {cmd:?}");
        match stepped {
            Ok(outcome) => {
                if let Some(reply) = outcome.reply {
                    let _ = reply_is_error(&reply);
                }
            }
            Err(e) => {
                let _ = e.to_string();
            }
        }
    }
}

/// What the leader does with a follower's table (`src/api.rs` `observations`, then the leader
/// loop): record it beside its own and decide the check results.
fn observations(report: ReplicaReport) {
    let topo = seed_topology();
    let mut st = ClusterState::new(&topo, Time(0));
    let mut obs = Observations::new("mon1", 3, Duration::from_secs(10));
    let now = Time(5_000);
    let own = ReplicaReport {
        replica: "mon1".to_string(),
        ..report.clone()
    };
    obs.record(now, own);
    obs.record(now, report);
    let decided = obs.decide(now, &st);
    if !decided.is_empty() {
        if let Err(e) = step(&topo, &mut st, now, Event::Checks(decided)) {
            let _ = e.to_string();
        }
    }
}

//! The monitor daemon `mmm_mond`.
//!
//! It will hold the checkers (ping, mysql, rep_threads, rep_backlog) that every monitor replica
//! runs against every host, the failure detector that turns their results into `mmm_core`
//! events, the leader's orchestrator that commits those events through Raft and turns the
//! resulting effects into agent commands, and the HTTP API that `mmm_control` talks to.

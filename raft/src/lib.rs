//! The monitor group's replicated log.
//!
//! It will hold the openraft type configuration, the sled-backed log store and state machine
//! (whose `apply` only calls `mmm_core::step`), and the Raft RPC transport between replicas.
//! It is also where leases and writer epochs are explained: how the writer's agent renews its
//! lease through the leader and why a deposed writer's lease always ends before a new writer
//! is promoted.

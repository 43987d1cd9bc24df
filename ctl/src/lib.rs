//! The command line client `mmm_control`.
//!
//! It will parse MMM's commands (help, ping, show, checks, set_online, set_offline, mode,
//! set_active, set_manual, set_passive, move_role, set_ip) and a few new ones, find a monitor
//! replica from the configuration, follow the leader for commands that change state, and print
//! replies with the renderers of `mmm_core`, byte for byte as MMM 2.2.1 did.

//! The agent `mmm_agentd` and its protocol.
//!
//! `ops` defines the agent's hands behind traits: `vip` puts VIPs on the cluster interface with
//! rtnetlink and announces them with gratuitous ARP (`arp`), `mysql` drives the local server
//! with mysql_async (read_only, killing client sessions, relay-log catch-up, re-pointing).

pub mod arp;
pub mod mysql;
pub mod ops;
pub mod vip;

//! The agent `mmm_agentd` and its protocol.
//!
//! `ops` defines the agent's hands behind traits: `vip` puts VIPs on the cluster interface with
//! rtnetlink and announces them with gratuitous ARP (`arp`), `mysql` drives the local server
//! with mysql_async (read_only, killing client sessions, relay-log catch-up, re-pointing),
//! and `pidfile` watches its process; `mysql_tls` opens every MySQL connection of the agent
//! and the monitor, over TLS when the server demands it.
//! `agent` is the logic over those traits (status, lease, fencing, reconciliation), `store` its
//! durable memory, `monitors` its way to the monitor group for leases, `protocol` and `server`
//! its HTTP API, `client` the monitor's side of it, and `settings` turns the configuration
//! into what the agent needs. `backup` (the source side) and `clone` (the target side)
//! rebuild a host from another one with a hot physical copy.

pub mod agent;
pub mod arp;
pub mod backup;
pub mod client;
pub mod clone;
pub mod logging;
pub mod metrics;
pub mod monitors;
pub mod mysql;
pub mod mysql_tls;
pub mod ops;
pub mod pidfile;
pub mod protocol;
pub mod server;
pub mod settings;
pub mod signals;
pub mod store;
pub mod vip;

//! The agent `mmm_agentd` and its protocol.
//!
//! It will hold the agent's HTTP API (apply status, system status, clear bad roles, ping), the
//! VIP operations (rtnetlink and gratuitous ARP), the MySQL operations (read_only, killing
//! client sessions, relay-log catch-up, GTID re-pointing), the writer lease with self-fencing
//! on expiry, the persisted writer epoch, and the client the monitor uses to call agents.

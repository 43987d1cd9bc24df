//! The jepsen-like test harness.
//!
//! It will drive the docker-compose cluster over HTTP, MySQL and docker only: a workload that
//! writes unique values through the writer VIP and reads through reader VIPs, a nemesis that
//! kills, pauses and partitions monitors, agents and mysqld, a checker that proves no two
//! writable writers, no lost acknowledged write and converged replicas, and a report of
//! failover times.

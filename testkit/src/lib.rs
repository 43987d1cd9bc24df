//! Real infrastructure for integration tests: MariaDB servers started from Debian's
//! `mariadb-server` in temporary directories (`mariadb`), and network namespaces joined by a
//! bridge (`netns`). A missing prerequisite is an error that says what to install, never a skip.

pub mod mariadb;
pub mod netns;

//! Real infrastructure for integration tests: MariaDB servers started from Debian's
//! `mariadb-server` in temporary directories (`mariadb`), network namespaces joined by a
//! bridge (`netns`), and a throwaway certificate authority and token files for the daemons'
//! channels (`pki`). A missing prerequisite is an error that says what to install, never a
//! skip.

pub mod mariadb;
pub mod netns;
pub mod pki;

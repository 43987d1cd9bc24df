//! MariaDB servers for tests (to be written).

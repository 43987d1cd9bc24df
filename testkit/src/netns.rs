//! Network namespaces for tests (to be written).

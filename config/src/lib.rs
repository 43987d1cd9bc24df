//! MMM configuration files.
//!
//! It will parse `mmm_common.conf`, `mmm_agent.conf` and `mmm_mon.conf` exactly as MMM 2.2.1
//! did (includes, `<host default>` templates, comma lists, boolean spellings, world-readable
//! refusal), give every key MMM's default and a type, validate each program's required keys,
//! and read the monitor-group extension. Every error names the file, the line and the key.

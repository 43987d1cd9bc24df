//! Log setup shared by mmm_agentd and mmm_mond: `tracing` lines on stderr, the filter from
//! `RUST_LOG` (else the daemon's default), colours only on a terminal, so a journal or a
//! container log gets plain lines.

use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;

/// Installs the global subscriber; `default_filter` applies when `RUST_LOG` is unset or bad.
pub fn init(default_filter: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(colour)
        .init();
}

//! Signals, shared by mmm_agentd and mmm_mond: SIGTERM and Ctrl-C stop the daemon gracefully
//! (the agent fences an active writer first). SIGHUP, which log rotation scripts and reload
//! habits send, would by default end the process on the spot, without that fence: it is
//! logged and ignored, since the configuration is read only at start.

use tokio::signal::unix::{signal, SignalKind};

/// Returns when the daemon is asked to stop (SIGTERM or Ctrl-C); every SIGHUP meanwhile is
/// logged and ignored.
pub async fn until_stop(program: &str) {
    let term = async {
        match signal(SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot watch SIGTERM; stopping on Ctrl-C only");
                std::future::pending::<()>().await;
            }
        }
    };
    let hangups = async {
        match signal(SignalKind::hangup()) {
            Ok(mut s) => {
                while s.recv().await.is_some() {
                    tracing::warn!(
                        "{program}: SIGHUP ignored: the configuration is read only at start; restart {program} to apply a change"
                    );
                }
                std::future::pending::<()>().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot watch SIGHUP: it would stop {program}");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
        () = hangups => {}
    }
}

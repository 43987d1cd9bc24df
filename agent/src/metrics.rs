//! `/metrics` in the Prometheus (OpenMetrics) text format: a small sheet builder over
//! `prometheus-client` that both daemons use, and the agent's own metrics, read from its
//! system status at scrape time (so a scrape always shows what is on the host now).

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

use crate::protocol::{SystemStatus, WriterState};

/// The content type of `/metrics`.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The path both daemons serve it on.
pub const METRICS_PATH: &str = "/metrics";

/// One label set: `(name, value)` pairs.
pub type Labels = Vec<(String, String)>;

type FloatGauge = Gauge<f64, AtomicU64>;

/// The metrics of one scrape, built from values read at that moment.
#[derive(Default)]
pub struct Sheet {
    registry: Registry,
}

impl Sheet {
    /// An empty sheet.
    pub fn new() -> Sheet {
        Sheet::default()
    }

    /// A gauge without labels. `help` is a sentence without its final period.
    pub fn gauge(&mut self, name: &str, help: &str, value: f64) {
        let g = FloatGauge::default();
        g.set(value);
        self.registry.register(name, help, g);
    }

    /// A gauge with one sample per label set.
    pub fn gauges(
        &mut self,
        name: &str,
        help: &str,
        rows: impl IntoIterator<Item = (Labels, f64)>,
    ) {
        let family = Family::<Labels, FloatGauge>::default();
        for (labels, value) in rows {
            family.get_or_create(&labels).set(value);
        }
        self.registry.register(name, help, family);
    }

    /// A counter (its name gets `_total`).
    pub fn counter(&mut self, name: &str, help: &str, value: u64) {
        let c = Counter::<u64>::default();
        c.inc_by(value);
        self.registry.register(name, help, c);
    }

    /// The text, ending with `# EOF`.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail; an encoding error would be a bug in a name.
        if let Err(e) = encode(&mut out, &self.registry) {
            tracing::error!(error = %e, "encoding metrics");
        }
        out
    }
}

/// A label set from string pairs.
pub fn labels<const N: usize>(pairs: [(&str, &str); N]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A boolean as a gauge value: 1 or 0.
pub fn flag(b: bool) -> f64 {
    if b {
        1.0
    } else {
        0.0
    }
}

/// The agent's metrics from its system status.
pub fn agent(status: &SystemStatus) -> String {
    let mut s = Sheet::new();
    let host = status.host.as_str();
    s.gauge(
        "mmm_agent_epoch",
        "The highest writer epoch this agent has seen",
        status.epoch as f64,
    );
    let (active, lease_left) = match &status.writer {
        WriterState::Active { lease_left_ms } => (true, *lease_left_ms as f64 / 1000.0),
        _ => (false, 0.0),
    };
    s.gauge(
        "mmm_agent_writer_told",
        "Whether the monitors told this host to be the writer",
        flag(!matches!(status.writer, WriterState::NotWriter)),
    );
    s.gauge(
        "mmm_agent_writer_active",
        "Whether this host is writable with the writer VIP, under a valid lease",
        flag(active),
    );
    s.gauge(
        "mmm_agent_lease_remaining_seconds",
        "Seconds until the writer fences itself unless its lease is renewed (0 when not active)",
        lease_left,
    );
    s.gauge(
        "mmm_agent_mysqld_up",
        "Whether the local mysqld answers",
        flag(status.mysql.is_some()),
    );
    if let Some(m) = &status.mysql {
        s.gauge(
            "mmm_agent_read_only",
            "The local server's read_only",
            flag(m.read_only),
        );
        if let Some(r) = &m.replica {
            s.gauge(
                "mmm_agent_replication_running",
                "Whether both replication threads run",
                flag(r.io_running && r.sql_running),
            );
            if let Some(lag) = r.seconds_behind {
                s.gauge(
                    "mmm_agent_replication_lag_seconds",
                    "Seconds_Behind_Master",
                    lag as f64,
                );
            }
        }
    }
    s.gauges(
        "mmm_agent_vip",
        "The role IPs configured on the cluster interface",
        status
            .vips
            .iter()
            .map(|ip| (labels([("host", host), ("ip", &ip.to_string())]), 1.0)),
    );
    s.gauge(
        "mmm_agent_host_uptime_seconds",
        "The machine's uptime",
        status.uptime_secs,
    );
    s.render()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::ServerStatus;

    fn status(writer: WriterState, mysql: bool) -> SystemStatus {
        SystemStatus {
            host: "db1".into(),
            uptime_secs: 1234.5,
            epoch: 7,
            told: None,
            writer,
            mysql: mysql.then(|| ServerStatus {
                version: "10.11.6-MariaDB".into(),
                mariadb: true,
                read_only: false,
                super_read_only: None,
                uptime_secs: 60,
                binlog: None,
                gtid_executed: None,
                replica: None,
            }),
            mysql_error: (!mysql).then(|| "connection refused".into()),
            vips: vec!["10.0.0.100".parse().expect("an IP")],
            vips_error: None,
        }
    }

    #[test]
    fn an_active_writer_shows_its_lease_epoch_vip_and_read_only() {
        let text = agent(&status(
            WriterState::Active {
                lease_left_ms: 1500,
            },
            true,
        ));
        for line in [
            "mmm_agent_epoch 7.0",
            "mmm_agent_writer_told 1.0",
            "mmm_agent_writer_active 1.0",
            "mmm_agent_lease_remaining_seconds 1.5",
            "mmm_agent_mysqld_up 1.0",
            "mmm_agent_read_only 0.0",
            "mmm_agent_vip{host=\"db1\",ip=\"10.0.0.100\"} 1.0",
        ] {
            assert!(text.lines().any(|l| l == line), "missing '{line}':\n{text}");
        }
    }

    #[test]
    fn a_waiting_writer_with_a_dead_mysqld_is_not_active() {
        let text = agent(&status(
            WriterState::Waiting {
                reason: "no lease".into(),
            },
            false,
        ));
        for line in [
            "mmm_agent_writer_told 1.0",
            "mmm_agent_writer_active 0.0",
            "mmm_agent_lease_remaining_seconds 0.0",
            "mmm_agent_mysqld_up 0.0",
        ] {
            assert!(text.lines().any(|l| l == line), "missing '{line}':\n{text}");
        }
        assert!(!text.contains("mmm_agent_read_only"), "{text}");
    }
}

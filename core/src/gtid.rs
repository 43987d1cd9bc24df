//! MariaDB GTID positions (`@@gtid_binlog_pos`, `@@gtid_slave_pos`, `@@gtid_current_pos`):
//! a list of `domain-server-sequence`, one per replication domain, comma-separated.
//!
//! Within a domain sequence numbers only grow (with `gtid_strict_mode` the server enforces it),
//! so a server has applied a position when, in every domain of it, the server's own sequence
//! number is at least as high. That is how a new writer knows it has everything the old
//! writer wrote before it takes writes itself.

use std::collections::BTreeMap;
use std::fmt;

/// A position that is not `domain-server-sequence[,...]`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a MariaDB GTID position: '{text}' ({reason})")]
pub struct GtidError {
    /// What was given.
    pub text: String,
    /// What is wrong with it.
    pub reason: String,
}

/// One GTID: `domain-server-sequence`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Gtid {
    /// The replication domain.
    pub domain: u32,
    /// The server that wrote it.
    pub server: u32,
    /// Its sequence number in the domain.
    pub seq: u64,
}

/// The last GTID of each domain.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GtidPos(BTreeMap<u32, Gtid>);

impl GtidPos {
    /// Parses a position as MariaDB prints it (spaces and newlines around entries are allowed;
    /// the empty string is the empty position).
    pub fn parse(text: &str) -> Result<GtidPos, GtidError> {
        let error = |reason: String| GtidError {
            text: text.to_string(),
            reason,
        };
        let mut pos = BTreeMap::new();
        for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let parts: Vec<&str> = entry.split('-').collect();
            let [domain, server, seq] = parts.as_slice() else {
                return Err(error(format!("'{entry}' is not domain-server-sequence")));
            };
            let number = |what: &str, s: &str| {
                s.parse::<u64>()
                    .map_err(|_| error(format!("'{entry}': {what} '{s}' is not a number")))
            };
            let gtid = Gtid {
                domain: u32::try_from(number("domain", domain)?)
                    .map_err(|_| error(format!("'{entry}': domain out of range")))?,
                server: u32::try_from(number("server id", server)?)
                    .map_err(|_| error(format!("'{entry}': server id out of range")))?,
                seq: number("sequence number", seq)?,
            };
            if pos.insert(gtid.domain, gtid).is_some() {
                return Err(error(format!("domain {} appears twice", gtid.domain)));
            }
        }
        Ok(GtidPos(pos))
    }

    /// Whether there is no GTID at all.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Per domain, the later of the two: what a server has executed when `self` is its
    /// `gtid_binlog_pos` and `other` its `gtid_slave_pos`.
    pub fn merge(&self, other: &GtidPos) -> GtidPos {
        let mut merged = self.0.clone();
        for (domain, gtid) in &other.0 {
            merged
                .entry(*domain)
                .and_modify(|g| {
                    if gtid.seq > g.seq {
                        *g = *gtid;
                    }
                })
                .or_insert(*gtid);
        }
        GtidPos(merged)
    }

    /// The GTIDs of `wanted` this position has not reached: a domain it lacks, or a lower
    /// sequence number. Empty when it covers `wanted`.
    pub fn missing(&self, wanted: &GtidPos) -> Vec<Gtid> {
        wanted
            .0
            .values()
            .filter(|w| self.0.get(&w.domain).is_none_or(|have| have.seq < w.seq))
            .copied()
            .collect()
    }

    /// Whether this position has reached every domain of `wanted`.
    pub fn covers(&self, wanted: &GtidPos) -> bool {
        self.missing(wanted).is_empty()
    }

    /// How far `other` is ahead of this position: per domain, the sequence numbers it has
    /// beyond this one's (all of them in a domain this one lacks), summed. Zero when this
    /// position covers `other`. A new writer fetches from the peer furthest ahead first.
    pub fn behind(&self, other: &GtidPos) -> u64 {
        self.missing(other)
            .iter()
            .map(|g| {
                let have = self.0.get(&g.domain).map_or(0, |h| h.seq);
                g.seq.saturating_sub(have)
            })
            .sum()
    }
}

/// GTIDs as MariaDB lists them, comma-separated (for messages such as the ones
/// [`GtidPos::missing`] leads to).
pub fn list(gtids: &[Gtid]) -> String {
    gtids
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

impl fmt::Display for Gtid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}-{}", self.domain, self.server, self.seq)
    }
}

impl fmt::Display for GtidPos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for g in self.0.values() {
            if !first {
                f.write_str(",")?;
            }
            first = false;
            write!(f, "{g}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn pos(s: &str) -> GtidPos {
        GtidPos::parse(s).unwrap()
    }

    #[test]
    fn positions_parse_as_mariadb_prints_them() {
        assert_eq!(pos("0-1-100").to_string(), "0-1-100");
        assert_eq!(pos("1-2-5, 0-1-100\n").to_string(), "0-1-100,1-2-5");
        assert!(pos("").is_empty());
        for bad in [
            "0-1",
            "0-1-x",
            "a-1-2",
            "0-1-2-3",
            "0-1-2,0-2-3",
            "4294967296-1-1",
        ] {
            let e = GtidPos::parse(bad).expect_err(bad);
            assert!(e.to_string().contains(bad), "{e}");
        }
    }

    #[test]
    fn covering_is_per_domain_by_sequence_number() {
        let old_writer = pos("0-1-100,1-1-7");
        assert!(
            pos("0-2-100,1-1-7").covers(&old_writer),
            "server ids do not matter"
        );
        assert!(pos("0-1-101,1-1-9,2-3-1").covers(&old_writer));
        assert_eq!(
            pos("0-1-99,1-1-7").missing(&old_writer),
            [Gtid {
                domain: 0,
                server: 1,
                seq: 100
            }]
        );
        assert_eq!(
            pos("0-1-100").missing(&old_writer).len(),
            1,
            "domain 1 lacking"
        );
        assert_eq!(
            list(&pos("0-1-99,1-1-6").missing(&old_writer)),
            "0-1-100,1-1-7"
        );
        assert!(pos("0-1-5").covers(&GtidPos::default()));
    }

    #[test]
    fn how_far_behind_sums_the_missing_sequence_numbers_of_every_domain() {
        let new_writer = pos("0-1-100,1-2-7");
        assert_eq!(new_writer.behind(&pos("0-1-100,1-2-7")), 0);
        assert_eq!(
            new_writer.behind(&pos("0-1-90,1-2-3")),
            0,
            "behind it, not ahead"
        );
        assert_eq!(new_writer.behind(&pos("0-1-103")), 3);
        assert_eq!(
            new_writer.behind(&pos("0-3-102,1-2-8")),
            3,
            "server ids do not matter"
        );
        assert_eq!(
            new_writer.behind(&pos("2-1-4")),
            4,
            "a domain it lacks counts whole"
        );
    }

    #[test]
    fn merging_keeps_the_later_of_each_domain() {
        // A replica's binlog has what it wrote itself; its slave position what it applied.
        let binlog = pos("0-2-50,1-2-3");
        let slave = pos("0-1-120");
        assert_eq!(binlog.merge(&slave).to_string(), "0-1-120,1-2-3");
    }

    proptest! {
        #[test]
        fn a_printed_position_parses_back(entries in proptest::collection::btree_map(0u32..5, (0u32..4, 0u64..1_000_000), 0..5)) {
            let p = GtidPos(entries.into_iter().map(|(d, (s, n))| (d, Gtid { domain: d, server: s, seq: n })).collect());
            prop_assert_eq!(GtidPos::parse(&p.to_string()).unwrap(), p.clone());
            prop_assert!(p.covers(&p));
            prop_assert!(p.merge(&GtidPos::default()) == p);
        }
    }
}

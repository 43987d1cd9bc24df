//! The encoding of every value the store writes: log entries, the vote, log ids, snapshots and
//! the group id.
//!
//! A value is one format-version byte ([`FORMAT_VERSION`]) followed by its bincode 2 encoding
//! (serde, standard configuration). The version byte lets a later build change the encoding
//! and still read old data, or at least refuse it by name.
//!
//! Invariant: decoding never panics and never allocates more than [`MAX_ENCODED_LEN`] bytes,
//! whatever the input: an empty input, an unknown version, garbage or trailing bytes give a
//! [`CodecError`] that names what was being decoded. The store turns it into openraft's
//! `StorageError`, which stops the replica.
//!
//! Tests: the unit tests below.

use bincode::config::{Configuration, Limit, Varint};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// The format version written before every value.
pub const FORMAT_VERSION: u8 = 1;

/// The largest encoding accepted. It bounds what garbage can make the decoder allocate (a
/// corrupt length prefix would otherwise ask for any amount of memory); the monitor's largest
/// values, snapshots of a cluster's state, are kilobytes.
pub const MAX_ENCODED_LEN: usize = 64 * 1024 * 1024;

/// What bincode lets an input claim: lengths of strings and byte arrays and primitive sizes.
/// It does not count what serde allocates up front for a sequence, nor that a decoded log entry
/// takes about 160 bytes for its 4 bytes on the wire, so decoding can take several times what
/// is claimed (found by the `raft_rpc` fuzz target: a 21-byte append request claiming a string
/// of almost 64 MiB). An eighth of [`MAX_ENCODED_LEN`] keeps the whole decode under it; real
/// values are far smaller (300 entries per append, 3 MiB snapshot chunks, kilobyte states).
pub const MAX_CLAIMED_LEN: usize = MAX_ENCODED_LEN / 8;

/// bincode's standard configuration with the claim limit.
fn config() -> Configuration<bincode::config::LittleEndian, Varint, Limit<MAX_CLAIMED_LEN>> {
    bincode::config::standard().with_limit::<MAX_CLAIMED_LEN>()
}

/// A value that could not be encoded or decoded. `what` names the value, e.g. `log entry`.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// Serialization failed.
    #[error("cannot encode {what}: {source}")]
    Encode {
        /// What was being encoded.
        what: &'static str,
        /// bincode's error.
        source: bincode::error::EncodeError,
    },
    /// The input has no bytes at all.
    #[error("cannot decode {what}: the stored value is empty")]
    Empty {
        /// What was being decoded.
        what: &'static str,
    },
    /// The version byte is not one this build reads.
    #[error("cannot decode {what}: unknown format version {found} (this build reads version {FORMAT_VERSION})")]
    UnknownVersion {
        /// What was being decoded.
        what: &'static str,
        /// The version byte found.
        found: u8,
    },
    /// The bytes after the version are not a valid encoding.
    #[error("cannot decode {what}: {source}")]
    Decode {
        /// What was being decoded.
        what: &'static str,
        /// bincode's error.
        source: bincode::error::DecodeError,
    },
    /// A valid encoding is followed by more bytes.
    #[error("cannot decode {what}: {extra} unexpected bytes after the value")]
    TrailingBytes {
        /// What was being decoded.
        what: &'static str,
        /// How many bytes were left over.
        extra: usize,
    },
}

/// Encodes `value` with the version byte in front. `what` names it in errors.
pub fn encode<T: Serialize + ?Sized>(what: &'static str, value: &T) -> Result<Vec<u8>, CodecError> {
    let mut out = vec![FORMAT_VERSION];
    bincode::serde::encode_into_std_write(value, &mut out, config())
        .map_err(|source| CodecError::Encode { what, source })?;
    Ok(out)
}

/// Decodes a value written by [`encode`]. `what` names it in errors.
pub fn decode<T: DeserializeOwned>(what: &'static str, bytes: &[u8]) -> Result<T, CodecError> {
    let (&version, body) = bytes.split_first().ok_or(CodecError::Empty { what })?;
    if version != FORMAT_VERSION {
        return Err(CodecError::UnknownVersion {
            what,
            found: version,
        });
    }
    let (value, used) = bincode::serde::decode_from_slice(body, config())
        .map_err(|source| CodecError::Decode { what, source })?;
    if used != body.len() {
        return Err(CodecError::TrailingBytes {
            what,
            extra: body.len() - used,
        });
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::typ::Vote;

    #[test]
    fn a_value_survives_encode_then_decode() {
        let vote = Vote::new(7, 2);
        let bytes = encode("vote", &vote).unwrap();
        assert_eq!(bytes[0], FORMAT_VERSION);
        assert_eq!(decode::<Vote>("vote", &bytes).unwrap(), vote);
    }

    #[test]
    fn an_unknown_version_is_refused_by_name() {
        let mut bytes = encode("vote", &Vote::new(7, 2)).unwrap();
        bytes[0] = 9;
        let err = decode::<Vote>("vote", &bytes).unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot decode vote: unknown format version 9 (this build reads version 1)"
        );
    }

    #[test]
    fn empty_garbage_and_trailing_bytes_are_errors_naming_the_value() {
        let err = decode::<Vote>("vote", &[]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot decode vote: the stored value is empty"
        );

        let err = decode::<String>("group id", &[FORMAT_VERSION, 0xff, 0xff]).unwrap_err();
        assert!(
            matches!(
                err,
                CodecError::Decode {
                    what: "group id",
                    ..
                }
            ),
            "{err}"
        );

        let mut bytes = encode("vote", &Vote::new(7, 2)).unwrap();
        bytes.push(0);
        let err = decode::<Vote>("vote", &bytes).unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot decode vote: 1 unexpected bytes after the value"
        );
    }

    #[test]
    fn a_huge_length_prefix_is_refused_without_allocating_it() {
        // A string whose varint length claims u64::MAX bytes.
        let bytes = [
            FORMAT_VERSION,
            0xfd,
            0xff,
            0xff,
            0xff,
            0xff,
            0xff,
            0xff,
            0xff,
            0xff,
        ];
        let err = decode::<String>("group id", &bytes).unwrap_err();
        assert!(matches!(err, CodecError::Decode { .. }), "{err}");
    }

    /// The `raft_rpc` fuzz target's input (fuzz/artifacts-found/raft_rpc): an append request
    /// of a million entries whose first host name claims almost 64 MiB. Decoding it took more
    /// than [`MAX_ENCODED_LEN`]; the claim limit refuses it at once.
    #[test]
    fn a_claim_over_the_claim_limit_is_refused() {
        let bytes = [
            0x01, 0x01, 0x01, 0x01, 0x00, 0xfc, 0x40, 0x42, 0x0f, 0x00, 0x01, 0x01, 0x01, 0x01,
            0x00, 0x01, 0xfc, 0x18, 0xfc, 0xff, 0x03,
        ];
        let decoded = decode::<openraft::raft::AppendEntriesRequest<crate::TypeConfig>>(
            "append request",
            &bytes,
        );
        // Refused for its claim, before reading (and allocating for) what it claims.
        let err = decoded.expect_err("refused").to_string();
        assert!(err.to_lowercase().contains("limit"), "{err}");
    }

    #[test]
    fn a_string_just_under_the_claim_limit_decodes_and_one_over_does_not() {
        let under = "x".repeat(MAX_CLAIMED_LEN - 16);
        let bytes = encode("group id", &under).expect("encodes");
        assert_eq!(
            decode::<String>("group id", &bytes).expect("decodes"),
            under
        );
        let over = "x".repeat(MAX_CLAIMED_LEN + 1);
        let bytes = encode("group id", &over);
        assert!(
            bytes.is_err() || decode::<String>("group id", &bytes.unwrap_or_default()).is_err()
        );
    }
}

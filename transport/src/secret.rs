//! Reading a token or a private key from a file, with MMM's rule for files that hold secrets:
//! a file that others may read or write is refused, whatever it holds.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use mmm_config::Secret;

use crate::Error;

/// The shortest token accepted: shorter ones are guessable.
pub const MIN_TOKEN_LEN: usize = 16;

/// Refuses a file that others may read or write (mode bits `o+r` or `o+w`).
pub(crate) fn check_private(key: &'static str, path: &Path) -> Result<(), Error> {
    let meta = std::fs::metadata(path).map_err(|e| Error::Unreadable {
        key,
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let mode = meta.permissions().mode();
    if mode & 0o006 != 0 {
        return Err(Error::OpenToOthers {
            key,
            path: path.to_path_buf(),
            mode: mode & 0o7777,
        });
    }
    Ok(())
}

/// What reading a token file found.
pub(crate) enum Read {
    /// The token.
    Token(Secret),
    /// This user may not read the file (only acceptable where the token is optional).
    PermissionDenied,
}

/// Reads the token in `path` (named by the config key `key`): its content without surrounding
/// whitespace, at least [`MIN_TOKEN_LEN`] visible ASCII characters. The token never appears in
/// an error.
pub(crate) fn read_token(key: &'static str, path: &Path) -> Result<Read, Error> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            return Ok(Read::PermissionDenied)
        }
        Err(e) => {
            return Err(Error::Unreadable {
                key,
                path: path.to_path_buf(),
                reason: e.to_string(),
            })
        }
    };
    check_private(key, path)?;
    let text = String::from_utf8(bytes).map_err(|_| bad(key, path, "it is not text"))?;
    let token = text.trim();
    if token.len() < MIN_TOKEN_LEN {
        return Err(bad(
            key,
            path,
            "it holds fewer than 16 characters (generate one: head -c 32 /dev/urandom | base64)",
        ));
    }
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(bad(
            key,
            path,
            "it holds spaces or characters that are not printable ASCII",
        ));
    }
    Ok(Read::Token(Secret::new(token)))
}

fn bad(key: &'static str, path: &Path, why: &'static str) -> Error {
    Error::BadToken {
        key,
        path: PathBuf::from(path),
        why,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn file(dir: &tempfile::TempDir, text: &str, mode: u32) -> PathBuf {
        let path = dir.path().join("token");
        fs::write(&path, text).expect("write");
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).expect("chmod");
        path
    }

    fn token(result: Result<Read, Error>) -> Result<String, String> {
        match result {
            Ok(Read::Token(t)) => Ok(t.expose().to_string()),
            Ok(Read::PermissionDenied) => Err("permission denied".into()),
            Err(e) => Err(e.to_string()),
        }
    }

    #[test]
    fn a_private_file_gives_its_trimmed_content() {
        let dir = tempfile::tempdir().expect("dir");
        let path = file(&dir, "  0123456789abcdefXYZ\n", 0o600);
        assert_eq!(
            token(read_token("agent_secret_file", &path)),
            Ok("0123456789abcdefXYZ".to_string())
        );
    }

    #[test]
    fn a_file_others_may_read_is_refused_without_showing_the_token() {
        let dir = tempfile::tempdir().expect("dir");
        let path = file(&dir, "0123456789abcdefXYZ\n", 0o644);
        let e = token(read_token("agent_secret_file", &path)).expect_err("refused");
        assert!(e.contains("agent_secret_file"), "{e}");
        assert!(e.contains("0644"), "{e}");
        assert!(e.contains("chmod"), "{e}");
        assert!(!e.contains("0123456789abcdef"), "{e}");
    }

    #[test]
    fn a_file_others_may_write_is_refused() {
        let dir = tempfile::tempdir().expect("dir");
        let path = file(&dir, "0123456789abcdefXYZ\n", 0o602);
        assert!(token(read_token("raft_secret_file", &path)).is_err());
    }

    #[test]
    fn short_or_spaced_tokens_are_refused_by_reason() {
        let dir = tempfile::tempdir().expect("dir");
        let short = file(&dir, "hunter2\n", 0o600);
        let e = token(read_token("api_secret_file", &short)).expect_err("short");
        assert!(e.contains("fewer than 16"), "{e}");
        assert!(!e.contains("hunter2"), "{e}");
        let spaced = file(&dir, "0123456789 abcdefXYZ\n", 0o600);
        let e = token(read_token("api_secret_file", &spaced)).expect_err("spaced");
        assert!(e.contains("spaces"), "{e}");
    }

    #[test]
    fn a_missing_file_names_the_key_and_the_path() {
        let e = token(read_token(
            "agent_secret_file",
            Path::new("/nonexistent/agent.secret"),
        ))
        .expect_err("missing");
        assert!(e.contains("agent_secret_file"), "{e}");
        assert!(e.contains("/nonexistent/agent.secret"), "{e}");
    }
}

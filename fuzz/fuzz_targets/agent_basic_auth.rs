//! The `Authorization: Basic` check of the agent's backup endpoint,
//! `mmm_agent::backup::check_basic_auth`, which reads a header sent by whoever connects.
//! The input is `user NUL password NUL header`; with fewer NULs the header is the whole input
//! and the account is a fixed one. The header is used only when it is what axum's
//! `HeaderValue::to_str` would give (visible ASCII and spaces), as in `agent/src/clone.rs`.
//!
//! Invariants beyond "no panic": a header is accepted only when it is `Basic ` followed by the
//! base64 (standard alphabet, padded) of exactly `user:password`, surrounding whitespace
//! aside; the header a client builds for the account is accepted, also with surrounding
//! whitespace; that header is refused for any other password; no header at all, or one not
//! starting with `Basic `, is `Missing`.

#![no_main]

use base64::Engine;
use libfuzzer_sys::fuzz_target;
use mmm_agent::backup::{check_basic_auth, AuthError};
use mmm_config::Secret;
use mmm_fuzz::split_once;

fuzz_target!(|data: &[u8]| {
    let (user, password, header) = match split_once(data, 0) {
        (user, Some(rest)) => match split_once(rest, 0) {
            (password, Some(header)) => (user, password, header),
            (password, None) => (user, password, &b""[..]),
        },
        (header, None) => (&b"mmm_repl"[..], &b"pw"[..], header),
    };
    let (Ok(user), Ok(password), Ok(header)) = (
        std::str::from_utf8(user),
        std::str::from_utf8(password),
        std::str::from_utf8(header),
    ) else {
        return;
    };
    let secret = Secret::new(password);
    let engine = base64::engine::general_purpose::STANDARD;

    // The header as it arrived, if axum would hand it over as text.
    if header
        .bytes()
        .all(|b| b == b'\t' || (b' '..=b'~').contains(&b))
    {
        let result = check_basic_auth(Some(header), user, &secret);
        if let Err(e) = &result {
            let _ = e.to_string();
        }
        match header.strip_prefix("Basic ") {
            None => assert_eq!(result, Err(AuthError::Missing)),
            Some(encoded) => {
                let matches = engine
                    .decode(encoded.trim())
                    .is_ok_and(|d| d == format!("{user}:{password}").as_bytes());
                assert_eq!(
                    result.is_ok(),
                    matches,
                    "header {header:?} for {user:?}/{password:?}"
                );
                if result.is_err() {
                    assert_eq!(result, Err(AuthError::Wrong));
                }
            }
        }
    }

    // The header a client builds for this account.
    let good = format!("Basic {}", engine.encode(format!("{user}:{password}")));
    assert_eq!(check_basic_auth(Some(&good), user, &secret), Ok(()));
    assert_eq!(
        check_basic_auth(Some(&format!("{good} \t")), user, &secret),
        Ok(())
    );
    let other = Secret::new(format!("{password}x"));
    assert_eq!(
        check_basic_auth(Some(&good), user, &other),
        Err(AuthError::Wrong)
    );
    assert_eq!(
        check_basic_auth(None, user, &secret),
        Err(AuthError::Missing)
    );
});

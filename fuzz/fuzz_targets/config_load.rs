//! The configuration loader (`mmm_config`): syntax, includes, sections, typed values and
//! per-program validation, on files held in memory (`MemoryFiles`). The input is
//! `main NUL included`: `etc/main.conf` is loaded, and `etc/mmm_common.conf` (the file the
//! real configs include) holds the part after the first NUL byte, when there is one. Both
//! are loaded for every `Program` (agent, monitor, control, tools) with `etc` as the search
//! path.
//!
//! Invariants beyond "no panic": a failed load has at least one error and every error and
//! the whole report display; a successful load's summary starts as `--check-config` prints it
//! and its monitor group can be computed; and a password never shows: when every line
//! mentioning `SECRETMARK` sets one of the password keys (`agent_password`,
//! `monitor_password`, `replication_password`, `tools_password`), no error, warning, summary
//! or `Debug` of the config contains `SECRETMARK`.

#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use mmm_config::{summary, Loader, MemoryFiles, Program};
use mmm_fuzz::split_once;

/// The password value the seeds use.
const MARK: &str = "SECRETMARK";

/// The keys whose values are `Secret`s.
const PASSWORD_KEYS: [&str; 4] = [
    "agent_password",
    "monitor_password",
    "replication_password",
    "tools_password",
];

fuzz_target!(|data: &[u8]| {
    let (main, included) = split_once(data, 0);
    let mut files = MemoryFiles::new();
    files.insert("etc/main.conf", main);
    if let Some(included) = included {
        files.insert("etc/mmm_common.conf", included);
    }
    let secret_only_in_passwords =
        only_in_passwords(main) && included.is_none_or(only_in_passwords);
    let hidden = |what: &str, text: &str| {
        if secret_only_in_passwords {
            assert!(!text.contains(MARK), "a password shows in {what}: {text}");
        }
    };
    let loader = Loader::with_search_path(["etc"]);
    for program in Program::ALL {
        match loader.load_from(&files, Path::new("etc/main.conf"), program) {
            Ok(config) => {
                let text = summary(&config, program);
                assert!(text.starts_with("Configuration for "), "{text}");
                hidden("the summary", &text);
                hidden("the config's Debug", &format!("{config:?}"));
                for warning in &config.warnings {
                    hidden("a warning", &warning.to_string());
                }
                let _ = config.monitor_group();
            }
            Err(errors) => {
                assert!(!errors.errors().is_empty(), "a failed load without errors");
                for error in errors.errors() {
                    hidden("an error", &error.to_string());
                    hidden("an error's Debug", &format!("{error:?}"));
                }
                hidden("the error report", &errors.to_string());
            }
        }
    }
});

/// Whether every line of `file` that mentions [`MARK`] sets a password key: its first word,
/// after leading whitespace, is one of [`PASSWORD_KEYS`] and whitespace follows it.
fn only_in_passwords(file: &[u8]) -> bool {
    file.split(|&b| b == b'\n')
        .filter(|line| line.windows(MARK.len()).any(|w| w == MARK.as_bytes()))
        .all(|line| {
            let start = line
                .iter()
                .position(|b| !b" \t\r\x0b\x0c".contains(b))
                .unwrap_or(line.len());
            let line = &line[start..];
            PASSWORD_KEYS.iter().any(|key| {
                line.strip_prefix(key.as_bytes())
                    .is_some_and(|rest| rest.first().is_some_and(|b| b" \t".contains(b)))
            })
        })
}

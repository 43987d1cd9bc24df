//! `mmm_mond --check-config` prints what the configuration means and exits 0, or prints the
//! errors and exits 2; it refuses world-readable files as MMM did.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

fn seed_dir(mode: u32) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let seed = concat!(env!("CARGO_MANIFEST_DIR"), "/config/tests/data/seed");
    for f in ["mmm_common.conf", "mmm_mon.conf"] {
        let to = dir.path().join(f);
        std::fs::copy(format!("{seed}/{f}"), &to).expect("copy seed file");
        std::fs::set_permissions(&to, std::fs::Permissions::from_mode(mode)).expect("chmod");
    }
    dir
}

fn check(dir: &tempfile::TempDir) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_mmm_mond"))
        .arg("--config")
        .arg(dir.path().join("mmm_mon.conf"))
        .arg("--check-config")
        .output()
        .expect("run mmm_mond")
}

#[test]
fn check_config_summarises_the_seed_files_and_exits_0() {
    let out = check(&seed_dir(0o600));
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.starts_with("Configuration for mmm_mond\n"), "{text}");
    assert!(text.contains("auto_set_online 0: never"), "{text}");
    assert!(!text.contains("pwd123"), "a password was printed:\n{text}");
}

#[test]
fn check_config_refuses_world_readable_files_and_exits_2() {
    let dir = seed_dir(0o644);
    let out = check(&dir);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    let path = dir.path().join("mmm_mon.conf");
    assert!(
        err.contains(&format!(
            "Configuration file {} is world readable!",
            path.display()
        )),
        "{err}"
    );
}

//! Helpers shared by the integration tests: fixture files on disk with mode 0600, and
//! in-memory configs with short file names for exact error messages.

#![allow(dead_code)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use mmm_config::{Config, Errors, Loader, MemoryFiles, Program};

/// The directory of the committed fixture files.
pub fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("data")
}

/// A temporary directory of config files, each written with mode 0600 (git does not keep
/// modes, and MMM refuses world-readable files).
pub struct Fixture {
    pub dir: tempfile::TempDir,
}

impl Fixture {
    pub fn new() -> Self {
        Fixture {
            dir: tempfile::tempdir().expect("a temporary directory"),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes `content` to `name` with the given mode.
    pub fn write_with_mode(&self, name: &str, content: &[u8], mode: u32) -> PathBuf {
        let path = self.path(name);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).expect("create the directory");
        }
        fs::write(&path, content).expect("write the fixture");
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).expect("chmod the fixture");
        path
    }

    /// Writes `content` to `name` with mode 0600.
    pub fn write(&self, name: &str, content: &str) -> PathBuf {
        self.write_with_mode(name, content.as_bytes(), 0o600)
    }

    /// Copies `tests/data/<from>` to `name` with mode 0600.
    pub fn copy(&self, from: &str, name: &str) -> PathBuf {
        let content = fs::read(data_dir().join(from)).expect("read the fixture");
        self.write_with_mode(name, &content, 0o600)
    }

    /// A loader whose search path is only `<dir>/etc`, so tests never read the real /etc.
    pub fn loader(&self) -> Loader {
        Loader::with_search_path([self.path("etc")])
    }

    pub fn load(&self, name: &str, program: Program) -> Result<Config, Errors> {
        self.loader().load(self.path(name), program)
    }
}

/// Loads `main` from in-memory files (mode 0600) with an empty search path.
pub fn load_memory(files: &[(&str, &str)], main: &str, program: Program) -> Result<Config, Errors> {
    let mut memory = MemoryFiles::new();
    for (name, content) in files {
        memory.insert(name, content.as_bytes());
    }
    Loader::with_search_path(Vec::<PathBuf>::new()).load_from(&memory, Path::new(main), program)
}

/// The error messages of a load that must fail.
pub fn messages(result: Result<Config, Errors>) -> Vec<String> {
    match result {
        Ok(config) => panic!("expected errors, got a config: {config:#?}"),
        Err(errors) => errors.messages(),
    }
}

/// The config of a load that must succeed.
pub fn ok(result: Result<Config, Errors>) -> Config {
    match result {
        Ok(config) => config,
        Err(errors) => panic!("expected a config, got errors:\n{errors}"),
    }
}

/// A small valid common file for tests to extend: two masters and a slave, writer and reader.
pub const COMMON: &str = "\
active_master_role writer
<host default>
    cluster_interface eth0
    pid_path /var/run/mmm_agentd.pid
    bin_path /usr/lib/mysql-mmm/
    replication_user replication
    replication_password slave
    agent_user mmm_agent
    agent_password RepAgent
    monitor_user mmm_monitor
    monitor_password RepMonitor
</host>
<host db1>
    ip 10.0.0.1
    mode master
    peer db2
</host>
<host db2>
    ip 10.0.0.2
    mode master
    peer db1
</host>
<host db3>
    ip 10.0.0.3
    mode slave
</host>
<role writer>
    hosts db1, db2
    ips 10.0.0.100
    mode exclusive
</role>
<role reader>
    hosts db1, db2, db3
    ips 10.0.0.101, 10.0.0.102, 10.0.0.103
    mode balanced
</role>
";

/// A `<monitor>` section that satisfies the monitor's required keys.
pub const MONITOR: &str = "\
<monitor>
    ip 127.0.0.1
    pid_path /var/run/mmm_mond.pid
    bin_path /usr/lib/mysql-mmm/
    status_path /var/lib/misc/mmm_mond.status
    ping_ips 10.0.0.254
</monitor>
";

//! Errors and warnings of the config loader.
//!
//! Every error names where it happened (`file:line`, or just the file for something missing
//! from it), the section (`<host db1>`) and the key, and says what was expected. The loader
//! collects as many errors as it can in one pass and returns them together as [`Errors`], which
//! displays one per line so `--check-config` can show them all. [`Warning`]s are for things MMM
//! accepted silently but that are most likely mistakes; they never make loading fail.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use crate::files::Program;
use crate::syntax::SectionKind;

/// A place in a config file: the file as the user gave it (or as the include search found it)
/// and, when the place is a line, its 1-based line number.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Location {
    /// The file, spelled as given on the command line or as found by the include search.
    pub file: PathBuf,
    /// The 1-based line, or `None` when the place is the file as a whole.
    pub line: Option<u32>,
}

impl Location {
    /// A line in a file.
    pub fn line(file: impl Into<PathBuf>, line: u32) -> Self {
        Location {
            file: file.into(),
            line: Some(line),
        }
    }

    /// A file as a whole, for things that are missing from it.
    pub fn file(file: impl Into<PathBuf>) -> Self {
        Location {
            file: file.into(),
            line: None,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{}", self.file.display(), line),
            None => write!(f, "{}", self.file.display()),
        }
    }
}

/// Where a key lives: at the top level of a file or inside a section.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// Outside any section.
    Global,
    /// Inside `<kind>` or `<kind name>`.
    Section {
        /// The section's kind, such as `host`.
        kind: SectionKind,
        /// The section's name, such as `db1`; unique sections have none.
        name: Option<String>,
    },
}

impl Scope {
    /// The scope of a unique section such as `<monitor>`.
    pub fn unique(kind: SectionKind) -> Self {
        Scope::Section { kind, name: None }
    }

    /// The scope of a named section such as `<host db1>`.
    pub fn named(kind: SectionKind, name: &str) -> Self {
        Scope::Section {
            kind,
            name: Some(name.to_string()),
        }
    }

    /// The scope followed by `": "`, or nothing at the top level; used to build messages.
    pub fn prefix(&self) -> String {
        match self {
            Scope::Global => String::new(),
            section => format!("{section}: "),
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::Global => f.write_str("top level"),
            Scope::Section { kind, name: None } => write!(f, "<{kind}>"),
            Scope::Section {
                kind,
                name: Some(name),
            } => write!(f, "<{kind} {name}>"),
        }
    }
}

/// One problem found in the configuration.
///
/// The `Display` text is the message shown to the user. It starts with the location and, where
/// there is one, the section, as in
/// `mmm_mon.conf:14: <host db9>: key 'mod' is unknown (did you mean 'mode'?)`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A file could not be read.
    #[error("{}: cannot read the file: {reason}", .file.display())]
    Read {
        /// The file.
        file: PathBuf,
        /// What the operating system said.
        reason: String,
    },
    /// A file is writable by everyone; MMM refuses those, and so do we.
    #[error("Configuration file {} is world writable!", .file.display())]
    WorldWritable {
        /// The file.
        file: PathBuf,
    },
    /// A file is readable by everyone (it holds passwords); MMM refuses those, and so do we.
    #[error("Configuration file {} is world readable!", .file.display())]
    WorldReadable {
        /// The file.
        file: PathBuf,
    },
    /// `include NAME` found no readable file.
    #[error("{at}: include '{name}': no readable file found (tried {})", join_paths(.tried))]
    IncludeNotFound {
        /// The include line.
        at: Location,
        /// The name as written (with `.conf` appended when it was missing).
        name: String,
        /// Every path that was tried, in order.
        tried: Vec<PathBuf>,
    },
    /// A file includes itself, directly or through other files.
    #[error("{at}: include cycle: {}", join_chain(.chain))]
    IncludeCycle {
        /// The include line that closes the cycle.
        at: Location,
        /// The files of the cycle, the first one repeated at the end.
        chain: Vec<PathBuf>,
    },
    /// Includes nested deeper than the loader follows (a guard against runaway chains).
    #[error("{at}: includes are nested more than {limit} files deep")]
    IncludeTooDeep {
        /// The include line.
        at: Location,
        /// The limit.
        limit: usize,
    },
    /// A line that is neither a comment, a section tag, `include FILE` nor `key value`.
    #[error("{at}: {reason}")]
    InvalidLine {
        /// The line.
        at: Location,
        /// What is wrong with it.
        reason: String,
    },
    /// Text outside a comment that is not UTF-8.
    #[error("{at}: the line is not valid UTF-8 (only comments may use another encoding)")]
    NotUtf8 {
        /// The line.
        at: Location,
    },
    /// A section tag of a kind MMM does not know.
    #[error("{at}: unknown section <{kind}>{}", suggest_section(.suggestion))]
    UnknownSection {
        /// The tag.
        at: Location,
        /// The kind as written.
        kind: String,
        /// A known kind close to it.
        suggestion: Option<SectionKind>,
    },
    /// A named section kind written without a name, such as `<host>`.
    #[error("{at}: section <{kind}> needs a name, as in <{kind} NAME>")]
    SectionNeedsName {
        /// The tag.
        at: Location,
        /// The kind.
        kind: SectionKind,
    },
    /// A unique section kind written with a name, such as `<monitor mon1>`.
    #[error("{at}: section <{kind}> takes no name (found '{name}')")]
    SectionTakesNoName {
        /// The tag.
        at: Location,
        /// The kind.
        kind: SectionKind,
        /// The name that was given.
        name: String,
    },
    /// A `<check NAME>` whose name is not one of MMM's four checks.
    #[error(
        "{at}: <check {name}>: unknown check{}; the checks are ping, mysql, rep_threads and rep_backlog, and <check default> is their template",
        suggest_key(.suggestion)
    )]
    UnknownCheck {
        /// The tag.
        at: Location,
        /// The name as written.
        name: String,
        /// A check name close to it.
        suggestion: Option<String>,
    },
    /// A section tag inside another section.
    #[error("{at}: {inner} cannot be opened inside {outer} (opened on line {outer_line}); close {outer} first")]
    NestedSection {
        /// The inner tag.
        at: Location,
        /// The section that was being opened.
        inner: Scope,
        /// The section that was still open.
        outer: Scope,
        /// Where the open section started.
        outer_line: u32,
    },
    /// A closing tag with no open section.
    #[error("{at}: </{kind}> closes no open section")]
    UnmatchedClose {
        /// The tag.
        at: Location,
        /// The kind as written.
        kind: String,
    },
    /// `include` inside a section (MMM crashes on it).
    #[error("{at}: {scope}: include is only allowed outside sections")]
    IncludeInSection {
        /// The include line.
        at: Location,
        /// The open section.
        scope: Scope,
    },
    /// A key that the scope does not have.
    #[error("{at}: {}key '{key}' is unknown{hint}", .scope.prefix())]
    UnknownKey {
        /// The line.
        at: Location,
        /// Where the key was found.
        scope: Scope,
        /// The key as written.
        key: String,
        /// A hint: the closest known key, or where the key belongs.
        hint: KeyHint,
    },
    /// A key with nothing after it.
    #[error("{at}: {}key '{key}' has no value{}", .scope.prefix(), comment_hint(*.after_comment))]
    MissingValue {
        /// The line.
        at: Location,
        /// Where the key was found.
        scope: Scope,
        /// The key.
        key: String,
        /// Whether the line had a comment, which may have been meant as the value.
        after_comment: bool,
    },
    /// A value that does not parse as the key's type.
    #[error("{at}: {}'{key}': '{value}' is not {expected}", .scope.prefix())]
    InvalidValue {
        /// The line.
        at: Location,
        /// Where the key was found.
        scope: Scope,
        /// The key.
        key: String,
        /// The offending value (one item of a list).
        value: String,
        /// What the key takes, such as "an IP address".
        expected: String,
    },
    /// A whole section that the program needs is absent.
    #[error("{at}: {section} is missing (needed by {program})")]
    MissingSection {
        /// The main file.
        at: Location,
        /// The section, such as `<monitor>` or `a <host NAME> section`.
        section: String,
        /// The program that needs it.
        program: Program,
    },
    /// A key that the program needs is absent (and has no default or template value).
    #[error("{at}: {}required key '{key}' is missing (needed by {program})", .scope.prefix())]
    MissingKey {
        /// The section's first line, or the main file for a top-level key.
        at: Location,
        /// Where the key should be.
        scope: Scope,
        /// The key.
        key: &'static str,
        /// The program that needs it.
        program: Program,
    },
    /// A key that another key's value makes necessary, such as `peer` for `mode master`.
    #[error("{at}: {}key '{key}' is required because '{because_key}' is '{because_value}'", .scope.prefix())]
    RequiredBecause {
        /// The line of the key that makes it necessary.
        at: Location,
        /// Where the key should be.
        scope: Scope,
        /// The missing key.
        key: &'static str,
        /// The key that makes it necessary.
        because_key: &'static str,
        /// That key's value.
        because_value: String,
    },
    /// A host name that no `<host NAME>` section defines.
    #[error("{at}: {}host '{host}' is not defined", .scope.prefix())]
    UndefinedHost {
        /// The line that names the host.
        at: Location,
        /// Where it was named.
        scope: Scope,
        /// The name.
        host: String,
    },
    /// A role name that no `<role NAME>` section defines.
    #[error("{at}: {}'{key}': role '{role}' is not defined", .scope.prefix())]
    UndefinedRole {
        /// The line.
        at: Location,
        /// Where it was named.
        scope: Scope,
        /// The key that names it.
        key: &'static str,
        /// The name.
        role: String,
    },
    /// A copy method name that no `<copy_method NAME>` section defines.
    #[error("{at}: 'default_copy_method': copy method '{name}' is not defined")]
    UndefinedCopyMethod {
        /// The line.
        at: Location,
        /// The name.
        name: String,
    },
    /// `node` names no `<monitor_node NAME>` section.
    #[error("{at}: <monitor>: 'node': monitor node '{node}' is not defined (defined: {})", .defined.join(", "))]
    UndefinedMonitorNode {
        /// The line.
        at: Location,
        /// The name.
        node: String,
        /// The names that are defined.
        defined: Vec<String>,
    },
    /// `prefer` names a host that is not in the role's `hosts`.
    #[error("{at}: {}'prefer': host '{host}' is not one of the role's hosts ({})", .scope.prefix(), .hosts.join(", "))]
    PreferNotInHosts {
        /// The line.
        at: Location,
        /// The role.
        scope: Scope,
        /// The preferred host.
        host: String,
        /// The role's hosts.
        hosts: Vec<String>,
    },
    /// A role IP listed twice, in one role or in two.
    #[error("{at}: {}IP {ip} is already used by {first_scope} ({first_at})", .scope.prefix())]
    DuplicateRoleIp {
        /// The second listing.
        at: Location,
        /// The role of the second listing.
        scope: Scope,
        /// The IP.
        ip: IpAddr,
        /// The first listing.
        first_at: Location,
        /// The role of the first listing.
        first_scope: Scope,
    },
    /// `peer` names a host whose mode is not master.
    #[error("{at}: {}'peer': host '{peer}' is not a master (its mode is {mode})", .scope.prefix())]
    PeerNotMaster {
        /// The line.
        at: Location,
        /// The host whose peer it is.
        scope: Scope,
        /// The peer.
        peer: String,
        /// The peer's mode.
        mode: String,
    },
    /// `peer` names the host itself.
    #[error("{at}: {}'peer': a host cannot be its own peer", .scope.prefix())]
    OwnPeer {
        /// The line.
        at: Location,
        /// The host.
        scope: Scope,
    },
    /// The active master role lists more than two hosts (MMM's monitor dies on that).
    #[error("{at}: {}the active master role can be held by at most two hosts, but 'hosts' lists {}: {}", .scope.prefix(), .hosts.len(), .hosts.join(", "))]
    TooManyActiveMasterHosts {
        /// The `hosts` line.
        at: Location,
        /// The role.
        scope: Scope,
        /// The hosts listed.
        hosts: Vec<String>,
    },
    /// The active master role is a balanced role.
    #[error("{at}: 'active_master_role': role '{role}' is balanced, but the active master role must be exclusive")]
    ActiveMasterRoleNotExclusive {
        /// The `active_master_role` line.
        at: Location,
        /// The role.
        role: String,
    },
    /// Monitor nodes are defined but `node` does not say which one this file is for.
    #[error("{at}: <monitor>: key 'node' is required because <monitor_node> sections are defined (one of: {})", .defined.join(", "))]
    MonitorNodeRequired {
        /// The `<monitor>` section.
        at: Location,
        /// The names that are defined.
        defined: Vec<String>,
    },
    /// Two durations in the wrong order, such as `election_timeout_min` ≥ `election_timeout_max`.
    #[error("{at}: {}'{smaller_key}' ({smaller}) must be less than '{larger_key}' ({larger})", .scope.prefix())]
    DurationOrder {
        /// The line of the first key (or the section, when both are defaults).
        at: Location,
        /// The section.
        scope: Scope,
        /// The key that must be smaller.
        smaller_key: &'static str,
        /// Its value, such as "0.8 s".
        smaller: String,
        /// The key that must be larger.
        larger_key: &'static str,
        /// Its value.
        larger: String,
    },
    /// Two monitor nodes with the same address.
    #[error("{at}: {}address {addr} is already used by {first}", .scope.prefix())]
    DuplicateMonitorAddress {
        /// The second node.
        at: Location,
        /// Its section.
        scope: Scope,
        /// The address.
        addr: SocketAddr,
        /// The first node's section.
        first: Scope,
    },
}

/// The hint that follows an unknown key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyHint {
    /// No hint.
    None,
    /// A known key of the same scope that is spelled almost the same.
    DidYouMean(&'static str),
    /// The key exists, but in other sections.
    BelongsIn(Vec<SectionKind>),
    /// The key is a section kind, used as a key.
    IsSection(SectionKind),
    /// The key exists, but only at the top level.
    BelongsAtTopLevel,
}

impl fmt::Display for KeyHint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyHint::None => Ok(()),
            KeyHint::DidYouMean(key) => write!(f, " (did you mean '{key}'?)"),
            KeyHint::BelongsIn(kinds) => {
                let list: Vec<String> = kinds.iter().map(|k| format!("<{k}>")).collect();
                write!(f, " here (it belongs in {})", list.join(" or "))
            }
            KeyHint::IsSection(kind) if kind.is_named() => {
                write!(f, " ('{kind}' is a section: <{kind} NAME> ... </{kind}>)")
            }
            KeyHint::IsSection(kind) => {
                write!(f, " ('{kind}' is a section: <{kind}> ... </{kind}>)")
            }
            KeyHint::BelongsAtTopLevel => {
                f.write_str(" here (it belongs at the top level, outside sections)")
            }
        }
    }
}

fn join_paths(paths: &[PathBuf]) -> String {
    let list: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    list.join(", ")
}

fn join_chain(paths: &[PathBuf]) -> String {
    let list: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    list.join(" -> ")
}

fn suggest_section(kind: &Option<SectionKind>) -> String {
    match kind {
        Some(kind) => format!(" (did you mean <{kind}>?)"),
        None => String::new(),
    }
}

fn comment_hint(after_comment: bool) -> &'static str {
    if after_comment {
        " (a '#' after whitespace starts a comment)"
    } else {
        ""
    }
}

fn suggest_key(key: &Option<String>) -> String {
    match key {
        Some(key) => format!(" (did you mean '{key}'?)"),
        None => String::new(),
    }
}

impl Error {
    /// Whether the error comes from reading the files rather than from their meaning.
    ///
    /// When such errors exist the loader skips the required-key and cross-reference checks,
    /// which would otherwise report the consequences (a missing include makes every key in it
    /// "missing") instead of the cause.
    pub(crate) fn is_structural(&self) -> bool {
        matches!(
            self,
            Error::Read { .. }
                | Error::IncludeNotFound { .. }
                | Error::IncludeCycle { .. }
                | Error::IncludeTooDeep { .. }
                | Error::InvalidLine { .. }
                | Error::NotUtf8 { .. }
                | Error::UnknownSection { .. }
                | Error::SectionNeedsName { .. }
                | Error::SectionTakesNoName { .. }
                | Error::UnknownCheck { .. }
                | Error::NestedSection { .. }
                | Error::UnmatchedClose { .. }
                | Error::IncludeInSection { .. }
        )
    }
}

/// All the errors found in one load, in the order they were found. Displays one per line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Errors(pub Vec<Error>);

impl Errors {
    /// The errors.
    pub fn errors(&self) -> &[Error] {
        &self.0
    }

    /// The messages, one string per error.
    pub fn messages(&self) -> Vec<String> {
        self.0.iter().map(ToString::to_string).collect()
    }
}

impl fmt::Display for Errors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Errors {}

impl From<Error> for Errors {
    fn from(error: Error) -> Self {
        Errors(vec![error])
    }
}

/// Something MMM accepted silently but that is most likely a mistake. Never fatal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Warning {
    /// Where it was found.
    pub at: Location,
    /// What it is and what the loader did about it.
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: warning: {}", self.at, self.message)
    }
}

//! Reads the main file and its includes into one [`Document`] of raw `key value` entries.
//!
//! This layer knows the structure (sections, includes, permissions) but not the keys: it keeps
//! every entry with its location and leaves types and meaning to `build`. Each file is checked
//! for world-writable and world-readable permissions before it is read, exactly as MMM does.
//! Includes are resolved in the including file's directory first, then in the search path;
//! an include that would re-enter a file already being read is a cycle and an error.
//!
//! Behaviour where MMM was sloppy: a closing tag of another kind (`<host db1>` … `</role>`) and
//! a section left open at the end of a file are accepted as MMM accepts them, with a warning; a
//! closing tag with no open section is an error (MMM silently ignored the rest of the file); a
//! section tag inside a section and `include` inside a section are errors, as they were in MMM.
//! Tests: `tests/grammar.rs` and `tests/files.rs`.

use std::path::{Path, PathBuf};

use crate::error::{Error, Location, Scope, Warning};
use crate::files::{with_conf_suffix, Files};
use crate::keys::closest;
use crate::syntax::{classify, strip_comment, Line, SectionKind};

/// How many files deep includes may nest; MMM's own files nest three deep.
const MAX_INCLUDE_DEPTH: usize = 32;

/// One `key value` line.
#[derive(Clone, Debug)]
pub(crate) struct Entry {
    pub key: String,
    pub value: String,
    pub at: Location,
    /// Whether a comment was cut off the line (it may have been meant as part of the value).
    pub commented: bool,
}

/// One opening of a section and the entries until it closed. A section opened twice (in one file
/// or in several) appears twice here; `build` merges them as MMM does.
#[derive(Clone, Debug)]
pub(crate) struct Section {
    pub kind: SectionKind,
    pub name: Option<String>,
    pub opened: Location,
    pub entries: Vec<Entry>,
}

/// Everything read from the main file and its includes, in reading order.
#[derive(Clone, Debug, Default)]
pub(crate) struct Document {
    pub main: PathBuf,
    pub files: Vec<PathBuf>,
    pub globals: Vec<Entry>,
    pub sections: Vec<Section>,
}

/// What the line currently belongs to.
enum Open {
    /// An index into `Document::sections`, the kind as written and the opening line.
    Section(usize, String, u32),
    /// A section whose tag was invalid: its lines are skipped so they do not show up as errors
    /// about top-level keys.
    Skipped,
}

pub(crate) struct Reader<'a> {
    files: &'a dyn Files,
    search_path: &'a [PathBuf],
    doc: Document,
    errors: Vec<Error>,
    warnings: Vec<Warning>,
    /// The files being read, outermost first: (identity, name as shown).
    stack: Vec<(PathBuf, PathBuf)>,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(files: &'a dyn Files, search_path: &'a [PathBuf]) -> Self {
        Reader {
            files,
            search_path,
            doc: Document::default(),
            errors: Vec::new(),
            warnings: Vec::new(),
            stack: Vec::new(),
        }
    }

    /// Reads `main` and everything it includes.
    pub(crate) fn read(mut self, main: &Path) -> (Document, Vec<Error>, Vec<Warning>) {
        self.doc.main = main.to_path_buf();
        self.read_file(main, None);
        (self.doc, self.errors, self.warnings)
    }

    fn read_file(&mut self, path: &Path, included_at: Option<&Location>) {
        let identity = self.files.identity(path);
        if let Some(start) = self.stack.iter().position(|(id, _)| *id == identity) {
            let mut chain: Vec<PathBuf> = self
                .stack
                .get(start..)
                .unwrap_or_default()
                .iter()
                .map(|(_, shown)| shown.clone())
                .collect();
            chain.push(path.to_path_buf());
            self.errors.push(Error::IncludeCycle {
                at: included_at.cloned().unwrap_or_else(|| Location::file(path)),
                chain,
            });
            return;
        }
        match self.files.mode(path) {
            Ok(mode) if mode & 0o002 != 0 => self.errors.push(Error::WorldWritable {
                file: path.to_path_buf(),
            }),
            Ok(mode) if mode & 0o004 != 0 => self.errors.push(Error::WorldReadable {
                file: path.to_path_buf(),
            }),
            Ok(_) => {}
            Err(e) => {
                self.errors.push(Error::Read {
                    file: path.to_path_buf(),
                    reason: e.to_string(),
                });
                return;
            }
        }
        let content = match self.files.read(path) {
            Ok(content) => content,
            Err(e) => {
                self.errors.push(Error::Read {
                    file: path.to_path_buf(),
                    reason: e.to_string(),
                });
                return;
            }
        };
        self.doc.files.push(path.to_path_buf());
        self.stack.push((identity, path.to_path_buf()));
        self.parse(path, &content);
        self.stack.pop();
    }

    fn parse(&mut self, path: &Path, content: &[u8]) {
        let mut open: Option<Open> = None;
        let mut number: u32 = 0;
        for raw in content.split(|&b| b == b'\n') {
            number = number.saturating_add(1);
            let at = Location::line(path, number);
            match classify(raw) {
                Line::Blank => {}
                Line::NotUtf8 => self.errors.push(Error::NotUtf8 { at }),
                Line::Invalid(reason) => self.errors.push(Error::InvalidLine { at, reason }),
                Line::Include(name) => match &open {
                    Some(Open::Section(index, _, _)) => {
                        let scope = self.scope_of(*index);
                        self.errors.push(Error::IncludeInSection { at, scope });
                    }
                    Some(Open::Skipped) => {}
                    None => self.include(path, name, &at),
                },
                Line::Open { kind, name } => {
                    // A tag inside an open section is an error; the new section takes over.
                    self.report_nested(&open, kind, name, &at);
                    open = Some(self.open(kind, name, &at, false));
                }
                Line::Empty { kind, name } => {
                    // An empty tag inside an open section is an error; the open one goes on.
                    self.report_nested(&open, kind, name, &at);
                    self.open(kind, name, &at, true);
                }
                Line::Close(kind) => match open.take() {
                    None => self.errors.push(Error::UnmatchedClose {
                        at,
                        kind: kind.to_string(),
                    }),
                    Some(Open::Section(_, written, line)) if written != kind => {
                        self.warnings.push(Warning {
                            at,
                            message: format!(
                                "</{kind}> closes <{written}> opened on line {line} (MMM closes it too; write </{written}>)"
                            ),
                        });
                    }
                    Some(_) => {}
                },
                Line::KeyValue { key, value } => {
                    let entry = Entry {
                        key: key.to_string(),
                        value: value.to_string(),
                        at,
                        commented: strip_comment(raw).len() != raw.len(),
                    };
                    match &open {
                        Some(Open::Section(index, _, _)) => {
                            if let Some(section) = self.doc.sections.get_mut(*index) {
                                section.entries.push(entry);
                            }
                        }
                        Some(Open::Skipped) => {}
                        None => self.doc.globals.push(entry),
                    }
                }
            }
        }
        if let Some(Open::Section(_, written, line)) = open {
            self.warnings.push(Warning {
                at: Location::line(path, line),
                message: format!(
                    "<{written}> is not closed before the end of the file (MMM closes it there; add </{written}>)"
                ),
            });
        }
    }

    fn scope_of(&self, index: usize) -> Scope {
        match self.doc.sections.get(index) {
            Some(section) => Scope::Section {
                kind: section.kind,
                name: section.name.clone(),
            },
            None => Scope::Global,
        }
    }

    /// Reports a section tag found while another section is still open.
    fn report_nested(
        &mut self,
        open: &Option<Open>,
        kind: &str,
        name: Option<&str>,
        at: &Location,
    ) {
        if let Some(Open::Section(index, _, line)) = open {
            let (index, line) = (*index, *line);
            let Some(inner_kind) = SectionKind::from_tag(kind) else {
                // An unknown kind is reported by `open` on its own.
                return;
            };
            let inner = Scope::Section {
                kind: inner_kind,
                name: name.map(str::to_string),
            };
            let outer = self.scope_of(index);
            self.errors.push(Error::NestedSection {
                at: at.clone(),
                inner,
                outer,
                outer_line: line,
            });
        }
    }

    /// Starts a section; returns what later lines belong to.
    fn open(&mut self, kind: &str, name: Option<&str>, at: &Location, empty: bool) -> Open {
        let line = at.line.unwrap_or(0);
        let skipped = Open::Skipped;
        let Some(section_kind) = SectionKind::from_tag(kind) else {
            let tags: Vec<&'static str> = SectionKind::ALL.iter().map(|k| k.tag()).collect();
            let suggestion = closest(kind, &tags).and_then(SectionKind::from_tag);
            self.errors.push(Error::UnknownSection {
                at: at.clone(),
                kind: kind.to_string(),
                suggestion,
            });
            return skipped;
        };
        match (section_kind.is_named(), name) {
            (true, None) => {
                self.errors.push(Error::SectionNeedsName {
                    at: at.clone(),
                    kind: section_kind,
                });
                return skipped;
            }
            (false, Some(name)) => {
                self.errors.push(Error::SectionTakesNoName {
                    at: at.clone(),
                    kind: section_kind,
                    name: name.to_string(),
                });
                return skipped;
            }
            _ => {}
        }
        if section_kind == SectionKind::Check {
            if let Some(name) = name {
                const CHECKS: [&str; 5] =
                    ["ping", "mysql", "rep_threads", "rep_backlog", "default"];
                if !CHECKS.contains(&name) {
                    self.errors.push(Error::UnknownCheck {
                        at: at.clone(),
                        name: name.to_string(),
                        suggestion: closest(name, &CHECKS).map(str::to_string),
                    });
                    return skipped;
                }
            }
        }
        self.doc.sections.push(Section {
            kind: section_kind,
            name: name.map(str::to_string),
            opened: at.clone(),
            entries: Vec::new(),
        });
        let index = self.doc.sections.len().saturating_sub(1);
        if empty {
            // An empty-form tag opens nothing; the caller ignores this value.
            return skipped;
        }
        Open::Section(index, kind.to_string(), line)
    }

    fn include(&mut self, including: &Path, name: &str, at: &Location) {
        if self.stack.len() >= MAX_INCLUDE_DEPTH {
            self.errors.push(Error::IncludeTooDeep {
                at: at.clone(),
                limit: MAX_INCLUDE_DEPTH,
            });
            return;
        }
        let name = with_conf_suffix(name);
        let candidates = self.include_candidates(including, &name);
        let found = candidates
            .iter()
            .find(|candidate| self.files.is_readable(candidate))
            .cloned();
        match found {
            Some(path) => self.read_file(&path, Some(at)),
            None => self.errors.push(Error::IncludeNotFound {
                at: at.clone(),
                name,
                tried: candidates,
            }),
        }
    }

    /// Where `include NAME` looks, in order: the including file's directory, then the search
    /// path. An absolute name is only looked for where it says.
    fn include_candidates(&self, including: &Path, name: &str) -> Vec<PathBuf> {
        let name_path = Path::new(name);
        if name_path.is_absolute() {
            return vec![name_path.to_path_buf()];
        }
        let mut candidates = Vec::new();
        let own_dir = including.parent().unwrap_or_else(|| Path::new(""));
        candidates.push(own_dir.join(name_path));
        for dir in self.search_path {
            let candidate = dir.join(name_path);
            let same = candidates
                .iter()
                .any(|c| self.files.identity(c) == self.files.identity(&candidate));
            if !same {
                candidates.push(candidate);
            }
        }
        candidates
    }
}

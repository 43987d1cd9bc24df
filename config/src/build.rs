//! Turns the raw [`Document`] into the typed [`Config`], reporting bad keys and values.
//!
//! Sections opened more than once (in one file or across includes) are merged, as MMM merges
//! them: keys accumulate and a key set again replaces the earlier value, with a warning. The
//! `default` sections of `host`, `check` and `copy_method` are templates: each section of the
//! kind takes every template key it does not set itself. Template lines are checked once, in
//! the template's own scope, so a bad template value is reported once rather than per host.
//! The four checks always exist, from the template and MMM's defaults when not written.
//! Besides the config, this returns [`Origins`]: where each key was set, for the messages of
//! `validate.rs`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use crate::error::{Error, KeyHint, Location, Scope, Warning};
use crate::keys::{self, closest};
use crate::model::{CheckName, Config, CopyMethod, Host, MonitorNode, Role};
use crate::reader::{Document, Entry};
use crate::syntax::SectionKind;
use crate::value::Parsed;

/// Where things were written.
#[derive(Clone, Debug, Default)]
pub(crate) struct Origins {
    pub main: PathBuf,
    /// Top-level keys and the line of their (last) value.
    pub global: BTreeMap<String, Location>,
    /// Sections by kind and name (`""` for unique sections).
    pub sections: BTreeMap<(SectionKind, String), SectionOrigin>,
    /// Sections in the order they were first opened.
    pub order: Vec<(SectionKind, String)>,
}

#[derive(Clone, Debug)]
pub(crate) struct SectionOrigin {
    /// The first opening tag.
    pub opened: Location,
    /// Each key, own or from the template, and the line of its (last) value.
    pub keys: BTreeMap<String, Location>,
}

impl Origins {
    /// Where a section was first opened; the main file if it was never written.
    pub fn opened(&self, kind: SectionKind, name: &str) -> Location {
        self.sections
            .get(&(kind, name.to_string()))
            .map(|s| s.opened.clone())
            .unwrap_or_else(|| Location::file(&self.main))
    }

    /// Where a key of a section was set.
    pub fn key(&self, kind: SectionKind, name: &str, key: &str) -> Option<&Location> {
        self.sections
            .get(&(kind, name.to_string()))
            .and_then(|s| s.keys.get(key))
    }

    /// Where a key of a section was set, or else where the section starts.
    pub fn key_or_section(&self, kind: SectionKind, name: &str, key: &str) -> Location {
        self.key(kind, name, key)
            .cloned()
            .unwrap_or_else(|| self.opened(kind, name))
    }

    /// Whether a key of a section was written (own or from its template), valid or not.
    pub fn has(&self, kind: SectionKind, name: &str, key: &str) -> bool {
        self.key(kind, name, key).is_some()
    }

    /// Where a top-level key was set, or else the main file.
    pub fn global_key(&self, key: &str) -> Location {
        self.global
            .get(key)
            .cloned()
            .unwrap_or_else(|| Location::file(&self.main))
    }
}

/// One section after merging all its openings.
struct Merged<'d> {
    kind: SectionKind,
    name: String,
    opened: Location,
    entries: Vec<&'d Entry>,
}

pub(crate) struct Builder<'e> {
    errors: &'e mut Vec<Error>,
    warnings: &'e mut Vec<Warning>,
}

impl<'e> Builder<'e> {
    pub(crate) fn new(errors: &'e mut Vec<Error>, warnings: &'e mut Vec<Warning>) -> Self {
        Builder { errors, warnings }
    }

    pub(crate) fn build(&mut self, doc: &Document) -> (Config, Origins) {
        let mut config = Config::empty();
        let mut origins = Origins {
            main: doc.main.clone(),
            ..Origins::default()
        };

        let globals: Vec<&Entry> = doc.globals.iter().collect();
        let mut global_keys = BTreeMap::new();
        self.apply(
            None,
            &Scope::Global,
            &globals,
            &[],
            &mut |key, text| config.set(key, text),
            &mut global_keys,
        );
        origins.global = global_keys;

        let merged = merge(doc);
        let template = |kind: SectionKind| -> Vec<&Entry> {
            merged
                .iter()
                .find(|m| m.kind == kind && m.name == "default" && kind.has_template())
                .map(|m| m.entries.clone())
                .unwrap_or_default()
        };
        let host_template = template(SectionKind::Host);
        let check_template = template(SectionKind::Check);
        let copy_template = template(SectionKind::CopyMethod);

        for section in &merged {
            let kind = section.kind;
            let name = section.name.as_str();
            let scope = if kind.is_named() {
                Scope::named(kind, name)
            } else {
                Scope::unique(kind)
            };
            let is_template = kind.has_template() && name == "default";
            let own = &section.entries;
            let mut keys = BTreeMap::new();
            match kind {
                SectionKind::Monitor => {
                    let mut monitor = config.monitor.take().unwrap_or_default();
                    self.apply(
                        Some(kind),
                        &scope,
                        own,
                        &[],
                        &mut |k, v| monitor.set(k, v),
                        &mut keys,
                    );
                    config.monitor = Some(monitor);
                }
                SectionKind::Socket => {
                    let socket = &mut config.socket;
                    self.apply(
                        Some(kind),
                        &scope,
                        own,
                        &[],
                        &mut |k, v| socket.set(k, v),
                        &mut keys,
                    );
                }
                SectionKind::Host => {
                    let mut host = Host::new(name);
                    let inherited = if is_template {
                        &[][..]
                    } else {
                        &host_template[..]
                    };
                    self.apply(
                        Some(kind),
                        &scope,
                        own,
                        inherited,
                        &mut |k, v| host.set(k, v),
                        &mut keys,
                    );
                    if !is_template {
                        config.hosts.insert(name.to_string(), host);
                    }
                }
                SectionKind::CopyMethod => {
                    let mut method = CopyMethod::new(name);
                    let inherited = if is_template {
                        &[][..]
                    } else {
                        &copy_template[..]
                    };
                    self.apply(
                        Some(kind),
                        &scope,
                        own,
                        inherited,
                        &mut |k, v| method.set(k, v),
                        &mut keys,
                    );
                    if !is_template {
                        config.copy_methods.insert(name.to_string(), method);
                    }
                }
                SectionKind::Check => {
                    let check_name = name.parse::<CheckName>().ok();
                    let mut check = crate::model::Check::new(check_name.unwrap_or(CheckName::Ping));
                    let inherited = if is_template {
                        &[][..]
                    } else {
                        &check_template[..]
                    };
                    self.apply(
                        Some(kind),
                        &scope,
                        own,
                        inherited,
                        &mut |k, v| check.set(k, v),
                        &mut keys,
                    );
                    if let Some(check_name) = check_name {
                        config.checks.insert(check_name, check);
                    }
                }
                SectionKind::Role => {
                    let mut role = Role::new(name);
                    self.apply(
                        Some(kind),
                        &scope,
                        own,
                        &[],
                        &mut |k, v| role.set(k, v),
                        &mut keys,
                    );
                    config.roles.insert(name.to_string(), role);
                }
                SectionKind::MonitorNode => {
                    let mut node = MonitorNode::new(name);
                    self.apply(
                        Some(kind),
                        &scope,
                        own,
                        &[],
                        &mut |k, v| node.set(k, v),
                        &mut keys,
                    );
                    config.monitor_nodes.insert(name.to_string(), node);
                }
            }
            let id = (kind, name.to_string());
            origins.order.push(id.clone());
            origins.sections.insert(
                id,
                SectionOrigin {
                    opened: section.opened.clone(),
                    keys,
                },
            );
        }

        // A check with no section of its own still gets the template's values.
        for check_name in CheckName::ALL {
            let id = (SectionKind::Check, check_name.as_str().to_string());
            if origins.sections.contains_key(&id) {
                continue;
            }
            let mut check = crate::model::Check::new(check_name);
            let mut keys = BTreeMap::new();
            let scope = Scope::named(SectionKind::Check, check_name.as_str());
            self.apply(
                Some(SectionKind::Check),
                &scope,
                &[],
                &check_template,
                &mut |k, v| check.set(k, v),
                &mut keys,
            );
            config.checks.insert(check_name, check);
        }

        config.files = doc.files.clone();
        (config, origins)
    }

    /// Applies template entries (for keys the section does not set), then the section's own
    /// entries in order. Only own entries produce errors; the template was checked on its own.
    fn apply(
        &mut self,
        kind: Option<SectionKind>,
        scope: &Scope,
        own: &[&Entry],
        template: &[&Entry],
        set: &mut dyn FnMut(&str, &str) -> Parsed<()>,
        keys: &mut BTreeMap<String, Location>,
    ) {
        let own_keys: BTreeSet<&str> = own.iter().map(|e| e.key.as_str()).collect();
        for entry in template {
            if own_keys.contains(entry.key.as_str()) {
                continue;
            }
            let Some(spec) = keys::find(kind, &entry.key) else {
                continue;
            };
            keys.insert(entry.key.clone(), entry.at.clone());
            if !entry.value.is_empty() || spec.may_be_empty {
                // Errors in template values were reported when the template was applied alone.
                let _ = set(&entry.key, &entry.value);
            }
        }
        let mut seen: BTreeMap<&str, &Location> = BTreeMap::new();
        for entry in own {
            let Some(spec) = keys::find(kind, &entry.key) else {
                let hint = hint(kind, &entry.key);
                if let KeyHint::DidYouMean(meant) = hint {
                    // The key the user meant counts as written, so it is not also reported
                    // as missing.
                    keys.entry(meant.to_string())
                        .or_insert_with(|| entry.at.clone());
                }
                self.errors.push(Error::UnknownKey {
                    at: entry.at.clone(),
                    scope: scope.clone(),
                    key: entry.key.clone(),
                    hint,
                });
                continue;
            };
            if let Some(previous) = seen.insert(entry.key.as_str(), &entry.at) {
                self.warnings.push(Warning {
                    at: entry.at.clone(),
                    message: format!(
                        "{}'{}' is set again; this value replaces the one from {previous} (MMM uses the last value)",
                        scope.prefix(),
                        entry.key
                    ),
                });
            }
            keys.insert(entry.key.clone(), entry.at.clone());
            if entry.value.is_empty() && !spec.may_be_empty {
                self.errors.push(Error::MissingValue {
                    at: entry.at.clone(),
                    scope: scope.clone(),
                    key: entry.key.clone(),
                    after_comment: entry.commented,
                });
                continue;
            }
            if let Err(bads) = set(&entry.key, &entry.value) {
                for bad in bads {
                    self.errors.push(Error::InvalidValue {
                        at: entry.at.clone(),
                        scope: scope.clone(),
                        key: entry.key.clone(),
                        value: bad.value,
                        expected: bad.expected,
                    });
                }
            }
        }
    }
}

/// Groups the openings of each section, in the order sections first appear.
fn merge(doc: &Document) -> Vec<Merged<'_>> {
    let mut merged: Vec<Merged<'_>> = Vec::new();
    let mut index: BTreeMap<(SectionKind, String), usize> = BTreeMap::new();
    for section in &doc.sections {
        let name = section.name.clone().unwrap_or_default();
        let existing = index
            .get(&(section.kind, name.clone()))
            .and_then(|&i| merged.get_mut(i));
        match existing {
            Some(existing) => existing.entries.extend(section.entries.iter()),
            None => {
                index.insert((section.kind, name.clone()), merged.len());
                merged.push(Merged {
                    kind: section.kind,
                    name,
                    opened: section.opened.clone(),
                    entries: section.entries.iter().collect(),
                });
            }
        }
    }
    merged
}

/// What to say after "key 'x' is unknown".
fn hint(kind: Option<SectionKind>, key: &str) -> KeyHint {
    if let Some(section) = SectionKind::from_tag(key) {
        return KeyHint::IsSection(section);
    }
    let names: Vec<&'static str> = keys::table(kind).iter().map(|spec| spec.name).collect();
    if let Some(close) = closest(key, &names) {
        return KeyHint::DidYouMean(close);
    }
    if kind.is_some() && keys::find(None, key).is_some() {
        return KeyHint::BelongsAtTopLevel;
    }
    let elsewhere = keys::sections_with(kind, key);
    if !elsewhere.is_empty() {
        return KeyHint::BelongsIn(elsewhere);
    }
    KeyHint::None
}

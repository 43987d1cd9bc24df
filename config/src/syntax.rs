//! The line grammar of MMM's config files, one line at a time.
//!
//! A line is blank, a comment, `include FILE`, a section tag (`<kind>`, `<kind name>`,
//! `<kind/>`, `<kind name/>`, `</kind>`) or `key value`, where the value is the rest of the line
//! with surrounding whitespace removed. This is the grammar of MMM 2.2.1's `Config.pm` with one
//! addition, the trailing comment:
//!
//! - A `#` at the start of the line or preceded by whitespace starts a comment that runs to the
//!   end of the line: `ip 10.0.0.1  # db1` has the value `10.0.0.1`, and `<host db1>  # note`
//!   is a plain section tag. MMM only knew whole-line comments, but files in the wild (the
//!   seed's `mmm_common.conf`, for one) put comments after values.
//! - A `#` with no whitespace before it is part of the value: `agent_password pa#ss` keeps
//!   `pa#ss`. A value that itself starts with `#` after whitespace cannot be written; the loader
//!   then reports the key as having no value rather than silently using something else.
//!
//! Comments are removed on bytes before decoding, so they may be in any encoding (GBK comments
//! are common in Chinese guides); everything else must be UTF-8. Section kinds are made of
//! ASCII letters, digits and `_`; section names may also contain `-` (as in `ssh-gz`).
//! Tests: the unit tests below and `tests/grammar.rs`.

use std::fmt;

/// The kinds of section that MMM (and the monitor-group extension) know.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SectionKind {
    /// `<monitor>`: the monitor daemon's settings (unique).
    Monitor,
    /// `<socket>`: plain or SSL transport (unique).
    Socket,
    /// `<host NAME>`: a MySQL host; `<host default>` is a template.
    Host,
    /// `<role NAME>`: a set of virtual IPs and the hosts that may hold them.
    Role,
    /// `<check NAME>`: parameters of one check; `<check default>` is a template.
    Check,
    /// `<copy_method NAME>`: a backup/restore method of the tools; `default` is a template.
    CopyMethod,
    /// `<monitor_node NAME>`: one replica of the monitor group (our extension).
    MonitorNode,
}

impl SectionKind {
    /// Every kind, in the order the summary prints them.
    pub const ALL: [SectionKind; 7] = [
        SectionKind::Monitor,
        SectionKind::Socket,
        SectionKind::Host,
        SectionKind::Role,
        SectionKind::Check,
        SectionKind::CopyMethod,
        SectionKind::MonitorNode,
    ];

    /// The kind for a tag word, such as `host`.
    pub fn from_tag(tag: &str) -> Option<SectionKind> {
        SectionKind::ALL.into_iter().find(|kind| kind.tag() == tag)
    }

    /// The tag word, such as `host`.
    pub fn tag(self) -> &'static str {
        match self {
            SectionKind::Monitor => "monitor",
            SectionKind::Socket => "socket",
            SectionKind::Host => "host",
            SectionKind::Role => "role",
            SectionKind::Check => "check",
            SectionKind::CopyMethod => "copy_method",
            SectionKind::MonitorNode => "monitor_node",
        }
    }

    /// Whether sections of this kind carry a name (`<host db1>`) or are unique (`<monitor>`).
    pub fn is_named(self) -> bool {
        !matches!(self, SectionKind::Monitor | SectionKind::Socket)
    }

    /// Whether a section of this kind called `default` is a template for the others.
    pub fn has_template(self) -> bool {
        matches!(
            self,
            SectionKind::Host | SectionKind::Check | SectionKind::CopyMethod
        )
    }
}

impl fmt::Display for SectionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.tag())
    }
}

/// What one line of a config file is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Line<'a> {
    /// Nothing but whitespace and comments.
    Blank,
    /// `include FILE`.
    Include(&'a str),
    /// `<kind>` or `<kind name>`.
    Open {
        kind: &'a str,
        name: Option<&'a str>,
    },
    /// `<kind/>` or `<kind name/>`: a section with no keys.
    Empty {
        kind: &'a str,
        name: Option<&'a str>,
    },
    /// `</kind>`.
    Close(&'a str),
    /// `key value`; the value may be empty when the line holds only a key.
    KeyValue { key: &'a str, value: &'a str },
    /// Text outside comments that is not UTF-8.
    NotUtf8,
    /// Something else; the reason says what is wrong.
    Invalid(String),
}

/// Whether a byte is whitespace in the sense of Perl's `\s` on bytes.
pub(crate) fn is_space(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\r' | b'\n' | 0x0b | 0x0c)
}

/// The line without its comment: everything from the first `#` that starts the line or follows
/// whitespace.
pub(crate) fn strip_comment(line: &[u8]) -> &[u8] {
    let mut previous_is_space = true;
    for (i, &byte) in line.iter().enumerate() {
        if byte == b'#' && previous_is_space {
            return line.get(..i).unwrap_or_default();
        }
        previous_is_space = is_space(byte);
    }
    line
}

fn trim(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|&b| !is_space(b));
    let Some(start) = start else {
        return &[];
    };
    let end = bytes
        .iter()
        .rposition(|&b| !is_space(b))
        .map_or(start, |i| i + 1);
    bytes.get(start..end).unwrap_or_default()
}

fn trim_str(text: &str) -> &str {
    text.trim_matches(|c: char| c.is_ascii() && is_space(c as u8))
}

/// Splits off the first whitespace-separated word; returns it and the trimmed rest.
fn split_word(text: &str) -> (&str, &str) {
    match text.find(|c: char| c.is_ascii() && is_space(c as u8)) {
        Some(i) => {
            let (word, rest) = text.split_at(i);
            (word, trim_str(rest))
        }
        None => (text, ""),
    }
}

fn is_kind_word(word: &str) -> bool {
    !word.is_empty() && word.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

fn is_name_word(word: &str) -> bool {
    !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Classifies one line (without its line terminator).
pub(crate) fn classify(raw: &[u8]) -> Line<'_> {
    let content = trim(strip_comment(raw));
    if content.is_empty() {
        return Line::Blank;
    }
    let Ok(text) = std::str::from_utf8(content) else {
        return Line::NotUtf8;
    };
    if text.starts_with('<') {
        return classify_tag(text);
    }
    let (key, value) = split_word(text);
    if key == "include" {
        if value.is_empty() {
            return Line::Invalid("include needs a file name".to_string());
        }
        if value.bytes().any(is_space) {
            return Line::Invalid(format!("include takes one file name, but found '{value}'"));
        }
        return Line::Include(value);
    }
    Line::KeyValue { key, value }
}

fn classify_tag(text: &str) -> Line<'_> {
    const FORMS: &str = "<kind>, <kind name>, <kind/>, <kind name/> or </kind>";
    let Some(inner) = text.strip_prefix('<').and_then(|t| t.strip_suffix('>')) else {
        return Line::Invalid(format!(
            "a section tag must end with '>' and stand alone on its line (forms: {FORMS})"
        ));
    };
    let inner = trim_str(inner);
    if let Some(rest) = inner.strip_prefix('/') {
        let kind = trim_str(rest);
        if is_kind_word(kind) {
            return Line::Close(kind);
        }
        return Line::Invalid(format!("invalid closing tag '{text}' (forms: {FORMS})"));
    }
    let (body, empty) = match inner.strip_suffix('/') {
        Some(body) => (trim_str(body), true),
        None => (inner, false),
    };
    let (kind, rest) = split_word(body);
    let (name, extra) = split_word(rest);
    if !extra.is_empty() || !is_kind_word(kind) || !(name.is_empty() || is_name_word(name)) {
        return Line::Invalid(format!(
            "invalid section tag '{text}' (forms: {FORMS}; names use letters, digits, '_' and '-')"
        ));
    }
    let name = if name.is_empty() { None } else { Some(name) };
    if empty {
        Line::Empty { kind, name }
    } else {
        Line::Open { kind, name }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_line_comments_and_blank_lines_are_blank() {
        assert_eq!(classify(b""), Line::Blank);
        assert_eq!(classify(b"   \t "), Line::Blank);
        assert_eq!(classify(b"# comment"), Line::Blank);
        assert_eq!(classify(b"    #restart_after     10000"), Line::Blank);
    }

    #[test]
    fn trailing_hash_after_whitespace_is_a_comment() {
        assert_eq!(
            classify(b"ip     192.168.197.184  #master1 ip"),
            Line::KeyValue {
                key: "ip",
                value: "192.168.197.184"
            }
        );
        assert_eq!(
            classify(b"hosts      master1,master2 #writers"),
            Line::KeyValue {
                key: "hosts",
                value: "master1,master2"
            }
        );
    }

    #[test]
    fn hash_inside_a_value_is_kept() {
        assert_eq!(
            classify(b"agent_password pa#ss"),
            Line::KeyValue {
                key: "agent_password",
                value: "pa#ss"
            }
        );
        assert_eq!(
            classify(b"agent_password pa#ss  # the password"),
            Line::KeyValue {
                key: "agent_password",
                value: "pa#ss"
            }
        );
    }

    #[test]
    fn comment_after_a_section_tag_is_ignored() {
        assert_eq!(
            classify("<host master1>     #master1的host名".as_bytes()),
            Line::Open {
                kind: "host",
                name: Some("master1")
            }
        );
    }

    #[test]
    fn comments_may_use_any_encoding() {
        let gbk_comment: &[u8] = b"mode master  # \xc4\xa3\xca\xbd";
        assert_eq!(
            classify(gbk_comment),
            Line::KeyValue {
                key: "mode",
                value: "master"
            }
        );
        assert_eq!(classify(b"mode ma\xffster"), Line::NotUtf8);
    }

    #[test]
    fn value_is_the_rest_of_the_line_trimmed() {
        assert_eq!(
            classify(b"\tbackup_command scp -c blowfish -r %SSH_USER%@%IP%:%SNAPSHOT% \r"),
            Line::KeyValue {
                key: "backup_command",
                value: "scp -c blowfish -r %SSH_USER%@%IP%:%SNAPSHOT%"
            }
        );
        assert_eq!(
            classify(b"check_period"),
            Line::KeyValue {
                key: "check_period",
                value: ""
            }
        );
    }

    #[test]
    fn all_tag_forms_are_recognised() {
        assert_eq!(
            classify(b"<monitor>"),
            Line::Open {
                kind: "monitor",
                name: None
            }
        );
        assert_eq!(
            classify(b"< host  db1 >"),
            Line::Open {
                kind: "host",
                name: Some("db1")
            }
        );
        assert_eq!(
            classify(b"<socket/>"),
            Line::Empty {
                kind: "socket",
                name: None
            }
        );
        assert_eq!(
            classify(b"<copy_method ssh-gz />"),
            Line::Empty {
                kind: "copy_method",
                name: Some("ssh-gz")
            }
        );
        assert_eq!(classify(b"</host>"), Line::Close("host"));
        assert_eq!(classify(b"</ host >"), Line::Close("host"));
    }

    #[test]
    fn malformed_tags_are_invalid() {
        for line in [
            "<host db1",
            "<host db1 db2>",
            "<>",
            "<host db.1>",
            "</>",
            "<host db1> ip 1.2.3.4",
        ] {
            assert!(
                matches!(classify(line.as_bytes()), Line::Invalid(_)),
                "{line}"
            );
        }
    }

    #[test]
    fn include_takes_exactly_one_name() {
        assert_eq!(
            classify(b"include mmm_common.conf  # shared"),
            Line::Include("mmm_common.conf")
        );
        assert!(matches!(classify(b"include"), Line::Invalid(_)));
        assert!(matches!(classify(b"include a b"), Line::Invalid(_)));
    }
}

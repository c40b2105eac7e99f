//! The desired-state file: its model, defaults, validation and JSON Schema.
//!
//! [`load`] reads a file and returns a [`Lab`] only when every check passes; otherwise an
//! [`InvalidFile`] carries every problem found, each with its line and column.

mod diagnostics;
pub mod fields;
pub mod model;
mod nmap_options;
mod path;
pub mod placement;
mod schema;
mod secret;
mod source;
mod types;
mod validate;

use std::path::{Path, PathBuf};

pub use diagnostics::{Diagnostic, InvalidFile};
pub use model::LabFile;
pub use path::{FieldPath, Segment};
pub use schema::json_schema;
pub use secret::{ResolveError, SecretKeyRef, SecretSource};
pub use source::{Location, SourceFile};

/// A commented starter file that validates, written by `seclab init`.
pub const STARTER: &str = include_str!("starter.yaml");
/// The starter for `seclab init --homelab`: the Cortex home lab with its ECK operator, for bootstrap.
pub const STARTER_HOMELAB: &str = include_str!("starter-homelab.yaml");

/// A desired-state file that passed every check: the only input later stages accept.
#[derive(Debug, Clone)]
pub struct Lab {
    spec: LabFile,
    path: PathBuf,
    /// The `env:` and `file:` secrets, by where the file names them.
    secrets: Vec<(FieldPath, SecretSource)>,
    /// The values the checks parsed from the file's text.
    parsed: Parsed,
}

/// Values the file writes as text (`5m`, `127.0.0.1:9464`), parsed once when it is checked:
/// nothing after the checks parses them again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    /// `watch.resyncInterval`.
    pub resync_interval: std::time::Duration,
    /// `watch.debounce`.
    pub debounce: std::time::Duration,
    /// `watch.listen`.
    pub listen: std::net::SocketAddr,
    /// `certificates.renewBefore`.
    pub renew_before: std::time::Duration,
}

impl Default for Parsed {
    /// Placeholders until the checks parse the file's values: a file whose values do not
    /// parse gives no [`Lab`].
    fn default() -> Self {
        let zero = std::time::Duration::ZERO;
        let listen = std::net::SocketAddr::from(([0, 0, 0, 0], 0));
        Self { resync_interval: zero, debounce: zero, listen, renew_before: zero }
    }
}

impl Lab {
    /// The validated content, with every default filled in.
    pub fn spec(&self) -> &LabFile {
        &self.spec
    }

    /// The values the checks parsed from the file's text.
    pub fn parsed(&self) -> &Parsed {
        &self.parsed
    }

    /// The lab's name.
    pub fn name(&self) -> &str {
        &self.spec.metadata.name
    }

    /// What a person should know about a valid lab that works but is not the tested path.
    pub fn notes(&self) -> Vec<String> {
        let (cortex, es) = (&self.spec.cortex, &self.spec.elasticsearch);
        let mut notes = Vec::new();
        if cortex.enabled && es.enabled && es.mode == model::SearchEngine::Opensearch {
            notes.push(format!(
                "Cortex on OpenSearch {} runs against its Elasticsearch 7.10-compatible mode, which seclab sets; Cortex's maintainers test against Elasticsearch only (`elasticsearch.mode: eck` is the tested path)",
                es.version()
            ));
        }
        notes
    }

    /// The `env:` and `file:` secrets that cannot be read here (an unset variable, a missing
    /// file), each as `field: reason`: a warning for `validate` (it may run where the secrets
    /// are not), an error before the first write for the commands that use them.
    pub fn unresolved_secrets(&self) -> Vec<String> {
        self.unresolved_secrets_of(|_| true)
    }

    /// [`Lab::unresolved_secrets`] among the sections of the file `section` picks (by their
    /// top-level key: `alerts`, `scanDatabase`...).
    pub fn unresolved_secrets_of(&self, section: impl Fn(&str) -> bool) -> Vec<String> {
        let base = self.path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        self.secrets
            .iter()
            .filter(|(path, _)| match path.segments().first() {
                Some(Segment::Key(key)) => section(key),
                _ => true,
            })
            .filter_map(|(path, secret)| {
                // Resolved as apply resolves it; a `secretRef` lives in the cluster, not here.
                let reason = match secret.resolve(base).err()? {
                    ResolveError::Unset(var) => format!("`env:{var}`: the environment variable {var} is not set"),
                    ResolveError::Unreadable { path: file, source } => {
                        format!("`file:{file}`: cannot read {}: {source}", base.join(&file).display())
                    }
                    ResolveError::InCluster { .. } | ResolveError::Literal => return None,
                };
                Some(format!("{path}: {reason}"))
            })
            .collect()
    }

    /// The file this lab was read from; relative paths in it are relative to its directory.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Why a desired-state file could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read at all.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// The file is not UTF-8 text.
    #[error("{}: the file is not UTF-8: {detail}", path.display())]
    NotUtf8 {
        /// The file.
        path: PathBuf,
        /// Which encoding it seems to be in, or where its first bad byte is.
        detail: String,
        /// Where its first byte that is not UTF-8 is, when that is what gave it away.
        at: Option<Location>,
    },
    /// The file is larger than any desired-state file: it is not read.
    #[error(
        "{} is larger than {} MiB, far larger than any lab (1,000 tenants take about 0.7 MB)",
        path.display(), MAX_FILE_BYTES >> 20
    )]
    TooLarge {
        /// The file.
        path: PathBuf,
    },
    /// The file was read but has problems.
    #[error("{0}")]
    Invalid(#[from] InvalidFile),
}

impl LoadError {
    /// What to do about a file that cannot be read as text, for the errors that have a fix.
    pub fn help(&self) -> Option<&'static str> {
        match self {
            Self::NotUtf8 { .. } => Some("Save it as UTF-8 and run seclab again."),
            Self::TooLarge { .. } => Some("Check that --file names the desired-state file."),
            Self::Read { .. } | Self::Invalid(_) => None,
        }
    }

    /// Where the problem is in the file, when it is at one place.
    pub fn location(&self) -> Option<Location> {
        match self {
            Self::NotUtf8 { at, .. } => *at,
            _ => None,
        }
    }
}

/// The largest desired-state file seclab reads: memory stays bounded whatever `--file` names.
pub const MAX_FILE_BYTES: u64 = 16 << 20;

/// Reads and checks the desired-state file at `path`.
pub fn load(path: &Path) -> Result<Lab, LoadError> {
    use std::io::Read;
    let failed = |source| LoadError::Read { path: path.to_owned(), source };
    let mut bytes = Vec::new();
    let file = std::fs::File::open(path).map_err(failed)?;
    file.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes).map_err(failed)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(LoadError::TooLarge { path: path.to_owned() });
    }
    let text = utf8(bytes).map_err(|(detail, at)| LoadError::NotUtf8 { path: path.to_owned(), detail, at })?;
    Ok(parse(SourceFile::new(path, text))?)
}

/// The file's text: UTF-8, without the byte order mark YAML allows there. Otherwise what it
/// seems to be instead, or the line and column of its first byte that is not UTF-8.
fn utf8(mut bytes: Vec<u8>) -> Result<String, (String, Option<Location>)> {
    if bytes.starts_with(&[0xFF, 0xFE]) || bytes.starts_with(&[0xFE, 0xFF]) {
        return Err(("it is UTF-16 (it starts with a UTF-16 byte order mark)".to_owned(), None));
    }
    if bytes.starts_with(&[0xEF, 0xBB, 0xBF]) {
        bytes.drain(..3);
    }
    String::from_utf8(bytes).map_err(|error| {
        let bad = error.utf8_error().valid_up_to();
        let before = &error.as_bytes()[..bad];
        let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
        let start = before.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        let column = String::from_utf8_lossy(&before[start..]).chars().count() + 1;
        let detail = format!(
            "line {line}, column {column} holds byte 0x{:02X} (Latin-1 or another encoding?)",
            error.as_bytes()[bad]
        );
        (detail, Some(Location { line, column }))
    })
}

/// Checks a desired-state file already in memory.
pub fn parse(source: SourceFile) -> Result<Lab, InvalidFile> {
    if source.text().lines().all(|line| line.trim().is_empty() || line.trim_start().starts_with('#')) {
        let empty = Diagnostic {
            location: None,
            path: None,
            message: "the file is empty".into(),
            hint: Some("run `seclab init` to write a commented starter file".into()),
            at_key: false,
            secret: false,
        };
        return Err(InvalidFile::new(source, vec![empty]));
    }
    let mut unknown = Vec::new();
    let parsed: Result<LabFile, _> =
        serde_ignored::deserialize(serde_yaml::Deserializer::from_str(source.text()), |p| {
            unknown.push(FieldPath::from_ignored(&p))
        });
    let mut diagnostics: Vec<Diagnostic> = Vec::new();
    if !unknown.is_empty() {
        let schema = json_schema();
        diagnostics.extend(unknown.iter().map(|path| unknown_field(&source, &schema, path)));
    }
    let spec = match parsed {
        Ok(spec) => spec,
        Err(error) => {
            // Every wrong value at once (the schema's view), then the semantic checks on the
            // rest; serde's own message when the schema finds nothing or the YAML is broken.
            let schema = json_schema();
            match types::check(&source, &schema) {
                Some(found) => {
                    diagnostics.clear();
                    let wrong: Vec<FieldPath> = found.problems.iter().map(|(path, _)| path.clone()).collect();
                    for (path, diagnostic) in found.problems {
                        diagnostics.push(diagnostic.unwrap_or_else(|| unknown_field(&source, &schema, &path)));
                    }
                    if let Some(rest) = found.rest {
                        let under_wrong = |d: &Diagnostic| {
                            d.path
                                .as_ref()
                                .is_some_and(|p| wrong.iter().any(|w| p.segments().starts_with(w.segments())))
                        };
                        let found = validate::check(&rest, &source).diagnostics;
                        diagnostics.extend(found.into_iter().filter(|d| !under_wrong(d)));
                    }
                }
                None => diagnostics.push(syntax_or_type_error(&source, &error)),
            }
            return Err(InvalidFile::new(source, diagnostics));
        }
    };
    let checked = validate::check(&spec, &source);
    diagnostics.extend(checked.diagnostics);
    if diagnostics.is_empty() {
        Ok(Lab { spec, path: source.path().to_owned(), secrets: checked.secrets, parsed: checked.parsed })
    } else {
        Err(InvalidFile::new(source, diagnostics))
    }
}

fn unknown_field(source: &SourceFile, schema: &serde_json::Value, path: &FieldPath) -> Diagnostic {
    let (parent, key) = match path.segments().last() {
        Some(Segment::Key(key)) => (path.parent().unwrap_or_default(), key.as_str()),
        _ => (path.clone(), ""),
    };
    if key == "<<" {
        return Diagnostic {
            location: source.key_location(path),
            path: Some(path.clone()),
            message: "merge keys (`<<: *anchor`) are not supported".into(),
            hint: Some("write the keys out here (anchors and aliases themselves work)".into()),
            at_key: true,
            secret: false,
        };
    }
    let allowed = schema::fields_at(schema, &parent);
    let hint = match fields::suggest(key, allowed.iter().map(String::as_str)) {
        Some(close) => format!("did you mean `{close}`?"),
        None if allowed.is_empty() => "remove it".to_owned(),
        None => format!("expected one of: {}", allowed.join(", ")),
    };
    Diagnostic {
        location: source.key_location(path),
        path: Some(path.clone()),
        message: format!("unknown field `{key}`"),
        hint: Some(hint),
        at_key: true,
        secret: false,
    }
}

fn syntax_or_type_error(source: &SourceFile, error: &serde_yaml::Error) -> Diagnostic {
    // The parser may point just past the end of the file; show the last line instead.
    let last_line = source.text().lines().count().max(1);
    let location = error.location().map(|l| {
        if l.line() > last_line {
            let column = source.text().lines().last().map_or(1, |line| line.chars().count() + 1);
            Location { line: last_line, column }
        } else {
            Location { line: l.line(), column: l.column() }
        }
    });
    let text = error.to_string();
    let message = match text.find(" at line ") {
        Some(start) => {
            let rest = &text[start + 1..];
            let after = rest.find(", ").map_or("", |comma| &rest[comma..]);
            format!("{}{after}", &text[..start])
        }
        None => text.clone(),
    };
    let syntax =
        text.contains("while scanning") || text.contains("while parsing") || text.contains("did not find expected");
    let hint = if syntax {
        "check the quoting and indentation here and on the lines just before"
    } else {
        "`seclab schema` prints the type of every field"
    };
    let mut diagnostic =
        Diagnostic { location, path: None, message, hint: Some(hint.into()), at_key: false, secret: false };
    if let Some(location) = location {
        if syntax {
            explain_syntax(source, location, &mut diagnostic);
        } else if let Some(key) = text.split("duplicate field `").nth(1).and_then(|rest| rest.split('`').next()) {
            second_occurrence(source, location, key, &mut diagnostic);
        }
    }
    diagnostic
}

/// A key written twice in one mapping: shown at its second occurrence (serde names the
/// mapping's start), the first named.
fn second_occurrence(source: &SourceFile, start: Location, key: &str, diagnostic: &mut Diagnostic) {
    let lines: Vec<&str> = source.text().lines().collect();
    let indent = |line: &str| line.len() - line.trim_start().len();
    let Some(first_line) = lines.get(start.line - 1) else { return };
    let depth = indent(first_line);
    let mut seen = None;
    for (i, line) in lines.iter().enumerate().skip(start.line - 1) {
        let trimmed = line.trim_start();
        if !trimmed.is_empty() && !trimmed.starts_with('#') && indent(line) < depth {
            break;
        }
        if indent(line) == depth && trimmed.strip_prefix(key).is_some_and(|rest| rest.trim_start().starts_with(':')) {
            match seen {
                None => seen = Some(i + 1),
                Some(first) => {
                    diagnostic.message = format!("`{key}` is written twice here; the first is at line {first}");
                    diagnostic.hint = Some("keep one of them".into());
                    diagnostic.location = Some(Location { line: i + 1, column: depth + 1 });
                    return;
                }
            }
        }
    }
}

/// Two syntax errors that YAML's own words do not explain: a tab (YAML indents with spaces
/// only), and a value that starts with `*` (an alias to YAML, a cron field to the user).
fn explain_syntax(source: &SourceFile, at: Location, diagnostic: &mut Diagnostic) {
    let lines: Vec<&str> = source.text().lines().collect();
    // The parser may stop on the line after the culprit.
    let candidates = [at.line, at.line.saturating_sub(1)];
    for line_number in candidates.into_iter().filter(|n| *n >= 1) {
        let Some(line) = lines.get(line_number - 1) else { continue };
        if let Some(tab) = line.chars().position(|c| c == '\t') {
            diagnostic.message = "a tab character: YAML indents with spaces only".into();
            diagnostic.hint = Some("replace the tab with spaces".into());
            diagnostic.location = Some(Location { line: line_number, column: tab + 1 });
            return;
        }
        // `tenants: []` and then an item: the `[]` ended the list.
        if line.trim_start().starts_with("- ")
            && let Some(before) = lines[..line_number - 1].iter().rev().find(|l| !l.trim().is_empty())
            && let Some(key) = before.trim().strip_suffix(": []").or_else(|| before.trim().strip_suffix(":[]"))
        {
            diagnostic.message = format!("`{key}: []` is an empty list, so this item belongs to none");
            diagnostic.hint = Some(format!("remove the `[]`: write `{key}:` and its items below it"));
            diagnostic.location =
                Some(Location { line: line_number, column: line.len() - line.trim_start().len() + 1 });
            return;
        }
        let trimmed = line.trim_start().trim_start_matches("- ");
        if let Some((key, value)) = trimmed.split_once(':')
            && value.trim_start().starts_with('*')
        {
            let column = line.len() - value.trim_start().len() + 1;
            diagnostic.message = format!("`{}` starts with `*`, which YAML reads as an alias", value.trim());
            diagnostic.hint = Some(format!("quote the value: `{key}: \"{}\"`", value.trim()));
            diagnostic.location = Some(Location { line: line_number, column });
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_files_durations_and_address_are_parsed_once_with_the_checks() {
        let text = "apiVersion: seclab.dev/v1alpha1\nkind: Lab\nmetadata:\n  name: lab\n\
                    watch:\n  resyncInterval: 2m\n  debounce: 50ms\n  listen: 127.0.0.1:9999\n\
                    certificates:\n  renewBefore: 10d\n";
        let lab = parse(SourceFile::new("lab.yaml", text)).unwrap();
        let parsed = lab.parsed();
        assert_eq!(parsed.resync_interval, std::time::Duration::from_secs(120));
        assert_eq!(parsed.debounce, std::time::Duration::from_millis(50));
        assert_eq!(parsed.listen.to_string(), "127.0.0.1:9999");
        assert_eq!(parsed.renew_before, std::time::Duration::from_secs(10 * 86_400));
        let defaults =
            parse(SourceFile::new(Path::new("lab.yaml"), text.lines().take(4).collect::<Vec<_>>().join("\n"))).unwrap();
        assert_eq!(defaults.parsed().resync_interval, std::time::Duration::from_secs(300), "the default, 5m");
    }
}

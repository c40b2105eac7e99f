//! Problems found in a desired-state file, each tied to a line and column, and how they are shown.

use std::fmt;

use annotate_snippets::{AnnotationKind, Group, Level, Renderer, Snippet};
use serde::Serialize;

use super::path::FieldPath;
use super::source::{Location, SourceFile};

/// One problem in the file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    /// Where it is written; `None` only when the file is empty.
    #[serde(flatten)]
    pub location: Option<Location>,
    /// The field, when the problem belongs to one (syntax errors do not).
    #[serde(serialize_with = "display_path", skip_serializing_if = "Option::is_none")]
    pub path: Option<FieldPath>,
    /// What is wrong.
    pub message: String,
    /// How to fix it (`help` in JSON, as cargo and the text report call it).
    #[serde(rename = "help", skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// Whether the location points at the field's key (unknown fields) rather than its value.
    #[serde(skip)]
    pub at_key: bool,
    /// Whether the value at the location is a secret, to be masked wherever its line is shown.
    #[serde(skip)]
    pub secret: bool,
}

fn display_path<S: serde::Serializer>(path: &Option<FieldPath>, serializer: S) -> Result<S::Ok, S::Error> {
    match path {
        Some(path) => serializer.collect_str(path),
        None => serializer.serialize_none(),
    }
}

/// A desired-state file that cannot be used, with every problem found in it.
#[derive(Debug)]
pub struct InvalidFile {
    source: Box<SourceFile>,
    diagnostics: Vec<Diagnostic>,
}

impl InvalidFile {
    /// Pairs the problems with their file, sorted by position.
    pub(crate) fn new(source: SourceFile, mut diagnostics: Vec<Diagnostic>) -> Self {
        diagnostics.sort_by(|a, b| a.location.cmp(&b.location).then_with(|| a.message.cmp(&b.message)));
        diagnostics.dedup();
        Self { source: Box::new(source), diagnostics }
    }

    /// The problems, in file order.
    pub fn diagnostics(&self) -> &[Diagnostic] {
        &self.diagnostics
    }

    /// One line: the file, how many problems it has, and that nothing was changed.
    pub fn summary(&self) -> String {
        let problems = crate::words::count(self.diagnostics.len() as u64, "problem", "problems");
        format!("{} has {problems}; nothing was changed", self.source.path().display())
    }

    /// The problems as cargo-style reports, each showing its source line; `color` for terminals.
    pub fn report(&self, color: bool) -> String {
        let renderer = if color { Renderer::styled() } else { Renderer::plain() };
        let path = self.source.path().display().to_string();
        let mut out = String::new();
        for diagnostic in &self.diagnostics {
            let mut groups = vec![self.group(diagnostic, &path)];
            if let Some(hint) = &diagnostic.hint {
                groups.push(Group::with_title(Level::HELP.secondary_title(hint.as_str())));
            }
            out.push_str(&renderer.render(&groups));
            out.push_str("\n\n");
        }
        let count = self.diagnostics.len();
        out.push_str(&format!(
            "error: {}. Fix {} and run `seclab validate` again.\n",
            self.summary(),
            if count == 1 { "it" } else { "them" },
        ));
        out
    }

    fn group<'a>(&'a self, diagnostic: &'a Diagnostic, path: &'a str) -> Group<'a> {
        let title = Level::ERROR.primary_title(diagnostic.message.as_str());
        let Some(location) = diagnostic.location else {
            return Group::with_title(title);
        };
        let (Some(line), Some(start)) = (self.source.line_range(location.line), self.source.offset(location)) else {
            return Group::with_title(title);
        };
        let (text, from, to) = self.masked_line(location.line, line.clone(), start - line.start, diagnostic.at_key);
        let mut annotation = AnnotationKind::Primary.span(from..to.max(from));
        if let Some(field) = &diagnostic.path {
            annotation = annotation.label(format!("at `{field}`"));
        }
        title.element(Snippet::source(text).line_start(location.line).path(path).annotation(annotation))
    }

    /// A source line with every secret value on it replaced by `<redacted>`, and the
    /// annotated span `from..to` moved to match.
    fn masked_line(
        &self,
        number: usize,
        range: std::ops::Range<usize>,
        mut from: usize,
        at_key: bool,
    ) -> (String, usize, usize) {
        let mut text = self.source.text()[range.clone()].to_owned();
        let mut to = from + token_len(&text[from..], at_key, in_flow(&text[..from]));
        let mut secrets: Vec<usize> = self
            .diagnostics
            .iter()
            .filter(|d| d.secret)
            .filter_map(|d| d.location.filter(|l| l.line == number))
            .filter_map(|l| self.source.offset(l))
            .map(|offset| offset - range.start)
            .collect();
        secrets.sort_unstable();
        secrets.dedup();
        for start in secrets.into_iter().rev() {
            let end = start + token_len(&text[start..], false, in_flow(&text[..start]));
            text.replace_range(start..end, REDACTED);
            let masked = start..start + REDACTED.len();
            let moved = |at: usize| match at {
                at if at <= start => at,
                at if at >= end => at + REDACTED.len() - (end - start),
                _ => masked.end,
            };
            if (start..end).contains(&from) {
                // The span is the secret, or starts inside it: it marks the mask.
                (from, to) = (masked.start, masked.end);
            } else {
                (from, to) = (moved(from), moved(to));
            }
        }
        (text, from, to)
    }
}

/// What a secret value is shown as.
const REDACTED: &str = "<redacted>";

/// The length of the key or value starting `rest`: a key ends at its colon; a quoted value at
/// its closing quote; a plain value at a comment, and inside `{...}` or `[...]` (`flow`) also
/// at the next `,`, `}` or `]`.
fn token_len(rest: &str, key: bool, flow: bool) -> usize {
    if key {
        return rest.find(':').unwrap_or(rest.len());
    }
    let bytes = rest.as_bytes();
    let closing = |quote: u8| {
        let mut at = 1;
        while at < bytes.len() {
            match bytes[at] {
                b'\\' if quote == b'"' => at += 2,
                b'\'' if quote == b'\'' && bytes.get(at + 1) == Some(&b'\'') => at += 2,
                found if found == quote => return at + 1,
                _ => at += 1,
            }
        }
        bytes.len()
    };
    match bytes.first() {
        Some(&quote @ (b'"' | b'\'')) => closing(quote),
        _ => {
            let mut end = rest.find(" #").unwrap_or(rest.len());
            if flow && let Some(stop) = rest[..end].find([',', '}', ']']) {
                end = stop;
            }
            rest[..end].trim_end().len()
        }
    }
}

/// Whether a value after `before` (the start of its line) is inside `{...}` or `[...]`.
fn in_flow(before: &str) -> bool {
    let (mut depth, mut quote) = (0i32, None);
    for c in before.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '{' | '[') => depth += 1,
            (None, '}' | ']') => depth -= 1,
            _ => {}
        }
    }
    depth > 0
}

impl fmt::Display for InvalidFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.diagnostics.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            let at = d.location.map(|l| format!(":{}:{}", l.line, l.column)).unwrap_or_default();
            write!(f, "{}{at}: {}", self.source.path().display(), d.message)?;
            if let Some(hint) = &d.hint {
                write!(f, " ({hint})")?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for InvalidFile {}

impl Serialize for InvalidFile {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut s = serializer.serialize_struct("InvalidFile", 2)?;
        s.serialize_field("file", &self.source.path().display().to_string())?;
        s.serialize_field("errors", &self.diagnostics)?;
        s.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_end_at_colons_comments_closing_quotes_and_flow_separators() {
        assert_eq!(token_len("replica: 2", true, false), 7);
        assert_eq!(token_len("\"0 2 * *\"  # nightly", false, false), 9);
        assert_eq!(token_len("10.0.0.0/33", false, false), 11);
        assert_eq!(token_len("\"a #b\\\" c\" # d", false, false), 10);
        assert_eq!(token_len("'it''s #x' y", false, false), 10);
        assert_eq!(token_len("abc, s}", false, true), 3);
        assert_eq!(token_len("abc, s", false, false), 6);
        assert!(in_flow("watch: {token: ") && !in_flow("token: ") && !in_flow("x: '{' "));
    }

    fn report(text: &str) -> String {
        let invalid = crate::config::parse(crate::config::SourceFile::new("lab.yaml", text)).unwrap_err();
        invalid.report(false)
    }

    /// Found by `cargo fuzz run lab_file`: a secret in a one-line mapping, another problem
    /// after it on the same line.
    #[test]
    fn a_problem_after_a_masked_secret_on_its_line_is_reported() {
        let text = report("apiVersion:\nkind: \nmetadata:\n name:\nwatch: {token: abchijlnyz, s}\n");
        assert!(text.contains("<redacted>") && !text.contains("abchijlnyz"), "{text}");
    }

    #[test]
    fn a_quoted_secret_is_masked_whole() {
        let header = "apiVersion: seclab.dev/v1alpha1\nkind: Lab\nmetadata:\n  name: lab\n";
        let text = report(&format!("{header}watch:\n  token: \"hunter2 #TOPSECRET-tail\"\n"));
        assert!(
            text.contains("token: <redacted>") && !text.contains("TOPSECRET") && !text.contains("hunter2"),
            "{text}"
        );
        let text = report(&format!("{header}watch: {{token: 'it''s #TOPSECRET', debounce: soon}}\n"));
        assert!(!text.contains("TOPSECRET") && text.contains("soon"), "{text}");
    }
}

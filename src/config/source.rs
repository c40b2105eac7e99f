//! The text of a desired-state file and where each of its fields is written.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use marked_yaml::Node;

use super::path::{FieldPath, Segment};

/// A line and column in a file, both counted from 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct Location {
    /// Line number, from 1.
    pub line: usize,
    /// Column number (in characters), from 1.
    pub column: usize,
}

/// A desired-state file as read from disk, with a span-aware parse for locating fields
/// (made on the first lookup: a file without problems never needs it).
pub struct SourceFile {
    path: PathBuf,
    text: String,
    tree: OnceLock<Option<Node>>,
}

impl std::fmt::Debug for SourceFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceFile").field("path", &self.path).finish_non_exhaustive()
    }
}

impl SourceFile {
    /// Wraps the text of `path`; a text that does not parse still gives line-based locations.
    pub fn new(path: impl Into<PathBuf>, text: impl Into<String>) -> Self {
        Self { path: path.into(), text: text.into(), tree: OnceLock::new() }
    }

    fn tree(&self) -> Option<&Node> {
        self.tree.get_or_init(|| marked_yaml::parse_yaml(0, self.text.as_str()).ok()).as_ref()
    }

    /// The file's path, as the user named it.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file's text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Where the value of `path` is written, or its nearest written ancestor.
    pub fn value_location(&self, path: &FieldPath) -> Option<Location> {
        self.locate(path, false)
    }

    /// Where the key of `path` is written (for unknown fields), or its nearest written ancestor.
    pub fn key_location(&self, path: &FieldPath) -> Option<Location> {
        self.locate(path, true)
    }

    /// Whether `path` is written in the file (rather than taken from a default).
    pub fn contains(&self, path: &FieldPath) -> bool {
        let Some(mut node) = self.tree() else { return false };
        for segment in path.segments() {
            let next = match (segment, node) {
                (Segment::Key(key), Node::Mapping(map)) => map.iter().find(|(k, _)| k.as_str() == key).map(|(_, v)| v),
                (Segment::Index(index), Node::Sequence(seq)) => seq.get(*index),
                _ => None,
            };
            match next {
                Some(next) => node = next,
                None => return false,
            }
        }
        true
    }

    fn locate(&self, path: &FieldPath, want_key: bool) -> Option<Location> {
        let mut node = self.tree()?;
        let mut best = start_of(node);
        let segments = path.segments();
        for (i, segment) in segments.iter().enumerate() {
            let last = i + 1 == segments.len();
            match (segment, node) {
                (Segment::Key(key), Node::Mapping(map)) => {
                    let Some((k, v)) = map.iter().find(|(k, _)| k.as_str() == key) else {
                        break;
                    };
                    best = if last && want_key {
                        marker(k.span().start())
                    } else {
                        start_of(v).or(marker(k.span().start()))
                    };
                    node = v;
                }
                (Segment::Index(index), Node::Sequence(seq)) => {
                    let Some(item) = seq.get(*index) else { break };
                    best = start_of(item).or(best);
                    node = item;
                }
                _ => break,
            }
        }
        best
    }

    /// The byte range of the line holding `location`, for showing it under an error.
    pub fn line_range(&self, line: usize) -> Option<std::ops::Range<usize>> {
        let mut start = 0;
        for (i, text) in self.text.split_inclusive('\n').enumerate() {
            if i + 1 == line {
                return Some(start..start + text.trim_end_matches(['\n', '\r']).len());
            }
            start += text.len();
        }
        None
    }

    /// The byte offset of `location` in the text, clamped to its line.
    pub fn offset(&self, location: Location) -> Option<usize> {
        let range = self.line_range(location.line)?;
        let line = &self.text[range.clone()];
        let within = line.char_indices().nth(location.column.saturating_sub(1)).map_or(line.len(), |(b, _)| b);
        Some(range.start + within)
    }
}

/// Where a node starts; for a mapping, its first key (the parser marks block mappings oddly).
fn start_of(node: &Node) -> Option<Location> {
    match node {
        Node::Mapping(map) => map.keys().next().and_then(|k| marker(k.span().start())).or(marker(node.span().start())),
        _ => marker(node.span().start()),
    }
}

fn marker(marker: Option<&marked_yaml::Marker>) -> Option<Location> {
    marker.map(|m| Location { line: m.line(), column: m.column() })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "metadata:\n  name: lab\ntenants:\n  - name: a\n  - name: b\n    port: 80\n";

    #[test]
    fn finds_values_and_keys() {
        let file = SourceFile::new("f.yaml", TEXT);
        let port = FieldPath::root().key("tenants").index(1).key("port");
        assert_eq!(file.value_location(&port), Some(Location { line: 6, column: 11 }));
        assert_eq!(file.key_location(&port), Some(Location { line: 6, column: 5 }));
        let item = FieldPath::root().key("tenants").index(1);
        assert_eq!(file.value_location(&item), Some(Location { line: 5, column: 5 }));
    }

    #[test]
    fn missing_fields_fall_back_to_the_nearest_parent() {
        let file = SourceFile::new("f.yaml", TEXT);
        let missing = FieldPath::root().key("tenants").index(0).key("scans");
        assert_eq!(file.value_location(&missing), Some(Location { line: 4, column: 5 }));
    }

    #[test]
    fn offsets_are_bytes_within_the_line() {
        let file = SourceFile::new("f.yaml", "a: 1\nbé: 2\n");
        assert_eq!(file.offset(Location { line: 2, column: 4 }), Some(9));
        assert_eq!(file.line_range(2), Some(5..11));
    }
}

//! The text of a desired-state file and where each of its fields is written.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

use super::path::{FieldPath, Segment};

/// A line and column in a file, both counted from 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct Location {
    /// Line number, from 1.
    pub line: usize,
    /// Column number (in characters), from 1.
    pub column: usize,
}

/// A desired-state file as read from disk, with where each of its fields is written (found
/// on the first lookup: a file without problems never needs it).
pub struct SourceFile {
    path: PathBuf,
    text: String,
    index: OnceLock<Index>,
}

impl std::fmt::Debug for SourceFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceFile").field("path", &self.path).finish_non_exhaustive()
    }
}

impl SourceFile {
    /// Wraps the text of `path`; a text that does not parse still gives line-based locations.
    pub fn new(path: impl Into<PathBuf>, text: impl Into<String>) -> Self {
        Self { path: path.into(), text: text.into(), index: OnceLock::new() }
    }

    fn index(&self) -> &Index {
        self.index.get_or_init(|| Index::of(&self.text))
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
        let index = self.index();
        index.places.contains_key(&index.resolve(path.segments()))
    }

    fn locate(&self, path: &FieldPath, want_key: bool) -> Option<Location> {
        let index = self.index();
        let segments = path.segments();
        (0..=segments.len()).rev().find_map(|len| {
            let place = index.places.get(&index.resolve(&segments[..len]))?;
            Some(if want_key && len == segments.len() { place.key.unwrap_or(place.value) } else { place.value })
        })
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

/// Where a field's key and value are written.
#[derive(Debug, Clone, Copy)]
struct Place {
    key: Option<Location>,
    value: Location,
}

/// Every field of the file by path, read from the YAML parser's events, anchors and aliases
/// included: a field reached through an alias is where its anchor wrote it, the alias itself
/// where it is used. Aliases are followed when a path is looked up, never expanded (a file of
/// nested aliases stays as small as it is written). A file that does not parse keeps what was
/// read before the error.
#[derive(Debug, Default)]
struct Index {
    places: HashMap<Vec<Segment>, Place>,
    /// Where an alias is used, and the path of the node its anchor names.
    aliases: HashMap<Vec<Segment>, Vec<Segment>>,
}

impl Index {
    fn of(text: &str) -> Self {
        let mut builder = Builder::default();
        let _ = Parser::new_from_str(text).load(&mut builder, false);
        Index { places: builder.places, aliases: builder.aliases }
    }

    /// `path` with every alias on the way replaced by the node its anchor names (an alias at
    /// the end of `path` is kept: it has its own place).
    fn resolve(&self, path: &[Segment]) -> Vec<Segment> {
        let mut current = path.to_vec();
        // Anchors name nodes written before them, so this ends; the bound is for safety.
        for _ in 0..64 {
            let Some(len) = (1..current.len()).rev().find(|len| self.aliases.contains_key(&current[..*len])) else {
                break;
            };
            let mut next = self.aliases[&current[..len]].clone();
            next.extend_from_slice(&current[len..]);
            current = next;
        }
        current
    }
}

/// A collection being read: its path, and where its next node goes.
#[derive(Debug)]
enum Frame {
    Mapping { path: Vec<Segment>, key: Option<(String, Location)>, first: bool },
    Sequence { path: Vec<Segment>, next: usize },
}

#[derive(Debug, Default)]
struct Builder {
    places: HashMap<Vec<Segment>, Place>,
    aliases: HashMap<Vec<Segment>, Vec<Segment>>,
    stack: Vec<Frame>,
    /// Each anchor's node, by path.
    anchors: HashMap<usize, Vec<Segment>>,
}

impl Builder {
    /// Where the next node goes, and its key's location; `None` for a mapping's key.
    fn next_node(&mut self) -> Option<(Vec<Segment>, Option<Location>)> {
        match self.stack.last_mut() {
            None => Some((Vec::new(), None)),
            Some(Frame::Mapping { path, key, .. }) => {
                let (name, at) = key.take()?;
                let mut path = path.clone();
                path.push(Segment::Key(name));
                Some((path, Some(at)))
            }
            Some(Frame::Sequence { path, next, .. }) => {
                let mut path = path.clone();
                path.push(Segment::Index(*next));
                *next += 1;
                Some((path, None))
            }
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, event: Event, mark: Marker) {
        let at = Location { line: mark.line(), column: mark.col() + 1 };
        match event {
            Event::Scalar(text, _, anchor, _) => {
                if let Some(Frame::Mapping { key, first, path, .. }) = self.stack.last_mut()
                    && key.is_none()
                {
                    // A key: a block mapping's first key is where the mapping is shown.
                    if *first {
                        *first = false;
                        if let Some(place) = self.places.get_mut(path.as_slice()) {
                            place.value = at;
                        }
                    }
                    *key = Some((text, at));
                    return;
                }
                if let Some((path, key)) = self.next_node() {
                    self.places.insert(path.clone(), Place { key, value: at });
                    if anchor != 0 {
                        self.anchors.insert(anchor, path);
                    }
                }
            }
            Event::Alias(anchor) => {
                if let Some((path, key)) = self.next_node() {
                    if let Some(target) = self.anchors.get(&anchor) {
                        self.aliases.insert(path.clone(), target.clone());
                    }
                    self.places.insert(path, Place { key, value: at });
                }
            }
            Event::MappingStart(anchor, _) | Event::SequenceStart(anchor, _) => {
                // A mapping or list as a key is not something a lab file has: read past it.
                let (path, key) = match self.next_node() {
                    Some(node) => node,
                    None => (vec![Segment::Key(String::new())], None),
                };
                self.places.insert(path.clone(), Place { key, value: at });
                if anchor != 0 {
                    self.anchors.insert(anchor, path.clone());
                }
                self.stack.push(match event {
                    Event::MappingStart(..) => Frame::Mapping { path, key: None, first: true },
                    _ => Frame::Sequence { path, next: 0 },
                });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
            }
            _ => {}
        }
    }
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
    fn anchors_and_aliases_keep_every_location() {
        let text = "base: &base\n  replicas: 1\n  port: 80\ntenants:\n  - name: a\n    defaults: *base\n  - name: b\n";
        let file = SourceFile::new("f.yaml", text);
        let port = FieldPath::root().key("tenants").index(0).key("defaults").key("port");
        assert_eq!(file.value_location(&port), Some(Location { line: 3, column: 9 }), "where the anchor wrote it");
        let defaults = FieldPath::root().key("tenants").index(0).key("defaults");
        assert_eq!(file.value_location(&defaults), Some(Location { line: 6, column: 15 }), "where the alias is");
        let second = FieldPath::root().key("tenants").index(1).key("name");
        assert_eq!(file.value_location(&second), Some(Location { line: 7, column: 11 }));
        assert!(file.contains(&port));
    }

    #[test]
    fn offsets_are_bytes_within_the_line() {
        let file = SourceFile::new("f.yaml", "a: 1\nbé: 2\n");
        assert_eq!(file.offset(Location { line: 2, column: 4 }), Some(9));
        assert_eq!(file.line_range(2), Some(5..11));
    }
}

//! Writing rendered objects and node-side files to a directory, one file each.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::Rendered;

/// Marks a directory as written by `seclab render --out` and lists the files it wrote there,
/// which a later render may replace.
const MARKER: &str = ".seclab-render";
/// The marker's first line; the files follow, one relative path a line.
const MARKER_HEADER: &str = "# written by seclab render --out; a later render replaces these files and no other";

/// Why the output directory could not be written.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The directory holds files that seclab did not write.
    #[error(
        "{} holds files seclab render did not write: {}; move them away, or pass --force to replace the whole directory",
        dir.display(), listed(files)
    )]
    Foreign {
        /// The directory.
        dir: PathBuf,
        /// Its files seclab did not write, relative to it.
        files: Vec<PathBuf>,
    },
    /// A file operation failed.
    #[error("cannot write {}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The operating system's reason.
        source: io::Error,
    },
}

/// The first few of `files`, and how many more there are.
fn listed(files: &[PathBuf]) -> String {
    const SHOWN: usize = 5;
    let mut text: Vec<String> = files.iter().take(SHOWN).map(|f| f.display().to_string()).collect();
    if files.len() > SHOWN {
        text.push(format!("and {} more", files.len() - SHOWN));
    }
    text.join(", ")
}

impl Rendered {
    /// Writes each object to `<dir>/<namespace or cluster>/<kind>-<name>.yaml` and each node
    /// file to `<dir>/node/<name>`, replacing what an earlier render wrote there. A file it
    /// did not write stops it, unless `force` (then the whole directory is replaced).
    /// Returns the paths written, sorted.
    pub fn write_to_dir(&self, dir: &Path, force: bool) -> Result<Vec<PathBuf>, WriteError> {
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| WriteError::Io { path, source }
        };
        if dir.exists() {
            let written: Vec<PathBuf> = fs::read_to_string(dir.join(MARKER))
                .map(|text| text.lines().skip(1).map(PathBuf::from).collect())
                .unwrap_or_default();
            let mut foreign = Vec::new();
            for entry in walkdir::WalkDir::new(dir).min_depth(1).sort_by_file_name() {
                let entry = entry.map_err(|e| WriteError::Io { path: dir.to_owned(), source: e.into() })?;
                let relative = entry.path().strip_prefix(dir).unwrap_or(entry.path()).to_owned();
                if !entry.file_type().is_dir() && relative != Path::new(MARKER) && !written.contains(&relative) {
                    foreign.push(relative);
                }
            }
            if !foreign.is_empty() && !force {
                return Err(WriteError::Foreign { dir: dir.to_owned(), files: foreign });
            }
            fs::remove_dir_all(dir).map_err(io(dir))?;
        }
        fs::create_dir_all(dir).map_err(io(dir))?;
        let mut files: Vec<(PathBuf, String)> = self
            .objects
            .iter()
            .map(|object| {
                let scope = object.key.namespace.as_deref().unwrap_or("cluster");
                let file = format!("{}-{}.yaml", object.key.kind.to_ascii_lowercase(), object.key.name);
                (dir.join(scope).join(file), super::to_yaml(&object.manifest))
            })
            .collect();
        files.extend(self.node_files.iter().map(|f| (dir.join("node").join(&f.name), f.content.clone())));
        for (path, content) in &files {
            if let Some(parent) = path.parent() {
                fs::create_dir_all(parent).map_err(io(parent))?;
            }
            fs::write(path, content).map_err(io(path))?;
        }
        let mut marker = format!("{MARKER_HEADER}\n");
        for (path, _) in &files {
            marker.push_str(&format!("{}\n", path.strip_prefix(dir).unwrap_or(path).display()));
        }
        fs::write(dir.join(MARKER), marker).map_err(io(&dir.join(MARKER)))?;
        let mut paths: Vec<PathBuf> = files.into_iter().map(|(path, _)| path).collect();
        paths.sort();
        Ok(paths)
    }
}

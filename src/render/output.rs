//! Writing rendered objects and node-side files to a directory, one file each.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::Rendered;

/// Marks a directory as written by `seclab render --out`, so a later render may replace it.
const MARKER: &str = ".seclab-render";

/// Why the output directory could not be written.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The directory holds files that seclab did not write.
    #[error(
        "{} is not empty and was not written by `seclab render`; choose an empty or new directory",
        .0.display()
    )]
    Foreign(PathBuf),
    /// A file operation failed.
    #[error("cannot write {}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The operating system's reason.
        source: io::Error,
    },
}

impl Rendered {
    /// Writes each object to `<dir>/<namespace or cluster>/<kind>-<name>.yaml` and each node
    /// file to `<dir>/node/<name>`, replacing what an earlier render wrote there.
    /// Returns the paths written, sorted.
    pub fn write_to_dir(&self, dir: &Path) -> Result<Vec<PathBuf>, WriteError> {
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| WriteError::Io { path, source }
        };
        if dir.exists() {
            let mut entries = fs::read_dir(dir).map_err(io(dir))?;
            if !dir.join(MARKER).is_file() && entries.next().is_some() {
                return Err(WriteError::Foreign(dir.to_owned()));
            }
            fs::remove_dir_all(dir).map_err(io(dir))?;
        }
        fs::create_dir_all(dir).map_err(io(dir))?;
        fs::write(dir.join(MARKER), "written by seclab render; the whole directory is replaced on the next render\n")
            .map_err(io(&dir.join(MARKER)))?;
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
        let mut paths: Vec<PathBuf> = files.into_iter().map(|(path, _)| path).collect();
        paths.sort();
        Ok(paths)
    }
}

//! Scan files on disk: `scans/<tenant>/<group>/<start>.xml`, written atomically.

use std::path::{Path, PathBuf};

/// A scan file and the group it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanFile {
    /// The tenant.
    pub tenant: String,
    /// The scan group.
    pub group: String,
    /// The file.
    pub path: PathBuf,
}

/// A whole scan file in memory: mapped from the page cache when it is a regular file (no
/// copy, no fresh pages to clear), read otherwise (a pipe).
pub enum WholeFile {
    /// Mapped.
    Mapped(memmap2::Mmap),
    /// Read.
    Read(Vec<u8>),
}

impl std::ops::Deref for WholeFile {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Self::Mapped(map) => map,
            Self::Read(bytes) => bytes,
        }
    }
}

/// The bytes of the file at `path`, for comparing it whole.
pub fn read_whole(path: &Path) -> std::io::Result<WholeFile> {
    let file = std::fs::File::open(path)?;
    let regular = file.metadata()?.is_file();
    // SAFETY: the map is read-only. Scans are written to a hidden file and renamed into place
    // (by the CronJobs and `scan run`), so a file compared is not written any more; a file
    // truncated by another process while it is compared would stop seclab with SIGBUS, as it
    // would stop ripgrep, which maps the files it is given the same way.
    match regular.then(|| unsafe { memmap2::Mmap::map(&file) }) {
        Some(Ok(map)) => Ok(WholeFile::Mapped(map)),
        _ => std::fs::read(path).map(WholeFile::Read),
    }
}

/// The group a file belongs to, from its place under the scan directory
/// (`<tenant>/<group>/<file>.xml`).
pub fn group_of(path: &Path) -> Option<(String, String)> {
    let group = path.parent()?;
    let tenant = group.parent()?;
    Some((tenant.file_name()?.to_str()?.to_owned(), group.file_name()?.to_str()?.to_owned()))
}

/// Every finished scan under `dir` (`<tenant>/<group>/*.xml`), oldest first within a group.
/// Hidden files (scans still being written) are skipped.
pub fn find(dir: &Path) -> std::io::Result<Vec<ScanFile>> {
    let mut files = Vec::new();
    for tenant in sorted_entries(dir)? {
        if !tenant.is_dir() {
            continue;
        }
        for group in sorted_entries(&tenant)? {
            if !group.is_dir() {
                continue;
            }
            for path in sorted_entries(&group)? {
                let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
                if path.is_file()
                    && name.ends_with(".xml")
                    && !name.starts_with('.')
                    && let Some((tenant, group)) = group_of(&path)
                {
                    files.push(ScanFile { tenant, group, path });
                }
            }
        }
    }
    Ok(files)
}

fn sorted_entries(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)?.map(|e| e.map(|e| e.path())).collect::<Result<_, _>>()?;
    entries.sort();
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_finished_scans_by_group() {
        let dir = tempfile::tempdir().unwrap();
        let group = dir.path().join("barbican/dmz");
        std::fs::create_dir_all(&group).unwrap();
        for name in ["20261123T020000Z.xml", "20261122T020000Z.xml", ".20261124T020000Z.xml.partial", "notes.txt"] {
            std::fs::write(group.join(name), "").unwrap();
        }
        let found = find(dir.path()).unwrap();
        let names: Vec<_> = found.iter().map(|f| f.path.file_name().unwrap().to_str().unwrap()).collect();
        assert_eq!(names, ["20261122T020000Z.xml", "20261123T020000Z.xml"]);
        assert_eq!((found[0].tenant.as_str(), found[0].group.as_str()), ("barbican", "dmz"));
    }
}

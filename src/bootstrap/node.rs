//! Node-side files: k3s's `registries.yaml` and docker's `daemon.json`, merged into what the
//! node already has (other mirrors, keys and comments are kept), shown as a diff, written
//! atomically after a backup, and left alone when nothing changes.

use std::fs;
use std::io::{ErrorKind, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_yaml::{Mapping, Value as Yaml};

use crate::render::NodeFile;

/// Appended to a file's name for the copy kept before seclab writes it.
pub const BACKUP_SUFFIX: &str = ".seclab-backup";

/// The node files bootstrap writes: template name, the service that reads it, its format.
const WRITTEN: [(&str, &str, Format); 2] =
    [("registries.yaml", "k3s", Format::Yaml), ("daemon.json", "docker", Format::Json)];

#[derive(Debug, Clone, Copy)]
enum Format {
    Yaml,
    Json,
}

/// What bootstrap does to one node file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FileAction {
    /// The file does not exist yet.
    Create,
    /// The file exists and gains what the lab needs.
    Update,
    /// The file already holds what the lab needs.
    Unchanged,
}

/// One node file: where it goes, what it holds, what it will hold.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeFileChange {
    /// Where it belongs on the node, e.g. `/etc/rancher/k3s/registries.yaml`.
    pub install_path: String,
    /// Where it is written: `install_path` under the root directory.
    pub path: PathBuf,
    /// What it does.
    pub purpose: String,
    /// The service that must be restarted to read it.
    pub restart: &'static str,
    /// What happens to it.
    pub action: FileAction,
    /// Its content now, when it exists.
    #[serde(skip)]
    pub before: Option<String>,
    /// Its content afterwards.
    #[serde(skip)]
    pub after: String,
}

/// Why a node file cannot be merged or written. Nothing has been written when one of these
/// comes from [`plan`] or [`check_writable`].
#[derive(Debug, thiserror::Error)]
pub enum NodeFileError {
    /// The file exists but cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file exists but does not parse: seclab does not overwrite what it cannot read.
    #[error(
        "{path} is not valid {format}: {source}\nseclab never overwrites a file it cannot read: fix it, or move it away, and run bootstrap again"
    )]
    Unparsable {
        /// The file.
        path: PathBuf,
        /// YAML or JSON.
        format: &'static str,
        /// What is wrong.
        source: MergeError,
    },
    /// The file or its directory cannot be written.
    #[error(
        "cannot write {path}: {reason}\nrun bootstrap as root (sudo), or pass --root DIR to write the node files under another directory"
    )]
    NotWritable {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A path bootstrap writes is a symbolic link: as root, following it would write
    /// wherever it points.
    #[error(
        "{link} is a symbolic link; bootstrap, running as root, writes no file through one\nreplace it with the file or directory it points at, and run bootstrap again"
    )]
    Symlink {
        /// The link.
        link: PathBuf,
    },
    /// Writing failed.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

impl NodeFileChange {
    /// Whether bootstrap writes the file.
    pub fn changes(&self) -> bool {
        self.action != FileAction::Unchanged
    }

    /// The change as a unified diff (empty when unchanged).
    pub fn diff(&self) -> String {
        if !self.changes() {
            return String::new();
        }
        let before = self.before.as_deref().unwrap_or_default();
        let diff = similar::TextDiff::from_lines(before, self.after.as_str());
        let old = if self.before.is_some() { self.install_path.as_str() } else { "/dev/null" };
        diff.unified_diff().context_radius(3).header(old, &self.install_path).to_string()
    }

    /// The backup kept of the file as it was before the write.
    pub fn backup(&self) -> Option<PathBuf> {
        self.before.as_ref().map(|_| {
            let mut name = self.path.clone().into_os_string();
            name.push(BACKUP_SUFFIX);
            PathBuf::from(name)
        })
    }
}

/// What bootstrap would do to each node file the lab renders, read under `root`.
pub fn plan(files: &[NodeFile], root: &Path) -> Result<Vec<NodeFileChange>, NodeFileError> {
    let mut changes = Vec::new();
    for file in files {
        let Some((_, restart, format)) = WRITTEN.iter().find(|(name, _, _)| *name == file.name) else { continue };
        let (path, before) = read_existing(root, &file.install_path)?;
        let existing = before.as_deref().unwrap_or_default();
        let merged = match format {
            Format::Yaml => merge_registries(existing, &file.content),
            Format::Json => merge_daemon(existing, &file.content),
        };
        let after = merged.map_err(|source| NodeFileError::Unparsable {
            path: path.clone(),
            format: match format {
                Format::Yaml => "YAML",
                Format::Json => "JSON",
            },
            source,
        })?;
        let action = action(before.as_deref(), &after);
        let purpose = file.purpose.clone();
        changes.push(NodeFileChange {
            install_path: file.install_path.clone(),
            path,
            purpose,
            restart,
            action,
            before,
            after,
        });
    }
    Ok(changes)
}

/// What bootstrap would do to a file it writes whole (`content`, nothing of the node's kept),
/// installed at `install_path`, read under `root`.
pub fn plan_whole(
    root: &Path,
    install_path: &str,
    purpose: &str,
    restart: &'static str,
    content: String,
) -> Result<NodeFileChange, NodeFileError> {
    let (path, before) = read_existing(root, install_path)?;
    let action = action(before.as_deref(), &content);
    Ok(NodeFileChange {
        install_path: install_path.to_owned(),
        path,
        purpose: purpose.to_owned(),
        restart,
        action,
        before,
        after: content,
    })
}

/// Where the file installed at `install_path` is under `root`, and what it holds now (`None`
/// when it does not exist); refuses symbolic links on the way.
fn read_existing(root: &Path, install_path: &str) -> Result<(PathBuf, Option<String>), NodeFileError> {
    let relative = Path::new(install_path.trim_start_matches('/'));
    let path = root.join(relative);
    refuse_symlinks(root, relative)?;
    match fs::read_to_string(&path) {
        Ok(text) => Ok((path, Some(text))),
        // A file where a directory should be: the file is absent (and cannot be written).
        Err(error) if matches!(error.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => Ok((path, None)),
        Err(source) => Err(NodeFileError::Read { path, source }),
    }
}

/// What writing `after` over `before` is.
fn action(before: Option<&str>, after: &str) -> FileAction {
    match before {
        None => FileAction::Create,
        Some(text) if text == after => FileAction::Unchanged,
        Some(_) => FileAction::Update,
    }
}

/// Fails when a path under `root` that bootstrap reads or writes for `relative` is a symbolic
/// link: each directory below `root`, the file, and its backup.
fn refuse_symlinks(root: &Path, relative: &Path) -> Result<(), NodeFileError> {
    let mut backup = relative.as_os_str().to_owned();
    backup.push(BACKUP_SUFFIX);
    let mut below = PathBuf::new();
    let paths = relative.components().map(|part| {
        below.push(part);
        root.join(&below)
    });
    for path in paths.collect::<Vec<_>>().into_iter().chain([root.join(backup)]) {
        match fs::symlink_metadata(&path) {
            Ok(meta) if meta.file_type().is_symlink() => return Err(NodeFileError::Symlink { link: path }),
            Ok(_) => {}
            Err(_) => break,
        }
    }
    Ok(())
}

/// Fails, before anything is written, when a file that changes could not be written: its
/// nearest existing directory (or the file itself) is not writable.
pub fn check_writable(changes: &[NodeFileChange]) -> Result<(), NodeFileError> {
    use rustix::fs::{Access, access};
    for change in changes.iter().filter(|c| c.changes()) {
        let not_writable = |reason: String| NodeFileError::NotWritable { path: change.path.clone(), reason };
        if change.before.is_some() {
            access(&change.path, Access::WRITE_OK).map_err(|e| not_writable(e.to_string()))?;
        }
        let mut dir = change.path.parent();
        while let Some(candidate) = dir {
            match fs::metadata(candidate) {
                Ok(meta) if meta.is_dir() => {
                    access(candidate, Access::WRITE_OK | Access::EXEC_OK)
                        .map_err(|e| not_writable(format!("{}: {e}", candidate.display())))?;
                    break;
                }
                Ok(_) => return Err(not_writable(format!("{} is not a directory", candidate.display()))),
                Err(_) => dir = candidate.parent(),
            }
        }
    }
    Ok(())
}

/// Writes the file: a backup of what it held first, then the new content, each into a
/// temporary file in the same directory renamed over its path (a reader sees the old file or
/// the new one, and a rename replaces a link planted there instead of following it).
pub fn write(change: &NodeFileChange) -> Result<(), NodeFileError> {
    let failed = |source| NodeFileError::Write { path: change.path.clone(), source };
    let dir = change.path.parent().unwrap_or(Path::new("/"));
    fs::create_dir_all(dir).map_err(failed)?;
    let mode = match fs::symlink_metadata(&change.path) {
        Ok(meta) => meta.permissions().mode(),
        Err(_) => 0o644,
    };
    let replace = |path: &Path, content: &str| -> std::io::Result<()> {
        let mut file = tempfile::Builder::new().prefix(".seclab-").tempfile_in(dir)?;
        file.write_all(content.as_bytes())?;
        file.as_file().set_permissions(fs::Permissions::from_mode(mode))?;
        file.as_file().sync_all()?;
        file.persist(path).map_err(|e| e.error)?;
        Ok(())
    };
    if let (Some(backup), Some(before)) = (change.backup(), &change.before) {
        replace(&backup, before).map_err(failed)?;
    }
    replace(&change.path, &change.after).map_err(failed)?;
    Ok(())
}

/// Why a node file cannot take the lab's entry.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    /// The YAML file does not parse.
    #[error(transparent)]
    Yaml(#[from] serde_yaml::Error),
    /// The JSON file does not parse.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    /// It parses, but not into the shape the lab's entry goes into.
    #[error("{0}")]
    Shape(&'static str),
    /// The file the lab renders does not parse: a template's fault.
    #[error("the rendered file: {0}")]
    Rendered(#[source] Box<MergeError>),
}

/// A rendered file that does not parse.
fn rendered(error: impl Into<MergeError>) -> MergeError {
    MergeError::Rendered(Box::new(error.into()))
}

/// k3s's `registries.yaml` with the lab's mirror added or replaced; every other mirror,
/// `configs` entry and comment is kept. The text is edited in place when its layout allows
/// (checked by parsing the result), else written out again from the merged document.
fn merge_registries(existing: &str, wanted: &str) -> Result<String, MergeError> {
    let wanted_doc: Yaml = serde_yaml::from_str(wanted).map_err(rendered)?;
    let Some((host, entry)) = wanted_doc.get("mirrors").and_then(Yaml::as_mapping).and_then(|m| m.iter().next()) else {
        return Ok(existing.to_owned());
    };
    if existing.trim().is_empty() {
        return Ok(wanted.trim_start().to_owned());
    }
    let current: Yaml = serde_yaml::from_str(existing)?;
    let mut merged = match current.clone() {
        Yaml::Mapping(mapping) => mapping,
        Yaml::Null => Mapping::new(),
        _ => return Err(MergeError::Shape("its top level is not a mapping")),
    };
    let mirrors = merged.entry("mirrors".into()).or_insert_with(|| Yaml::Mapping(Mapping::new()));
    let Yaml::Mapping(mirrors) = mirrors else { return Err(MergeError::Shape("`mirrors` is not a mapping")) };
    if mirrors.get(host) == Some(entry) {
        return Ok(existing.to_owned());
    }
    mirrors.insert(host.clone(), entry.clone());
    let merged = Yaml::Mapping(merged);
    let host = host.as_str().unwrap_or_default();
    let edited = edit_mirror(existing, host, entry, wanted);
    if serde_yaml::from_str::<Yaml>(&edited).is_ok_and(|parsed| parsed == merged) {
        return Ok(edited);
    }
    Ok(serde_yaml::to_string(&merged)?)
}

/// `existing` with the mirror `host` replaced by `entry`, or added under `mirrors:`, or (no
/// `mirrors:` yet) the whole rendered file appended.
fn edit_mirror(existing: &str, host: &str, entry: &Yaml, wanted: &str) -> String {
    let lines: Vec<&str> = existing.lines().collect();
    let indent = |line: &str| line.len() - line.trim_start().len();
    let content = |line: &str| !line.trim().is_empty() && !line.trim_start().starts_with('#');
    let top = lines.iter().position(|l| {
        l.strip_prefix("mirrors:").is_some_and(|rest| rest.trim().is_empty() || rest.trim_start().starts_with('#'))
    });
    let Some(top) = top else {
        let mut text = existing.trim_end().to_owned();
        text.push_str("\n\n");
        text.push_str(wanted.trim_start());
        return text;
    };
    let end = (top + 1..lines.len()).find(|&i| content(lines[i]) && indent(lines[i]) == 0).unwrap_or(lines.len());
    let child = (top + 1..end).find(|&i| content(lines[i])).map_or(2, |i| indent(lines[i]));
    let mut block = Mapping::new();
    block.insert(host.into(), entry.clone());
    let rendered = serde_yaml::to_string(&block).unwrap_or_default();
    let new_lines: Vec<String> = rendered.lines().map(|l| format!("{:child$}{l}", "")).collect();
    let names_host = |line: &str| {
        let key = line.trim_start();
        [format!("{host}:"), format!("\"{host}\":"), format!("'{host}':")].iter().any(|k| key.starts_with(k.as_str()))
    };
    let found = (top + 1..end).find(|&i| indent(lines[i]) == child && names_host(lines[i]));
    let (from, to) = match found {
        Some(start) => {
            let mut stop = start + 1;
            while stop < end && (!content(lines[stop]) || indent(lines[stop]) > child) {
                stop += 1;
            }
            while stop > start + 1 && !content(lines[stop - 1]) {
                stop -= 1; // blank lines and comments after the entry belong to what follows
            }
            (start, stop)
        }
        None => (top + 1, top + 1),
    };
    let mut out: Vec<String> = lines[..from].iter().map(|l| l.to_string()).collect();
    out.extend(new_lines);
    out.extend(lines[to..].iter().map(|l| l.to_string()));
    out.join("\n") + "\n"
}

/// docker's `daemon.json` with the lab's registry added to `insecure-registries`; every
/// other key is kept, in its order. Unchanged (byte for byte) when it is listed already.
fn merge_daemon(existing: &str, wanted: &str) -> Result<String, MergeError> {
    let wanted: serde_json::Value = serde_json::from_str(wanted).map_err(rendered)?;
    let registries: Vec<serde_json::Value> =
        wanted.get("insecure-registries").and_then(|r| r.as_array()).cloned().unwrap_or_default();
    let mut current = if existing.trim().is_empty() { serde_json::json!({}) } else { serde_json::from_str(existing)? };
    let object = current.as_object_mut().ok_or(MergeError::Shape("its top level is not an object"))?;
    let listed = object.entry("insecure-registries").or_insert_with(|| serde_json::json!([]));
    let listed = listed.as_array_mut().ok_or(MergeError::Shape("`insecure-registries` is not a list"))?;
    let missing: Vec<serde_json::Value> = registries.into_iter().filter(|r| !listed.contains(r)).collect();
    if missing.is_empty() && !existing.trim().is_empty() {
        return Ok(existing.to_owned());
    }
    listed.extend(missing);
    Ok(serde_json::to_string_pretty(&current)? + "\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    const WANTED: &str = "# k3s: pull images of registry.lab.test from the lab registry.\nmirrors:\n  \"registry.lab.test\":\n    endpoint:\n      - \"http://registry.lab.test:80\"\n";

    fn parsed(text: &str) -> Yaml {
        serde_yaml::from_str(text).unwrap()
    }

    /// The k3s registries file under a temporary root, holding `existing`.
    fn k3s_root(existing: &str) -> (tempfile::TempDir, NodeFile) {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("etc/rancher/k3s");
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("registries.yaml"), existing).unwrap();
        let file = NodeFile {
            name: "registries.yaml".into(),
            install_path: "/etc/rancher/k3s/registries.yaml".into(),
            purpose: String::new(),
            content: WANTED.into(),
        };
        (root, file)
    }

    #[test]
    fn no_file_is_read_or_written_through_a_symbolic_link() {
        use std::os::unix::fs::symlink;
        for planted in
            ["etc/rancher", "etc/rancher/k3s/registries.yaml", "etc/rancher/k3s/registries.yaml.seclab-backup"]
        {
            let (root, file) = k3s_root("mirrors: {}\n");
            let path = root.path().join(planted);
            let elsewhere = root.path().join("elsewhere");
            fs::rename(&path, &elsewhere).unwrap_or_else(|_| fs::write(&elsewhere, "precious\n").unwrap());
            symlink(&elsewhere, &path).unwrap();
            let refused = plan(std::slice::from_ref(&file), root.path()).unwrap_err();
            assert!(matches!(&refused, NodeFileError::Symlink { link } if *link == path), "{planted}: {refused}");
        }
    }

    #[test]
    fn a_link_planted_at_the_backup_after_the_plan_is_replaced_not_followed() {
        let (root, file) = k3s_root("mirrors: {}\n");
        let changes = plan(&[file], root.path()).unwrap();
        let victim = root.path().join("victim");
        fs::write(&victim, "precious\n").unwrap();
        let backup = changes[0].backup().unwrap();
        std::os::unix::fs::symlink(&victim, &backup).unwrap();
        write(&changes[0]).unwrap();
        assert_eq!(fs::read_to_string(&victim).unwrap(), "precious\n");
        assert!(!fs::symlink_metadata(&backup).unwrap().file_type().is_symlink());
        assert_eq!(fs::read_to_string(&backup).unwrap(), "mirrors: {}\n");
        assert_eq!(fs::read_to_string(&changes[0].path).unwrap(), changes[0].after);
    }

    #[test]
    fn registries_keep_other_mirrors_configs_and_comments() {
        let existing = "# written by hand\nmirrors:\n  docker.io:\n    endpoint:\n      - \"https://mirror.example\"  # our cache\nconfigs:\n  \"docker.io\":\n    auth: {username: u}\n";
        let merged = merge_registries(existing, WANTED).unwrap();
        assert!(merged.contains("# written by hand") && merged.contains("# our cache"), "{merged}");
        let doc = parsed(&merged);
        assert_eq!(doc["mirrors"]["docker.io"]["endpoint"][0], "https://mirror.example");
        assert_eq!(doc["mirrors"]["registry.lab.test"]["endpoint"][0], "http://registry.lab.test:80");
        assert_eq!(doc["configs"]["docker.io"]["auth"]["username"], "u");
        assert_eq!(merge_registries(&merged, WANTED).unwrap(), merged, "a second merge changes nothing");
    }

    #[test]
    fn registries_replace_the_labs_own_mirror_in_place() {
        let existing = "mirrors:\n  registry.lab.test:\n    endpoint:\n      - https://old\n  # next\n  docker.io:\n    endpoint: [\"https://m\"]\n";
        let merged = merge_registries(existing, WANTED).unwrap();
        assert!(!merged.contains("https://old") && merged.contains("# next"), "{merged}");
        let doc = parsed(&merged);
        assert_eq!(doc["mirrors"]["docker.io"]["endpoint"][0], "https://m");
        assert_eq!(doc["mirrors"]["registry.lab.test"]["endpoint"][0], "http://registry.lab.test:80");
    }

    #[test]
    fn registries_without_mirrors_or_in_flow_style_are_merged_too() {
        let appended = merge_registries("configs: {}\n", WANTED).unwrap();
        assert!(appended.starts_with("configs: {}\n"), "{appended}");
        assert_eq!(parsed(&appended)["mirrors"]["registry.lab.test"]["endpoint"][0], "http://registry.lab.test:80");
        let flow = merge_registries("mirrors: {docker.io: {endpoint: [\"https://m\"]}}\n", WANTED).unwrap();
        let doc = parsed(&flow);
        assert_eq!(doc["mirrors"]["docker.io"]["endpoint"][0], "https://m");
        assert_eq!(doc["mirrors"]["registry.lab.test"]["endpoint"][0], "http://registry.lab.test:80");
        assert_eq!(merge_registries("", WANTED).unwrap(), WANTED);
    }

    #[test]
    fn unreadable_files_are_refused() {
        assert!(
            merge_registries("mirrors: [a, b]\n", WANTED)
                .unwrap_err()
                .to_string()
                .contains("`mirrors` is not a mapping")
        );
        assert!(merge_registries("- a\n", WANTED).unwrap_err().to_string().contains("top level"));
        assert!(merge_registries("mirrors:\n  a: [\n", WANTED).is_err());
        assert!(merge_daemon("{\"a\": 1,", "{\"insecure-registries\": [\"r\"]}").is_err());
        assert!(
            merge_daemon("[]", "{\"insecure-registries\": [\"r\"]}").unwrap_err().to_string().contains("top level")
        );
    }

    #[test]
    fn daemon_json_keeps_every_key_and_adds_the_registry_once() {
        let wanted = "{\n  \"insecure-registries\": [\"registry.lab.test\"]\n}\n";
        let existing = "{\"log-driver\": \"journald\", \"insecure-registries\": [\"other:5000\"], \"debug\": true}";
        let merged = merge_daemon(existing, wanted).unwrap();
        let doc: serde_json::Value = serde_json::from_str(&merged).unwrap();
        assert_eq!(doc["log-driver"], "journald");
        assert_eq!(doc["debug"], true);
        assert_eq!(doc["insecure-registries"], serde_json::json!(["other:5000", "registry.lab.test"]));
        assert!(merged.find("log-driver").unwrap() < merged.find("debug").unwrap(), "key order is kept");
        assert_eq!(merge_daemon(&merged, wanted).unwrap(), merged);
        assert_eq!(
            merge_daemon("", wanted).unwrap(),
            "{\n  \"insecure-registries\": [\n    \"registry.lab.test\"\n  ]\n}\n"
        );
    }
}

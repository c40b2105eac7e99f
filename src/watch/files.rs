//! The files `watch` follows: the desired-state file and the templates (debounced, so that
//! an editor's several writes make one apply), and the scan directory, where finished scans
//! are renamed into place.

use std::path::{Path, PathBuf};
use std::time::Duration;

use notify_debouncer_full::notify::{EventKind, RecursiveMode};
use notify_debouncer_full::{DebounceEventResult, Debouncer, RecommendedCache, new_debouncer};
use tokio::sync::mpsc;

/// How long the scan directory's events are gathered: a file renamed into place is complete.
const SCAN_DEBOUNCE: Duration = Duration::from_millis(100);

/// Something changed on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileEvent {
    /// The desired-state file or a template was saved.
    Desired,
    /// A file appeared under the scan directory.
    Scan(PathBuf),
    /// A watch failed; the message says which.
    Failed(String),
}

/// The watches; dropping this stops them.
pub struct FileWatches {
    _desired: Debouncer<notify_debouncer_full::notify::RecommendedWatcher, RecommendedCache>,
    _scans: Option<Debouncer<notify_debouncer_full::notify::RecommendedWatcher, RecommendedCache>>,
}

/// Watches `file` (through its directory, since editors replace files by renaming),
/// `templates` (recursively) and `scans` (recursively, when it exists), sending events to
/// `events`.
pub fn watch(
    file: &Path,
    templates: Option<&Path>,
    scans: &Path,
    debounce: Duration,
    events: mpsc::UnboundedSender<FileEvent>,
) -> notify_debouncer_full::notify::Result<FileWatches> {
    let file = std::path::absolute(file)?;
    let templates = templates.map(std::path::absolute).transpose()?;
    let (watched_file, watched_templates, sender) = (file.clone(), templates.clone(), events.clone());
    let mut desired = new_debouncer(debounce, None, move |result: DebounceEventResult| match result {
        Ok(batch) => {
            let relevant = batch.iter().filter(|e| !matches!(e.kind, EventKind::Access(_))).any(|event| {
                event.paths.iter().any(|path| {
                    *path == watched_file || watched_templates.as_ref().is_some_and(|t| path.starts_with(t))
                })
            });
            if relevant {
                sender.send(FileEvent::Desired).ok();
            }
        }
        Err(errors) => {
            let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
            sender.send(FileEvent::Failed(format!("watching the desired-state file: {}", text.join("; ")))).ok();
        }
    })?;
    let directory = file.parent().unwrap_or(Path::new("/"));
    desired.watch(directory, RecursiveMode::NonRecursive)?;
    if let Some(templates) = &templates {
        desired.watch(templates, RecursiveMode::Recursive)?;
    }

    let scans = if scans.is_dir() {
        let mut debouncer = new_debouncer(SCAN_DEBOUNCE, None, move |result: DebounceEventResult| match result {
            Ok(batch) => {
                let arrived = batch.iter().filter(|e| matches!(e.kind, EventKind::Create(_) | EventKind::Modify(_)));
                let mut paths: Vec<&PathBuf> = arrived.flat_map(|e| e.paths.iter()).collect();
                paths.sort();
                paths.dedup();
                for path in paths {
                    events.send(FileEvent::Scan(path.clone())).ok();
                }
            }
            Err(errors) => {
                let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
                events.send(FileEvent::Failed(format!("watching the scan directory: {}", text.join("; ")))).ok();
            }
        })?;
        debouncer.watch(scans, RecursiveMode::Recursive)?;
        Some(debouncer)
    } else {
        None
    };
    Ok(FileWatches { _desired: desired, _scans: scans })
}

//! The lab's live objects, kept by one kube-runtime watcher per kind and namespace (a LIST,
//! then a WATCH), selected by the lab's labels and trimmed as they arrive. The reconcile
//! loop reads them instead of listing; each change is also sent to it as a [`Notice`].

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::Event;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::cluster::{Cluster, Kind, compare};
use crate::identity::{KindName, MANAGED_BY, ObjectKey, PART_OF};
use crate::reconcile::model::{ListTarget, Live};
use crate::reconcile::observe::key_of;

/// What a watcher tells the reconcile loop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// An object was created or changed.
    Changed(ObjectKey),
    /// An object was deleted.
    Deleted(ObjectKey),
    /// A target was listed (again): its objects are all known.
    Synced(ListTarget),
    /// A watcher cannot reach the API server; it retries with backoff.
    Unreachable(String),
}

/// The live objects of every followed target.
#[derive(Default)]
pub struct Cache {
    targets: Mutex<HashMap<ListTarget, Target>>,
}

#[derive(Default)]
struct Target {
    synced: bool,
    objects: HashMap<ObjectKey, Arc<Value>>,
}

impl Cache {
    /// Every object held (shared, not copied).
    pub fn snapshot(&self) -> Live {
        let targets = self.targets.lock().expect("cache lock");
        targets.values().flat_map(|t| t.objects.iter().map(|(k, v)| (k.clone(), v.clone()))).collect()
    }

    /// One object, if held.
    pub fn get(&self, key: &ObjectKey) -> Option<Arc<Value>> {
        let targets = self.targets.lock().expect("cache lock");
        targets.values().find_map(|t| t.objects.get(key).cloned())
    }

    /// Whether every target in `targets` is followed and listed.
    pub fn covers(&self, targets: &BTreeSet<ListTarget>) -> bool {
        let held = self.targets.lock().expect("cache lock");
        targets.iter().all(|t| held.get(t).is_some_and(|t| t.synced))
    }

    fn update(&self, target: &ListTarget, change: impl FnOnce(&mut Target)) {
        let mut targets = self.targets.lock().expect("cache lock");
        change(targets.entry(target.clone()).or_default());
    }
}

/// The watchers running, by target.
pub struct Followers {
    cache: Arc<Cache>,
    tasks: HashMap<ListTarget, JoinHandle<()>>,
    notices: mpsc::UnboundedSender<Notice>,
    selector: String,
}

impl Followers {
    /// No watchers yet for lab `lab`; notices go to `notices`.
    pub fn new(lab: &str, cache: Arc<Cache>, notices: mpsc::UnboundedSender<Notice>) -> Self {
        let selector = format!("{MANAGED_BY}=seclab,{PART_OF}={lab}");
        Self { cache, tasks: HashMap::new(), notices, selector }
    }

    /// Follows exactly `targets`: starts the watchers missing, stops those no longer needed.
    pub fn follow(&mut self, cluster: &Arc<Cluster>, targets: &BTreeSet<ListTarget>, kinds: &HashMap<KindName, Kind>) {
        let stale: Vec<ListTarget> = self.tasks.keys().filter(|t| !targets.contains(*t)).cloned().collect();
        for target in stale {
            if let Some(task) = self.tasks.remove(&target) {
                task.abort();
            }
            self.cache.targets.lock().expect("cache lock").remove(&target);
        }
        for target in targets {
            if self.tasks.contains_key(target) {
                continue;
            }
            let Some(kind) = kinds.get(&target.kind).cloned() else { continue };
            let task = tokio::spawn(follow(
                cluster.clone(),
                target.clone(),
                kind,
                self.selector.clone(),
                self.cache.clone(),
                self.notices.clone(),
            ));
            self.tasks.insert(target.clone(), task);
        }
    }

    /// Stops every watcher and forgets what they held.
    pub fn stop(&mut self) {
        for (_, task) in self.tasks.drain() {
            task.abort();
        }
        self.cache.targets.lock().expect("cache lock").clear();
    }
}

impl Drop for Followers {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Keeps one target's objects in the cache, for as long as the task runs.
async fn follow(
    cluster: Arc<Cluster>,
    target: ListTarget,
    kind: Kind,
    selector: String,
    cache: Arc<Cache>,
    notices: mpsc::UnboundedSender<Notice>,
) {
    let stream = cluster.follow(&kind, target.namespace.as_deref(), &selector).default_backoff();
    let mut stream = std::pin::pin!(stream);
    let mut listing: HashMap<ObjectKey, Arc<Value>> = HashMap::new();
    let trimmed = |mut object: Value| {
        compare::pack_field_sets(&mut object);
        (key_of(&kind, &object), Arc::new(object))
    };
    while let Some(event) = stream.next().await {
        let notice = match event {
            Ok(Event::Init) => {
                listing.clear();
                continue;
            }
            Ok(Event::InitApply(object)) => {
                let (key, object) = trimmed(object);
                listing.insert(key, object);
                continue;
            }
            Ok(Event::InitDone) => {
                let objects = std::mem::take(&mut listing);
                cache.update(&target, |t| {
                    t.objects = objects;
                    t.synced = true;
                });
                Notice::Synced(target.clone())
            }
            Ok(Event::Apply(object)) => {
                let (key, object) = trimmed(object);
                cache.update(&target, |t| {
                    t.objects.insert(key.clone(), object);
                });
                Notice::Changed(key)
            }
            Ok(Event::Delete(object)) => {
                let (key, _) = trimmed(object);
                cache.update(&target, |t| {
                    t.objects.remove(&key);
                });
                Notice::Deleted(key)
            }
            Err(error) => Notice::Unreachable(format!("watching {}: {error}", kind.resource.plural)),
        };
        if notices.send(notice).is_err() {
            return;
        }
    }
}

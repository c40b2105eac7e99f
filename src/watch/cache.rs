//! The lab's live objects, kept by one kube-runtime watcher and reflector store per kind and
//! namespace (a LIST, then a WATCH), selected by the lab's labels and trimmed as they arrive. The reconcile
//! loop reads them instead of listing; each change is also sent to it as a [`Notice`].

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use kube::discovery::ApiResource;
use kube::runtime::WatchStreamExt;
use kube::runtime::reflector::store::Writer;
use kube::runtime::reflector::{Lookup, ObjectRef, Store, reflector};
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

/// One target's objects: kube-runtime's reflector store, written by the target's watcher.
struct Target {
    resource: ApiResource,
    store: Store<Followed>,
    synced: bool,
}

/// One followed object: its key and its JSON (trimmed), shared with every snapshot.
#[derive(Clone)]
struct Followed {
    key: ObjectKey,
    object: Arc<Value>,
}

impl Lookup for Followed {
    type DynamicType = ApiResource;

    fn kind(resource: &ApiResource) -> Cow<'_, str> {
        resource.kind.as_str().into()
    }

    fn group(resource: &ApiResource) -> Cow<'_, str> {
        resource.group.as_str().into()
    }

    fn version(resource: &ApiResource) -> Cow<'_, str> {
        resource.version.as_str().into()
    }

    fn plural(resource: &ApiResource) -> Cow<'_, str> {
        resource.plural.as_str().into()
    }

    fn name(&self) -> Option<Cow<'_, str>> {
        Some(self.key.name.as_str().into())
    }

    fn namespace(&self) -> Option<Cow<'_, str>> {
        self.key.namespace.as_deref().map(Cow::from)
    }

    fn resource_version(&self) -> Option<Cow<'_, str>> {
        self.object["metadata"]["resourceVersion"].as_str().map(Cow::from)
    }

    fn uid(&self) -> Option<Cow<'_, str>> {
        self.object["metadata"]["uid"].as_str().map(Cow::from)
    }
}

impl Cache {
    /// Every object held (shared, not copied).
    pub fn snapshot(&self) -> Live {
        let targets = self.targets.lock().expect("cache lock");
        targets
            .values()
            .flat_map(|t| t.store.state())
            .map(|followed| (followed.key.clone(), followed.object.clone()))
            .collect()
    }

    /// One object, if held.
    pub fn get(&self, key: &ObjectKey) -> Option<Arc<Value>> {
        let targets = self.targets.lock().expect("cache lock");
        targets.values().filter(|t| t.resource.group == key.group && t.resource.kind == key.kind).find_map(|t| {
            let reference = ObjectRef::new_with(&key.name, t.resource.clone());
            let reference = match &key.namespace {
                Some(namespace) => reference.within(namespace),
                None => reference,
            };
            t.store.get(&reference).map(|followed| followed.object.clone())
        })
    }

    /// Whether every target in `targets` is followed and listed.
    pub fn covers(&self, targets: &BTreeSet<ListTarget>) -> bool {
        let held = self.targets.lock().expect("cache lock");
        targets.iter().all(|t| held.get(t).is_some_and(|t| t.synced))
    }

    /// Starts holding `target`'s objects, as written by the watcher that owns the writer returned.
    fn hold(&self, target: &ListTarget, resource: &ApiResource) -> Writer<Followed> {
        let writer = Writer::new(resource.clone());
        let held = Target { resource: resource.clone(), store: writer.as_reader(), synced: false };
        self.targets.lock().expect("cache lock").insert(target.clone(), held);
        writer
    }

    fn listed(&self, target: &ListTarget) {
        if let Some(held) = self.targets.lock().expect("cache lock").get_mut(target) {
            held.synced = true;
        }
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
            let writer = self.cache.hold(target, &kind.resource);
            let task = tokio::spawn(follow(
                cluster.clone(),
                target.clone(),
                kind,
                self.selector.clone(),
                self.cache.clone(),
                writer,
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
    writer: Writer<Followed>,
    notices: mpsc::UnboundedSender<Notice>,
) {
    let plural = kind.resource.plural.clone();
    let keep = {
        let kind = kind.clone();
        move |mut object: Value| {
            compare::pack_field_sets(&mut object);
            Followed { key: key_of(&kind, &object), object: Arc::new(object) }
        }
    };
    let stream = cluster.follow(&kind, target.namespace.as_deref(), &selector, keep).default_backoff();
    let mut stream = std::pin::pin!(reflector(writer, stream));
    while let Some(event) = stream.next().await {
        let notice = match event {
            Ok(Event::Init | Event::InitApply(_)) => continue,
            Ok(Event::InitDone) => {
                cache.listed(&target);
                Notice::Synced(target.clone())
            }
            Ok(Event::Apply(followed)) => Notice::Changed(followed.key),
            Ok(Event::Delete(followed)) => Notice::Deleted(followed.key),
            Err(error) => Notice::Unreachable(format!("watching {plural}: {error}")),
        };
        if notices.send(notice).is_err() {
            return;
        }
    }
}

//! The lab's inventory: one ConfigMap per lab that lists every object seclab may have
//! applied. It is an ApplySet parent (KEP-3659), so `kubectl` sees the same set: members
//! carry the `applyset.kubernetes.io/part-of` label and the parent names their kinds and
//! namespaces.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use base64::Engine;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::identity::{self, APPLYSET_ID, ObjectKey};

const TOOLING: &str = "applyset.kubernetes.io/tooling";
const GROUP_KINDS: &str = "applyset.kubernetes.io/contains-group-kinds";
const NAMESPACES: &str = "applyset.kubernetes.io/additional-namespaces";
/// The ConfigMap key that lists the members, one per line.
const OBJECTS_KEY: &str = "objects";

/// An inventory's members, each with the `apiVersion` it was applied with.
pub type Members = BTreeMap<ObjectKey, String>;

/// What a lab has applied, as recorded in the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inventory {
    /// The namespace of the parent ConfigMap.
    pub namespace: String,
    /// The parent's name.
    pub name: String,
    /// The members, each with the `apiVersion` it was applied with. Shared: a plan copies
    /// the inventory, and a lab's can hold thousands of members.
    pub members: Arc<Members>,
}

impl Inventory {
    /// An empty inventory for `lab`, kept in `namespace`.
    pub fn new(lab: &str, namespace: &str) -> Self {
        Self { namespace: namespace.to_owned(), name: format!("seclab-{lab}"), members: Arc::default() }
    }

    /// The inventory's own identity.
    pub fn key(&self) -> ObjectKey {
        ObjectKey {
            group: String::new(),
            kind: "ConfigMap".into(),
            namespace: Some(self.namespace.clone()),
            name: self.name.clone(),
        }
    }

    /// Each member's key with its `apiVersion`.
    pub fn places(&self) -> impl Iterator<Item = (&ObjectKey, &str)> {
        self.members.iter().map(|(key, api_version)| (key, api_version.as_str()))
    }

    /// The ApplySet id: `applyset-<base64url(sha256(<name>.<namespace>.ConfigMap.))>-v1`.
    pub fn id(&self) -> String {
        let digest = Sha256::digest(format!("{}.{}.ConfigMap.", self.name, self.namespace));
        format!("applyset-{}-v1", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest))
    }

    /// Reads the members from the live parent. Lines that cannot be read are skipped: an
    /// inventory edited by hand must not stop a prune of what it still names.
    pub fn read(&mut self, live: &Value) {
        let text = live["data"][OBJECTS_KEY].as_str().unwrap_or_default();
        let members = Arc::make_mut(&mut self.members);
        for line in text.lines() {
            let parts: Vec<&str> = line.split(' ').collect();
            let [api_version, kind, namespace, name] = parts[..] else { continue };
            let group = api_version.rsplit_once('/').map(|(g, _)| g.to_owned()).unwrap_or_default();
            let namespace = (namespace != "-").then(|| namespace.to_owned());
            let key = ObjectKey { group, kind: kind.into(), namespace, name: name.into() };
            members.insert(key, api_version.to_owned());
        }
    }

    /// The parent ConfigMap to apply.
    pub fn manifest(&self, lab: &str) -> Value {
        let mut objects = String::new();
        let mut group_kinds = BTreeSet::new();
        let mut namespaces = BTreeSet::new();
        for (key, api_version) in self.members.iter() {
            let namespace = key.namespace.as_deref().unwrap_or("-");
            objects.push_str(&format!("{api_version} {} {namespace} {}\n", key.kind, key.name));
            let group_kind =
                if key.group.is_empty() { key.kind.clone() } else { format!("{}.{}", key.kind, key.group) };
            group_kinds.insert(group_kind);
            namespaces.extend(key.namespace.iter().filter(|ns| **ns != self.namespace).cloned());
        }
        let join = |set: BTreeSet<String>| set.into_iter().collect::<Vec<_>>().join(",");
        let mut labels = identity::labels(lab);
        labels[APPLYSET_ID] = self.id().into();
        json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": self.name,
                "namespace": self.namespace,
                "labels": labels,
                "annotations": {
                    TOOLING: format!("seclab/{}", env!("CARGO_PKG_VERSION")),
                    GROUP_KINDS: join(group_kinds),
                    NAMESPACES: join(namespaces),
                },
            },
            "data": { OBJECTS_KEY: objects },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_applyset_fields() {
        let mut inventory = Inventory::new("homelab", "cortex");
        let deployment = ObjectKey {
            group: "apps".into(),
            kind: "Deployment".into(),
            namespace: Some("cortex".into()),
            name: "cortex".into(),
        };
        let pv =
            ObjectKey { group: String::new(), kind: "PersistentVolume".into(), namespace: None, name: "data".into() };
        let other = ObjectKey {
            group: String::new(),
            kind: "Service".into(),
            namespace: Some("scans".into()),
            name: "s".into(),
        };
        let members = Arc::make_mut(&mut inventory.members);
        members.insert(deployment, "apps/v1".into());
        members.insert(pv, "v1".into());
        members.insert(other, "v1".into());
        let manifest = inventory.manifest("homelab");
        let annotations = &manifest["metadata"]["annotations"];
        assert_eq!(annotations[GROUP_KINDS], "Deployment.apps,PersistentVolume,Service");
        assert_eq!(annotations[NAMESPACES], "scans");
        // The id is kubectl's: base64url of sha256("seclab-homelab.cortex.ConfigMap.").
        assert_eq!(manifest["metadata"]["labels"][APPLYSET_ID], inventory.id());
        assert!(inventory.id().starts_with("applyset-") && inventory.id().ends_with("-v1"));

        let mut read = Inventory::new("homelab", "cortex");
        read.read(&manifest);
        assert_eq!(read, inventory);
    }
}

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
/// The `binaryData` key that lists the members, one per line, gzip-compressed: a lab of 5,000
/// tenants has 25,006 members, 1.1 MB of lines, more than a ConfigMap may hold (1 MiB);
/// compressed, they take a tenth of that. Read it with
/// `kubectl get configmap seclab-<lab> -o jsonpath='{.binaryData.objects\.gz}' | base64 -d | gunzip`.
const OBJECTS_GZ_KEY: &str = "objects.gz";
/// The `data` key that listed the members as plain text before: still read.
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

    /// Reads the members from the live parent. Lines that cannot be read are skipped (and a
    /// list that cannot be decompressed is empty): an inventory edited by hand must not stop a
    /// prune of what it still names.
    pub fn read(&mut self, live: &Value) {
        let text = match live["binaryData"][OBJECTS_GZ_KEY].as_str() {
            Some(encoded) => decompressed(encoded).unwrap_or_default(),
            None => live["data"][OBJECTS_KEY].as_str().unwrap_or_default().to_owned(),
        };
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
            "binaryData": { OBJECTS_GZ_KEY: compressed(&objects) },
        })
    }
}

/// `text` gzip-compressed, in base64 (as `binaryData` holds it).
fn compressed(text: &str) -> String {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(text.as_bytes()).expect("writing to memory does not fail");
    let bytes = encoder.finish().expect("writing to memory does not fail");
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The text of [`compressed`]'s output, if it is that.
fn decompressed(encoded: &str) -> Option<String> {
    use std::io::Read;
    let bytes = base64::engine::general_purpose::STANDARD.decode(encoded).ok()?;
    let mut text = String::new();
    flate2::read::GzDecoder::new(bytes.as_slice()).read_to_string(&mut text).ok()?;
    Some(text)
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
        assert_eq!(manifest, inventory.manifest("homelab"), "the same members, the same bytes");

        // An inventory written before the list was compressed.
        let mut old = Inventory::new("homelab", "cortex");
        old.read(&json!({ "data": { "objects": "apps/v1 Deployment cortex cortex\nv1 PersistentVolume - data\n" } }));
        assert_eq!(old.members.len(), 2);
        let mut broken = Inventory::new("homelab", "cortex");
        broken.read(&json!({ "binaryData": { "objects.gz": "bm90IGd6aXA=" } }));
        assert!(broken.members.is_empty());
    }

    #[test]
    fn a_lab_of_25_006_members_fits_in_a_config_map() {
        let mut inventory = Inventory::new("bench", "bench");
        let members = Arc::make_mut(&mut inventory.members);
        for tenant in 0..5000 {
            for (group, kind) in [
                ("apps", "Deployment"),
                ("", "Service"),
                ("networking.k8s.io", "Ingress"),
                ("batch", "CronJob"),
                ("", "Secret"),
            ] {
                let api_version = if group.is_empty() { "v1".to_owned() } else { format!("{group}/v1") };
                let name = format!("netdelta-site{tenant:04}-{}", kind.to_lowercase());
                let key = ObjectKey { group: group.into(), kind: kind.into(), namespace: Some("bench".into()), name };
                members.insert(key, api_version);
            }
        }
        let size = serde_json::to_string(&inventory.manifest("bench")).unwrap().len();
        assert!(size < 256 << 10, "{size} bytes: a ConfigMap holds 1 MiB at most");
    }
}

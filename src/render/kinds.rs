//! What is known of a kind without a cluster: whether its objects live in a namespace, and
//! its resource name (the plural in URLs and RBAC rules). Built-in kinds from k8s-openapi's
//! metadata; a kind a CustomResourceDefinition of the lab defines from that CRD. A kind known
//! to neither is taken as written here, and checked against the API server's discovery when
//! a plan is made.

use std::collections::HashMap;

use k8s_openapi::{ClusterResourceScope, NamespaceResourceScope, Resource};
use serde_json::Value;

use crate::identity::ObjectKey;

use super::Object;

/// A built-in kind: group, kind, resource name, and whether its objects are namespaced.
struct BuiltIn {
    group: &'static str,
    kind: &'static str,
    plural: &'static str,
    namespaced: bool,
}

/// Whether a k8s-openapi scope is a namespace's.
trait Scope {
    const NAMESPACED: bool;
}

impl Scope for NamespaceResourceScope {
    const NAMESPACED: bool = true;
}

impl Scope for ClusterResourceScope {
    const NAMESPACED: bool = false;
}

/// The built-in kinds a lab or an operator's manifest may hold.
const BUILT_IN: &[BuiltIn] = {
    use k8s_openapi::api::{
        admissionregistration, apps, autoscaling, batch, coordination, core, networking, policy, rbac, scheduling,
        storage,
    };
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions;
    macro_rules! kinds {
        ($($kind:ty),* $(,)?) => { &[$(BuiltIn {
            group: <$kind>::GROUP,
            kind: <$kind>::KIND,
            plural: <$kind>::URL_PATH_SEGMENT,
            namespaced: <<$kind as Resource>::Scope as Scope>::NAMESPACED,
        }),*] };
    }
    kinds![
        core::v1::ConfigMap,
        core::v1::Endpoints,
        core::v1::LimitRange,
        core::v1::Namespace,
        core::v1::Node,
        core::v1::PersistentVolume,
        core::v1::PersistentVolumeClaim,
        core::v1::Pod,
        core::v1::ResourceQuota,
        core::v1::Secret,
        core::v1::Service,
        core::v1::ServiceAccount,
        admissionregistration::v1::MutatingWebhookConfiguration,
        admissionregistration::v1::ValidatingWebhookConfiguration,
        apiextensions::v1::CustomResourceDefinition,
        apps::v1::DaemonSet,
        apps::v1::Deployment,
        apps::v1::StatefulSet,
        autoscaling::v2::HorizontalPodAutoscaler,
        batch::v1::CronJob,
        batch::v1::Job,
        coordination::v1::Lease,
        networking::v1::Ingress,
        networking::v1::IngressClass,
        networking::v1::NetworkPolicy,
        policy::v1::PodDisruptionBudget,
        rbac::v1::ClusterRole,
        rbac::v1::ClusterRoleBinding,
        rbac::v1::Role,
        rbac::v1::RoleBinding,
        scheduling::v1::PriorityClass,
        storage::v1::CSIDriver,
        storage::v1::StorageClass,
    ]
};

fn built_in(group: &str, kind: &str) -> Option<&'static BuiltIn> {
    BUILT_IN.iter().find(|k| k.group == group && k.kind == kind)
}

/// Whether objects of a built-in kind live in a namespace; `None` for other kinds.
pub fn built_in_namespaced(group: &str, kind: &str) -> Option<bool> {
    built_in(group, kind).map(|k| k.namespaced)
}

/// The CustomResourceDefinitions among `objects`, each with its spec.
fn crds(objects: &[Object]) -> impl Iterator<Item = (&Object, &Value)> {
    let is_crd = |o: &&Object| o.key.kind == "CustomResourceDefinition" && o.key.group == "apiextensions.k8s.io";
    objects.iter().filter(is_crd).map(|crd| (crd, &crd.manifest["spec"]))
}

/// The CustomResourceDefinition among `objects` that defines `group`'s `kind`, with its spec.
fn defining_crd<'a>(objects: &'a [Object], group: &str, kind: &str) -> Option<(&'a Object, &'a Value)> {
    crds(objects).find(|(_, spec)| spec["group"] == group && spec["names"]["kind"] == kind)
}

/// An object among `objects` whose namespace does not fit its kind, as a CRD among them
/// defines it: the object, the CRD, and what is wrong. One pass over the objects: a lab has
/// thousands, and few CRDs.
pub fn crd_scope_problem(objects: &[Object]) -> Option<(&Object, String)> {
    let defined: HashMap<(&str, &str), (&Object, bool)> = crds(objects)
        .filter_map(|(crd, spec)| {
            let defines = (spec["group"].as_str()?, spec["names"]["kind"].as_str()?);
            Some((defines, (crd, spec["scope"] == "Namespaced")))
        })
        .collect();
    if defined.is_empty() {
        return None;
    }
    objects.iter().find_map(|object| {
        let (crd, namespaced) = defined.get(&(object.key.group.as_str(), object.key.kind.as_str()))?;
        let problem = object.key.scope_problem(*namespaced)?;
        Some((object, format!("{problem} (as its CustomResourceDefinition {} says)", crd.key.name)))
    })
}

/// The resource name of `key`'s kind: a built-in kind's, the plural a CRD among `objects`
/// declares, else the kind in lower case, plural.
pub fn resource_name(objects: &[Object], key: &ObjectKey) -> String {
    if let Some(built_in) = built_in(&key.group, &key.kind) {
        return built_in.plural.to_owned();
    }
    let declared = defining_crd(objects, &key.group, &key.kind).and_then(|(_, spec)| spec["names"]["plural"].as_str());
    declared.map_or_else(|| plural(&key.kind), str::to_owned)
}

/// The resource name of a kind: lower case, plural.
fn plural(kind: &str) -> String {
    let lower = kind.to_ascii_lowercase();
    if lower.ends_with('s') || lower.ends_with('x') || lower.ends_with("ch") || lower.ends_with("sh") {
        format!("{lower}es")
    } else if let Some(stem) = lower.strip_suffix('y').filter(|s| !s.ends_with(['a', 'e', 'i', 'o', 'u'])) {
        format!("{stem}ies")
    } else {
        format!("{lower}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_kinds_have_their_scope_and_resource_name_from_k8s_openapi() {
        assert_eq!(built_in_namespaced("", "Namespace"), Some(false));
        assert_eq!(built_in_namespaced("apiextensions.k8s.io", "CustomResourceDefinition"), Some(false));
        assert_eq!(built_in_namespaced("scheduling.k8s.io", "PriorityClass"), Some(false));
        assert_eq!(built_in_namespaced("apps", "Deployment"), Some(true));
        assert_eq!(built_in_namespaced("example.dev", "Deployment"), None, "the group counts");
        let key = |group: &str, kind: &str| ObjectKey {
            group: group.into(),
            kind: kind.into(),
            namespace: None,
            name: "x".into(),
        };
        assert_eq!(resource_name(&[], &key("", "Endpoints")), "endpoints");
        assert_eq!(resource_name(&[], &key("networking.k8s.io", "NetworkPolicy")), "networkpolicies");
    }

    #[test]
    fn plural_of_a_kind() {
        assert_eq!(plural("Elasticsearch"), "elasticsearches");
        assert_eq!(plural("NetworkPolicy"), "networkpolicies");
        assert_eq!(plural("Gateway"), "gateways");
    }
}

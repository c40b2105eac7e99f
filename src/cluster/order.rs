//! The order objects are applied in: what others depend on goes first. Pruning and
//! destroying go in reverse.

use crate::identity::ObjectKey;

/// The stages, in apply order. Bindings follow roles: the API server checks that whoever
/// binds a role holds its permissions, and cannot while the role is still being created.
pub const STAGES: [&str; 9] = [
    "namespaces and CRDs",
    "cluster-scoped",
    "config",
    "roles",
    "role bindings",
    "services",
    "workloads",
    "ingresses",
    "custom resources",
];

/// The stage index of `key` in [`STAGES`].
pub fn stage(key: &ObjectKey) -> usize {
    match (key.group.as_str(), key.kind.as_str()) {
        ("", "Namespace") | ("apiextensions.k8s.io", "CustomResourceDefinition") => 0,
        ("", "ServiceAccount" | "Secret" | "ConfigMap" | "PersistentVolume" | "PersistentVolumeClaim") => 2,
        ("rbac.authorization.k8s.io", "RoleBinding" | "ClusterRoleBinding") => 4,
        (_, _) if key.namespace.is_none() => 1,
        ("rbac.authorization.k8s.io", _) => 3,
        ("", "Service") => 5,
        ("apps", _) | ("batch", _) | ("", "Pod" | "ReplicationController") => 6,
        ("networking.k8s.io", "Ingress") => 7,
        (group, _) if group.is_empty() || !group.contains('.') || group.ends_with(".k8s.io") => 2,
        _ => 8,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(group: &str, kind: &str, namespaced: bool) -> ObjectKey {
        ObjectKey {
            group: group.into(),
            kind: kind.into(),
            namespace: namespaced.then(|| "n".into()),
            name: "a".into(),
        }
    }

    #[test]
    fn dependencies_first() {
        let order = [
            key("", "Namespace", false),
            key("rbac.authorization.k8s.io", "ClusterRole", false),
            key("", "PersistentVolume", false),
            key("", "Secret", true),
            key("rbac.authorization.k8s.io", "Role", true),
            key("rbac.authorization.k8s.io", "RoleBinding", true),
            key("", "Service", true),
            key("apps", "Deployment", true),
            key("networking.k8s.io", "Ingress", true),
            key("elasticsearch.k8s.elastic.co", "Elasticsearch", true),
        ];
        let stages: Vec<usize> = order.iter().map(stage).collect();
        assert!(stages.is_sorted(), "{stages:?}");
        assert_eq!(stages.last(), Some(&(STAGES.len() - 1)), "every stage is named and applied");
        assert_eq!(stage(&key("apiextensions.k8s.io", "CustomResourceDefinition", false)), 0);
        assert!(stage(&key("rbac.authorization.k8s.io", "ClusterRoleBinding", false)) > 1, "after ClusterRoles");
    }
}

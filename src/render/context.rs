//! The template context: the validated lab with defaults resolved and derived names filled in.
//!
//! Templates see secret *handles* (a Secret's name and key), never secret values.

use std::collections::BTreeSet;

use serde::Serialize;
use serde_json::{Value, json};

use crate::config::Lab;
use crate::config::SecretSource;
use crate::config::model::{LabFile, SearchEngine, Tenant};

/// A Kubernetes Secret that apply must create, because its value is not in any existing Secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretToCreate {
    /// Namespace of the Secret.
    pub namespace: String,
    /// Name of the Secret.
    pub name: String,
    /// Key within its data.
    pub key: String,
    /// Where the value comes from.
    pub origin: SecretOrigin,
}

/// Where a created Secret's value comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "type", content = "from")]
pub enum SecretOrigin {
    /// A random value generated once and kept in the cluster.
    Generated,
    /// seclab's environment variable.
    Env(String),
    /// A file read when applying.
    File(String),
    /// A certificate and key issued by seclab's CA.
    Certificate(CertificateRequest),
}

/// What a certificate Secret must hold: the CA itself, or a leaf it signs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CertificateRequest {
    /// The subject's common name.
    pub common_name: String,
    /// DNS names a server certificate is valid for.
    pub dns_names: Vec<String>,
    /// The Secret of the CA that signs it; `None` for the CA itself.
    pub authority: Option<String>,
    /// A client certificate (for the admin user) rather than a server one.
    pub client: bool,
}

impl CertificateRequest {
    fn authority(common_name: String) -> Self {
        Self { common_name, dns_names: Vec::new(), authority: None, client: false }
    }

    fn server(common_name: &str, dns_names: Vec<String>, authority: &str) -> Self {
        Self { common_name: common_name.into(), dns_names, authority: Some(authority.into()), client: false }
    }

    fn client(common_name: &str, authority: &str) -> Self {
        Self { common_name: common_name.into(), dns_names: Vec::new(), authority: Some(authority.into()), client: true }
    }
}

/// The context handed to every template, and the Secrets the rendered objects expect.
pub(crate) struct Context {
    pub value: Value,
    pub secrets: Vec<SecretToCreate>,
}

/// Builds the template context of `lab`.
pub(crate) fn build(lab: &Lab) -> Context {
    let mut builder = Builder { spec: lab.spec(), secrets: Vec::new() };
    let value = builder.context();
    let mut secrets = builder.secrets;
    secrets.sort_by(|a, b| (&a.namespace, &a.name, &a.key).cmp(&(&b.namespace, &b.name, &b.key)));
    secrets.dedup();
    Context { value, secrets }
}

struct Builder<'a> {
    spec: &'a LabFile,
    secrets: Vec<SecretToCreate>,
}

impl<'a> Builder<'a> {
    fn ns(&self, explicit: &'a Option<String>) -> &'a str {
        self.spec.namespace_or_default(explicit)
    }

    /// The Secret and key holding a value: a referenced Secret, or one apply creates.
    fn handle(&mut self, source: Option<&SecretSource>, namespace: &str, name: String, key: &str) -> Value {
        let origin = match source {
            Some(SecretSource::SecretRef(reference)) => return json!({ "name": reference.name, "key": reference.key }),
            Some(SecretSource::Env(var)) => SecretOrigin::Env(var.clone()),
            Some(SecretSource::File(path)) => SecretOrigin::File(path.clone()),
            Some(SecretSource::Literal) | None => SecretOrigin::Generated,
        };
        self.secrets.push(SecretToCreate { namespace: namespace.into(), name: name.clone(), key: key.into(), origin });
        json!({ "name": name, "key": key })
    }

    fn context(&mut self) -> Value {
        let spec = self.spec;
        let registry_host = spec.registry.host.clone().unwrap_or_else(|| format!("registry.{}", spec.cluster.domain));
        // Built apart and moved in: `json!` would copy them, and they are most of the context.
        let tenants: Vec<Value> = spec.tenants.iter().map(|t| self.tenant(t, &registry_host)).collect();
        let (elasticsearch, cortex, rbac) = (self.elasticsearch(), self.cortex(), self.rbac());
        let mut context = json!({
            "lab": { "name": spec.metadata.name },
            "cluster": {
                "domain": spec.cluster.domain,
                "clusterDomain": spec.cluster.cluster_domain,
                "namespace": spec.cluster.namespace,
                "ingressClass": spec.cluster.ingress_class,
                "nodeAddress": spec.cluster.node_address,
            },
            "namespaces": self.namespaces(),
            "registry": {
                "enabled": spec.registry.enabled,
                "namespace": self.ns(&spec.registry.namespace),
                "host": registry_host,
                "image": spec.registry.image,
                "insecure": spec.registry.insecure,
                "claim": spec.registry.volume,
            },
            "storage": { "volumes": self.volumes() },
        });
        context["elasticsearch"] = elasticsearch;
        context["cortex"] = cortex;
        context["rbac"] = rbac;
        context["tenants"] = Value::Array(tenants);
        context
    }

    /// Every namespace the lab's objects live in.
    fn namespaces(&self) -> Vec<&'a str> {
        let spec = self.spec;
        let mut set = BTreeSet::new();
        if spec.registry.enabled {
            set.insert(self.ns(&spec.registry.namespace));
        }
        if spec.elasticsearch.enabled {
            set.insert(self.ns(&spec.elasticsearch.namespace));
        }
        if spec.cortex.enabled {
            set.insert(self.ns(&spec.cortex.namespace));
        }
        set.extend(spec.storage.volumes.iter().map(|v| self.ns(&v.namespace)));
        set.extend(spec.rbac.service_accounts.iter().map(|a| self.ns(&a.namespace)));
        set.extend(spec.rbac.roles.iter().map(|r| self.ns(&r.namespace)));
        set.extend(spec.rbac.bindings.iter().filter(|b| !b.cluster_wide).map(|b| self.ns(&b.namespace)));
        set.extend(spec.tenants.iter().map(|t| self.ns(&t.namespace)));
        set.into_iter().collect()
    }

    fn volumes(&self) -> Vec<Value> {
        let spec = self.spec;
        spec.storage
            .volumes
            .iter()
            .map(|v| {
                let class = match (&v.host_path, &v.storage_class) {
                    (Some(_), None) => Some("manual".to_owned()),
                    (_, class) => class.clone(),
                };
                json!({
                    "name": v.name,
                    "namespace": self.ns(&v.namespace),
                    "persistentVolume": format!("{}-{}-{}", spec.metadata.name, self.ns(&v.namespace), v.name),
                    "size": v.size,
                    "hostPath": v.host_path,
                    "storageClass": class,
                    "node": v.node,
                })
            })
            .collect()
    }

    fn elasticsearch(&mut self) -> Value {
        let es = &self.spec.elasticsearch;
        let namespace = self.ns(&es.namespace);
        let lab = &self.spec.metadata.name;
        match es.mode {
            SearchEngine::Eck => json!({
                "enabled": es.enabled,
                "mode": "eck",
                "name": es.name,
                "namespace": namespace,
                "version": es.version.as_deref().unwrap_or("7.10.2"),
                "nodes": es.nodes,
                "allowMmap": es.allow_mmap,
                "url": format!("https://{}-es-http:9200", es.name),
                "username": "elastic",
                "password": { "name": format!("{}-es-elastic-user", es.name), "key": "elastic" },
                "ca": { "name": format!("{}-es-http-certs-public", es.name), "key": "ca.crt" },
            }),
            SearchEngine::Opensearch => {
                let password =
                    self.handle(es.admin_password.as_ref(), namespace, format!("{lab}-{}-admin", es.name), "password");
                let cluster_domain = &self.spec.cluster.cluster_domain;
                let service_names = |service: &str| {
                    let fqdn = format!("{service}.{namespace}.svc.{cluster_domain}");
                    vec![service.to_owned(), format!("{service}.{namespace}.svc"), format!("*.{fqdn}"), fqdn]
                };
                let authority = format!("{}-ca-certs", es.name);
                let certs = ["ca", "transport", "http", "admin"].map(|purpose| {
                    let name = format!("{}-{purpose}-certs", es.name);
                    let request = match purpose {
                        "ca" => CertificateRequest::authority(format!("{lab} {} CA", es.name)),
                        "admin" => CertificateRequest::client("admin", &authority),
                        "transport" => CertificateRequest::server(
                            &es.name,
                            service_names(&format!("{}-discovery", es.name)),
                            &authority,
                        ),
                        _ => CertificateRequest::server(&es.name, service_names(&es.name), &authority),
                    };
                    if es.enabled {
                        for key in ["tls.crt", "tls.key", "ca.crt"] {
                            let origin = SecretOrigin::Certificate(request.clone());
                            self.secrets.push(SecretToCreate {
                                namespace: namespace.into(),
                                name: name.clone(),
                                key: key.into(),
                                origin,
                            });
                        }
                    }
                    (purpose, name)
                });
                json!({
                    "enabled": es.enabled,
                    "mode": "opensearch",
                    "name": es.name,
                    "namespace": namespace,
                    "version": es.version.as_deref().unwrap_or("2.19.1"),
                    "image": format!("{}:{}", es.image, es.version.as_deref().unwrap_or("2.19.1")),
                    "nodes": es.nodes,
                    "allowMmap": es.allow_mmap,
                    "url": format!("https://{}:9200", es.name),
                    "username": "admin",
                    "password": password,
                    "ca": { "name": certs[0].1, "key": "ca.crt" },
                    "certs": certs.iter().map(|(purpose, name)| (purpose.to_string(), json!(name))).collect::<serde_json::Map<_, _>>(),
                    "claim": es.volume,
                    "storageSize": es.storage_size,
                    "storageClass": es.storage_class,
                    "javaOpts": es.java_opts,
                    "transportHost": format!("{}-discovery.{namespace}.svc.{}", es.name, self.spec.cluster.cluster_domain),
                })
            }
        }
    }

    fn cortex(&mut self) -> Value {
        let spec = self.spec;
        let cortex = &spec.cortex;
        let namespace = self.ns(&cortex.namespace);
        let secret_key = if cortex.enabled {
            self.handle(cortex.secret_key.as_ref(), namespace, format!("{}-cortex", spec.metadata.name), "secret-key")
        } else {
            Value::Null
        };
        json!({
            "enabled": cortex.enabled,
            "namespace": namespace,
            "image": cortex.image.clone().unwrap_or_else(|| format!("thehiveproject/cortex:{}", cortex.version)),
            "version": cortex.version,
            "host": cortex.host.clone().unwrap_or_else(|| format!("cortex.{}", spec.cluster.domain)),
            "replicas": cortex.replicas,
            "jobClaim": cortex.job_volume,
            "jobDirectory": cortex.job_directory,
            "secretKey": secret_key,
        })
    }

    fn rbac(&self) -> Value {
        let rbac = &self.spec.rbac;
        let bindings: Vec<Value> = rbac
            .bindings
            .iter()
            .map(|b| {
                let namespace = self.ns(&b.namespace);
                let subjects: Vec<Value> = b
                    .service_accounts
                    .iter()
                    .map(|a| {
                        let (ns, name) = a.split_once('/').unwrap_or((namespace, a));
                        json!({ "kind": "ServiceAccount", "name": name, "namespace": ns })
                    })
                    .chain(b.users.iter().map(|u| json!({ "kind": "User", "name": u, "apiGroup": "rbac.authorization.k8s.io" })))
                    .chain(b.groups.iter().map(|g| json!({ "kind": "Group", "name": g, "apiGroup": "rbac.authorization.k8s.io" })))
                    .collect();
                let (role_kind, role) = match &b.role {
                    Some(role) => ("Role", role.as_str()),
                    None => ("ClusterRole", b.cluster_role.as_deref().unwrap_or_default()),
                };
                json!({ "name": b.name, "namespace": namespace, "clusterWide": b.cluster_wide, "roleKind": role_kind, "role": role, "subjects": subjects })
            })
            .collect();
        json!({
            "serviceAccounts": rbac.service_accounts.iter().map(|a| json!({ "name": a.name, "namespace": self.ns(&a.namespace) })).collect::<Vec<_>>(),
            "roles": rbac.roles.iter().map(|r| json!({ "name": r.name, "namespace": self.ns(&r.namespace), "rules": r.rules })).collect::<Vec<_>>(),
            "clusterRoles": rbac.cluster_roles,
            "bindings": bindings,
        })
    }

    fn tenant(&mut self, tenant: &'a Tenant, registry_host: &str) -> Value {
        let spec = self.spec;
        let namespace = self.ns(&tenant.namespace);
        let password = tenant.database.password.as_ref().map(|source| {
            self.handle(Some(source), namespace, format!("{}-{}-db", spec.metadata.name, tenant.name), "password")
        });
        let scans: Vec<Value> = tenant
            .scans
            .iter()
            .map(|g| {
                json!({
                    "name": g.name,
                    "cronJob": format!("{}-{}-scan", tenant.name, g.name),
                    "schedule": g.schedule,
                    "timeZone": g.time_zone,
                    "arguments": g.nmap_arguments(),
                    "image": g.image,
                    "suspend": g.suspend,
                    "claim": spec.scan_database.scan_volume,
                    "directory": format!("{}/{}", tenant.name, g.name),
                })
            })
            .collect();
        let mounts: Vec<Value> = tenant
            .volumes
            .iter()
            .map(|m| json!({ "volume": m.volume, "mountPath": m.mount_path, "subPath": m.sub_path, "readOnly": m.read_only }))
            .collect();
        let env: Vec<Value> = tenant.env.iter().map(|(k, v)| json!({ "name": k, "value": v })).collect();
        let mut value = json!({
            "name": tenant.name,
            "namespace": namespace,
            "app": format!("netdelta-{}", tenant.name),
            "image": tenant.image.clone().unwrap_or_else(|| format!("{registry_host}/netdelta/{}:1.0", tenant.name)),
            "port": tenant.port,
            "args": tenant.args.clone().unwrap_or_else(|| vec![tenant.name.clone(), tenant.port.to_string()]),
            "host": tenant.host.clone().unwrap_or_else(|| format!("netdelta.{}", spec.cluster.domain)),
            "path": format!("/{}", tenant.name),
            "replicas": tenant.replicas,
            "claims": tenant.volumes.iter().map(|m| m.volume.as_str()).collect::<BTreeSet<_>>(),
            "database": {
                "name": tenant.database.name.clone().unwrap_or_else(|| format!("netdelta-{}", tenant.name)),
                "host": tenant.database.host,
                "user": tenant.database.user,
                "password": password,
            },
        });
        value["mounts"] = Value::Array(mounts);
        value["env"] = Value::Array(env);
        value["scans"] = Value::Array(scans);
        value
    }
}

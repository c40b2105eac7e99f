//! The template context: the validated lab with defaults resolved and derived names filled in.
//!
//! Templates see secret *handles* (a Secret's name and key), never secret values.

use std::collections::{BTreeSet, HashMap};

use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::certs::{CertificateRequest, KeyFormat};
use crate::config::SecretSource;
use crate::config::model::{DatabaseEngine, DatabaseMode, LabFile, ResolvedDatabase, SearchEngine, Tenant};
use crate::config::placement::Placement;
use crate::config::{Lab, Parsed};

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
    /// A generated credential that data outlives (a database's root or user password, stored
    /// in the server's data directory): its Secret stays with the volumes, deleted only with
    /// `--allow-destructive`, or the data could not be reached again.
    #[serde(skip)]
    pub guards_data: bool,
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
    /// A PKCS#12 truststore holding the CA of another certificate Secret (its name), an empty
    /// keystore, and their generated password: what Cortex needs to trust its search engine.
    TrustStores(String),
    /// OpenSearch's `internal_users.yml`: the `admin` user with a bcrypt hash of the password
    /// in another Secret of the lab (name and key).
    InternalUsers {
        /// The Secret holding the password.
        secret: String,
        /// Its key.
        key: String,
    },
}

/// The context handed to the templates, and the Secrets the rendered objects expect.
pub(crate) struct Context {
    /// The lab-wide values: everything but the tenants.
    pub value: Value,
    /// Each tenant's values, in the file's order.
    pub tenants: Vec<TenantValues>,
    /// The Secrets apply creates, sorted.
    pub secrets: Vec<SecretToCreate>,
}

/// One tenant's values, converted for the templates.
pub(crate) struct TenantValues {
    /// The tenant's name.
    pub name: String,
    /// Its values (`tenant` in a per-tenant template).
    pub values: minijinja::Value,
    /// Whether they are the values of the last build, unchanged.
    pub unchanged: bool,
}

/// Each tenant's values from the last build, reused while the tenant's section of the file and
/// the lab-wide settings its values derive from are unchanged.
#[derive(Debug, Default)]
pub(crate) struct KeptTenants {
    defaults: Option<TenantDefaults>,
    tenants: HashMap<String, KeptTenant>,
}

#[derive(Debug)]
struct KeptTenant {
    config: Tenant,
    values: minijinja::Value,
    secrets: Vec<SecretToCreate>,
}

/// What a tenant's values depend on besides its own section of the file.
#[derive(Debug, Clone, PartialEq)]
struct TenantDefaults {
    lab: String,
    namespace: String,
    registry_host: String,
    domain: String,
    scan_volume: String,
    /// The `tenantDatabase` server's host, when there is one: tenants' databases are managed.
    database_server: Option<Option<String>>,
}

/// Builds the template context of `lab`, reusing the values of the tenants `kept` holds
/// unchanged, and what to keep for the next build (when `keep`).
pub(crate) fn build(lab: &Lab, kept: &KeptTenants, keep: bool) -> (Context, KeptTenants) {
    let spec = lab.spec();
    let mut builder = Builder { spec, parsed: lab.parsed(), secrets: Vec::new() };
    let value = builder.context();
    let defaults = TenantDefaults {
        lab: spec.metadata.name.clone(),
        namespace: spec.cluster.namespace.clone(),
        registry_host: spec.registry_host(),
        domain: spec.cluster.domain.clone(),
        scan_volume: spec.scan_database.scan_volume.clone(),
        database_server: spec.tenant_database.as_ref().map(|_| spec.tenant_database_host()),
    };
    let same_defaults = kept.defaults.as_ref() == Some(&defaults);
    let mut next = KeptTenants::default();
    let mut tenants = Vec::with_capacity(spec.tenants.len());
    for config in &spec.tenants {
        let reused = kept.tenants.get(&config.name).filter(|k| same_defaults && k.config == *config);
        let (values, secrets) = match reused {
            Some(kept) => (kept.values.clone(), kept.secrets.clone()),
            None => {
                let mut secrets = Vec::new();
                let database = spec.tenant_database_of(config);
                let values = tenant(&defaults, config, &database, &mut secrets);
                (minijinja::Value::from(minijinja::value::Serde(&values)), secrets)
            }
        };
        builder.secrets.extend(secrets.iter().cloned());
        tenants.push(TenantValues { name: config.name.clone(), values: values.clone(), unchanged: reused.is_some() });
        if keep {
            next.tenants.insert(config.name.clone(), KeptTenant { config: config.clone(), values, secrets });
        }
    }
    next.defaults = keep.then_some(defaults);
    let mut secrets = builder.secrets;
    secrets.sort_by(|a, b| (&a.namespace, &a.name, &a.key).cmp(&(&b.namespace, &b.name, &b.key)));
    secrets.dedup();
    (Context { value, tenants, secrets }, next)
}

/// Whether a value apply generates is a credential that stored data outlives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Credential {
    /// Kept in a server's data (a database password): the data needs this very value.
    OfData,
    /// Used only while the workload runs.
    Ephemeral,
}

/// The Secret and key holding a value: a referenced Secret, or one apply creates (added to
/// `secrets`).
fn handle(
    secrets: &mut Vec<SecretToCreate>,
    source: Option<&SecretSource>,
    namespace: &str,
    name: String,
    key: &str,
    credential: Credential,
) -> Value {
    let origin = match source {
        Some(SecretSource::SecretRef(reference)) => return json!({ "name": reference.name, "key": reference.key }),
        Some(SecretSource::Env(var)) => SecretOrigin::Env(var.clone()),
        Some(SecretSource::File(path)) => SecretOrigin::File(path.clone()),
        Some(SecretSource::Literal) | None => SecretOrigin::Generated,
    };
    // A value read from the environment or a file can be given again; a generated one cannot.
    let guards_data = credential == Credential::OfData && origin == SecretOrigin::Generated;
    secrets.push(SecretToCreate {
        namespace: namespace.into(),
        name: name.clone(),
        key: key.into(),
        origin,
        guards_data,
    });
    json!({ "name": name, "key": key })
}

struct Builder<'a> {
    spec: &'a LabFile,
    /// The values the checks parsed from the file.
    parsed: &'a Parsed,
    secrets: Vec<SecretToCreate>,
}

impl<'a> Builder<'a> {
    fn ns(&self, explicit: &'a Option<String>) -> &'a str {
        self.spec.namespace_or_default(explicit)
    }

    fn context(&mut self) -> Value {
        let spec = self.spec;
        let registry_host = spec.registry_host();
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
                "placement": placement(spec.registry.placement()),
            },
            "storage": { "volumes": self.volumes() },
        });
        context["elasticsearch"] = elasticsearch;
        context["cortex"] = cortex;
        context["rbac"] = rbac;
        context["tenantDatabase"] = self.tenant_database();
        context
    }

    /// The in-cluster MySQL server of the tenants, and the Job that creates their databases
    /// and users (named after a hash of what it does, so that it runs again only on a change).
    fn tenant_database(&mut self) -> Value {
        let spec = self.spec;
        let Some(server) = spec.tenant_database.as_ref().filter(|s| s.mode == DatabaseMode::InCluster) else {
            return json!({ "enabled": false });
        };
        let namespace = self.ns(&server.namespace);
        let lab = &spec.metadata.name;
        let root = handle(
            &mut self.secrets,
            server.root_password.as_ref(),
            namespace,
            format!("{lab}-{}-root", server.name),
            "password",
            Credential::OfData,
        );
        let (engine, tag, client, admin) = match server.engine {
            DatabaseEngine::Mysql => ("mysql", "8.4", "mysql", "mysqladmin"),
            DatabaseEngine::Mariadb => ("mariadb", "11.4", "mariadb", "mariadb-admin"),
        };
        let image =
            server.image.clone().unwrap_or_else(|| format!("{engine}:{}", server.version.as_deref().unwrap_or(tag)));
        let tenants: Vec<Value> = spec
            .tenants
            .iter()
            .map(|tenant| {
                let database = spec.tenant_database_of(tenant);
                let tenant_namespace = self.ns(&tenant.namespace);
                let password = handle(
                &mut self.secrets,
                    tenant.database.password.as_ref(),
                    tenant_namespace,
                    tenant_password_secret(lab, &tenant.name),
                    "password",
                    Credential::OfData,
                );
                json!({ "tenant": tenant.name, "namespace": tenant_namespace, "database": database.name, "user": database.user, "password": password })
            })
            .collect();
        let mut value = json!({
            "enabled": true,
            "name": server.name,
            "namespace": namespace,
            "engine": engine,
            "image": image,
            "client": client,
            "admin": admin,
            "port": server.port,
            "host": spec.tenant_database_host(),
            "rootPassword": root,
            "volume": server.volume,
            "storageClass": server.storage_class,
            "size": server.size,
            "tenants": tenants,
            "placement": placement(server.placement()),
        });
        let hash = hex::encode(&Sha256::digest(value.to_string().as_bytes())[..4]);
        value["setupJob"] = Value::String(format!("{}-setup-{hash}", server.name));
        value
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
        if let Some(server) = spec.tenant_database.as_ref().filter(|s| s.mode == DatabaseMode::InCluster) {
            set.insert(self.ns(&server.namespace));
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
            SearchEngine::Eck => {
                // ECK serves the certificate seclab issues (its custom HTTP certificate), so
                // that Cortex can trust seclab's CA, known before ECK runs.
                let certs = self.certificates(&[("http", Some(format!("{}-es-http", es.name)))], KeyFormat::Sec1);
                json!({
                    "enabled": es.enabled,
                    "mode": "eck",
                    "name": es.name,
                    "namespace": namespace,
                    "version": es.version(),
                    "nodes": es.nodes,
                    "allowMmap": es.allow_mmap,
                    "url": format!("https://{}-es-http:9200", es.name),
                    "username": "elastic",
                    "password": { "name": format!("{}-es-elastic-user", es.name), "key": "elastic" },
                    "ca": { "name": certs["ca"], "key": "ca.crt" },
                    "certs": certs,
                    "placement": placement(es.placement()),
                    "storageSize": es.storage_size,
                    "storageClass": es.storage_class,
                    "javaOpts": es.java_opts(),
                })
            }
            SearchEngine::Opensearch => {
                let password_secret = format!("{lab}-{}-admin", es.name);
                // OpenSearch keeps the admin's hash in its security index, made once.
                let password = handle(
                    &mut self.secrets,
                    es.admin_password.as_ref(),
                    namespace,
                    password_secret.clone(),
                    "password",
                    Credential::OfData,
                );
                // Every OpenSearch version reads its users from here when it first starts (the
                // `OPENSEARCH_INITIAL_ADMIN_PASSWORD` variable exists only from 2.12).
                let security = format!("{lab}-{}-security", es.name);
                if es.enabled {
                    self.secrets.push(SecretToCreate {
                        namespace: namespace.into(),
                        name: security.clone(),
                        key: "internal_users.yml".into(),
                        origin: SecretOrigin::InternalUsers { secret: password_secret, key: "password".into() },
                        guards_data: false,
                    });
                }
                let certs = self.certificates(
                    &[
                        ("transport", Some(format!("{}-discovery", es.name))),
                        ("http", Some(es.name.clone())),
                        ("admin", None),
                    ],
                    KeyFormat::Pkcs8,
                );
                json!({
                    "enabled": es.enabled,
                    "mode": "opensearch",
                    "major": major(es.version()),
                    "name": es.name,
                    "namespace": namespace,
                    "version": es.version(),
                    "image": format!("{}:{}", es.image, es.version()),
                    "nodes": es.nodes,
                    "allowMmap": es.allow_mmap,
                    "url": format!("https://{}:9200", es.name),
                    "username": "admin",
                    "password": password,
                    "security": security,
                    "ca": { "name": certs["ca"], "key": "ca.crt" },
                    "certs": certs,
                    // The subjects OpenSearch's security settings name: the nodes' (transport) and the admin's.
                    "subjects": { "nodes": crate::certs::subject(&es.name), "admin": crate::certs::subject("admin") },
                    "claim": es.volume,
                    "storageSize": es.storage_size,
                    "storageClass": es.storage_class,
                    "javaOpts": es.java_opts(),
                    "placement": placement(Placement { resources: es.resources().as_ref(), ..es.placement() }),
                })
            }
        }
    }

    /// The certificates of the search engine seclab issues, as Secret names by purpose: its CA
    /// (`ca`), and for each of `leaves` a server certificate for the Service named (valid for
    /// its in-cluster names) or, without one, the admin's client certificate, each with its
    /// key written as `key_format`.
    fn certificates(
        &mut self,
        leaves: &[(&str, Option<String>)],
        key_format: KeyFormat,
    ) -> serde_json::Map<String, Value> {
        let es = &self.spec.elasticsearch;
        let namespace = self.ns(&es.namespace);
        let lab = &self.spec.metadata.name;
        let cluster_domain = &self.spec.cluster.cluster_domain;
        let service_names = |service: &str| {
            let fqdn = format!("{service}.{namespace}.svc.{cluster_domain}");
            vec![service.to_owned(), format!("{service}.{namespace}.svc"), format!("*.{fqdn}"), fqdn]
        };
        let renew_before = self.parsed.renew_before;
        let authority = format!("{}-ca-certs", es.name);
        // The CA signs for the Services' names only (its name constraints): each name without
        // a wildcard covers itself and every name below it.
        let mut subtrees: Vec<String> = Vec::new();
        for name in leaves.iter().filter_map(|(_, service)| service.as_deref()).flat_map(service_names) {
            let name = name.trim_start_matches("*.").to_owned();
            if !subtrees.contains(&name) {
                subtrees.push(name);
            }
        }
        let mut ca = CertificateRequest::authority(format!("{lab} {} CA", es.name), renew_before);
        ca.dns_names = subtrees.clone();
        let mut requests = vec![("ca", ca)];
        for (purpose, service) in leaves {
            let mut request = match service {
                Some(service) => CertificateRequest::server(&es.name, service_names(service), &authority, renew_before),
                // A DNS name within the CA's subtrees: without one, the JVM checks the common
                // name `admin` against them as a DNS name and refuses the certificate (JDK,
                // sun/security/x509/NameConstraintsExtension.java, verify(X509Certificate)).
                None => {
                    let mut admin = CertificateRequest::client("admin", &authority, renew_before);
                    admin.dns_names = subtrees.last().map(|fqdn| vec![format!("admin.{fqdn}")]).unwrap_or_default();
                    admin
                }
            };
            request.key_format = key_format;
            requests.push((purpose, request));
        }
        let mut names = serde_json::Map::new();
        for (purpose, request) in requests {
            let name = format!("{}-{purpose}-certs", es.name);
            if es.enabled {
                for key in ["tls.crt", "tls.key", "ca.crt"] {
                    let origin = SecretOrigin::Certificate(request.clone());
                    self.secrets.push(SecretToCreate {
                        namespace: namespace.into(),
                        name: name.clone(),
                        key: key.into(),
                        origin,
                        guards_data: false,
                    });
                }
            }
            names.insert(purpose.to_owned(), Value::String(name));
        }
        names
    }

    fn cortex(&mut self) -> Value {
        let spec = self.spec;
        let cortex = &spec.cortex;
        let namespace = self.ns(&cortex.namespace);
        let secret_key = if cortex.enabled {
            handle(
                &mut self.secrets,
                cortex.secret_key.as_ref(),
                namespace,
                format!("{}-cortex", spec.metadata.name),
                "secret-key",
                Credential::Ephemeral,
            )
        } else {
            Value::Null
        };
        // Cortex builds a TLS context only with a keystore; its truststore holds the search
        // engine's CA (seclab's, for both modes).
        let stores = format!("{}-cortex-search-tls", spec.metadata.name);
        if cortex.enabled && spec.elasticsearch.enabled {
            let authority = format!("{}-ca-certs", spec.elasticsearch.name);
            for key in ["truststore.p12", "keystore.p12", "password"] {
                self.secrets.push(SecretToCreate {
                    namespace: namespace.into(),
                    name: stores.clone(),
                    key: key.into(),
                    origin: SecretOrigin::TrustStores(authority.clone()),
                    guards_data: false,
                });
            }
        }
        json!({
            "enabled": cortex.enabled,
            "namespace": namespace,
            "image": cortex.image(),
            "version": cortex.version,
            "host": spec.cortex_host(),
            "replicas": cortex.replicas,
            "jobClaim": cortex.job_volume,
            "jobDirectory": cortex.job_directory,
            "secretKey": secret_key,
            "searchStores": stores,
            "analyzerUrls": cortex.analyzer_urls,
            "responderUrls": cortex.responder_urls,
            // One copy of each shard per search node beyond the first: a one-node cluster
            // stays green.
            "searchReplicas": spec.elasticsearch.nodes.saturating_sub(1).min(1),
            "placement": placement(Placement { resources: Some(&cortex.resources()), ..cortex.placement() }),
            "javaOpts": cortex.java_opts(),
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
}

/// One tenant's values: its section of the file with defaults and derived names filled in.
fn tenant(
    defaults: &TenantDefaults,
    tenant: &Tenant,
    database: &ResolvedDatabase,
    secrets: &mut Vec<SecretToCreate>,
) -> Value {
    let namespace = tenant.namespace.as_deref().unwrap_or(&defaults.namespace);
    // With a `tenantDatabase` server, seclab creates the user, so it always has a password.
    let source = tenant.database.password.as_ref();
    let password = (source.is_some() || defaults.database_server.is_some()).then(|| {
        let name = tenant_password_secret(&defaults.lab, &tenant.name);
        handle(secrets, source, namespace, name, "password", Credential::OfData)
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
                // Validated: a duration of at least a minute.
                "deadline": crate::config::fields::duration(&g.timeout).map_or(6 * 3600, |d| d.as_secs()),
                "claim": defaults.scan_volume,
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
        "image": tenant.image.clone().unwrap_or_else(|| format!("{}/netdelta/{}:1.0", defaults.registry_host, tenant.name)),
        "port": tenant.port,
        "args": tenant.args.clone().unwrap_or_else(|| vec![tenant.name.clone(), tenant.port.to_string()]),
        "host": tenant.host.clone().unwrap_or_else(|| format!("netdelta.{}", defaults.domain)),
        "path": format!("/{}", tenant.name),
        "replicas": tenant.replicas,
        "readinessPath": tenant.readiness_path,
        "claims": tenant.volumes.iter().map(|m| m.volume.as_str()).collect::<BTreeSet<_>>(),
        "database": {
            "name": database.name,
            "host": database.host,
            "user": database.user,
            "password": password,
            "variables": tenant.database.variables,
        },
    });
    value["placement"] = placement(tenant.placement());
    value["mounts"] = Value::Array(mounts);
    value["env"] = Value::Array(env);
    value["scans"] = Value::Array(scans);
    value
}

/// A workload's placement as its templates take it: `pod` holds the pod-spec fields that are
/// set (`nodeSelector`, `tolerations`), `resources` the main container's (null when unset).
fn placement(placement: Placement<'_>) -> Value {
    let mut pod = serde_json::Map::new();
    if !placement.node_selector.is_empty() {
        pod.insert("nodeSelector".into(), json!(placement.node_selector));
    }
    if !placement.tolerations.is_empty() {
        pod.insert("tolerations".into(), json!(placement.tolerations));
    }
    let resources = placement.resources.filter(|r| !r.requests.is_empty() || !r.limits.is_empty());
    json!({ "pod": pod, "resources": resources })
}

/// The Secret holding a tenant's database password, when seclab creates it.
pub fn tenant_password_secret(lab: &str, tenant: &str) -> String {
    format!("{lab}-{tenant}-db")
}

/// The major version of `version` (`1` of `1.3.20`); 0 when it has none.
fn major(version: &str) -> u32 {
    version.split('.').next().and_then(|major| major.parse().ok()).unwrap_or_default()
}

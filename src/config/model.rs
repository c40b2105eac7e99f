//! The desired-state file as written: every section, every field, every default.
//!
//! Field values that need parsing (names, CIDRs, ports, cron expressions) stay text here so
//! that one run can report every bad value at once; `validate` checks them all.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::placement::{Placement, Resources, Toleration, half_heap};
use super::secret::SecretSource;

/// The `apiVersion` every desired-state file declares.
pub const API_VERSION: &str = "seclab.dev/v1alpha1";
/// The `kind` every desired-state file declares.
pub const KIND: &str = "Lab";

/// A whole lab: one file, one running security stack.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields, title = "seclab Lab")]
pub struct LabFile {
    /// Always `seclab.dev/v1alpha1`.
    pub api_version: String,
    /// Always `Lab`.
    pub kind: String,
    /// The lab's name, used as a prefix and in the `app.kubernetes.io/part-of` label.
    pub metadata: Metadata,
    /// Where the lab runs and how it is named on the network.
    #[serde(default)]
    pub cluster: Cluster,
    /// The private container registry, `registry.<domain>`.
    #[serde(default)]
    pub registry: Registry,
    /// Shared ReadWriteMany volumes.
    #[serde(default)]
    pub storage: Storage,
    /// Elasticsearch (ECK) or OpenSearch, the store behind Cortex.
    #[serde(default)]
    pub elasticsearch: Elasticsearch,
    /// Cortex, the observable-analysis engine, running analyzers as Kubernetes Jobs.
    #[serde(default)]
    pub cortex: Cortex,
    /// Service accounts, roles and bindings.
    #[serde(default)]
    pub rbac: Rbac,
    /// One network-scanning app instance per customer site, each with its scan groups.
    #[serde(default)]
    pub tenants: Vec<Tenant>,
    /// The MySQL server of the tenants' apps: when set, seclab creates each tenant's database
    /// and user on it.
    #[serde(default)]
    pub tenant_database: Option<TenantDatabaseServer>,
    /// Where scan results are stored and compared.
    #[serde(default)]
    pub scan_database: ScanDatabase,
    /// Where alerts about network changes go, and what counts as noise.
    #[serde(default)]
    pub alerts: Alerts,
    /// Continuous mode (`seclab watch`).
    #[serde(default)]
    pub watch: Watch,
    /// Certificates seclab issues (OpenSearch's).
    #[serde(default)]
    pub certificates: Certificates,
    /// Operators and CRDs `seclab bootstrap` installs before the lab (e.g. ECK), each under
    /// an inventory of its own that `destroy` never touches.
    #[serde(default)]
    pub operators: Vec<Operator>,
}

/// Identity of the lab.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Metadata {
    /// DNS-1123 label, at most 63 characters.
    pub name: String,
}

/// Cluster-wide settings.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", default)]
#[schemars(deny_unknown_fields)]
pub struct Cluster {
    /// kubeconfig context to use; the current context when unset.
    pub context: Option<String>,
    /// Base DNS domain: the registry is `registry.<domain>`, Cortex `cortex.<domain>`.
    pub domain: String,
    /// The cluster's internal DNS domain, used in certificate names.
    pub cluster_domain: String,
    /// Default namespace for every component that does not set its own.
    pub namespace: String,
    /// IngressClass for every Ingress; the cluster's default class when unset.
    pub ingress_class: Option<String>,
    /// The node's IP address, for the dnsmasq line that sends `*.<domain>` to it.
    pub node_address: Option<String>,
    /// How to tell that objects of a custom kind are ready. Without a rule, a custom
    /// resource is ready once its controller reports a status (a `Ready` condition, when it
    /// has one, must be `True`).
    pub readiness: Vec<ReadinessRule>,
}

/// When an object of one custom kind counts as ready.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields)]
pub struct ReadinessRule {
    /// API group of the kind, e.g. `cert-manager.io`.
    pub group: String,
    /// The kind, e.g. `Certificate`.
    pub kind: String,
    /// Ready when this status condition is `True`.
    pub condition: Option<String>,
    /// Ready when this field (dotted path, e.g. `status.phase`) holds one of `values`.
    pub field: Option<String>,
    /// The values of `field` that mean ready.
    #[serde(default)]
    pub values: Vec<String>,
    /// Ready as soon as it exists (for kinds no controller reports on).
    #[serde(default)]
    pub always: bool,
}

impl Default for Cluster {
    fn default() -> Self {
        Self {
            context: None,
            domain: "home.arpa".into(),
            cluster_domain: "cluster.local".into(),
            namespace: "seclab".into(),
            ingress_class: None,
            node_address: None,
            readiness: Vec::new(),
        }
    }
}

/// The private container registry.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", default)]
#[schemars(deny_unknown_fields)]
pub struct Registry {
    /// Deploy the registry.
    pub enabled: bool,
    /// Namespace; `cluster.namespace` when unset.
    pub namespace: Option<String>,
    /// Host name of the registry's Ingress; `registry.<domain>` when unset.
    pub host: Option<String>,
    /// Registry image.
    pub image: String,
    /// Serve plain HTTP (the home-lab default): nodes get insecure-registry settings.
    pub insecure: bool,
    /// Storage volume holding the images (a `storage.volumes` name), mounted at subPath `registry`.
    pub volume: String,
    /// Node labels the registry's node must carry, e.g. `kubernetes.io/hostname: big`.
    pub node_selector: BTreeMap<String, String>,
    /// Node taints the registry's pods tolerate.
    pub tolerations: Vec<Toleration>,
    /// CPU and memory requests and limits of the registry's container.
    pub resources: Option<Resources>,
}

impl Default for Registry {
    fn default() -> Self {
        Self {
            enabled: true,
            namespace: None,
            host: None,
            image: "registry:2".into(),
            insecure: true,
            volume: "data".into(),
            node_selector: BTreeMap::new(),
            tolerations: Vec::new(),
            resources: None,
        }
    }
}

/// Shared storage.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(default)]
#[schemars(deny_unknown_fields)]
pub struct Storage {
    /// ReadWriteMany volumes; one hostPath volume `data` at `/mnt/data` when unset.
    pub volumes: Vec<Volume>,
}

impl Default for Storage {
    fn default() -> Self {
        Self {
            volumes: vec![Volume {
                name: "data".into(),
                namespace: None,
                size: default_volume_size(),
                host_path: Some("/mnt/data".into()),
                storage_class: None,
                node: None,
            }],
        }
    }
}

/// One ReadWriteMany volume and its claim.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields)]
pub struct Volume {
    /// Name of the claim (and of the PersistentVolume for hostPath volumes).
    pub name: String,
    /// Namespace of the claim; `cluster.namespace` when unset. Only workloads in it can mount it.
    #[serde(default)]
    pub namespace: Option<String>,
    /// Capacity, as a Kubernetes quantity.
    #[serde(default = "default_volume_size")]
    pub size: String,
    /// A directory on the node: seclab renders a hostPath PersistentVolume (single-node labs).
    #[serde(default)]
    pub host_path: Option<String>,
    /// StorageClass: the provisioner for dynamic volumes (Longhorn, NFS), or the class
    /// name binding a hostPath volume to its claim (`manual` when unset).
    #[serde(default)]
    pub storage_class: Option<String>,
    /// For hostPath volumes: pin the volume to this node.
    #[serde(default)]
    pub node: Option<String>,
}

fn default_volume_size() -> String {
    "10Gi".into()
}

/// Which search engine backs Cortex.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SearchEngine {
    /// An ECK `Elasticsearch` resource (needs the ECK operator).
    Eck,
    /// An OpenSearch StatefulSet with certificates generated by seclab.
    Opensearch,
}

/// Elasticsearch or OpenSearch.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", default)]
#[schemars(deny_unknown_fields)]
pub struct Elasticsearch {
    /// Deploy a search engine.
    pub enabled: bool,
    /// `eck` or `opensearch`.
    pub mode: SearchEngine,
    /// Name of the cluster (ECK derives its Service and Secret names from it).
    pub name: String,
    /// Namespace; `cluster.namespace` when unset. Must be Cortex's namespace.
    pub namespace: Option<String>,
    /// Version; 7.10.2 for ECK and 1.3.20 for OpenSearch when unset (the versions Cortex 3 can use).
    pub version: Option<String>,
    /// Number of nodes.
    pub nodes: u32,
    /// `node.store.allow_mmap` (false suits hosts without a raised vm.max_map_count).
    pub allow_mmap: bool,
    /// OpenSearch only: image repository (the version is the tag).
    pub image: String,
    /// OpenSearch only: storage volume for data (subPath per pod); a claim per pod when unset.
    pub volume: Option<String>,
    /// Size of each search node's data claim (ECK's `elasticsearch-data`, whose own default is
    /// 1Gi; OpenSearch's when `volume` is unset).
    pub storage_size: String,
    /// StorageClass of each search node's data claim; the cluster's default when unset.
    pub storage_class: Option<String>,
    /// OpenSearch only: the `admin` user's password; generated and kept in the cluster when unset.
    pub admin_password: Option<SecretSource>,
    /// JVM options of each node (`ES_JAVA_OPTS` for ECK, `OPENSEARCH_JAVA_OPTS`); when unset, a
    /// heap of half the memory limit (ECK: before 7.11 only; later versions size it themselves).
    pub java_opts: Option<String>,
    /// Node labels the search engine's node must carry, e.g. `kubernetes.io/hostname: big`.
    pub node_selector: BTreeMap<String, String>,
    /// Node taints the search engine's pods tolerate.
    pub tolerations: Vec<Toleration>,
    /// CPU and memory requests and limits of the search engine's container.
    pub resources: Option<Resources>,
}

impl Elasticsearch {
    /// The Elasticsearch version ECK deploys when `version` is unset.
    pub const DEFAULT_ECK_VERSION: &str = "7.10.2";
    /// The OpenSearch version deployed when `version` is unset: the last 1.x line, the one
    /// Cortex 3 can use (in its Elasticsearch 7.10-compatible mode).
    pub const DEFAULT_OPENSEARCH_VERSION: &str = "1.3.20";

    /// The memory of each OpenSearch node when `resources` is unset: what ECK gives an
    /// Elasticsearch node by default (cloud-on-k8s v2.16.1,
    /// pkg/controller/elasticsearch/nodespec/defaults.go), for a heap of 1 GiB.
    pub const DEFAULT_OPENSEARCH_MEMORY: &str = "2Gi";

    /// The version deployed: as set, else the mode's default.
    pub fn version(&self) -> &str {
        self.version.as_deref().unwrap_or(match self.mode {
            SearchEngine::Eck => Self::DEFAULT_ECK_VERSION,
            SearchEngine::Opensearch => Self::DEFAULT_OPENSEARCH_VERSION,
        })
    }

    /// Each node's resources as rendered: as set; for OpenSearch, its default memory when
    /// unset (ECK applies its own default, the same).
    pub fn resources(&self) -> Option<Resources> {
        match (&self.resources, self.mode) {
            (Some(resources), _) => Some(resources.clone()),
            (None, SearchEngine::Opensearch) => Some(Resources::memory(Self::DEFAULT_OPENSEARCH_MEMORY)),
            (None, SearchEngine::Eck) => None,
        }
    }

    /// Each node's JVM options as rendered: as set, else a heap of half the node's memory where
    /// the engine does not size one from it itself. Elasticsearch 7.11 and later do; before,
    /// the heap stays at jvm.options' 1 GiB, which suits ECK's default 2 GiB only.
    pub fn java_opts(&self) -> Option<String> {
        if let Some(options) = &self.java_opts {
            return Some(options.clone());
        }
        let sizes_itself = self.mode == SearchEngine::Eck && {
            let mut parts = self.version().split('.').map(|p| p.parse::<u32>().unwrap_or_default());
            (parts.next().unwrap_or_default(), parts.next().unwrap_or_default()) >= (7, 11)
        };
        if sizes_itself {
            return None;
        }
        self.resources()?.memory_bytes().map(half_heap)
    }
}

impl Default for Elasticsearch {
    fn default() -> Self {
        Self {
            enabled: true,
            mode: SearchEngine::Eck,
            name: "elasticsearch".into(),
            namespace: None,
            version: None,
            nodes: 1,
            allow_mmap: false,
            image: "opensearchproject/opensearch".into(),
            volume: None,
            storage_size: "10Gi".into(),
            storage_class: None,
            admin_password: None,
            java_opts: None,
            node_selector: BTreeMap::new(),
            tolerations: Vec::new(),
            resources: None,
        }
    }
}

/// Cortex and its Kubernetes job runner.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", default)]
#[schemars(deny_unknown_fields)]
pub struct Cortex {
    /// Deploy Cortex (needs `elasticsearch.enabled`).
    pub enabled: bool,
    /// Namespace; `cluster.namespace` when unset.
    pub namespace: Option<String>,
    /// Image; `thehiveproject/cortex:<version>-1` when unset (the tag of Cortex's own image).
    pub image: Option<String>,
    /// Cortex version (3.2 or later ships the Kubernetes job runner), with its image's package
    /// revision when it is not 1 (`3.2.0-2`).
    pub version: String,
    /// Host name of the Ingress; `cortex.<domain>` when unset.
    pub host: Option<String>,
    /// Number of Cortex pods.
    pub replicas: u32,
    /// Storage volume shared with analyzer Jobs (a `storage.volumes` name).
    pub job_volume: String,
    /// Where the job volume is mounted in Cortex (`job.directory`).
    pub job_directory: String,
    /// Play's application secret; generated and kept in the cluster when unset.
    pub secret_key: Option<SecretSource>,
    /// Catalogs of analyzers Cortex offers (URLs or paths); the ones Cortex's own image uses
    /// when unset. Without any, Cortex starts with no analyzer.
    pub analyzer_urls: Vec<String>,
    /// Catalogs of responders, likewise.
    pub responder_urls: Vec<String>,
    /// Node labels Cortex's node must carry, e.g. `kubernetes.io/hostname: big`.
    pub node_selector: BTreeMap<String, String>,
    /// Node taints Cortex's pods tolerate.
    pub tolerations: Vec<Toleration>,
    /// CPU and memory requests and limits of Cortex's container.
    pub resources: Option<Resources>,
}

impl Cortex {
    /// Cortex's memory when `resources` is unset, for a heap of 1 GiB (its analyzers run as
    /// Jobs of their own).
    pub const DEFAULT_MEMORY: &str = "2Gi";

    /// The image: as set, else Cortex's own. Its releases are tagged with the build's version,
    /// `<release>-<package revision>` (TheHive-Project/Cortex project/DockerSettings.scala tags
    /// `version.value`; version.sbt says `3.2.0-1`, `4.0.0-1`, `4.1.0-1`), so a bare release
    /// takes revision 1.
    pub fn image(&self) -> String {
        self.image.clone().unwrap_or_else(|| {
            let tag = if self.version.contains('-') { self.version.clone() } else { format!("{}-1", self.version) };
            format!("thehiveproject/cortex:{tag}")
        })
    }

    /// Cortex's resources as rendered: as set, else its default memory.
    pub fn resources(&self) -> Resources {
        self.resources.clone().unwrap_or_else(|| Resources::memory(Self::DEFAULT_MEMORY))
    }

    /// `JAVA_OPTS` for Cortex's start script (sbt-native-packager's bash template reads it):
    /// a heap of half its memory, when its memory is known.
    pub fn java_opts(&self) -> Option<String> {
        self.resources().memory_bytes().map(half_heap)
    }
    /// The analyzer catalog Cortex 4.1's image configures when given none
    /// (package/docker/entrypoint, `DEFAULT_ANALYZER_URL`).
    pub const DEFAULT_ANALYZER_CATALOG: &str = "https://catalogs.download.strangebee.com/latest/json/analyzers.json";
    /// The responder catalog, likewise (`DEFAULT_RESPONDER_URL`).
    pub const DEFAULT_RESPONDER_CATALOG: &str = "https://catalogs.download.strangebee.com/latest/json/responders.json";
}

impl Default for Cortex {
    fn default() -> Self {
        Self {
            enabled: true,
            namespace: None,
            image: None,
            version: "3.2.0".into(),
            host: None,
            replicas: 1,
            job_volume: "data".into(),
            job_directory: "/tmp/cortex-jobs".into(),
            secret_key: None,
            analyzer_urls: vec![Cortex::DEFAULT_ANALYZER_CATALOG.into()],
            responder_urls: vec![Cortex::DEFAULT_RESPONDER_CATALOG.into()],
            node_selector: BTreeMap::new(),
            tolerations: Vec::new(),
            resources: None,
        }
    }
}

/// Access control declared in the file.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", default)]
#[schemars(deny_unknown_fields)]
pub struct Rbac {
    /// ServiceAccounts to create.
    pub service_accounts: Vec<ServiceAccount>,
    /// Namespaced Roles.
    pub roles: Vec<Role>,
    /// ClusterRoles.
    pub cluster_roles: Vec<ClusterRole>,
    /// RoleBindings and ClusterRoleBindings.
    pub bindings: Vec<Binding>,
}

/// A ServiceAccount.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct ServiceAccount {
    /// Name.
    pub name: String,
    /// Namespace; `cluster.namespace` when unset.
    #[serde(default)]
    pub namespace: Option<String>,
}

/// A namespaced Role.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Role {
    /// Name.
    pub name: String,
    /// Namespace; `cluster.namespace` when unset.
    #[serde(default)]
    pub namespace: Option<String>,
    /// What the role allows.
    pub rules: Vec<Rule>,
}

/// A ClusterRole.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct ClusterRole {
    /// Name.
    pub name: String,
    /// What the role allows.
    pub rules: Vec<Rule>,
}

/// One policy rule.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields)]
pub struct Rule {
    /// API groups; `[""]` (the core group) when unset.
    #[serde(default = "core_group")]
    pub api_groups: Vec<String>,
    /// Resources, e.g. `pods`, `jobs`, `pods/log`.
    pub resources: Vec<String>,
    /// Verbs, e.g. `get`, `list`, `watch`, `create`.
    pub verbs: Vec<String>,
    /// Restrict the rule to these object names.
    #[serde(default)]
    pub resource_names: Vec<String>,
}

fn core_group() -> Vec<String> {
    vec![String::new()]
}

/// A RoleBinding (or, with `clusterWide`, a ClusterRoleBinding).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields)]
pub struct Binding {
    /// Name.
    pub name: String,
    /// Namespace of a RoleBinding; `cluster.namespace` when unset.
    #[serde(default)]
    pub namespace: Option<String>,
    /// A Role of this file, in the binding's namespace.
    #[serde(default)]
    pub role: Option<String>,
    /// A ClusterRole of this file, or one of `view`, `edit`, `admin`, `cluster-admin`.
    #[serde(default)]
    pub cluster_role: Option<String>,
    /// Bind cluster-wide (a ClusterRoleBinding; needs `clusterRole`).
    #[serde(default)]
    pub cluster_wide: bool,
    /// ServiceAccounts: `name` (binding's namespace) or `namespace/name`.
    #[serde(default)]
    pub service_accounts: Vec<String>,
    /// User names.
    #[serde(default)]
    pub users: Vec<String>,
    /// Group names.
    #[serde(default)]
    pub groups: Vec<String>,
}

/// One customer site: a Netdelta-style app instance and its scan groups.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields)]
pub struct Tenant {
    /// Site name (DNS-1123 label): names the Deployment, Service and Ingress path.
    pub name: String,
    /// Namespace; `cluster.namespace` when unset.
    #[serde(default)]
    pub namespace: Option<String>,
    /// App image; `<registry host>/netdelta/<name>:1.0` when unset.
    #[serde(default)]
    pub image: Option<String>,
    /// Port the app listens on.
    #[serde(default = "default_tenant_port")]
    pub port: u16,
    /// Container arguments; `[<name>, <port>]` when unset: Netdelta serves the site named first
    /// under `/<name>` and listens on the port second, so given ones must begin so.
    #[serde(default)]
    pub args: Option<Vec<String>>,
    /// Ingress host; `netdelta.<domain>` when unset. The site is served under `/<name>`.
    #[serde(default)]
    pub host: Option<String>,
    /// Number of app pods.
    #[serde(default = "one")]
    pub replicas: u32,
    /// Path on the app's port that answers 200 once the app can serve (an HTTP readiness
    /// probe); without it, a pod is ready as soon as the port accepts connections.
    #[serde(default)]
    pub readiness_path: Option<String>,
    /// Volumes mounted into the app.
    #[serde(default)]
    pub volumes: Vec<Mount>,
    /// The app's database.
    #[serde(default)]
    pub database: TenantDatabase,
    /// Extra environment variables (not secrets: those go in `database.password`).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Scan groups: targets scanned by nmap on a schedule.
    #[serde(default)]
    pub scans: Vec<ScanGroup>,
    /// Node labels the app's node (and its scans' nodes) must carry.
    #[serde(default)]
    pub node_selector: BTreeMap<String, String>,
    /// Node taints the app's pods (and its scans' pods) tolerate.
    #[serde(default)]
    pub tolerations: Vec<Toleration>,
    /// CPU and memory requests and limits of the app's container.
    #[serde(default)]
    pub resources: Option<Resources>,
}

fn default_tenant_port() -> u16 {
    9004
}

fn one() -> u32 {
    1
}

/// A storage volume mounted into a container.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields)]
pub struct Mount {
    /// A `storage.volumes` name, in the same namespace.
    pub volume: String,
    /// Absolute path in the container.
    pub mount_path: String,
    /// Sub-directory of the volume; the whole volume when unset.
    #[serde(default)]
    pub sub_path: Option<String>,
    /// Mount read-only.
    #[serde(default)]
    pub read_only: bool,
}

/// A tenant app's database connection.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", default)]
#[schemars(deny_unknown_fields)]
pub struct TenantDatabase {
    /// Database name; `netdelta-<tenant>` when unset.
    pub name: Option<String>,
    /// Database host; the `tenantDatabase` server when one is set, else `mysql-netdelta`.
    pub host: Option<String>,
    /// Database user; `netdelta-<tenant>` with a `tenantDatabase` server, else `netdelta`.
    pub user: Option<String>,
    /// Password, by reference; with a `tenantDatabase` server, generated and kept in a Secret
    /// when unset.
    pub password: Option<SecretSource>,
    /// The names of the environment variables the app reads these from.
    pub variables: DatabaseVariables,
}

/// The environment variables a tenant's app reads its database from, by name.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(default)]
#[schemars(deny_unknown_fields)]
pub struct DatabaseVariables {
    /// The database's name (`DB_NAME`).
    pub name: String,
    /// The server's host name (`DB_HOST`).
    pub host: String,
    /// The user (`DB_USER`).
    pub user: String,
    /// The password (`DB_PASSWORD`).
    pub password: String,
}

impl Default for DatabaseVariables {
    fn default() -> Self {
        Self { name: "DB_NAME".into(), host: "DB_HOST".into(), user: "DB_USER".into(), password: "DB_PASSWORD".into() }
    }
}

impl DatabaseVariables {
    /// Each variable's field and name.
    pub fn fields(&self) -> [(&'static str, &str); 4] {
        [("name", &self.name), ("host", &self.host), ("user", &self.user), ("password", &self.password)]
    }
}

/// Where the tenants' MySQL server runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum DatabaseMode {
    /// A StatefulSet seclab renders, set up by a Job it renders.
    #[default]
    InCluster,
    /// A server the user already runs; seclab connects to it itself.
    External,
}

/// Which server runs in the cluster.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum DatabaseEngine {
    /// MySQL (`mysql:<version>`).
    Mysql,
    /// MariaDB (`mariadb:<version>`), the default: Netdelta was written for MySQL 5.7, and its
    /// `sql_mode` (`NO_AUTO_CREATE_USER`) is refused by MySQL 8 but taken by MariaDB.
    #[default]
    Mariadb,
}

/// The tenants' MySQL server: one database and one user per tenant, reconciled on apply.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", default)]
#[schemars(deny_unknown_fields)]
pub struct TenantDatabaseServer {
    /// `inCluster` (a StatefulSet seclab renders) or `external` (a server given by `url`).
    pub mode: DatabaseMode,
    /// inCluster: `mysql` or `mariadb`.
    pub engine: DatabaseEngine,
    /// inCluster: the image tag; `8.4` (LTS) for MySQL, `11.4` (LTS) for MariaDB when unset.
    pub version: Option<String>,
    /// inCluster: the whole image, replacing engine and version.
    pub image: Option<String>,
    /// inCluster: name of the StatefulSet and its Service.
    pub name: String,
    /// inCluster: namespace; `cluster.namespace` when unset.
    pub namespace: Option<String>,
    /// inCluster: a `storage.volumes` name holding the data (under `<name>/`); a claim of
    /// its own (`storageClass`, `size`) when unset.
    pub volume: Option<String>,
    /// inCluster: StorageClass of the server's own claim; the cluster's default when unset.
    pub storage_class: Option<String>,
    /// inCluster: size of the server's own claim.
    pub size: String,
    /// inCluster: the root password, by reference; generated and kept in a Secret when unset.
    pub root_password: Option<SecretSource>,
    /// external: `mysql://USER:PASSWORD@HOST:PORT`, by reference (`env:VAR`, `file:PATH`); the
    /// user creates databases and users and grants privileges.
    pub url: Option<SecretSource>,
    /// external: TLS to the server of `url`: `verify` (the default) or `disable`.
    pub tls: DatabaseTls,
    /// external: the CA file that vouches for that server, relative to this file; the
    /// system's CAs when unset.
    pub tls_ca: Option<String>,
    /// Host name the tenants' apps connect to; the Service (inCluster) or the `url`'s host.
    pub host: Option<String>,
    /// Port the server listens on.
    pub port: u16,
    /// inCluster: node labels the server's node (and its setup Job's) must carry.
    pub node_selector: BTreeMap<String, String>,
    /// inCluster: node taints the server's pods (and its setup Job's) tolerate.
    pub tolerations: Vec<Toleration>,
    /// inCluster: CPU and memory requests and limits of the server's container.
    pub resources: Option<Resources>,
}

impl Default for TenantDatabaseServer {
    fn default() -> Self {
        Self {
            mode: DatabaseMode::InCluster,
            engine: DatabaseEngine::Mariadb,
            version: None,
            image: None,
            name: "mysql-netdelta".into(),
            namespace: None,
            volume: None,
            storage_class: None,
            size: "5Gi".into(),
            root_password: None,
            url: None,
            tls: DatabaseTls::Verify,
            tls_ca: None,
            host: None,
            port: 3306,
            node_selector: BTreeMap::new(),
            tolerations: Vec::new(),
            resources: None,
        }
    }
}

/// A group of targets scanned together on a schedule, compared scan to scan.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields)]
pub struct ScanGroup {
    /// Group name (DNS-1123 label), unique within the tenant.
    pub name: String,
    /// Addresses, CIDRs (`198.51.100.0/24`), ranges (`198.51.100.10-20`) or host names.
    pub targets: Vec<String>,
    /// Addresses, CIDRs or ranges to leave out.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Ports, e.g. `22,80,443,8000-8100`; nmap's top 1000 when unset.
    #[serde(default)]
    pub ports: Option<String>,
    /// Cron schedule (5 fields or `@daily`-style), as Kubernetes CronJobs take it.
    pub schedule: String,
    /// IANA time zone of the schedule, e.g. `Europe/London`; the cluster's when unset.
    #[serde(default)]
    pub time_zone: Option<String>,
    /// A host missing from this many consecutive scans counts as down.
    #[serde(default = "default_down_after")]
    pub down_after: u32,
    /// Alert routes (names from `alerts.routes`, or `log`); `alerts.defaultRoutes` when unset.
    #[serde(default)]
    pub alerts: Option<Vec<String>>,
    /// Extra nmap options (seclab sets the output and the targets itself).
    #[serde(default = "default_nmap_args")]
    pub nmap_args: Vec<String>,
    /// Image that runs nmap.
    #[serde(default = "default_scan_image")]
    pub image: String,
    /// How long one scan may run before its Job is stopped (and its partial file removed),
    /// e.g. `2h`; a host that takes longer than 30 minutes is given up on within it.
    #[serde(default = "default_scan_timeout")]
    pub timeout: String,
    /// Keep the CronJob but stop scheduling scans.
    #[serde(default)]
    pub suspend: bool,
}

fn default_down_after() -> u32 {
    3
}

fn default_nmap_args() -> Vec<String> {
    vec!["-sV".into()]
}

fn default_scan_image() -> String {
    "instrumentisto/nmap:7.98".into()
}

fn default_scan_timeout() -> String {
    "6h".into()
}

/// The scan database and where scan files land.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", default)]
#[schemars(deny_unknown_fields)]
pub struct ScanDatabase {
    /// SQLite file, relative to the desired-state file.
    pub path: String,
    /// PostgreSQL URL, by reference (`env:VAR`, `file:PATH`); replaces `path` when set.
    pub url: Option<SecretSource>,
    /// Storage volume the scan CronJobs write into, under `scans/<tenant>/<group>/`.
    pub scan_volume: String,
    /// Where seclab reads scan files on this machine; the hostPath of `scanVolume` plus
    /// `/scans` when unset.
    pub scan_directory: Option<String>,
    /// TLS to the PostgreSQL server of `url`: `verify` (the default) or `disable`.
    pub tls: DatabaseTls,
    /// The CA file that vouches for that server, relative to this file; the system's CAs
    /// when unset.
    pub tls_ca: Option<String>,
}

impl Default for ScanDatabase {
    fn default() -> Self {
        Self {
            path: "seclab-scans.db".into(),
            url: None,
            scan_volume: "data".into(),
            scan_directory: None,
            tls: DatabaseTls::Verify,
            tls_ca: None,
        }
    }
}

/// TLS to a database server seclab connects to itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum DatabaseTls {
    /// A server off this machine is reached over TLS, its certificate checked against the CA
    /// and its name (unless the URL asks for a mode of its own that keeps TLS on).
    #[default]
    Verify,
    /// The URL decides, TLS off included.
    Disable,
}

/// Alert routes and noise control.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", default)]
#[schemars(deny_unknown_fields)]
pub struct Alerts {
    /// Named routes: each sends to a webhook, email, or the log.
    pub routes: Vec<Route>,
    /// Routes for scan groups that name none. The route `log` always exists.
    pub default_routes: Vec<String>,
    /// Do not re-alert a change already alerted within this many previous scans (0: always alert).
    pub repeat_window: u32,
    /// Ignore ports nmap reports as `tcpwrapped`.
    pub ignore_tcpwrapped: bool,
    /// Ignore service changes caused by service-detection time-outs.
    pub ignore_service_timeouts: bool,
}

impl Default for Alerts {
    fn default() -> Self {
        Self {
            routes: Vec::new(),
            default_routes: vec!["log".into()],
            repeat_window: 0,
            ignore_tcpwrapped: true,
            ignore_service_timeouts: true,
        }
    }
}

/// One alert route; exactly one of `webhook`, `email`, `log`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Route {
    /// Route name (DNS-1123 label), referenced from scan groups.
    pub name: String,
    /// POST each alert as JSON.
    #[serde(default)]
    pub webhook: Option<Webhook>,
    /// Send each alert by email.
    #[serde(default)]
    pub email: Option<Email>,
    /// Write each alert to seclab's log.
    #[serde(default)]
    pub log: Option<LogRoute>,
}

/// A webhook route.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Webhook {
    /// http(s) URL, without credentials.
    pub url: String,
    /// HMAC-SHA256 key signing each body (header `X-Seclab-Signature`), by reference.
    #[serde(default)]
    pub secret: Option<SecretSource>,
}

/// An email route.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Email {
    /// Recipients.
    pub to: Vec<String>,
    /// Sender address.
    pub from: String,
    /// The SMTP server.
    pub smtp: Smtp,
}

/// How mail is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// STARTTLS on the submission port.
    #[default]
    Starttls,
    /// Implicit TLS (port 465).
    Tls,
    /// Plain SMTP (for a relay on localhost).
    None,
}

/// An SMTP server.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Smtp {
    /// Host name.
    pub host: String,
    /// Port.
    #[serde(default = "default_smtp_port")]
    pub port: u16,
    /// `starttls`, `tls` or `none`.
    #[serde(default)]
    pub tls: SmtpTls,
    /// User name, when the server needs a login.
    #[serde(default)]
    pub username: Option<String>,
    /// Password, by reference.
    #[serde(default)]
    pub password: Option<SecretSource>,
}

fn default_smtp_port() -> u16 {
    587
}

/// A route that writes alerts to seclab's log.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct LogRoute {}

/// Continuous mode.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", default)]
#[schemars(deny_unknown_fields)]
pub struct Watch {
    /// Address of the health, metrics and status endpoints.
    pub listen: String,
    /// Full resync interval, e.g. `5m`.
    pub resync_interval: String,
    /// How long to wait after a save before applying, e.g. `300ms`.
    pub debounce: String,
    /// What to do when someone else changes or deletes an object of the lab: `heal` takes
    /// it back at once, `report` only reports it (log, metric, status page).
    pub drift: DriftPolicy,
    /// The bearer token the endpoints require (all but `/healthz`), by reference
    /// (`env:VAR`, `file:PATH`); required when `listen` is not a loopback address.
    pub token: Option<SecretSource>,
}

/// What `watch` does about drift.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum DriftPolicy {
    /// Re-apply the object at once, taking fields back from other managers.
    #[default]
    Heal,
    /// Only report it.
    Report,
}

impl Default for Watch {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:9464".into(),
            resync_interval: "5m".into(),
            debounce: "300ms".into(),
            drift: DriftPolicy::Heal,
            token: None,
        }
    }
}

/// Certificates seclab issues.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", default)]
#[schemars(deny_unknown_fields)]
pub struct Certificates {
    /// Issue a certificate again this long before it expires, e.g. `30d`.
    pub renew_before: String,
}

impl Default for Certificates {
    fn default() -> Self {
        Self { renew_before: "30d".into() }
    }
}

/// An operator (or any set of CRDs and controllers) the lab needs installed first.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Operator {
    /// DNS-1123 label; its inventory is the ConfigMap `kube-system/seclab-operator-<name>`.
    pub name: String,
    /// Where its manifest is: `file:PATH` (relative to this file) or an `https://` URL.
    pub manifest: String,
    /// The manifest's SHA-256, 64 hex digits: a manifest that differs is refused before
    /// anything is applied. `bootstrap` prints the digest of the manifest it read, to pin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

/// `placement()` of each section that takes `nodeSelector`, `tolerations` and `resources`.
macro_rules! placement_of {
    ($($section:ty => $doc:literal),* $(,)?) => {$(
        impl $section {
            #[doc = $doc]
            pub fn placement(&self) -> Placement<'_> {
                Placement::new(&self.node_selector, &self.tolerations, &self.resources)
            }
        }
    )*};
}

placement_of! {
    Registry => "Where the registry runs.",
    Elasticsearch => "Where the search engine's nodes run.",
    Cortex => "Where Cortex runs (its analyzer Jobs are placed by Cortex's job runner).",
    Tenant => "Where the tenant's app runs; its scans run on the same nodes, without its resources.",
    TenantDatabaseServer => "Where the in-cluster server runs; its setup Job runs on the same nodes.",
}

impl LabFile {
    /// The registry's host name: as set, else `registry.<domain>`.
    pub fn registry_host(&self) -> String {
        self.registry.host.clone().unwrap_or_else(|| format!("registry.{}", self.cluster.domain))
    }

    /// Cortex's host name: as set, else `cortex.<domain>`.
    pub fn cortex_host(&self) -> String {
        self.cortex.host.clone().unwrap_or_else(|| format!("cortex.{}", self.cluster.domain))
    }

    /// A component's namespace: its own when set, else `cluster.namespace`.
    pub fn namespace_or_default<'a>(&'a self, explicit: &'a Option<String>) -> &'a str {
        explicit.as_deref().unwrap_or(&self.cluster.namespace)
    }

    /// The host name the tenants' apps reach the `tenantDatabase` server by: as set, else
    /// the in-cluster Service's full name (`None` without a server, or for an external one
    /// without `host`, which validation refuses).
    pub fn tenant_database_host(&self) -> Option<String> {
        let server = self.tenant_database.as_ref()?;
        match (&server.host, server.mode) {
            (Some(host), _) => Some(host.clone()),
            (None, DatabaseMode::InCluster) => Some(format!(
                "{}.{}.svc.{}",
                server.name,
                self.namespace_or_default(&server.namespace),
                self.cluster.cluster_domain
            )),
            (None, DatabaseMode::External) => None,
        }
    }

    /// `tenant`'s database, user and host, defaults resolved.
    pub fn tenant_database_of(&self, tenant: &Tenant) -> ResolvedDatabase {
        let managed = self.tenant_database.is_some();
        let db = &tenant.database;
        let default_user = if managed { format!("netdelta-{}", tenant.name) } else { "netdelta".into() };
        ResolvedDatabase {
            name: db.name.clone().unwrap_or_else(|| format!("netdelta-{}", tenant.name)),
            user: db.user.clone().unwrap_or(default_user),
            host: db.host.clone().or_else(|| self.tenant_database_host()).unwrap_or_else(|| "mysql-netdelta".into()),
        }
    }
}

/// A tenant's database as its app sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResolvedDatabase {
    /// Database name.
    pub name: String,
    /// User name.
    pub user: String,
    /// Host name.
    pub host: String,
}

impl ScanGroup {
    /// nmap's arguments for this group, except the output option: options, ports,
    /// exclusions, then targets. The CronJob and `seclab scan run` both use these.
    pub fn nmap_arguments(&self) -> Vec<String> {
        let mut arguments = self.nmap_args.clone();
        if let Some(ports) = &self.ports {
            arguments.extend(["-p".to_owned(), ports.replace(' ', "")]);
        }
        if !self.exclude.is_empty() {
            arguments.extend(["--exclude".to_owned(), self.exclude.join(",")]);
        }
        arguments.extend(self.targets.iter().cloned());
        arguments
    }
}

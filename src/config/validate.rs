//! Semantic checks of a parsed file: every problem is collected, none stops the others.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

use super::Parsed;
use super::diagnostics::Diagnostic;
use super::fields::{self, Problem, Target, suggest};
use super::model::*;
use super::nmap_options;
use super::path::FieldPath;
use super::placement::{self, Placement};
use super::secret::SecretSource;
use super::source::SourceFile;

/// ClusterRoles every cluster has, which bindings may name without declaring them.
const BUILTIN_CLUSTER_ROLES: [&str; 4] = ["view", "edit", "admin", "cluster-admin"];
/// Verbs Kubernetes RBAC knows.
const VERBS: [&str; 13] = [
    "get",
    "list",
    "watch",
    "create",
    "update",
    "patch",
    "delete",
    "deletecollection",
    "impersonate",
    "bind",
    "escalate",
    "use",
    "*",
];
/// Longest CronJob name Kubernetes accepts (Job names add 11 characters).
const MAX_CRONJOB_NAME: usize = 52;

/// Runs every check and returns the problems found, and where the file names a secret by
/// `env:` or `file:` (read where seclab runs).
pub(crate) fn check(file: &LabFile, source: &SourceFile) -> Checked {
    let mut checker = Checker {
        file,
        source,
        found: Vec::new(),
        volumes: HashMap::new(),
        references: Vec::new(),
        parsed: Parsed::default(),
    };
    checker.run();
    Checked { diagnostics: checker.found, secrets: checker.references, parsed: checker.parsed }
}

/// What the checks found and kept.
pub(crate) struct Checked {
    /// The problems.
    pub diagnostics: Vec<Diagnostic>,
    /// The `env:` and `file:` secrets, by where they are written.
    pub secrets: Vec<(FieldPath, SecretSource)>,
    /// The values the checks parsed (meaningful when there is no problem).
    pub parsed: Parsed,
}

struct Checker<'a> {
    file: &'a LabFile,
    source: &'a SourceFile,
    found: Vec<Diagnostic>,
    /// The `env:` and `file:` secrets, by where they are written.
    references: Vec<(FieldPath, SecretSource)>,
    /// The values parsed while checking them.
    parsed: Parsed,
    /// Storage volumes by name: their namespace and index in `storage.volumes`.
    volumes: HashMap<&'a str, (&'a str, usize)>,
}

fn root() -> FieldPath {
    FieldPath::root()
}

impl<'a> Checker<'a> {
    fn run(&mut self) {
        self.header();
        self.cluster();
        self.storage();
        self.registry();
        self.elasticsearch();
        self.cortex();
        self.rbac();
        self.tenants();
        self.tenant_database_server();
        self.tenant_databases();
        self.scan_database();
        self.alerts();
        self.watch();
        self.certificates();
        self.operators();
    }

    fn report(&mut self, path: FieldPath, problem: Problem) {
        let location = self.source.value_location(&path);
        self.found.push(Diagnostic {
            location,
            path: Some(path),
            message: problem.message,
            hint: problem.hint,
            at_key: false,
            secret: false,
        });
    }

    fn complain(&mut self, path: FieldPath, message: impl Into<String>, hint: impl Into<String>) {
        self.report(path, Problem { message: message.into(), hint: Some(hint.into()) });
    }

    /// Reports a problem whose value is a secret: its line is shown with the value masked.
    fn complain_secret(&mut self, path: FieldPath, message: impl Into<String>, hint: impl Into<String>) {
        self.complain(path, message, hint);
        if let Some(last) = self.found.last_mut() {
            last.secret = true;
        }
    }

    fn check<T>(&mut self, path: FieldPath, result: Result<T, Problem>) -> Option<T> {
        result.map_err(|problem| self.report(path, problem)).ok()
    }

    fn namespace(&self, explicit: &'a Option<String>) -> &'a str {
        self.file.namespace_or_default(explicit)
    }

    fn optional_namespace(&mut self, path: FieldPath, namespace: &Option<String>) {
        if let Some(ns) = namespace {
            self.check(path, fields::dns_label(ns));
        }
    }

    fn secret(&mut self, path: FieldPath, secret: &Option<SecretSource>) {
        match secret {
            Some(SecretSource::Literal) => self.complain_secret(
                path.clone(),
                format!("`{path}` holds a secret written in the file"),
                "secrets are never written in the file: use `env:VAR`, `file:PATH`, or `secretRef: {name: <secret>, key: <key>}`",
            ),
            Some(SecretSource::SecretRef(reference)) => {
                self.check(path.key("secretRef").key("name"), fields::dns_subdomain(&reference.name));
                if reference.key.is_empty() {
                    self.complain(path.key("secretRef").key("key"), "the secret key is empty", "name the key within the Secret's data");
                }
            }
            Some(SecretSource::Env(var)) if !is_env_name(var) => self.complain(
                path.clone(),
                if var.is_empty() {
                    "`env:` names no environment variable".to_owned()
                } else {
                    format!("`env:{var}` does not name an environment variable")
                },
                "write `env:NAME`, NAME of letters, digits and `_`, not starting with a digit",
            ),
            Some(SecretSource::File(file)) if file.is_empty() => {
                self.complain(path.clone(), "`file:` names no file", "write `file:PATH`, relative to this file")
            }
            Some(reference @ (SecretSource::Env(_) | SecretSource::File(_))) => {
                self.references.push((path, reference.clone()));
            }
            None => {}
        }
    }

    /// Checks a workload's `nodeSelector`, `tolerations` and `resources` under `path`.
    fn placement(&mut self, path: &FieldPath, placement: Placement<'_>) {
        for (at, problem, at_key) in placement.problems(path) {
            let key_location = at_key.then(|| self.source.key_location(&at));
            self.report(at, problem);
            if let (Some(location), Some(last)) = (key_location, self.found.last_mut()) {
                last.location = location;
                last.at_key = true;
            }
        }
    }

    /// Checks that `name` is a storage volume in `namespace`, where `consumer` runs.
    fn volume_ref(&mut self, path: FieldPath, name: &str, namespace: &str, consumer: &str) {
        match self.volumes.get(name) {
            None => {
                let names: Vec<&str> = self.volumes.keys().copied().collect();
                let hint = match suggest(name, names.iter().copied()) {
                    Some(close) => format!("did you mean `{close}`? Volumes are declared under `storage.volumes`"),
                    None if names.is_empty() => "declare the volume under `storage.volumes`".to_owned(),
                    None => format!("declare it under `storage.volumes`, or use one of: {}", sorted(names).join(", ")),
                };
                self.complain(path, format!("{consumer} uses storage volume `{name}`, which is not declared"), hint);
            }
            Some(&(volume_ns, index)) if volume_ns != namespace => self.complain(
                // Point at what the user wrote: the reference, or else the volume's namespace.
                if self.source.contains(&path) { path } else { root().key("storage").key("volumes").index(index).key("namespace") },
                format!("{consumer} runs in namespace `{namespace}`, but storage volume `{name}` is claimed in `{volume_ns}`"),
                format!("a claim can only be mounted in its own namespace: set the volume's `namespace` to `{namespace}`"),
            ),
            Some(_) => {}
        }
    }

    fn header(&mut self) {
        if self.file.api_version != API_VERSION {
            self.complain(
                root().key("apiVersion"),
                format!("unsupported apiVersion `{}`", self.file.api_version),
                format!("this seclab reads `apiVersion: {API_VERSION}`"),
            );
        }
        if self.file.kind != KIND {
            self.complain(
                root().key("kind"),
                format!("unsupported kind `{}`", self.file.kind),
                "a desired-state file declares `kind: Lab`",
            );
        }
        self.check(root().key("metadata").key("name"), fields::dns_label(&self.file.metadata.name));
    }

    fn cluster(&mut self) {
        let cluster = &self.file.cluster;
        let path = root().key("cluster");
        self.check(path.key("domain"), fields::dns_subdomain(&cluster.domain));
        self.check(path.key("clusterDomain"), fields::dns_subdomain(&cluster.cluster_domain));
        self.check(path.key("namespace"), fields::dns_label(&cluster.namespace));
        if let Some(class) = &cluster.ingress_class {
            self.check(path.key("ingressClass"), fields::dns_subdomain(class));
        }
        if let Some(address) = &cluster.node_address
            && address.parse::<IpAddr>().is_err()
        {
            self.complain(
                path.key("nodeAddress"),
                format!("`{address}` is not an IP address"),
                "give the node's address, e.g. `192.168.1.20`",
            );
        }
        for (index, rule) in cluster.readiness.iter().enumerate() {
            let at = path.key("readiness").index(index);
            let ways =
                usize::from(rule.condition.is_some()) + usize::from(rule.field.is_some()) + usize::from(rule.always);
            if ways != 1 {
                self.complain(
                    at.clone(),
                    format!("the readiness rule for {} sets {ways} ways to be ready", rule.kind),
                    "set exactly one of `condition`, `field` (with `values`) or `always: true`",
                );
            } else if rule.field.is_some() && rule.values.is_empty() {
                self.complain(at.key("values"), "`field` needs `values`", "list the values that mean ready");
            }
        }
        if cluster.context.as_deref() == Some("") {
            self.complain(
                path.key("context"),
                "the context is empty",
                "name a context from your kubeconfig, or remove the field",
            );
        }
    }

    fn storage(&mut self) {
        let file = self.file;
        let mut first: HashMap<&str, usize> = HashMap::new();
        for (i, volume) in file.storage.volumes.iter().enumerate() {
            let path = root().key("storage").key("volumes").index(i);
            self.check(path.key("name"), fields::dns_label(&volume.name));
            self.duplicate(&mut first, &volume.name, i, path.key("name"), "storage volume");
            self.optional_namespace(path.key("namespace"), &volume.namespace);
            self.check(path.key("size"), fields::quantity(&volume.size));
            if let Some(host_path) = &volume.host_path {
                self.check(path.key("hostPath"), fields::absolute_path(host_path));
            }
            if let Some(class) = &volume.storage_class {
                self.check(path.key("storageClass"), fields::dns_subdomain(class));
            }
            if let Some(node) = &volume.node {
                self.check(path.key("node"), fields::dns_subdomain(node));
                if volume.host_path.is_none() {
                    self.complain(
                        path.key("node"),
                        "`node` only applies to hostPath volumes",
                        "remove `node`, or set `hostPath`",
                    );
                }
            }
            let namespace = self.namespace(&volume.namespace);
            self.volumes.entry(&volume.name).or_insert((namespace, i));
        }
    }

    /// Reports the second and later uses of a name that must be unique; `path` is the name field.
    fn duplicate<'n>(
        &mut self,
        first: &mut HashMap<&'n str, usize>,
        name: &'n str,
        index: usize,
        path: FieldPath,
        what: &str,
    ) {
        let Some(&earlier) = first.get(name) else {
            first.insert(name, index);
            return;
        };
        let list = path.parent().and_then(|item| item.parent()).unwrap_or_default();
        let hint = match self.source.value_location(&list.index(earlier)) {
            Some(at) => format!("the first is at line {}; names must be unique", at.line),
            None => "names must be unique".to_owned(),
        };
        self.complain(path, format!("{what} `{name}` is declared twice"), hint);
    }

    fn registry(&mut self) {
        let registry = &self.file.registry;
        if !registry.enabled {
            return;
        }
        let path = root().key("registry");
        self.optional_namespace(path.key("namespace"), &registry.namespace);
        if let Some(host) = &registry.host {
            self.check(path.key("host"), fields::dns_subdomain(host));
        }
        not_empty(self, path.key("image"), &registry.image, "an image such as `registry:2`");
        let namespace = self.namespace(&registry.namespace);
        self.volume_ref(path.key("volume"), &registry.volume, namespace, "the registry");
        self.placement(&path, registry.placement());
    }

    fn elasticsearch(&mut self) {
        let es = &self.file.elasticsearch;
        if !es.enabled {
            return;
        }
        let path = root().key("elasticsearch");
        self.check(path.key("name"), fields::dns_label(&es.name));
        self.optional_namespace(path.key("namespace"), &es.namespace);
        if let Some(version) = &es.version
            && !is_version(version)
        {
            self.complain(
                path.key("version"),
                format!("`{version}` is not a version"),
                "write a release number such as `7.10.2`",
            );
        }
        if es.nodes == 0 {
            self.complain(path.key("nodes"), "`nodes` is 0", "a search cluster needs at least one node");
        }
        self.placement(&path, es.placement());
        let resources = es.resources().unwrap_or_default();
        if let (Some(options), Some(memory)) = (&es.java_opts, resources.memory_bytes())
            && placement::max_heap(options).is_some_and(|heap| heap >= memory)
        {
            let quantity = resources.limits.get("memory").or(resources.requests.get("memory"));
            self.complain(
                path.key("javaOpts"),
                format!(
                    "the heap in `{options}` does not fit the node's memory, {}",
                    quantity.map(String::as_str).unwrap_or_default()
                ),
                "the JVM needs memory beyond its heap: give the heap about half of `resources.limits.memory`, or leave `javaOpts` unset to have it so",
            );
        }
        self.check(path.key("storageSize"), fields::quantity(&es.storage_size));
        if let Some(class) = &es.storage_class {
            self.check(path.key("storageClass"), fields::dns_subdomain(class));
        }
        match es.mode {
            SearchEngine::Eck => {
                for (field, set) in [("adminPassword", es.admin_password.is_some()), ("volume", es.volume.is_some())] {
                    if set {
                        self.complain(
                            path.key(field),
                            format!("`{field}` only applies to `mode: opensearch`"),
                            "ECK manages its own users and storage: remove the field, or set `mode: opensearch`",
                        );
                    }
                }
            }
            SearchEngine::Opensearch => {
                not_empty(self, path.key("image"), &es.image, "an image such as `opensearchproject/opensearch`");
                if let Some(SecretSource::SecretRef(_)) = &es.admin_password {
                    self.complain(
                        path.key("adminPassword"),
                        "seclab writes OpenSearch's users file with a hash of this password, so it must read it itself",
                        "use `env:VAR` or `file:PATH`, or leave it unset to have one generated",
                    );
                } else {
                    self.secret(path.key("adminPassword"), &es.admin_password);
                }
                if let Some(volume) = &es.volume {
                    let namespace = self.namespace(&es.namespace);
                    self.volume_ref(path.key("volume"), volume, namespace, "OpenSearch");
                }
            }
        }
    }

    fn cortex(&mut self) {
        let cortex = &self.file.cortex;
        if !cortex.enabled {
            return;
        }
        let path = root().key("cortex");
        self.optional_namespace(path.key("namespace"), &cortex.namespace);
        self.placement(&path, cortex.placement());
        let namespace = self.namespace(&cortex.namespace);
        let es = &self.file.elasticsearch;
        if !es.enabled {
            self.complain(
                root().key("elasticsearch").key("enabled"),
                "Cortex needs Elasticsearch, but `elasticsearch.enabled` is false",
                "enable `elasticsearch`, or set `cortex.enabled: false`",
            );
        } else if self.namespace(&es.namespace) != namespace {
            self.complain(
                path.key("namespace"),
                format!(
                    "Cortex runs in namespace `{namespace}`, but Elasticsearch in `{}`; Cortex reads its credentials from Secrets there",
                    self.namespace(&es.namespace)
                ),
                "give `cortex.namespace` and `elasticsearch.namespace` the same value",
            );
        }
        if let Some(host) = &cortex.host {
            self.check(path.key("host"), fields::dns_subdomain(host));
        }
        if let Some(image) = &cortex.image {
            not_empty(self, path.key("image"), image, "an image such as `thehiveproject/cortex:3.2.0-1`");
        }
        // A package revision may follow the release, as in Cortex's image tags (`3.2.0-1`).
        let (release, revision) = cortex.version.split_once('-').unwrap_or((&cortex.version, "1"));
        if !is_version(release) || revision.is_empty() || !revision.bytes().all(|b| b.is_ascii_digit()) {
            self.complain(
                path.key("version"),
                format!("`{}` is not a version", cortex.version),
                "write a release number such as `3.2.0`, or with its image's package revision, `3.2.0-1`",
            );
        }
        if cortex.replicas == 0 {
            self.complain(
                path.key("replicas"),
                "`replicas` is 0",
                "run at least one Cortex pod, or set `cortex.enabled: false`",
            );
        }
        if es.enabled && is_version(&cortex.version) && es.version.as_deref().is_none_or(is_version) {
            self.cortex_and_search_engine();
        }
        self.volume_ref(path.key("jobVolume"), &cortex.job_volume, namespace, "Cortex's job runner");
        self.check(path.key("jobDirectory"), fields::absolute_path(&cortex.job_directory));
        self.secret(path.key("secretKey"), &cortex.secret_key);
    }

    fn rbac(&mut self) {
        let rbac = &self.file.rbac;
        let path = root().key("rbac");
        let mut accounts: HashMap<(String, String), usize> = HashMap::new();
        if self.file.cortex.enabled {
            accounts.insert((self.namespace(&self.file.cortex.namespace).to_owned(), "cortex".to_owned()), usize::MAX);
        }
        for (i, account) in rbac.service_accounts.iter().enumerate() {
            let item = path.key("serviceAccounts").index(i);
            self.check(item.key("name"), fields::dns_subdomain(&account.name));
            self.optional_namespace(item.key("namespace"), &account.namespace);
            let key = (self.namespace(&account.namespace).to_owned(), account.name.clone());
            if accounts.insert(key, i).is_some() {
                self.complain(
                    item.key("name"),
                    format!(
                        "service account `{}` is declared twice in namespace `{}`",
                        account.name,
                        self.namespace(&account.namespace)
                    ),
                    "names must be unique per namespace (Cortex's own account is `cortex`)",
                );
            }
        }
        let mut roles: HashMap<(String, String), usize> = HashMap::new();
        for (i, role) in rbac.roles.iter().enumerate() {
            let item = path.key("roles").index(i);
            self.check(item.key("name"), fields::dns_subdomain(&role.name));
            self.optional_namespace(item.key("namespace"), &role.namespace);
            self.rules(item.key("rules"), &role.rules);
            if roles.insert((self.namespace(&role.namespace).to_owned(), role.name.clone()), i).is_some() {
                self.complain(
                    item.key("name"),
                    format!("role `{}` is declared twice", role.name),
                    "names must be unique per namespace",
                );
            }
        }
        let mut cluster_roles: HashMap<&str, usize> = HashMap::new();
        for (i, role) in rbac.cluster_roles.iter().enumerate() {
            let item = path.key("clusterRoles").index(i);
            self.check(item.key("name"), fields::dns_subdomain(&role.name));
            self.rules(item.key("rules"), &role.rules);
            self.duplicate(&mut cluster_roles, &role.name, i, item.key("name"), "cluster role");
        }
        for (i, binding) in rbac.bindings.iter().enumerate() {
            let item = path.key("bindings").index(i);
            self.binding(item, binding, &accounts, &roles, &cluster_roles);
        }
    }

    fn rules(&mut self, path: FieldPath, rules: &[Rule]) {
        if rules.is_empty() {
            self.complain(path.clone(), "the role has no rules", "add at least one rule with `resources` and `verbs`");
        }
        for (i, rule) in rules.iter().enumerate() {
            let item = path.index(i);
            if rule.resources.is_empty() {
                self.complain(
                    item.key("resources"),
                    "the rule names no resources",
                    "list resources such as `pods` or `jobs`",
                );
            }
            if rule.verbs.is_empty() {
                self.complain(
                    item.key("verbs"),
                    "the rule names no verbs",
                    "list verbs such as `get`, `list`, `watch`",
                );
            }
            for (j, verb) in rule.verbs.iter().enumerate() {
                if !VERBS.contains(&verb.as_str()) {
                    let hint = match suggest(verb, VERBS) {
                        Some(close) => format!("did you mean `{close}`?"),
                        None => format!("use one of: {}", VERBS.join(", ")),
                    };
                    self.complain(item.key("verbs").index(j), format!("unknown verb `{verb}`"), hint);
                }
            }
        }
    }

    fn binding(
        &mut self,
        path: FieldPath,
        binding: &Binding,
        accounts: &HashMap<(String, String), usize>,
        roles: &HashMap<(String, String), usize>,
        cluster_roles: &HashMap<&str, usize>,
    ) {
        self.check(path.key("name"), fields::dns_subdomain(&binding.name));
        self.optional_namespace(path.key("namespace"), &binding.namespace);
        let namespace = self.namespace(&binding.namespace);
        match (&binding.role, &binding.cluster_role) {
            (Some(_), Some(_)) | (None, None) => self.complain(
                path.clone(),
                format!("binding `{}` must name exactly one of `role` and `clusterRole`", binding.name),
                "set `role` for a Role in the binding's namespace, or `clusterRole`",
            ),
            (Some(role), None) => {
                if binding.cluster_wide {
                    self.complain(
                        path.key("clusterWide"),
                        "a cluster-wide binding must name a `clusterRole`",
                        "replace `role` with `clusterRole`",
                    );
                }
                if !roles.contains_key(&(namespace.to_owned(), role.clone())) {
                    let names: Vec<&str> =
                        roles.keys().filter(|(ns, _)| ns == namespace).map(|(_, n)| n.as_str()).collect();
                    let hint = match suggest(role, names.iter().copied()) {
                        Some(close) => format!("did you mean `{close}`?"),
                        None => format!("declare it under `rbac.roles` in namespace `{namespace}`"),
                    };
                    self.complain(
                        path.key("role"),
                        format!("role `{role}` is not declared in namespace `{namespace}`"),
                        hint,
                    );
                }
            }
            (None, Some(role)) => {
                if !cluster_roles.contains_key(role.as_str()) && !BUILTIN_CLUSTER_ROLES.contains(&role.as_str()) {
                    let known = cluster_roles.keys().copied().chain(BUILTIN_CLUSTER_ROLES);
                    let hint = match suggest(role, known) {
                        Some(close) => format!("did you mean `{close}`?"),
                        None => {
                            "declare it under `rbac.clusterRoles`, or use `view`, `edit`, `admin` or `cluster-admin`"
                                .to_owned()
                        }
                    };
                    self.complain(path.key("clusterRole"), format!("cluster role `{role}` is not declared"), hint);
                }
            }
        }
        if binding.service_accounts.is_empty() && binding.users.is_empty() && binding.groups.is_empty() {
            self.complain(
                path.clone(),
                format!("binding `{}` has no subjects", binding.name),
                "list `serviceAccounts`, `users` or `groups`",
            );
        }
        for (i, account) in binding.service_accounts.iter().enumerate() {
            let (ns, name) = account.split_once('/').unwrap_or((namespace, account));
            if !accounts.contains_key(&(ns.to_owned(), name.to_owned())) {
                self.complain(
                    path.key("serviceAccounts").index(i),
                    format!("service account `{name}` is not declared in namespace `{ns}`"),
                    "declare it under `rbac.serviceAccounts`, or write `namespace/name`",
                );
            }
        }
    }

    fn tenants(&mut self) {
        let file = self.file;
        let mut first: HashMap<&str, usize> = HashMap::new();
        for (i, tenant) in file.tenants.iter().enumerate() {
            let path = root().key("tenants").index(i);
            self.check(path.key("name"), fields::dns_label(&tenant.name));
            self.duplicate(&mut first, &tenant.name, i, path.key("name"), "tenant");
            self.optional_namespace(path.key("namespace"), &tenant.namespace);
            let namespace = self.namespace(&tenant.namespace);
            if let Some(image) = &tenant.image {
                not_empty(
                    self,
                    path.key("image"),
                    image,
                    "an image such as `registry.k.my.domain/netdelta/barbican:1.0`",
                );
            }
            if tenant.port == 0 {
                self.complain(
                    path.key("port"),
                    "port 0 is not a port",
                    "give the port the app listens on, e.g. `9004`",
                );
            }
            // Netdelta takes `<site> <port>` first and serves the site under `/<site>`
            // (the seed's `args: ["barbican", "9004", ...]`), where the Ingress routes `/<name>`.
            let args = tenant.args.as_deref().unwrap_or_default();
            if let Some(site) = args.first()
                && *site != tenant.name
            {
                self.complain(
                    path.key("args").index(0),
                    format!(
                        "the app would serve site `{site}` under `/{site}`, but the Ingress routes `/{}` to it",
                        tenant.name
                    ),
                    format!("make the first argument `{}`, the tenant's name", tenant.name),
                );
            }
            if let Some(port) = args.get(1)
                && port.parse::<u16>().is_ok_and(|p| p != tenant.port)
            {
                self.complain(
                    path.key("args").index(1),
                    format!(
                        "the app would listen on port {port}, but its Service and probe use `port: {}`",
                        tenant.port
                    ),
                    format!("make the second argument `\"{}\"`, or set `port: {port}`", tenant.port),
                );
            }
            if let Some(host) = &tenant.host {
                self.check(path.key("host"), fields::dns_subdomain(host));
            }
            if let Some(ready) = &tenant.readiness_path
                && !ready.starts_with('/')
            {
                self.complain(
                    path.key("readinessPath"),
                    format!("`{ready}` is not a path"),
                    "write the path the app answers 200 on when ready, starting with `/`, e.g. `/healthz`",
                );
            }
            for (j, mount) in tenant.volumes.iter().enumerate() {
                let item = path.key("volumes").index(j);
                self.volume_ref(item.key("volume"), &mount.volume, namespace, &format!("tenant `{}`", tenant.name));
                self.check(item.key("mountPath"), fields::absolute_path(&mount.mount_path));
                if let Some(sub) = &mount.sub_path
                    && (sub.starts_with('/') || sub.split('/').any(|part| part == ".."))
                {
                    self.complain(
                        item.key("subPath"),
                        format!("`{sub}` leaves the volume"),
                        "use a relative path without `..`",
                    );
                }
            }
            self.tenant_database(path.key("database"), tenant);
            self.placement(&path, tenant.placement());
            for (key, value) in &tenant.env {
                self.env_var(path.key("env").key(key), key, value);
            }
            self.scans(&path, tenant, namespace);
        }
    }

    fn tenant_database(&mut self, path: FieldPath, tenant: &Tenant) {
        let db = &tenant.database;
        if let Some(name) = &db.name
            && (name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'))
        {
            self.complain(
                path.key("name"),
                format!("`{name}` is not a database name"),
                "use letters, digits, `_` and `-`",
            );
        }
        if let Some(host) = &db.host {
            not_empty(self, path.key("host"), host, "the database's Service or host name");
        }
        self.secret(path.key("password"), &db.password);
        let mut seen: HashMap<&str, &str> = HashMap::new();
        for (field, name) in db.variables.fields() {
            let at = path.key("variables").key(field);
            if !is_env_name(name) {
                self.complain(
                    at,
                    format!("`{name}` is not an environment variable name"),
                    "use letters, digits and `_`, not starting with a digit",
                );
            } else if let Some(other) = seen.insert(name, field) {
                self.complain(
                    at,
                    format!("`{name}` already holds the database's {other}"),
                    "give each database variable a name of its own",
                );
            } else if tenant.env.contains_key(name) {
                self.complain(
                    at,
                    format!("`{name}` is also set in the tenant's `env`"),
                    "remove it from `env`: seclab sets it to the database's value",
                );
            }
        }
    }

    fn env_var(&mut self, path: FieldPath, key: &str, value: &str) {
        if !is_env_name(key) {
            self.complain(
                path.clone(),
                format!("`{key}` is not an environment variable name"),
                "use letters, digits and `_`, not starting with a digit",
            );
        }
        let upper = key.to_ascii_uppercase();
        let secret_like =
            ["PASSWORD", "PASSWD", "SECRET", "TOKEN", "PRIVATE_KEY", "API_KEY"].iter().any(|word| upper.contains(word));
        if secret_like && !value.is_empty() {
            self.complain_secret(
                path,
                format!("environment variable `{key}` looks like a secret written in the file"),
                "secrets are never written in the file: put the database password in `database.password` as `env:VAR`, `file:PATH` or `secretRef`",
            );
        }
    }

    fn scans(&mut self, tenant_path: &FieldPath, tenant: &Tenant, namespace: &str) {
        let routes: Vec<&str> = self.route_names();
        let mut first: HashMap<&str, usize> = HashMap::new();
        for (i, group) in tenant.scans.iter().enumerate() {
            let path = tenant_path.key("scans").index(i);
            self.check(path.key("name"), fields::dns_label(&group.name));
            self.duplicate(&mut first, &group.name, i, path.key("name"), "scan group");
            let cron_job = format!("{}-{}-scan", tenant.name, group.name);
            if cron_job.len() > MAX_CRONJOB_NAME {
                self.complain(
                    path.key("name"),
                    format!("the CronJob name `{cron_job}` is longer than {MAX_CRONJOB_NAME} characters"),
                    "shorten the tenant or group name",
                );
            }
            if group.targets.is_empty() {
                self.complain(
                    path.key("targets"),
                    "the group has no targets",
                    "list addresses, CIDRs, ranges or host names to scan",
                );
            }
            for (j, target) in group.targets.iter().enumerate() {
                self.check(path.key("targets").index(j), Target::parse(target));
            }
            for (j, target) in group.exclude.iter().enumerate() {
                self.check(path.key("exclude").index(j), Target::parse(target));
            }
            if let Some(ports) = &group.ports {
                self.check(path.key("ports"), fields::port_list(ports));
            }
            if self.check(path.key("timeout"), fields::duration(&group.timeout)).is_some_and(|t| t.as_secs() < 60) {
                self.complain(
                    path.key("timeout"),
                    format!("a scan timeout of `{}` is shorter than a minute", group.timeout),
                    "give nmap time to finish: at least `1m`, e.g. `2h`",
                );
            }
            self.check(path.key("schedule"), fields::cron_schedule(&group.schedule));
            if let Some(zone) = &group.time_zone {
                self.check(path.key("timeZone"), fields::time_zone(zone));
            }
            if group.down_after == 0 {
                self.complain(
                    path.key("downAfter"),
                    "`downAfter` is 0",
                    "count a host as down after at least 1 missed scan (3 suppresses time-outs)",
                );
            }
            for (j, route) in group.alerts.iter().flatten().enumerate() {
                self.route_ref(path.key("alerts").index(j), route, &routes);
            }
            self.nmap_args(path.key("nmapArgs"), &group.nmap_args);
            not_empty(
                self,
                path.key("image"),
                &group.image,
                "an image with nmap and a shell, such as `instrumentisto/nmap:7.98`",
            );
        }
        if !tenant.scans.is_empty() {
            let volume = &self.file.scan_database.scan_volume;
            self.volume_ref(
                root().key("scanDatabase").key("scanVolume"),
                volume,
                namespace,
                &format!("the scans of tenant `{}`", tenant.name),
            );
        }
    }

    fn nmap_args(&mut self, path: FieldPath, args: &[String]) {
        for (i, arg) in args.iter().enumerate() {
            self.check(path.index(i), nmap_options::check(arg));
        }
    }

    fn route_names(&self) -> Vec<&'a str> {
        let file = self.file;
        file.alerts.routes.iter().map(|r| r.name.as_str()).chain(["log"]).collect()
    }

    fn route_ref(&mut self, path: FieldPath, route: &str, routes: &[&str]) {
        if !routes.contains(&route) {
            let hint = match suggest(route, routes.iter().copied()) {
                Some(close) => format!("did you mean `{close}`?"),
                None => format!("declare it under `alerts.routes`, or use one of: {}", routes.join(", ")),
            };
            self.complain(path, format!("alert route `{route}` is not declared"), hint);
        }
    }

    fn tenant_database_server(&mut self) {
        let Some(server) = &self.file.tenant_database else { return };
        let path = root().key("tenantDatabase");
        match server.mode {
            DatabaseMode::InCluster => {
                self.check(path.key("name"), fields::dns_label(&server.name));
                self.optional_namespace(path.key("namespace"), &server.namespace);
                self.secret(path.key("rootPassword"), &server.root_password);
                self.placement(&path, server.placement());
                if let Some(volume) = &server.volume {
                    let namespace = self.namespace(&server.namespace);
                    self.volume_ref(path.key("volume"), volume, namespace, "the tenant database server");
                }
                if server.url.is_some() {
                    self.complain(
                        path.key("url"),
                        "`url` is for `mode: external`",
                        "remove it, or set `mode: external` to use a server you already run",
                    );
                }
            }
            DatabaseMode::External => {
                match &server.url {
                    None => self.complain(
                        path.key("mode"),
                        "`mode: external` needs the server's `url`",
                        "add `url: env:VAR` (or `file:PATH`) holding `mysql://USER:PASSWORD@HOST:PORT`",
                    ),
                    Some(SecretSource::SecretRef(_)) => self.complain(
                        path.key("url"),
                        "seclab connects to an external server itself and cannot read the url from a Secret",
                        "use `env:VAR` or `file:PATH`",
                    ),
                    Some(SecretSource::Literal) => self.complain_secret(
                        path.key("url"),
                        "`tenantDatabase.url` holds a secret written in the file",
                        "put the URL, with its password, in an environment variable or a file: `url: env:VAR` or `url: file:PATH`",
                    ),
                    Some(SecretSource::Env(_) | SecretSource::File(_)) => {}
                }
                if server.host.is_none() {
                    self.complain(
                        path.key("mode"),
                        "`mode: external` needs the `host` the tenants' apps reach the server by",
                        "add `host: <name>` (a DNS name the cluster resolves)",
                    );
                }
            }
        }
        if let Some(host) = &server.host {
            self.check(path.key("host"), fields::dns_subdomain(host));
        }
        if server.port == 0 {
            self.complain(path.key("port"), "port 0 is not a port", "leave it unset for MySQL's 3306");
        }
    }

    /// With a `tenantDatabase` server, each tenant's database and user are seclab's to create:
    /// they must be unique, fit MySQL's limits, and have a password seclab can use.
    fn tenant_databases(&mut self) {
        let file = self.file;
        let Some(server) = &file.tenant_database else { return };
        let mut databases: HashMap<String, usize> = HashMap::new();
        let mut users: HashMap<String, usize> = HashMap::new();
        for (i, tenant) in file.tenants.iter().enumerate() {
            let path = root().key("tenants").index(i);
            let db = file.tenant_database_of(tenant);
            let at = |field: &str, written: bool| {
                if written { path.key("database").key(field) } else { path.key("name") }
            };
            let name_at = at("name", tenant.database.name.is_some());
            let user_at = at("user", tenant.database.user.is_some());
            // The server's own schemas, and seclab's record of what it made.
            const RESERVED: [&str; 5] = ["seclab", "mysql", "sys", "performance_schema", "information_schema"];
            if db.name.len() > 64 || RESERVED.iter().any(|r| r.eq_ignore_ascii_case(&db.name)) {
                self.complain(
                    name_at.clone(),
                    format!("`{}` cannot be a tenant's database name", db.name),
                    "MySQL database names have at most 64 characters, and `mysql`, `sys`, `performance_schema`, `information_schema` and `seclab` are the server's and seclab's own; set `database.name`",
                );
            }
            // The setup Job sets each tenant user's password and revokes its other rights.
            if ["root", "public"].iter().any(|r| r.eq_ignore_ascii_case(&db.user)) {
                self.complain(
                    user_at.clone(),
                    format!(
                        "`{}` cannot be a tenant's database user: seclab would reset its password and rights",
                        db.user
                    ),
                    "set `database.user` to a user of the tenant's own",
                );
            }
            if db.user.len() > 32
                || db.user.is_empty()
                || !db.user.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            {
                self.complain(
                    user_at.clone(),
                    format!("`{}` cannot be a tenant's database user", db.user),
                    "MySQL user names have at most 32 letters, digits, `_` or `-`; set `database.user`",
                );
            }
            for (seen, value, at, what) in
                [(&mut databases, &db.name, name_at, "database"), (&mut users, &db.user, user_at, "database user")]
            {
                match seen.get(value) {
                    Some(&earlier) => self.complain(
                        at,
                        format!(
                            "tenants `{}` and `{}` both use the {what} `{value}`",
                            file.tenants[earlier].name, tenant.name
                        ),
                        "each tenant gets a database and a user of its own: set `database.name` and `database.user`",
                    ),
                    None => {
                        seen.insert(value.clone(), i);
                    }
                }
            }
            let password = path.key("database").key("password");
            if server.mode == DatabaseMode::External
                && matches!(tenant.database.password, Some(SecretSource::SecretRef(_)))
            {
                self.complain(
                    password.clone(),
                    "seclab sets the user's password on an external server and cannot read it from a Secret",
                    "use `env:VAR` or `file:PATH`, or leave it unset to have one generated",
                );
            }
            let server_namespace = self.namespace(&server.namespace);
            let namespace = self.namespace(&tenant.namespace);
            if server.mode == DatabaseMode::InCluster && namespace != server_namespace {
                self.complain(
                    path.key("namespace"),
                    format!("tenant `{}` is in namespace `{namespace}`, its database server in `{server_namespace}`", tenant.name),
                    "the Job that creates the users reads their passwords from Secrets of its own namespace: put them in one namespace",
                );
            }
        }
    }

    fn scan_database(&mut self) {
        let db = &self.file.scan_database;
        let path = root().key("scanDatabase");
        not_empty(self, path.key("path"), &db.path, "a file name such as `seclab-scans.db`");
        self.secret(path.key("url"), &db.url);
    }

    fn alerts(&mut self) {
        let file = self.file;
        let path = root().key("alerts");
        let mut first: HashMap<&str, usize> = HashMap::new();
        for (i, route) in file.alerts.routes.iter().enumerate() {
            let item = path.key("routes").index(i);
            self.check(item.key("name"), fields::dns_label(&route.name));
            if route.name == "log" {
                self.complain(
                    item.key("name"),
                    "the route name `log` is built in",
                    "choose another name; scan groups can always use `log`",
                );
            }
            self.duplicate(&mut first, &route.name, i, item.key("name"), "alert route");
            let kinds = [route.webhook.is_some(), route.email.is_some(), route.log.is_some()];
            if kinds.iter().filter(|set| **set).count() != 1 {
                self.complain(
                    item.clone(),
                    format!("alert route `{}` must have exactly one of `webhook`, `email` and `log`", route.name),
                    "split it into one route per destination",
                );
            }
            if let Some(webhook) = &route.webhook {
                if let Err(problem) = fields::webhook_url(&webhook.url) {
                    let url = item.key("webhook").key("url");
                    let hint = problem.hint.unwrap_or_default();
                    // The URL may hold credentials: never show it.
                    self.complain_secret(url, problem.message, hint);
                }
                self.secret(item.key("webhook").key("secret"), &webhook.secret);
            }
            if let Some(email) = &route.email {
                self.email(item.key("email"), email);
            }
        }
        let routes = self.route_names();
        for (i, route) in file.alerts.default_routes.iter().enumerate() {
            self.route_ref(path.key("defaultRoutes").index(i), route, &routes);
        }
    }

    fn email(&mut self, path: FieldPath, email: &Email) {
        if email.to.is_empty() {
            self.complain(path.key("to"), "the email route has no recipients", "list at least one address in `to`");
        }
        for (i, to) in email.to.iter().enumerate() {
            self.check(path.key("to").index(i), fields::email_address(to));
        }
        self.check(path.key("from"), fields::email_address(&email.from));
        let host = &email.smtp.host;
        if host.parse::<IpAddr>().is_err() {
            self.check(path.key("smtp").key("host"), fields::dns_subdomain(host));
        }
        if email.smtp.port == 0 {
            self.complain(path.key("smtp").key("port"), "port 0 is not a port", "use 587 (STARTTLS), 465 (TLS) or 25");
        }
        self.secret(path.key("smtp").key("password"), &email.smtp.password);
        if email.smtp.username.is_some() && email.smtp.tls == SmtpTls::None && !fields::is_loopback(host) {
            self.complain(
                path.key("smtp").key("tls"),
                format!("`tls: none` would send the SMTP login to {host} in clear"),
                "use `tls: starttls` (port 587) or `tls: tls` (port 465), or a relay on this machine",
            );
        }
    }

    fn watch(&mut self) {
        let watch = &self.file.watch;
        let path = root().key("watch");
        match watch.listen.parse::<SocketAddr>() {
            Ok(listen) => self.parsed.listen = listen,
            Err(_) => self.complain(
                path.key("listen"),
                format!("`{}` is not an address and port", watch.listen),
                "write `address:port`, e.g. `127.0.0.1:9464`",
            ),
        }
        if let Some(every) = self.check(path.key("resyncInterval"), fields::duration(&watch.resync_interval)) {
            self.parsed.resync_interval = every;
        }
        if let Some(quiet) = self.check(path.key("debounce"), fields::duration(&watch.debounce)) {
            self.parsed.debounce = quiet;
        }
        if let Some(SecretSource::SecretRef(_)) = &watch.token {
            self.complain(
                path.key("token"),
                "watch reads its token itself, before any cluster is reached",
                "use `env:VAR` or `file:PATH`",
            );
        } else {
            self.secret(path.key("token"), &watch.token);
        }
    }
}

impl Checker<'_> {
    fn operators(&mut self) {
        let file = self.file;
        let mut first: HashMap<&str, usize> = HashMap::new();
        for (index, operator) in file.operators.iter().enumerate() {
            let path = root().key("operators").index(index);
            // Its set is labelled `app.kubernetes.io/part-of: operator-<name>` (63 characters at most).
            if self.check(path.key("name"), fields::dns_label(&operator.name)).is_some() && operator.name.len() > 54 {
                self.complain(path.key("name"), "the name is longer than 54 characters", "shorten it");
            }
            self.duplicate(&mut first, &operator.name, index, path.key("name"), "operator");
            self.check(path.key("manifest"), fields::manifest_source(&operator.manifest));
            if let Some(digest) = &operator.sha256
                && (digest.len() != 64 || !digest.bytes().all(|b| b.is_ascii_hexdigit()))
            {
                self.complain(
                    path.key("sha256"),
                    format!("`{digest}` is not a SHA-256 digest"),
                    "write the 64 hex digits `sha256sum` prints, or the digest `seclab bootstrap` printed for the manifest",
                );
            }
        }
    }

    fn certificates(&mut self) {
        let path = root().key("certificates").key("renewBefore");
        match fields::duration(&self.file.certificates.renew_before) {
            Err(problem) => self.report(path, problem),
            Ok(before) if before >= crate::certs::LEAF_VALIDITY => self.complain(
                path,
                format!(
                    "`{}` is not shorter than the two years a certificate lives: every apply would issue it again",
                    self.file.certificates.renew_before
                ),
                "renew some days before expiry, e.g. `30d`",
            ),
            Ok(before) => self.parsed.renew_before = before,
        }
    }
}

impl Checker<'_> {
    /// Cortex 3.2 is the first release with the Kubernetes job runner; Cortex 3 talks to
    /// Elasticsearch 7 only (OpenSearch 1 in its 7.10-compatible mode: OpenSearch 2 removed the
    /// `include_type_name` parameter Cortex 3 sends), and Cortex 4 to Elasticsearch 8 only.
    fn cortex_and_search_engine(&mut self) {
        let (cortex, es) = (&self.file.cortex, &self.file.elasticsearch);
        let cortex_path = root().key("cortex").key("version");
        let version = |v: &str| -> (u32, u32) {
            let mut parts = v.split('.').map(|p| p.parse::<u32>().unwrap_or_default());
            (parts.next().unwrap_or_default(), parts.next().unwrap_or_default())
        };
        let cortex_version = version(&cortex.version);
        if cortex_version < (3, 2) {
            self.complain(
                cortex_path,
                format!("Cortex {} has no Kubernetes job runner (it came with 3.2)", cortex.version),
                "use Cortex `3.2.0` or later",
            );
            return;
        }
        // Point at the search engine's version when the file sets it, else at Cortex's.
        let es_path = if es.version.is_some() { root().key("elasticsearch").key("version") } else { cortex_path };
        let (es_major, _) = version(es.version());
        let problem = match (cortex_version.0, es.mode, es_major) {
            (3, SearchEngine::Eck, 7) | (3, SearchEngine::Opensearch, 1) | (4, SearchEngine::Eck, 8) => return,
            (3, SearchEngine::Eck, _) => (
                format!("Cortex {} works with Elasticsearch 7.x only, not {}", cortex.version, es.version()),
                format!(
                    "set `elasticsearch.version: {}`, or use Cortex 4 with Elasticsearch 8",
                    Elasticsearch::DEFAULT_ECK_VERSION
                ),
            ),
            (3, SearchEngine::Opensearch, _) => (
                format!(
                    "Cortex {} cannot use OpenSearch {}: OpenSearch 2 and later removed the `include_type_name` parameter Cortex 3 sends",
                    cortex.version,
                    es.version()
                ),
                format!(
                    "set `elasticsearch.version: {}` (OpenSearch 1.x, in its Elasticsearch 7.10-compatible mode), or `mode: eck`",
                    Elasticsearch::DEFAULT_OPENSEARCH_VERSION
                ),
            ),
            (4, SearchEngine::Eck, _) => (
                format!("Cortex {} works with Elasticsearch 8.x only, not {}", cortex.version, es.version()),
                "set `elasticsearch.version` to an 8.x release, or use Cortex 3.2 with Elasticsearch 7".to_owned(),
            ),
            (4, SearchEngine::Opensearch, _) => (
                format!("Cortex {} works with Elasticsearch 8.x only, not OpenSearch", cortex.version),
                "use `mode: eck` with an 8.x release, or Cortex `3.2.0` with OpenSearch 1.3".to_owned(),
            ),
            (major, _, _) => (
                format!("seclab does not know which search engine Cortex {major}.x works with"),
                "use Cortex 3.2 (Elasticsearch 7, OpenSearch 1.3) or Cortex 4 (Elasticsearch 8)".to_owned(),
            ),
        };
        let (message, hint) = problem;
        let path = if cortex_version.0 > 4 { root().key("cortex").key("version") } else { es_path };
        self.complain(path, message, hint);
    }
}

fn not_empty(checker: &mut Checker<'_>, path: FieldPath, value: &str, what: &str) {
    if value.trim().is_empty() {
        checker.complain(path.clone(), format!("`{path}` is empty"), format!("give {what}"));
    }
}

fn is_version(value: &str) -> bool {
    let parts: Vec<&str> = value.split('.').collect();
    (2..=3).contains(&parts.len()) && parts.iter().all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

fn sorted(mut names: Vec<&str>) -> Vec<&str> {
    names.sort_unstable();
    names
}

/// Whether `name` is a portable environment variable name.
fn is_env_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

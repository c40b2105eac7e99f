//! Each template against its image's contract: one row per thing an upstream image or
//! operator needs from what seclab renders (user and group, paths, variables, capabilities,
//! deadlines), each citing the upstream source that says so. A row reads one field of one
//! rendered object of an example lab.

mod support;

use serde_json::{Value, json};
use support::{example, root, run};

/// One contract: in `example`'s rendered object `kind`/`name`, the field at the JSON pointer
/// `field` holds `expected`, because `source` says so.
struct Row {
    source: &'static str,
    example: &'static str,
    kind: &'static str,
    name: &'static str,
    field: &'static str,
    expected: Value,
}

fn rows() -> Vec<Row> {
    vec![
        Row {
            source: "TheHive-Project/Cortex 3.2.0 package/docker/entrypoint: as root it runs `su - cortex`, which clears the environment the secrets come in; as any other user it keeps it",
            example: "homelab.yaml",
            kind: "Deployment",
            name: "cortex",
            field: "/spec/template/spec/securityContext",
            expected: json!({ "runAsUser": 1001, "runAsGroup": 1001, "fsGroup": 1001 }),
        },
        Row {
            source: "TheHive-Project/Cortex 3.2.0 project/DockerSettings.scala: `useradd --system --uid 1001 --gid 1001 ... cortex`; fsGroup does not apply to hostPath volumes",
            example: "homelab.yaml",
            kind: "Deployment",
            name: "cortex",
            field: "/spec/template/spec/initContainers/0/command",
            expected: json!(["chown", "1001:1001", "/tmp/cortex-jobs"]),
        },
        Row {
            source: "the job directory the init container hands over is the one Cortex mounts",
            example: "homelab.yaml",
            kind: "Deployment",
            name: "cortex",
            field: "/spec/template/spec/initContainers/0/volumeMounts/0",
            expected: json!({ "name": "jobs", "mountPath": "/tmp/cortex-jobs" }),
        },
        Row {
            source: "TheHive-Project/Cortex 3.2.0 and 4.1.0 app/org/thp/cortex/services/K8sJobRunnerSrv.scala: `jobs().withLabel(\"cortex-job-id\", ...).delete()` is a deletecollection; it reads no pods",
            example: "homelab.yaml",
            kind: "Role",
            name: "cortex-job-runner",
            field: "/rules",
            expected: json!([{ "apiGroups": ["batch"], "resources": ["jobs"],
                "verbs": ["create", "get", "list", "watch", "delete", "deletecollection"] }]),
        },
        Row {
            source: "Cortex's API: GET /api/status answers once Cortex is up",
            example: "homelab.yaml",
            kind: "Deployment",
            name: "cortex",
            field: "/spec/template/spec/containers/0/readinessProbe/httpGet/path",
            expected: json!("/api/status"),
        },
        Row {
            source: "opensearch-project/opensearch-build docker/release/dockerfiles/opensearch.al2.dockerfile: `ARG UID=1000`, `ARG GID=1000`, `USER $UID`; the certificate Secrets are mounted 0400, readable through fsGroup",
            example: "opensearch.yaml",
            kind: "StatefulSet",
            name: "opensearch",
            field: "/spec/template/spec/securityContext",
            expected: json!({ "runAsUser": 1000, "runAsGroup": 1000, "fsGroup": 1000 }),
        },
        Row {
            source: "opensearch.al2.dockerfile: `chown -Rv $UID:$GID $OPENSEARCH_HOME/data`; a hostPath data directory is root's until handed over",
            example: "opensearch.yaml",
            kind: "StatefulSet",
            name: "opensearch",
            field: "/spec/template/spec/initContainers/0/command",
            expected: json!(["chown", "1000:1000", "/usr/share/opensearch/data"]),
        },
        Row {
            source: "the data directory the init container hands over is each pod's own, as OpenSearch mounts it",
            example: "opensearch.yaml",
            kind: "StatefulSet",
            name: "opensearch",
            field: "/spec/template/spec/initContainers/0/volumeMounts/0/subPathExpr",
            expected: json!("opensearch/$(POD_NAME)"),
        },
        Row {
            source: "distribution-library-image config-example.yml (registry:2): storage at /var/lib/registry",
            example: "homelab.yaml",
            kind: "Deployment",
            name: "registry",
            field: "/spec/template/spec/containers/0/volumeMounts/0/mountPath",
            expected: json!("/var/lib/registry"),
        },
        Row {
            source: "distribution-library-image config-example.yml (registry:2): `http: addr: :5000`",
            example: "homelab.yaml",
            kind: "Deployment",
            name: "registry",
            field: "/spec/template/spec/containers/0/ports/0/containerPort",
            expected: json!(5000),
        },
        Row {
            source: "docker-library/mysql and MariaDB/mariadb-docker docker-entrypoint.sh: the root password from MYSQL_ROOT_PASSWORD (MariaDB: MARIADB_ROOT_PASSWORD or its alias)",
            example: "tenants.yaml",
            kind: "StatefulSet",
            name: "mysql-netdelta",
            field: "/spec/template/spec/containers/0/env/0/name",
            expected: json!("MYSQL_ROOT_PASSWORD"),
        },
        Row {
            source: "docker-library/mysql and MariaDB/mariadb-docker Dockerfiles: `VOLUME /var/lib/mysql`, the data directory the entrypoint initialises",
            example: "tenants.yaml",
            kind: "StatefulSet",
            name: "mysql-netdelta",
            field: "/spec/template/spec/containers/0/volumeMounts/0/mountPath",
            expected: json!("/var/lib/mysql"),
        },
        Row {
            source: "nmap needs raw sockets for SYN scans and OS detection (CAP_NET_RAW) and nothing else",
            example: "tenants.yaml",
            kind: "CronJob",
            name: "barbican-dmz-scan",
            field: "/spec/jobTemplate/spec/template/spec/containers/0/securityContext",
            expected: json!({ "allowPrivilegeEscalation": false, "capabilities": { "drop": ["ALL"], "add": ["NET_RAW"] } }),
        },
        Row {
            source: "Kubernetes Job: activeDeadlineSeconds stops a hung scan, which with concurrencyPolicy Forbid would block every later one (the group's `timeout`, 6h by default)",
            example: "tenants.yaml",
            kind: "CronJob",
            name: "barbican-dmz-scan",
            field: "/spec/jobTemplate/spec/activeDeadlineSeconds",
            expected: json!(21600),
        },
        Row {
            source: "seclab's scan layout (README, \"The scan database\"): a group's scans in scans/<tenant>/<group>; the Job mounts that directory only, so a scan reaches no other customer's",
            example: "tenants.yaml",
            kind: "CronJob",
            name: "barbican-dmz-scan",
            field: "/spec/jobTemplate/spec/template/spec/containers/0/volumeMounts/0",
            expected: json!({ "name": "scans", "mountPath": "/scans", "subPath": "scans/barbican/dmz" }),
        },
        Row {
            source: "Kubernetes CronJob: without startingDeadlineSeconds, missed starts are run late",
            example: "tenants.yaml",
            kind: "CronJob",
            name: "barbican-dmz-scan",
            field: "/spec/startingDeadlineSeconds",
            expected: json!(600),
        },
        Row {
            source: "seclab's tenant app contract (README, \"Tenant databases\"): DB_HOST, DB_NAME, DB_USER, DB_PASSWORD",
            example: "tenants.yaml",
            kind: "Deployment",
            name: "netdelta-barbican",
            field: "/spec/template/spec/containers/0/env/1/name",
            expected: json!("DB_NAME"),
        },
        Row {
            source: "ECK (cloud-on-k8s v2.16.1) pkg/controller/elasticsearch/volume/names.go: the data claim is `elasticsearch-data`; without one ECK asks for 1Gi (volume/defaults.go)",
            example: "homelab.yaml",
            kind: "Elasticsearch",
            name: "esquickstart",
            field: "/spec/nodeSets/0/volumeClaimTemplates/0/metadata/name",
            expected: json!("elasticsearch-data"),
        },
        Row {
            source: "ECK (cloud-on-k8s v2.16.1) serves the custom HTTP certificate named in spec.http.tls.certificate.secretName; seclab's Secret holds a SEC1 key it can read (unit test in src/certs)",
            example: "homelab.yaml",
            kind: "Elasticsearch",
            name: "esquickstart",
            field: "/spec/http/tls/certificate/secretName",
            expected: json!("esquickstart-http-certs"),
        },
        Row {
            source: "TheHive-Project/Cortex project/DockerSettings.scala: the image is tagged with the build's version (`Docker / version := version.value`), which version.sbt sets to `3.2.0-1`; there is no `3.2.0` tag",
            example: "opensearch.yaml",
            kind: "Deployment",
            name: "cortex",
            field: "/spec/template/spec/containers/0/image",
            expected: json!("thehiveproject/cortex:3.2.0-1"),
        },
        Row {
            source: "sbt-native-packager bash-template (Cortex's bin/cortex): `if [[ \"$JAVA_OPTS\" != \"\" ]]; then java_opts=\"${JAVA_OPTS}\"`; a heap of half the 2 GiB limit",
            example: "opensearch.yaml",
            kind: "Deployment",
            name: "cortex",
            field: "/spec/template/spec/containers/0/env/0",
            expected: json!({ "name": "JAVA_OPTS", "value": "-Xms1024m -Xmx1024m" }),
        },
        Row {
            source: "Kubernetes: without a limit a JVM container is the first evicted; Cortex's default memory",
            example: "opensearch.yaml",
            kind: "Deployment",
            name: "cortex",
            field: "/spec/template/spec/containers/0/resources",
            expected: json!({ "requests": { "memory": "2Gi" }, "limits": { "memory": "2Gi" } }),
        },
        Row {
            source: "ECK (cloud-on-k8s v2.16.1) pkg/controller/elasticsearch/nodespec/defaults.go: an Elasticsearch node gets 2Gi requested and limited; OpenSearch's the same",
            example: "opensearch.yaml",
            kind: "StatefulSet",
            name: "opensearch",
            field: "/spec/template/spec/containers/0/resources",
            expected: json!({ "requests": { "memory": "2Gi" }, "limits": { "memory": "2Gi" } }),
        },
        Row {
            source: "opensearch-project/OpenSearch distribution/src/bin/opensearch-env: the JVM options come from OPENSEARCH_JAVA_OPTS; a heap of half the memory limit",
            example: "opensearch.yaml",
            kind: "StatefulSet",
            name: "opensearch",
            field: "/spec/template/spec/containers/0/env/2",
            expected: json!({ "name": "OPENSEARCH_JAVA_OPTS", "value": "-Xms1024m -Xmx1024m" }),
        },
    ]
}

fn rendered(name: &str) -> Vec<Value> {
    let file = example(name);
    let (code, stdout, stderr) = run(&root(), &["--file", file.to_str().unwrap(), "render", "--output", "json"]);
    assert_eq!(code, 0, "{stderr}");
    let document: Value = serde_json::from_str(&stdout).unwrap();
    document["objects"].as_array().unwrap().clone()
}

#[test]
fn every_template_meets_its_images_contract() {
    let mut failed = Vec::new();
    for row in rows() {
        let objects = rendered(row.example);
        let object = objects.iter().find(|o| o["kind"] == row.kind && o["metadata"]["name"] == row.name);
        let found = object.and_then(|o| o.pointer(row.field)).cloned().unwrap_or(Value::Null);
        if found != row.expected {
            failed.push(format!(
                "{} {} in {} at {}: {found} (expected {})\n    because {}",
                row.kind, row.name, row.example, row.field, row.expected, row.source
            ));
        }
    }
    assert!(failed.is_empty(), "{} contract(s) broken:\n{}", failed.len(), failed.join("\n"));
}

/// The scan script passes a stop on to nmap and leaves no partial file when nmap fails or is
/// stopped; nmap gives up on a single host after 30 minutes.
#[test]
fn the_scan_script_forwards_a_stop_and_cleans_up_after_a_failed_scan() {
    let objects = rendered("tenants.yaml");
    let cron_job = objects.iter().find(|o| o["kind"] == "CronJob").unwrap();
    let script = cron_job.pointer("/spec/jobTemplate/spec/template/spec/containers/0/command/2").unwrap();
    let script = script.as_str().unwrap();
    for expected in [
        "trap 'kill -TERM \"$scan\" 2>/dev/null; wait \"$scan\" || true; rm -f \"$partial\"; exit 143' TERM INT",
        "nmap --host-timeout 30m -oX \"$partial\" \"$@\" &",
        "wait \"$scan\" || status=$?",
        "rm -f \"$partial\"\n  exit \"$status\"",
        "mv \"$partial\" \"$dir/$start.xml\"",
    ] {
        assert!(script.contains(expected), "missing {expected:?} in:\n{script}");
    }
}

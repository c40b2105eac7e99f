//! `seclab validate` on broken files: every problem at once, with file:line:column and the fix.

mod support;

use support::{lab_dir, run};

const HEADER: &str = "apiVersion: seclab.dev/v1alpha1\nkind: Lab\nmetadata:\n  name: lab\n";

/// Validates `body` (after a valid header) and returns stderr, asserting exit code 2.
fn invalid(body: &str) -> String {
    let dir = lab_dir(&format!("{HEADER}{body}"));
    let (code, stdout, stderr) = run(dir.path(), &["validate"]);
    assert_eq!(code, 2, "stdout: {stdout}\nstderr: {stderr}");
    assert!(stdout.is_empty(), "nothing on stdout: {stdout}");
    stderr
}

#[test]
fn every_problem_of_a_file_is_reported_in_one_run() {
    let stderr = invalid(
        r#"cortex:
  replica: 2
tenants:
  - name: barbican
    database:
      password: hunter2
    scans:
      - name: dmz
        targets: [10.0.0.0/33]
        schedule: "0 2 * *"
        alerts: [soc]
  - name: barbican
    volumes:
      - { volume: logs, mountPath: /srv/logs }
"#,
    );
    for expected in [
        "seclab.yaml:6:3",
        "unknown field `replica`",
        "did you mean `replicas`?",
        "seclab.yaml:10:17",
        "`tenants[0].database.password` holds a secret written in the file",
        "seclab.yaml:13:19",
        "`10.0.0.0/33` is not a valid target",
        "seclab.yaml:14:19",
        "it needs exactly 5 fields",
        "seclab.yaml:15:18",
        "alert route `soc` is not declared",
        "seclab.yaml:16:11",
        "tenant `barbican` is declared twice",
        "the first is at line 8",
        "seclab.yaml:18:19",
        "storage volume `logs`, which is not declared",
        "has 7 problems; nothing was changed",
    ] {
        assert!(stderr.contains(expected), "missing {expected:?} in:\n{stderr}");
    }
    assert!(!stderr.contains("hunter2"), "the secret leaked:\n{stderr}");
    insta::assert_snapshot!(stderr);
}

/// Five independent mistakes, three of them of type (which serde alone stops at, one by one):
/// one run reports them all, in the file's words, and the count is the real count.
#[test]
fn type_errors_are_collected_with_the_semantic_ones_and_counted() {
    let stderr = invalid(
        r#"elasticsearch:
  nodes: "3"
storage:
  volumes:
    - { name: data, hostPath: /srv/data, size: 10 GB }
tenants:
  - name: barbican
    replicas: two
    volumes:
      - { volume: logs, mountPath: /srv/logs }
    scans:
      - name: dmz
        targets: 198.51.100.0/28
        schedule: "0 2 * * *"
"#,
    );
    for expected in [
        "seclab.yaml:6:10",
        "expected a whole number, found the text \"3\"",
        "write the number without quotes: `3`",
        "seclab.yaml:12:15",
        "expected a whole number, found the text \"two\"",
        "seclab.yaml:17:18",
        "expected a list, found the text \"198.51.100.0/28\"",
        "write a list, even of one: `[198.51.100.0/28]`",
        "seclab.yaml:9:",
        "10 GB",
        "storage volume `logs`, which is not declared",
        "has 5 problems; nothing was changed",
    ] {
        assert!(stderr.contains(expected), "missing {expected:?} in:\n{stderr}");
    }
    for rust in ["expected u", "expected struct", "invalid type", "out of bounds"] {
        assert!(!stderr.contains(rust), "Rust's words {rust:?} in:\n{stderr}");
    }
    insta::assert_snapshot!(stderr);
}

#[test]
fn json_output_lists_every_error_with_its_position() {
    let dir = lab_dir(&format!("{HEADER}cortex:\n  replica: 2\nwatch:\n  listen: nowhere\n"));
    let (code, stdout, _) = run(dir.path(), &["validate", "--output", "json"]);
    assert_eq!(code, 2);
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("one JSON document");
    insta::assert_json_snapshot!(report);
}

/// Each error kind a user can hit, with its message and position.
#[test]
fn each_error_message() {
    let cases: &[(&str, &str)] = &[
        ("syntax", "cluster:\n  domain: \"unterminated\n"),
        ("wrong_type", "cortex:\n  replicas: many\n"),
        (
            "unquoted_cron_star",
            "tenants:\n  - name: site\n    scans:\n      - name: dmz\n        targets: [127.0.0.1]\n        schedule: * * * * *\n",
        ),
        ("tab_indent", "cluster:\n\tdomain: lab.test\n"),
        ("item_after_an_empty_list", "tenants: []\n  - name: a\n"),
        (
            "misspelt_key_in_secret_ref",
            "tenants:\n  - name: a\n    database:\n      password:\n        secretRef: { nmae: db, key: password }\n",
        ),
        ("duplicate_key", "cluster:\n  domain: a.test\n  nodeAddress: 127.0.0.1\n  domain: b.test\n"),
        (
            "anchor_keeps_locations",
            "x-site: &site\n  replicas: many\ntenants:\n  - name: a\n    <<: *site\n  - name: B\n",
        ),
        ("unknown_top_level_field", "tennants: []\n"),
        ("unknown_field_without_close_match", "registry:\n  colour: blue\n"),
        ("bad_name", "tenants:\n  - name: Barbican\n"),
        ("bad_domain", "cluster:\n  domain: k..my.domain\n"),
        ("bad_node_address", "cluster:\n  nodeAddress: 192.168.1.300\n"),
        ("bad_size", "storage:\n  volumes:\n    - name: data\n      hostPath: mnt/data\n      size: lots\n"),
        ("dangling_job_volume", "cortex:\n  jobVolume: jobs\n"),
        (
            "volume_in_other_namespace",
            "storage:\n  volumes:\n    - name: data\n      namespace: other\n      hostPath: /mnt/data\n",
        ),
        ("cortex_without_elasticsearch", "elasticsearch:\n  enabled: false\n"),
        ("eck_with_opensearch_field", "elasticsearch:\n  adminPassword: env:X\n"),
        ("renew_before_as_long_as_a_certificate", "certificates:\n  renewBefore: 800d\n"),
        ("cortex_3_with_opensearch_2", "elasticsearch:\n  mode: opensearch\n  version: 2.19.1\n"),
        ("cortex_4_with_elasticsearch_7", "cortex:\n  version: 4.0.0\n"),
        ("cortex_3_with_elasticsearch_8", "elasticsearch:\n  version: 8.15.0\n"),
        ("cortex_without_job_runner", "cortex:\n  version: 3.1.1\n"),
        (
            "webhook_over_http_off_loopback",
            "alerts:\n  routes:\n    - name: hook\n      webhook:\n        url: http://hooks.example.org/seclab\n",
        ),
        (
            "smtp_login_in_clear",
            "alerts:\n  routes:\n    - name: mail\n      email:\n        to: [soc@example.org]\n        from: seclab@example.org\n        smtp: {host: mail.example.org, port: 25, tls: none, username: seclab, password: env:SMTP_PASSWORD}\n",
        ),
        ("operator_sha256_not_a_digest", "operators:\n  - {name: eck, manifest: 'file:./eck.yaml', sha256: abc123}\n"),
        (
            "reserved_tenant_database_and_user",
            "tenantDatabase: {}\ntenants:\n  - name: a\n    database: {name: Performance_Schema, user: root}\n",
        ),
        ("tenant_args_for_another_site", "tenants:\n  - name: barbican\n    args: [xynexis, \"9004\"]\n"),
        (
            "tenant_args_for_another_port",
            "tenants:\n  - name: barbican\n    port: 9004\n    args: [barbican, \"9005\"]\n",
        ),
        (
            "unknown_time_zone",
            "tenants:\n  - name: a\n    scans:\n      - name: dmz\n        targets: [127.0.0.1]\n        schedule: '@daily'\n        timeZone: Europe/Londno\n",
        ),
        ("cortex_version_with_bad_revision", "cortex:\n  version: 3.2.0-rc1\n"),
        ("heap_above_memory", "elasticsearch:\n  resources:\n    limits: {memory: 1Gi}\n  javaOpts: -Xms1g -Xmx1g\n"),
        (
            "bad_ports",
            "tenants:\n  - name: a\n    scans:\n      - name: dmz\n        targets: [127.0.0.1]\n        ports: 22,80-70\n        schedule: '@daily'\n",
        ),
        (
            "reserved_nmap_option",
            "tenants:\n  - name: a\n    scans:\n      - name: dmz\n        targets: [127.0.0.1]\n        schedule: '@daily'\n        nmapArgs: [-sV, -oX, out.xml]\n",
        ),
        (
            "bad_cron_field",
            "tenants:\n  - name: a\n    scans:\n      - name: dmz\n        targets: [127.0.0.1]\n        schedule: '61 * * * *'\n",
        ),
        (
            "duplicate_scan_group",
            "tenants:\n  - name: a\n    scans:\n      - {name: dmz, targets: [127.0.0.1], schedule: '@daily'}\n      - {name: dmz, targets: [127.0.0.2], schedule: '@daily'}\n",
        ),
        (
            "literal_webhook_secret",
            "alerts:\n  routes:\n    - name: hook\n      webhook:\n        url: https://hooks.example.org/x\n        secret: s3cr3t-value\n",
        ),
        (
            "webhook_url_with_password",
            "alerts:\n  routes:\n    - name: hook\n      webhook:\n        url: https://user:s3cr3t-value@hooks.example.org/x\n",
        ),
        (
            "route_with_two_kinds",
            "alerts:\n  routes:\n    - name: both\n      log: {}\n      webhook: {url: 'https://hooks.example.org/x'}\n",
        ),
        ("secret_in_env", "tenants:\n  - name: a\n    env:\n      API_TOKEN: s3cr3t-value\n"),
        (
            "binding_to_unknown_role",
            "rbac:\n  bindings:\n    - name: b\n      role: reader\n      serviceAccounts: [cortex]\n",
        ),
        ("unknown_verb", "rbac:\n  roles:\n    - name: r\n      rules:\n        - {resources: [pods], verbs: [gte]}\n"),
        ("bad_duration", "watch:\n  debounce: soon\n"),
        (
            "duplicate_operator",
            "operators:\n  - {name: eck, manifest: 'file:./a.yaml'}\n  - {name: eck, manifest: 'file:./b.yaml'}\n",
        ),
        ("operator_manifest_over_http", "operators:\n  - {name: eck, manifest: 'http://127.0.0.1/eck.yaml'}\n"),
        ("operator_manifest_not_a_source", "operators:\n  - {name: eck, manifest: ./eck.yaml}\n"),
        (
            "tenant_database_name_clash",
            "tenantDatabase: {}\ntenants:\n  - name: a\n    database: {name: shared}\n  - name: b\n    database: {name: shared}\n",
        ),
        ("external_tenant_database_without_url", "tenantDatabase:\n  mode: external\n  host: mysql.lab.internal\n"),
        ("env_reference_without_a_name", "tenants:\n  - name: a\n    database: {password: 'env:'}\n"),
        ("env_reference_with_a_bad_name", "tenants:\n  - name: a\n    database: {password: 'env:DB-PASSWORD'}\n"),
        ("literal_tenant_database_root_password", "tenantDatabase:\n  rootPassword: s3cr3t-value\n"),
        (
            "literal_tenant_database_url",
            "tenantDatabase:\n  mode: external\n  host: mysql.lab.internal\n  url: mysql://root:s3cr3t-value@127.0.0.1:3306\n",
        ),
        ("wrong_api_version", "cluster: {}\n"),
    ];
    let mut failures = Vec::new();
    for (name, body) in cases {
        let text = if *name == "wrong_api_version" {
            format!("apiVersion: seclab.dev/v1\nkind: Lab\nmetadata:\n  name: lab\n{body}")
        } else {
            format!("{HEADER}{body}")
        };
        let dir = lab_dir(&text);
        let (code, _, stderr) = run(dir.path(), &["validate"]);
        if code != 2 {
            failures.push(format!("{name}: exit code {code}"));
        }
        assert!(stderr.contains("seclab.yaml:"), "{name}: no file:line:column in\n{stderr}");
        assert!(stderr.contains("help: ") || *name == "syntax", "{name}: no hint in\n{stderr}");
        assert!(!stderr.contains("s3cr3t-value"), "{name}: the secret leaked:\n{stderr}");
        insta::assert_snapshot!(*name, stderr);
    }
    assert!(failures.is_empty(), "{failures:?}");
}

#[test]
fn a_missing_file_says_how_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, stderr) = run(dir.path(), &["validate"]);
    assert_eq!(code, 1);
    assert_eq!(
        stderr.trim(),
        "error: seclab.yaml does not exist (nor does seclab.yml)\nRun `seclab init` to write a starter file, or pass --file."
    );
}

#[test]
fn an_empty_file_says_how_to_start() {
    let dir = lab_dir("# nothing yet\n");
    let (code, _, stderr) = run(dir.path(), &["validate"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("the file is empty"), "{stderr}");
    assert!(stderr.contains("seclab init"), "{stderr}");
}

/// A file far larger than any lab is refused without being read whole: memory stays bounded.
#[test]
fn a_100_mb_file_is_refused_quickly_with_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from(HEADER);
    let line = format!("# {}\n", "x".repeat(98));
    text.push_str(&line.repeat(1_000_000));
    std::fs::write(dir.path().join("seclab.yaml"), text).unwrap();
    // A child's peak RSS counts what it shared with this process before exec: compare with
    // seclab doing almost nothing.
    let (_, _, _, baseline) = support::run_measured(dir.path(), &["--version"]);
    let (code, stdout, stderr, kib) = support::run_measured(dir.path(), &["validate"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stdout.is_empty());
    assert!(stderr.contains("seclab.yaml is larger than 16 MiB"), "{stderr}");
    assert!(kib < baseline + 80 * 1024, "peak RSS {kib} KiB for a 100 MB file ({baseline} KiB doing nothing)");
}

/// YAML anchors nested nine deep ("billion laughs") in the lab's own fields: rejected at the
/// first wrong type, never expanded.
#[test]
fn a_yaml_alias_bomb_is_rejected_quickly_with_bounded_memory() {
    let mut lines = vec![r#"x0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]"#.to_owned()];
    for i in 1..10 {
        let refs = vec![format!("*a{}", i - 1); 9].join(",");
        let name = if i == 9 { "tenants".to_owned() } else { format!("x{i}") };
        lines.push(format!("{name}: &a{i} [{refs}]"));
    }
    let dir = lab_dir(&format!("{HEADER}{}\n", lines.join("\n")));
    let (_, _, _, baseline) = support::run_measured(dir.path(), &["--version"]);
    let started = std::time::Instant::now();
    let (code, _, stderr, kib) = support::run_measured(dir.path(), &["validate"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("tenants[0]: invalid type: sequence, expected struct Tenant"), "{stderr}");
    assert!(kib < baseline + 64 * 1024, "peak RSS {kib} KiB ({baseline} KiB doing nothing)");
    // Generous: expanding the bomb would take minutes and gigabytes.
    assert!(started.elapsed() < std::time::Duration::from_secs(60));
}

/// A template override that never finishes, or renders a gigabyte: stopped with the
/// template's name, nothing changed, memory bounded.
#[test]
fn a_template_that_loops_or_renders_a_gigabyte_is_stopped_with_its_name() {
    let dir = lab_dir(HEADER);
    let templates = dir.path().join("templates/extra");
    std::fs::create_dir_all(&templates).unwrap();
    let (_, _, _, baseline) = support::run_measured(dir.path(), &["--version"]);

    let loops = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}\n";
    std::fs::write(templates.join("loop.yaml"), loops).unwrap();
    let (code, stdout, stderr, kib) = support::run_measured(dir.path(), &["render", "--templates", "templates"]);
    assert_eq!((code, stdout.as_str()), (1, ""), "{stderr}");
    assert!(stderr.contains("templates/extra/loop.yaml:1: stopped after 20 million steps"), "{stderr}");
    assert!(kib < baseline + 64 * 1024, "peak RSS {kib} KiB ({baseline} KiB doing nothing)");
    std::fs::remove_file(templates.join("loop.yaml")).unwrap();

    // 20 times 100 MB: a gigabyte, were it not stopped at 64 MiB.
    std::fs::write(templates.join("huge.yaml"), "{% for i in range(20) %}{{ 'x' * 100000000 }}{% endfor %}\n").unwrap();
    let (code, stdout, stderr, kib) = support::run_measured(dir.path(), &["render", "--templates", "templates"]);
    assert_eq!((code, stdout.as_str()), (1, ""), "{stderr}");
    assert!(stderr.contains("templates/extra/huge.yaml: rendered more than 64 MiB and was stopped"), "{stderr}");
    assert!(kib < baseline + 400 * 1024, "peak RSS {kib} KiB ({baseline} KiB doing nothing)");
}

#[test]
fn placement_problems_are_reported_where_they_are_written() {
    let stderr = invalid(
        r#"registry:
  nodeSelector: {"-disk": ssd, zone: "a b"}
  tolerations:
    - {operator: Exists, value: "x"}
    - {value: x, tolerationSeconds: 30}
  resources:
    requests: {cpu: "2", memroy: 1Gi}
    limits: {cpu: 500m, memory: lots}
"#,
    );
    for expected in [
        "seclab.yaml:6:18",
        "`-disk` is not a label key",
        "seclab.yaml:6:38",
        "`a b` is not a label value",
        "seclab.yaml:8:33",
        "a toleration with `operator: Exists` takes no `value`",
        "seclab.yaml:9:8",
        "the toleration has no `key`",
        "seclab.yaml:9:37",
        "`tolerationSeconds` applies to `effect: NoExecute` only",
        "seclab.yaml:11:21",
        "the cpu request `2` is more than its limit `500m`",
        "seclab.yaml:11:34",
        "`memroy` is not a compute resource",
        "did you mean `memory`?",
        "seclab.yaml:12:33",
        "`lots` is not a resource quantity",
        "has 8 problems; nothing was changed",
    ] {
        assert!(stderr.contains(expected), "missing {expected:?} in:\n{stderr}");
    }
}

#[test]
fn a_readiness_path_must_be_a_path() {
    let stderr = invalid("tenants:\n  - name: site\n    readinessPath: healthz\n");
    for expected in ["seclab.yaml:7:20", "`healthz` is not a path", "starting with `/`", "has 1 problem"] {
        assert!(stderr.contains(expected), "missing {expected:?} in:\n{stderr}");
    }
}

#[test]
fn database_variable_names_are_names_of_their_own() {
    let stderr = invalid(
        "tenants:\n  - name: site\n    env: {NETDELTA_DB: x}\n    database:\n      variables: {name: NETDELTA_DB, host: 9HOST, user: DB_NAME2, password: DB_NAME2}\n",
    );
    for expected in [
        "`NETDELTA_DB` is also set in the tenant's `env`",
        "`9HOST` is not an environment variable name",
        "`DB_NAME2` already holds the database's user",
        "has 3 problems",
    ] {
        assert!(stderr.contains(expected), "missing {expected:?} in:\n{stderr}");
    }
}

/// A UTF-8 byte order mark is YAML's own and is read past; a file in UTF-16 or Latin-1 is
/// named as not UTF-8, with the place of its first bad byte.
#[test]
fn a_byte_order_mark_is_read_past_and_a_file_not_in_utf8_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("seclab.yaml");
    std::fs::write(&file, format!("\u{feff}{HEADER}")).unwrap();
    let (code, _, stderr) = run(dir.path(), &["validate"]);
    assert_eq!(code, 0, "{stderr}");

    let utf16: Vec<u8> = [0xFF, 0xFE].into_iter().chain(HEADER.encode_utf16().flat_map(u16::to_le_bytes)).collect();
    std::fs::write(&file, utf16).unwrap();
    let (code, _, stderr) = run(dir.path(), &["validate"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("seclab.yaml: the file is not UTF-8: it is UTF-16"), "{stderr}");

    let mut latin1 = format!("{HEADER}cluster:\n  domain: caf").into_bytes();
    latin1.extend([0xE9, b'\n']);
    std::fs::write(&file, latin1).unwrap();
    let (code, _, stderr) = run(dir.path(), &["validate"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("line 6, column 14 holds byte 0xE9"), "{stderr}");
}

/// Every failure prints one JSON shape with `--output json`: `error` (one line, no `error:`
/// prefix) and `errors`, each with a `message` and only the documented keys, in camelCase;
/// usage errors say `"usage": true`. Covers each kind: a file with problems (a type error
/// among them), the 16 MiB refusal, a file not in UTF-8, a missing file, clap's usage errors
/// and seclab's own, a truncated scan, a secret that cannot be read.
#[test]
fn every_failure_prints_one_json_shape() {
    let dir = lab_dir(&format!("{HEADER}cortex:\n  replicas: two\nwatch:\n  listen: nowhere\n"));
    let path = dir.path();
    std::fs::write(path.join("big.yaml"), vec![b'#'; 17 << 20]).unwrap();
    std::fs::write(path.join("latin1.yaml"), b"apiVersion: caf\xe9\n").unwrap();
    std::fs::write(
        path.join("secret.yaml"),
        format!("{HEADER}tenants:\n  - name: site\n    database: {{ password: \"env:SECLAB_TEST_NEVER_SET\" }}\n"),
    )
    .unwrap();
    let scan = std::fs::read_to_string(support::root().join("tests/fixtures/loopback.xml")).unwrap();
    std::fs::write(path.join("cut.xml"), &scan[..scan.len() / 2]).unwrap();
    let allowed = ["message", "help", "file", "line", "column", "path", "causes", "object"];
    let cases: &[(&[&str], i32, bool)] = &[
        (&["validate"], 2, false),
        (&["-f", "big.yaml", "validate"], 2, false),
        (&["-f", "latin1.yaml", "validate"], 2, false),
        (&["-f", "missing.yaml", "validate"], 1, false),
        (&["validate", "--bogus"], 2, true),
        (&["render", "--for-user", "x", "--for-serviceaccount", "a:b"], 2, true),
        (&["scan", "diff", "only-one.xml"], 2, true),
        (&["-f", "secret.yaml", "scan", "diff", "--group", "no-slash"], 2, true),
        (&["scan", "diff", "cut.xml", "cut.xml"], 2, false),
        (&["-f", "secret.yaml", "plan"], 1, false),
    ];
    for (args, expected_code, usage) in cases {
        let args: Vec<&str> = ["--output", "json"].iter().chain(args.iter()).copied().collect();
        let (code, stdout, stderr) = run(path, &args);
        assert_eq!(code, *expected_code, "{args:?}: {stderr}");
        let document: serde_json::Value =
            serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{args:?}: not one JSON document ({e}): {stdout}"));
        let error = document["error"].as_str().unwrap_or_else(|| panic!("{args:?}: no `error`: {document}"));
        assert!(!error.is_empty() && !error.starts_with("error:") && !error.contains('\n'), "{args:?}: {error:?}");
        let errors = document["errors"].as_array().unwrap_or_else(|| panic!("{args:?}: no `errors`: {document}"));
        assert!(!errors.is_empty(), "{args:?}: {document}");
        for entry in errors {
            let entry = entry.as_object().unwrap();
            assert!(entry["message"].as_str().is_some_and(|m| !m.starts_with("error:")), "{args:?}: {document}");
            let unknown: Vec<&String> = entry.keys().filter(|k| !allowed.contains(&k.as_str())).collect();
            assert!(unknown.is_empty(), "{args:?}: keys {unknown:?} in {document}");
        }
        assert_eq!(document["usage"].as_bool().unwrap_or(false), *usage, "{args:?}: {document}");
        let snake = document.as_object().unwrap().keys().find(|k| k.contains('_'));
        assert!(snake.is_none(), "{args:?}: {snake:?} is not camelCase");
    }
    // A type error and a semantic one, both in `errors` with place and help.
    let (_, stdout, _) = run(path, &["--output", "json", "validate"]);
    let document: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let replicas = &document["errors"][0];
    assert_eq!(
        (replicas["path"].as_str(), replicas["line"].as_u64()),
        (Some("cortex.replicas"), Some(6)),
        "{document}"
    );
    assert!(replicas["help"].is_string() && document["errors"][1]["help"].is_string(), "{document}");
    assert_eq!(document["error"], "seclab.yaml has 2 problems; nothing was changed");
    // The refusals name where they are, as a problem in the file does.
    let (_, stdout, _) = run(path, &["--output", "json", "-f", "latin1.yaml", "validate"]);
    let document: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!((document["errors"][0]["line"].as_u64(), document["errors"][0]["column"].as_u64()), (Some(1), Some(16)));
    assert_eq!(document["errors"][0]["help"], "Save it as UTF-8 and run seclab again.");
}

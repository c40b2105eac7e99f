//! The tenants' databases: on a real MariaDB server (Debian's, on a loopback port) for
//! `mode: external`, where seclab connects itself; and on the test control plane for
//! `mode: inCluster`, whose setup Job's script is also run against the real server.

mod support;

use std::collections::HashMap;

use base64::Engine;
use serde_json::{Value, json};
use sqlx::mysql::MySqlConnectOptions;
use sqlx::{ConnectOptions, Executor};
use support::lab::{SECRET_ONE, SECRET_TWO, TestLab, admin, api};
use support::mariadb::{MariaDb, ROOT_PASSWORD};

/// Statements that change a MySQL server.
const WRITES: [&str; 9] =
    ["CREATE ", "ALTER ", "GRANT ", "REVOKE ", "DROP ", "INSERT ", "REPLACE ", "DELETE ", "UPDATE "];

/// The tenants example against `server` as an external server (both tenants' passwords
/// generated but barbican's, which comes from the environment).
fn external_lab(name: &str, server: &MariaDb) -> TestLab {
    let lab = TestLab::new("tenants.yaml", name);
    std::fs::write(lab.dir.path().join("mysql-url"), &server.url).unwrap();
    let mut spec = lab.spec();
    spec["tenantDatabase"] = json!({ "mode": "external", "url": "file:mysql-url", "host": "mysql.netdelta.internal" });
    spec["tenants"][1]["database"] = json!({});
    lab.write(&spec);
    lab
}

async fn connect(server: &MariaDb, user: &str, password: &str) -> Result<sqlx::MySqlConnection, sqlx::Error> {
    MySqlConnectOptions::new().host("127.0.0.1").port(server.port).username(user).password(password).connect().await
}

async fn exists(server: &MariaDb, query: &str) -> bool {
    let mut root = connect(server, "root", ROOT_PASSWORD).await.unwrap();
    let count: i64 = sqlx::query_scalar(query).fetch_one(&mut root).await.unwrap();
    count > 0
}

/// The password seclab generated for `tenant`, read from its Secret.
async fn generated_password(lab: &TestLab, tenant: &str) -> String {
    let secrets = api(&admin().await, "", "v1", "Secret", Some(&lab.name));
    let secret = secrets.get(&format!("{}-{tenant}-db", lab.name)).await.unwrap();
    let data = serde_json::to_value(&secret).unwrap()["data"]["password"].as_str().unwrap().to_owned();
    String::from_utf8(base64::engine::general_purpose::STANDARD.decode(data).unwrap()).unwrap()
}

/// Statements after `from` in the general log that change the server.
fn writes_since(server: &MariaDb, from: usize) -> Vec<String> {
    let log = server.general_log();
    log[from..]
        .lines()
        .filter(|line| line.contains("\tQuery\t") || line.contains(" Query\t") || line.contains("Query\t"))
        .filter(|line| {
            let statement = line.rsplit('\t').next().unwrap_or_default().trim_start().to_ascii_uppercase();
            WRITES.iter().any(|w| statement.starts_with(w))
        })
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_external_server_gets_each_tenants_database_and_user_and_an_unchanged_lab_writes_nothing() {
    let server = MariaDb::start();
    let lab = external_lab("t-tenantdb", &server);
    let mut outputs = Vec::new();

    let plan = lab.run(&["plan"], 0);
    for line in ["+ create  database netdelta-barbican", "+ create  database user netdelta-xynexis"] {
        assert!(plan.contains(line), "{line:?} in\n{plan}");
    }
    lab.run(&["plan", "--detailed-exitcode"], 3);
    outputs.push(plan);
    let applied = lab.run(&["apply"], 0);
    assert!(applied.contains("Tenant databases:") && applied.contains("database netdelta-xynexis"), "{applied}");
    outputs.push(applied);

    // Each user works in its own database and is refused on the other's.
    let xynexis_password = generated_password(&lab, "xynexis").await;
    let mut barbican = connect(&server, "netdelta-barbican", SECRET_ONE).await.unwrap();
    barbican.execute("CREATE TABLE `netdelta-barbican`.hosts (id INT PRIMARY KEY)").await.unwrap();
    let refused = barbican.execute("CREATE TABLE `netdelta-xynexis`.hosts (id INT PRIMARY KEY)").await.unwrap_err();
    assert!(refused.to_string().contains("denied"), "{refused}");
    let mut xynexis = connect(&server, "netdelta-xynexis", &xynexis_password).await.unwrap();
    xynexis.execute("CREATE TABLE `netdelta-xynexis`.hosts (id INT PRIMARY KEY)").await.unwrap();
    assert!(xynexis.execute("SELECT * FROM `netdelta-barbican`.hosts").await.is_err());

    // A second apply, a plan and a status send no statement that writes.
    let before = server.general_log().len();
    let again = lab.run(&["apply"], 0);
    assert!(!again.contains("Tenant databases:"), "{again}");
    lab.run(&["plan", "--detailed-exitcode"], 0);
    let status: Value = serde_json::from_str(&lab.run(&["status", "--output", "json"], 0)).unwrap();
    let states: Vec<&str> =
        status["tenantDatabases"].as_array().unwrap().iter().map(|d| d["state"].as_str().unwrap()).collect();
    assert_eq!(states, ["present", "present"], "{status:#}");
    assert_eq!(writes_since(&server, before), Vec::<String>::new());
    outputs.push(again);

    // A grant that drifted (barbican given xynexis's database) is seen and corrected.
    let mut root = connect(&server, "root", ROOT_PASSWORD).await.unwrap();
    root.execute("GRANT SELECT ON `netdelta-xynexis`.* TO 'netdelta-barbican'@'%'").await.unwrap();
    let status = lab.run(&["status"], 0);
    assert!(status.contains("drifted  netdelta-barbican"), "{status}");
    let fixed = lab.run(&["apply"], 0);
    assert!(fixed.contains("~ grant   ALL on netdelta-barbican only to netdelta-barbican"), "{fixed}");
    let mut barbican = connect(&server, "netdelta-barbican", SECRET_ONE).await.unwrap();
    assert!(barbican.execute("SELECT * FROM `netdelta-xynexis`.hosts").await.is_err());
    outputs.extend([status, fixed, lab.run(&["plan", "--output", "json", "-vv"], 0), lab.run(&["status", "-vv"], 0)]);

    for output in &outputs {
        for secret in [SECRET_ONE, xynexis_password.as_str(), ROOT_PASSWORD] {
            assert!(!output.contains(secret), "a password leaked:\n{output}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tenant_leaving_the_file_keeps_its_database_unless_destruction_is_allowed() {
    let server = MariaDb::start();
    let lab = external_lab("t-tenantdb-drop", &server);
    lab.run(&["apply"], 0);
    let mut spec = lab.spec();
    spec["tenants"].as_array_mut().unwrap().retain(|t| t["name"] != "xynexis");
    lab.write(&spec);
    let database = "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'netdelta-xynexis'";
    let user = "SELECT COUNT(*) FROM mysql.user WHERE User = 'netdelta-xynexis'";

    let plan = lab.run(&["plan"], 0);
    assert!(plan.contains("= keep    database netdelta-xynexis") && plan.contains("--allow-destructive"), "{plan}");
    // The user's generated password stays with the user it was made for: no prune of it.
    assert!(!plan.contains("Secret t-tenantdb-drop/t-tenantdb-drop-xynexis-db"), "{plan}");
    let kept = lab.run(&["apply", "--yes"], 0);
    assert!(kept.contains("keep    database netdelta-xynexis"), "{kept}");
    assert!(exists(&server, database).await && exists(&server, user).await);
    let secrets = api(&admin().await, "", "v1", "Secret", Some("t-tenantdb-drop"));
    assert!(secrets.get_opt("t-tenantdb-drop-xynexis-db").await.unwrap().is_some(), "the password is kept");

    let plan = lab.run(&["plan", "--allow-destructive"], 0);
    assert!(
        plan.contains("- drop    database netdelta-xynexis and user netdelta-xynexis  (deletes stored data)"),
        "{plan}"
    );
    assert!(plan.contains("- prune   Secret t-tenantdb-drop/t-tenantdb-drop-xynexis-db"), "{plan}");
    lab.run(&["apply", "--yes", "--allow-destructive"], 0);
    assert!(!exists(&server, database).await && !exists(&server, user).await);
    assert!(
        exists(&server, "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'netdelta-barbican'")
            .await
    );

    // destroy keeps the remaining database without --allow-destructive, and drops it with.
    let destroyed = lab.run(&["destroy", "--yes"], 0);
    assert!(destroyed.contains("keep    database netdelta-barbican"), "{destroyed}");
    lab.run(&["destroy", "--yes", "--allow-destructive"], 0);
    assert!(
        !exists(&server, "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'netdelta-barbican'")
            .await
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_external_server_fails_the_plan_with_the_url_but_not_its_password() {
    let server = MariaDb::start();
    let lab = external_lab("t-tenantdb-down", &server);
    let port = support::nmap::free_port();
    std::fs::write(lab.dir.path().join("mysql-url"), format!("mysql://root:{ROOT_PASSWORD}@127.0.0.1:{port}")).unwrap();
    let output = lab.run(&["plan"], 1);
    assert!(
        output.contains("cannot connect to the tenant database server mysql://root:<redacted>@127.0.0.1"),
        "{output}"
    );
    assert!(output.contains("Connection refused"), "{output}");
    assert!(!output.contains(ROOT_PASSWORD), "{output}");
}

/// The Jobs a plan creates and prunes.
fn planned_jobs(lab: &TestLab) -> (Vec<String>, Vec<String>) {
    let plan: Value = serde_json::from_str(&lab.run(&["plan", "--output", "json"], 0)).unwrap();
    let jobs = |action: &str| -> Vec<String> {
        plan["objects"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|o| o["object"].as_str().unwrap().starts_with("Job") && o["action"] == action)
            .map(|o| o["object"].as_str().unwrap().rsplit('/').next().unwrap().to_owned())
            .collect()
    };
    (jobs("create"), jobs("prune"))
}

/// The in-cluster mode on the test cluster: the server, its Service, the Secrets and the setup
/// Job applied and complete; the Job made anew only when the tenants or a password change.
#[tokio::test(flavor = "multi_thread")]
async fn the_in_cluster_server_and_its_setup_job_are_applied_and_the_job_runs_again_only_when_tenants_change() {
    let mut lab = TestLab::new("tenants.yaml", "t-tenantdb-in");
    lab.run(&["apply", "--wait", "--timeout", "120s"], 0);
    let status: Value = serde_json::from_str(&lab.run(&["status", "--output", "json"], 0)).unwrap();
    let states: Vec<&str> =
        status["tenantDatabases"].as_array().unwrap().iter().map(|d| d["state"].as_str().unwrap()).collect();
    assert_eq!(states, ["present", "present"], "{status:#}");
    let jobs = api(&admin().await, "batch", "v1", "Job", Some(&lab.name));
    let live: Vec<String> =
        jobs.list(&Default::default()).await.unwrap().items.into_iter().filter_map(|j| j.metadata.name).collect();
    assert!(live.len() == 1 && live[0].starts_with("mysql-netdelta-setup-"), "{live:?}");
    let first = live[0].clone();
    assert_eq!(planned_jobs(&lab), (vec![], vec![]), "an unchanged lab keeps its Job");

    let rendered: Value = serde_json::from_str(&lab.run(&["render", "--output", "json"], 0)).unwrap();
    let apps = rendered["objects"].as_array().unwrap().iter().filter(|o| {
        o["kind"] == "Deployment" && o["spec"]["template"]["metadata"]["labels"]["seclab.dev/tenant"].is_string()
    });
    for deployment in apps {
        let env = &deployment["spec"]["template"]["spec"]["containers"][0]["env"];
        let password = env.as_array().unwrap().iter().find(|e| e["name"] == "DB_PASSWORD").unwrap();
        assert!(password.get("value").is_none(), "{password}");
        assert!(password["valueFrom"]["secretKeyRef"]["name"].is_string(), "{password}");
    }

    // A changed password is a new Job (the user's password is set again) ...
    lab.password = SECRET_TWO.to_owned();
    let (created, pruned) = planned_jobs(&lab);
    assert!(created.len() == 1 && created[0] != first && pruned == [first.clone()], "{created:?} {pruned:?}");
    lab.password = SECRET_ONE.to_owned();

    // ... and so is a new tenant.
    let mut spec = lab.spec();
    spec["tenants"].as_array_mut().unwrap().push(json!({ "name": "corvid", "port": 9006 }));
    lab.write(&spec);
    let (created, pruned) = planned_jobs(&lab);
    assert!(created.len() == 1 && created[0] != first && pruned == [first.clone()], "{created:?} {pruned:?}");
    lab.run(&["apply", "--wait", "--timeout", "120s"], 0);
    let status = lab.run(&["status"], 0);
    assert!(status.contains("present  netdelta-corvid (tenant corvid)"), "{status}");
    lab.run(&["destroy", "--yes", "--allow-destructive"], 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_setup_jobs_script_creates_what_the_external_mode_expects_on_a_real_server() {
    let server = MariaDb::start();
    let lab = TestLab::new("tenants.yaml", "t-tenantdb-script");
    let mut spec = lab.spec();
    // Quotes, a backslash before a quote, a dollar: read the same whether the server takes
    // backslashes as escapes or not (set to not, below).
    let awkward = "it's a \\' \"quoted\" pass$word";
    std::fs::write(lab.dir.path().join("xynexis-password"), awkward).unwrap();
    spec["tenants"][1]["database"] = json!({ "password": "file:xynexis-password" });
    lab.write(&spec);
    let rendered: Value = serde_json::from_str(&lab.run(&["render", "--output", "json"], 0)).unwrap();
    let job = rendered["objects"].as_array().unwrap().iter().find(|o| o["kind"] == "Job").unwrap();
    let container = &job["spec"]["template"]["spec"]["containers"][0];
    let script = container["command"][2].as_str().unwrap();
    let mut env: HashMap<&str, String> = HashMap::new();
    for variable in container["env"].as_array().unwrap() {
        let name = variable["name"].as_str().unwrap();
        let value = match (name, variable["valueFrom"]["secretKeyRef"]["name"].as_str()) {
            ("DB_HOST", _) => "127.0.0.1".to_owned(),
            ("DB_PORT", _) => server.port.to_string(),
            ("MYSQL_PWD", _) => ROOT_PASSWORD.to_owned(),
            (_, Some(secret)) if secret.ends_with("barbican-db") => SECRET_ONE.to_owned(),
            (_, Some(secret)) if secret.ends_with("xynexis-db") => awkward.to_owned(),
            _ => panic!("unexpected variable {variable}"),
        };
        env.insert(name, value);
    }
    let mut root = connect(&server, "root", ROOT_PASSWORD).await.unwrap();
    root.execute("SET GLOBAL sql_mode = CONCAT_WS(',', NULLIF(@@GLOBAL.sql_mode, ''), 'NO_BACKSLASH_ESCAPES')")
        .await
        .unwrap();
    let output = std::process::Command::new("sh").arg("-c").arg(script).envs(&env).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(String::from_utf8_lossy(&output.stdout).contains("2 tenant database(s) ready"));
    let mut xynexis = connect(&server, "netdelta-xynexis", awkward).await.unwrap();
    xynexis.execute("CREATE TABLE `netdelta-xynexis`.hosts (id INT PRIMARY KEY)").await.unwrap();
    assert!(xynexis.execute("SELECT 1 FROM `netdelta-barbican`.hosts").await.is_err());

    // Switched to the external mode, seclab finds everything as it wants it.
    std::fs::write(lab.dir.path().join("mysql-url"), &server.url).unwrap();
    spec["tenantDatabase"] = json!({ "mode": "external", "url": "file:mysql-url", "host": "mysql.netdelta.internal" });
    lab.write(&spec);
    let before = server.general_log().len();
    let plan = lab.run(&["plan"], 0);
    assert!(!plan.contains("database netdelta-"), "the Job's work is what the external mode wants:\n{plan}");
    assert_eq!(writes_since(&server, before), Vec::<String>::new());
}

/// The external server speaks TLS only: seclab reaches it with its certificate checked
/// against `tenantDatabase.tlsCa` and its name (`ssl-mode=VERIFY_IDENTITY`), and refuses one
/// another CA vouches for.
#[tokio::test(flavor = "multi_thread")]
async fn an_external_server_is_reached_over_tls_with_its_certificate_verified() {
    let (ca, certificate, key) = support::certs::loopback_server();
    let server = MariaDb::start_tls(&certificate, &key);
    let lab = external_lab("t-tenantdb-tls", &server);
    std::fs::write(lab.dir.path().join("mysql-url"), format!("{}?ssl-mode=VERIFY_IDENTITY", server.url)).unwrap();
    std::fs::write(lab.dir.path().join("ca.pem"), &ca).unwrap();
    let mut spec = lab.spec();
    spec["tenantDatabase"]["tlsCa"] = json!("ca.pem");
    lab.write(&spec);
    let plan = lab.run(&["plan"], 0);
    assert!(plan.contains("+ create  database netdelta-barbican"), "{plan}");

    let (other, _, _) = support::certs::loopback_server();
    std::fs::write(lab.dir.path().join("ca.pem"), &other).unwrap();
    let refused = lab.run(&["plan"], 1);
    assert!(
        refused.contains("cannot connect to the tenant database server")
            && refused.to_lowercase().contains("certificate"),
        "{refused}"
    );
    assert!(!refused.contains(ROOT_PASSWORD), "{refused}");
}

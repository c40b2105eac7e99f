//! seclab killed at any moment: a 200-tenant lab (800 objects) applied, and `apply` killed with SIGKILL at
//! ten moments spread over its stages, each time with new work to do (creates, updates,
//! prunes). After each kill every object labelled as the lab's is in its inventory; the next
//! apply converges; and `destroy --allow-destructive --yes` leaves nothing of the lab, by a
//! LIST of every kind and by every object the audit log shows seclab writing.

mod support;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use seclab::cluster::inventory::Inventory;
use serde_json::{Value, json};
use support::lab::{TestLab, admin, api, audited, key, labelled};

const LAB: &str = "t-kill";

/// The tenants example with `tenants` sites whose apps run image tag `tag` (no scans
/// scheduled, no pods: the fake nodes stay quiet).
fn spec_with(lab: &TestLab, tenants: usize, tag: u32) -> Value {
    let mut spec = lab.spec();
    spec.as_object_mut().unwrap().remove("tenantDatabase");
    let sites: Vec<Value> = (0..tenants)
        .map(|i| {
            json!({ "name": format!("site{i:03}"), "image": format!("registry.netdelta.home.arpa/netdelta/app:{tag}"),
                "replicas": 0, "database": { "password": { "secretRef": { "name": "db", "key": "password" } } },
                "scans": [{ "name": "dmz", "targets": ["192.0.2.0/28"], "schedule": "0 2 * * *", "suspend": true }] })
        })
        .collect();
    spec["tenants"] = Value::Array(sites);
    spec
}

/// Runs `apply` and kills it with SIGKILL once it has reported `after` objects done; the
/// number it reported. (An apply that finishes first is not killed.)
fn apply_killed_after(lab: &TestLab, after: usize) -> usize {
    lab.grant(&lab.file());
    let mut child = Command::new(assert_cmd::cargo::cargo_bin("seclab"))
        .arg("--file")
        .arg(lab.file())
        .arg("--kubeconfig")
        .arg(&lab.kubeconfig)
        .args(["apply", "--yes", "--allow-destructive"])
        .env("NO_COLOR", "1")
        .env_remove("KUBECONFIG")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut done = 0;
    for line in BufReader::new(child.stdout.take().unwrap()).lines().map_while(Result::ok) {
        if ["created ", "updated ", "pruned "].iter().any(|verb| line.starts_with(verb)) {
            done += 1;
            if done == after {
                child.kill().unwrap(); // SIGKILL
                break;
            }
        }
    }
    child.wait().unwrap();
    done
}

/// The objects the lab's inventory lists, as `labelled` names them.
async fn inventory(client: &kube::Client) -> BTreeSet<String> {
    let maps = api(client, "", "v1", "ConfigMap", Some(LAB));
    let Some(parent) = maps.get_opt(&format!("seclab-{LAB}")).await.unwrap() else { return BTreeSet::new() };
    let mut listed = Inventory::new(LAB, LAB);
    listed.read(&serde_json::to_value(&parent).unwrap());
    listed.places().map(|(member, _)| key(&member.kind, member.namespace.as_deref(), &member.name)).collect()
}

#[test]
fn apply_killed_at_ten_moments_always_converges_and_destroy_leaves_nothing() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let client = runtime.block_on(admin());
    let lab = TestLab::new("tenants.yaml", LAB);
    // Each round: the file's next state (tenants, image tag) and how far through its apply
    // (in objects reported done) the kill comes. Each state differs from the last, so each
    // apply has work: creates, updates, prunes. Early kills land among the config objects,
    // late ones among workloads, Ingresses or prunes.
    let rounds: [(usize, u32, usize); 10] = [
        (200, 1, 1),   // about 800 objects to create: killed at the very start
        (200, 2, 100), // 200 Deployments to update: killed halfway
        (120, 2, 30),  // 80 tenants removed, 320 prunes: killed early
        (200, 3, 400), // 320 creates and 120 updates: killed late
        (200, 4, 5),   // 200 updates: killed at once
        (100, 4, 350), // 400 prunes (half the lab): killed near the end
        (200, 5, 250), // 400 creates and 100 updates
        (200, 6, 199), // 200 updates: killed at the last but one
        (180, 6, 60),  // 80 prunes
        (180, 7, 90),  // 180 updates
    ];
    let events = audited(|| {
        for (round, (tenants, tag, kill_after)) in rounds.into_iter().enumerate() {
            lab.write(&spec_with(&lab, tenants, tag));
            let done = apply_killed_after(&lab, kill_after);
            assert_eq!(done, kill_after, "round {round}: the apply had less to do than the kill waits for");
            let (labelled_now, listed) =
                runtime.block_on(async { (labelled(&client, LAB).await, inventory(&client).await) });
            // The inventory lives in the lab's namespace, which is created first: killed right
            // after it, the namespace alone exists unlisted (it carries the set's label, by
            // which apply and destroy find it too).
            let namespace_alone = listed.is_empty() && labelled_now == BTreeSet::from([format!("Namespace {LAB}")]);
            let unlisted: Vec<&String> = labelled_now.difference(&listed).filter(|_| !namespace_alone).collect();
            assert!(
                unlisted.is_empty(),
                "round {round}, killed after {done} objects: not in the inventory: {unlisted:?}"
            );
            let output = lab.run(&["apply", "--yes", "--allow-destructive"], 0);
            let (labelled_now, listed) =
                runtime.block_on(async { (labelled(&client, LAB).await, inventory(&client).await) });
            let rendered = lab.rendered();
            assert_eq!(
                labelled_now, rendered,
                "round {round}: the lab after the apply that followed the kill\n{output}"
            );
            let extra: Vec<&String> = listed.difference(&rendered).filter(|k| !k.starts_with("ConfigMap")).collect();
            assert!(extra.is_empty(), "round {round}: the inventory lists what is gone: {extra:?}");
        }
        lab.run(&["destroy", "--yes", "--allow-destructive"], 0);
    });

    assert_eq!(runtime.block_on(labelled(&client, LAB)), BTreeSet::new(), "a LIST of every kind finds nothing");
    // Every object seclab wrote during the test, by its request path: gone (the namespace
    // takes its objects with it, in the background).
    let written: BTreeSet<String> = events
        .iter()
        .filter(|e| e.user == "seclab-limited" && e.is_write() && e.verb != "delete" && e.code < 300)
        .map(|e| e.uri.split('?').next().unwrap().to_owned())
        .collect();
    assert!(written.len() >= 800, "{} objects written", written.len());
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut left: Vec<String> = written.into_iter().collect();
    while !left.is_empty() && Instant::now() < deadline {
        left = runtime.block_on(async {
            let mut still = Vec::new();
            for path in left {
                let request = http::Request::get(&path).body(Vec::new()).unwrap();
                if client.request::<Value>(request).await.is_ok() {
                    still.push(path);
                }
            }
            still
        });
        if !left.is_empty() {
            std::thread::sleep(Duration::from_secs(1));
        }
    }
    assert!(left.is_empty(), "still there after destroy: {:?}", &left[..left.len().min(10)]);
}

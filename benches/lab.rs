//! Where a save's time goes before any request: loading and checking the file, rendering it
//! (cold, and again after a one-line change with the documents of the last render kept, as
//! `watch` does), and deciding the plan against a live copy of every object that is already
//! as wanted (the comparison a resync makes). `bench/watch.sh` runs it on its lab:
//!
//!     SECLAB_BENCH_LAB=lab.yaml cargo bench --bench lab
//!
//! Without `SECLAB_BENCH_LAB` it generates the 1,000-tenant lab with `bench/gen_lab.py`.
//! `SECLAB_BENCH_ROUNDS=50` runs each stage more often, and `SECLAB_BENCH_STAGES=save` runs
//! only the stages named (`load`, `render`, `save`, `decide`): for a profiler.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use kube::discovery::ApiResource;
use serde_json::{Map, Value, json};

use seclab::cluster::Kind;
use seclab::cluster::inventory::Inventory;
use seclab::config;
use seclab::identity::{KindName, MANAGER};
use seclab::reconcile::decide::decide;
use seclab::reconcile::model::{Change, Desired, Observed, Options};
use seclab::render::{self, ParsedDocuments, Templates};

/// Rounds of each stage, unless `SECLAB_BENCH_ROUNDS` says; the median is printed.
const ROUNDS: usize = 7;

/// The allocator the seclab binary ships with.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let lab = match std::env::var_os("SECLAB_BENCH_LAB") {
        Some(path) => PathBuf::from(path),
        None => generate(dir.path()),
    };
    let text = std::fs::read_to_string(&lab).unwrap();
    // The save: one tenant's environment gets a new value, as an editor would change it.
    let edited = dir.path().join("edited.yaml");
    std::fs::write(&edited, text.replacen("NETDELTA_MODE: bench", "NETDELTA_MODE: edited", 1)).unwrap();
    let templates = Templates::embedded();

    let load = median("load", || drop(config::load(&lab).unwrap()));
    let loaded = config::load(&lab).unwrap();
    let render_cold = median("render", || drop(render::render(&loaded, &templates).unwrap()));
    let mut parsed = ParsedDocuments::for_applyset("applyset-bench");
    render::render_with(&loaded, &templates, &mut parsed).unwrap();
    let mut flip = false;
    let save = median("save", || {
        // Alternate between the two files, so that each round is a change.
        flip = !flip;
        let lab = config::load(if flip { &edited } else { &lab }).unwrap();
        let rendered = render::render_with(&lab, &templates, &mut parsed).unwrap();
        drop(Desired::new(rendered, lab.name(), "applyset-bench"));
    });
    let desired = Desired::new(render::render(&loaded, &templates).unwrap(), loaded.name(), "applyset-bench");
    let observed = observed_as_wanted(&desired, &loaded.spec().cluster.namespace, loaded.name());
    let decide_time = median("decide", || {
        let plan = decide(loaded.name(), &desired, &observed, Options { prune: true, ..Options::default() });
        assert!(plan.steps.iter().all(|s| matches!(s.change, Change::Unchanged)), "the live copy is as wanted");
    });

    println!("lab {}: {} objects", lab.display(), desired.objects.len());
    println!("{:<44} {:>9}", "stage (median)", "ms");
    for (stage, time) in [
        ("load and check the file", load),
        ("render, cold", render_cold),
        ("a save: load, render with last documents", save),
        ("decide against an unchanged lab", decide_time),
    ] {
        match time {
            Some(time) => println!("{stage:<44} {:>9.1}", time.as_secs_f64() * 1000.0),
            None => println!("{stage:<44} {:>9}", "-"),
        }
    }
}

fn generate(dir: &Path) -> PathBuf {
    let path = dir.join("lab.yaml");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/gen_lab.py");
    let status = std::process::Command::new("python3")
        .arg(script)
        .args(["--tenants", "1000", "bench", "bench"])
        .arg(&path)
        .status()
        .unwrap();
    assert!(status.success(), "bench/gen_lab.py failed");
    path
}

fn median(name: &str, mut stage: impl FnMut()) -> Option<Duration> {
    let chosen = std::env::var("SECLAB_BENCH_STAGES").map_or(true, |stages| stages.split(',').any(|s| s == name));
    if !chosen {
        return None;
    }
    let rounds = std::env::var("SECLAB_BENCH_ROUNDS").ok().and_then(|r| r.parse().ok()).unwrap_or(ROUNDS);
    stage(); // warm-up
    let mut times: Vec<Duration> = (0..rounds.max(1))
        .map(|_| {
            let started = Instant::now();
            stage();
            started.elapsed()
        })
        .collect();
    times.sort();
    Some(times[times.len() / 2])
}

/// A cluster holding every desired object as applied by seclab: the manifest, a uid, and
/// seclab's managed field set.
fn observed_as_wanted(desired: &Desired, namespace: &str, lab: &str) -> Observed {
    let mut kinds = HashMap::new();
    let mut live = HashMap::new();
    for (object, api_version) in &desired.objects {
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        let resource = ApiResource {
            group: group.to_owned(),
            version: version.to_owned(),
            api_version: api_version.clone(),
            kind: object.key.kind.clone(),
            plural: format!("{}s", object.key.kind.to_lowercase()),
        };
        kinds.insert(
            KindName::new(api_version.clone(), object.key.kind.clone()),
            Kind { resource, namespaced: object.key.namespace.is_some() },
        );
        let mut manifest = object.manifest.as_ref().clone();
        let fields = field_set(&manifest);
        manifest["metadata"]["uid"] = json!("00000000-0000-0000-0000-000000000000");
        manifest["metadata"]["managedFields"] =
            json!([{ "manager": MANAGER, "operation": "Apply", "fieldsType": "FieldsV1", "fieldsV1": fields }]);
        live.insert(object.key.clone(), std::sync::Arc::new(manifest));
    }
    let mut inventory = Inventory::new(lab, namespace);
    inventory.members = std::sync::Arc::new(desired.objects.iter().map(|(o, v)| (o.key.clone(), v.clone())).collect());
    Observed {
        inventory,
        inventory_exists: true,
        kinds,
        not_served_yet: Default::default(),
        live,
        unchanged: Default::default(),
    }
}

/// The FieldsV1 set of `value`: lists of mappings keyed by `name` (or by position).
fn field_set(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut set = Map::new();
            set.insert(".".into(), json!({}));
            for (key, child) in map {
                set.insert(format!("f:{key}"), field_set(child));
            }
            Value::Object(set)
        }
        Value::Array(items) => {
            let mut set = Map::new();
            for (index, item) in items.iter().enumerate() {
                let key = match item.get("name") {
                    Some(name) => format!("k:{}", json!({ "name": name })),
                    None if item.is_object() => format!("i:{index}"),
                    None => format!("v:{item}"),
                };
                set.insert(key, if item.is_object() { field_set(item) } else { json!({}) });
            }
            Value::Object(set)
        }
        _ => json!({}),
    }
}

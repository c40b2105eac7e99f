//! `seclab schema`: a JSON Schema that accepts every example and rejects unknown fields.

mod support;

use support::{EXAMPLES, example, root, run};

fn schema() -> jsonschema::Validator {
    let (code, stdout, _) = run(&root(), &["schema"]);
    assert_eq!(code, 0);
    let schema: serde_json::Value = serde_json::from_str(&stdout).expect("the schema is JSON");
    jsonschema::validator_for(&schema).expect("the schema is a valid JSON Schema")
}

fn yaml_as_json(text: &str) -> serde_json::Value {
    serde_yaml::from_str(text).expect("valid YAML")
}

#[test]
fn the_schema_accepts_every_example() {
    let validator = schema();
    for name in EXAMPLES {
        let instance = yaml_as_json(&std::fs::read_to_string(example(name)).unwrap());
        let errors: Vec<String> =
            validator.iter_errors(&instance).map(|e| format!("{} at {}", e, e.instance_path())).collect();
        assert!(errors.is_empty(), "{name}: {errors:?}");
    }
}

#[test]
fn the_schema_rejects_unknown_fields_and_literal_secrets() {
    let validator = schema();
    let base = std::fs::read_to_string(example("homelab.yaml")).unwrap();
    let unknown = yaml_as_json(&base.replace("  jobVolume: data", "  jobVolume: data\n  replica: 2"));
    assert!(!validator.is_valid(&unknown));
    let tenants = std::fs::read_to_string(example("tenants.yaml")).unwrap();
    let literal = tenants.replace("password: env:BARBICAN_DB_PASSWORD", "password: hunter2");
    assert_ne!(literal, tenants);
    assert!(!validator.is_valid(&yaml_as_json(&literal)));
}

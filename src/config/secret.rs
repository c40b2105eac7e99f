//! Where a secret value comes from. The file may only reference secrets, never hold them.

use std::borrow::Cow;
use std::path::Path;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A reference to a secret value: an environment variable, a file, or a Kubernetes Secret.
///
/// A literal value in the file parses as [`SecretSource::Literal`], which validation rejects;
/// the literal itself is dropped on parse, so it cannot leak into messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// `env:NAME`: read from seclab's environment when applying.
    Env(String),
    /// `file:PATH`: read from a file when applying (relative to the desired-state file).
    File(String),
    /// `secretRef: {name, key}`: an existing Secret in the component's namespace.
    SecretRef(SecretKeyRef),
    /// A value written in the file itself: always an error.
    Literal,
}

/// A key of an existing Kubernetes Secret.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SecretKeyRef {
    /// Name of the Secret, in the namespace of the component that uses it.
    pub name: String,
    /// Key within the Secret's data.
    pub key: String,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Written {
    Text(String),
    Reference {
        #[serde(rename = "secretRef")]
        secret_ref: SecretKeyRef,
    },
}

/// Why a secret seclab reads itself cannot be read. It names the reference, never a value.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// `env:NAME`, and the variable is not set.
    #[error("environment variable {0} is not set")]
    Unset(String),
    /// `file:PATH`, and the file cannot be read.
    #[error("cannot read secret file {path}")]
    Unreadable {
        /// The file, as the desired-state file names it.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// A `secretRef`: the value lives in the cluster, where seclab does not read it.
    #[error("secret {name}/{key} lives in the cluster; what seclab reads itself takes `env:VAR` or `file:PATH`")]
    InCluster {
        /// The Secret.
        name: String,
        /// Its key.
        key: String,
    },
    /// A value written in the file (validation refuses it first).
    #[error("a literal secret is not allowed")]
    Literal,
}

impl SecretSource {
    /// Reads a secret seclab needs itself: `env:` from its environment, `file:` relative to
    /// `base_dir` (the desired-state file's directory), without a trailing newline.
    pub fn resolve(&self, base_dir: &Path) -> Result<String, ResolveError> {
        match self {
            Self::Env(var) => std::env::var(var).map_err(|_| ResolveError::Unset(var.clone())),
            Self::File(path) => std::fs::read_to_string(base_dir.join(path))
                .map(|s| s.trim_end_matches(['\n', '\r']).to_owned())
                .map_err(|source| ResolveError::Unreadable { path: path.clone(), source }),
            Self::SecretRef(reference) => {
                Err(ResolveError::InCluster { name: reference.name.clone(), key: reference.key.clone() })
            }
            Self::Literal => Err(ResolveError::Literal),
        }
    }
}

impl<'de> Deserialize<'de> for SecretSource {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let written = Written::deserialize(deserializer).map_err(|_| {
            serde::de::Error::custom("expected a secret reference: `env:VAR`, `file:PATH` or `secretRef: {name, key}`")
        })?;
        Ok(match written {
            Written::Reference { secret_ref } => Self::SecretRef(secret_ref),
            Written::Text(text) => match text.split_once(':') {
                // Named even when empty or malformed: validation says what is wrong with it.
                Some(("env", var)) => Self::Env(var.to_owned()),
                Some(("file", path)) => Self::File(path.to_owned()),
                _ => Self::Literal,
            },
        })
    }
}

impl Serialize for SecretSource {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Env(var) => serializer.serialize_str(&format!("env:{var}")),
            Self::File(path) => serializer.serialize_str(&format!("file:{path}")),
            Self::SecretRef(reference) => {
                use serde::ser::SerializeMap;
                let mut map = serializer.serialize_map(Some(1))?;
                map.serialize_entry("secretRef", reference)?;
                map.end()
            }
            Self::Literal => serializer.serialize_str("<redacted>"),
        }
    }
}

impl JsonSchema for SecretSource {
    fn schema_name() -> Cow<'static, str> {
        "SecretSource".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let reference = generator.subschema_for::<SecretKeyRef>();
        json_schema!({
            "description": "A secret, by reference only: `env:VAR`, `file:PATH`, or `secretRef: {name, key}`.",
            "oneOf": [
                { "type": "string", "pattern": "^(env|file):.+$" },
                {
                    "type": "object",
                    "properties": { "secretRef": reference },
                    "required": ["secretRef"],
                    "additionalProperties": false
                }
            ]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> SecretSource {
        serde_yaml::from_str(yaml).unwrap()
    }

    #[test]
    fn references_parse_and_literals_are_dropped() {
        assert_eq!(parse("env:DB_PASSWORD"), SecretSource::Env("DB_PASSWORD".into()));
        assert_eq!(parse("file:secrets/db"), SecretSource::File("secrets/db".into()));
        assert_eq!(
            parse("secretRef: {name: db, key: password}"),
            SecretSource::SecretRef(SecretKeyRef { name: "db".into(), key: "password".into() })
        );
        assert_eq!(parse("hunter2"), SecretSource::Literal);
        // An empty reference stays one, for validation to name.
        assert_eq!(parse("'env:'"), SecretSource::Env(String::new()));
        assert!(!format!("{:?}", parse("hunter2")).contains("hunter2"));
    }
}

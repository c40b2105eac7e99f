//! Placement: which node a workload's pods run on and what they may use. Every component and
//! tenant takes the same three fields, `nodeSelector`, `tolerations` and `resources`, with the
//! meaning Kubernetes gives them, so a home lab with several nodes puts Elasticsearch on the
//! big one and the registry beside its disk.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::fields::{self, Problem};
use super::path::FieldPath;

/// A toleration of a node taint, as a pod spec takes it.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(deny_unknown_fields)]
pub struct Toleration {
    /// The taint's key; with `operator: Exists` and no key, every taint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// `Equal` (the taint's value must be `value`) or `Exists` (any value).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<TolerationOperator>,
    /// The taint's value, with `operator: Equal`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// The taint's effect; every effect when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effect: Option<TaintEffect>,
    /// `NoExecute` only: how long the pods stay once the taint appears (seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub toleration_seconds: Option<i64>,
}

/// How a toleration matches a taint's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
pub enum TolerationOperator {
    /// The values are equal.
    Equal,
    /// Any value.
    Exists,
}

/// What a taint does to pods that do not tolerate it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
pub enum TaintEffect {
    /// New pods are not scheduled there.
    NoSchedule,
    /// The scheduler avoids the node.
    PreferNoSchedule,
    /// Running pods are evicted too.
    NoExecute,
}

/// Compute resources of a workload's main container, as Kubernetes quantities by resource
/// name (`cpu: 500m`, `memory: 1Gi`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(default)]
#[schemars(deny_unknown_fields)]
pub struct Resources {
    /// What the scheduler reserves on the node.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub requests: BTreeMap<String, String>,
    /// What the container may use at most.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub limits: BTreeMap<String, String>,
}

impl Resources {
    /// The memory request and limit both `quantity`, as a JVM's container wants them: its
    /// heap is sized from the limit, and a request below it only invites eviction.
    pub fn memory(quantity: &str) -> Self {
        let memory = BTreeMap::from([("memory".to_owned(), quantity.to_owned())]);
        Self { requests: memory.clone(), limits: memory }
    }

    /// The memory the container may use, in bytes: its limit, else its request.
    pub fn memory_bytes(&self) -> Option<f64> {
        let quantity = self.limits.get("memory").or_else(|| self.requests.get("memory"))?;
        fields::resource_quantity(quantity).ok()
    }
}

/// JVM options for a heap of half of `memory` bytes, the rest left to the JVM's own memory
/// and the page cache (Elastic's and OpenSearch's sizing advice): `-Xms1024m -Xmx1024m`.
pub fn half_heap(memory: f64) -> String {
    let mebibytes = (memory / 2.0 / 1_048_576.0).floor().max(1.0);
    format!("-Xms{mebibytes}m -Xmx{mebibytes}m")
}

/// The largest heap `options` set with `-Xmx` (the last one counts, as for the JVM), in bytes.
pub fn max_heap(options: &str) -> Option<f64> {
    let value = options.split_whitespace().filter_map(|o| o.strip_prefix("-Xmx")).next_back()?;
    let (digits, scale) = match value.as_bytes().last()?.to_ascii_lowercase() {
        b'k' => (&value[..value.len() - 1], 1024.0),
        b'm' => (&value[..value.len() - 1], 1_048_576.0),
        b'g' => (&value[..value.len() - 1], 1_073_741_824.0),
        b't' => (&value[..value.len() - 1], 1_099_511_627_776.0),
        _ => (value, 1.0),
    };
    digits.parse::<u64>().ok().map(|n| n as f64 * scale)
}

/// One workload's placement, borrowed from the section of the file that sets it.
#[derive(Debug, Clone, Copy)]
pub struct Placement<'a> {
    /// Labels the node must carry.
    pub node_selector: &'a BTreeMap<String, String>,
    /// Taints the pods tolerate.
    pub tolerations: &'a [Toleration],
    /// The main container's requests and limits.
    pub resources: Option<&'a Resources>,
}

impl<'a> Placement<'a> {
    /// The placement of these three fields.
    pub fn new(
        node_selector: &'a BTreeMap<String, String>,
        tolerations: &'a [Toleration],
        resources: &'a Option<Resources>,
    ) -> Self {
        Self { node_selector, tolerations, resources: resources.as_ref() }
    }
}

impl Placement<'_> {
    /// Every problem of these fields, each with the path under `base` (the section that sets
    /// them) where it is written, and whether it is the key there that is wrong rather than
    /// its value (a `nodeSelector` label key).
    pub(crate) fn problems(&self, base: &FieldPath) -> Vec<(FieldPath, Problem, bool)> {
        let mut found = Vec::new();
        for (key, value) in self.node_selector {
            let path = base.key("nodeSelector").key(key);
            found.extend(fields::label_key(key).err().map(|p| (path.clone(), p, true)));
            found.extend(fields::label_value(value).err().map(|p| (path, p, false)));
        }
        let values = |problems: Vec<(FieldPath, Problem)>| problems.into_iter().map(|(path, p)| (path, p, false));
        for (i, toleration) in self.tolerations.iter().enumerate() {
            found.extend(values(toleration_problems(toleration, &base.key("tolerations").index(i))));
        }
        if let Some(resources) = self.resources {
            found.extend(values(resource_problems(resources, &base.key("resources"))));
        }
        found
    }
}

fn toleration_problems(toleration: &Toleration, path: &FieldPath) -> Vec<(FieldPath, Problem)> {
    let mut found = Vec::new();
    let exists = toleration.operator == Some(TolerationOperator::Exists);
    match &toleration.key {
        Some(key) => found.extend(fields::label_key(key).err().map(|p| (path.key("key"), p))),
        None if !exists => found.push((
            path.clone(),
            Problem {
                message: "the toleration has no `key`".into(),
                hint: Some("name the taint's `key`, or set `operator: Exists` to tolerate every taint".into()),
            },
        )),
        None => {}
    }
    match (&toleration.value, exists) {
        (Some(_), true) => found.push((
            path.key("value"),
            Problem {
                message: "a toleration with `operator: Exists` takes no `value`".into(),
                hint: Some("remove `value`, or use `operator: Equal`".into()),
            },
        )),
        (Some(value), false) => found.extend(fields::label_value(value).err().map(|p| (path.key("value"), p))),
        (None, _) => {}
    }
    if toleration.toleration_seconds.is_some() && toleration.effect != Some(TaintEffect::NoExecute) {
        found.push((
            path.key("tolerationSeconds"),
            Problem {
                message: "`tolerationSeconds` applies to `effect: NoExecute` only".into(),
                hint: Some("set `effect: NoExecute`, or remove `tolerationSeconds`".into()),
            },
        ));
    }
    found
}

fn resource_problems<'a>(resources: &'a Resources, path: &FieldPath) -> Vec<(FieldPath, Problem)> {
    let mut found = Vec::new();
    let mut parsed = |section: &str, list: &'a BTreeMap<String, String>| {
        let mut values: BTreeMap<&'a str, f64> = BTreeMap::new();
        for (name, quantity) in list {
            let at = path.key(section).key(name);
            if let Err(problem) = resource_name(name) {
                found.push((at.clone(), problem));
            }
            match fields::resource_quantity(quantity) {
                Ok(value) => {
                    values.insert(name.as_str(), value);
                }
                Err(problem) => found.push((at, problem)),
            }
        }
        values
    };
    let requests = parsed("requests", &resources.requests);
    let limits = parsed("limits", &resources.limits);
    for (name, request) in requests {
        if let Some(&limit) = limits.get(name)
            && request > limit
        {
            found.push((
                path.key("requests").key(name),
                Problem {
                    message: format!(
                        "the {name} request `{}` is more than its limit `{}`",
                        resources.requests[name], resources.limits[name]
                    ),
                    hint: Some(
                        "Kubernetes refuses a request above its limit: lower the request or raise the limit".into(),
                    ),
                },
            ));
        }
    }
    found
}

/// A resource name Kubernetes takes in `requests` and `limits`.
fn resource_name(name: &str) -> Result<(), Problem> {
    const STANDARD: [&str; 3] = ["cpu", "memory", "ephemeral-storage"];
    if STANDARD.contains(&name)
        || name.starts_with("hugepages-")
        || (name.contains('/') && fields::label_key(name).is_ok())
    {
        Ok(())
    } else {
        let hint = match fields::suggest(name, STANDARD.iter().copied()) {
            Some(close) => format!("did you mean `{close}`?"),
            None => "use `cpu`, `memory`, `ephemeral-storage`, or an extended resource such as `nvidia.com/gpu`".into(),
        };
        Err(Problem { message: format!("`{name}` is not a compute resource"), hint: Some(hint) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_heap_is_half_the_memory_and_read_back_from_its_options() {
        let two_gibibytes = Resources::memory("2Gi").memory_bytes().unwrap();
        assert_eq!(half_heap(two_gibibytes), "-Xms1024m -Xmx1024m");
        assert_eq!(max_heap("-Xms1g -Xmx1g -XX:+UseG1GC"), Some(1_073_741_824.0));
        assert_eq!(max_heap("-Xmx512m -Xmx3G"), Some(3.0 * 1_073_741_824.0));
        assert_eq!(max_heap("-Xmx2048"), Some(2048.0));
        assert_eq!(max_heap("-Xms1g"), None);
        assert_eq!(max_heap("-Xmxlots"), None);
        let request_only = Resources { requests: Resources::memory("1Gi").requests, ..Resources::default() };
        assert_eq!(request_only.memory_bytes(), Some(1_073_741_824.0));
        assert_eq!(Resources::default().memory_bytes(), None);
    }
}

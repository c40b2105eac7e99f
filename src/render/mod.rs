//! Rendering: the validated lab through the templates into checked, labelled Kubernetes
//! objects and node-side files. Deterministic: the same file gives the same bytes.

mod context;
mod objects;
mod output;
mod templates;

use std::collections::HashMap;
use std::path::PathBuf;

use serde::Serialize;

use crate::config::Lab;

pub use context::{CertificateRequest, SecretOrigin, SecretToCreate};
pub use objects::{COMPONENT, MANAGED_BY, Object, ObjectKey, PART_OF, ParsedDocuments};
pub use output::WriteError;
pub use templates::Templates;

/// The template folder whose files are node-side files rather than Kubernetes objects.
const NODE_FOLDER: &str = "node";

/// Where each built-in node-side file goes, and what it is for.
const NODE_FILES: [(&str, &str, &str); 3] = [
    (
        "registries.yaml",
        "/etc/rancher/k3s/registries.yaml",
        "k3s pulls from the lab registry (restart k3s after changing it)",
    ),
    ("daemon.json", "/etc/docker/daemon.json", "docker pushes to the lab registry (restart docker after changing it)"),
    ("dnsmasq.conf", "/etc/dnsmasq.d/seclab.conf", "dnsmasq sends every name under the lab domain to the node"),
];

/// Everything a lab renders to.
#[derive(Debug, Clone)]
pub struct Rendered {
    /// Kubernetes objects, in template order.
    pub objects: Vec<Object>,
    /// Files for the node itself (k3s, docker, dnsmasq settings).
    pub node_files: Vec<NodeFile>,
    /// Secrets the objects refer to that apply creates (values are never rendered).
    pub secrets: Vec<SecretToCreate>,
}

/// A file to install on the node, outside Kubernetes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeFile {
    /// File name in the template set (`registries.yaml`).
    pub name: String,
    /// Where it belongs on the node.
    pub install_path: String,
    /// What it does.
    pub purpose: String,
    /// Its content.
    pub content: String,
}

/// Why rendering failed. Each names the template file, and the line where one is known.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// A template could not be compiled or evaluated.
    #[error("template {origin}{}: {message}", line.map(|l| format!(":{l}")).unwrap_or_default())]
    Template {
        /// The template's file.
        origin: String,
        /// Line in the template.
        line: Option<usize>,
        /// What went wrong.
        message: String,
    },
    /// A template's output is not a valid object.
    #[error("template {origin} rendered an invalid object: {message}")]
    Object {
        /// The template's file.
        origin: String,
        /// What is wrong.
        message: String,
    },
    /// Two templates rendered the same object.
    #[error("{key} is rendered twice, by {first} and by {second}; give one of them another name")]
    Duplicate {
        /// The object.
        key: Box<ObjectKey>,
        /// The first template.
        first: String,
        /// The second template.
        second: String,
    },
    /// The override directory could not be read.
    #[error("cannot read templates directory {}: {source}", path.display())]
    TemplateDir {
        /// The directory.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
}

/// Renders `lab` with `templates`.
pub fn render(lab: &Lab, templates: &Templates) -> Result<Rendered, RenderError> {
    render_with(lab, templates, &mut ParsedDocuments::none())
}

/// Renders `lab` with `templates`, reusing the documents `parsed` holds from an earlier
/// render (the same text parses to the same object) and leaving this render's in it.
/// Templates render on as many threads as the machine has cores (up to four).
pub fn render_with(lab: &Lab, templates: &Templates, parsed: &mut ParsedDocuments) -> Result<Rendered, RenderError> {
    let context = context::build(lab);
    // Converted once: each template would otherwise convert the whole context again.
    let values = minijinja::Value::from(minijinja::value::Serde(&context.value));
    let env = templates.environment();
    let names: Vec<String> = templates
        .names()?
        .into_iter()
        .filter(|name| name.split_once('/').is_some_and(|(c, _)| c == NODE_FOLDER || enabled(&context.value, c)))
        .collect();
    let earlier: &ParsedDocuments = parsed;
    let render_one = |name: &str| -> Result<Output, RenderError> {
        let (component, file) = name.split_once('/').expect("names hold a folder");
        let text = env
            .get_template(name)
            .and_then(|template| template.render(&values))
            .map_err(|error| template_error(templates, name, &error))?;
        if component == NODE_FOLDER {
            return Ok(Output::Node((!text.trim().is_empty()).then(|| node_file(file, text))));
        }
        if !name.ends_with(".yaml") {
            return Ok(Output::Node(None));
        }
        objects::parse(text, name, component, lab.name(), earlier)
            .map(Output::Objects)
            .map_err(|message| RenderError::Object { origin: templates.origin(name), message })
    };
    let outputs = in_parallel(&names, render_one);
    let mut kept = parsed.like();
    let mut rendered = Rendered { objects: Vec::new(), node_files: Vec::new(), secrets: context.secrets };
    let mut seen: HashMap<ObjectKey, String> = HashMap::new();
    for (name, output) in names.iter().zip(outputs) {
        match output? {
            Output::Node(file) => rendered.node_files.extend(file),
            Output::Objects(objects) => {
                for object in kept.keep(objects) {
                    if let Some(first) = seen.insert(object.key.clone(), name.clone()) {
                        return Err(RenderError::Duplicate { key: Box::new(object.key), first, second: name.clone() });
                    }
                    rendered.objects.push(object);
                }
            }
        }
    }
    *parsed = kept;
    Ok(rendered)
}

/// What one template gave.
enum Output {
    /// A node-side file (`None`: the template rendered nothing, or is not YAML).
    Node(Option<NodeFile>),
    /// Kubernetes objects.
    Objects(objects::TemplateObjects),
}

/// `work` on each name, on up to four threads, the results in the order of `names`.
fn in_parallel<T: Send>(names: &[String], work: impl Fn(&str) -> T + Sync) -> Vec<T> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, 4).min(names.len());
    if threads <= 1 {
        return names.iter().map(|name| work(name)).collect();
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut results: Vec<(usize, T)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let index = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(name) = names.get(index) else { return done };
                        done.push((index, work(name)));
                    }
                })
            })
            .collect();
        workers.into_iter().flat_map(|worker| worker.join().expect("a render thread does not panic")).collect()
    });
    results.sort_by_key(|(index, _)| *index);
    results.into_iter().map(|(_, result)| result).collect()
}

/// A component renders unless its section says `enabled: false`.
fn enabled(context: &serde_json::Value, component: &str) -> bool {
    context.get(component).and_then(|section| section.get("enabled")).and_then(serde_json::Value::as_bool)
        != Some(false)
}

fn node_file(name: &str, content: String) -> NodeFile {
    let (install_path, purpose) = NODE_FILES
        .iter()
        .find(|(file, _, _)| *file == name)
        .map(|(_, path, purpose)| (path.to_string(), purpose.to_string()))
        .unwrap_or_else(|| (name.to_owned(), "added by the templates directory".to_owned()));
    NodeFile { name: name.to_owned(), install_path, purpose, content }
}

fn template_error(templates: &Templates, name: &str, error: &minijinja::Error) -> RenderError {
    // The innermost template named by the error is the one to fix (an include may fail).
    let failing = error.name().unwrap_or(name);
    let mut message = error.detail().map_or_else(|| error.kind().to_string(), |d| format!("{}: {d}", error.kind()));
    if failing != name {
        message.push_str(&format!(" (included from {name})"));
    }
    RenderError::Template { origin: templates.origin(failing), line: error.line(), message }
}

impl Rendered {
    /// The objects as one YAML stream, each document starting with `---`.
    pub fn to_yaml_stream(&self) -> String {
        let mut out = String::new();
        for object in &self.objects {
            out.push_str("---\n");
            out.push_str(&to_yaml(&object.manifest));
        }
        out
    }
}

/// One manifest as YAML.
pub fn to_yaml(manifest: &serde_json::Value) -> String {
    serde_yaml::to_string(manifest).unwrap_or_else(|e| format!("# cannot print this object as YAML: {e}\n"))
}

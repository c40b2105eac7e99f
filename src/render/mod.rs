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
pub fn render_with(lab: &Lab, templates: &Templates, parsed: &mut ParsedDocuments) -> Result<Rendered, RenderError> {
    let context = context::build(lab);
    // Converted once: each template would otherwise convert the whole context again.
    let values = minijinja::Value::from(minijinja::value::Serde(&context.value));
    let mut kept = parsed.like();
    let env = templates.environment();
    let mut rendered = Rendered { objects: Vec::new(), node_files: Vec::new(), secrets: context.secrets };
    let mut seen: HashMap<ObjectKey, String> = HashMap::new();
    for name in templates.names()? {
        let Some((component, file)) = name.split_once('/') else { continue };
        if component != NODE_FOLDER && !enabled(&context.value, component) {
            continue;
        }
        let text = env
            .get_template(&name)
            .and_then(|template| template.render(&values))
            .map_err(|error| template_error(templates, &name, &error))?;
        if component == NODE_FOLDER {
            if !text.trim().is_empty() {
                rendered.node_files.push(node_file(file, text));
            }
            continue;
        }
        if !name.ends_with(".yaml") {
            continue;
        }
        let objects = objects::parse(&text, &name, component, lab.name(), parsed, &mut kept)
            .map_err(|message| RenderError::Object { origin: templates.origin(&name), message })?;
        for object in objects {
            if let Some(first) = seen.insert(object.key.clone(), name.clone()) {
                return Err(RenderError::Duplicate { key: Box::new(object.key), first, second: name });
            }
            rendered.objects.push(object);
        }
    }
    *parsed = kept;
    Ok(rendered)
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

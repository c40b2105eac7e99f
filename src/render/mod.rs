//! Rendering: the validated lab through the templates into checked, labelled Kubernetes
//! objects and node-side files. Deterministic: the same file gives the same bytes.

mod context;
mod kinds;
mod objects;
mod output;
pub mod rbac;
mod templates;

use std::collections::HashMap;
use std::path::PathBuf;

use serde::Serialize;

use crate::config::Lab;
use crate::identity::ObjectKey;

pub use context::{SecretOrigin, SecretToCreate, tenant_password_secret};
use objects::OutputKey;
pub use objects::{Object, ParsedDocuments};
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

/// Renders `lab` with `templates`, reusing what `parsed` kept of an earlier render and
/// leaving this render's in it: a document with the same text is the same object, and a
/// per-tenant template is not rendered again for a tenant whose values, and the lab-wide
/// values, did not change. Templates render on as many threads as the machine has cores (up
/// to four).
pub fn render_with(lab: &Lab, templates: &Templates, parsed: &mut ParsedDocuments) -> Result<Rendered, RenderError> {
    let (context, kept_tenants) = context::build(lab, &parsed.inputs.tenants, parsed.keeps());
    let names: Vec<String> = templates
        .names()?
        .into_iter()
        .filter(|name| name.split_once('/').is_some_and(|(c, _)| c == NODE_FOLDER || enabled(&context.value, c)))
        .collect();
    // Only a render that is kept for the next needs to know the template texts it used.
    let templates_seen = if parsed.keeps() { Some(templates.fingerprint()?) } else { None };
    let earlier: &ParsedDocuments = parsed;
    let last = &earlier.inputs;
    let same_lab =
        templates_seen.is_some() && last.templates == templates_seen && last.lab_wide.as_ref() == Some(&context.value);
    let lab_wide = minijinja::Value::from(minijinja::value::Serde(&context.value));
    let all_tenants: Vec<minijinja::Value> = context.tenants.iter().map(|t| t.values.clone()).collect();
    let whole = minijinja::context! { tenants => all_tenants, ..lab_wide.clone() };
    let tenants = &context.tenants;
    let jobs: Vec<(&str, Option<usize>)> = names
        .iter()
        .flat_map(|name| {
            let component = name.split_once('/').map_or("", |(c, _)| c);
            if PER_TENANT.contains(&component) {
                (0..tenants.len()).map(|i| (name.as_str(), Some(i))).collect()
            } else {
                vec![(name.as_str(), None)]
            }
        })
        .collect();
    let env = templates.environment();
    let render_one = |&(name, tenant): &(&str, Option<usize>)| -> Result<Output, RenderError> {
        let (component, file) = name.split_once('/').expect("names hold a folder");
        let key = OutputKey { template: name.to_owned(), tenant: tenant.map(|i| tenants[i].name.clone()) };
        let values = match tenant {
            Some(i) => {
                if same_lab
                    && tenants[i].unchanged
                    && let Some(objects) = earlier.reuse(&key)
                {
                    return Ok(Output::Objects(objects));
                }
                minijinja::context! { tenant => tenants[i].values.clone(), ..lab_wide.clone() }
            }
            None => whole.clone(),
        };
        let mut output = Bounded::default();
        env.get_template(name).and_then(|template| template.render_captured_to(&values, &mut output)).map_err(
            |error| match output.over {
                true => RenderError::Template {
                    origin: origin(templates, &key),
                    line: None,
                    message: format!("rendered more than {} MiB and was stopped", MAX_OUTPUT >> 20),
                },
                false => template_error(templates, &key, &error),
            },
        )?;
        let text = String::from_utf8(output.bytes).expect("templates render text");
        if component == NODE_FOLDER {
            return Ok(Output::Node((!text.trim().is_empty()).then(|| node_file(file, text))));
        }
        if !name.ends_with(".yaml") {
            return Ok(Output::Node(None));
        }
        objects::parse(text, &key, component, lab.name(), earlier)
            .map(Output::Objects)
            .map_err(|message| RenderError::Object { origin: origin(templates, &key), message })
    };
    let outputs = in_parallel(&jobs, render_one);
    let mut kept = parsed.like();
    let mut rendered = Rendered { objects: Vec::new(), node_files: Vec::new(), secrets: Vec::new() };
    let mut made_by = Vec::new(); // each object's job
    for (job, output) in outputs.into_iter().enumerate() {
        match output? {
            Output::Node(file) => rendered.node_files.extend(file),
            Output::Objects(objects) => {
                let objects = kept.keep(objects);
                made_by.extend(std::iter::repeat_n(job, objects.len()));
                rendered.objects.extend(objects);
            }
        }
    }
    let key_of = |job: usize| {
        let (name, tenant) = jobs[job];
        OutputKey { template: name.to_owned(), tenant: tenant.map(|i| tenants[i].name.clone()) }
    };
    let by = |job: usize| key_of(job).to_string();
    let mut seen: HashMap<&ObjectKey, usize> = HashMap::with_capacity(rendered.objects.len());
    for (object, job) in rendered.objects.iter().zip(&made_by) {
        if let Some(first) = seen.insert(&object.key, *job) {
            let key = Box::new(object.key.clone());
            return Err(RenderError::Duplicate { key, first: by(first), second: by(*job) });
        }
    }
    drop(seen);
    if let Some((object, message)) = kinds::crd_scope_problem(&rendered.objects) {
        let job = made_by[rendered.objects.iter().position(|o| o.key == object.key).expect("rendered")];
        return Err(RenderError::Object { origin: origin(templates, &key_of(job)), message });
    }
    rendered.secrets = context.secrets;
    if kept.keeps() {
        kept.inputs = Inputs { templates: templates_seen, lab_wide: Some(context.value), tenants: kept_tenants };
    }
    *parsed = kept;
    Ok(rendered)
}

/// The template folders rendered once per tenant, with `tenant` (that tenant's values) and the
/// lab-wide values in their context; the others render once, with `tenants` the whole list.
const PER_TENANT: [&str; 2] = ["tenants", "scans"];

/// What the last render was made from, to know which per-tenant outputs cannot have changed.
#[derive(Debug, Default)]
pub(crate) struct Inputs {
    /// The template set's fingerprint.
    templates: Option<u64>,
    /// The context without the tenants.
    lab_wide: Option<serde_json::Value>,
    /// Each tenant's values.
    tenants: context::KeptTenants,
}

/// What one template gave.
enum Output {
    /// A node-side file (`None`: the template rendered nothing, or is not YAML).
    Node(Option<NodeFile>),
    /// Kubernetes objects.
    Objects(objects::TemplateObjects),
}

/// `work` on each item, on up to four threads, the results in the order of `items`.
fn in_parallel<I: Sync, T: Send>(items: &[I], work: impl Fn(&I) -> T + Sync) -> Vec<T> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, 4).min(items.len());
    if threads <= 1 {
        return items.iter().map(&work).collect();
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut results: Vec<(usize, T)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let index = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(item) = items.get(index) else { return done };
                        done.push((index, work(item)));
                    }
                })
            })
            .collect();
        workers.into_iter().flat_map(|worker| worker.join().expect("a render thread does not panic")).collect()
    });
    results.sort_by_key(|(index, _)| *index);
    results.into_iter().map(|(_, result)| result).collect()
}

/// The objects of a manifest seclab does not render itself (an operator's), checked as
/// rendered objects are and labelled as members of `set`; `origin` names it in errors.
pub fn manifest_objects(text: String, component: &str, origin: &str, set: &str) -> Result<Vec<Object>, String> {
    let key = OutputKey { template: format!("{component}/{origin}"), tenant: None };
    let objects = objects::parse(text, &key, component, set, &ParsedDocuments::none())?.objects;
    let mut seen = std::collections::HashSet::new();
    if let Some(twice) = objects.iter().find(|o| !seen.insert(&o.key)) {
        return Err(format!("{} is defined twice", twice.key));
    }
    Ok(objects)
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

/// The most one template may render: far above any lab's (the largest built-in output, the
/// tenants' setup Job of a 1,000-tenant lab, is under 1 MB), and a stop for one that would
/// fill the memory.
const MAX_OUTPUT: usize = 64 << 20;

/// A template's output, refused past [`MAX_OUTPUT`].
#[derive(Default)]
struct Bounded {
    bytes: Vec<u8>,
    over: bool,
}

impl std::io::Write for Bounded {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.bytes.len() + buf.len() > MAX_OUTPUT {
            self.over = true;
            return Err(std::io::Error::other("template output limit"));
        }
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn template_error(templates: &Templates, key: &OutputKey, error: &minijinja::Error) -> RenderError {
    // The innermost template named by the error is the one to fix (an include may fail).
    let name = key.template.as_str();
    let failing = error.name().unwrap_or(name);
    let mut message = error.detail().map_or_else(|| error.kind().to_string(), |d| format!("{}: {d}", error.kind()));
    if error.kind() == minijinja::ErrorKind::OutOfFuel {
        message = format!(
            "stopped after {} million steps: a loop that never ends, or one far too long?",
            templates::FUEL / 1_000_000
        );
    }
    if failing != name {
        message.push_str(&format!(" (included from {name})"));
    }
    if let Some(tenant) = &key.tenant {
        message.push_str(&format!(" (rendering tenant `{tenant}`)"));
        if error.kind() == minijinja::ErrorKind::UndefinedError && message.contains("`tenants`") {
            message.push_str("; templates in tenants/ and scans/ render once per tenant and see `tenant`");
        }
    }
    RenderError::Template { origin: templates.origin(failing), line: error.line(), message }
}

/// A template's file, and the tenant it was rendered for, for error messages.
fn origin(templates: &Templates, key: &OutputKey) -> String {
    match &key.tenant {
        Some(tenant) => format!("{} for tenant `{tenant}`", templates.origin(&key.template)),
        None => templates.origin(&key.template),
    }
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

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::Arc;

    use super::*;

    fn example() -> String {
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/tenants.yaml")).unwrap()
    }

    fn lab(text: &str) -> Lab {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seclab.yaml");
        std::fs::write(&path, text).unwrap();
        crate::config::load(&path).unwrap()
    }

    fn manifest<'a>(rendered: &'a Rendered, kind: &str, name: &str) -> &'a Arc<serde_json::Value> {
        let found = rendered.objects.iter().find(|o| o.key.kind == kind && o.key.name == name);
        &found.unwrap_or_else(|| panic!("{kind} {name} is rendered")).manifest
    }

    #[test]
    fn a_tenant_whose_values_did_not_change_is_not_rendered_again() {
        let dir = tempfile::tempdir().unwrap();
        let templates = Templates::with_overrides(dir.path());
        let mut parsed = ParsedDocuments::for_applyset("x");
        let before = render_with(&lab(&example()), &templates, &mut parsed).unwrap();
        let edited = example().replacen("port: 9004", "port: 9104", 1).replacen("\"9004\"", "\"9104\"", 1);
        let after = render_with(&lab(&edited), &templates, &mut parsed).unwrap();
        assert_eq!(after.objects.len(), before.objects.len());
        // The other tenant's objects are the very same (neither rendered nor parsed again)...
        let same =
            |a: &Rendered, b: &Rendered, kind, name| Arc::ptr_eq(manifest(a, kind, name), manifest(b, kind, name));
        assert!(same(&before, &after, "Deployment", "netdelta-xynexis"));
        assert!(same(&before, &after, "CronJob", "xynexis-dmz-scan"));
        // ...and the edited tenant's are new, and as a cold render makes them.
        assert!(!same(&before, &after, "Service", "netdelta-barbican"));
        assert_eq!(manifest(&after, "Service", "netdelta-barbican")["spec"]["ports"][0]["port"], 9104);
        let cold = |text: &str| render_with(&lab(text), &templates, &mut ParsedDocuments::for_applyset("x")).unwrap();
        assert!(after.objects == cold(&edited).objects, "the kept render is the cold one");

        // A lab-wide value renders every tenant again.
        let wide = edited.replacen("  namespace: netdelta\n", "  namespace: netdelta\n  ingressClass: traefik\n", 1);
        let again = render_with(&lab(&wide), &templates, &mut parsed).unwrap();
        assert!(again.objects == cold(&wide).objects, "the kept render is the cold one");
        assert_eq!(manifest(&again, "Ingress", "netdelta-xynexis")["spec"]["ingressClassName"], "traefik");

        // So does an edited template: the override directory is part of the inputs.
        let netdelta =
            std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("templates/tenants/netdelta.yaml"));
        std::fs::create_dir(dir.path().join("tenants")).unwrap();
        let changed = netdelta.unwrap().replace("pathType: Prefix", "pathType: Exact");
        std::fs::write(dir.path().join("tenants/netdelta.yaml"), changed).unwrap();
        let edited_template = render_with(&lab(&wide), &templates, &mut parsed).unwrap();
        assert_eq!(
            manifest(&edited_template, "Ingress", "netdelta-xynexis")["spec"]["rules"][0]["http"]["paths"][0]["pathType"],
            "Exact"
        );
    }

    #[test]
    fn a_per_tenant_template_error_names_the_tenant() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("tenants")).unwrap();
        // The per-tenant templates see `tenant`; the whole list is for the other folders.
        std::fs::write(dir.path().join("tenants/netdelta.yaml"), "{% for t in tenants %}{% endfor %}\n").unwrap();
        let error = render(&lab(&example()), &Templates::with_overrides(dir.path())).unwrap_err().to_string();
        assert!(error.contains("tenants/netdelta.yaml:1") && error.contains("tenant `barbican`"), "{error}");
        assert!(error.contains("undefined"), "{error}");
    }

    #[test]
    fn two_tenants_rendering_one_object_name_both() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("tenants")).unwrap();
        let same_name = "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: shared, namespace: netdelta}\n";
        std::fs::write(dir.path().join("tenants/extra.yaml"), same_name).unwrap();
        let error = render(&lab(&example()), &Templates::with_overrides(dir.path())).unwrap_err().to_string();
        assert!(
            error.contains("tenants/extra.yaml (tenant `barbican`) and by tenants/extra.yaml (tenant `xynexis`)"),
            "{error}"
        );
    }
}

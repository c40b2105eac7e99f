//! The template set: embedded in the binary, each file overridable from a directory.

use std::path::{Path, PathBuf};

use include_dir::{Dir, include_dir};
use minijinja::syntax::SyntaxConfig;
use minijinja::{Environment, UndefinedBehavior};

use super::RenderError;

static EMBEDDED: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/templates");

/// The steps (minijinja's fuel) one template may take to render: the busiest built-in one,
/// the tenants' setup Job, takes under 250,000 for 1,000 tenants (so under 5 million for the
/// 20,000 a 16 MiB file can hold); a loop that never ends stops within seconds.
pub(crate) const FUEL: u64 = 20_000_000;

/// Where templates come from: the embedded set, with files of `dir` taking precedence.
#[derive(Debug, Clone, Default)]
pub struct Templates {
    dir: Option<PathBuf>,
}

impl Templates {
    /// Only the templates built into seclab.
    pub fn embedded() -> Self {
        Self { dir: None }
    }

    /// The built-in templates, overridden and extended by the files under `dir`
    /// (same layout: `<component>/<file>.yaml`, `node/<file>`).
    pub fn with_overrides(dir: impl Into<PathBuf>) -> Self {
        Self { dir: Some(dir.into()) }
    }

    /// Names (`component/file`) of every template to render, sorted; files starting
    /// with `_` are only for `import`/`include` and are not rendered on their own.
    pub(crate) fn names(&self) -> Result<Vec<String>, RenderError> {
        let mut names: Vec<String> = Vec::new();
        collect_embedded(&EMBEDDED, &mut names);
        if let Some(dir) = &self.dir {
            collect_dir(dir, dir, &mut names)?;
        }
        names.retain(|name| {
            let file = name.rsplit('/').next().unwrap_or(name);
            name.contains('/') && !file.starts_with('_') && !file.starts_with('.')
        });
        names.sort();
        names.dedup();
        Ok(names)
    }

    /// A fingerprint of the template texts: it changes when a file of the override directory
    /// is added, removed or edited (the built-in ones are fixed for the process).
    pub(crate) fn fingerprint(&self) -> Result<u64, RenderError> {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::hash::DefaultHasher::new();
        if let Some(dir) = &self.dir {
            let mut names = Vec::new();
            collect_dir(dir, dir, &mut names)?;
            names.sort();
            for name in names {
                let path = dir.join(&name);
                let text = std::fs::read(&path).map_err(|source| RenderError::TemplateDir { path, source })?;
                (name, text).hash(&mut hasher);
            }
        }
        Ok(hasher.finish())
    }

    /// A template environment that loads from the override directory first.
    pub(crate) fn environment(&self) -> Environment<'static> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_fuel(Some(FUEL));
        let syntax = SyntaxConfig::builder().trim_blocks(true).lstrip_blocks(true).keep_trailing_newline(true).build();
        env.set_syntax(syntax.expect("the default delimiters are valid"));
        let dir = self.dir.clone();
        env.set_loader(move |name| {
            if let Some(dir) = &dir {
                let path = dir.join(name);
                if path.is_file() {
                    return std::fs::read_to_string(&path).map(Some).map_err(|e| {
                        minijinja::Error::new(
                            minijinja::ErrorKind::InvalidOperation,
                            format!("cannot read {}: {e}", path.display()),
                        )
                    });
                }
            }
            Ok(EMBEDDED.get_file(name).and_then(|f| f.contents_utf8()).map(str::to_owned))
        });
        env
    }

    /// Where a template's text is read from, for error messages.
    pub(crate) fn origin(&self, name: &str) -> String {
        match &self.dir {
            Some(dir) if dir.join(name).is_file() => dir.join(name).display().to_string(),
            _ => format!("templates/{name} (built in)"),
        }
    }
}

fn collect_embedded(dir: &Dir<'_>, names: &mut Vec<String>) {
    for file in dir.files() {
        names.push(file.path().to_string_lossy().into_owned());
    }
    for sub in dir.dirs() {
        collect_embedded(sub, names);
    }
}

fn collect_dir(root: &Path, dir: &Path, names: &mut Vec<String>) -> Result<(), RenderError> {
    let entries = std::fs::read_dir(dir).map_err(|source| RenderError::TemplateDir { path: dir.to_owned(), source })?;
    for entry in entries {
        let entry = entry.map_err(|source| RenderError::TemplateDir { path: dir.to_owned(), source })?;
        let path = entry.path();
        if path.is_dir() {
            collect_dir(root, &path, names)?;
        } else if let Ok(relative) = path.strip_prefix(root) {
            names.push(relative.to_string_lossy().replace('\\', "/"));
        }
    }
    Ok(())
}

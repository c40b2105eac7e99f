//! The library's imports point down the layers ARCHITECTURE.md lists, and the files of a
//! folder import each other without a cycle. Read from the source: no build needed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

mod support;

/// The layers, top first, as ARCHITECTURE.md's "Layers" section lists them.
fn layers() -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(support::root().join("ARCHITECTURE.md")).unwrap();
    let section = text.split("## Layers").nth(1).expect("ARCHITECTURE.md has a Layers section");
    let block = section.split("```text\n").nth(1).expect("the layers in a ```text block");
    let block = block.split("```").next().unwrap();
    block.lines().map(|line| line.split_whitespace().map(str::to_owned).collect()).collect()
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files.sort();
    files
}

/// The first segment of every `crate::` path in `text` (`crate::{a, b::c}` gives both).
fn crate_paths(text: &str) -> BTreeSet<String> {
    let mut used = BTreeSet::new();
    for (i, _) in text.match_indices("crate::") {
        // `seclab::crate::` does not occur; skip identifiers that merely end in `crate`.
        if text[..i].ends_with(|c: char| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let rest = &text[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let group = &group[..group.find('}').unwrap_or(group.len())];
            used.extend(group.split(',').map(|p| p.trim().split("::").next().unwrap().to_owned()));
        } else {
            used.insert(rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect());
        }
    }
    used.retain(|m| !m.is_empty());
    used
}

/// The library's top-level modules (`src/<name>/` or `src/<name>.rs`; not the binary's).
fn modules(src: &Path) -> BTreeMap<String, Vec<PathBuf>> {
    let mut modules = BTreeMap::new();
    for entry in std::fs::read_dir(src).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_str().unwrap().to_owned();
        if matches!(name.as_str(), "cli" | "main" | "lib") {
            continue;
        }
        let files = if path.is_dir() { rust_files(&path) } else { vec![path] };
        modules.insert(name, files);
    }
    modules
}

#[test]
fn imports_point_down_the_layers() {
    let layers = layers();
    let src = support::root().join("src");
    let modules = modules(&src);
    let level: BTreeMap<&str, usize> =
        layers.iter().enumerate().flat_map(|(i, line)| line.iter().map(move |m| (m.as_str(), i))).collect();
    let unlisted: Vec<&String> = modules.keys().filter(|m| !level.contains_key(m.as_str())).collect();
    assert!(unlisted.is_empty(), "modules missing from ARCHITECTURE.md's layers: {unlisted:?}");
    let mut wrong = Vec::new();
    for (module, files) in &modules {
        for file in files {
            let text = std::fs::read_to_string(file).unwrap();
            for used in crate_paths(&text) {
                if used == *module {
                    continue;
                }
                let (from, to) = (level[module.as_str()], level.get(used.as_str()).copied());
                // A lower layer has a higher index: anything else points up or sideways.
                if to.is_none_or(|to| to <= from) {
                    wrong.push(format!("{} uses crate::{used}", file.strip_prefix(&src).unwrap().display()));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "imports that do not point down the layers:\n{}", wrong.join("\n"));
}

/// Which sibling files each file of `dir` imports (`super::x`, `crate::<folder>::x`); the
/// folder's `mod.rs` is its parent, not a sibling.
fn sibling_imports(dir: &Path, crate_path: &str) -> BTreeMap<String, BTreeSet<String>> {
    let files: BTreeMap<String, PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "rs") && p.file_stem().unwrap() != "mod")
        .map(|p| (p.file_stem().unwrap().to_str().unwrap().to_owned(), p))
        .collect();
    let mut imports = BTreeMap::new();
    for (name, path) in &files {
        let text = std::fs::read_to_string(path).unwrap();
        let mut used = BTreeSet::new();
        for prefix in ["super::".to_owned(), format!("{crate_path}::")] {
            for (i, _) in text.match_indices(&prefix) {
                let rest = &text[i + prefix.len()..];
                let names: Vec<String> = match rest.strip_prefix('{') {
                    Some(group) => group[..group.find('}').unwrap()]
                        .split(',')
                        .map(|p| p.trim().split("::").next().unwrap().to_owned())
                        .collect(),
                    None => vec![rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect()],
                };
                used.extend(names.into_iter().filter(|n| n != name && files.contains_key(n)));
            }
        }
        imports.insert(name.clone(), used);
    }
    imports
}

/// A cycle in `graph`, if it has one, as the files along it.
fn cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|n| n == node) {
            let mut found = path[start..].to_vec();
            found.push(node.to_owned());
            return Some(found);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(found) = visit(next, graph, path, done) {
                return Some(found);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    graph.keys().find_map(|node| visit(node, graph, &mut Vec::new(), &mut done))
}

#[test]
fn the_files_of_a_folder_import_each_other_without_a_cycle() {
    let src = support::root().join("src");
    let mut dirs = vec![src.clone()];
    let mut cycles = Vec::new();
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() && path.file_name().unwrap() != "cli" {
                dirs.push(path);
            }
        }
        if dir == src {
            continue;
        }
        let relative = dir.strip_prefix(&src).unwrap().to_str().unwrap().replace('/', "::");
        if let Some(found) = cycle(&sibling_imports(&dir, &format!("crate::{relative}"))) {
            cycles.push(format!("src/{}: {}", relative.replace("::", "/"), found.join(" -> ")));
        }
    }
    assert!(cycles.is_empty(), "import cycles:\n{}", cycles.join("\n"));
}

/// The checks themselves find what they look for.
#[test]
fn the_checks_find_an_upward_import_and_a_cycle() {
    assert_eq!(
        crate_paths(
            "use crate::render::Object;\nuse crate::{config, cluster::Kind};\n// see crate::watch\nfn notcrate::x"
        ),
        ["cluster", "config", "render", "watch"].map(str::to_owned).into()
    );
    let graph: BTreeMap<String, BTreeSet<String>> =
        [("a", vec!["b"]), ("b", vec!["c"]), ("c", vec!["a"]), ("d", vec![])]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.into_iter().map(str::to_owned).collect()))
            .collect();
    assert_eq!(cycle(&graph), Some(["a", "b", "c", "a"].map(str::to_owned).to_vec()));
    let mut acyclic = graph.clone();
    acyclic.get_mut("c").unwrap().clear();
    assert_eq!(cycle(&acyclic), None);
}

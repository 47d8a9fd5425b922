//! The library's shape: no import cycle between its modules at file level, and no source file
//! over 600 lines. Module references are read from the source (`crate::a::b`, `super::a`,
//! `use child::`), resolved to the longest path that names a module file.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const MAX_LINES: usize = 600;

fn source_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("crate/src is readable") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            // The CLI is its own crate.
            if path.file_name().is_some_and(|n| n != "bin") {
                source_files(&path, out);
            }
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `engine/qwen2.rs` → `["engine", "qwen2"]`; `engine/mod.rs` → `["engine"]`; `lib.rs` → `[]`.
fn module_path(src: &Path, file: &Path) -> Vec<String> {
    let relative = file.strip_prefix(src).expect("under crate/src");
    let mut parts: Vec<String> = relative
        .with_extension("")
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
        parts.pop();
    }
    parts
}

/// The identifier path that follows `prefix` at each of its occurrences in `text`.
fn paths_after(text: &str, prefix: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for (at, _) in text.match_indices(prefix) {
        let before = text[..at].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$' || c == ':') {
            continue;
        }
        let rest = &text[at + prefix.len()..];
        let path: Vec<String> = rest
            .split("::")
            .map(|seg| {
                seg.chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect::<String>()
            })
            .take_while(|seg| !seg.is_empty())
            .collect();
        out.push(path);
    }
    out
}

/// Module path → the module paths it references.
type Graph = BTreeMap<Vec<String>, BTreeSet<Vec<String>>>;

/// Module → the modules it references.
fn module_graph() -> (Graph, Vec<(PathBuf, usize)>) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    source_files(&src, &mut files);
    let modules: BTreeSet<Vec<String>> = files.iter().map(|f| module_path(&src, f)).collect();
    let resolve = |path: Vec<String>| -> Option<Vec<String>> {
        (0..=path.len())
            .rev()
            .map(|n| path[..n].to_vec())
            .find(|candidate| modules.contains(candidate))
    };
    let mut graph = BTreeMap::new();
    let mut sizes = Vec::new();
    for file in &files {
        let source = std::fs::read_to_string(file).expect("a readable source file");
        sizes.push((file.clone(), source.lines().count()));
        // Comments (doc links included) are not imports, nor are test modules (by convention at
        // the end of a file), which refer back to what they test.
        let code = match source.find("#[cfg(test)]\nmod ") {
            Some(at) => &source[..at],
            None => &source,
        };
        let text: String = code
            .lines()
            .map(|line| line.split("//").next().unwrap_or(""))
            .collect::<Vec<_>>()
            .join("\n");
        let me = module_path(&src, file);
        let is_dir_module = file.ends_with("mod.rs") || file.ends_with("lib.rs");
        // `super::` is the parent of a file module, and the parent of a directory's own module.
        let parent = me[..me.len().saturating_sub(1)].to_vec();
        let here = if is_dir_module {
            me.clone()
        } else {
            parent.clone()
        };
        let mut targets = BTreeSet::new();
        for p in paths_after(&text, "crate::") {
            targets.extend(resolve(p));
        }
        for p in paths_after(&text, "super::") {
            targets.extend(resolve([parent.clone(), p].concat()));
        }
        for prefix in ["use ", "pub use ", "pub(crate) use ", "pub(super) use "] {
            for p in paths_after(&text, prefix) {
                let child = [here.clone(), p].concat();
                if child.len() > here.len() && modules.contains(&child[..here.len() + 1]) {
                    targets.extend(resolve(child));
                }
            }
        }
        if file.ends_with("tests.rs") {
            continue;
        }
        targets.remove(&me);
        graph.insert(me, targets);
    }
    (graph, sizes)
}

/// A cycle, if any, as the list of modules on it.
fn find_cycle(graph: &Graph) -> Option<Vec<String>> {
    fn visit(
        node: &Vec<String>,
        graph: &Graph,
        stack: &mut Vec<Vec<String>>,
        done: &mut BTreeSet<Vec<String>>,
    ) -> Option<Vec<String>> {
        if let Some(i) = stack.iter().position(|n| n == node) {
            return Some(stack[i..].iter().map(|m| m.join("::")).collect());
        }
        if !done.insert(node.clone()) {
            return None;
        }
        stack.push(node.clone());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, stack, done) {
                return Some(cycle);
            }
        }
        stack.pop();
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|start| visit(start, graph, &mut Vec::new(), &mut done))
}

#[test]
fn modules_import_each_other_without_cycles() {
    let (graph, _) = module_graph();
    assert!(graph.len() > 30, "{} modules found", graph.len());
    // The reader sees real edges: the protocol is a leaf, generation reads the engine.
    assert!(graph[&vec!["protocol".to_string()]].is_empty());
    assert!(graph[&vec!["generation".to_string()]].contains(&vec!["engine".to_string()]));
    assert_eq!(find_cycle(&graph), None);
}

#[test]
fn a_cycle_is_found_when_there_is_one() {
    let (mut graph, _) = module_graph();
    graph
        .entry(vec!["protocol".to_string()])
        .or_default()
        .insert(vec!["generation".to_string()]);
    let cycle = find_cycle(&graph).expect("protocol → generation → protocol");
    assert!(cycle.contains(&"protocol".to_string()), "{cycle:?}");
}

#[test]
fn no_source_file_is_over_600_lines() {
    let (_, sizes) = module_graph();
    let long: Vec<_> = sizes.iter().filter(|(_, n)| *n > MAX_LINES).collect();
    assert!(long.is_empty(), "{long:?}");
}

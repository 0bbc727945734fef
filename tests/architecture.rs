//! Checks of the code's shape that reviews keep missing: no module imports another that
//! imports it back, and every merchant-owned table carries `merchant_id` (what lets the
//! schema be distributed by merchant later; docs/SCALING.md).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use syn::visit::Visit;

const SRC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src");

/// `src/a/b.rs` and `src/a/b/mod.rs` are module `a::b`; `lib.rs` and `main.rs` the root.
fn module_of(file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(SRC).unwrap_or(file);
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string())
        .collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every `crate::…` / `super::…` path a file names outside its test modules, as absolute
/// module paths (the longest prefix that is a file module is resolved later).
struct Paths<'a> {
    here: &'a [String],
    found: Vec<Vec<String>>,
    /// Names brought in by `use crate::…` (e.g. `routes` after `use crate::routes;`).
    aliases: BTreeMap<String, Vec<String>>,
    /// Paths that start with a plain name, resolved through `aliases` once all are known.
    relative: Vec<Vec<String>>,
}

impl Paths<'_> {
    fn absolute(&self, segments: &[String]) -> Option<Vec<String>> {
        let first = segments.first()?;
        if first == "crate" {
            return Some(segments[1..].to_vec());
        }
        if first == "super" {
            let mut base = self.here.to_vec();
            let mut rest = segments;
            while rest.first().is_some_and(|s| s == "super") {
                base.pop();
                rest = &rest[1..];
            }
            base.extend(rest.iter().cloned());
            return Some(base);
        }
        None
    }

    fn use_tree(&mut self, prefix: &mut Vec<String>, tree: &syn::UseTree) {
        match tree {
            syn::UseTree::Path(p) => {
                prefix.push(p.ident.to_string());
                self.use_tree(prefix, &p.tree);
                prefix.pop();
            }
            syn::UseTree::Name(n) => {
                prefix.push(n.ident.to_string());
                if let Some(abs) = self.absolute(prefix) {
                    self.aliases.insert(n.ident.to_string(), abs.clone());
                    self.found.push(abs);
                }
                prefix.pop();
            }
            syn::UseTree::Rename(r) => {
                prefix.push(r.ident.to_string());
                if let Some(abs) = self.absolute(prefix) {
                    self.aliases.insert(r.rename.to_string(), abs.clone());
                    self.found.push(abs);
                }
                prefix.pop();
            }
            syn::UseTree::Glob(_) => {
                if let Some(abs) = self.absolute(prefix) {
                    self.found.push(abs);
                }
            }
            syn::UseTree::Group(g) => {
                for item in &g.items {
                    self.use_tree(prefix, item);
                }
            }
        }
    }
}

impl<'ast> Visit<'ast> for Paths<'_> {
    fn visit_item_mod(&mut self, m: &'ast syn::ItemMod) {
        let is_test = m.attrs.iter().any(|a| {
            a.path().is_ident("cfg")
                && a.meta
                    .require_list()
                    .is_ok_and(|l| l.tokens.to_string().contains("test"))
        });
        if !is_test {
            syn::visit::visit_item_mod(self, m);
        }
    }

    fn visit_item_use(&mut self, u: &'ast syn::ItemUse) {
        self.use_tree(&mut Vec::new(), &u.tree);
    }

    fn visit_path(&mut self, p: &'ast syn::Path) {
        let segments: Vec<String> = p.segments.iter().map(|s| s.ident.to_string()).collect();
        match self.absolute(&segments) {
            Some(abs) => self.found.push(abs),
            None if segments.len() > 1 => self.relative.push(segments),
            None => {}
        }
        syn::visit::visit_path(self, p);
    }

    fn visit_macro(&mut self, m: &'ast syn::Macro) {
        // Paths inside macro calls (format!, tracing, sql_function!) are tokens, not syntax:
        // read `crate :: a :: b` runs from them.
        let tokens: Vec<String> = m
            .tokens
            .clone()
            .into_iter()
            .map(|t| t.to_string())
            .collect();
        let mut i = 0;
        while i < tokens.len() {
            if tokens[i] == "crate" {
                let mut segments = vec!["crate".to_string()];
                let mut j = i + 1;
                while j + 2 < tokens.len() + 1
                    && tokens.get(j).is_some_and(|t| t == ":")
                    && tokens.get(j + 1).is_some_and(|t| t == ":")
                {
                    match tokens.get(j + 2) {
                        Some(t) => segments.push(t.clone()),
                        None => break,
                    }
                    j += 3;
                }
                if let Some(abs) = self.absolute(&segments) {
                    self.found.push(abs);
                }
                i = j;
            } else {
                i += 1;
            }
        }
    }
}

/// File module → the file modules it names.
fn module_graph() -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    rust_files(Path::new(SRC), &mut files);
    let modules: BTreeSet<Vec<String>> = files.iter().map(|f| module_of(f)).collect();
    let mut graph = BTreeMap::new();
    for file in &files {
        let here = module_of(file);
        let text = std::fs::read_to_string(file).unwrap();
        let ast = syn::parse_file(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let mut paths = Paths {
            here: &here,
            found: Vec::new(),
            aliases: BTreeMap::new(),
            relative: Vec::new(),
        };
        paths.visit_file(&ast);
        for path in std::mem::take(&mut paths.relative) {
            if let Some(base) = paths.aliases.get(&path[0]) {
                let mut abs = base.clone();
                abs.extend(path[1..].iter().cloned());
                paths.found.push(abs);
            }
        }
        let edges: &mut BTreeSet<String> = graph.entry(here.join("::")).or_default();
        for path in paths.found {
            // The longest prefix that is a file module is what the path reaches into.
            let target = (0..=path.len())
                .rev()
                .map(|n| path[..n].to_vec())
                .find(|p| modules.contains(p));
            if let Some(target) = target {
                // A module declaring its children (or the root its modules) is not an import.
                if target != here && !target.is_empty() {
                    edges.insert(target.join("::"));
                }
            }
        }
    }
    graph
}

/// Strongly connected components with more than one module (Tarjan).
fn cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct State<'a> {
        graph: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        next: usize,
        out: Vec<Vec<String>>,
    }
    fn connect<'a>(s: &mut State<'a>, v: &'a str) {
        s.index.insert(v, s.next);
        s.low.insert(v, s.next);
        s.next += 1;
        s.stack.push(v);
        s.on_stack.insert(v);
        let graph = s.graph;
        for w in graph.get(v).into_iter().flatten() {
            let w = w.as_str();
            if !s.index.contains_key(w) {
                connect(s, w);
                let lw = s.low[w];
                let lv = s.low[v];
                s.low.insert(v, lv.min(lw));
            } else if s.on_stack.contains(w) {
                let iw = s.index[w];
                let lv = s.low[v];
                s.low.insert(v, lv.min(iw));
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                component.push(w.to_string());
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                s.out.push(component);
            }
        }
    }
    let mut s = State {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        next: 0,
        out: Vec::new(),
    };
    for v in graph.keys() {
        if !s.index.contains_key(v.as_str()) {
            connect(&mut s, v);
        }
    }
    s.out
}

#[test]
fn no_module_imports_one_that_imports_it_back() {
    let graph = module_graph();
    assert!(graph.len() > 50, "read the modules under src/");
    let found = cycles(&graph);
    let report: Vec<String> = found
        .iter()
        .map(|c| {
            let edges: Vec<String> = c
                .iter()
                .flat_map(|a| {
                    graph[a]
                        .iter()
                        .filter(|b| c.contains(b))
                        .map(move |b| format!("  {a} -> {b}"))
                })
                .collect();
            format!("{} modules:\n{}", c.len(), edges.join("\n"))
        })
        .collect();
    assert!(found.is_empty(), "import cycles:\n{}", report.join("\n\n"));
}

#[test]
fn the_cycle_finder_finds_cycles() {
    let graph: BTreeMap<String, BTreeSet<String>> = [
        ("a", vec!["b"]),
        ("b", vec!["c"]),
        ("c", vec!["a"]),
        ("d", vec!["a"]),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.into_iter().map(String::from).collect()))
    .collect();
    assert_eq!(cycles(&graph), vec![vec!["a", "b", "c"]]);
}

/// Tables that belong to no merchant, each with the reason; every other table must carry
/// `merchant_id` (docs/SCALING.md: the distribution column).
const GLOBAL_TABLES: &[(&str, &str)] = &[
    (
        "merchants",
        "the tenants themselves (distributed by their id)",
    ),
    (
        "devices",
        "a phone holds passes of many merchants: a reference table",
    ),
    (
        "device_logs",
        "what a phone reports, before anything ties it to a merchant",
    ),
    (
        "google_callbacks",
        "Google's nonces, checked before the callback is tied to a pass",
    ),
    (
        "join_attempts",
        "per client address, across merchants' join pages",
    ),
    ("site_secrets", "the installation's own keys"),
    (
        "sign_in_failures",
        "console sign-ins count by the email typed and the address, before any merchant is known",
    ),
    (
        "pin_failures",
        "the public balance check counts by card number and address, known or not",
    ),
];

#[test]
fn every_merchant_owned_table_carries_merchant_id() {
    let schema =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/src/schema.rs")).unwrap();
    let mut missing = Vec::new();
    let mut tables = 0;
    let mut lines = schema.lines().peekable();
    while let Some(line) = lines.next() {
        // `    name (key) {` opens a table; its columns follow until `    }`.
        let Some(name) = line
            .strip_prefix("    ")
            .filter(|l| l.ends_with(") {") && !l.starts_with(' '))
            .and_then(|l| l.split_whitespace().next())
        else {
            continue;
        };
        tables += 1;
        let mut has_merchant = false;
        for column in lines.by_ref() {
            if column.trim() == "}" {
                break;
            }
            has_merchant |= column.trim_start().starts_with("merchant_id ->");
        }
        if !has_merchant && !GLOBAL_TABLES.iter().any(|(t, _)| *t == name) {
            missing.push(name.to_string());
        }
    }
    assert!(tables > 10, "read the tables of src/schema.rs");
    assert!(
        missing.is_empty(),
        "merchant-owned tables without merchant_id: {missing:?}"
    );
}

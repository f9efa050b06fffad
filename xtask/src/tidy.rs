//! Architecture tests ("tidy", after rust-analyzer's `xtask/src/tidy.rs`): the workspace's
//! invariants, checked from its files so that breaking one fails `cargo test -p xtask`.
//!
//! Dependency facts come from `cargo metadata --no-deps` (the manifests as cargo reads them,
//! renames and `workspace = true` resolved); source facts from walking `crates/` and `xtask/`.
//! Each failure names the package or file, the rule it breaks and what to do about it.
//!
//! The package lists below are the architecture as docs/ARCHITECTURE.md states it. A package
//! that appears in none of them, or a listed name that no package has, fails
//! [`every_package_is_listed_once`]: adding, renaming or splitting a crate means deciding here
//! where it stands.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde::Deserialize;

/// The packages that build binaries; every other package is a library. Binaries own
/// argument parsing, terminal drawing and `anyhow`; libraries never do.
const BINARIES: &[&str] = &["imdb-lora", "imdb-lora-perf", "imdb-lora-fuzz", "xtask"];

/// Packages that must never depend on Burn (`burn` or any `burn-*`, of any dependency kind):
/// files, metrics, charts, data and the Hub work without a tensor library.
const BURN_FREE: &[&str] = &[
    "imdb-lora-fsio",
    "imdb-lora-progress",
    "imdb-lora-metrics",
    "imdb-lora-report",
    "imdb-lora-data",
    "imdb-lora-hub",
    "imdb-lora-hub-mirror",
    "xtask",
];

/// Packages that may depend on Burn.
const BURN_USERS: &[&str] = &[
    "imdb-lora-lora",
    "imdb-lora-kernels",
    "imdb-lora-encoder",
    "imdb-lora-train",
    "imdb-lora-infer",
    "imdb-lora-serve",
    "imdb-lora-perf",
    "imdb-lora-fuzz",
    "imdb-lora",
    "imdb-lora-testkit",
];

/// Normal dependencies no library may have: libraries never draw, parse arguments, install a
/// log subscriber or erase error types (they report through `progress` and `tracing`, and
/// return `thiserror` errors).
const BINARY_ONLY_DEPENDENCIES: &[&str] = &[
    "indicatif",
    "clap",
    "anyhow",
    "tracing-subscriber",
    "tracing-indicatif",
];

/// The test scaffolding crate: a dev-dependency only.
const TESTKIT: &str = "imdb-lora-testkit";

/// The leaf crate xtask may use (every file is written through it).
const FSIO: &str = "imdb-lora-fsio";

/// Files allowed to contain `unsafe`, relative to the workspace root, each with why.
const UNSAFE_ALLOWED: &[(&str, &str)] = &[
    (
        "crates/kernels/src/flex/gemm.rs",
        "the call into the gemm crate, raw pointers and strides behind checked views",
    ),
    (
        "crates/kernels/src/flex/int8/x86.rs",
        "the AVX-512 VNNI and AVX2 int8 micro-kernels: intrinsics and the loads behind them, \
         bounds checked by their safe entry points",
    ),
    (
        "crates/encoder/src/weights.rs",
        "memory-mapping safetensors files",
    ),
    ("crates/cli/src/main.rs", "setting a mimalloc option"),
];

/// The calls that create or write a file, as [`code_only`] text shows them: `std::fs::write`
/// or `fs::write`, `File::create` / `File::create_new`, `File::options` / `OpenOptions`
/// (forbidden outright: tidy cannot follow the builder to `.write(true)`; read with
/// `File::open`), and `fs::copy`.
const DIRECT_WRITE_CALLS: &[&str] = &[
    "fs::write",
    "File::create",
    "File::create_new",
    "File::options",
    "OpenOptions",
    "fs::copy",
];

/// Files allowed to write a file without `imdb_lora_fsio` (crates/fsio itself aside), relative
/// to the workspace root, each with why.
const DIRECT_WRITES_ALLOWED: &[(&str, &str)] = &[(
    "crates/fuzz/src/target.rs",
    "the fuzz harness rewrites its private scratch input file for every input, thousands of \
     times a second",
)];

// --- cargo metadata ---------------------------------------------------------------------------

#[derive(Deserialize, Debug)]
struct Metadata {
    packages: Vec<Package>,
    workspace_root: PathBuf,
}

#[derive(Deserialize, Debug)]
struct Package {
    name: String,
    manifest_path: PathBuf,
    dependencies: Vec<Dependency>,
    targets: Vec<Target>,
}

#[derive(Deserialize, Debug)]
struct Dependency {
    /// The package name (not the name it is used under).
    name: String,
    /// `None` for normal dependencies, else `"dev"` or `"build"`.
    kind: Option<String>,
    /// The name it is used under when that differs from the package's.
    rename: Option<String>,
}

#[derive(Deserialize, Debug)]
struct Target {
    name: String,
    kind: Vec<String>,
    src_path: PathBuf,
}

impl Package {
    fn dir(&self) -> &Path {
        self.manifest_path.parent().unwrap_or(Path::new("."))
    }

    /// The manifest, relative to the workspace root, for messages.
    fn manifest(&self) -> String {
        relative(&self.manifest_path)
    }

    fn normal_dependencies(&self) -> impl Iterator<Item = &Dependency> {
        self.dependencies.iter().filter(|d| d.kind.is_none())
    }

    fn has_binary(&self) -> bool {
        self.targets
            .iter()
            .any(|t| t.kind.iter().any(|k| k == "bin"))
    }
}

impl Dependency {
    fn kind_name(&self) -> &str {
        self.kind.as_deref().unwrap_or("normal")
    }

    fn is_burn(&self) -> bool {
        self.name == "burn" || self.name.starts_with("burn-")
    }
}

/// The workspace's packages, read once per test process.
fn metadata() -> &'static Metadata {
    static METADATA: OnceLock<Metadata> = OnceLock::new();
    METADATA.get_or_init(|| {
        // The cargo that built this test: no dependence on PATH or on how the test is run.
        let mut cmd = std::process::Command::new(env!("CARGO"));
        cmd.current_dir(crate::workspace_root()).args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ]);
        let out = cmd
            .output()
            .unwrap_or_else(|e| panic!("tidy: cannot run {cmd:?}: {e}"));
        assert!(
            out.status.success(),
            "tidy: {cmd:?} failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("tidy: cannot parse cargo metadata's output: {e}"))
    })
}

fn package_names() -> BTreeSet<&'static str> {
    metadata()
        .packages
        .iter()
        .map(|p| p.name.as_str())
        .collect()
}

/// The packages among `names` that exist (a missing one is reported by
/// [`every_package_is_listed_once`], not by every test that uses the list).
fn listed(names: &'static [&'static str]) -> impl Iterator<Item = &'static Package> {
    metadata()
        .packages
        .iter()
        .filter(move |p| names.contains(&p.name.as_str()))
}

/// `path` relative to the workspace root (as given when it is elsewhere).
fn relative(path: &Path) -> String {
    let root = crate::workspace_root();
    path.strip_prefix(&root)
        .or_else(|_| path.strip_prefix(&metadata().workspace_root))
        .unwrap_or(path)
        .display()
        .to_string()
}

/// Fails with every problem found, one per line, under `rule`.
fn report(rule: &str, problems: &[String]) {
    assert!(
        problems.is_empty(),
        "tidy: {rule}\n{}\n",
        problems
            .iter()
            .map(|p| format!("  - {p}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

// --- source files -----------------------------------------------------------------------------

/// Every `.rs` file under `dir`, recursively, sorted; build outputs and hidden directories are
/// skipped.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('.') || name == "target" {
                continue;
            }
            match entry.file_type() {
                Ok(t) if t.is_dir() => walk(&path, out),
                Ok(t) if t.is_file() && name.ends_with(".rs") => out.push(path),
                _ => {}
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, &mut out);
    out.sort();
    out
}

/// Every `.rs` file of every crate and of xtask (src, tests, benches, examples, build.rs).
fn workspace_rust_files() -> Vec<PathBuf> {
    let root = crate::workspace_root();
    let mut files = rust_files(&root.join("crates"));
    files.extend(rust_files(&root.join("xtask")));
    files
}

/// The `src/` files (the code that ships) of every crate and of xtask.
fn shipped_rust_files() -> Vec<PathBuf> {
    let root = crate::workspace_root();
    let mut package_dirs: Vec<PathBuf> = std::fs::read_dir(root.join("crates"))
        .map(|entries| entries.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    package_dirs.push(root.join("xtask"));
    package_dirs.sort();
    package_dirs
        .iter()
        .flat_map(|dir| rust_files(&dir.join("src")))
        .collect()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("tidy: cannot read {path:?}: {e}"))
}

/// `source` with comments, string literals and character literals blanked out (each replaced
/// by a space), so a word search sees code only.
fn code_only(source: &str) -> String {
    let chars: Vec<char> = source.chars().collect();
    let mut out = String::with_capacity(source.len());
    let mut i = 0;
    let at = |i: usize| chars.get(i).copied();
    while i < chars.len() {
        let c = chars[i];
        if c == '/' && at(i + 1) == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
            out.push(' ');
        } else if c == '/' && at(i + 1) == Some('*') {
            // Block comments nest in Rust.
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && at(i + 1) == Some('*') {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && at(i + 1) == Some('/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
            out.push(' ');
        } else if c == 'r' && matches!(at(i + 1), Some('"' | '#')) && !ident_before(&chars, i) {
            // Raw string r"..." or r#"..."#: no escapes, ends at a quote and as many hashes.
            let mut j = i + 1;
            let mut hashes = 0;
            while at(j) == Some('#') {
                hashes += 1;
                j += 1;
            }
            if at(j) != Some('"') {
                out.push(c);
                i += 1;
                continue;
            }
            j += 1;
            while j < chars.len() {
                if chars[j] == '"' && (1..=hashes).all(|h| at(j + h) == Some('#')) {
                    j += 1 + hashes;
                    break;
                }
                j += 1;
            }
            i = j;
            out.push(' ');
        } else if c == '"' {
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                i += if chars[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
            out.push(' ');
        } else if c == '\'' && at(i + 1) == Some('\\') {
            // An escaped character literal: '\n', '\'', '\u{..}'.
            i += 2;
            while i < chars.len() && chars[i] != '\'' {
                i += 1;
            }
            i += 1;
            out.push(' ');
        } else if c == '\'' && at(i + 2) == Some('\'') {
            // A plain character literal ('"' included); anything else is a lifetime.
            i += 3;
            out.push(' ');
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

fn ident_before(chars: &[char], i: usize) -> bool {
    i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_')
}

/// Whether `code` contains `word` as a whole word.
fn has_word(code: &str, word: &str) -> bool {
    let is_ident = |c: char| c.is_alphanumeric() || c == '_';
    code.match_indices(word).any(|(i, _)| {
        let before = code[..i].chars().next_back();
        let after = code[i + word.len()..].chars().next();
        !before.is_some_and(is_ident) && !after.is_some_and(is_ident)
    })
}

/// `code` (from [`code_only`]) with every `#[cfg(test)]` item blanked out (the attribute, any
/// attributes after it, and the item up to its `;` or closing brace), and the names of the
/// test modules it declares in files of their own (`#[cfg(test)] mod name;`).
fn without_test_items(code: &str) -> (String, Vec<String>) {
    const ATTRIBUTE: &str = "#[cfg(test)]";
    let mut out = String::with_capacity(code.len());
    let mut test_modules = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find(ATTRIBUTE) {
        out.push_str(&rest[..at]);
        let item = &rest[at + ATTRIBUTE.len()..];
        let mut depth = 0usize;
        let mut end = item.len();
        for (i, c) in item.char_indices() {
            match c {
                '(' | '[' | '{' => depth += 1,
                ')' | ']' => depth = depth.saturating_sub(1),
                '}' => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        end = i + 1;
                        break;
                    }
                }
                ';' if depth == 0 => {
                    end = i + 1;
                    break;
                }
                _ => {}
            }
        }
        let declared = tokens(&item[..end]);
        if let [.., "mod", name, ";"] = declared.as_slice() {
            test_modules.push((*name).to_string());
        }
        out.push(' ');
        rest = &item[end..];
    }
    out.push_str(rest);
    (out, test_modules)
}

// --- imports between the files of a crate -----------------------------------------------------

/// The tokens of [`code_only`] text: identifiers (keywords included), `::`, and every other
/// character on its own. A `$` is dropped, so a macro's `$crate` reads as `crate`.
fn tokens(code: &str) -> Vec<&str> {
    let is_ident = |c: char| c.is_alphanumeric() || c == '_';
    let mut out = Vec::new();
    let mut chars = code.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c.is_whitespace() || c == '$' {
            continue;
        }
        if is_ident(c) {
            let mut end = i + c.len_utf8();
            while let Some(&(j, d)) = chars.peek() {
                if !is_ident(d) {
                    break;
                }
                end = j + d.len_utf8();
                chars.next();
            }
            out.push(&code[i..end]);
        } else if c == ':' && chars.peek().is_some_and(|&(_, d)| d == ':') {
            chars.next();
            out.push("::");
        } else {
            out.push(&code[i..i + c.len_utf8()]);
        }
    }
    out
}

fn is_ident_token(token: &str) -> bool {
    token
        .chars()
        .next()
        .is_some_and(|c| c.is_alphabetic() || c == '_')
}

/// A path written in a file: `crate::a::B`, `super::x`, `self::y::*`, `child::z` (one leaf of
/// a grouped `use` each).
#[derive(Debug, Clone, PartialEq, Eq)]
struct PathRef {
    /// The inline modules (`mod tests { … }`) it is written in, outermost first.
    scope: Vec<String>,
    /// Its segments as written; a glob's last segment is `*`, and a group's `self` is left
    /// out (`crate::a::{self}` is `crate::a`).
    segments: Vec<String>,
}

/// What a file declares and names: its `mod name;` declarations (each with the inline
/// modules it is in) and every path that starts with a name followed by `::`.
#[derive(Debug, Default)]
struct FileSyntax {
    mods: Vec<(Vec<String>, String)>,
    paths: Vec<PathRef>,
}

/// Reads the leaves of the use-tree (or the plain path) that starts at `t[i]`, each after the
/// segments in `path`, into `out`; returns the index after it.
fn use_tree(t: &[&str], mut i: usize, mut path: Vec<String>, out: &mut Vec<Vec<String>>) -> usize {
    loop {
        match t.get(i).copied() {
            Some("{") => {
                i += 1;
                while let Some(&token) = t.get(i) {
                    if token == "}" {
                        return i + 1;
                    }
                    let before = i;
                    if token != "," {
                        i = use_tree(t, i, path.clone(), out);
                    }
                    if i == before {
                        i += 1;
                    }
                }
                return i;
            }
            Some("*") => {
                path.push("*".into());
                out.push(path);
                return i + 1;
            }
            Some("self") if !path.is_empty() => {
                out.push(path);
                return i + 1;
            }
            Some(s) if is_ident_token(s) => {
                path.push(s.to_string());
                i += 1;
                if t.get(i) == Some(&"::") {
                    i += 1;
                    continue;
                }
                out.push(path);
                return i;
            }
            _ => {
                if !path.is_empty() {
                    out.push(path);
                }
                return i;
            }
        }
    }
}

/// The module declarations and paths of one file's source (comments and strings ignored).
fn file_syntax(source: &str) -> FileSyntax {
    let code = code_only(source);
    let t = tokens(&code);
    let mut syntax = FileSyntax::default();
    // Inline modules open around the current token: (name, brace depth inside it).
    let mut open: Vec<(String, usize)> = Vec::new();
    let mut depth = 0usize;
    let mut pending_mod: Option<String> = None;
    let scope = |open: &[(String, usize)]| open.iter().map(|(n, _)| n.clone()).collect();
    let mut i = 0;
    while i < t.len() {
        let at = |k: usize| t.get(k).copied().unwrap_or("");
        match t[i] {
            "{" => {
                depth += 1;
                if let Some(name) = pending_mod.take() {
                    open.push((name, depth));
                }
                i += 1;
                continue;
            }
            "}" => {
                if open.last().is_some_and(|(_, d)| *d == depth) {
                    open.pop();
                }
                depth = depth.saturating_sub(1);
                i += 1;
                continue;
            }
            "mod" if is_ident_token(at(i + 1)) && matches!(at(i + 2), ";" | "{") => {
                if at(i + 2) == ";" {
                    syntax.mods.push((scope(&open), at(i + 1).to_string()));
                } else {
                    pending_mod = Some(at(i + 1).to_string());
                }
                i += 2;
                continue;
            }
            _ => {}
        }
        let before = if i > 0 { at(i - 1) } else { "" };
        let starts_path = is_ident_token(t[i])
            && at(i + 1) == "::"
            && (is_ident_token(at(i + 2)) || matches!(at(i + 2), "{" | "*"))
            && !matches!(before, "::" | ".")
            // `pub(in crate::a)` restricts visibility; it names no item.
            && !(before == "in" && i >= 2 && at(i - 2) == "(");
        if !starts_path {
            i += 1;
            continue;
        }
        let mut leaves = Vec::new();
        i = use_tree(&t, i, Vec::new(), &mut leaves);
        let here: Vec<String> = scope(&open);
        syntax
            .paths
            .extend(leaves.into_iter().map(|segments| PathRef {
                scope: here.clone(),
                segments,
            }));
    }
    syntax
}

/// The files of one crate (one library or binary target) as modules, and the imports between
/// them: `from → to → names` (the names `from` takes from `to`, `*` for a glob).
#[derive(Debug, Default)]
struct FileGraph {
    /// The crate root (lib.rs, main.rs): declarations and re-exports, never counted.
    root: String,
    /// Module path → file.
    modules: BTreeMap<Vec<String>, String>,
    edges: BTreeMap<String, BTreeMap<String, BTreeSet<String>>>,
}

/// The graph of the crate whose root is `root`, among `files` (path with `/` → source).
///
/// Modules are found from `mod name;` declarations, as rustc finds them (`name.rs` or
/// `name/mod.rs` beside a root or a `mod.rs`, under `stem/` beside any other file; `#[path]`
/// is not supported). A path names the file of the longest module prefix it resolves to:
/// `crate::a::b::f` → `a/b.rs` (or `a/b/mod.rs`), else `a.rs` (or `a/mod.rs`); `self::`,
/// `super::` (from inline modules too: a `mod tests`'s `super::*` is its own file) and a bare
/// `child::x` where the same module declares `mod child;`. The crate root is left out of the
/// graph (its paths and the paths to it), and a file's paths to itself are no edges; a parent
/// `mod.rs` and its children are files like any other.
fn file_graph(files: &BTreeMap<String, String>, root: &str) -> FileGraph {
    let mut graph = FileGraph {
        root: root.to_string(),
        ..FileGraph::default()
    };
    let mut syntax: BTreeMap<String, FileSyntax> = BTreeMap::new();
    let mut module_of: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut queue = vec![(root.to_string(), Vec::<String>::new())];
    while let Some((file, module)) = queue.pop() {
        if module_of.contains_key(&file) {
            continue;
        }
        let Some(source) = files.get(&file) else {
            continue;
        };
        let parsed = file_syntax(source);
        let (dir, name) = file.rsplit_once('/').unwrap_or(("", file.as_str()));
        let children_dir = if file == root || name == "mod.rs" {
            dir.to_string()
        } else {
            let stem = name.trim_end_matches(".rs");
            if dir.is_empty() {
                stem.to_string()
            } else {
                format!("{dir}/{stem}")
            }
        };
        for (scope, child) in &parsed.mods {
            let mut sub = children_dir.clone();
            for s in scope.iter().chain([child]) {
                if !sub.is_empty() {
                    sub.push('/');
                }
                sub.push_str(s);
            }
            let mut child_module = module.clone();
            child_module.extend(scope.iter().cloned());
            child_module.push(child.clone());
            for candidate in [format!("{sub}.rs"), format!("{sub}/mod.rs")] {
                if files.contains_key(&candidate) {
                    queue.push((candidate, child_module.clone()));
                    break;
                }
            }
        }
        graph.modules.insert(module.clone(), file.clone());
        module_of.insert(file.clone(), module);
        syntax.insert(file, parsed);
    }
    for (file, parsed) in syntax.iter().filter(|(file, _)| **file != graph.root) {
        let module = &module_of[file];
        for path in &parsed.paths {
            let mut base = module.clone();
            base.extend(path.scope.iter().cloned());
            let Some(absolute) = resolve(path, &base, &parsed.mods) else {
                continue;
            };
            let Some((target, name)) = graph.file_of(&absolute) else {
                continue;
            };
            if target != *file && target != graph.root {
                graph
                    .edges
                    .entry(file.clone())
                    .or_default()
                    .entry(target)
                    .or_default()
                    .insert(name);
            }
        }
    }
    graph
}

/// `path`, written in module `base`, as a path from the crate root; `None` when it does not
/// start in this crate (`std::…`, `serde::…`, a name that is no declared child).
fn resolve(path: &PathRef, base: &[String], mods: &[(Vec<String>, String)]) -> Option<Vec<String>> {
    let segments = &path.segments;
    let first = segments.first()?.as_str();
    match first {
        "crate" => Some(segments[1..].to_vec()),
        "self" => Some([base, &segments[1..]].concat()),
        "super" => {
            let up = segments.iter().take_while(|s| *s == "super").count();
            let kept = base.len().checked_sub(up)?;
            Some([&base[..kept], &segments[up..]].concat())
        }
        _ if mods
            .iter()
            .any(|(scope, m)| *scope == path.scope && m == first) =>
        {
            Some([base, &segments[..]].concat())
        }
        _ => None,
    }
}

impl FileGraph {
    /// The file that the longest module prefix of `absolute` lives in, and the name taken
    /// from it (the segment after that prefix, or the module's own name).
    fn file_of(&self, absolute: &[String]) -> Option<(String, String)> {
        (0..=absolute.len()).rev().find_map(|n| {
            let file = self.modules.get(&absolute[..n])?;
            let name = absolute
                .get(n)
                .or_else(|| absolute.last())
                .map_or_else(|| "crate".to_string(), Clone::clone);
            Some((file.clone(), name))
        })
    }

    /// The import cycles: every strongly connected set of two files or more (Tarjan's
    /// algorithm), each as one loop through its first file, then its files, sorted.
    fn cycles(&self) -> Vec<(Vec<String>, Vec<String>)> {
        let nodes: Vec<&String> = self.modules.values().collect();
        let index: BTreeMap<&String, usize> =
            nodes.iter().enumerate().map(|(i, n)| (*n, i)).collect();
        let next: Vec<Vec<usize>> = nodes
            .iter()
            .map(|n| {
                self.edges
                    .get(*n)
                    .into_iter()
                    .flat_map(|to| to.keys())
                    .filter_map(|t| index.get(t).copied())
                    .collect()
            })
            .collect();
        let components = strongly_connected(&next);
        let mut out = Vec::new();
        for component in components.into_iter().filter(|c| c.len() > 1) {
            let mut files: Vec<String> = component.iter().map(|&i| nodes[i].clone()).collect();
            files.sort();
            let start = index[&files[0]];
            // Breadth-first from the first file back to itself, inside the component.
            let inside: BTreeSet<usize> = component.iter().copied().collect();
            let mut came_from: BTreeMap<usize, usize> = BTreeMap::new();
            let mut frontier = vec![start];
            let mut closing = None;
            'search: while !frontier.is_empty() {
                let mut following = Vec::new();
                for &n in &frontier {
                    for &m in &next[n] {
                        if m == start {
                            closing = Some(n);
                            break 'search;
                        }
                        if inside.contains(&m) && !came_from.contains_key(&m) {
                            came_from.insert(m, n);
                            following.push(m);
                        }
                    }
                }
                frontier = following;
            }
            let mut lap = vec![nodes[start].clone()];
            let mut at = closing;
            while let Some(n) = at.filter(|&n| n != start) {
                lap.push(nodes[n].clone());
                at = came_from.get(&n).copied();
            }
            lap[1..].reverse();
            lap.push(nodes[start].clone());
            out.push((lap, files));
        }
        out.sort();
        out
    }

    /// One message per cycle: a loop through it (`a.rs -> b.rs -> a.rs`), then, a line each,
    /// every import among its files with the names taken (six at most). `dir` is put before
    /// every file name.
    fn cycle_reports(&self, dir: &str) -> Vec<String> {
        let mut out = Vec::new();
        for (lap, knot) in self.cycles() {
            let lap: Vec<String> = lap.iter().map(|f| format!("{dir}{f}")).collect();
            let mut text = lap.join(" -> ");
            if knot.len() + 1 > lap.len() {
                text.push_str(&format!(", {} files tied in all", knot.len()));
            }
            for from in &knot {
                for (to, names) in self.edges.get(from).into_iter().flatten() {
                    if !knot.contains(to) {
                        continue;
                    }
                    let shown: Vec<&str> = names.iter().map(String::as_str).take(6).collect();
                    let more = match names.len() - shown.len() {
                        0 => String::new(),
                        n => format!(" and {n} more"),
                    };
                    text.push_str(&format!(
                        "\n      {dir}{from} -> {dir}{to}: {}{more}",
                        shown.join(", ")
                    ));
                }
            }
            out.push(text);
        }
        out
    }
}

/// The strongly connected components of the graph `next` (node → successors), Tarjan's
/// algorithm, iteratively.
fn strongly_connected(next: &[Vec<usize>]) -> Vec<Vec<usize>> {
    let n = next.len();
    let mut index = vec![usize::MAX; n];
    let mut low = vec![0; n];
    let mut on_stack = vec![false; n];
    let mut stack = Vec::new();
    let mut counter = 0;
    let mut components = Vec::new();
    for start in 0..n {
        if index[start] != usize::MAX {
            continue;
        }
        // (node, next successor to visit)
        let mut calls = vec![(start, 0usize)];
        index[start] = counter;
        low[start] = counter;
        counter += 1;
        stack.push(start);
        on_stack[start] = true;
        while let Some(&mut (v, ref mut k)) = calls.last_mut() {
            if let Some(&w) = next[v].get(*k) {
                *k += 1;
                if index[w] == usize::MAX {
                    index[w] = counter;
                    low[w] = counter;
                    counter += 1;
                    stack.push(w);
                    on_stack[w] = true;
                    calls.push((w, 0));
                } else if on_stack[w] {
                    low[v] = low[v].min(index[w]);
                }
                continue;
            }
            calls.pop();
            if let Some(&(parent, _)) = calls.last() {
                low[parent] = low[parent].min(low[v]);
            }
            if low[v] == index[v] {
                let mut component = Vec::new();
                while let Some(w) = stack.pop() {
                    on_stack[w] = false;
                    component.push(w);
                    if w == v {
                        break;
                    }
                }
                components.push(component);
            }
        }
    }
    components
}

// --- the rules --------------------------------------------------------------------------------

#[test]
fn every_package_is_listed_once() {
    let names = package_names();
    let mut problems = Vec::new();
    for p in &metadata().packages {
        let n = p.name.as_str();
        let lists = [("BURN_FREE", BURN_FREE), ("BURN_USERS", BURN_USERS)]
            .iter()
            .filter(|(_, l)| l.contains(&n))
            .map(|(name, _)| *name)
            .collect::<Vec<_>>();
        match lists.len() {
            1 => {}
            0 => problems.push(format!(
                "package `{n}` ({}) is in neither BURN_FREE nor BURN_USERS: add it to the one \
                 it belongs to (and see the other lists at the top of xtask/src/tidy.rs)",
                p.manifest()
            )),
            _ => problems.push(format!(
                "package `{n}` is in both {}: keep it in one",
                lists.join(" and ")
            )),
        }
    }
    for (list, members) in [
        ("BINARIES", BINARIES),
        ("BURN_FREE", BURN_FREE),
        ("BURN_USERS", BURN_USERS),
    ] {
        for m in members.iter().filter(|m| !names.contains(*m)) {
            problems.push(format!(
                "{list} names `{m}`, but no workspace package has that name: if it was renamed, \
                 split or removed, update the list in xtask/src/tidy.rs"
            ));
        }
    }
    for name in [TESTKIT, FSIO] {
        if !names.contains(name) {
            problems.push(format!(
                "tidy checks `{name}`, but no workspace package has that name: update \
                 xtask/src/tidy.rs"
            ));
        }
    }
    report(
        "every package must be placed in tidy's lists, and every listed name must exist",
        &problems,
    );
}

#[test]
fn libraries_never_parse_arguments_draw_or_use_anyhow() {
    let mut problems = Vec::new();
    for p in &metadata().packages {
        if BINARIES.contains(&p.name.as_str()) {
            continue;
        }
        if p.has_binary() {
            problems.push(format!(
                "library package `{}` ({}) has a binary target: binaries live in crates/cli, \
                 crates/perf and xtask (or add the package to BINARIES in xtask/src/tidy.rs if \
                 it really is one)",
                p.name,
                p.manifest()
            ));
        }
        for d in p.normal_dependencies() {
            if BINARY_ONLY_DEPENDENCIES.contains(&d.name.as_str()) {
                problems.push(format!(
                    "library package `{}` ({}) depends on `{}`: only binaries parse arguments, \
                     draw progress, install log subscribers or use anyhow; report through \
                     `progress`/`tracing` and return a thiserror error instead (a test may \
                     use it as a dev-dependency)",
                    p.name,
                    p.manifest(),
                    d.name
                ));
            }
        }
    }
    report(
        "libraries never depend on indicatif, clap, anyhow, tracing-subscriber or \
         tracing-indicatif",
        &problems,
    );
}

#[test]
fn testkit_is_only_a_dev_dependency() {
    let mut problems = Vec::new();
    for p in &metadata().packages {
        for d in p.dependencies.iter().filter(|d| d.name == TESTKIT) {
            if d.kind.as_deref() != Some("dev") {
                problems.push(format!(
                    "package `{}` ({}) has `{TESTKIT}` as a {} dependency: move it to \
                     [dev-dependencies] (test scaffolding never ships in a library or binary)",
                    p.name,
                    p.manifest(),
                    d.kind_name()
                ));
            }
        }
    }
    report("testkit is only ever a dev-dependency", &problems);
}

/// The one project crate lora may use: the kernels crate, for the int8 base layer's type
/// and its portable composition (kernels knows no model either).
const LORA_MAY_USE: &str = "imdb-lora-kernels";

#[test]
fn lora_depends_on_burn_and_no_project_crate() {
    let project = package_names();
    let mut problems = Vec::new();
    for p in metadata()
        .packages
        .iter()
        .filter(|p| p.name == "imdb-lora-lora")
    {
        if !p.normal_dependencies().any(|d| d.name == "burn") {
            problems.push(format!(
                "`{}` ({}) no longer depends on `burn`: the LoRA layer is a Burn module; if \
                 that changed on purpose, update docs/ARCHITECTURE.md and this test",
                p.name,
                p.manifest()
            ));
        }
        for d in &p.dependencies {
            let allowed =
                (d.name == TESTKIT && d.kind.as_deref() == Some("dev")) || d.name == LORA_MAY_USE;
            if project.contains(d.name.as_str()) && !allowed {
                problems.push(format!(
                    "`{}` ({}) depends on project crate `{}` ({}): lora knows nothing of BERT, \
                     files or data; move the code that needs `{}` to a crate above lora",
                    p.name,
                    p.manifest(),
                    d.name,
                    d.kind_name(),
                    d.name
                ));
            }
        }
    }
    report(
        "lora depends on Burn and on no project crate but kernels (testkit as a dev-dependency aside)",
        &problems,
    );
}

#[test]
fn burn_free_crates_never_depend_on_burn() {
    let mut problems = Vec::new();
    for p in listed(BURN_FREE) {
        for d in p.dependencies.iter().filter(|d| d.is_burn()) {
            problems.push(format!(
                "`{}` ({}) depends on `{}` ({}): it is in BURN_FREE; keep tensors out of it \
                 (pass plain Vec/slices across the boundary), or if it must use Burn, move it \
                 to BURN_USERS in xtask/src/tidy.rs and update docs/ARCHITECTURE.md",
                p.name,
                p.manifest(),
                d.name,
                d.kind_name()
            ));
        }
    }
    report(
        "metrics, report, data, hub, hub-mirror, fsio, progress and xtask never depend on Burn",
        &problems,
    );
}

#[test]
fn xtask_depends_on_no_project_crate_but_fsio() {
    let project = package_names();
    let mut problems = Vec::new();
    for p in metadata().packages.iter().filter(|p| p.name == "xtask") {
        for d in &p.dependencies {
            if project.contains(d.name.as_str()) && d.name != FSIO {
                problems.push(format!(
                    "xtask ({}) depends on project crate `{}` ({}): xtask only drives cargo and \
                     the binaries it builds, and must compile in seconds; copy the constant or \
                     call the binary instead",
                    p.manifest(),
                    d.name,
                    d.kind_name()
                ));
            }
        }
    }
    report(
        "xtask depends on no project crate but the leaf `imdb-lora-fsio`",
        &problems,
    );
}

#[test]
fn packages_are_named_after_their_folder() {
    let mut problems = Vec::new();
    for p in &metadata().packages {
        if p.name == "xtask" || p.name == "imdb-lora" {
            continue;
        }
        let folder = p
            .dir()
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        let expected = format!("imdb-lora-{folder}");
        if p.name != expected {
            problems.push(format!(
                "package `{}` ({}) should be named `{expected}` (packages are \
                 `imdb-lora-<folder>`); rename it and add \
                 `{expected} = {{ path = \"{}\" }}` to [workspace.dependencies]",
                p.name,
                p.manifest(),
                relative(p.dir()),
            ));
        }
        // The library is the package's own name (`-` as `_`): one name for one crate in
        // `cargo -p`, `use` paths, docs and tools, and none that shadows a crates.io crate.
        let lib = expected.replace('-', "_");
        for t in p
            .targets
            .iter()
            .filter(|t| t.kind.iter().any(|k| k == "lib"))
        {
            if t.name != lib {
                problems.push(format!(
                    "package `{}` ({}) has library `{}`; it should be `{lib}` (the package's \
                     name): remove its `[lib] name`",
                    p.name,
                    p.manifest(),
                    t.name
                ));
            }
        }
    }
    report(
        "every package is `imdb-lora-<folder>` with library `imdb_lora_<folder>`; \
         exceptions: `imdb-lora` (crates/cli) and `xtask`",
        &problems,
    );
}

/// Dependencies are used under their package names: a key that renames a project crate
/// (`metrics = { package = "imdb-lora-metrics" }`) would give one crate two names again.
#[test]
fn project_crates_are_used_under_their_own_names() {
    let mut problems = Vec::new();
    for p in &metadata().packages {
        for d in &p.dependencies {
            if d.name.starts_with("imdb-lora") && d.rename.is_some() {
                problems.push(format!(
                    "{} uses `{}` under the name `{}`: drop the rename",
                    p.manifest(),
                    d.name,
                    d.rename.as_deref().unwrap_or_default()
                ));
            }
        }
    }
    report(
        "project crates are used under their package names",
        &problems,
    );
}

#[test]
fn unsafe_only_in_allowed_files() {
    let root = crate::workspace_root();
    let mut problems = Vec::new();
    let mut seen = BTreeSet::new();
    for file in &shipped_rust_files() {
        let rel = relative(file);
        if !has_word(&code_only(&read(file)), "unsafe") {
            continue;
        }
        seen.insert(rel.clone());
        if !UNSAFE_ALLOWED.iter().any(|(f, _)| *f == rel) {
            problems.push(format!(
                "{rel} uses `unsafe`: the workspace keeps unsafe code to a few reviewed files; \
                 find a safe way (a crate that wraps it), or, after review, add the file with \
                 its reason to UNSAFE_ALLOWED in xtask/src/tidy.rs and say why in the file"
            ));
        }
    }
    for (f, why) in UNSAFE_ALLOWED {
        if !seen.contains(*f) {
            problems.push(format!(
                "UNSAFE_ALLOWED lists {f} ({why}), which {}: remove or update the entry in \
                 xtask/src/tidy.rs",
                if root.join(f).is_file() {
                    "no longer uses `unsafe`"
                } else {
                    "does not exist (moved?)"
                }
            ));
        }
    }
    report(
        "`unsafe` appears only in the files of UNSAFE_ALLOWED",
        &problems,
    );
}

#[test]
fn every_rust_file_opens_with_a_module_doc() {
    let problems: Vec<String> = workspace_rust_files()
        .iter()
        .filter(|f| !read(f).starts_with("//!"))
        .map(|f| {
            format!(
                "{} does not start with a `//!` line: open it with one saying what the file is \
                 for",
                relative(f)
            )
        })
        .collect();
    report(
        "every .rs file under crates/ and xtask/ starts with a `//!` line",
        &problems,
    );
}

#[test]
fn one_integration_test_binary_per_crate() {
    // File → what it is, so a file found both ways is listed once.
    let mut offending = BTreeMap::new();
    for p in &metadata().packages {
        let expected = p.dir().join("tests").join("it").join("main.rs");
        for t in p
            .targets
            .iter()
            .filter(|t| t.kind.iter().any(|k| k == "test"))
        {
            if t.src_path != expected {
                offending.insert(
                    relative(&t.src_path),
                    format!("test target `{}` of `{}`", t.name, p.name),
                );
            }
        }
        // A file cargo does not build (`autotests = false`) is still in the wrong place.
        let Ok(entries) = std::fs::read_dir(p.dir().join("tests")) else {
            continue;
        };
        for e in entries.flatten() {
            let path = e.path();
            if path.is_file() && path.extension().is_some_and(|x| x == "rs") {
                offending
                    .entry(relative(&path))
                    .or_insert_with(|| format!("in `{}`, not a test target", p.name));
            }
        }
    }
    let problems: Vec<String> = offending
        .into_iter()
        .map(|(file, what)| format!("{file} ({what})"))
        .collect();
    report(
        "integration tests live in one binary per crate, tests/it/main.rs, each file a module \
         of it: `git mv tests/<name>.rs tests/it/<name>.rs` and add `mod <name>;` to \
         tests/it/main.rs (one link per crate instead of one per file); offending files:",
        &problems,
    );
}

/// No two files of a crate import each other, directly or around a loop: a file and the files
/// it names form layers, so each can be read, tested and moved with what lies below it. Checked
/// for every library and binary target under a package's `src/` (xtask's included) from
/// `crate::`, `self::`, `super::` and declared-child paths, grouped `use` trees expanded, test
/// modules inside a file counted as the file's (see [`file_graph`]). The crate root only
/// declares modules and re-exports, so paths to it are not counted; a parent `mod.rs` is a file
/// like any other, its re-exports (`pub use child::X`) included: it may import its children,
/// or they it, not both (the children then share what they need through a sibling file).
#[test]
fn no_import_cycles_between_files_of_a_crate() {
    let mut problems = Vec::new();
    for p in &metadata().packages {
        let src = p.dir().join("src");
        let files: BTreeMap<String, String> = rust_files(&src)
            .iter()
            .filter_map(|f| {
                let rel = f.strip_prefix(p.dir()).ok()?;
                Some((rel.to_string_lossy().replace('\\', "/"), read(f)))
            })
            .collect();
        let roots = p.targets.iter().filter_map(|t| {
            let rel = t.src_path.strip_prefix(p.dir()).ok()?;
            Some(rel.to_string_lossy().replace('\\', "/")).filter(|r| files.contains_key(r))
        });
        let roots: BTreeSet<String> = roots.collect();
        let dir = format!("{}/", relative(p.dir()));
        for root in &roots {
            problems.extend(file_graph(&files, root).cycle_reports(&dir));
        }
    }
    report(
        "no import cycles between the files of a crate (`crate::`, `super::`, `self::` and child \
         paths; the crate root aside): move what the files share into a file of its own that \
         imports neither, or move the code that needs the other file into it",
        &problems,
    );
}

/// Every file the workspace writes goes through `imdb_lora_fsio` (docs/ARCHITECTURE.md's
/// invariant): outside crates/fsio, no shipped code calls [`DIRECT_WRITE_CALLS`].
///
/// The rule covers every package's `src/` and xtask's (xtask writes bench.json and its reports
/// through fsio too). Test code may write its fixtures directly: integration tests, benches
/// and examples (outside `src/`), `#[cfg(test)]` items inside a file (a `mod tests { … }`),
/// test modules in files of their own (`#[cfg(test)] mod name;`, such as this file) and the
/// testkit crate (a dev-dependency only). The exceptions in shipped code are
/// [`DIRECT_WRITES_ALLOWED`], each saying why.
///
/// What tidy can see: the calls as written in code ([`code_only`] text). A bare `write(…)`
/// imported with `use std::fs::{write, …}`, or a file opened some other way and written through
/// `std::io::Write`, is not seen.
#[test]
fn files_are_written_only_through_fsio() {
    let root = crate::workspace_root();
    let fsio = root.join("crates").join("fsio");
    let testkit = metadata()
        .packages
        .iter()
        .find(|p| p.name == TESTKIT)
        .map(|p| p.dir().to_path_buf());
    let files: Vec<PathBuf> = shipped_rust_files()
        .into_iter()
        .filter(|f| !f.starts_with(&fsio) && !testkit.as_ref().is_some_and(|t| f.starts_with(t)))
        .collect();
    // Each file with its code outside test items; test modules of their own left out.
    let mut code: BTreeMap<PathBuf, String> = BTreeMap::new();
    let mut test_files = BTreeSet::new();
    for file in &files {
        let (shipped, test_modules) = without_test_items(&code_only(&read(file)));
        let name = file
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let dir = file.parent().unwrap_or(Path::new("."));
        let children = if matches!(name, "mod.rs" | "lib.rs" | "main.rs") {
            dir.to_path_buf()
        } else {
            dir.join(name.trim_end_matches(".rs"))
        };
        for m in test_modules {
            test_files.insert(children.join(format!("{m}.rs")));
            test_files.insert(children.join(&m).join("mod.rs"));
        }
        code.insert(file.clone(), shipped);
    }
    let mut problems = Vec::new();
    let mut seen = BTreeSet::new();
    for (file, code) in code.iter().filter(|(f, _)| !test_files.contains(*f)) {
        let calls: Vec<String> = DIRECT_WRITE_CALLS
            .iter()
            .filter(|call| has_word(code, call))
            .map(|call| format!("`{call}`"))
            .collect();
        if calls.is_empty() {
            continue;
        }
        let rel = relative(file);
        seen.insert(rel.clone());
        if !DIRECT_WRITES_ALLOWED.iter().any(|(f, _)| *f == rel) {
            problems.push(format!(
                "{rel} writes a file itself ({}): write it with `imdb_lora_fsio::write(path, \
                 bytes)` or `imdb_lora_fsio::AtomicFile` (a test's fixture belongs in a \
                 `#[cfg(test)]` module or under tests/)",
                calls.join(", ")
            ));
        }
    }
    for (f, why) in DIRECT_WRITES_ALLOWED {
        if !seen.contains(*f) {
            problems.push(format!(
                "DIRECT_WRITES_ALLOWED lists {f} ({why}), which {}: remove or update the entry \
                 in xtask/src/tidy.rs",
                if root.join(f).is_file() {
                    "no longer writes a file itself"
                } else {
                    "does not exist (moved?)"
                }
            ));
        }
    }
    report(
        "files are written through imdb_lora_fsio only (crates/fsio and test code aside)",
        &problems,
    );
}

#[test]
fn code_only_sees_through_comments_and_strings() {
    let src = "// unsafe here\nlet s = \"unsafe\"; /* unsafe /* nested */ */ let c = '\"';\n\
               let r = r#\"unsafe \"quoted\"\"#; fn f<'a>(x: &'a u8) {}\nunsafe { x }";
    let code = code_only(src);
    assert_eq!(code.matches("unsafe").count(), 1, "{code}");
    assert!(code.contains("fn f<'a>(x: &'a u8)"), "{code}");
    assert!(!has_word("#![allow(unsafe_code)]", "unsafe"));
    assert!(has_word("unsafe{", "unsafe"));
}

#[test]
fn file_graph_reads_grouped_uses_super_self_and_nested_modules() {
    let files: BTreeMap<String, String> = [
        // The root only declares and re-exports: paths to it are never edges.
        (
            "src/lib.rs",
            "mod a; mod b; mod c; mod d; pub use a::A; pub use crate::b::B;",
        ),
        (
            "src/a.rs",
            "use crate::{b::{self, B}, c::C as Cee};\n\
             use crate::A; // the root: not an edge\n\
             pub struct A;\n\
             #[cfg(test)]\n\
             mod tests {\n    use super::*; // this file\n    use crate::d::D;\n}",
        ),
        (
            "src/b.rs",
            "pub(crate) struct B;\n\
             mod inner {\n    pub(super) fn f() { super::super::c::g(); }\n}\n\
             fn s() -> &'static str { \"crate::a::A\" } // crate::a::A\n\
             fn v() -> Vec<u8> { Vec::<u8>::new() }",
        ),
        (
            "src/c.rs",
            "mod leaf;\npub use leaf::L;\npub struct C;\npub fn g() { self::leaf::h(); }",
        ),
        (
            "src/c/leaf.rs",
            "pub struct L;\npub fn h() { let _ = super::C; }\npub(in crate::c) fn k() {}",
        ),
        ("src/d/mod.rs", "pub struct D;\nuse crate::a::*;"),
        // Not declared by any module: not part of the crate.
        ("src/stray.rs", "use crate::a::A;"),
    ]
    .into_iter()
    .map(|(path, source)| (path.to_string(), source.to_string()))
    .collect();
    let graph = file_graph(&files, "src/lib.rs");

    let edges: BTreeMap<(&str, &str), Vec<&str>> = graph
        .edges
        .iter()
        .flat_map(|(from, to)| {
            to.iter().map(move |(to, names)| {
                (
                    (from.as_str(), to.as_str()),
                    names.iter().map(String::as_str).collect(),
                )
            })
        })
        .collect();
    let expected: BTreeMap<(&str, &str), Vec<&str>> = [
        (("src/a.rs", "src/b.rs"), vec!["B", "b"]),
        (("src/a.rs", "src/c.rs"), vec!["C"]),
        (("src/a.rs", "src/d/mod.rs"), vec!["D"]),
        (("src/b.rs", "src/c.rs"), vec!["g"]),
        (("src/c.rs", "src/c/leaf.rs"), vec!["L", "h"]),
        (("src/c/leaf.rs", "src/c.rs"), vec!["C"]),
        (("src/d/mod.rs", "src/a.rs"), vec!["*"]),
    ]
    .into_iter()
    .collect();
    assert_eq!(edges, expected);

    assert_eq!(
        graph.cycle_reports(""),
        [
            "src/a.rs -> src/d/mod.rs -> src/a.rs\n      src/a.rs -> src/d/mod.rs: D\n      \
             src/d/mod.rs -> src/a.rs: *",
            "src/c.rs -> src/c/leaf.rs -> src/c.rs\n      src/c.rs -> src/c/leaf.rs: L, h\n      \
             src/c/leaf.rs -> src/c.rs: C",
        ]
    );
}

#[test]
fn cycles_are_found_around_longer_loops() {
    // a -> b -> c -> a, and d -> a outside the loop; one loop through the first file.
    let files: BTreeMap<String, String> = [
        ("src/main.rs", "mod a; mod b; mod c; mod d;"),
        ("src/a.rs", "use super::b::f;"),
        ("src/b.rs", "pub fn f() { crate::c::g() }"),
        ("src/c.rs", "pub fn g() { super::a::h() }"),
        ("src/d.rs", "use crate::a;"),
    ]
    .into_iter()
    .map(|(path, source)| (path.to_string(), source.to_string()))
    .collect();
    let graph = file_graph(&files, "src/main.rs");
    let cycles = graph.cycles();
    assert_eq!(cycles.len(), 1, "{cycles:?}");
    assert_eq!(
        cycles[0].0,
        ["src/a.rs", "src/b.rs", "src/c.rs", "src/a.rs"]
    );
    assert_eq!(cycles[0].1, ["src/a.rs", "src/b.rs", "src/c.rs"]);
    assert!(graph.edges["src/d.rs"].contains_key("src/a.rs"));
}

#[test]
fn test_items_are_left_out_of_shipped_code() {
    let code = code_only(
        "fn f() { std::fs::write(p, b); }\n\
         #[cfg(test)]\n#[allow(dead_code)]\nmod tests {\n\
         fn g() { let a = [0u8; 2]; File::create(p); }\n}\n\
         #[cfg(test)]\nmod tidy;\n\
         #[cfg(test)]\nconst N: [u8; 1] = [0];\n\
         fn h() { OpenOptions::new(); AtomicFile::create(p); }",
    );
    let (shipped, test_modules) = without_test_items(&code);
    assert_eq!(test_modules, ["tidy"]);
    let found: Vec<&str> = DIRECT_WRITE_CALLS
        .iter()
        .copied()
        .filter(|call| has_word(&shipped, call))
        .collect();
    assert_eq!(found, ["fs::write", "OpenOptions"], "{shipped}");
    assert!(shipped.contains("fn h()"), "{shipped}");
    assert!(!shipped.contains("const N"), "{shipped}");
}

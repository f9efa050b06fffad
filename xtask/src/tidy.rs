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
        "crates/encoder/src/weights.rs",
        "memory-mapping safetensors files",
    ),
    ("crates/cli/src/main.rs", "setting a mimalloc option"),
];

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
            let allowed = d.name == TESTKIT && d.kind.as_deref() == Some("dev");
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
        "lora depends on Burn and on no project crate (testkit as a dev-dependency aside)",
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

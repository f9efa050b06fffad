//! A fuzz harness on stable Rust: mutated versions of real files (`config.json`,
//! `model.safetensors`, `tokenizer.json`, PEFT adapters, parquet splits, training checkpoints,
//! `metrics.json`, users' CSV, TSV and JSON Lines files, a run's `split.json`) fed to the
//! public loaders the CLI uses, each input checked to end in `Ok` or a clean `Err` — never a
//! panic, an abort, an allocation over a cap or a hang.
//!
//! * [`target`]: the targets, one per loader, and [`Harness`], which runs one input through
//!   one of them in-process.
//! * [`mutate`]: the mutations, and [`generate`], which makes input `index` of a run from
//!   `(target, seed, index)` alone, so every input can be rebuilt from three numbers.
//! * [`engine`]: the supervisor (counts, crash files, per-input time cap) and the worker it
//!   runs as a child process, restarted after every crash.
//! * [`seeds`]: `make-seeds`, the command that writes the committed seed files.
//!
//! # Why no fuzzing crate
//! cargo-fuzz and afl need nightly or an instrumenting compiler, which this project does not
//! have. The stable options generate *typed* values: `arbitrary` turns bytes into a Rust type,
//! and `bolero`'s stable mode drives such generators without coverage feedback. Our loaders
//! take *files*, and what finds their bugs is a real file broken in one place (a shape two
//! elements short, a header length of 2^40, a footer whose row count lies), which a type-driven
//! generator reaches only by chance. What is left to write is the part no crate supplies for
//! stable Rust without coverage: a seeded mutator over seed files (`mutate/`)
//! and a crash-catching child process (`engine.rs`); `rand_chacha` gives the reproducible
//! randomness, `cap` the allocation limit.

pub mod engine;
pub mod mutate;
pub mod seeds;
pub mod target;

pub use mutate::generate;
pub use target::{Harness, Outcome, Target};

use std::path::{Path, PathBuf};

/// This crate's directory as built (holding `seeds/`, `regressions/` and `pending/`).
pub fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The seed files of `target` under `dir/seeds/<target>/`, sorted by name.
///
/// # Errors
/// When the directory cannot be read or holds no file.
pub fn load_seeds(dir: &Path, target: Target) -> anyhow::Result<Vec<Vec<u8>>> {
    if target.is_selftest() {
        return Ok(vec![vec![0]]);
    }
    let seed_dir = dir.join("seeds").join(target.name());
    let files = files_in(&seed_dir)?;
    if files.is_empty() {
        anyhow::bail!(
            "{}: no seed files (run `imdb-lora-fuzz make-seeds`)",
            seed_dir.display()
        );
    }
    files
        .iter()
        .map(|f| {
            std::fs::read(f).map_err(|e| anyhow::anyhow!("cannot read seed {}: {e}", f.display()))
        })
        .collect()
}

/// The plain files directly in `dir`, sorted (none when `dir` does not exist); names starting
/// with `.` are skipped.
///
/// # Errors
/// When `dir` exists but cannot be listed.
pub fn files_in(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => anyhow::bail!("cannot list {}: {e}", dir.display()),
    };
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| anyhow::anyhow!("cannot list {}: {e}", dir.display()))?;
        let path = entry.path();
        let hidden = entry.file_name().to_string_lossy().starts_with('.');
        if path.is_file() && !hidden {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

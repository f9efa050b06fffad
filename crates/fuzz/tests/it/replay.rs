//! Every file under `seeds/<target>/` and `regressions/<target>/` replayed through its
//! target: none may panic; seeds must load (they are good files); regressions may end in a
//! clean error. `pending/` holds crashes in code owned elsewhere and is not replayed.

use std::path::Path;

use imdb_lora_fuzz::engine::{install_panic_hook, run_caught};
use imdb_lora_fuzz::{Harness, Outcome, Target};

fn replay_dir(target: Target, dir: &Path, must_load: bool) -> usize {
    let files = imdb_lora_fuzz::files_in(dir).unwrap();
    if files.is_empty() {
        return 0;
    }
    let harness = Harness::new(target).unwrap();
    let mut problems = Vec::new();
    for f in &files {
        let bytes = std::fs::read(f).unwrap();
        match run_caught(&harness, &bytes) {
            Ok(Ok(Outcome::Ok)) => {}
            Ok(Ok(Outcome::Err(e))) if must_load => {
                problems.push(format!("{}: seed does not load: {e}", f.display()))
            }
            Ok(Ok(Outcome::Err(_))) => {}
            Ok(Err(e)) => panic!("harness failure on {}: {e:#}", f.display()),
            Err(message) => problems.push(format!("{}: PANIC: {message}", f.display())),
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    files.len()
}

#[test]
fn every_seed_loads_and_every_regression_ends_without_a_panic() {
    install_panic_hook();
    let dir = imdb_lora_fuzz::crate_dir();
    for target in Target::LOADERS {
        let seeds = replay_dir(target, &dir.join("seeds").join(target.name()), true);
        assert!(seeds > 0, "no seeds for {target}");
        replay_dir(target, &dir.join("regressions").join(target.name()), false);
    }
}

#[test]
fn seeds_are_small() {
    let dir = imdb_lora_fuzz::crate_dir().join("seeds");
    for target in Target::LOADERS {
        for f in imdb_lora_fuzz::files_in(&dir.join(target.name())).unwrap() {
            let len = std::fs::metadata(&f).unwrap().len();
            assert!(len <= 100 * 1024, "{} is {len} bytes", f.display());
        }
    }
}

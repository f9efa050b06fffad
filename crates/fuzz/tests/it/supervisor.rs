//! The supervisor, run as the real binary: every kind of crash (panic, abort, hang, allocation
//! over the cap) is caught, counted, written out reproducibly, and the run goes on past it;
//! and a short run over the loader targets finds nothing.

use std::path::Path;
use std::process::{Command, Output};

fn fuzz_bin(args: &[&str], crash_dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_imdb-lora-fuzz"))
        .args(args)
        .arg("--crash-dir")
        .arg(crash_dir)
        .output()
        .unwrap()
}

/// The table row of `target`: (inputs, ok, err, crashes).
fn row(stdout: &str, target: &str) -> (u64, u64, u64, u64) {
    let line = stdout
        .lines()
        .find(|l| l.starts_with(&format!("| {target} |")))
        .unwrap_or_else(|| panic!("no row for {target} in:\n{stdout}"));
    let cells: Vec<u64> = line
        .split('|')
        .skip(2)
        .take(4)
        .map(|c| c.trim().parse().unwrap())
        .collect();
    (cells[0], cells[1], cells[2], cells[3])
}

#[test]
fn panics_aborts_hangs_and_oversized_allocations_are_crashes_and_the_run_goes_on() {
    let tmp = tempfile::tempdir().unwrap();
    let out = fuzz_bin(
        &[
            "run",
            "--target",
            "selftest-panic",
            "--target",
            "selftest-abort",
            "--target",
            "selftest-hang",
            "--target",
            "selftest-alloc",
            "--inputs",
            "6",
            "--time-cap-s",
            "1",
            "--mem-cap-mib",
            "256",
        ],
        tmp.path(),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    for target in [
        "selftest-panic",
        "selftest-abort",
        "selftest-hang",
        "selftest-alloc",
    ] {
        // Inputs 2 and 5 crash; the worker is restarted after each and runs the rest.
        assert_eq!(
            row(&stdout, target),
            (6, 4, 0, 2),
            "{target}:\n{stdout}\n{stderr}"
        );
        let files = imdb_lora_fuzz::files_in(&tmp.path().join(target)).unwrap();
        // Both crashes have one signature: one file, input 2, rebuilt from (target, seed, 2).
        assert_eq!(files.len(), 1, "{target}: {files:?}");
        assert_eq!(std::fs::read(&files[0]).unwrap(), [2u8], "{target}");
        assert!(
            files[0]
                .file_name()
                .unwrap()
                .to_string_lossy()
                .contains("-s1-i2."),
            "{files:?}"
        );
    }
    assert!(stderr.contains("selftest panic on purpose"), "{stderr}");
    assert!(stderr.contains("memory allocation of"), "{stderr}");
    assert!(stderr.contains("no result within"), "{stderr}");
}

#[test]
fn a_short_run_over_every_loader_finds_no_crash() {
    let tmp = tempfile::tempdir().unwrap();
    let out = fuzz_bin(&["run", "--inputs", "40", "--seed", "7"], tmp.path());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    for target in imdb_lora_fuzz::Target::LOADERS {
        let (inputs, ok, err, crashes) = row(&stdout, target.name());
        assert_eq!((inputs, crashes), (40, 0), "{target}:\n{stdout}");
        assert_eq!(ok + err, 40);
    }
}

#[test]
fn gen_writes_the_input_the_run_tried() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("input.json");
    let status = Command::new(env!("CARGO_BIN_EXE_imdb-lora-fuzz"))
        .args([
            "gen", "--target", "config", "--seed", "3", "--index", "99", "--out",
        ])
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success());
    let seeds =
        imdb_lora_fuzz::load_seeds(&imdb_lora_fuzz::crate_dir(), imdb_lora_fuzz::Target::Config)
            .unwrap();
    assert_eq!(
        std::fs::read(&out).unwrap(),
        imdb_lora_fuzz::generate(imdb_lora_fuzz::Target::Config, &seeds, 3, 99)
    );
}

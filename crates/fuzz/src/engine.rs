//! The supervisor and its worker. The worker (this binary's hidden `worker` subcommand) runs
//! inputs `start..end` of one target in-process, catching panics, and reports each outcome on
//! stdout; its allocator is capped, so an oversized allocation aborts it. The supervisor reads
//! the reports with a per-input time limit: a panic report, the worker's death (abort,
//! signal, failed allocation) or silence past the limit (it kills the worker) is a crash. The
//! crashing input is rebuilt from `(target, seed, index)` and written out, and a new worker
//! carries on from the next index.
//!
//! Protocol (one line each, on the worker's stdout): `R` ready, `O <i>` ok, `E <i>` clean
//! error, `P <i> <message>` panic (message with newlines escaped), `D` done.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::target::{Harness, Outcome, Target};

/// Crash files written per target and run at most (distinct crash signatures only).
const MAX_CRASH_FILES: usize = 16;

/// Bytes of the worker's stderr kept to explain a death.
const STDERR_TAIL: usize = 4096;

/// What kind of crash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrashKind {
    /// A panic, caught in the worker.
    Panic,
    /// The worker died: abort (a failed allocation over the cap included), signal, or exit.
    Death,
    /// The input ran past the time cap; the worker was killed.
    Timeout,
}

impl CrashKind {
    /// The name in reports and crash file names.
    pub fn name(self) -> &'static str {
        match self {
            CrashKind::Panic => "panic",
            CrashKind::Death => "death",
            CrashKind::Timeout => "timeout",
        }
    }
}

/// One crashing input.
#[derive(Clone, Debug)]
pub struct Crash {
    /// The input's index in the run.
    pub index: u64,
    /// What happened.
    pub kind: CrashKind,
    /// The panic message, the worker's exit status and last stderr lines, or the time cap.
    pub message: String,
    /// Where the input was written (`None` past the per-target limit or for a repeated
    /// signature).
    pub file: Option<PathBuf>,
}

/// Per-target totals of a run.
#[derive(Clone, Debug, Default)]
pub struct Counts {
    /// Inputs tried (crashes included).
    pub tried: u64,
    /// Accepted by the loader.
    pub ok: u64,
    /// Refused with an error.
    pub err: u64,
    /// Crashes.
    pub crashes: Vec<Crash>,
    /// Wall time spent on the target.
    pub seconds: f64,
}

/// What to run.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Targets, in order.
    pub targets: Vec<Target>,
    /// Time budget per target (`None`: until `inputs`).
    pub seconds_per_target: Option<f64>,
    /// Inputs per target (`None`: until the time budget is spent).
    pub inputs: Option<u64>,
    /// The run's seed.
    pub seed: u64,
    /// The crate directory: seeds are read from `seeds/<target>/`.
    pub dir: PathBuf,
    /// Crash files go to `<crash_dir>/<target>/`.
    pub crash_dir: PathBuf,
    /// Per-input time cap.
    pub time_cap: Duration,
    /// The worker's allocation cap in bytes.
    pub mem_cap: usize,
    /// This executable (started again as the worker).
    pub exe: PathBuf,
}

/// What the worker does.
#[derive(Clone, Debug)]
pub struct WorkerOptions {
    /// The target.
    pub target: Target,
    /// The run's seed.
    pub seed: u64,
    /// First input index.
    pub start: u64,
    /// One past the last index (`None`: no limit).
    pub end: Option<u64>,
    /// Stop (reporting `D`) once this much time has passed (`None`: no limit).
    pub budget: Option<Duration>,
    /// The crate directory (seeds).
    pub dir: PathBuf,
    /// Where to create the scratch directory (`None`: a fresh temporary one).
    pub scratch: Option<PathBuf>,
}

// --- worker -----------------------------------------------------------------------------------

/// The last panic's message and location, set by the hook [`install_panic_hook`] installs.
static LAST_PANIC: Mutex<Option<String>> = Mutex::new(None);

/// Wraps the panic hook (once per process) so that it also records the message for
/// [`take_panic`]; the previous hook still runs (a worker's stderr is the supervisor's, and a
/// test's failed assertion must still print).
pub fn install_panic_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if let Ok(mut last) = LAST_PANIC.lock() {
                last.get_or_insert_with(|| info.to_string());
            }
            previous(info);
        }));
    });
}

/// The message of the panic caught last (since the previous call).
pub fn take_panic() -> String {
    LAST_PANIC
        .lock()
        .ok()
        .and_then(|mut l| l.take())
        .unwrap_or_else(|| "panic (no message)".into())
}

/// Runs `bytes` through `harness`, a panic caught and returned as `Err(message)`.
///
/// # Errors
/// `Err` holds the panic's message and location.
pub fn run_caught(harness: &Harness, bytes: &[u8]) -> std::result::Result<Result<Outcome>, String> {
    let _ = take_panic();
    std::panic::catch_unwind(AssertUnwindSafe(|| harness.run(bytes))).map_err(|_| take_panic())
}

/// The worker's loop; `set_cap` is called once the harness is ready (the fixtures loaded), to
/// switch the allocation cap on.
///
/// # Errors
/// Setup failures (seeds, scratch directory) and a closed stdout.
pub fn worker_main(opts: &WorkerOptions, set_cap: &dyn Fn()) -> Result<()> {
    let started = Instant::now();
    install_panic_hook();
    let seeds = crate::load_seeds(&opts.dir, opts.target)?;
    let harness = Harness::new_in(opts.target, opts.scratch.as_deref())?;
    set_cap();
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    writeln!(out, "R")?;
    out.flush()?;
    let mut index = opts.start;
    loop {
        let past_end = opts.end.is_some_and(|e| index >= e);
        let past_budget = opts.budget.is_some_and(|b| started.elapsed() >= b);
        if past_end || past_budget {
            break;
        }
        let input = crate::generate(opts.target, &seeds, opts.seed, index);
        match run_caught(&harness, &input) {
            Ok(Ok(Outcome::Ok)) => writeln!(out, "O {index}")?,
            Ok(Ok(Outcome::Err(_))) => writeln!(out, "E {index}")?,
            // The harness could not write its scratch file: a setup problem, not a crash.
            Ok(Err(e)) => return Err(e),
            Err(message) => writeln!(out, "P {index} {}", message.replace('\n', "\\n"))?,
        }
        out.flush()?;
        index += 1;
    }
    writeln!(out, "D")?;
    out.flush()?;
    Ok(())
}

// --- supervisor -------------------------------------------------------------------------------

enum Event {
    Line(String),
    Eof,
}

struct Worker {
    child: Child,
    lines: Receiver<Event>,
    stderr: Arc<Mutex<Vec<u8>>>,
}

impl Worker {
    fn spawn(
        opts: &RunOptions,
        target: Target,
        start: u64,
        budget: Option<Duration>,
        scratch: &Path,
    ) -> Result<Worker> {
        let mut cmd = Command::new(&opts.exe);
        cmd.args([
            "worker",
            "--target",
            target.name(),
            "--seed",
            &opts.seed.to_string(),
            "--start",
            &start.to_string(),
            "--mem-cap-mib",
            &(opts.mem_cap >> 20).to_string(),
            "--dir",
        ])
        .arg(&opts.dir)
        .arg("--scratch")
        .arg(scratch)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // A backtrace would bury the one line that says why the worker died (kept: the last
        // lines of its stderr).
        .env_remove("RUST_BACKTRACE")
        .env_remove("RUST_LIB_BACKTRACE");
        if let Some(end) = opts.inputs {
            cmd.args(["--end", &end.to_string()]);
        }
        if let Some(b) = budget {
            cmd.args(["--budget-ms", &b.as_millis().to_string()]);
        }
        let mut child = cmd
            .spawn()
            .with_context(|| format!("cannot start the worker {}", opts.exe.display()))?;
        let stdout = child.stdout.take().context("worker stdout")?;
        let stderr_pipe = child.stderr.take().context("worker stderr")?;
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                match line {
                    Ok(l) => {
                        if tx.send(Event::Line(l)).is_err() {
                            return;
                        }
                    }
                    Err(_) => break,
                }
            }
            let _ = tx.send(Event::Eof);
        });
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let tail = Arc::clone(&stderr);
        std::thread::spawn(move || {
            let mut pipe = stderr_pipe;
            let mut buf = [0u8; 4096];
            while let Ok(n) = pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                if let Ok(mut t) = tail.lock() {
                    t.extend_from_slice(&buf[..n]);
                    let excess = t.len().saturating_sub(STDERR_TAIL);
                    t.drain(..excess);
                }
            }
        });
        Ok(Worker {
            child,
            lines,
            stderr,
        })
    }

    /// Waits for the worker to exit (its stderr thread then has everything) and describes how
    /// it ended.
    fn death(mut self) -> String {
        let status = self
            .child
            .wait()
            .map_or_else(|e| format!("cannot wait: {e}"), |s| s.to_string());
        // The stderr reader finishes once the pipe closes; give it a moment.
        std::thread::sleep(Duration::from_millis(20));
        let tail = self
            .stderr
            .lock()
            .map(|t| String::from_utf8_lossy(&t).into_owned())
            .unwrap_or_default();
        let last = tail
            .lines()
            .rev()
            .filter(|l| !l.trim().is_empty())
            .take(3)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join(" | ");
        if last.is_empty() {
            format!("worker died: {status}")
        } else {
            format!("worker died: {status}; stderr: {last}")
        }
    }

    fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A crash's signature for deduplication: a panic's location (its first line, `panicked at
/// file:line:col:`), or a death's message with digits removed (allocation sizes, pids and
/// addresses differ between inputs).
fn signature(kind: CrashKind, message: &str) -> String {
    let first = message.split("\\n").next().unwrap_or(message);
    let text: String = match kind {
        CrashKind::Panic => first.to_string(),
        CrashKind::Death | CrashKind::Timeout => {
            first.chars().filter(|c| !c.is_ascii_digit()).collect()
        }
    };
    format!("{}: {text}", kind.name())
}

struct TargetRun<'a> {
    opts: &'a RunOptions,
    target: Target,
    seeds: Vec<Vec<u8>>,
    counts: Counts,
    signatures: BTreeSet<String>,
}

impl TargetRun<'_> {
    fn crash(&mut self, index: u64, kind: CrashKind, message: String) -> Result<()> {
        self.counts.tried += 1;
        let new = self.signatures.insert(signature(kind, &message));
        let file = if new && self.signatures.len() <= MAX_CRASH_FILES {
            let input = crate::generate(self.target, &self.seeds, self.opts.seed, index);
            let dir = self.opts.crash_dir.join(self.target.name());
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            let path = dir.join(format!(
                "{}-s{}-i{index}.{}",
                kind.name(),
                self.opts.seed,
                self.target.extension()
            ));
            imdb_lora_fsio::write(&path, &input)
                .with_context(|| format!("cannot write {}", path.display()))?;
            Some(path)
        } else {
            None
        };
        eprintln_crash(self.target, index, kind, &message, file.as_deref());
        self.counts.crashes.push(Crash {
            index,
            kind,
            message,
            file,
        });
        Ok(())
    }
}

#[allow(clippy::print_stderr)] // the supervisor's report is this binary's interface
fn eprintln_crash(target: Target, index: u64, kind: CrashKind, message: &str, file: Option<&Path>) {
    let written = file.map_or_else(String::new, |f| format!(" -> {}", f.display()));
    eprintln!(
        "fuzz: CRASH {target} #{index} ({}): {message}{written}",
        kind.name()
    );
}

/// Runs one target until its budget or input count is spent.
///
/// # Errors
/// Setup failures: seeds missing, the worker cannot start or dies before it is ready.
pub fn run_target(opts: &RunOptions, target: Target) -> Result<Counts> {
    let started = Instant::now();
    let deadline = opts
        .seconds_per_target
        .map(|s| started + Duration::from_secs_f64(s));
    let mut run = TargetRun {
        opts,
        target,
        seeds: crate::load_seeds(&opts.dir, target)?,
        counts: Counts::default(),
        signatures: BTreeSet::new(),
    };
    // Workers' scratch directories live in this one, so that what a killed or aborted worker
    // leaves behind is removed with it.
    let scratch = crate::target::scratch_dir()?;
    let mut next = 0u64;
    'workers: loop {
        if opts.inputs.is_some_and(|n| next >= n) {
            break;
        }
        let budget = match deadline {
            Some(d) => match d.checked_duration_since(Instant::now()) {
                Some(left) if !left.is_zero() => Some(left),
                _ => break,
            },
            None => None,
        };
        let worker = Worker::spawn(opts, target, next, budget, scratch.path())?;
        let mut ready = false;
        loop {
            // Startup (loading the fixtures) gets the same allowance as one input.
            match worker.lines.recv_timeout(opts.time_cap) {
                Ok(Event::Line(line)) => {
                    let mut parts = line.splitn(3, ' ');
                    let tag = parts.next().unwrap_or_default();
                    let index = parts.next().and_then(|i| i.parse::<u64>().ok());
                    match (tag, index) {
                        ("R", _) => ready = true,
                        ("D", _) => {
                            worker.kill();
                            break 'workers;
                        }
                        ("O", Some(i)) => {
                            run.counts.tried += 1;
                            run.counts.ok += 1;
                            next = i + 1;
                        }
                        ("E", Some(i)) => {
                            run.counts.tried += 1;
                            run.counts.err += 1;
                            next = i + 1;
                        }
                        ("P", Some(i)) => {
                            let message = parts.next().unwrap_or_default().to_string();
                            run.crash(i, CrashKind::Panic, message)?;
                            next = i + 1;
                        }
                        _ => bail!("{target}: unexpected line from the worker: {line:?}"),
                    }
                }
                Ok(Event::Eof) | Err(RecvTimeoutError::Disconnected) => {
                    let message = worker.death();
                    if !ready {
                        bail!("{target}: the worker failed before its first input: {message}");
                    }
                    run.crash(next, CrashKind::Death, message)?;
                    next += 1;
                    continue 'workers;
                }
                Err(RecvTimeoutError::Timeout) => {
                    worker.kill();
                    if !ready {
                        bail!(
                            "{target}: the worker was not ready within {:?}",
                            opts.time_cap
                        );
                    }
                    let message = format!("no result within {:?}; worker killed", opts.time_cap);
                    run.crash(next, CrashKind::Timeout, message)?;
                    next += 1;
                    continue 'workers;
                }
            }
        }
    }
    run.counts.seconds = started.elapsed().as_secs_f64();
    Ok(run.counts)
}

/// The end-of-run table (markdown), one row per target and a total.
pub fn table(results: &[(Target, Counts)]) -> String {
    let mut out = String::from(
        "| target | inputs | ok | err | crashes | seconds | inputs/s |\n\
         | --- | ---: | ---: | ---: | ---: | ---: | ---: |\n",
    );
    let mut total = Counts::default();
    for (target, c) in results {
        out.push_str(&row(target.name(), c));
        total.tried += c.tried;
        total.ok += c.ok;
        total.err += c.err;
        total.crashes.extend(c.crashes.iter().cloned());
        total.seconds += c.seconds;
    }
    if results.len() > 1 {
        out.push_str(&row("**all**", &total));
    }
    out
}

fn row(name: &str, c: &Counts) -> String {
    let rate = if c.seconds > 0.0 {
        c.tried as f64 / c.seconds
    } else {
        0.0
    };
    format!(
        "| {name} | {} | {} | {} | {} | {:.1} | {rate:.0} |\n",
        c.tried,
        c.ok,
        c.err,
        c.crashes.len(),
        c.seconds
    )
}

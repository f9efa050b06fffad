//! Running a benchmark process and measuring it: wall time from spawn to exit and exact peak
//! resident memory, the same way for our binary and for the Python reference.
//!
//! Peak memory is the kernel's own `ru_maxrss` of the child: `xtask bench` starts every
//! measured command through a hidden `xtask bench-child` wrapper, which spawns it, waits for it
//! and reads `getrusage(RUSAGE_CHILDREN)` (only that one child was ever waited for there, so
//! the value is its high-water mark, not a maximum over the builds or other runs) into a small
//! report file. Nothing is sampled, so short peaks are not missed.
//!
//! The machine may be shared: the wrapper also records the child's own CPU time and the CPU
//! time the whole machine spent busy meanwhile (`/proc/stat`), so the report can say how much
//! of the machine other processes took during each measured run.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use nix::sys::resource::{UsageWho, getrusage};
use serde::{Deserialize, Serialize};

/// Arguments of the hidden `xtask bench-child` wrapper.
#[derive(clap::Args, Debug)]
pub struct ChildArgs {
    /// Where to write the measurement (JSON).
    #[arg(long)]
    report: PathBuf,
    /// The program and its arguments.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
    command: Vec<OsString>,
}

/// What the wrapper reports about its child.
#[derive(Serialize, Deserialize, Debug, Clone, Copy)]
pub struct ChildReport {
    /// Seconds from spawn to exit.
    pub wall_s: f64,
    /// Peak resident set size, KiB (`ru_maxrss` on Linux).
    pub max_rss_kib: i64,
    /// Exit code, if the child exited normally.
    pub code: Option<i32>,
    /// Terminating signal, if any.
    pub signal: Option<i32>,
    /// CPU seconds (user + system) of the child and the descendants it waited for.
    #[serde(default)]
    pub cpu_s: f64,
    /// CPU seconds the whole machine spent busy from spawn to exit (`/proc/stat`), if readable.
    #[serde(default)]
    pub machine_busy_s: Option<f64>,
}

/// `/proc/stat`'s clock: USER_HZ, 100 on every Linux architecture this runs on.
const USER_HZ: f64 = 100.0;

/// Busy CPU seconds of the whole machine since boot: the first `cpu` line of `/proc/stat`,
/// all fields but idle and iowait (guest time is already inside user and nice).
fn machine_busy_s() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    busy_of_stat(&stat)
}

fn busy_of_stat(stat: &str) -> Option<f64> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    // user nice system idle iowait irq softirq steal [guest guest_nice]
    let busy: u64 = fields
        .iter()
        .take(8)
        .enumerate()
        .filter(|(i, _)| *i != 3 && *i != 4)
        .map(|(_, v)| v)
        .sum();
    (fields.len() >= 4).then_some(busy as f64 / USER_HZ)
}

/// Waiting for a quiet machine before a measured run (`cargo xtask bench --wait-idle`).
#[derive(Serialize, Debug, Clone, Copy)]
pub struct IdleWait {
    /// Seconds spent waiting.
    pub waited_s: f64,
    /// Whether a quiet window came before the limit (else the run started anyway).
    pub reached: bool,
    /// Share of the machine's CPU that was busy in the last window looked at.
    pub last_busy_share: Option<f64>,
}

/// Other processes' busy share below which the machine counts as idle.
pub const IDLE_SHARE: f64 = 0.10;
/// The window over which that share is measured.
const IDLE_WINDOW: std::time::Duration = std::time::Duration::from_secs(5);

/// Waits until, over one [`IDLE_WINDOW`], the machine's CPU was busy less than
/// [`IDLE_SHARE`] of the time (nothing of the bench runs meanwhile, so that is all other
/// processes), or until `limit_s` seconds have passed.
pub fn wait_idle(limit_s: f64) -> IdleWait {
    let cores = std::thread::available_parallelism().map_or(1, usize::from) as f64;
    let start = Instant::now();
    let mut last = None;
    loop {
        let before = machine_busy_s();
        std::thread::sleep(IDLE_WINDOW);
        let share = before
            .zip(machine_busy_s())
            .map(|(b, a)| (a - b) / (IDLE_WINDOW.as_secs_f64() * cores));
        last = share.or(last);
        let waited_s = start.elapsed().as_secs_f64();
        let Some(share) = share else {
            // No /proc/stat: nothing to wait for.
            return IdleWait {
                waited_s,
                reached: false,
                last_busy_share: None,
            };
        };
        if share < IDLE_SHARE || waited_s >= limit_s {
            return IdleWait {
                waited_s,
                reached: share < IDLE_SHARE,
                last_busy_share: last,
            };
        }
    }
}

fn seconds(t: nix::sys::time::TimeVal) -> f64 {
    t.tv_sec() as f64 + t.tv_usec() as f64 * 1e-6
}

/// The wrapper: runs the command with inherited stdio, writes a [`ChildReport`], and returns
/// the exit code to leave with (the child's, or 1 when it was killed by a signal).
pub fn child_main(args: ChildArgs) -> Result<i32> {
    use std::os::unix::process::ExitStatusExt;

    let (program, rest) = args
        .command
        .split_first()
        .context("bench-child: no command given")?;
    let busy_before = machine_busy_s();
    let start = Instant::now();
    let status = Command::new(program)
        .args(rest)
        .status()
        .with_context(|| format!("cannot start {}", program.to_string_lossy()))?;
    let wall_s = start.elapsed().as_secs_f64();
    let busy_after = machine_busy_s();
    let usage = getrusage(UsageWho::RUSAGE_CHILDREN).context("getrusage(RUSAGE_CHILDREN)")?;
    let report = ChildReport {
        wall_s,
        max_rss_kib: usage.max_rss(),
        code: status.code(),
        signal: status.signal(),
        cpu_s: seconds(usage.user_time()) + seconds(usage.system_time()),
        machine_busy_s: busy_before.zip(busy_after).map(|(b, a)| a - b),
    };
    imdb_lora_fsio::write(&args.report, serde_json::to_string(&report)?.as_bytes())?;
    Ok(status.code().unwrap_or(1))
}

/// A finished measured process.
#[derive(Debug, Clone)]
pub struct Measured {
    /// Seconds from spawn to exit.
    pub wall_s: f64,
    /// Peak resident set size, MiB.
    pub peak_rss_mib: f64,
    /// CPU seconds of the process (user + system).
    pub cpu_s: f64,
    /// Share of the machine's CPU time (all cores, spawn → exit) that OTHER processes used
    /// meanwhile: 0 on an otherwise idle machine; None where `/proc/stat` is unreadable.
    pub others_cpu_share: Option<f64>,
    /// Everything it printed on stdout.
    pub stdout: String,
}

/// [`Measured::others_cpu_share`] of a run: (machine busy − own) / (wall × cores), in [0, 1].
pub fn others_share(report: &ChildReport, cores: usize) -> Option<f64> {
    let busy = report.machine_busy_s?;
    let capacity = report.wall_s * cores.max(1) as f64;
    (capacity > 0.0).then(|| ((busy - report.cpu_s) / capacity).clamp(0.0, 1.0))
}

impl Measured {
    /// The last non-empty stdout line, parsed as JSON (where the programs print their result).
    pub fn last_json(&self, what: &str) -> Result<serde_json::Value> {
        let line = self
            .stdout
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .with_context(|| format!("{what}: printed nothing on stdout"))?;
        serde_json::from_str(line)
            .with_context(|| format!("{what}: last stdout line is not JSON: {line}"))
    }

    /// All of stdout parsed as one JSON value.
    pub fn json(&self, what: &str) -> Result<serde_json::Value> {
        serde_json::from_str(&self.stdout)
            .with_context(|| format!("{what}: stdout is not JSON: {}", tail(&self.stdout, 2000)))
    }
}

/// The last `max` bytes of `s` (at a character boundary).
pub fn tail(s: &str, max: usize) -> &str {
    let mut start = s.len().saturating_sub(max);
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}

/// One measured command, for the record.
#[derive(Serialize, Debug, Clone)]
pub struct LogEntry {
    pub command: String,
    pub wall_s: f64,
    pub peak_rss_mib: f64,
    pub cpu_s: f64,
    pub others_cpu_share: Option<f64>,
}

/// Runs and measures commands through the wrapper.
pub struct Runner {
    /// This xtask executable (the wrapper).
    exe: PathBuf,
    /// Scratch directory for the wrapper's reports.
    scratch: PathBuf,
    counter: usize,
    /// Every successful command, in order.
    pub log: Vec<LogEntry>,
}

impl Runner {
    pub fn new(scratch: &Path) -> Result<Runner> {
        std::fs::create_dir_all(scratch)
            .with_context(|| format!("creating {}", scratch.display()))?;
        Ok(Runner {
            exe: std::env::current_exe().context("locating the xtask executable")?,
            scratch: scratch.to_path_buf(),
            counter: 0,
            log: Vec::new(),
        })
    }

    /// Runs `program args` (with extra environment `env`), measured; a failure is an error
    /// naming the command and the tail of its stderr.
    pub fn run(
        &mut self,
        program: &Path,
        args: &[String],
        env: &[(&str, &str)],
    ) -> Result<Measured> {
        self.counter += 1;
        let report_path = self.scratch.join(format!("child-{}.json", self.counter));
        let _ = std::fs::remove_file(&report_path);
        let shown = display_command(program, args);
        eprintln!("xtask bench: $ {shown}");
        let mut cmd = Command::new(&self.exe);
        cmd.arg("bench-child")
            .arg("--report")
            .arg(&report_path)
            .arg("--")
            .arg(program)
            .args(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let output = cmd
            .output()
            .with_context(|| format!("cannot start the measuring wrapper for `{shown}`"))?;
        let stderr = String::from_utf8_lossy(&output.stderr);
        let stderr = if stderr.trim().is_empty() {
            "(nothing on stderr)".into()
        } else {
            stderr
        };
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let report: Option<ChildReport> = std::fs::read(&report_path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        let _ = std::fs::remove_file(&report_path);
        let Some(report) = report else {
            bail!(
                "`{shown}` could not be measured ({}); stderr tail:\n{}",
                output.status,
                tail(&stderr, 4000)
            );
        };
        if report.code != Some(0) {
            let how = match (report.code, report.signal) {
                (Some(c), _) => format!("exit code {c}"),
                (None, Some(s)) => format!("signal {s}"),
                (None, None) => "unknown status".into(),
            };
            bail!(
                "`{shown}` failed ({how}) after {:.1} s; stderr tail:\n{}",
                report.wall_s,
                tail(&stderr, 4000)
            );
        }
        let peak_rss_mib = report.max_rss_kib as f64 / 1024.0;
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let others_cpu_share = others_share(&report, cores);
        self.log.push(LogEntry {
            command: shown,
            wall_s: report.wall_s,
            peak_rss_mib,
            cpu_s: report.cpu_s,
            others_cpu_share,
        });
        Ok(Measured {
            wall_s: report.wall_s,
            peak_rss_mib,
            cpu_s: report.cpu_s,
            others_cpu_share,
            stdout,
        })
    }
}

/// A command line as a shell would show it (arguments with spaces quoted).
pub fn display_command(program: &Path, args: &[String]) -> String {
    let mut s = program.display().to_string();
    for a in args {
        s.push(' ');
        if a.is_empty() || a.contains(|c: char| c.is_whitespace() || c == '"' || c == '\'') {
            s.push('\'');
            s.push_str(&a.replace('\'', r"'\''"));
            s.push('\'');
        } else {
            s.push_str(a);
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_respects_char_boundaries() {
        assert_eq!(tail("abcdef", 3), "def");
        assert_eq!(tail("ab", 10), "ab");
        assert_eq!(tail("aé", 1), "");
    }

    #[test]
    fn busy_time_leaves_out_idle_and_iowait() {
        let stat = "cpu  100 20 30 5000 70 1 2 3 0 0\ncpu0 50 10 15 2500 35 0 1 1 0 0\n";
        // user + nice + system + irq + softirq + steal = 156 ticks.
        let busy = busy_of_stat(stat).unwrap();
        assert!((busy - 1.56).abs() < 1e-12, "{busy}");
        assert_eq!(busy_of_stat("intr 1 2\n"), None);
    }

    #[test]
    fn others_share_is_the_rest_of_the_machine() {
        let report = |cpu_s, busy| ChildReport {
            wall_s: 10.0,
            max_rss_kib: 0,
            code: Some(0),
            signal: None,
            cpu_s,
            machine_busy_s: busy,
        };
        // 2 cores × 10 s; the child used 15 s, the machine 18 s: others 3 s = 15 %.
        let share = others_share(&report(15.0, Some(18.0)), 2).unwrap();
        assert!((share - 0.15).abs() < 1e-12);
        assert_eq!(others_share(&report(15.0, Some(14.0)), 2), Some(0.0));
        assert_eq!(others_share(&report(15.0, None), 2), None);
    }

    #[test]
    fn commands_are_quoted_when_needed() {
        let s = display_command(
            Path::new("/bin/x"),
            &["a".into(), "b c".into(), "it's".into()],
        );
        assert_eq!(s, r"/bin/x a 'b c' 'it'\''s'");
    }
}

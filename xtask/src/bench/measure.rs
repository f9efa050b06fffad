//! Running a benchmark process and measuring it: wall time from spawn to exit and exact peak
//! resident memory, the same way for our binary and for the Python reference.
//!
//! Peak memory is the kernel's own `ru_maxrss` of the child: `xtask bench` starts every
//! measured command through a hidden `xtask bench-child` wrapper, which spawns it, waits for it
//! and reads `getrusage(RUSAGE_CHILDREN)` (only that one child was ever waited for there, so
//! the value is its high-water mark, not a maximum over the builds or other runs) into a small
//! report file. Nothing is sampled, so short peaks are not missed.

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
}

/// The wrapper: runs the command with inherited stdio, writes a [`ChildReport`], and returns
/// the exit code to leave with (the child's, or 1 when it was killed by a signal).
pub fn child_main(args: ChildArgs) -> Result<i32> {
    use std::os::unix::process::ExitStatusExt;

    let (program, rest) = args
        .command
        .split_first()
        .context("bench-child: no command given")?;
    let start = Instant::now();
    let status = Command::new(program)
        .args(rest)
        .status()
        .with_context(|| format!("cannot start {}", program.to_string_lossy()))?;
    let wall_s = start.elapsed().as_secs_f64();
    let usage = getrusage(UsageWho::RUSAGE_CHILDREN).context("getrusage(RUSAGE_CHILDREN)")?;
    let report = ChildReport {
        wall_s,
        max_rss_kib: usage.max_rss(),
        code: status.code(),
        signal: status.signal(),
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
    /// Everything it printed on stdout.
    pub stdout: String,
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
        self.log.push(LogEntry {
            command: shown,
            wall_s: report.wall_s,
            peak_rss_mib,
        });
        Ok(Measured {
            wall_s: report.wall_s,
            peak_rss_mib,
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
    fn commands_are_quoted_when_needed() {
        let s = display_command(
            Path::new("/bin/x"),
            &["a".into(), "b c".into(), "it's".into()],
        );
        assert_eq!(s, r"/bin/x a 'b c' 'it'\''s'");
    }
}

//! The benchmark's summary: medians, ratios against the reference with the targets,
//! machine facts and the Markdown table.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use serde::Serialize;

/// Median of `values` (`None` when empty).
pub fn median(values: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(v[n / 2]),
        _ => Some((v[n / 2 - 1] + v[n / 2]) / 2.0),
    }
}

/// Which direction is better for a metric.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Better {
    Higher,
    Lower,
    /// Informational (accuracy): no ratio is meaningful.
    Neither,
}

/// A target on the ours/reference ratio, from the issue.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Target {
    /// The ratio must be at least (`Higher`) or at most (`Lower`) this.
    pub ratio: f64,
}

/// One row of the summary table.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    pub metric: String,
    pub unit: String,
    pub better: Better,
    pub ours: Option<f64>,
    pub reference: Option<f64>,
    /// `ours / reference`.
    pub ratio: Option<f64>,
    pub target: Option<Target>,
    /// Whether the target is met (reported, never asserted).
    pub target_met: Option<bool>,
    /// Our value as a percentage of the matmul roofline (GFLOP/s rows).
    pub ours_pct_roofline: Option<f64>,
    /// The reference's value as a percentage of the matmul roofline (GFLOP/s rows).
    pub reference_pct_roofline: Option<f64>,
}

impl Row {
    pub fn new(
        metric: &str,
        unit: &str,
        better: Better,
        ours: Option<f64>,
        reference: Option<f64>,
    ) -> Row {
        let ratio = match (ours, reference, better) {
            (_, _, Better::Neither) => None,
            (Some(o), Some(r), _) if r != 0.0 => Some(o / r),
            _ => None,
        };
        Row {
            metric: metric.into(),
            unit: unit.into(),
            better,
            ours,
            reference,
            ratio,
            target: None,
            target_met: None,
            ours_pct_roofline: None,
            reference_pct_roofline: None,
        }
    }

    pub fn with_target(mut self, ratio: f64) -> Row {
        self.target = Some(Target { ratio });
        self.target_met = self.ratio.map(|r| match self.better {
            Better::Lower => r <= ratio,
            _ => r >= ratio,
        });
        self
    }

    pub fn with_roofline(mut self, roofline: Option<f64>) -> Row {
        if let Some(peak) = roofline.filter(|p| *p > 0.0) {
            self.ours_pct_roofline = self.ours.map(|v| 100.0 * v / peak);
            self.reference_pct_roofline = self.reference.map(|v| 100.0 * v / peak);
        }
        self
    }
}

/// Facts about the machine and the code measured.
#[derive(Clone, Debug, Serialize)]
pub struct Machine {
    pub nproc: usize,
    pub cpu_model: String,
    pub date_utc: String,
    pub git_commit: String,
    pub rustc: String,
    pub load_average_start: String,
    pub load_average_end: String,
}

fn command_line(program: &str, args: &[&str], cwd: &Path) -> Option<String> {
    let out = Command::new(program)
        .args(args)
        .current_dir(cwd)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The CPU model as `lscpu` names it (else `/proc/cpuinfo`).
pub fn cpu_model(cwd: &Path) -> String {
    let from = |text: &str, key: &str| {
        text.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim() == key).then(|| v.trim().to_string())
        })
    };
    command_line("lscpu", &[], cwd)
        .and_then(|t| from(&t, "Model name"))
        .or_else(|| {
            std::fs::read_to_string("/proc/cpuinfo")
                .ok()
                .and_then(|t| from(&t, "model name"))
        })
        .unwrap_or_else(|| "unknown".into())
}

/// `HEAD`'s commit, with `-dirty` when tracked files differ from it.
pub fn git_commit(workspace: &Path) -> String {
    let Some(head) = command_line("git", &["rev-parse", "--short=12", "HEAD"], workspace) else {
        return "unknown".into();
    };
    let dirty = command_line(
        "git",
        &["status", "--porcelain", "--untracked-files=no"],
        workspace,
    )
    .is_some_and(|s| !s.is_empty());
    if dirty { format!("{head}-dirty") } else { head }
}

/// `/proc/loadavg`'s three averages.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "unknown".into())
}

pub fn rustc_version(workspace: &Path) -> String {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    command_line(&rustc, &["--version"], workspace).unwrap_or_else(|| "unknown".into())
}

/// The current time as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn now_utc() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// A number with about three significant digits (no exponent for ordinary magnitudes).
pub fn fmt_num(v: f64) -> String {
    let a = v.abs();
    if a >= 1000.0 {
        format!("{v:.0}")
    } else if a >= 100.0 {
        format!("{v:.1}")
    } else if a >= 10.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

/// A ratio with two decimals, or three significant digits when small.
fn fmt_ratio(r: f64) -> String {
    if r >= 0.1 {
        format!("{r:.2}×")
    } else {
        format!("{r:.3}×")
    }
}

fn cell(v: Option<f64>, unit: &str, pct: Option<f64>) -> String {
    match v {
        None => "—".into(),
        Some(v) => {
            let mut s = if unit == "%" {
                format!("{:.1} %", 100.0 * v)
            } else {
                fmt_num(v)
            };
            if let Some(p) = pct {
                let _ = write!(s, " ({p:.1} % of roofline)");
            }
            s
        }
    }
}

/// The summary as a Markdown table.
pub fn markdown_table(rows: &[Row]) -> String {
    let mut s = String::from(
        "| metric | unit | ours (median) | reference (median) | ratio ours/ref | better | target |\n\
         | --- | --- | ---: | ---: | ---: | --- | --- |\n",
    );
    for r in rows {
        let ratio = r.ratio.map_or_else(|| "—".into(), fmt_ratio);
        let better = match r.better {
            Better::Higher => "higher",
            Better::Lower => "lower",
            Better::Neither => "",
        };
        let target = match (r.target, r.target_met) {
            (None, _) => String::new(),
            (Some(t), met) => {
                let op = if r.better == Better::Lower {
                    "≤"
                } else {
                    "≥"
                };
                let status = match met {
                    Some(true) => " (met)",
                    Some(false) => " (not met)",
                    None => "",
                };
                format!("{op} {}×{status}", t.ratio)
            }
        };
        let unit = if r.unit == "%" { "" } else { r.unit.as_str() };
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} |",
            r.metric,
            unit,
            cell(r.ours, &r.unit, r.ours_pct_roofline),
            cell(r.reference, &r.unit, r.reference_pct_roofline),
            ratio,
            better,
            target
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[2.0, 9.0, 1.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
    }

    #[test]
    fn targets_follow_the_direction() {
        let fast =
            Row::new("train", "samples/s", Better::Higher, Some(30.0), Some(10.0)).with_target(1.5);
        assert_eq!(fast.ratio, Some(3.0));
        assert_eq!(fast.target_met, Some(true));
        let mem = Row::new("rss", "MiB", Better::Lower, Some(600.0), Some(1000.0)).with_target(0.5);
        assert_eq!(mem.target_met, Some(false));
        let alone = Row::new("x", "s", Better::Lower, Some(1.0), None).with_target(0.5);
        assert_eq!(alone.ratio, None);
        assert_eq!(alone.target_met, None);
        let table = markdown_table(&[fast, mem, alone]);
        assert!(
            table.contains("| 3.00× | higher | ≥ 1.5× (met) |"),
            "{table}"
        );
        assert!(table.contains("≤ 0.5× (not met)"), "{table}");
        assert_eq!(fmt_ratio(0.0213), "0.021×");
    }

    #[test]
    fn dates_are_iso() {
        let d = now_utc();
        assert_eq!(d.len(), 20, "{d}");
        assert!(d.starts_with("20") && d.ends_with('Z'), "{d}");
    }
}

//! The Markdown report (`report.md`): summary, configuration, parameter
//! counts, per-epoch metrics, charts, confusion matrix and timings.

use std::path::{Path, PathBuf};

use metrics::{EpochRecord, EvalMetrics, RunConfig, RunMetrics};

use crate::error::ReportError;
use crate::format::{fmt_count, fmt_duration, fmt_num, md_cell, md_code};

/// File name of the report inside the output directory.
pub const REPORT_FILE: &str = "report.md";
/// Directory, relative to the report, that holds the charts.
pub const IMAGES_DIR: &str = "images";
/// Bar chart file stem (`.png` and `.svg` are written).
pub const BAR_CHART_STEM: &str = "bar_chart";
/// Line chart file stem (`.png` and `.svg` are written).
pub const LINE_CHART_STEM: &str = "line_chart";

/// `+0.3530` / `-0.0120`: signed so a regression stands out.
fn delta(after: f64, before: f64) -> String {
    format!("{:+.4}", after - before)
}

fn metrics_row(name: &str, m: &EvalMetrics, train_loss: Option<f64>) -> String {
    let train = train_loss.map_or_else(|| "–".to_string(), |l| format!("{l:.4}"));
    format!(
        "| {name} | {:.4} | {:.4} | {:.4} | {:.4} | {:.4} | {train} |",
        m.accuracy, m.f1, m.precision, m.recall, m.loss
    )
}

/// Share of `part` in `total` as `"43.3 %"`.
fn share(part: u64, total: u64) -> String {
    if total == 0 {
        "–".to_string()
    } else {
        format!("{:.1} %", 100.0 * part as f64 / total as f64)
    }
}

fn throughput(samples_per_s: f64) -> String {
    format!("{samples_per_s:.1} samples/s")
}

/// The report as Markdown text, with charts referenced as
/// `images/bar_chart.png` and `images/line_chart.png` (relative to the
/// report, so the output directory can be moved or published as a whole).
///
/// # Errors
/// [`ReportError::NoEpochs`] (naming `report.md`) if `metrics.epochs` is empty.
pub fn render_markdown(metrics: &RunMetrics) -> Result<String, ReportError> {
    let last = metrics.final_epoch().ok_or_else(|| ReportError::NoEpochs {
        path: PathBuf::from(REPORT_FILE),
    })?;
    let sections = [
        summary(metrics, last),
        configuration(&metrics.config),
        parameters(metrics),
        test_metrics(metrics, last),
        charts(last),
        confusion_matrix(last),
        timings(metrics),
    ];
    Ok(sections.concat().join("\n"))
}

// Each section below is its lines, ending with the blank line that separates it from the
// next.

/// Title, what was trained on what, and the headline result.
fn summary(metrics: &RunMetrics, last: &EpochRecord) -> Vec<String> {
    let c = &metrics.config;
    let base = &metrics.baseline;
    let fin = &last.eval;
    vec![
        "# IMDb sentiment: LoRA fine-tuning report".into(),
        String::new(),
        format!(
            "{} fine-tuned with LoRA on {} ({} training / {} test reviews, {} of {} epochs completed).",
            md_code(&c.model),
            md_code(&c.data),
            fmt_count(c.train_n as u64),
            fmt_count(c.test_n as u64),
            metrics.epochs.len(),
            c.epochs
        ),
        String::new(),
        format!(
            "After epoch {}: test accuracy **{:.4}** (baseline {:.4}, {}), F1 **{:.4}** (baseline {:.4}, {}).",
            last.epoch,
            fin.accuracy,
            base.accuracy,
            delta(fin.accuracy, base.accuracy),
            fin.f1,
            base.f1,
            delta(fin.f1, base.f1)
        ),
        String::new(),
    ]
}

/// Every hyper-parameter of the run, one table row each.
fn configuration(c: &RunConfig) -> Vec<String> {
    let mut md: Vec<String> = vec![
        "## Configuration".into(),
        String::new(),
        "| Setting | Value |".into(),
        "|---|---|".into(),
    ];
    let target_modules = c
        .target_modules
        .iter()
        .map(|m| md_code(m))
        .collect::<Vec<_>>()
        .join(", ");
    let rows: [(&str, String); 18] = [
        ("Model", md_code(&c.model)),
        ("Data", md_code(&c.data)),
        ("Training samples", fmt_count(c.train_n as u64)),
        ("Test samples", fmt_count(c.test_n as u64)),
        ("Max sequence length", format!("{} tokens", c.max_len)),
        ("Epochs", c.epochs.to_string()),
        ("Batch size", c.batch_size.to_string()),
        ("Learning rate", fmt_num(c.lr)),
        ("Weight decay", fmt_num(c.weight_decay)),
        ("Warm-up ratio", fmt_num(c.warmup_ratio)),
        ("Learning-rate schedule", md_cell(&c.lr_schedule)),
        (
            "Gradient clipping (max norm)",
            c.max_grad_norm.map_or_else(|| "none".to_string(), fmt_num),
        ),
        ("Seed", c.seed.to_string()),
        ("LoRA rank r", c.lora_r.to_string()),
        ("LoRA alpha", fmt_num(c.lora_alpha)),
        ("LoRA dropout", fmt_num(c.lora_dropout)),
        ("LoRA target modules", target_modules),
        ("Backend", md_cell(&c.backend)),
    ];
    for (name, value) in rows {
        md.push(format!("| {name} | {value} |"));
    }
    md.push(String::new());
    md
}

/// Trainable and total parameter counts.
fn parameters(metrics: &RunMetrics) -> Vec<String> {
    vec![
        "## Parameters".into(),
        String::new(),
        "| Parameters | Count |".into(),
        "|---|---:|".into(),
        format!(
            "| Trainable (LoRA adapters and classifier head) | {} |",
            fmt_count(metrics.trainable_params)
        ),
        format!("| Total | {} |", fmt_count(metrics.total_params)),
        format!(
            "| Trainable share | {:.3} % |",
            100.0 * metrics.trainable_fraction()
        ),
        String::new(),
    ]
}

/// Baseline and per-epoch test metrics, and the final epoch's change from the baseline.
fn test_metrics(metrics: &RunMetrics, last: &EpochRecord) -> Vec<String> {
    let base = &metrics.baseline;
    let fin = &last.eval;
    let mut md: Vec<String> = vec![
        "## Test-set metrics".into(),
        String::new(),
        "Positive class: `pos` (label 1). Loss is the mean cross-entropy per review; \
         precision, recall and F1 are 0 when undefined (scikit-learn's `zero_division=0`)."
            .into(),
        String::new(),
        "| Evaluation | Accuracy | F1 | Precision | Recall | Test loss | Train loss |".into(),
        "|---|---:|---:|---:|---:|---:|---:|".into(),
        metrics_row("Baseline (before fine-tuning)", base, None),
    ];
    for e in &metrics.epochs {
        md.push(metrics_row(
            &format!("Epoch {}", e.epoch),
            &e.eval,
            Some(e.train_loss),
        ));
    }
    md.push(format!(
        "| Change, epoch {} vs baseline | {} | {} | {} | {} | {} | – |",
        last.epoch,
        delta(fin.accuracy, base.accuracy),
        delta(fin.f1, base.f1),
        delta(fin.precision, base.precision),
        delta(fin.recall, base.recall),
        delta(fin.loss, base.loss)
    ));
    md.push(String::new());
    md
}

/// The two charts, embedded as PNG, with links to their SVG versions.
fn charts(last: &EpochRecord) -> Vec<String> {
    vec![
        "## Charts".into(),
        String::new(),
        format!(
            "![Accuracy and F1: baseline vs fine-tuned after epoch {}]({IMAGES_DIR}/{BAR_CHART_STEM}.png)",
            last.epoch
        ),
        String::new(),
        format!(
            "![Accuracy and F1 by epoch, with the baseline accuracy]({IMAGES_DIR}/{LINE_CHART_STEM}.png)"
        ),
        String::new(),
        format!(
            "Vector versions: [{IMAGES_DIR}/{BAR_CHART_STEM}.svg]({IMAGES_DIR}/{BAR_CHART_STEM}.svg), \
             [{IMAGES_DIR}/{LINE_CHART_STEM}.svg]({IMAGES_DIR}/{LINE_CHART_STEM}.svg)."
        ),
        String::new(),
    ]
}

/// The final epoch's confusion matrix, counts and shares of the test set.
fn confusion_matrix(last: &EpochRecord) -> Vec<String> {
    let cm = &last.eval.confusion;
    let n = cm.total();
    vec![
        format!("## Confusion matrix (epoch {}, final)", last.epoch),
        String::new(),
        "| Actual \\ Predicted | negative | positive |".into(),
        "|---|---:|---:|".into(),
        format!(
            "| **negative** | {} TN ({}) | {} FP ({}) |",
            fmt_count(cm.tn),
            share(cm.tn, n),
            fmt_count(cm.fp),
            share(cm.fp, n)
        ),
        format!(
            "| **positive** | {} FN ({}) | {} TP ({}) |",
            fmt_count(cm.fn_),
            share(cm.fn_, n),
            fmt_count(cm.tp),
            share(cm.tp, n)
        ),
        String::new(),
    ]
}

/// Time and throughput of every evaluation and training pass, and of the whole run.
fn timings(metrics: &RunMetrics) -> Vec<String> {
    let c = &metrics.config;
    let base = &metrics.baseline;
    let mut md: Vec<String> = vec![
        "## Timings and throughput".into(),
        String::new(),
        "| Phase | Samples | Time | Throughput |".into(),
        "|---|---:|---:|---:|".into(),
        format!(
            "| Baseline evaluation | {} | {} | {} |",
            fmt_count(base.samples),
            fmt_duration(base.seconds),
            throughput(base.samples_per_s)
        ),
    ];
    for e in &metrics.epochs {
        md.push(format!(
            "| Epoch {} training | {} | {} | {} |",
            e.epoch,
            fmt_count(c.train_n as u64),
            fmt_duration(e.train_seconds),
            throughput(e.train_samples_per_s)
        ));
        md.push(format!(
            "| Epoch {} evaluation | {} | {} | {} |",
            e.epoch,
            fmt_count(e.eval.samples),
            fmt_duration(e.eval.seconds),
            throughput(e.eval.samples_per_s)
        ));
    }
    let train_seconds: f64 = metrics.epochs.iter().map(|e| e.train_seconds).sum();
    let eval_seconds: f64 =
        base.seconds + metrics.epochs.iter().map(|e| e.eval.seconds).sum::<f64>();
    md.push(format!(
        "| All training | {} | {} | {} |",
        fmt_count(c.train_n as u64 * metrics.epochs.len() as u64),
        fmt_duration(train_seconds),
        throughput(metrics.train_samples_per_s)
    ));
    md.push(format!(
        "| All evaluation | {} | {} | {} |",
        fmt_count(base.samples + metrics.epochs.iter().map(|e| e.eval.samples).sum::<u64>()),
        fmt_duration(eval_seconds),
        throughput(metrics.eval_samples_per_s)
    ));
    md.push(format!(
        "| Whole run (wall clock) | – | {} | – |",
        fmt_duration(metrics.total_seconds)
    ));
    md.push(String::new());
    md
}

/// Writes `out_dir/report.md` atomically and returns its path. The charts
/// it embeds are expected at `out_dir/images/{bar_chart,line_chart}.png`
/// (see [`crate::render_all`], which writes both).
///
/// # Errors
/// [`ReportError::NoEpochs`] naming `out_dir/report.md` if `metrics.epochs`
/// is empty; [`ReportError::Write`] naming the file if writing fails.
pub fn write_report(metrics: &RunMetrics, out_dir: &Path) -> Result<PathBuf, ReportError> {
    let path = out_dir.join(REPORT_FILE);
    let text = render_markdown(metrics).map_err(|e| match e {
        ReportError::NoEpochs { .. } => ReportError::NoEpochs { path: path.clone() },
        other => other,
    })?;
    crate::error::write_file(&path, text.as_bytes())?;
    tracing::info!(path = %path.display(), "wrote report");
    Ok(path)
}

//! The Markdown report (`report.md`): summary, configuration, parameter counts, per-epoch
//! metrics, per-class metrics, charts, the N×N confusion matrix with the class names, and
//! timings; one report for every run, whatever its number of classes.

use std::path::{Path, PathBuf};

use imdb_lora_metrics::{
    ClassMetrics, EvalMetrics, MetricsFile, RunClasses, RunConfig, RunMetrics, Saved,
};

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
/// Per-class F1 chart file stem (runs with per-class metrics only).
pub const CLASS_F1_CHART_STEM: &str = "class_f1_chart";
/// Confusion-matrix heat map file stem (runs with per-class metrics only).
pub const HEATMAP_STEM: &str = "confusion_heatmap";

/// Fewer test examples of a class than this draw a note under the per-class table.
const MIN_CLASS_SUPPORT: u64 = 10;

/// `+0.3530` / `-0.0120`: signed so a regression stands out.
fn delta(after: f64, before: f64) -> String {
    format!("{:+.4}", after - before)
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

/// The report of a `metrics.json` as Markdown text, the classes named throughout: headline F1
/// (of class 1 for two classes, macro-F1 over more), weighted F1 beside it, a per-class table
/// (baseline vs final), the charts (`images/bar_chart.png`, `images/line_chart.png`, and the
/// per-class F1 chart and confusion heat map, `images/class_f1_chart.png`,
/// `images/confusion_heatmap.png`, unless `charts_drawn` is false: too many classes to draw
/// them), and the final N×N confusion matrix. Paths are relative to the report, so the output
/// directory can be moved or published as a whole.
///
/// # Errors
/// [`ReportError::NoEpochs`] (naming `report.md`) if the run has no completed epoch.
pub fn render_markdown(file: &MetricsFile, charts_drawn: bool) -> Result<String, ReportError> {
    let classes = &file.classes;
    let metrics = &file.run;
    let no_epochs = || ReportError::NoEpochs {
        path: PathBuf::from(REPORT_FILE),
    };
    let last = file.saved().ok_or_else(no_epochs)?;
    let last_classes = last.classes;
    let run = ClassRun {
        metrics,
        classes,
        last,
        last_classes,
    };
    let sections = [
        run.summary(),
        run.configuration(),
        parameters(metrics),
        run.test_metrics(),
        run.per_class(),
        run.charts(charts_drawn),
        run.confusion_matrix(),
        timings(metrics),
    ];
    Ok(sections.concat().join("\n"))
}

// Each section below is its lines, ending with the blank line that separates it from the
// next.

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
    let mut rows: Vec<(&str, String)> = vec![
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
    if let Some(n) = c.val_n {
        rows.insert(4, ("Validation samples", fmt_count(n as u64)));
    }
    if let Some(w) = &c.class_weights {
        let w: Vec<String> = w.iter().map(|w| format!("{w:.4}")).collect();
        rows.push(("Class weights (loss)", w.join(", ")));
    }
    if let Some(long) = &c.long_text {
        rows.push(("Long texts", md_cell(long)));
    }
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

/// Writes `out_dir/report.md` ([`render_markdown`]) atomically and returns its path. The
/// charts it embeds are expected under `out_dir/images/` (see [`crate::render_file`], which
/// writes them).
///
/// # Errors
/// [`ReportError::NoEpochs`] naming `out_dir/report.md` if the run has no completed epoch;
/// [`ReportError::Write`] naming the file if writing fails.
pub fn write_report(
    file: &MetricsFile,
    out_dir: &Path,
    charts_drawn: bool,
) -> Result<PathBuf, ReportError> {
    write_text(out_dir, || render_markdown(file, charts_drawn))
}

fn write_text(
    out_dir: &Path,
    render: impl FnOnce() -> Result<String, ReportError>,
) -> Result<PathBuf, ReportError> {
    let path = out_dir.join(REPORT_FILE);
    let text = render().map_err(|e| match e {
        ReportError::NoEpochs { .. } => ReportError::NoEpochs { path: path.clone() },
        other => other,
    })?;
    crate::error::write_file(&path, text.as_bytes())?;
    tracing::info!(path = %path.display(), "wrote report");
    Ok(path)
}

/// A run with its per-class metrics, and its final epoch in both views.
struct ClassRun<'a> {
    metrics: &'a RunMetrics,
    classes: &'a RunClasses,
    last: Saved<'a>,
    last_classes: &'a ClassMetrics,
}

impl ClassRun<'_> {
    fn n(&self) -> usize {
        self.classes.num_classes()
    }

    /// The class names as inline code, comma-separated.
    fn name_list(&self) -> String {
        self.classes
            .names()
            .map(md_code)
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// What the headline F1 is: the macro average, or for two classes the positive one's.
    fn f1_name(&self) -> String {
        match self.classes.names().nth(1) {
            Some(positive) if self.n() == 2 => format!("F1 of {}", md_code(positive)),
            _ => "macro-F1".to_string(),
        }
    }

    fn summary(&self) -> Vec<String> {
        let c = &self.metrics.config;
        let base = &self.metrics.baseline;
        let fin = &self.last.eval;
        let (base_w, fin_w) = (
            self.classes.baseline.weighted_f1,
            self.last_classes.weighted_f1,
        );
        vec![
            "# Text classification: LoRA fine-tuning report".into(),
            String::new(),
            format!(
                "{} fine-tuned with LoRA on {} ({} classes: {}; {} training / {} test examples, {} of {} epochs completed).",
                md_code(&c.model),
                md_code(&c.data),
                self.n(),
                self.name_list(),
                fmt_count(c.train_n as u64),
                fmt_count(c.test_n as u64),
                self.metrics.epochs.len(),
                c.epochs
            ),
            String::new(),
            format!(
                "After epoch {}: test accuracy **{:.4}** (baseline {:.4}, {}), {} **{:.4}** (baseline {:.4}, {}), weighted F1 {:.4} (baseline {:.4}, {}).",
                self.last.epoch,
                fin.accuracy,
                base.accuracy,
                delta(fin.accuracy, base.accuracy),
                self.f1_name(),
                fin.f1,
                base.f1,
                delta(fin.f1, base.f1),
                fin_w,
                base_w,
                delta(fin_w, base_w)
            ),
            String::new(),
        ]
        .into_iter()
        .chain(self.selection())
        .collect()
    }

    /// How a validation split chose the saved model (nothing without one).
    fn selection(&self) -> Vec<String> {
        let Some(sel) = &self.metrics.selection else {
            return Vec::new();
        };
        let done = self.metrics.epochs.len();
        let stop = match (sel.stopped_early, sel.patience) {
            (true, Some(p)) => format!(
                "; early stopping ended the run after epoch {done} ({p} evaluations without improvement)"
            ),
            _ => String::new(),
        };
        let saved = match sel.load_best {
            true => format!("the saved model is epoch {}'s (best)", sel.best_epoch),
            false => format!("the saved model is the last epoch's ({done})"),
        };
        vec![
            format!(
                "Chosen on validation {}: best epoch {} ({} {:.4}){stop}; {saved}.",
                sel.metric, sel.best_epoch, sel.metric, sel.best_value
            ),
            String::new(),
        ]
    }

    /// The run's settings plus the classes.
    fn configuration(&self) -> Vec<String> {
        let mut md = configuration(&self.metrics.config);
        // Before the blank line that ends the section.
        let at = md.len() - 1;
        md.insert(
            at,
            format!("| Classes | {}: {} |", self.n(), self.name_list()),
        );
        md
    }

    fn test_metrics(&self) -> Vec<String> {
        let base = &self.metrics.baseline;
        let fin = &self.last.eval;
        let (note, f1_header) = if self.n() == 2 {
            (
                format!(
                    "Positive class: {} (label 1); weighted F1 weighs each class's F1 by its support.",
                    md_code(self.classes.names().nth(1).unwrap_or_default())
                ),
                "F1",
            )
        } else {
            (
                format!(
                    "Over {} classes, F1, precision and recall are macro averages (the unweighted means of the per-class values below); weighted F1 weighs each class's F1 by its support.",
                    self.n()
                ),
                "Macro-F1",
            )
        };
        let row = |name: &str, m: &EvalMetrics, weighted: f64, train_loss: Option<f64>| {
            let train = train_loss.map_or_else(|| "–".to_string(), |l| format!("{l:.4}"));
            format!(
                "| {name} | {:.4} | {:.4} | {weighted:.4} | {:.4} | {:.4} | {:.4} | {train} |",
                m.accuracy, m.f1, m.precision, m.recall, m.loss
            )
        };
        let mut md: Vec<String> = vec![
            "## Test-set metrics".into(),
            String::new(),
            format!(
                "{note} Loss is the mean cross-entropy per example; precision, recall and F1 are 0 when undefined (scikit-learn's `zero_division=0`).{}",
                match self.last.on_validation {
                    true =>
                        " The epochs were evaluated on the validation split, which chose the model; the test set only before fine-tuning and for the saved model.",
                    false => "",
                }
            ),
            String::new(),
            format!(
                "| Evaluation | Accuracy | {f1_header} | Weighted F1 | Precision | Recall | {} | Train loss |",
                match self.last.on_validation {
                    true => "Loss",
                    false => "Test loss",
                }
            ),
            "|---|---:|---:|---:|---:|---:|---:|---:|".into(),
            row(
                "Baseline (before fine-tuning)",
                base,
                self.classes.baseline.weighted_f1,
                None,
            ),
        ];
        let on = match self.last.on_validation {
            true => " (validation)",
            false => "",
        };
        for (e, c) in self.metrics.epochs.iter().zip(&self.classes.epochs) {
            md.push(row(
                &format!("Epoch {}{on}", e.epoch),
                &e.eval,
                c.weighted_f1,
                Some(e.train_loss),
            ));
            // Asked for with a validation split: the test set too, as a record (no per-class
            // metrics, so no weighted F1).
            if let Some(t) = &e.test {
                md.push(format!(
                    "| Epoch {} (test set, a record) | {:.4} | {:.4} | – | {:.4} | {:.4} | {:.4} | – |",
                    e.epoch, t.accuracy, t.f1, t.precision, t.recall, t.loss
                ));
            }
        }
        if self.last.on_validation {
            md.push(row(
                &format!("Saved model (epoch {}) on the test set", self.last.epoch),
                fin,
                self.last_classes.weighted_f1,
                None,
            ));
        }
        md.push(format!(
            "| Change, epoch {} vs baseline | {} | {} | {} | {} | {} | {} | – |",
            self.last.epoch,
            delta(fin.accuracy, base.accuracy),
            delta(fin.f1, base.f1),
            delta(
                self.last_classes.weighted_f1,
                self.classes.baseline.weighted_f1
            ),
            delta(fin.precision, base.precision),
            delta(fin.recall, base.recall),
            delta(fin.loss, base.loss)
        ));
        md.push(String::new());
        md
    }

    /// Precision, recall and F1 of each class, baseline next to final, with the averages.
    fn per_class(&self) -> Vec<String> {
        let base = &self.classes.baseline;
        let fin = self.last_classes;
        let mut md: Vec<String> = vec![
            format!(
                "## Per-class metrics (baseline vs epoch {}, final)",
                self.last.epoch
            ),
            String::new(),
            "| Class | Support | Precision, baseline | Precision, final | Recall, baseline | Recall, final | F1, baseline | F1, final | F1 change |".into(),
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|".into(),
        ];
        for (b, f) in base.per_class.iter().zip(&fin.per_class) {
            md.push(format!(
                "| {} | {} | {:.4} | {:.4} | {:.4} | {:.4} | {:.4} | {:.4} | {} |",
                md_cell(&f.name),
                fmt_count(f.support),
                b.precision,
                f.precision,
                b.recall,
                f.recall,
                b.f1,
                f.f1,
                delta(f.f1, b.f1)
            ));
        }
        let support = fmt_count(self.last.eval.samples);
        for (name, b, f) in [
            (
                "Macro average",
                [base.macro_precision, base.macro_recall, base.macro_f1],
                [fin.macro_precision, fin.macro_recall, fin.macro_f1],
            ),
            (
                "Weighted average",
                [
                    base.weighted_precision,
                    base.weighted_recall,
                    base.weighted_f1,
                ],
                [fin.weighted_precision, fin.weighted_recall, fin.weighted_f1],
            ),
        ] {
            md.push(format!(
                "| **{name}** | {support} | {:.4} | {:.4} | {:.4} | {:.4} | {:.4} | {:.4} | {} |",
                b[0],
                f[0],
                b[1],
                f[1],
                b[2],
                f[2],
                delta(f[2], b[2])
            ));
        }
        md.push(String::new());
        // A class with few test examples: its metrics move in big steps with each one.
        let thin: Vec<String> = fin
            .per_class
            .iter()
            .filter(|c| c.support < MIN_CLASS_SUPPORT)
            .map(|c| format!("{} ({})", md_code(&c.name), c.support))
            .collect();
        if !thin.is_empty() {
            md.push(format!(
                "**Few examples:** {} {} fewer than {MIN_CLASS_SUPPORT} test examples; each \
                 one moves {} per-class metrics by a large step, so read them as rough.",
                thin.join(", "),
                if thin.len() == 1 { "has" } else { "have" },
                if thin.len() == 1 { "its" } else { "their" },
            ));
            md.push(String::new());
        }
        md
    }

    /// The headline charts (F1 named as such), then the per-class ones.
    fn charts(&self, drawn: bool) -> Vec<String> {
        let f1 = if self.n() == 2 { "F1" } else { "macro-F1" };
        let epoch = self.last.epoch;
        let mut md: Vec<String> = vec![
            "## Charts".into(),
            String::new(),
            format!(
                "![Accuracy and {f1}: baseline vs fine-tuned after epoch {epoch}]({IMAGES_DIR}/{BAR_CHART_STEM}.png)"
            ),
            String::new(),
            format!(
                "![Accuracy and {f1} by epoch, with the baseline accuracy]({IMAGES_DIR}/{LINE_CHART_STEM}.png)"
            ),
            String::new(),
        ];
        let stems: &[&str] = if drawn {
            md.extend([
                format!(
                    "![F1 of each class: baseline vs fine-tuned after epoch {epoch}]({IMAGES_DIR}/{CLASS_F1_CHART_STEM}.png)"
                ),
                String::new(),
                format!(
                    "![Confusion matrix after epoch {epoch}, coloured by the share of each true class]({IMAGES_DIR}/{HEATMAP_STEM}.png)"
                ),
                String::new(),
            ]);
            &[
                BAR_CHART_STEM,
                LINE_CHART_STEM,
                CLASS_F1_CHART_STEM,
                HEATMAP_STEM,
            ]
        } else {
            md.extend([
                format!(
                    "(No per-class chart or heat map: {} classes are more than the {} they are drawn for; the tables have every class.)",
                    self.n(),
                    crate::MAX_CHART_CLASSES
                ),
                String::new(),
            ]);
            &[BAR_CHART_STEM, LINE_CHART_STEM]
        };
        let links = stems
            .iter()
            .map(|stem| format!("[{IMAGES_DIR}/{stem}.svg]({IMAGES_DIR}/{stem}.svg)"))
            .collect::<Vec<_>>()
            .join(", ");
        md.extend([format!("Vector versions: {links}."), String::new()]);
        md
    }

    /// The final N×N matrix with the class names: counts and shares of each true class.
    fn confusion_matrix(&self) -> Vec<String> {
        let names: Vec<&str> = self.classes.names().collect();
        let header = names
            .iter()
            .map(|n| md_cell(n))
            .collect::<Vec<_>>()
            .join(" | ");
        let mut md: Vec<String> = vec![
            format!("## Confusion matrix (epoch {}, final)", self.last.epoch),
            String::new(),
            "Rows are the true classes, columns the predictions; each count's share is of its row (the diagonal's is the class's recall).".into(),
            String::new(),
            format!("| True \\ Predicted | {header} | Support |"),
            format!("|---|{}---:|", "---:|".repeat(names.len())),
        ];
        for (i, row) in self.last_classes.confusion.iter().enumerate() {
            // Saturating: the file may not have been validated.
            let support = row.iter().fold(0u64, |sum, &c| sum.saturating_add(c));
            let cells = row
                .iter()
                .enumerate()
                .map(|(j, &count)| {
                    let cell = format!("{} ({})", fmt_count(count), share(count, support));
                    if i == j { format!("**{cell}**") } else { cell }
                })
                .collect::<Vec<_>>()
                .join(" | ");
            md.push(format!(
                "| **{}** | {cells} | {} |",
                md_cell(names.get(i).copied().unwrap_or_default()),
                fmt_count(support)
            ));
        }
        md.push(String::new());
        md
    }
}

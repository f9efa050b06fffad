//! The few lines a terminal shows when a run ends ([`render_summary`]): what was trained on
//! what, baseline → final accuracy and F1, and how long it took. The binary adds where the
//! files are; `report.md` has everything else.

use imdb_lora_metrics::MetricsFile;

use crate::format::{fmt_count, fmt_duration};

/// The end-of-run summary of `file`, one line per item, without a trailing newline; `None`
/// when no epoch has completed (nothing to compare with the baseline).
pub fn render_summary(file: &MetricsFile) -> Option<String> {
    let m = &file.run;
    let last = file.saved()?;
    let c = &m.config;
    let names: Vec<&str> = file.classes.names().collect();
    // Named when they fit on the line; report.md lists them all.
    let classes = match names.len() {
        n if n <= 8 => format!("{n} classes: {}", names.join(", ")),
        n => format!("{n} classes"),
    };
    let f1 = if names.len() > 2 { "macro-F1" } else { "F1" };
    let (base, fin) = (&m.baseline, last.eval);
    let row = |name: &str, before: f64, after: f64| {
        format!(
            "  {name:<9} {before:.4} → {after:.4}  ({:+.4})",
            after - before
        )
    };
    Some(
        [
            format!(
                "Fine-tuned {} on {} ({classes}): {} of {} epochs, {} training / {} test \
                 examples, {} of training and evaluation.",
                c.model,
                c.data,
                m.epochs.len(),
                c.epochs,
                fmt_count(c.train_n as u64),
                fmt_count(c.test_n as u64),
                fmt_duration(m.total_seconds)
            ),
            row("accuracy", base.accuracy, fin.accuracy),
            row(f1, base.f1, fin.f1),
        ]
        .into_iter()
        .chain(m.selection.as_ref().map(|sel| {
            let stop = match sel.stopped_early {
                true => ", early stopping ended the run",
                false => "",
            };
            format!(
                "  (test set: the saved model, epoch {} of {}, chosen on validation {}{stop})",
                last.epoch,
                m.epochs.len(),
                sel.metric
            )
        }))
        .collect::<Vec<_>>()
        .join("\n"),
    )
}

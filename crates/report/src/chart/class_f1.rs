//! Per-class F1 chart: each class's F1 before fine-tuning next to after it, so the classes
//! the model still confuses stand out.

use std::path::Path;

use imdb_lora_metrics::MetricsFile;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::draw::{
    BAR_VALUE_SIZE, BASELINE_BAR, BLUE, CATEGORY_SIZE, Chart, DrawResult, POINT_VALUE_SIZE,
    PlotSpec, Scale, TEXT, TickedAxis, WIDTH, Wording, before_after_legend, draw_header,
    fit_labels, plot_area, render, subtitle,
};
use crate::error::ReportError;

/// Title of the per-class F1 chart.
pub const CLASS_F1_TITLE: &str = "F1 of each class: baseline vs LoRA fine-tuned";

/// Bar width and the gap between the two bars of a class, in x units (classes are 1.0
/// apart), as in the headline bar chart.
const BAR_W: f64 = 0.34;
const GAP: f64 = 0.03;

/// At most this many classes get a label on the x axis; beyond it every k-th one does.
const MAX_X_LABELS: usize = 30;

/// Width of the plotting area at 1x: the canvas less `plot_area`'s margins (16 + 40) and
/// y-label area (90).
const PLOT_WIDTH: i32 = WIDTH as i32 - 16 - 40 - 90;

struct ClassF1Chart {
    subtitle: String,
    fine_tuned_label: String,
    names: Vec<String>,
    /// (baseline F1, fine-tuned F1) per class.
    values: Vec<(f64, f64)>,
}

impl Chart for ClassF1Chart {
    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        s: Scale,
    ) -> DrawResult<(), DB> {
        root.fill(&WHITE)?;
        let legend = before_after_legend(&self.fine_tuned_label);
        let body = draw_header(root, s, CLASS_F1_TITLE, &self.subtitle, &legend)?;

        let n = self.names.len().max(1);
        let step = n.div_ceil(MAX_X_LABELS).max(1);
        // Pixels per class along x: the axis spans n + 0.2 classes.
        let unit = f64::from(s.px(PLOT_WIDTH)) / (n as f64 + 0.2);
        let label_room = (unit * step as f64) as i32 - s.px(6);
        let fitted = fit_labels(&body, s, &self.names, CATEGORY_SIZE, label_room)?;
        let labels = &fitted.labels;
        let ticks: Vec<f64> = (0..n).step_by(step).map(|i| i as f64).collect();
        let x_fmt = |x: &f64| {
            let i = x.round().max(0.0) as usize;
            labels.get(i).cloned().unwrap_or_default()
        };
        let y_fmt = |y: &f64| format!("{y:.1}");
        let mut chart = plot_area(
            &body,
            s,
            PlotSpec {
                x: TickedAxis::new(-0.6, n as f64 - 0.4, ticks),
                y: TickedAxis::new(0.0, 1.1, (0..=10).map(|i| f64::from(i) / 10.0).collect()),
                x_fmt: &x_fmt,
                y_fmt: &y_fmt,
                x_desc: if fitted.indexed {
                    "Class (index, in the order of report.md's per-class table)"
                } else {
                    "Class"
                },
                x_label_size: fitted.size,
                x_grid: false,
            },
        )?;

        // Values above the bars only where they fit a bar's width.
        let bar_px = (unit * BAR_W) as i32;
        let mut value_size = None;
        for size in [BAR_VALUE_SIZE, POINT_VALUE_SIZE] {
            let (w, _) = body.estimate_text_size("0.000", &s.text(size, TEXT))?;
            if w as i32 <= bar_px {
                value_size = Some(size);
                break;
            }
        }
        for (i, &(baseline, tuned)) in self.values.iter().enumerate() {
            let centre = i as f64;
            for (value, color, x0) in [
                (baseline, BASELINE_BAR, centre - GAP / 2.0 - BAR_W),
                (tuned, BLUE, centre + GAP / 2.0),
            ] {
                chart.draw_series(std::iter::once(Rectangle::new(
                    [(x0, 0.0), (x0 + BAR_W, value)],
                    color.filled(),
                )))?;
                if let Some(size) = value_size {
                    let style = s.text(size, TEXT).pos(Pos::new(HPos::Center, VPos::Bottom));
                    chart.draw_series(std::iter::once(
                        EmptyElement::at((x0 + BAR_W / 2.0, value))
                            + Text::new(format!("{value:.3}"), (0, -s.px(6)), style),
                    ))?;
                }
            }
        }
        Ok(())
    }
}

/// Bar chart of each class's F1, baseline vs the final epoch, as PNG and SVG
/// ([`crate::WIDTH`]×[`crate::HEIGHT`]), the classes named on the x axis (names shrunk or
/// cut to fit; with more than 30 classes every k-th is named). Values are printed above
/// the bars when they fit.
///
/// # Errors
/// [`ReportError::NoEpochs`] if there is no completed epoch; drawing, encoding or write
/// errors naming the file.
pub fn class_f1_chart(
    file: &MetricsFile,
    path_png: &Path,
    path_svg: &Path,
) -> Result<(), ReportError> {
    let (metrics, classes) = (&file.run, &file.classes);
    let no_epochs = || ReportError::NoEpochs {
        path: path_png.to_path_buf(),
    };
    let last = file.saved().ok_or_else(no_epochs)?;
    let last_classes = last.classes;
    let chart = ClassF1Chart {
        subtitle: subtitle(metrics, Wording::of(file)),
        fine_tuned_label: format!(
            "LoRA fine-tuned (after epoch {} of {})",
            last.epoch, metrics.config.epochs
        ),
        names: classes.names().map(str::to_string).collect(),
        values: classes
            .baseline
            .per_class
            .iter()
            .zip(&last_classes.per_class)
            .map(|(b, f)| (b.f1, f.f1))
            .collect(),
    };
    render(&chart, path_png, path_svg)
}

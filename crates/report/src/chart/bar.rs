//! Bar chart: accuracy and F1 of the baseline next to the fine-tuned model.

use std::path::Path;

use imdb_lora_metrics::MetricsFile;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::draw::{
    BAR_VALUE_SIZE, BASELINE_BAR, BLUE, CATEGORY_SIZE, Chart, DrawResult, PlotSpec, Scale, TEXT,
    TickedAxis, Wording, before_after_legend, draw_header, plot_area, render, subtitle,
};
use crate::error::ReportError;

/// Title of the bar chart.
pub const BAR_TITLE: &str = "Text classification: baseline vs LoRA fine-tuned";

/// Bar width and the gap between the two bars of a group, in x units
/// (groups are 1.0 apart).
const BAR_W: f64 = 0.34;
const GAP: f64 = 0.03;

struct BarChart {
    title: &'static str,
    subtitle: String,
    fine_tuned_label: String,
    /// (group name, baseline value, fine-tuned value).
    groups: [(&'static str, f64, f64); 2],
}

impl Chart for BarChart {
    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        s: Scale,
    ) -> DrawResult<(), DB> {
        root.fill(&WHITE)?;
        let legend = before_after_legend(&self.fine_tuned_label);
        let body = draw_header(root, s, self.title, &self.subtitle, &legend)?;

        // Groups sit at x = 0 and 1 with exactly one tick each, labelled
        // with the group name. The y axis runs to 1.1 to leave room for the
        // value printed above a bar at 1.0, but is only labelled up to 1.0
        // since scores cannot exceed it.
        let names = self.groups.map(|g| g.0);
        let x_fmt = move |x: &f64| names[x.round().clamp(0.0, 1.0) as usize].to_string();
        let y_fmt = |y: &f64| format!("{y:.1}");
        let mut chart = plot_area(
            &body,
            s,
            PlotSpec {
                x: TickedAxis::new(-0.6, 1.6, vec![0.0, 1.0]),
                y: TickedAxis::new(0.0, 1.1, (0..=10).map(|i| f64::from(i) / 10.0).collect()),
                x_fmt: &x_fmt,
                y_fmt: &y_fmt,
                x_desc: "Metric",
                x_label_size: CATEGORY_SIZE,
                x_grid: false,
            },
        )?;

        let value_style = s
            .text(BAR_VALUE_SIZE, TEXT)
            .pos(Pos::new(HPos::Center, VPos::Bottom));
        for (i, &(_, baseline, tuned)) in self.groups.iter().enumerate() {
            let centre = i as f64;
            for (value, color, x0) in [
                (baseline, BASELINE_BAR, centre - GAP / 2.0 - BAR_W),
                (tuned, BLUE, centre + GAP / 2.0),
            ] {
                chart.draw_series(std::iter::once(Rectangle::new(
                    [(x0, 0.0), (x0 + BAR_W, value)],
                    color.filled(),
                )))?;
                chart.draw_series(std::iter::once(
                    EmptyElement::at((x0 + BAR_W / 2.0, value))
                        + Text::new(format!("{value:.3}"), (0, -s.px(6)), value_style.clone()),
                ))?;
            }
        }
        Ok(())
    }
}

/// Bar chart of accuracy and F1, baseline vs fine-tuned, as PNG and SVG
/// ([`crate::WIDTH`]×[`crate::HEIGHT`]).
///
/// "Fine-tuned" is the **final** epoch, not the best one: the final
/// weights are what training saves, and picking the best epoch by test
/// accuracy would report a test-set-selected (optimistic) number.
///
/// # Errors
/// [`ReportError::NoEpochs`] if `metrics.epochs` is empty; drawing,
/// encoding or write errors naming the file.
pub fn bar_chart(file: &MetricsFile, path_png: &Path, path_svg: &Path) -> Result<(), ReportError> {
    let (metrics, w) = (&file.run, Wording::of(file));
    let last = file.saved().ok_or_else(|| ReportError::NoEpochs {
        path: path_png.to_path_buf(),
    })?;
    let chart = BarChart {
        title: BAR_TITLE,
        subtitle: subtitle(metrics, w),
        fine_tuned_label: format!(
            "LoRA fine-tuned (after epoch {} of {})",
            last.epoch, metrics.config.epochs
        ),
        groups: [
            ("Accuracy", metrics.baseline.accuracy, last.eval.accuracy),
            (w.f1(), metrics.baseline.f1, last.eval.f1),
        ],
    };
    render(&chart, path_png, path_svg)
}

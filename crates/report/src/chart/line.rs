//! Line chart: test accuracy and F1 after each epoch, against the baseline.

use std::path::Path;

use imdb_lora_metrics::MetricsFile;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::draw::{
    BASELINE_LINE, BLUE, BLUE_TEXT, CIRCLE_RADIUS, Chart, DrawResult, LegendItem, Marker, ORANGE,
    ORANGE_TEXT, POINT_VALUE_SIZE, PlotSpec, SQUARE_HALF, Scale, Swatch, TICK_SIZE, TickedAxis,
    Wording, draw_header, plot_area, render, subtitle,
};
use crate::error::ReportError;

/// Title of the line chart (of a run over more than two classes, `F1` is `Macro-F1`).
pub const LINE_TITLE: &str = "Text classification: test accuracy and F1 by epoch";

/// Beyond this many epochs the per-point value labels would collide
/// horizontally (a label is ~45 px, the plot ~850 px wide), so only the
/// lines and markers are drawn.
const MAX_LABELLED_EPOCHS: usize = 15;

/// At most this many x ticks; more epochs get every k-th epoch labelled.
const MAX_X_TICKS: usize = 12;

struct LineChart {
    title: String,
    f1: &'static str,
    subtitle: String,
    /// (epoch, accuracy, F1) in epoch order.
    points: Vec<(usize, f64, f64)>,
    baseline_accuracy: f64,
}

impl LineChart {
    /// Y range covering every value plus room for the labels above and below
    /// points, snapped outwards to 0.05 and kept within [0, 1.05].
    fn y_range(&self) -> (f64, f64) {
        let values = self
            .points
            .iter()
            .flat_map(|&(_, a, f)| [a, f])
            .chain(std::iter::once(self.baseline_accuracy));
        let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
        // Labels need ~30 px of a ~380 px plot on each side: ~12% of the span
        // as padding, and never less than 0.04 so a flat series still has room.
        let pad = ((hi - lo) * 0.12).max(0.04);
        let lo = (((lo - pad) / 0.05).floor() * 0.05).max(0.0);
        let hi = (((hi + pad) / 0.05).ceil() * 0.05).min(1.05);
        (lo, hi)
    }
}

impl Chart for LineChart {
    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        s: Scale,
    ) -> DrawResult<(), DB> {
        root.fill(&WHITE)?;
        let legend = [
            LegendItem {
                label: "Accuracy".into(),
                swatch: Swatch::Line(BLUE, Marker::Circle),
            },
            LegendItem {
                label: self.f1.into(),
                swatch: Swatch::Line(ORANGE, Marker::Square),
            },
            LegendItem {
                label: format!(
                    "Baseline accuracy before fine-tuning ({:.3})",
                    self.baseline_accuracy
                ),
                swatch: Swatch::Dashed(BASELINE_LINE),
            },
        ];
        let body = draw_header(root, s, &self.title, &self.subtitle, &legend)?;

        let n = self.points.len();
        // Half an epoch of margin on each side centres a single epoch and
        // keeps end markers and labels off the axes.
        let (x_lo, x_hi) = (0.5, n as f64 + 0.5);
        let step = n.div_ceil(MAX_X_TICKS).max(1);
        let x_ticks: Vec<f64> = (1..=n).step_by(step).map(|e| e as f64).collect();
        let (y_lo, y_hi) = self.y_range();
        // Steps of 0.05 need two decimals, steps of 0.1 only one.
        let (tick, decimals) = if y_hi - y_lo > 0.5 {
            (0.1, 1)
        } else {
            (0.05, 2)
        };
        // The epsilons keep y_lo and 1.0 themselves from being lost to
        // rounding in the division.
        let first = (y_lo / tick - 1e-9).ceil() as i64;
        let last = (y_hi.min(1.0) / tick + 1e-9).floor() as i64;
        let y_ticks: Vec<f64> = (first..=last).map(|k| k as f64 * tick).collect();
        let x_fmt = |x: &f64| format!("{x:.0}");
        let y_fmt = move |y: &f64| format!("{y:.decimals$}");
        let mut chart = plot_area(
            &body,
            s,
            PlotSpec {
                x: TickedAxis::new(x_lo, x_hi, x_ticks),
                y: TickedAxis::new(y_lo, y_hi, y_ticks),
                x_fmt: &x_fmt,
                y_fmt: &y_fmt,
                x_desc: "Epoch",
                x_label_size: TICK_SIZE,
                x_grid: true,
            },
        )?;

        chart.draw_series(DashedLineSeries::new(
            [
                (x_lo, self.baseline_accuracy),
                (x_hi, self.baseline_accuracy),
            ],
            s.px(10),
            s.px(7),
            s.stroke(BASELINE_LINE, 2),
        ))?;

        let acc: Vec<(f64, f64)> = self.points.iter().map(|&(e, a, _)| (e as f64, a)).collect();
        let f1: Vec<(f64, f64)> = self.points.iter().map(|&(e, _, f)| (e as f64, f)).collect();
        // F1 first, accuracy (the headline metric) on top; the two often
        // nearly coincide, and the larger F1 square then shows as an orange
        // rim around the blue circle.
        let h = s.px(SQUARE_HALF);
        chart.draw_series(LineSeries::new(f1.clone(), s.stroke(ORANGE, 3)))?;
        chart.draw_series(
            f1.iter().map(|&p| {
                EmptyElement::at(p) + Rectangle::new([(-h, -h), (h, h)], ORANGE.filled())
            }),
        )?;
        chart.draw_series(LineSeries::new(acc.clone(), s.stroke(BLUE, 3)))?;
        chart.draw_series(acc.iter().map(|&p| {
            EmptyElement::at(p) + Circle::new((0, 0), s.px(CIRCLE_RADIUS), BLUE.filled())
        }))?;

        if n <= MAX_LABELLED_EPOCHS {
            // The higher of the two values at an epoch is labelled above its
            // marker and the lower one below, so close values never overlap.
            let above = (Pos::new(HPos::Center, VPos::Bottom), -s.px(10));
            let below = (Pos::new(HPos::Center, VPos::Top), s.px(10));
            for &(e, a, f) in &self.points {
                let (a_at, f_at) = if a >= f {
                    (above, below)
                } else {
                    (below, above)
                };
                for (value, color, (pos, dy)) in [(a, BLUE_TEXT, a_at), (f, ORANGE_TEXT, f_at)] {
                    let style = s.text(POINT_VALUE_SIZE, color).pos(pos);
                    chart.draw_series(std::iter::once(
                        EmptyElement::at((e as f64, value))
                            + Text::new(format!("{value:.3}"), (0, dy), style),
                    ))?;
                }
            }
        }
        Ok(())
    }
}

/// Line chart of test accuracy and F1 after each epoch (x = epoch 1..n,
/// integer ticks), with the baseline accuracy as a dashed horizontal
/// reference line, as PNG and SVG ([`crate::WIDTH`]×[`crate::HEIGHT`]).
/// With one epoch it shows single markers centred on the x axis; values are
/// printed next to the markers for up to 15 epochs.
///
/// # Errors
/// [`ReportError::NoEpochs`] if `metrics.epochs` is empty; drawing,
/// encoding or write errors naming the file.
pub fn line_chart(file: &MetricsFile, path_png: &Path, path_svg: &Path) -> Result<(), ReportError> {
    let (metrics, w) = (&file.run, Wording::of(file));
    if metrics.epochs.is_empty() {
        return Err(ReportError::NoEpochs {
            path: path_png.to_path_buf(),
        });
    }
    let chart = LineChart {
        // A validation split's run plots its validation scores (the baseline is the test set's).
        title: match metrics.config.val_n {
            Some(_) => LINE_TITLE
                .replace("F1", w.f1())
                .replace("test", "validation"),
            None => LINE_TITLE.replace("F1", w.f1()),
        },
        f1: w.f1(),
        subtitle: subtitle(metrics, w),
        points: metrics
            .epochs
            .iter()
            .map(|e| (e.epoch, e.eval.accuracy, e.eval.f1))
            .collect(),
        baseline_accuracy: metrics.baseline.accuracy,
    };
    render(&chart, path_png, path_svg)
}

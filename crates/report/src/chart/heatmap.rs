//! Confusion-matrix heat map of the final epoch: true classes down, predicted classes
//! across, each cell coloured by its share of the true class (so classes of different
//! sizes compare) and labelled with its count while the cells are large enough.

use std::path::Path;

use imdb_lora_metrics::MetricsFile;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::draw::{
    AXIS_DESC_SIZE, Chart, DrawResult, HEADER_HEIGHT, HEIGHT, LEGEND_SIZE, MUTED, POINT_VALUE_SIZE,
    Scale, TEXT, TICK_SIZE, WIDTH, Wording, draw_header, fit_labels, render, subtitle,
};
use crate::error::ReportError;
use crate::format::fmt_count;

/// Title of the confusion-matrix heat map.
pub const HEATMAP_TITLE: &str = "Confusion matrix after LoRA fine-tuning";

/// matplotlib's "Blues" colour map at nine evenly spaced points, white to dark blue: the
/// familiar look of scikit-learn's `ConfusionMatrixDisplay`.
const BLUES: [(u8, u8, u8); 9] = [
    (247, 251, 255),
    (222, 235, 247),
    (198, 219, 239),
    (158, 202, 225),
    (107, 174, 214),
    (66, 146, 198),
    (33, 113, 181),
    (8, 81, 156),
    (8, 48, 107),
];

/// Cells at least this dark get white text.
const DARK_FROM: f64 = 0.55;

/// Counts are printed in the cells for at most this many classes (and only if they fit).
const MAX_LABELLED_CLASSES: usize = 12;

// Layout at 1x, in pixels: the space above and below the matrix inside the body, and the
// widths of the pieces laid out left to right.
const TOP: i32 = 10;
const BOTTOM: i32 = 70;
const Y_TITLE_W: i32 = 30;
const MAX_Y_LABEL_W: i32 = 200;
const LABEL_GAP: i32 = 8;
const BAR_GAP: i32 = 26;
const BAR_W: i32 = 20;
const BAR_TICK: i32 = 5;

/// The colour of a share in [0, 1] (clamped), interpolated linearly between [`BLUES`].
fn blues(share: f64) -> RGBColor {
    let t = if share.is_finite() {
        share.clamp(0.0, 1.0)
    } else {
        0.0
    } * (BLUES.len() - 1) as f64;
    let i = (t.floor() as usize).min(BLUES.len() - 2);
    let f = t - i as f64;
    let (a, b) = (BLUES[i], BLUES[i + 1]);
    // Each channel stays between two u8 values, so the rounded result fits a u8.
    let mix = |x: u8, y: u8| (f64::from(x) + (f64::from(y) - f64::from(x)) * f).round() as u8;
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

struct Heatmap {
    subtitle: String,
    caption: String,
    names: Vec<String>,
    /// `rows[actual][predicted]`, N×N.
    rows: Vec<Vec<u64>>,
}

impl Heatmap {
    fn count(&self, actual: usize, predicted: usize) -> u64 {
        self.rows
            .get(actual)
            .and_then(|r| r.get(predicted))
            .copied()
            .unwrap_or(0)
    }

    /// Share of row `actual` in cell (`actual`, `predicted`); 0.0 for an empty row.
    fn share(&self, actual: usize, predicted: usize) -> f64 {
        let support = self
            .rows
            .get(actual)
            .map_or(0u128, |r| r.iter().map(|&c| u128::from(c)).sum());
        if support == 0 {
            0.0
        } else {
            self.count(actual, predicted) as f64 / support as f64
        }
    }
}

impl Chart for Heatmap {
    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        s: Scale,
    ) -> DrawResult<(), DB> {
        root.fill(&WHITE)?;
        let body = draw_header(root, s, HEATMAP_TITLE, &self.subtitle, &[])?;
        // The legend row of the header carries the caption (how to read the colours).
        root.draw_text(
            &self.caption,
            &s.text(LEGEND_SIZE, MUTED)
                .pos(Pos::new(HPos::Center, VPos::Center)),
            (s.px(WIDTH as i32 / 2), s.px(102)),
        )?;

        let n = self.names.len().max(1);
        let n_i32 = i32::try_from(n).unwrap_or(i32::MAX);
        let cell = (s.px(HEIGHT as i32 - HEADER_HEIGHT - TOP - BOTTOM) / n_i32).max(1);
        let side = cell * n_i32;

        // Labels: a line of text is ~1.3 times its size high; where the cells are lower,
        // only every k-th class is named.
        let (_, line_h) = body.estimate_text_size("Ag", &s.text(TICK_SIZE, TEXT))?;
        let step = (line_h as i32).div_euclid(cell).max(0) as usize + 1;
        let x = fit_labels(
            &body,
            s,
            &self.names,
            TICK_SIZE,
            cell * i32::try_from(step).unwrap_or(1) - s.px(4),
        )?;
        // Columns labelled by index need the rows to say which index is which class.
        let row_names: Vec<String> = if x.indexed {
            (self.names.iter().enumerate())
                .map(|(i, name)| format!("{i}: {name}"))
                .collect()
        } else {
            self.names.clone()
        };
        let y = fit_labels(&body, s, &row_names, TICK_SIZE, s.px(MAX_Y_LABEL_W))?;
        let (x_labels, x_size, y_labels, y_size) = (x.labels, x.size, y.labels, y.size);
        let mut y_label_w = 0;
        for label in y_labels.iter().step_by(step) {
            let (w, _) = body.estimate_text_size(label, &s.text(y_size, TEXT))?;
            y_label_w = y_label_w.max(w as i32);
        }
        let (tick_w, _) = body.estimate_text_size("100 %", &s.text(TICK_SIZE, TEXT))?;
        let total = s.px(Y_TITLE_W)
            + y_label_w
            + s.px(LABEL_GAP)
            + side
            + s.px(BAR_GAP + BAR_W + BAR_TICK + LABEL_GAP)
            + tick_w as i32;
        let left = (s.px(WIDTH as i32) - total) / 2;
        let x0 = left + s.px(Y_TITLE_W) + y_label_w + s.px(LABEL_GAP);
        let y0 = s.px(TOP);

        for actual in 0..n {
            for predicted in 0..n {
                let (cx, cy) = (x0 + cell * predicted as i32, y0 + cell * actual as i32);
                body.draw(&Rectangle::new(
                    [(cx, cy), (cx + cell, cy + cell)],
                    blues(self.share(actual, predicted)).filled(),
                ))?;
            }
        }
        // White grid lines keep neighbouring cells of similar shade apart.
        if cell >= s.px(6) {
            for k in 1..n_i32 {
                let at = k * cell;
                let style = s.stroke(WHITE, 1);
                body.draw(&PathElement::new(
                    vec![(x0 + at, y0), (x0 + at, y0 + side)],
                    style,
                ))?;
                body.draw(&PathElement::new(
                    vec![(x0, y0 + at), (x0 + side, y0 + at)],
                    style,
                ))?;
            }
        }
        self.draw_counts(&body, s, (x0, y0), cell)?;

        // Class names: true classes to the left of the rows, predictions under the columns.
        let y_style = s
            .text(y_size, TEXT)
            .pos(Pos::new(HPos::Right, VPos::Center));
        for (i, label) in y_labels.iter().enumerate().step_by(step) {
            body.draw_text(
                label,
                &y_style,
                (x0 - s.px(LABEL_GAP), y0 + cell * i as i32 + cell / 2),
            )?;
        }
        let x_style = s.text(x_size, TEXT).pos(Pos::new(HPos::Center, VPos::Top));
        for (i, label) in x_labels.iter().enumerate().step_by(step) {
            body.draw_text(
                label,
                &x_style,
                (x0 + cell * i as i32 + cell / 2, y0 + side + s.px(6)),
            )?;
        }
        let desc = s.text(AXIS_DESC_SIZE, TEXT);
        body.draw_text(
            "Predicted class",
            &desc.pos(Pos::new(HPos::Center, VPos::Bottom)),
            (x0 + side / 2, y0 + side + s.px(BOTTOM - 6)),
        )?;
        body.draw_text(
            "True class",
            &desc
                .transform(FontTransform::Rotate270)
                .pos(Pos::new(HPos::Center, VPos::Top)),
            (left, y0 + side / 2),
        )?;

        self.draw_colour_bar(&body, s, (x0 + side + s.px(BAR_GAP), y0), side)
    }
}

impl Heatmap {
    /// Each cell's count (and, when there is room, its share) in the cell, white on dark.
    fn draw_counts<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        s: Scale,
        (x0, y0): (i32, i32),
        cell: i32,
    ) -> DrawResult<(), DB> {
        let n = self.names.len();
        if n > MAX_LABELLED_CLASSES {
            return Ok(());
        }
        let widest = (0..n)
            .flat_map(|a| (0..n).map(move |p| (a, p)))
            .map(|(a, p)| fmt_count(self.count(a, p)))
            .max_by_key(String::len)
            .unwrap_or_default();
        let (w, h) = area.estimate_text_size(&widest, &s.text(TICK_SIZE, TEXT))?;
        if w as i32 > cell - s.px(6) || h as i32 > cell - s.px(4) {
            return Ok(());
        }
        // Room for the share under the count: two lines and some air.
        let two_lines = (2.6 * f64::from(h)) as i32 <= cell;
        for actual in 0..n {
            for predicted in 0..n {
                let share = self.share(actual, predicted);
                let color = if share >= DARK_FROM { WHITE } else { TEXT };
                let centre = (
                    x0 + cell * predicted as i32 + cell / 2,
                    y0 + cell * actual as i32 + cell / 2,
                );
                let count = fmt_count(self.count(actual, predicted));
                if two_lines {
                    area.draw_text(
                        &count,
                        &s.text(TICK_SIZE, color)
                            .pos(Pos::new(HPos::Center, VPos::Bottom)),
                        (centre.0, centre.1 + s.px(1)),
                    )?;
                    area.draw_text(
                        &format!("{:.1} %", 100.0 * share),
                        &s.text(POINT_VALUE_SIZE - 2.0, color)
                            .pos(Pos::new(HPos::Center, VPos::Top)),
                        (centre.0, centre.1 + s.px(4)),
                    )?;
                } else {
                    area.draw_text(
                        &count,
                        &s.text(TICK_SIZE, color)
                            .pos(Pos::new(HPos::Center, VPos::Center)),
                        centre,
                    )?;
                }
            }
        }
        Ok(())
    }

    /// The colour scale, 0 % at the bottom to 100 % at the top, with ticks every 25 %.
    fn draw_colour_bar<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        s: Scale,
        (x, y): (i32, i32),
        height: i32,
    ) -> DrawResult<(), DB> {
        const SLICES: i32 = 100;
        let w = s.px(BAR_W);
        for k in 0..SLICES {
            // Slice k covers shares [k, k + 1) / SLICES, drawn from the bottom up.
            let top = y + height - (k + 1) * height / SLICES;
            let bottom = y + height - k * height / SLICES;
            area.draw(&Rectangle::new(
                [(x, top), (x + w, bottom)],
                blues((f64::from(k) + 0.5) / f64::from(SLICES)).filled(),
            ))?;
        }
        area.draw(&Rectangle::new(
            [(x, y), (x + w, y + height)],
            s.stroke(MUTED, 1),
        ))?;
        let style = s
            .text(TICK_SIZE, TEXT)
            .pos(Pos::new(HPos::Left, VPos::Center));
        for pct in [0, 25, 50, 75, 100] {
            let ty = y + height - pct * height / 100;
            area.draw(&PathElement::new(
                vec![(x + w, ty), (x + w + s.px(BAR_TICK), ty)],
                s.stroke(MUTED, 1),
            ))?;
            area.draw_text(
                &format!("{pct} %"),
                &style,
                (x + w + s.px(BAR_TICK + 3), ty),
            )?;
        }
        Ok(())
    }
}

/// Heat map of the final epoch's N×N confusion matrix, as PNG and SVG
/// ([`crate::WIDTH`]×[`crate::HEIGHT`]): rows are the true classes, columns the predictions,
/// both named (shrunk or cut to fit; every k-th when the cells are too small for each);
/// colour is the cell's share of its row on matplotlib's "Blues" scale, with a colour bar;
/// cells show their counts (and shares, when large enough) for up to 12 classes.
///
/// # Errors
/// [`ReportError::NoEpochs`] if there is no completed epoch; drawing, encoding or write
/// errors naming the file.
pub fn confusion_heatmap(
    file: &MetricsFile,
    path_png: &Path,
    path_svg: &Path,
) -> Result<(), ReportError> {
    let metrics = &file.run;
    let no_epochs = || ReportError::NoEpochs {
        path: path_png.to_path_buf(),
    };
    let last = file.saved().ok_or_else(no_epochs)?;
    let last_classes = last.classes;
    let chart = Heatmap {
        subtitle: subtitle(metrics, Wording::of(file)),
        caption: format!(
            "After epoch {} of {} · colour: share of the true class · numbers: test examples",
            last.epoch, metrics.config.epochs
        ),
        names: last_classes.names().map(str::to_string).collect(),
        rows: last_classes.confusion.clone(),
    };
    render(&chart, path_png, path_svg)
}

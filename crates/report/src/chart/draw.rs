//! What every chart shares: sizes, fonts and colours, rendering at 3× and downsampling into
//! PNG and SVG, the header, legends and markers, axes with given ticks, and fitting text into
//! the space it has. The charts (`bar.rs`, `line.rs`, `class_f1.rs`, `heatmap.rs`) draw with
//! these and `mod.rs` only names them.

use imdb_lora_metrics::{MetricsFile, RunMetrics};
use plotters::coord::Shift;
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::Path;

use crate::error::{DrawSource, ReportError, write_file};
use crate::font::{self, FAMILY};
use crate::format::{fmt_count, fmt_num};

/// Canvas width in pixels (PNG) and user units (SVG).
pub const WIDTH: u32 = 1000;
/// Canvas height; see [`WIDTH`].
pub const HEIGHT: u32 = 600;

/// The PNG is drawn at this multiple of its size and box-filtered down:
/// plotters' bitmap backend draws lines and markers without anti-aliasing
/// and snaps each glyph to a whole pixel, both of which look rough at 1x.
pub(super) const SUPERSAMPLE: u32 = 3;

/// Height of the title, subtitle and legend band above the plot; the legend
/// lives here rather than inside the plot so it can never cover data.
pub(super) const HEADER_HEIGHT: i32 = 126;

// Font sizes in plotters' units (an SVG font-size of size / 1.24 px).
pub(super) const TITLE_SIZE: f64 = 30.0;
pub(super) const SUBTITLE_SIZE: f64 = 18.0;
pub(super) const LEGEND_SIZE: f64 = 18.0;
pub(super) const TICK_SIZE: f64 = 17.0;
pub(super) const CATEGORY_SIZE: f64 = 20.0;
pub(super) const AXIS_DESC_SIZE: f64 = 19.0;
pub(super) const BAR_VALUE_SIZE: f64 = 19.0;
pub(super) const POINT_VALUE_SIZE: f64 = 16.0;

/// Marker sizes in pixels: the F1 square is drawn first and a little
/// larger, so it stays visible around an accuracy circle at the same value.
pub(super) const CIRCLE_RADIUS: i32 = 6;
pub(super) const SQUARE_HALF: i32 = 7;

// Palette: matplotlib's "tab10" blue and orange (familiar from the seed's
// plots and distinguishable with the common colour-vision deficiencies),
// plus neutral greys for the baseline and the furniture.
pub(super) const BLUE: RGBColor = RGBColor(31, 119, 180);
pub(super) const ORANGE: RGBColor = RGBColor(255, 127, 14);
// Darker shades of the two series colours for their value labels: text
// needs more contrast against white than a line does.
pub(super) const BLUE_TEXT: RGBColor = RGBColor(20, 84, 128);
pub(super) const ORANGE_TEXT: RGBColor = RGBColor(184, 84, 0);
pub(super) const BASELINE_BAR: RGBColor = RGBColor(170, 170, 170);
pub(super) const BASELINE_LINE: RGBColor = RGBColor(105, 105, 105);
pub(super) const TEXT: RGBColor = RGBColor(33, 33, 33);
pub(super) const MUTED: RGBColor = RGBColor(96, 96, 96);
pub(super) const GRID: RGBColor = RGBColor(226, 226, 226);
pub(super) const AXIS: RGBColor = RGBColor(120, 120, 120);

pub(super) type DrawResult<T, DB> =
    Result<T, DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

/// Converts the 1x layout (all constants above) to the pixels of the
/// canvas being drawn, so one drawing routine serves the SVG (1x) and the
/// supersampled bitmap.
#[derive(Clone, Copy)]
pub(super) struct Scale(pub(super) u32);

impl Scale {
    pub(super) fn px(self, v: i32) -> i32 {
        v * self.0 as i32
    }

    pub(super) fn upx(self, v: u32) -> u32 {
        v * self.0
    }

    pub(super) fn font(self, size: f64) -> FontDesc<'static> {
        (FAMILY, size * f64::from(self.0)).into_font()
    }

    pub(super) fn text(self, size: f64, color: RGBColor) -> TextStyle<'static> {
        self.font(size).color(&color)
    }

    pub(super) fn stroke(self, color: RGBColor, width: u32) -> ShapeStyle {
        color.stroke_width(width * self.0)
    }
}

/// A linear f64 axis whose ticks and grid lines are exactly `ticks`.
///
/// plotters' own `with_key_points` wrapper loses the f64 label formatter
/// (so the mesh cannot be configured); this small axis keeps
/// `DefaultFormatting` and lets each chart supply its label text.
#[derive(Clone)]
pub(super) struct TickedAxis {
    pub(super) inner: RangedCoordf64,
    pub(super) ticks: Vec<f64>,
}

impl TickedAxis {
    pub(super) fn new(lo: f64, hi: f64, ticks: Vec<f64>) -> Self {
        Self {
            inner: (lo..hi).into(),
            ticks,
        }
    }
}

impl Ranged for TickedAxis {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        self.inner.map(value, limit)
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        // No light (minor) grid lines: they add clutter without information.
        if hint.weight().allow_light_points() {
            Vec::new()
        } else {
            self.ticks.clone()
        }
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.inner.range()
    }
}

/// Something drawable on any plotters backend at any [`Scale`].
pub(super) trait Chart {
    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        s: Scale,
    ) -> DrawResult<(), DB>;
}

pub(super) fn draw_err<E>(path: &Path, source: DrawingAreaErrorKind<E>) -> ReportError
where
    E: std::error::Error + Send + Sync + 'static,
{
    ReportError::Draw {
        path: path.to_path_buf(),
        source: Box::new(source) as DrawSource,
    }
}

/// Draws `chart` into memory twice (supersampled bitmap, SVG) and writes
/// each file atomically: plotters' file backends write straight to the
/// destination, which would leave a torn file behind on failure.
pub(super) fn render(
    chart: &impl Chart,
    png_path: &Path,
    svg_path: &Path,
) -> Result<(), ReportError> {
    font::ensure_registered()?;

    let s = Scale(SUPERSAMPLE);
    let (big_w, big_h) = (s.upx(WIDTH), s.upx(HEIGHT));
    let mut big = vec![0u8; big_w as usize * big_h as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut big, (big_w, big_h)).into_drawing_area();
        chart.draw(&root, s).map_err(|e| draw_err(png_path, e))?;
        root.present().map_err(|e| draw_err(png_path, e))?;
    }
    let rgb = downsample(&big, SUPERSAMPLE);
    let png_bytes = encode_png(&rgb).map_err(|source| ReportError::Encode {
        path: png_path.to_path_buf(),
        source,
    })?;
    write_file(png_path, &png_bytes)?;
    tracing::debug!(path = %png_path.display(), "wrote chart");

    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        chart
            .draw(&root, Scale(1))
            .map_err(|e| draw_err(svg_path, e))?;
        root.present().map_err(|e| draw_err(svg_path, e))?;
    }
    write_file(svg_path, svg.as_bytes())?;
    tracing::debug!(path = %svg_path.display(), "wrote chart");
    Ok(())
}

/// Averages each `k`×`k` block of an RGB image of `WIDTH·k`×`HEIGHT·k`
/// pixels into one pixel of a `WIDTH`×`HEIGHT` image (a box filter; plain
/// sRGB averaging is what most anti-aliasing does and looks right here).
pub(super) fn downsample(big: &[u8], k: u32) -> Vec<u8> {
    let (w, h, k) = (WIDTH as usize, HEIGHT as usize, k as usize);
    let big_w = w * k;
    let area = (k * k) as u32;
    let mut out = vec![0u8; w * h * 3];
    for y in 0..h {
        for x in 0..w {
            let mut sum = [0u32; 3];
            for dy in 0..k {
                let row = (y * k + dy) * big_w;
                for dx in 0..k {
                    let i = (row + x * k + dx) * 3;
                    for (c, s) in sum.iter_mut().enumerate() {
                        *s += u32::from(big[i + c]);
                    }
                }
            }
            let o = (y * w + x) * 3;
            for (c, s) in sum.iter().enumerate() {
                // Rounded mean of at most 255, so it fits a u8.
                out[o + c] = ((s + area / 2) / area) as u8;
            }
        }
    }
    out
}

pub(super) fn encode_png(rgb: &[u8]) -> Result<Vec<u8>, png::EncodingError> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, WIDTH, HEIGHT);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header()?;
    writer.write_image_data(rgb)?;
    writer.finish()?;
    Ok(out)
}

/// What a legend entry's sample looks like.
#[derive(Clone, Copy)]
pub(super) enum Swatch {
    Bar(RGBColor),
    Line(RGBColor, Marker),
    Dashed(RGBColor),
}

#[derive(Clone, Copy)]
pub(super) enum Marker {
    Circle,
    Square,
}

pub(super) struct LegendItem {
    pub(super) label: String,
    pub(super) swatch: Swatch,
}

/// The legend of a before/after bar chart: grey baseline bars, blue fine-tuned ones.
pub(super) fn before_after_legend(fine_tuned_label: &str) -> [LegendItem; 2] {
    [
        LegendItem {
            label: "Baseline (before fine-tuning)".into(),
            swatch: Swatch::Bar(BASELINE_BAR),
        },
        LegendItem {
            label: fine_tuned_label.to_owned(),
            swatch: Swatch::Bar(BLUE),
        },
    ]
}

pub(super) const SWATCH_WIDTH: i32 = 34;
pub(super) const SWATCH_GAP: i32 = 8;
pub(super) const ITEM_GAP: i32 = 36;

/// Draws `marker` centred on pixel `c` of `area`.
pub(super) fn draw_marker<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    s: Scale,
    c: (i32, i32),
    marker: Marker,
    color: RGBColor,
) -> DrawResult<(), DB> {
    match marker {
        Marker::Circle => area.draw(&Circle::new(c, s.px(CIRCLE_RADIUS), color.filled())),
        Marker::Square => {
            let h = s.px(SQUARE_HALF);
            area.draw(&Rectangle::new(
                [(c.0 - h, c.1 - h), (c.0 + h, c.1 + h)],
                color.filled(),
            ))
        }
    }
}

/// Smallest font size [`fit_text`] shrinks to before it starts cutting text.
pub(super) const MIN_FIT_SIZE: f64 = 13.0;
/// Free space kept on each side of fitted text.
pub(super) const FIT_MARGIN: i32 = 20;

/// Makes run-dependent text (model paths can be long) fit the canvas width:
/// first shrinks the font down to [`MIN_FIT_SIZE`], then cuts the text and
/// ends it with "…". Returns the text and the size to draw it at.
pub(super) fn fit_text<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    s: Scale,
    text: &str,
    size: f64,
) -> DrawResult<(String, f64), DB> {
    let max_width = s.px(WIDTH as i32 - 2 * FIT_MARGIN);
    let fits = |t: &str, size: f64| -> DrawResult<bool, DB> {
        let (w, _) = area.estimate_text_size(t, &s.text(size, TEXT))?;
        Ok(w as i32 <= max_width)
    };
    let mut size = size;
    while size > MIN_FIT_SIZE {
        if fits(text, size)? {
            return Ok((text.to_string(), size));
        }
        size -= 1.0;
    }
    size = MIN_FIT_SIZE;
    let chars: Vec<char> = text.chars().collect();
    let mut keep = chars.len();
    loop {
        let candidate: String = if keep == chars.len() {
            text.to_string()
        } else {
            chars[..keep].iter().collect::<String>() + "…"
        };
        if keep == 0 || fits(&candidate, size)? {
            return Ok((candidate, size));
        }
        keep -= 1;
    }
}

/// Title, subtitle and a centred one-row legend; returns the area below.
pub(super) fn draw_header<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    s: Scale,
    title: &str,
    subtitle: &str,
    legend: &[LegendItem],
) -> DrawResult<DrawingArea<DB, Shift>, DB> {
    let (header, body) = root.split_vertically(s.px(HEADER_HEIGHT));
    let centre_x = s.px(WIDTH as i32 / 2);
    let top = Pos::new(HPos::Center, VPos::Top);
    header.draw_text(
        title,
        &s.text(TITLE_SIZE, TEXT).pos(top),
        (centre_x, s.px(14)),
    )?;
    let (subtitle, subtitle_size) = fit_text(&header, s, subtitle, SUBTITLE_SIZE)?;
    header.draw_text(
        &subtitle,
        &s.text(subtitle_size, MUTED).pos(top),
        (centre_x, s.px(56)),
    )?;

    let label_style = s
        .text(LEGEND_SIZE, TEXT)
        .pos(Pos::new(HPos::Left, VPos::Center));
    let mut widths = Vec::with_capacity(legend.len());
    for item in legend {
        let (w, _) = header.estimate_text_size(&item.label, &label_style)?;
        widths.push(w as i32);
    }
    let (swatch_w, swatch_gap, item_gap) = (s.px(SWATCH_WIDTH), s.px(SWATCH_GAP), s.px(ITEM_GAP));
    let total: i32 = widths
        .iter()
        .map(|w| swatch_w + swatch_gap + w)
        .sum::<i32>()
        + item_gap * (legend.len() as i32 - 1).max(0);
    let y = s.px(102);
    let mut x = centre_x - total / 2;
    for (item, w) in legend.iter().zip(widths) {
        match item.swatch {
            Swatch::Bar(color) => {
                let half = s.px(9);
                let cx = x + swatch_w / 2;
                header.draw(&Rectangle::new(
                    [(cx - half, y - half), (cx + half, y + half)],
                    color.filled(),
                ))?;
            }
            Swatch::Line(color, marker) => {
                header.draw(&PathElement::new(
                    vec![(x, y), (x + swatch_w, y)],
                    s.stroke(color, 3),
                ))?;
                draw_marker(&header, s, (x + swatch_w / 2, y), marker, color)?;
            }
            Swatch::Dashed(color) => {
                for dash in 0..3 {
                    let x0 = x + s.px(dash * 13);
                    header.draw(&PathElement::new(
                        vec![(x0, y), (x0 + s.px(8), y)],
                        s.stroke(color, 2),
                    ))?;
                }
            }
        }
        header.draw_text(&item.label, &label_style, (x + swatch_w + swatch_gap, y))?;
        x += swatch_w + swatch_gap + w + item_gap;
    }
    Ok(body)
}

/// What differs between the two charts' plotting areas.
pub(super) struct PlotSpec<'f> {
    pub(super) x: TickedAxis,
    pub(super) y: TickedAxis,
    pub(super) x_fmt: &'f dyn Fn(&f64) -> String,
    pub(super) y_fmt: &'f dyn Fn(&f64) -> String,
    pub(super) x_desc: &'static str,
    pub(super) x_label_size: f64,
    /// Vertical grid lines at the x ticks (pointless between bar groups).
    pub(super) x_grid: bool,
}

/// Builds the plotting area shared by both charts (same margins, so the
/// two images line up when shown one above the other) and draws the mesh.
pub(super) fn plot_area<'a, DB: DrawingBackend>(
    body: &'a DrawingArea<DB, Shift>,
    s: Scale,
    spec: PlotSpec<'_>,
) -> DrawResult<ChartContext<'a, DB, Cartesian2d<TickedAxis, TickedAxis>>, DB> {
    let mut chart = ChartBuilder::on(body)
        .margin_top(s.px(8))
        .margin_bottom(s.px(12))
        .margin_left(s.px(16))
        .margin_right(s.px(40))
        .x_label_area_size(s.px(62))
        .y_label_area_size(s.px(90))
        .build_cartesian_2d(spec.x, spec.y)?;
    let mut mesh = chart.configure_mesh();
    mesh.bold_line_style(s.stroke(GRID, 1))
        .light_line_style(TRANSPARENT)
        .axis_style(s.stroke(AXIS, 1))
        .set_all_tick_mark_size(s.px(5))
        .x_label_formatter(spec.x_fmt)
        .y_label_formatter(spec.y_fmt)
        .x_label_style(s.text(spec.x_label_size, TEXT))
        .y_label_style(s.text(TICK_SIZE, TEXT))
        .x_desc(spec.x_desc)
        .y_desc("Score on the test set")
        .axis_desc_style(s.text(AXIS_DESC_SIZE, TEXT));
    if !spec.x_grid {
        mesh.disable_x_mesh();
    }
    mesh.draw()?;
    Ok(chart)
}

/// What the bar and line charts call things, which depends on the number of classes.
#[derive(Clone, Copy)]
pub(super) struct Wording {
    /// The run's number of classes.
    pub(super) classes: usize,
}

impl Wording {
    /// The wording of a run over `file`'s classes.
    pub(super) fn of(file: &MetricsFile) -> Self {
        Self {
            classes: file.classes.num_classes(),
        }
    }

    /// The headline F1's label: the macro average over more than two classes.
    pub(super) fn f1(self) -> &'static str {
        if self.classes > 2 { "Macro-F1" } else { "F1" }
    }
}

/// One line under the title identifying the run.
pub(super) fn subtitle(m: &RunMetrics, w: Wording) -> String {
    let c = &m.config;
    let test = format!(
        "{} test examples, {} classes",
        fmt_count(c.test_n as u64),
        w.classes
    );
    format!(
        "{} + LoRA (r = {}, α = {}, {}) · {test} · {} backend",
        c.model,
        c.lora_r,
        fmt_num(c.lora_alpha),
        c.target_modules.join(", "),
        c.backend
    )
}

/// `text` cut to at most `max_width` pixels at `size`, ending in "…" when cut.
pub(super) fn truncate_to<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    s: Scale,
    text: &str,
    size: f64,
    max_width: i32,
) -> DrawResult<String, DB> {
    let style = s.text(size, TEXT);
    let chars: Vec<char> = text.chars().collect();
    let mut keep = chars.len();
    loop {
        let candidate: String = if keep == chars.len() {
            text.to_string()
        } else {
            chars[..keep].iter().collect::<String>() + "…"
        };
        let (w, _) = area.estimate_text_size(&candidate, &style)?;
        if keep == 0 || w as i32 <= max_width {
            return Ok(candidate);
        }
        keep -= 1;
    }
}

/// Labels fitted by [`fit_labels`].
pub(super) struct Fitted {
    pub(super) labels: Vec<String>,
    pub(super) size: f64,
    /// The labels are the classes' indices: cut to fit, the names no longer told them apart.
    pub(super) indexed: bool,
}

/// Labels that each fit `max_width` pixels: the largest size from `size` down to
/// [`MIN_FIT_SIZE`] at which all fit whole, else that minimum with each label cut to fit;
/// if the cut labels are no longer all different (or are nothing but "…"), the labels'
/// indices instead, which always tell them apart.
pub(super) fn fit_labels<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    s: Scale,
    labels: &[String],
    size: f64,
    max_width: i32,
) -> DrawResult<Fitted, DB> {
    let mut size = size;
    while size >= MIN_FIT_SIZE {
        let mut all = true;
        for label in labels {
            let (w, _) = area.estimate_text_size(label, &s.text(size, TEXT))?;
            if w as i32 > max_width {
                all = false;
                break;
            }
        }
        if all {
            return Ok(Fitted {
                labels: labels.to_vec(),
                size,
                indexed: false,
            });
        }
        size -= 1.0;
    }
    let mut cut = Vec::with_capacity(labels.len());
    for label in labels {
        cut.push(truncate_to(area, s, label, MIN_FIT_SIZE, max_width)?);
    }
    let distinct: std::collections::HashSet<&String> = cut.iter().collect();
    let indexed =
        distinct.len() < cut.len() || cut.iter().any(|c| c.trim_end_matches('…').is_empty());
    if indexed {
        cut = (0..labels.len()).map(|i| i.to_string()).collect();
    }
    Ok(Fitted {
        labels: cut,
        size: MIN_FIT_SIZE,
        indexed,
    })
}

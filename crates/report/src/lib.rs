//! Charts (PNG and SVG, via plotters) and a Markdown report built from a
//! `metrics.json`; never imports Burn, so reports can be regenerated
//! without the model stack.
//!
//! [`render_all`] is the entry point; it produces
//!
//! ```text
//! out_dir/
//! ├── report.md
//! └── images/
//!     ├── bar_chart.png   bar_chart.svg
//!     └── line_chart.png  line_chart.svg
//! ```
//!
//! and, up to [`MAX_CHART_CLASSES`] classes, two charts of the classes:
//!
//! ```text
//!     ├── class_f1_chart.png     class_f1_chart.svg      (F1 per class, baseline vs final)
//!     └── confusion_heatmap.png  confusion_heatmap.svg   (final N×N confusion matrix)
//! ```
//!
//! Every run is reported the same way, its classes named throughout (IMDb's are neg, pos).
//!
//! Text is drawn with an embedded DejaVu Sans, so the PNGs are identical on
//! every machine whatever fonts it has. Every file is written atomically.

mod chart;
mod error;
mod font;
mod format;
mod markdown;
mod summary;

use std::path::{Path, PathBuf};

use imdb_lora_metrics::MetricsFile;

pub use chart::{
    BAR_TITLE, CLASS_F1_TITLE, HEATMAP_TITLE, HEIGHT, LINE_TITLE, WIDTH, bar_chart, class_f1_chart,
    confusion_heatmap, line_chart,
};
pub use error::{DrawSource, ReportError};
pub use markdown::{
    BAR_CHART_STEM, CLASS_F1_CHART_STEM, HEATMAP_STEM, IMAGES_DIR, LINE_CHART_STEM, REPORT_FILE,
    render_markdown, write_report,
};
pub use summary::render_summary;

/// Runs with more classes than this get no per-class chart or heat map (their bars and
/// cells would be a few pixels wide); report.md's tables still list every class.
pub const MAX_CHART_CLASSES: usize = 100;

/// Paths of everything [`render_all`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedReport {
    /// `out_dir/report.md`.
    pub report_md: PathBuf,
    /// `out_dir/images/bar_chart.png`.
    pub bar_png: PathBuf,
    /// `out_dir/images/bar_chart.svg`.
    pub bar_svg: PathBuf,
    /// `out_dir/images/line_chart.png`.
    pub line_png: PathBuf,
    /// `out_dir/images/line_chart.svg`.
    pub line_svg: PathBuf,
    /// The per-class charts (`None` over [`MAX_CHART_CLASSES`] classes).
    pub class_charts: Option<ClassCharts>,
}

/// Paths of the per-class charts [`render_all`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassCharts {
    /// `out_dir/images/class_f1_chart.png`.
    pub f1_png: PathBuf,
    /// `out_dir/images/class_f1_chart.svg`.
    pub f1_svg: PathBuf,
    /// `out_dir/images/confusion_heatmap.png`.
    pub heatmap_png: PathBuf,
    /// `out_dir/images/confusion_heatmap.svg`.
    pub heatmap_svg: PathBuf,
}

/// Reads and validates `metrics_json`, then writes the charts (PNG and
/// SVG) under `out_dir/images/` and `out_dir/report.md`, creating the
/// directories as needed: see [`render_file`].
///
/// # Errors
/// [`ReportError::Metrics`] naming `metrics_json` if it is missing,
/// malformed or inconsistent; [`ReportError::NoEpochs`] naming it if it has
/// no completed epoch; otherwise errors naming the output that failed.
pub fn render_all(metrics_json: &Path, out_dir: &Path) -> Result<RenderedReport, ReportError> {
    let file = MetricsFile::read(metrics_json)?;
    if file.run.epochs.is_empty() {
        // Checked here so the error names the input, not the first output.
        return Err(ReportError::NoEpochs {
            path: metrics_json.to_path_buf(),
        });
    }
    render_file(&file, out_dir)
}

/// Writes the bar and line charts of `file` under `out_dir` ([`bar_chart`], [`line_chart`]:
/// "Macro-F1" over more than two classes), the per-class F1 chart and the confusion heat map
/// ([`class_f1_chart`], [`confusion_heatmap`]; up to [`MAX_CHART_CLASSES`] classes) and
/// `report.md` ([`write_report`]).
///
/// # Errors
/// [`ReportError::NoEpochs`] naming `out_dir/report.md` if the run has no completed
/// epoch; otherwise errors naming the output that failed.
pub fn render_file(file: &MetricsFile, out_dir: &Path) -> Result<RenderedReport, ReportError> {
    if file.run.epochs.is_empty() {
        return Err(ReportError::NoEpochs {
            path: out_dir.join(REPORT_FILE),
        });
    }
    let images = out_dir.join(IMAGES_DIR);
    std::fs::create_dir_all(&images).map_err(|source| ReportError::CreateDir {
        path: images.clone(),
        source,
    })?;
    let out = RenderedReport {
        report_md: out_dir.join(REPORT_FILE),
        bar_png: images.join(format!("{BAR_CHART_STEM}.png")),
        bar_svg: images.join(format!("{BAR_CHART_STEM}.svg")),
        line_png: images.join(format!("{LINE_CHART_STEM}.png")),
        line_svg: images.join(format!("{LINE_CHART_STEM}.svg")),
        class_charts: None,
    };
    let classes = &file.classes;
    bar_chart(file, &out.bar_png, &out.bar_svg)?;
    line_chart(file, &out.line_png, &out.line_svg)?;
    let class_charts = if classes.num_classes() <= MAX_CHART_CLASSES {
        let paths = ClassCharts {
            f1_png: images.join(format!("{CLASS_F1_CHART_STEM}.png")),
            f1_svg: images.join(format!("{CLASS_F1_CHART_STEM}.svg")),
            heatmap_png: images.join(format!("{HEATMAP_STEM}.png")),
            heatmap_svg: images.join(format!("{HEATMAP_STEM}.svg")),
        };
        class_f1_chart(file, &paths.f1_png, &paths.f1_svg)?;
        confusion_heatmap(file, &paths.heatmap_png, &paths.heatmap_svg)?;
        Some(paths)
    } else {
        tracing::warn!(
            classes = classes.num_classes(),
            max = MAX_CHART_CLASSES,
            "too many classes for the per-class chart and heat map; report.md lists them all"
        );
        None
    };
    write_report(file, out_dir, class_charts.is_some())?;
    Ok(RenderedReport {
        class_charts,
        ..out
    })
}

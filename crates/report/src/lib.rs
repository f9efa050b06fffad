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
//! Text is drawn with an embedded DejaVu Sans, so the PNGs are identical on
//! every machine whatever fonts it has. Every file is written atomically.

mod chart;
mod error;
mod font;
mod format;
mod markdown;

use std::path::{Path, PathBuf};

use metrics::RunMetrics;

pub use chart::{BAR_TITLE, HEIGHT, LINE_TITLE, WIDTH, bar_chart, line_chart};
pub use error::{DrawSource, ReportError};
pub use markdown::{
    BAR_CHART_STEM, IMAGES_DIR, LINE_CHART_STEM, REPORT_FILE, render_markdown, write_report,
};

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
}

/// Reads and validates `metrics_json`, then writes both charts (PNG and
/// SVG) under `out_dir/images/` and `out_dir/report.md`, creating the
/// directories as needed.
///
/// # Errors
/// [`ReportError::Metrics`] naming `metrics_json` if it is missing,
/// malformed or inconsistent; [`ReportError::NoEpochs`] naming it if it has
/// no completed epoch; otherwise errors naming the output that failed.
pub fn render_all(metrics_json: &Path, out_dir: &Path) -> Result<RenderedReport, ReportError> {
    let metrics = RunMetrics::read(metrics_json)?;
    if metrics.epochs.is_empty() {
        // Checked here so the error names the input, not the first output.
        return Err(ReportError::NoEpochs {
            path: metrics_json.to_path_buf(),
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
    };
    bar_chart(&metrics, &out.bar_png, &out.bar_svg)?;
    line_chart(&metrics, &out.line_png, &out.line_svg)?;
    write_report(&metrics, out_dir)?;
    Ok(out)
}

//! `imdb-lora plot`: charts (PNG + SVG) and report.md from a run's metrics.json.

use std::path::PathBuf;

/// Render images/{bar_chart,line_chart}.{png,svg} and report.md.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  imdb-lora plot --metrics runs/imdb/metrics.json --out runs/imdb")]
pub struct Args {
    /// The run's metrics.json.
    #[arg(long, default_value = "outputs/imdb_lora/metrics.json")]
    metrics: PathBuf,
    /// Directory for report.md and images/.
    #[arg(long, default_value = "outputs/imdb_lora")]
    out: PathBuf,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let rendered = imdb_lora_report::render_all(&args.metrics, &args.out)?;
    tracing::info!(report = %rendered.report_md.display(), "report written");
    Ok(())
}

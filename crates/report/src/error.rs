//! Error type of the report crate (every variant names the file involved), and the
//! atomic write that produces its `Write` variant.

use std::path::{Path, PathBuf};

/// Boxed error of a plotters backend (the concrete type differs per backend).
pub type DrawSource = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong while rendering charts and the report.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// Reading or validating `metrics.json` failed; the inner error names
    /// the file (and the line or field).
    #[error(transparent)]
    Metrics(#[from] imdb_lora_metrics::MetricsError),

    /// Writing an output file (atomically, via a temporary file) failed.
    #[error("cannot write {}", path.display())]
    Write {
        /// The destination file.
        path: PathBuf,
        /// The failed step of the atomic write, naming the file it concerned.
        #[source]
        source: imdb_lora_fsio::Error,
    },

    /// The metrics contain no completed epoch, so there is no fine-tuned
    /// result to chart or report.
    #[error(
        "{}: the metrics contain no completed epoch (`epochs` is empty), so there is nothing to compare with the baseline",
        path.display()
    )]
    NoEpochs {
        /// The metrics file when known, otherwise the output being produced.
        path: PathBuf,
    },

    /// The embedded font could not be parsed (a corrupt build, not user input).
    #[error("embedded font {name} is not a valid TrueType/OpenType font")]
    Font {
        /// File name of the embedded font.
        name: &'static str,
    },

    /// plotters failed while drawing a chart.
    #[error("cannot draw chart {}", path.display())]
    Draw {
        /// The chart being drawn.
        path: PathBuf,
        /// The backend's error.
        #[source]
        source: DrawSource,
    },

    /// Encoding the rendered bitmap as PNG failed.
    #[error("cannot encode PNG {}", path.display())]
    Encode {
        /// The destination file.
        path: PathBuf,
        /// The encoder's error.
        #[source]
        source: png::EncodingError,
    },

    /// Creating an output directory failed.
    #[error("cannot create directory {}", path.display())]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// The I/O failure.
        #[source]
        source: std::io::Error,
    },
}

/// Writes `bytes` to `path` atomically ([`imdb_lora_fsio::write`]), naming `path` on failure.
pub(crate) fn write_file(path: &Path, bytes: &[u8]) -> Result<(), ReportError> {
    imdb_lora_fsio::write(path, bytes).map_err(|source| ReportError::Write {
        path: path.to_path_buf(),
        source,
    })
}

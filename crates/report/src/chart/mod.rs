//! The charts: bar (before vs after), line (across epochs), per-class F1 and the confusion
//! heat map, each in its own file; what they share (rendering one drawing to both PNG and
//! SVG, written atomically; the fixed-tick axis; the title/subtitle/legend header; fonts,
//! sizes and palette; the words that differ between a binary IMDb run's charts and those of
//! a run over named classes) is `draw.rs`.

mod bar;
mod class_f1;
mod draw;
mod heatmap;
mod line;

pub use bar::{BAR_TITLE, bar_chart};
pub use class_f1::{CLASS_F1_TITLE, class_f1_chart};
pub use draw::{HEIGHT, WIDTH};
pub use heatmap::{HEATMAP_TITLE, confusion_heatmap};
pub use line::{LINE_TITLE, line_chart};

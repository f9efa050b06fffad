//! The embedded chart font, registered with plotters' `ab_glyph` text
//! backend so charts render identically whether or not the machine has
//! system fonts.

use std::sync::OnceLock;

use plotters::style::FontStyle;

use crate::error::ReportError;

/// DejaVu Sans 2.37 (Bitstream Vera licence, see `assets/LICENSE-DejaVu.txt`).
const FONT_NAME: &str = "DejaVuSans.ttf";
static FONT_BYTES: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");

/// Family name the charts ask for; plotters' `FontFamily::SansSerif` maps
/// to this string, and SVG viewers get the same generic family.
pub(crate) const FAMILY: &str = "sans-serif";

/// Registers the font once per process. plotters keeps fonts in a global
/// table, so repeated registration would only re-parse the same bytes.
pub(crate) fn ensure_registered() -> Result<(), ReportError> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| {
        // Bold falls back to Normal in plotters, so one face covers all text.
        plotters::style::register_font(FAMILY, FontStyle::Normal, FONT_BYTES).is_ok()
    });
    if ok {
        Ok(())
    } else {
        Err(ReportError::Font { name: FONT_NAME })
    }
}

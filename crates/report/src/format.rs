//! Number, duration and Markdown-cell formatting shared by the charts and
//! the report, so both show the same value the same way.

/// `1234567` → `"1,234,567"`.
pub(crate) fn fmt_count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// Shortest exact decimal form, without a trailing `.0` for whole numbers
/// (`16.0` → `"16"`, `0.0002` → `"0.0002"`).
pub(crate) fn fmt_num(x: f64) -> String {
    if x.is_finite() && x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{x:.0}")
    } else {
        format!("{x}")
    }
}

/// Seconds as `"12.3 s"`, `"320.5 s (5 min 21 s)"` or `"3725.0 s (1 h 02 min)"`:
/// exact seconds for comparison between runs, plus a human-scale reading.
pub(crate) fn fmt_duration(seconds: f64) -> String {
    let exact = format!("{seconds:.1} s");
    if !(seconds.is_finite() && seconds >= 60.0) {
        return exact;
    }
    // Whole seconds are enough for the human-scale reading.
    let total = seconds.round() as u64;
    let (h, m, s) = (total / 3600, total / 60 % 60, total % 60);
    if h > 0 {
        format!("{exact} ({h} h {m:02} min)")
    } else {
        format!("{exact} ({m} min {s:02} s)")
    }
}

/// Makes arbitrary text safe inside a Markdown table cell: a `|` would end
/// the cell and a newline the row.
pub(crate) fn md_cell(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('|', "\\|")
        .replace(['\r', '\n'], " ")
}

/// Text as inline code in a table cell. Backticks inside would end the code
/// span, so such text falls back to plain escaped text.
pub(crate) fn md_code(text: &str) -> String {
    if text.contains('`') || text.is_empty() {
        md_cell(text)
    } else {
        // Inside a code span only the pipe needs escaping (GFM tables).
        format!("`{}`", text.replace('|', "\\|").replace(['\r', '\n'], " "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_grouped_by_thousands() {
        assert_eq!(fmt_count(0), "0");
        assert_eq!(fmt_count(999), "999");
        assert_eq!(fmt_count(1000), "1,000");
        assert_eq!(fmt_count(109_779_460), "109,779,460");
    }

    #[test]
    fn numbers_drop_trailing_zero_only_when_whole() {
        assert_eq!(fmt_num(16.0), "16");
        assert_eq!(fmt_num(0.0002), "0.0002");
        assert_eq!(fmt_num(0.1), "0.1");
        assert_eq!(fmt_num(2.5), "2.5");
    }

    #[test]
    fn durations_add_a_human_reading_from_one_minute() {
        assert_eq!(fmt_duration(12.34), "12.3 s");
        assert_eq!(fmt_duration(320.5), "320.5 s (5 min 21 s)");
        assert_eq!(fmt_duration(3725.0), "3725.0 s (1 h 02 min)");
    }

    #[test]
    fn cells_escape_pipes_and_newlines() {
        assert_eq!(md_cell("a|b\nc"), "a\\|b c");
        assert_eq!(md_code("data/imdb|x"), "`data/imdb\\|x`");
        assert_eq!(md_code("we`ird"), "we`ird");
    }
}

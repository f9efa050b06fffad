//! What every format reader shares: the [`Format`]s, what to read ([`TableSpec`], [`Column`]),
//! what reading a file gives ([`RawTable`], [`RawRow`], [`RawLabel`]), and the column, header
//! and value checks every reader applies alike. It knows no reader: `delimited.rs`, `jsonl.rs`,
//! `parquet.rs`, `read.rs` and `labels.rs` build on it.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use super::error::{self, Location, Result, TableError};
use super::names::ClassNames;

/// Column names recognised as the text, in order of preference (compared case-insensitively).
pub const TEXT_NAMES: &[&str] = &["text", "sentence", "content", "review"];
/// Column names recognised as the label, in order of preference (compared case-insensitively).
pub const LABEL_NAMES: &[&str] = &["label", "labels", "class"];
/// The default separator between joined text columns.
pub const DEFAULT_SEPARATOR: &str = " ";
/// A data file format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// Apache Parquet (`.parquet`).
    Parquet,
    /// Comma-separated values (`.csv`).
    Csv,
    /// Tab-separated values (`.tsv`, `.tab`).
    Tsv,
    /// One JSON object per line (`.jsonl`, `.ndjson`).
    JsonLines,
}

impl Format {
    /// The format an extension (without the dot, any case) stands for.
    pub fn from_extension(ext: &str) -> Option<Format> {
        match ext.to_ascii_lowercase().as_str() {
            "parquet" => Some(Format::Parquet),
            "csv" => Some(Format::Csv),
            "tsv" | "tab" => Some(Format::Tsv),
            "jsonl" | "ndjson" => Some(Format::JsonLines),
            _ => None,
        }
    }

    /// The format of `path`, from its extension.
    ///
    /// # Errors
    /// [`TableError::UnknownExtension`].
    pub fn from_path(path: &Path) -> Result<Format> {
        let ext = path
            .extension()
            .map(|e| e.to_string_lossy().into_owned())
            .unwrap_or_default();
        Format::from_extension(&ext).ok_or_else(|| TableError::UnknownExtension {
            path: path.to_path_buf(),
            ext,
        })
    }

    /// Short lowercase name: `parquet`, `csv`, `tsv`, `jsonl`.
    pub fn name(self) -> &'static str {
        match self {
            Format::Parquet => "parquet",
            Format::Csv => "csv",
            Format::Tsv => "tsv",
            Format::JsonLines => "jsonl",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Format {
    type Err = TableError;

    /// `parquet`, `csv`, `tsv`, `jsonl` (also `ndjson`, `json-lines`), any case.
    fn from_str(s: &str) -> Result<Format> {
        match s.to_ascii_lowercase().as_str() {
            "json-lines" | "jsonlines" => Some(Format::JsonLines),
            other => Format::from_extension(other),
        }
        .ok_or_else(|| TableError::UnknownFormat(s.to_owned()))
    }
}

/// A column, by name or by 1-based position.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Column {
    /// By name (matched exactly, else case-insensitively if that is unambiguous).
    Name(String),
    /// By 1-based position, as a user counts CSV columns.
    Index(usize),
}

impl Column {
    /// Comma-separated columns, e.g. `"2,3"` or `"title,description"`.
    ///
    /// # Errors
    /// [`TableError::BadColumnSpec`] for an empty entry or position 0.
    pub fn parse_list(s: &str) -> Result<Vec<Column>> {
        s.split(',').map(str::parse).collect()
    }
}

impl FromStr for Column {
    type Err = TableError;

    /// Digits only: a position (`"2"` → `Index(2)`); anything else: a name (surrounding
    /// whitespace removed).
    fn from_str(s: &str) -> Result<Column> {
        let t = s.trim();
        let bad = |reason| TableError::BadColumnSpec {
            spec: s.to_owned(),
            reason,
        };
        if t.is_empty() {
            return Err(bad("empty; expected a column name or a 1-based position"));
        }
        if t.bytes().all(|b| b.is_ascii_digit()) {
            return match t.parse::<usize>() {
                Ok(0) => Err(bad("positions start at 1")),
                Ok(i) => Ok(Column::Index(i)),
                Err(_) => Err(bad("position too large")),
            };
        }
        Ok(Column::Name(t.to_owned()))
    }
}

impl fmt::Display for Column {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Column::Name(n) => write!(f, "{n:?}"),
            Column::Index(i) => write!(f, "#{i}"),
        }
    }
}

/// How to read a table: which columns, header, separator, class names, format.
#[derive(Clone, Debug, PartialEq)]
pub struct TableSpec {
    /// The text column(s), joined with `text_separator`; empty: detect one from [`TEXT_NAMES`].
    pub text: Vec<Column>,
    /// The label column; `None`: detect it from [`LABEL_NAMES`].
    pub label: Option<Column>,
    /// Put between joined text columns.
    pub text_separator: String,
    /// CSV/TSV: whether the first row is a header; `None`: detect it.
    pub header: Option<bool>,
    /// Class names in class order, overriding any found beside the data.
    pub label_names: Option<Vec<String>>,
    /// The format; `None`: from the file's extension.
    pub format: Option<Format>,
}

impl Default for TableSpec {
    fn default() -> Self {
        TableSpec {
            text: Vec::new(),
            label: None,
            text_separator: DEFAULT_SEPARATOR.to_owned(),
            header: None,
            label_names: None,
            format: None,
        }
    }
}

/// A label as the file has it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RawLabel {
    /// An integer (a class index, possibly 1-based).
    Int(i64),
    /// A string (a class name).
    Str(String),
}

impl RawLabel {
    /// "an integer" or "a string".
    pub fn kind(&self) -> &'static str {
        match self {
            RawLabel::Int(_) => "an integer",
            RawLabel::Str(_) => "a string",
        }
    }
}

impl fmt::Display for RawLabel {
    /// Integers bare, strings quoted.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RawLabel::Int(i) => write!(f, "{i}"),
            RawLabel::Str(s) => write!(f, "{s:?}"),
        }
    }
}

/// One data row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawRow {
    /// 0-based data row in the file (header excluded).
    pub row: usize,
    /// 1-based line where the row starts (CSV/TSV, JSON Lines).
    pub line: Option<u64>,
    /// The text column(s), joined.
    pub text: String,
    /// The label.
    pub label: RawLabel,
}

/// One file read: its rows and what was found about it.
#[derive(Clone, Debug, PartialEq)]
pub struct RawTable {
    /// The file.
    pub path: PathBuf,
    /// Its format.
    pub format: Format,
    /// Every column in the file, in order (`"1"`, `"2"`, ... without a header row).
    pub columns: Vec<String>,
    /// The text column(s) used.
    pub text_columns: Vec<String>,
    /// The label column used.
    pub label_column: String,
    /// Whether a header row was read (always true for parquet and JSON Lines).
    pub header: bool,
    /// The rows, in file order.
    pub rows: Vec<RawRow>,
    /// Class names found beside the data, if any.
    pub class_names: Option<ClassNames>,
}

impl RawTable {
    /// Where `row` is, for messages.
    pub fn location(&self, row: &RawRow) -> Location {
        Location {
            path: self.path.clone(),
            row: row.row,
            line: row.line,
        }
    }
}

/// The text and label column indices (0-based) chosen in a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Resolved {
    pub text: Vec<usize>,
    pub label: usize,
}

impl Resolved {
    pub(crate) fn text_names(&self, columns: &[String]) -> Vec<String> {
        self.text.iter().map(|&i| columns[i].clone()).collect()
    }
}

/// Whether `name` is a recognised text or label column name.
fn recognised(name: &str) -> bool {
    let name = name.trim();
    TEXT_NAMES
        .iter()
        .chain(LABEL_NAMES)
        .any(|c| c.eq_ignore_ascii_case(name))
}

/// Header detection: does this first row name a column the spec asks for, or a recognised one?
pub(crate) fn looks_like_header(cells: &[String], spec: &TableSpec) -> bool {
    let asks_for = |cell: &str| {
        spec.text.iter().chain(&spec.label).any(|c| match c {
            Column::Name(n) => n.eq_ignore_ascii_case(cell.trim()),
            Column::Index(_) => false,
        })
    };
    cells.iter().any(|c| asks_for(c) || recognised(c))
}

/// Advice for a file read without a header row (said so, or guessed from `first_row`).
pub(crate) fn no_header_hint(spec: &TableSpec, first_row: &[String]) -> String {
    if spec.header == Some(false) {
        " (the file has no header row: give columns by position, 1 = first)".into()
    } else {
        format!(
            " (no header row detected: the first row, {}, names no column asked for and no recognised one; give columns by position, 1 = first, or say that the file has a header, --header true)",
            error::List(first_row)
        )
    }
}

/// Find the text and label columns among `columns` as `spec` asks; `first_row` (the cells of a
/// file read without a header) goes into the advice of an error.
pub(crate) fn resolve(
    path: &Path,
    columns: &[String],
    spec: &TableSpec,
    header: Option<&[String]>,
) -> Result<Resolved> {
    let hint = match header {
        None => String::new(),
        Some(first_row) => no_header_hint(spec, first_row),
    };
    let header = header.is_none();
    let find = |column: &Column| -> Result<usize> {
        let no_such = || TableError::NoSuchColumn {
            path: path.to_path_buf(),
            column: column.to_string(),
            found: columns.to_vec(),
            hint: hint.clone(),
        };
        match column {
            Column::Index(i) => (1..=columns.len())
                .contains(i)
                .then(|| i - 1)
                .ok_or_else(no_such),
            Column::Name(_) if !header => Err(no_such()),
            Column::Name(n) => {
                if let Some(i) = columns.iter().position(|c| c == n) {
                    return Ok(i);
                }
                let matches: Vec<usize> = (0..columns.len())
                    .filter(|&i| columns[i].eq_ignore_ascii_case(n))
                    .collect();
                match matches[..] {
                    [i] => Ok(i),
                    [] => Err(no_such()),
                    _ => Err(TableError::AmbiguousColumn {
                        path: path.to_path_buf(),
                        what: format!("column {n:?}"),
                        matches: matches.iter().map(|&i| columns[i].clone()).collect(),
                    }),
                }
            }
        }
    };
    let detect = |what: &'static str,
                  names: &'static [&'static str],
                  candidates: &'static str,
                  exclude: &[usize]|
     -> Result<usize> {
        for name in names {
            let matches: Vec<usize> = (0..columns.len())
                .filter(|i| !exclude.contains(i) && columns[*i].eq_ignore_ascii_case(name))
                .collect();
            match matches[..] {
                [i] => return Ok(i),
                [] => {}
                _ => {
                    return Err(TableError::AmbiguousColumn {
                        path: path.to_path_buf(),
                        what: what.to_owned(),
                        matches: matches.iter().map(|&i| columns[i].clone()).collect(),
                    });
                }
            }
        }
        Err(TableError::CannotDetectColumn {
            path: path.to_path_buf(),
            what,
            candidates,
            found: columns.to_vec(),
            hint: hint.clone(),
        })
    };
    let text_given: Vec<usize> = spec.text.iter().map(find).collect::<Result<_>>()?;
    let label = match &spec.label {
        Some(c) => find(c)?,
        None => detect("label", LABEL_NAMES, "label, labels or class", &text_given)?,
    };
    let text = if text_given.is_empty() {
        vec![detect(
            "text",
            TEXT_NAMES,
            "text, sentence, content or review",
            &[label],
        )?]
    } else {
        text_given
    };
    if text.contains(&label) {
        return Err(TableError::LabelIsText {
            path: path.to_path_buf(),
            column: columns[label].clone(),
        });
    }
    Ok(Resolved { text, label })
}

/// Join a row's text pieces and refuse an empty or whitespace-only result.
pub(crate) fn join_text<'a>(
    pieces: impl IntoIterator<Item = &'a str>,
    separator: &str,
    at: impl FnOnce() -> Location,
    columns: impl FnOnce() -> Vec<String>,
) -> Result<String> {
    let mut text = String::new();
    for (i, piece) in pieces.into_iter().enumerate() {
        if i > 0 {
            text.push_str(separator);
        }
        text.push_str(piece);
    }
    if text.trim().is_empty() {
        return Err(TableError::EmptyText {
            at: Box::new(at()),
            columns: columns(),
        });
    }
    Ok(text)
}

/// Checks that every label of a file has one kind (all integers or all strings).
#[derive(Debug, Default)]
pub(crate) struct KindCheck {
    first: Option<(bool, Location)>,
}

impl KindCheck {
    /// Record `label` at `at`; an error if its kind differs from the first label's.
    pub(crate) fn check(
        &mut self,
        label: &RawLabel,
        at: impl FnOnce() -> Location,
        column: &str,
        header_guessed: bool,
    ) -> Result<()> {
        let is_int = matches!(label, RawLabel::Int(_));
        match &self.first {
            None => {
                self.first = Some((is_int, at()));
                Ok(())
            }
            Some((first_int, _)) if *first_int == is_int => Ok(()),
            Some((first_int, first)) => {
                // A header row read as data gives exactly this: one string, then integers.
                let hint = if header_guessed && first.row == 0 && !first_int {
                    "; if the first line is a header row, say that the file has one (--header true)"
                } else {
                    ""
                };
                Err(TableError::MixedLabels {
                    at: Box::new(at()),
                    column: column.to_owned(),
                    value: label.to_string(),
                    kind: label.kind(),
                    first_kind: if *first_int { "integers" } else { "strings" },
                    first: Box::new(first.clone()),
                    hint,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cols(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn formats_come_from_extensions_or_names() {
        for (file, format) in [
            ("a.parquet", Format::Parquet),
            ("a.CSV", Format::Csv),
            ("a.tsv", Format::Tsv),
            ("a.tab", Format::Tsv),
            ("a.jsonl", Format::JsonLines),
            ("a.ndjson", Format::JsonLines),
        ] {
            assert_eq!(
                Format::from_path(Path::new(file)).unwrap(),
                format,
                "{file}"
            );
            assert_eq!(format.name().parse::<Format>().unwrap(), format);
        }
        let err = Format::from_path(Path::new("d/data.xlsx")).unwrap_err();
        assert!(
            matches!(&err, TableError::UnknownExtension { ext, .. } if ext == "xlsx"),
            "{err}"
        );
        assert!(err.to_string().contains("d/data.xlsx"), "{err}");
        assert!(Format::from_path(Path::new("noext")).is_err());
        assert!("excel".parse::<Format>().is_err());
    }

    #[test]
    fn columns_parse_as_positions_or_names() {
        assert_eq!("2".parse::<Column>().unwrap(), Column::Index(2));
        assert_eq!(
            " title ".parse::<Column>().unwrap(),
            Column::Name("title".into())
        );
        assert_eq!(
            Column::parse_list("2,3").unwrap(),
            vec![Column::Index(2), Column::Index(3)]
        );
        assert_eq!(
            Column::parse_list("title,2b").unwrap(),
            vec![Column::Name("title".into()), Column::Name("2b".into())]
        );
        assert!("0".parse::<Column>().is_err());
        assert!(Column::parse_list("1,,2").is_err());
        assert!("99999999999999999999999".parse::<Column>().is_err());
    }

    #[test]
    fn columns_resolve_by_name_position_or_detection() {
        let p = Path::new("f.csv");
        let spec = TableSpec::default();
        let r = resolve(p, &cols(&["id", "Sentence", "LABEL"]), &spec, None).unwrap();
        assert_eq!(
            r,
            Resolved {
                text: vec![1],
                label: 2
            }
        );
        // Preference order: "text" before "review".
        let r = resolve(p, &cols(&["review", "text", "class"]), &spec, None).unwrap();
        assert_eq!(r.text, vec![1]);
        let spec = TableSpec {
            text: Column::parse_list("title,3").unwrap(),
            label: Some(Column::Index(1)),
            ..TableSpec::default()
        };
        let r = resolve(p, &cols(&["y", "Title", "body"]), &spec, None).unwrap();
        assert_eq!(
            r,
            Resolved {
                text: vec![1, 2],
                label: 0
            }
        );
    }

    #[test]
    fn unresolvable_columns_list_the_columns_found() {
        let p = Path::new("f.csv");
        let found = cols(&["a", "b"]);
        let err = resolve(p, &found, &TableSpec::default(), None).unwrap_err();
        let msg = err.to_string();
        assert!(
            matches!(err, TableError::CannotDetectColumn { what: "label", .. }),
            "{msg}"
        );
        assert!(
            msg.contains(r#""a", "b""#) && msg.contains("f.csv"),
            "{msg}"
        );

        let spec = TableSpec {
            label: Some(Column::Name("stars".into())),
            ..TableSpec::default()
        };
        let err = resolve(p, &found, &spec, None).unwrap_err();
        assert!(matches!(err, TableError::NoSuchColumn { .. }), "{err}");
        assert!(err.to_string().contains(r#"no column "stars""#), "{err}");

        let spec = TableSpec {
            label: Some(Column::Index(3)),
            ..TableSpec::default()
        };
        let err = resolve(p, &found, &spec, None).unwrap_err();
        assert!(err.to_string().contains("no column #3"), "{err}");

        // Without a header, names cannot match and the error says how to address columns.
        let spec = TableSpec {
            label: Some(Column::Name("1".into())),
            ..TableSpec::default()
        };
        let first = cols(&["body", "stars"]);
        let err = resolve(p, &cols(&["1", "2"]), &spec, Some(&first)).unwrap_err();
        assert!(
            err.to_string()
                .contains(r#"no header row detected: the first row, "body", "stars", names no"#),
            "{err}"
        );

        let err = resolve(
            p,
            &cols(&["Text", "text", "label"]),
            &TableSpec::default(),
            None,
        )
        .unwrap_err();
        assert!(matches!(err, TableError::AmbiguousColumn { .. }), "{err}");

        let spec = TableSpec {
            text: vec![Column::Index(1)],
            label: Some(Column::Index(1)),
            ..TableSpec::default()
        };
        let err = resolve(p, &found, &spec, None).unwrap_err();
        assert!(matches!(err, TableError::LabelIsText { .. }), "{err}");
    }

    #[test]
    fn headers_are_detected_from_names_asked_for_or_recognised() {
        let spec = TableSpec::default();
        assert!(looks_like_header(&cols(&["id", "Text", "y"]), &spec));
        assert!(!looks_like_header(
            &cols(&["3", "Fears for pension", "Unions"]),
            &spec
        ));
        let spec = TableSpec {
            text: vec![Column::Name("headline".into())],
            ..TableSpec::default()
        };
        assert!(looks_like_header(&cols(&["headline", "y"]), &spec));
    }

    #[test]
    fn text_is_joined_and_must_not_be_blank() {
        let at = || Location {
            path: "f.csv".into(),
            row: 4,
            line: Some(6),
        };
        let names = || vec!["title".to_owned(), "body".to_owned()];
        assert_eq!(join_text(["a", "b"], " - ", at, names).unwrap(), "a - b");
        let err = join_text([" ", "\t"], " ", at, names).unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"f.csv, row 4 (line 6), column "title", "body": the text is empty or only whitespace"#
        );
    }

    #[test]
    fn mixed_label_kinds_name_both_rows() {
        let mut check = KindCheck::default();
        let at = |row| Location {
            path: "f.jsonl".into(),
            row,
            line: Some(row as u64 + 1),
        };
        check
            .check(&RawLabel::Int(1), || at(0), "label", false)
            .unwrap();
        check
            .check(&RawLabel::Int(2), || at(1), "label", false)
            .unwrap();
        let err = check
            .check(&RawLabel::Str("x".into()), || at(2), "label", false)
            .unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("f.jsonl, row 2 (line 3)"), "{msg}");
        assert!(msg.contains("(first at row 0 (line 1))"), "{msg}");
        assert_eq!(
            msg.matches("f.jsonl").count(),
            1,
            "the file is named once: {msg}"
        );
    }
}

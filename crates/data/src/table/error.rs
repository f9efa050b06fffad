//! [`TableError`]: everything that can go wrong reading a user's data files, each naming the file
//! and, where one is to blame, the row (and line), the column and what was expected.

use std::fmt;
use std::path::PathBuf;

/// Where a value sits: the file, its 0-based data row (the header excluded) and, for text
/// formats, the 1-based line the row starts on (rows and lines differ after a header or a quoted
/// field with newlines).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    /// The file.
    pub path: PathBuf,
    /// 0-based data row in the file.
    pub row: usize,
    /// 1-based line where the row starts (CSV/TSV, JSON Lines).
    pub line: Option<u64>,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}, row {}", self.path.display(), self.row)?;
        if let Some(line) = self.line {
            write!(f, " (line {line})")?;
        }
        Ok(())
    }
}

/// A second location in a message that names a first one: without its file when that is the
/// first one's (the message names it already), else in full.
pub(crate) struct Also<'a>(pub &'a Location, pub &'a Location);

impl fmt::Display for Also<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (named, also) = (self.0, self.1);
        if named.path != also.path {
            return also.fmt(f);
        }
        write!(f, "row {}", also.row)?;
        if let Some(line) = also.line {
            write!(f, " (line {line})")?;
        }
        Ok(())
    }
}

/// `a, b, c` for messages.
pub(crate) struct List<'a>(pub &'a [String]);

impl fmt::Display for List<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("none");
        }
        for (i, s) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{s:?}")?;
        }
        Ok(())
    }
}

/// `, column C` for messages, or nothing when the column is unknown.
pub(crate) struct AtColumn(pub Option<u64>);

impl fmt::Display for AtColumn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(column) => write!(f, ", column {column}"),
            None => Ok(()),
        }
    }
}

/// `, line L (row R)` for messages; parts that are unknown are left out.
pub(crate) struct LineRow(pub Option<u64>, pub Option<usize>);

impl fmt::Display for LineRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.0, self.1) {
            (Some(line), Some(row)) => write!(f, ", line {line} (row {row})"),
            (Some(line), None) => write!(f, ", line {line}"),
            (None, Some(row)) => write!(f, ", row {row}"),
            (None, None) => Ok(()),
        }
    }
}

/// Shorthand for results of this module.
pub type Result<T, E = TableError> = std::result::Result<T, E>;

/// Everything that can go wrong in [`crate::table`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TableError {
    // ----- files and formats -----
    /// An I/O operation on a file or directory failed.
    #[error("cannot {action} {path}: {source}", path = path.display())]
    Io {
        /// What we were doing ("open", "read directory", ...).
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The file's extension names no format this module reads.
    #[error(
        "{path}: unknown data file extension {ext:?}; expected .parquet, .csv, .tsv/.tab or .jsonl/.ndjson (or name the format explicitly)",
        path = path.display()
    )]
    UnknownExtension {
        /// The file.
        path: PathBuf,
        /// Its extension ("" for none).
        ext: String,
    },
    /// A format name (an explicit override) is not one of ours.
    #[error("unknown data format {0:?}; expected parquet, csv, tsv or jsonl")]
    UnknownFormat(String),
    /// A column reference (e.g. from `--text-column`) does not parse.
    #[error("bad column {spec:?}: {reason}")]
    BadColumnSpec {
        /// The text given.
        spec: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The file holds no data rows.
    #[error("{path}: no data rows{hint}", path = path.display())]
    EmptyTable {
        /// The file.
        path: PathBuf,
        /// Extra advice (e.g. about a header row), or "".
        hint: &'static str,
    },

    // ----- columns -----
    /// A column asked for is not in the file.
    #[error("{path}: no column {column}{hint}; columns found: {found}", path = path.display(), found = List(found))]
    NoSuchColumn {
        /// The file.
        path: PathBuf,
        /// The column asked for, as the user wrote it.
        column: String,
        /// The file's columns (`"1"`, `"2"`, ... for a file without a header row).
        found: Vec<String>,
        /// Extra advice, or "".
        hint: String,
    },
    /// No column was named and none has one of the recognised names.
    #[error(
        "{path}: cannot tell which column holds the {what}: none is named {candidates}{hint}; name it explicitly; columns found: {found}",
        path = path.display(),
        found = List(found)
    )]
    CannotDetectColumn {
        /// The file.
        path: PathBuf,
        /// "text" or "label".
        what: &'static str,
        /// The recognised names.
        candidates: &'static str,
        /// The file's columns.
        found: Vec<String>,
        /// Extra advice, or "".
        hint: String,
    },
    /// Several columns match one name (differing only in case).
    #[error("{path}: several columns could be the {what}: {matches}; name one explicitly", path = path.display(), matches = List(matches))]
    AmbiguousColumn {
        /// The file.
        path: PathBuf,
        /// "text" or "label" (or the name asked for).
        what: String,
        /// The candidates.
        matches: Vec<String>,
    },
    /// The label column is also one of the text columns.
    #[error("{path}: column {column:?} cannot be both text and label", path = path.display())]
    LabelIsText {
        /// The file.
        path: PathBuf,
        /// The column.
        column: String,
    },
    /// A parquet or JSON column has a type that cannot be text or label.
    #[error("{path}: column {column:?} has type {found}, expected {expected}", path = path.display())]
    WrongColumnType {
        /// The file.
        path: PathBuf,
        /// The column.
        column: String,
        /// What it may be.
        expected: &'static str,
        /// What it is.
        found: String,
    },
    /// A parquet label column of floating-point numbers.
    #[error(
        "{path}: label column {column:?} holds floating-point numbers ({found}); expected integer class ids or class names (a regression target is not a class)",
        path = path.display()
    )]
    FloatLabelColumn {
        /// The file.
        path: PathBuf,
        /// The column.
        column: String,
        /// Its type.
        found: String,
    },

    // ----- values -----
    /// A row lacks the value of a column (null, absent key, empty label cell).
    #[error("{at}, column {column:?}: missing value, expected {expected}")]
    MissingValue {
        /// Where.
        at: Box<Location>,
        /// The column.
        column: String,
        /// What should be there.
        expected: &'static str,
    },
    /// A row's text is empty or whitespace only.
    #[error("{at}, column {columns}: the text is empty or only whitespace", columns = List(columns))]
    EmptyText {
        /// Where.
        at: Box<Location>,
        /// The text column(s).
        columns: Vec<String>,
    },
    /// A text value is not a string (JSON Lines).
    #[error("{at}, column {column:?}: expected a string, found {found}")]
    NotText {
        /// Where.
        at: Box<Location>,
        /// The column.
        column: String,
        /// The JSON value's kind.
        found: &'static str,
    },
    /// A label that is a non-integer number.
    #[error(
        "{at}, column {column:?}: label {value} is a floating-point number; expected integer class ids or class names (a regression target is not a class)"
    )]
    FloatLabel {
        /// Where.
        at: Box<Location>,
        /// The label column.
        column: String,
        /// The value as written.
        value: String,
    },
    /// A label that is neither an integer nor a string (a boolean, a list, an integer too large).
    #[error("{at}, column {column:?}: label {value} is not a class id or name: {reason}")]
    InvalidLabel {
        /// Where.
        at: Box<Location>,
        /// The label column.
        column: String,
        /// The value as written.
        value: String,
        /// Why not.
        reason: &'static str,
    },
    /// Integer and string labels in one label column (or one split's files).
    #[error(
        "{at}, column {column:?}: label {value} is {kind}, but the labels before it are {first_kind} (first at {first}){hint}",
        first = Also(at, first)
    )]
    MixedLabels {
        /// Where.
        at: Box<Location>,
        /// The label column.
        column: String,
        /// The offending value.
        value: String,
        /// "an integer" or "a string".
        kind: &'static str,
        /// The kind of the earlier labels ("integers" / "strings").
        first_kind: &'static str,
        /// Where the first earlier label is.
        first: Box<Location>,
        /// Extra advice (e.g. about a header row), or "".
        hint: &'static str,
    },

    // ----- CSV, JSON, parquet -----
    /// The CSV/TSV reader failed: a row with a different number of fields, invalid UTF-8, ...
    #[error("{path}{at}: malformed {format}: {reason}", path = path.display(), at = LineRow(*line, *row))]
    Csv {
        /// The file.
        path: PathBuf,
        /// 1-based line where the bad record starts, where known.
        line: Option<u64>,
        /// Its 0-based data row, where known.
        row: Option<usize>,
        /// "CSV" or "TSV".
        format: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// A JSON Lines line is not valid JSON. The parser's own position (it counts within the
    /// line) is in `line` and `column`, not repeated in `reason`.
    #[error("{path}, line {line}{column}: malformed JSON: {reason}", path = path.display(), column = AtColumn(*column))]
    Json {
        /// The file.
        path: PathBuf,
        /// 1-based line of the file.
        line: u64,
        /// 1-based column (byte) in that line where the parser stopped, where it says.
        column: Option<u64>,
        /// The parser's message without its position.
        reason: String,
    },
    /// A JSON Lines line is valid JSON but not an object.
    #[error("{path}, line {line}: expected a JSON object per line, found {found}", path = path.display())]
    NotAnObject {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: u64,
        /// The JSON value's kind.
        found: &'static str,
    },
    /// The parquet library failed.
    #[error("{path}: cannot read parquet: {source}", path = path.display())]
    Parquet {
        /// The file.
        path: PathBuf,
        /// The parquet error.
        #[source]
        source: parquet::errors::ParquetError,
    },
    /// Decoding a parquet record batch failed.
    #[error("{path}: cannot decode the rows from {row} on: {source}", path = path.display())]
    Arrow {
        /// The file.
        path: PathBuf,
        /// First row of the batch.
        row: usize,
        /// The arrow error.
        #[source]
        source: arrow_schema::ArrowError,
    },
    /// The parquet file's structure is inconsistent (footer and row groups disagree, a column
    /// chunk outside the file) or the parquet library panicked on it.
    #[error("{path}: damaged parquet file: {reason}", path = path.display())]
    DamagedParquet {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },

    // ----- classes -----
    /// A class-name list (given, `classes.txt`, `ClassLabel` metadata) is unusable.
    #[error("class names from {source_name}: {reason}")]
    BadClassNames {
        /// Where the names came from.
        source_name: String,
        /// What is wrong (empty, duplicate, too few).
        reason: String,
    },
    /// The training data has fewer than two classes.
    #[error(
        "{path}: label column {column:?} holds one class only ({label}, all {rows} rows); a classifier needs at least two",
        path = path.display()
    )]
    OneClass {
        /// The (first) training file.
        path: PathBuf,
        /// The label column.
        column: String,
        /// The one label.
        label: String,
        /// Rows read.
        rows: usize,
    },
    /// More classes than [`super::MAX_CLASSES`].
    #[error(
        "{path}: label column {column:?} would make {classes} classes, more than the {max} supported (is it really a class column?)",
        path = path.display()
    )]
    TooManyClasses {
        /// The (first) training file.
        path: PathBuf,
        /// The label column.
        column: String,
        /// How many it would be.
        classes: u128,
        /// The limit.
        max: usize,
    },
    /// An integer label outside the class names' range (or negative).
    #[error("{at}, column {column:?}: label {label} is outside {range}{names}")]
    LabelOutOfRange {
        /// Where.
        at: Box<Location>,
        /// The label column.
        column: String,
        /// The label.
        label: i64,
        /// What is allowed, in words.
        range: String,
        /// `" (class names from ...)"` or "".
        names: String,
    },
    /// A string label that is not one of the given class names.
    #[error("{at}, column {column:?}: label {label:?} is not one of the class names from {source_name}: {names}", names = List(names))]
    LabelNotInNames {
        /// Where.
        at: Box<Location>,
        /// The label column.
        column: String,
        /// The label.
        label: String,
        /// Where the names came from.
        source_name: String,
        /// The names.
        names: Vec<String>,
    },
    /// A label (in the test data) that no training row has.
    #[error(
        "{at}, column {column:?}: label {label} does not occur in the training data ({train}); classes trained on: {names}",
        train = train.display(),
        names = List(names)
    )]
    UnseenLabel {
        /// Where.
        at: Box<Location>,
        /// The label column.
        column: String,
        /// The label as written.
        label: String,
        /// The (first) training file.
        train: PathBuf,
        /// The classes with training rows.
        names: Vec<String>,
    },

    // ----- datasets and splits -----
    /// A path given does not exist.
    #[error("{path}: no such file or directory", path = path.display())]
    NotFound {
        /// The path.
        path: PathBuf,
    },
    /// A hold-out fraction outside (0, 1).
    #[error("test fraction {0} is outside (0, 1)")]
    BadFraction(f64),
    /// A hold-out would leave no test (or no training) rows.
    #[error(
        "holding out {fraction} of {rows} rows leaves {test} test and {train} training rows; both need at least one"
    )]
    SplitTooSmall {
        /// The fraction.
        fraction: f64,
        /// Rows split.
        rows: usize,
        /// Test rows it gave.
        test: usize,
        /// Training rows it gave.
        train: usize,
    },
    /// No test data and no hold-out fraction.
    #[error(
        "{path}: no test split (looked for {looked}); give a test file or a fraction to hold out for testing (--test-fraction)",
        path = path.display()
    )]
    NoTestSplit {
        /// The training data.
        path: PathBuf,
        /// What was looked for.
        looked: &'static str,
    },
    /// A row a run recorded (its `split.json`) that its files no longer have.
    #[error(
        "{first}{more}: row {row} was recorded, but the files have {rows} data rows; were they changed since?",
        first = first.display(),
        more = if *files > 1 { format!(" (and {} more files)", files - 1) } else { String::new() }
    )]
    RecordedRowMissing {
        /// The first of the files.
        first: PathBuf,
        /// How many files.
        files: usize,
        /// The row recorded (0-based, counted on across the files).
        row: usize,
        /// Data rows the files have.
        rows: usize,
    },
    /// A run's `split.json` that cannot be used.
    #[error("{path}: {reason}", path = path.display())]
    SplitRecord {
        /// The file.
        path: PathBuf,
        /// What is wrong with it (the JSON parser's message, or which fields disagree).
        reason: String,
    },
    /// A test split and a hold-out fraction both given.
    #[error(
        "{path}: there is a test split ({test}) and a test fraction was given; a fraction is held out only from data without a test split",
        test = test.display(),
        path = path.display()
    )]
    TestAndFraction {
        /// The training data.
        path: PathBuf,
        /// The test split's (first) file.
        test: PathBuf,
    },
    /// A directory without recognisable split files.
    #[error(
        "{dir}: no {what} found; expected files named train.*, test.*, validation.*/dev.* (or <split>-00000-of-00001.parquet, <split>/0000.parquet) here, in data/ or in one configuration's subdirectory; data files found: {found}",
        dir = dir.display(),
        found = List(found)
    )]
    NoSplit {
        /// The directory.
        dir: PathBuf,
        /// "train split" (or "split").
        what: &'static str,
        /// Data files found.
        found: Vec<String>,
    },
    /// A directory with several configurations (subdirectories with split files) and none chosen.
    #[error("{dir}: several configurations: {configs}; choose one", dir = dir.display(), configs = List(configs))]
    SeveralConfigs {
        /// The directory.
        dir: PathBuf,
        /// The configurations found.
        configs: Vec<String>,
    },
    /// The configuration asked for is not a subdirectory.
    #[error("{dir}: no configuration {config:?}; found: {found}", dir = dir.display(), found = List(found))]
    NoSuchConfig {
        /// The directory.
        dir: PathBuf,
        /// The configuration asked for.
        config: String,
        /// Subdirectories found.
        found: Vec<String>,
    },
    /// One split in several formats or layouts.
    #[error("{dir}: split {split:?} is given twice: {files}; keep one", dir = dir.display(), files = List(files))]
    AmbiguousSplit {
        /// The directory.
        dir: PathBuf,
        /// The split.
        split: String,
        /// The competing files.
        files: Vec<String>,
    },
    /// Shard files `<split>-NNNNN-of-MMMMM` that do not make a complete set.
    #[error("{dir}: split {split:?} expects {expected} shards, found {found}", dir = dir.display(), found = List(found))]
    IncompleteShards {
        /// The directory.
        dir: PathBuf,
        /// The split.
        split: String,
        /// The shard count their names announce.
        expected: usize,
        /// The shard files found.
        found: Vec<String>,
    },
}

impl TableError {
    pub(crate) fn io(action: &'static str, path: &std::path::Path, source: std::io::Error) -> Self {
        if source.kind() == std::io::ErrorKind::NotFound {
            return TableError::NotFound {
                path: path.to_path_buf(),
            };
        }
        TableError::Io {
            action,
            path: path.to_path_buf(),
            source,
        }
    }
}

/// `err` as the CLI prints it: its message, then each source whose text is not already in it
/// (tests: a message must say the file and the parser's words once, whoever prints the chain).
#[cfg(test)]
pub(crate) fn said_once(err: &TableError) -> String {
    let mut out = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_name_file_row_and_line() {
        let at = Location {
            path: "d/a.csv".into(),
            row: 3,
            line: Some(5),
        };
        assert_eq!(at.to_string(), "d/a.csv, row 3 (line 5)");
        let at = Location { line: None, ..at };
        assert_eq!(at.to_string(), "d/a.csv, row 3");
        let first = Location {
            row: 0,
            line: Some(2),
            ..at.clone()
        };
        assert_eq!(Also(&at, &first).to_string(), "row 0 (line 2)");
        let other = Location {
            path: "d/b.csv".into(),
            ..first
        };
        assert_eq!(Also(&at, &other).to_string(), "d/b.csv, row 0 (line 2)");
        assert_eq!(List(&["a".into(), "b".into()]).to_string(), r#""a", "b""#);
        assert_eq!(List(&[]).to_string(), "none");
    }
}

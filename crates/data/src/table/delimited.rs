//! CSV and TSV through the `csv` crate: RFC 4180 quoting (doubled quotes, delimiters and newlines
//! inside quoted fields; also in TSV, as `pandas` reads it), a UTF-8 byte-order mark skipped, every
//! row required to have the first row's number of fields. The header row is optional (see
//! [`super::TableSpec::header`]); labels are integers when every cell parses as one, else strings.

use std::path::Path;

use super::error::{Location, Result, TableError};
use super::raw::{
    Format, KindCheck, RawLabel, RawRow, RawTable, TableSpec, join_text, looks_like_header, resolve,
};

/// The field delimiter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Delimiter {
    /// `,` (CSV).
    Comma,
    /// Tab (TSV).
    Tab,
}

impl Delimiter {
    fn byte(self) -> u8 {
        match self {
            Delimiter::Comma => b',',
            Delimiter::Tab => b'\t',
        }
    }

    fn format(self) -> Format {
        match self {
            Delimiter::Comma => Format::Csv,
            Delimiter::Tab => Format::Tsv,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Delimiter::Comma => "CSV",
            Delimiter::Tab => "TSV",
        }
    }
}

/// Line numbers as an editor shows them: `\n`, `\r\n` or a lone `\r` ends a line. The csv
/// reader's own count is off in files with CRLF or CR line ends (its position of a record is
/// taken before it skips the `\n` of the CRLF before it, and it counts `\n` only), so lines
/// are counted here from the byte where the reader says a record starts.
struct Lines<'a> {
    bytes: &'a [u8],
    /// Bytes before this have been counted...
    at: usize,
    /// ...and this is the line `at` is on.
    line: u64,
}

impl<'a> Lines<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Lines {
            bytes,
            at: 0,
            line: 1,
        }
    }

    /// The 1-based line of the record the reader says starts at byte `start` (line ends there
    /// are the ones the reader skips before a record: the `\n` of a CRLF, blank lines).
    fn of(&mut self, start: u64) -> u64 {
        let mut start = usize::try_from(start)
            .unwrap_or(usize::MAX)
            .min(self.bytes.len());
        while self
            .bytes
            .get(start)
            .is_some_and(|b| matches!(b, b'\r' | b'\n'))
        {
            start += 1;
        }
        if start < self.at {
            // Records come in order; an error's position could come from before: count anew.
            (self.at, self.line) = (0, 1);
        }
        for i in self.at..start {
            let ends_line = match self.bytes[i] {
                b'\n' => true,
                b'\r' => self.bytes.get(i + 1) != Some(&b'\n'),
                _ => false,
            };
            self.line += u64::from(ends_line);
        }
        self.at = start;
        self.line
    }
}

/// The reader's error as ours: its position as line and data row, its reason in words.
fn csv_error(
    path: &Path,
    delimiter: Delimiter,
    header: bool,
    lines: &mut Lines<'_>,
    e: csv::Error,
) -> TableError {
    let position = e.position().cloned();
    let line = position.as_ref().map(|p| lines.of(p.byte()));
    let row = position
        .as_ref()
        .and_then(|p| usize::try_from(p.record()).ok())
        .map(|record| record.saturating_sub(usize::from(header)));
    let reason = match e.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => format!("found {len} fields, expected {expected_len} as in the first row"),
        csv::ErrorKind::Utf8 { err, .. } => format!(
            "field {} is not valid UTF-8 (at byte {} of the field)",
            err.field() + 1,
            err.valid_up_to()
        ),
        csv::ErrorKind::Io(_) => match e.into_kind() {
            csv::ErrorKind::Io(source) => return TableError::io("read", path, source),
            other => format!("{other:?}"),
        },
        // The reader's own message names the record, line and byte: said once, above.
        csv::ErrorKind::Deserialize { err, .. } => err.to_string(),
        _ => e.to_string(),
    };
    TableError::Csv {
        path: path.to_path_buf(),
        line,
        row,
        format: delimiter.name(),
        reason,
    }
}

/// A label cell: an integer, else (if it is not a float) a string.
pub(crate) fn parse_label(cell: &str, at: impl Fn() -> Location, column: &str) -> Result<RawLabel> {
    let t = cell.trim();
    if t.is_empty() {
        return Err(TableError::MissingValue {
            at: Box::new(at()),
            column: column.to_owned(),
            expected: "a class id or name",
        });
    }
    if let Ok(i) = t.parse::<i64>() {
        return Ok(RawLabel::Int(i));
    }
    // "nan" or "inf" are names here, "1.5" and "2e3" are numbers.
    if t.bytes().any(|b| b.is_ascii_digit()) && t.parse::<f64>().is_ok() {
        let integral = t
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b'-' || b == b'+');
        return Err(if integral {
            TableError::InvalidLabel {
                at: Box::new(at()),
                column: column.to_owned(),
                value: t.to_owned(),
                reason: "an integer too large for a class id",
            }
        } else {
            TableError::FloatLabel {
                at: Box::new(at()),
                column: column.to_owned(),
                value: t.to_owned(),
            }
        });
    }
    Ok(RawLabel::Str(t.to_owned()))
}

pub(crate) fn read(path: &Path, spec: &TableSpec, delimiter: Delimiter) -> Result<RawTable> {
    // Whole, as the rows' text will be: lines are counted on the bytes (see `Lines`).
    let bytes = std::fs::read(path).map_err(|e| TableError::io("read", path, e))?;
    let mut lines = Lines::new(&bytes);
    let mut records = csv::ReaderBuilder::new()
        .delimiter(delimiter.byte())
        .has_headers(false)
        .flexible(false)
        .from_reader(bytes.as_slice())
        .into_records();
    let Some(first) = records.next() else {
        return Err(TableError::EmptyTable {
            path: path.to_path_buf(),
            hint: "",
        });
    };
    let first = first.map_err(|e| csv_error(path, delimiter, false, &mut lines, e))?;
    let cells: Vec<String> = first.iter().map(str::to_owned).collect();
    let header = spec
        .header
        .unwrap_or_else(|| looks_like_header(&cells, spec));
    let columns: Vec<String> = if header {
        first.iter().map(|c| c.trim().to_owned()).collect()
    } else {
        (1..=first.len()).map(|i| i.to_string()).collect()
    };
    let resolved = resolve(path, &columns, spec, (!header).then_some(cells.as_slice()))?;
    let text_columns = resolved.text_names(&columns);
    let label_column = columns[resolved.label].clone();
    let header_guessed = spec.header.is_none() && !header;

    let mut rows = Vec::new();
    let mut kinds = KindCheck::default();
    let mut add = |record: &csv::StringRecord, row: usize, line: Option<u64>| -> Result<()> {
        let at = || Location {
            path: path.to_path_buf(),
            row,
            line,
        };
        // `flexible(false)` made every record as long as the first, so every index is present.
        let text = join_text(
            resolved.text.iter().map(|&i| record.get(i).unwrap_or("")),
            &spec.text_separator,
            at,
            || text_columns.clone(),
        )?;
        let label = parse_label(record.get(resolved.label).unwrap_or(""), at, &label_column)?;
        kinds.check(&label, at, &label_column, header_guessed)?;
        rows.push(RawRow {
            row,
            line,
            text,
            label,
        });
        Ok(())
    };
    let mut row = 0;
    if !header {
        let line = first.position().map(|p| lines.of(p.byte()));
        add(&first, row, line)?;
        row += 1;
    }
    for record in records {
        let record = record.map_err(|e| csv_error(path, delimiter, header, &mut lines, e))?;
        let line = record.position().map(|p| lines.of(p.byte()));
        add(&record, row, line)?;
        row += 1;
    }
    Ok(RawTable {
        path: path.to_path_buf(),
        format: delimiter.format(),
        columns,
        text_columns,
        label_column,
        header,
        rows,
        class_names: None,
    })
}

#[cfg(test)]
mod tests {
    use super::super::raw::Column;
    use super::*;

    fn write(dir: &tempfile::TempDir, name: &str, body: &str) -> std::path::PathBuf {
        let p = dir.path().join(name);
        std::fs::write(&p, body).unwrap();
        p
    }

    fn labels(t: &RawTable) -> Vec<RawLabel> {
        t.rows.iter().map(|r| r.label.clone()).collect()
    }

    #[test]
    fn headerless_csv_with_quotes_and_newlines_reads_by_position() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            &dir,
            "news.csv",
            "\"3\",\"Fears for pension\",\"Unions say \"\"no\"\"\"\n\
             \"1\",\"Two\nlines\",\"a, b\\nc\"\n\
             4,plain,\"d\"\n",
        );
        let spec = TableSpec {
            text: Column::parse_list("2,3").unwrap(),
            label: Some(Column::Index(1)),
            ..TableSpec::default()
        };
        let t = read(&p, &spec, Delimiter::Comma).unwrap();
        assert!(!t.header);
        assert_eq!(t.format, Format::Csv);
        assert_eq!(t.columns, ["1", "2", "3"]);
        assert_eq!(t.text_columns, ["2", "3"]);
        assert_eq!(t.label_column, "1");
        assert_eq!(
            labels(&t),
            [RawLabel::Int(3), RawLabel::Int(1), RawLabel::Int(4)]
        );
        assert_eq!(t.rows[0].text, "Fears for pension Unions say \"no\"");
        // A quoted newline stays; a backslash-n escape stays as written.
        assert_eq!(t.rows[1].text, "Two\nlines a, b\\nc");
        assert_eq!(
            t.rows.iter().map(|r| (r.row, r.line)).collect::<Vec<_>>(),
            [(0, Some(1)), (1, Some(2)), (2, Some(4))]
        );
    }

    #[test]
    fn tsv_with_a_header_and_string_labels() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            &dir,
            "t.tsv",
            "\u{feff}id\tSentence\tlabel\n7\tgood film\tpos\n8\tbad film\t neg \n",
        );
        let t = read(&p, &TableSpec::default(), Delimiter::Tab).unwrap();
        assert!(t.header);
        assert_eq!(t.columns, ["id", "Sentence", "label"]);
        assert_eq!(t.text_columns, ["Sentence"]);
        assert_eq!(
            labels(&t),
            [RawLabel::Str("pos".into()), RawLabel::Str("neg".into())]
        );
        assert_eq!((t.rows[1].row, t.rows[1].line), (1, Some(3)));
    }

    #[test]
    fn header_can_be_forced_either_way() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(&dir, "h.csv", "words,y\nhello,a\nbye,b\n");
        let spec = TableSpec {
            text: vec![Column::Name("words".into())],
            label: Some(Column::Name("y".into())),
            ..TableSpec::default()
        };
        // Detected: "words" is asked for.
        assert_eq!(read(&p, &spec, Delimiter::Comma).unwrap().rows.len(), 2);
        let spec = TableSpec {
            text: vec![Column::Index(1)],
            label: Some(Column::Index(2)),
            header: Some(true),
            ..TableSpec::default()
        };
        assert_eq!(read(&p, &spec, Delimiter::Comma).unwrap().rows.len(), 2);
        let spec = TableSpec {
            header: Some(false),
            ..spec
        };
        let t = read(&p, &spec, Delimiter::Comma).unwrap();
        assert_eq!(t.rows.len(), 3);
        assert_eq!(t.rows[0].label, RawLabel::Str("y".into()));
    }

    #[test]
    fn an_undetected_header_is_suggested_by_the_mixed_label_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(&dir, "h.csv", "category,headline\n1,a\n2,b\n");
        let spec = TableSpec {
            text: vec![Column::Index(2)],
            label: Some(Column::Index(1)),
            ..TableSpec::default()
        };
        let err = read(&p, &spec, Delimiter::Comma).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, TableError::MixedLabels { .. }), "{msg}");
        assert!(msg.contains("h.csv, row 1 (line 2)"), "{msg}");
        assert!(msg.contains("header row"), "{msg}");
    }

    #[test]
    fn a_row_with_another_number_of_fields_names_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(&dir, "bad.csv", "text,label\n\"a\nb\",1\nc,2,extra\n");
        let err = read(&p, &TableSpec::default(), Delimiter::Comma).unwrap_err();
        let msg = err.to_string();
        assert!(
            matches!(
                err,
                TableError::Csv {
                    line: Some(4),
                    row: Some(1),
                    ..
                }
            ),
            "{msg}"
        );
        assert!(
            msg.starts_with(&format!(
                "{}, line 4 (row 1): malformed CSV: found 3 fields, expected 2",
                p.display()
            )),
            "{msg}"
        );
    }

    #[test]
    fn reader_errors_say_the_file_and_the_position_once() {
        let dir = tempfile::tempdir().unwrap();
        let cases: [(&str, &[u8], Delimiter, &str); 3] = [
            (
                "n.csv",
                b"text,label\na,1\nb,2,3\n",
                Delimiter::Comma,
                "line 3 (row 1): malformed CSV: found 3 fields, expected 2 as in the first row",
            ),
            (
                "u.tsv",
                b"text\tlabel\nok\t1\nbad \xff\t2\n",
                Delimiter::Tab,
                "line 3 (row 1): malformed TSV: field 1 is not valid UTF-8 (at byte 4 of the field)",
            ),
            // Headerless: the first record is row 0.
            (
                "h.csv",
                b"\"1\",\"a\",\"b\"\n\"2\",\"c\"\n",
                Delimiter::Comma,
                "line 2 (row 1): malformed CSV: found 2 fields, expected 3 as in the first row",
            ),
        ];
        let spec = TableSpec {
            header: Some(true),
            ..TableSpec::default()
        };
        for (name, body, delimiter, want) in cases {
            let p = dir.path().join(name);
            std::fs::write(&p, body).unwrap();
            let spec = if name == "h.csv" {
                TableSpec {
                    text: Column::parse_list("2,3").unwrap(),
                    label: Some(Column::Index(1)),
                    header: Some(false),
                    ..TableSpec::default()
                }
            } else {
                spec.clone()
            };
            let err = read(&p, &spec, delimiter).unwrap_err();
            let msg = super::super::error::said_once(&err);
            assert_eq!(msg, format!("{}, {want}", p.display()));
            assert_eq!(msg.matches(name).count(), 1, "{msg}");
            assert_eq!(msg.matches("line").count(), 1, "{msg}");
            assert!(!msg.contains("record") && !msg.contains("byte:"), "{msg}");
        }
    }

    #[test]
    fn lines_are_counted_as_editors_do_whatever_the_line_ends() {
        let dir = tempfile::tempdir().unwrap();
        for (i, end) in ["\n", "\r\n", "\r"].into_iter().enumerate() {
            let body = format!("\u{feff}text,label{end}\"a{end}b\",1{end}{end}c,0{end}d,x{end}");
            let p = write(&dir, &format!("l{i}.csv"), &body);
            let t = read(
                &p,
                &TableSpec {
                    header: Some(true),
                    ..TableSpec::default()
                },
                Delimiter::Comma,
            );
            let msg = t.unwrap_err().to_string();
            // Row 2 ("d,x") is on line 6: the header, a two-line row, a blank line, "c,0".
            assert!(
                msg.contains("row 2 (line 6), column \"label\": label \"x\" is a string"),
                "{end:?}: {msg}"
            );
            let body = format!("text,label{end}a,1{end}{end}b,0,9{end}");
            let p = write(&dir, &format!("e{i}.csv"), &body);
            let msg = read(&p, &TableSpec::default(), Delimiter::Comma)
                .unwrap_err()
                .to_string();
            assert!(
                msg.contains("line 4 (row 1): malformed CSV"),
                "{end:?}: {msg}"
            );
        }
    }

    #[test]
    fn invalid_utf8_names_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("u.csv");
        std::fs::write(&p, b"text,label\nok,1\nbad \xff,2\n").unwrap();
        let err = read(&p, &TableSpec::default(), Delimiter::Comma).unwrap_err();
        assert!(
            matches!(err, TableError::Csv { line: Some(3), .. }),
            "{err}"
        );
        assert!(err.to_string().contains("not valid UTF-8"), "{err}");
    }

    #[test]
    fn bad_values_name_file_row_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let cases = [
            (
                "text,label\na,1\n  ,1\n",
                "row 1 (line 3), column \"text\": the text is empty",
            ),
            (
                "text,label\na,1\nb,\n",
                "row 1 (line 3), column \"label\": missing value",
            ),
            (
                "text,label\na,1\nb,0.5\n",
                "row 1 (line 3), column \"label\": label 0.5 is a floating-point",
            ),
            (
                "text,label\na,1\nb,x\n",
                "row 1 (line 3), column \"label\": label \"x\" is a string, but the labels before it are integers (first at",
            ),
            (
                "text,label\na,99999999999999999999\n",
                "row 0 (line 2), column \"label\": label 99999999999999999999 is not a class id",
            ),
        ];
        for (i, (body, want)) in cases.into_iter().enumerate() {
            let p = write(&dir, &format!("c{i}.csv"), body);
            let err = read(&p, &TableSpec::default(), Delimiter::Comma).unwrap_err();
            let msg = err.to_string();
            assert!(msg.starts_with(&p.display().to_string()), "{msg}");
            assert!(msg.contains(want), "{body:?}: {msg}");
        }
    }

    #[test]
    fn labels_that_look_like_numbers_but_are_names_stay_strings() {
        let at = || Location {
            path: "f".into(),
            row: 0,
            line: None,
        };
        assert_eq!(parse_label(" 3 ", at, "l").unwrap(), RawLabel::Int(3));
        assert_eq!(parse_label("-1", at, "l").unwrap(), RawLabel::Int(-1));
        for name in ["nan", "inf", "4 stars"] {
            assert_eq!(
                parse_label(name, at, "l").unwrap(),
                RawLabel::Str(name.into())
            );
        }
        assert!(matches!(
            parse_label("1e3", at, "l"),
            Err(TableError::FloatLabel { .. })
        ));
    }
}

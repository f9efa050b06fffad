//! JSON Lines: one JSON object per line, parsed by `serde_json` line by line (blank lines are
//! skipped). Columns are the first object's keys in file order, so positions count as in the file.
//! Text values must be strings; labels integers or strings (never floats or booleans).

use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use serde::Deserialize;
use serde::de::{self, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use super::error::{Location, Result, TableError};
use super::raw::{Format, KindCheck, RawLabel, RawRow, RawTable, TableSpec, join_text, resolve};

/// One line: an object with its keys in file order, or the kind of the non-object it was.
enum Line {
    Object(Vec<(String, Value)>),
    Other(&'static str),
}

impl<'de> Deserialize<'de> for Line {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> std::result::Result<Line, D::Error> {
        struct LineVisitor;
        impl<'de> Visitor<'de> for LineVisitor {
            type Value = Line;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<Line, A::Error> {
                let mut fields = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, Value>()? {
                    fields.push((k, v));
                }
                Ok(Line::Object(fields))
            }
            fn visit_seq<A: SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> std::result::Result<Line, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Line::Other("an array"))
            }
            fn visit_bool<E>(self, _: bool) -> std::result::Result<Line, E> {
                Ok(Line::Other("a boolean"))
            }
            fn visit_i64<E>(self, _: i64) -> std::result::Result<Line, E> {
                Ok(Line::Other("a number"))
            }
            fn visit_u64<E>(self, _: u64) -> std::result::Result<Line, E> {
                Ok(Line::Other("a number"))
            }
            fn visit_f64<E>(self, _: f64) -> std::result::Result<Line, E> {
                Ok(Line::Other("a number"))
            }
            fn visit_str<E>(self, _: &str) -> std::result::Result<Line, E> {
                Ok(Line::Other("a string"))
            }
            fn visit_unit<E>(self) -> std::result::Result<Line, E> {
                Ok(Line::Other("null"))
            }
        }
        d.deserialize_any(LineVisitor)
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The value of `key` (the last one, if repeated, as `serde_json::Value` would keep).
fn get<'a>(fields: &'a [(String, Value)], key: &str) -> Option<&'a Value> {
    fields.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v)
}

/// The parser's error as ours: its position (within the line it was given) as the file's
/// line and column, its message without the " at line L column C" it ends with.
fn json_error(path: &Path, line: u64, e: &serde_json::Error) -> TableError {
    let message = e.to_string();
    if e.line() == 0 {
        // No position (not a syntax or data error of the text).
        return TableError::Json {
            path: path.to_path_buf(),
            line,
            column: None,
            reason: message,
        };
    }
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    let reason = message
        .strip_suffix(&suffix)
        .map_or_else(|| message.clone(), str::to_owned);
    TableError::Json {
        path: path.to_path_buf(),
        // The line handed to the parser has no newline, so its line is 1; count on anyway.
        line: line.saturating_add(e.line() as u64 - 1),
        column: (e.column() > 0).then_some(e.column() as u64),
        reason,
    }
}

fn label_of(v: Option<&Value>, at: impl Fn() -> Location, column: &str) -> Result<RawLabel> {
    let invalid = |value: &Value, reason| TableError::InvalidLabel {
        at: Box::new(at()),
        column: column.to_owned(),
        value: value.to_string(),
        reason,
    };
    match v {
        None | Some(Value::Null) => Err(TableError::MissingValue {
            at: Box::new(at()),
            column: column.to_owned(),
            expected: "a class id or name",
        }),
        Some(Value::String(s)) if s.trim().is_empty() => Err(TableError::MissingValue {
            at: Box::new(at()),
            column: column.to_owned(),
            expected: "a class id or name",
        }),
        Some(Value::String(s)) => Ok(RawLabel::Str(s.clone())),
        Some(v @ Value::Number(n)) => {
            if let Some(i) = n.as_i64() {
                Ok(RawLabel::Int(i))
            } else if n.is_u64() {
                Err(invalid(v, "an integer too large for a class id"))
            } else {
                Err(TableError::FloatLabel {
                    at: Box::new(at()),
                    column: column.to_owned(),
                    value: n.to_string(),
                })
            }
        }
        Some(v @ Value::Bool(_)) => Err(invalid(v, "a boolean; expected an integer or a string")),
        Some(v) => Err(invalid(v, "expected an integer or a string")),
    }
}

pub(crate) fn read(path: &Path, spec: &TableSpec) -> Result<RawTable> {
    let file = File::open(path).map_err(|e| TableError::io("open", path, e))?;
    let mut reader = BufReader::new(file);
    let mut buf = Vec::new();
    let mut line_no = 0u64;
    // Set from the first object: every column, the text columns, the label column.
    let mut layout: Option<(Vec<String>, Vec<String>, String)> = None;
    let mut rows = Vec::new();
    let mut kinds = KindCheck::default();
    loop {
        buf.clear();
        let n = reader
            .read_until(b'\n', &mut buf)
            .map_err(|e| TableError::io("read", path, e))?;
        if n == 0 {
            break;
        }
        line_no += 1;
        if buf.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        // Without its line end: the parser's position is then on this line (an object cut
        // short ends at its last byte, not at "line 2 column 0").
        let end = buf.len() - usize::from(buf.ends_with(b"\n"));
        let end = end - usize::from(buf[..end].ends_with(b"\r"));
        let fields = match serde_json::from_slice::<Line>(&buf[..end]) {
            Ok(Line::Object(fields)) => fields,
            Ok(Line::Other(found)) => {
                return Err(TableError::NotAnObject {
                    path: path.to_path_buf(),
                    line: line_no,
                    found,
                });
            }
            Err(e) => return Err(json_error(path, line_no, &e)),
        };
        let (columns, text_columns, label_column) = match layout.take() {
            Some(l) => l,
            None => {
                let columns: Vec<String> = fields.iter().map(|(k, _)| k.clone()).collect();
                let resolved = resolve(path, &columns, spec, None)?;
                let text_columns = resolved.text_names(&columns);
                let label_column = columns[resolved.label].clone();
                (columns, text_columns, label_column)
            }
        };
        let row = rows.len();
        let at = || Location {
            path: path.to_path_buf(),
            row,
            line: Some(line_no),
        };
        let mut pieces = Vec::with_capacity(text_columns.len());
        for column in &text_columns {
            match get(&fields, column) {
                Some(Value::String(s)) => pieces.push(s.as_str()),
                None | Some(Value::Null) => {
                    return Err(TableError::MissingValue {
                        at: Box::new(at()),
                        column: column.clone(),
                        expected: "a text",
                    });
                }
                Some(v) => {
                    return Err(TableError::NotText {
                        at: Box::new(at()),
                        column: column.clone(),
                        found: kind(v),
                    });
                }
            }
        }
        let text = join_text(pieces, &spec.text_separator, at, || text_columns.clone())?;
        let label = label_of(get(&fields, &label_column), at, &label_column)?;
        kinds.check(&label, at, &label_column, false)?;
        rows.push(RawRow {
            row,
            line: Some(line_no),
            text,
            label,
        });
        layout = Some((columns, text_columns, label_column));
    }
    let Some((columns, text_columns, label_column)) = layout else {
        return Err(TableError::EmptyTable {
            path: path.to_path_buf(),
            hint: "",
        });
    };
    Ok(RawTable {
        path: path.to_path_buf(),
        format: Format::JsonLines,
        columns,
        text_columns,
        label_column,
        header: true,
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

    #[test]
    fn objects_keep_key_order_and_blank_lines_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            &dir,
            "a.jsonl",
            "{\"z\": 1, \"title\": \"A\", \"body\": \"b\", \"label\": \"x\"}\n\n\
             {\"label\": \"y\", \"body\": \"d\\ne\", \"title\": \"C\", \"z\": 2}\r\n",
        );
        let spec = TableSpec {
            text: Column::parse_list("2,3").unwrap(),
            text_separator: " | ".into(),
            ..TableSpec::default()
        };
        let t = read(&p, &spec).unwrap();
        assert_eq!(t.columns, ["z", "title", "body", "label"]);
        assert_eq!(t.text_columns, ["title", "body"]);
        assert_eq!(t.label_column, "label");
        assert_eq!(t.rows[0].text, "A | b");
        assert_eq!(t.rows[1].text, "C | d\ne");
        assert_eq!(t.rows[1].label, RawLabel::Str("y".into()));
        assert_eq!((t.rows[1].row, t.rows[1].line), (1, Some(3)));
    }

    #[test]
    fn malformed_json_names_the_file_its_line_and_column_once() {
        let dir = tempfile::tempdir().unwrap();
        let ok = "{\"text\": \"a\", \"label\": 1}\n";
        let cases = [
            // The parser's "at line 1 column 15" counts in the line: it becomes line 2, column 15.
            (
                format!("{ok}{{\"text\": \"b\", 3: 1}}\n"),
                "line 2, column 15: malformed JSON: key must be a string",
            ),
            // Cut short: the end of its own line, not "line 2 column 0" (the newline), with
            // CRLF line ends too.
            (
                format!("{ok}\r\n{{\"text\": \"b\", \"label\": 1\r\n{ok}"),
                "line 3, column 24: malformed JSON: EOF while parsing an object",
            ),
            (
                format!("{ok}{{\"text\": \"b\x01\", \"label\": 1}}\n"),
                "line 2, column 12: malformed JSON: control character (\\u0000-\\u001F) found while parsing a string",
            ),
        ];
        for (i, (body, want)) in cases.into_iter().enumerate() {
            let p = write(&dir, &format!("m{i}.jsonl"), &body);
            let err = read(&p, &TableSpec::default()).unwrap_err();
            assert!(matches!(err, TableError::Json { .. }), "{err}");
            let msg = super::super::error::said_once(&err);
            assert_eq!(msg, format!("{}, {want}", p.display()));
            assert_eq!(msg.matches(&*p.display().to_string()).count(), 1, "{msg}");
            assert_eq!(msg.matches("line").count(), 1, "{msg}");
            assert_eq!(msg.matches("column").count(), 1, "{msg}");
        }
    }

    #[test]
    fn bad_lines_and_values_name_file_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let ok = "{\"text\": \"a\", \"label\": 1}\n";
        let cases = [
            (
                "{\"text\": \"a\", \"label\": 1\n",
                "line 1, column 24: malformed JSON: EOF while parsing an object",
            ),
            (
                "[1, 2]\n",
                "line 1: expected a JSON object per line, found an array",
            ),
            (
                "{\"text\": \"a\"}\n",
                "cannot tell which column holds the label",
            ),
            (
                "{\"text\": \"a\", \"label\": null}",
                "row 1 (line 2), column \"label\": missing value",
            ),
            (
                "{\"label\": 1}",
                "row 1 (line 2), column \"text\": missing value",
            ),
            (
                "{\"text\": 5, \"label\": 1}",
                "row 1 (line 2), column \"text\": expected a string, found a number",
            ),
            (
                "{\"text\": \" \", \"label\": 1}",
                "row 1 (line 2), column \"text\": the text is empty",
            ),
            (
                "{\"text\": \"a\", \"label\": 1.0}",
                "label 1.0 is a floating-point number",
            ),
            (
                "{\"text\": \"a\", \"label\": true}",
                "label true is not a class id or name: a boolean",
            ),
            (
                "{\"text\": \"a\", \"label\": \"pos\"}",
                "label \"pos\" is a string, but the labels before it are integers",
            ),
            (
                "{\"text\": \"a\", \"label\": 18446744073709551615}",
                "too large",
            ),
        ];
        for (i, (line, want)) in cases.into_iter().enumerate() {
            // The first case breaks the first line; the others follow a good one.
            let body = if i < 3 {
                line.to_owned()
            } else {
                format!("{ok}{line}")
            };
            let p = write(&dir, &format!("c{i}.jsonl"), &body);
            let err = read(&p, &TableSpec::default()).unwrap_err();
            let msg = err.to_string();
            assert!(msg.starts_with(&p.display().to_string()), "{msg}");
            assert!(msg.contains(want), "{line}: {msg}");
        }
        let p = write(&dir, "empty.jsonl", "\n \n");
        assert!(matches!(
            read(&p, &TableSpec::default()),
            Err(TableError::EmptyTable { .. })
        ));
    }
}

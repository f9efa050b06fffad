//! Parquet through the `parquet` crate's arrow reader: only the text and label columns are
//! decoded; text may be any arrow string type, labels any integer or string type. The Hub's
//! `ClassLabel` names are read from the `huggingface` key of the file's metadata.
//!
//! As in [`crate::reader`], the footer is checked before it sizes anything (row counts agree,
//! column chunks lie inside the file) and a panic of the parquet library on a damaged file is
//! caught and reported.

use std::fs::File;
use std::path::Path;

use arrow_schema::DataType;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::file::metadata::ParquetMetaData;

use super::arrow::{catch_parquet, chunk_outside_file, labels_of, text_accessor};
use super::error::{Location, Result, TableError};
use super::names::{ClassNames, NameSource};
use super::raw::{Format, KindCheck, RawLabel, RawRow, RawTable, TableSpec, join_text, resolve};
use super::thrift::{check_pages, check_struct};

/// Rows per decoded batch.
const BATCH_ROWS: usize = 4096;
/// The metadata key under which the Hub's `datasets` library stores the features.
const HF_METADATA_KEY: &str = "huggingface";
const TEXT_TYPES: &str = "a string type (utf8, large_utf8 or utf8_view)";
const LABEL_TYPES: &str = "an integer or string type";

/// Runs a parquet library call, turning its panic into [`TableError::DamagedParquet`].
fn guard<T>(path: &Path, call: impl FnOnce() -> T) -> Result<T> {
    catch_parquet(call).map_err(|message| TableError::DamagedParquet {
        path: path.to_path_buf(),
        reason: format!("the parquet library failed: {message}"),
    })
}

/// The footer's Thrift bytes: `<footer> <length: u32 LE> PAR1` at the end of a plain
/// (unencrypted) parquet file; `None` when the file does not end that way (parquet says why).
fn footer_bytes(bytes: &[u8]) -> Option<&[u8]> {
    let n = bytes.len();
    if n < 12 || &bytes[n - 4..] != b"PAR1" {
        return None;
    }
    let len = u32::from_le_bytes(bytes[n - 8..n - 4].try_into().ok()?) as usize;
    bytes.get(n.checked_sub(8 + len)?..n - 8)
}

/// The footer's claims that could size allocations or seeks must hold.
fn check_footer(path: &Path, len: u64, metadata: &ParquetMetaData) -> Result<()> {
    let damaged = |reason: String| TableError::DamagedParquet {
        path: path.to_path_buf(),
        reason,
    };
    let declared = metadata.file_metadata().num_rows();
    let in_groups = metadata
        .row_groups()
        .iter()
        .try_fold(0i64, |sum, g| sum.checked_add(g.num_rows()));
    if in_groups != Some(declared) {
        return Err(damaged(format!(
            "the footer declares {declared} rows, its row groups {}",
            in_groups.map_or_else(|| "overflow".to_owned(), |n| n.to_string())
        )));
    }
    match chunk_outside_file(len, metadata) {
        None => Ok(()),
        Some(c) => Err(damaged(format!(
            "row group {}, column {:?}: data at bytes {}..+{}, outside the file's {len} bytes",
            c.row_group, c.column, c.start, c.size
        ))),
    }
}

/// The `ClassLabel` names of `column` in the `huggingface` metadata, shaped
/// `{"info": {"features": {"<column>": {"_type": "ClassLabel", "names": [...]}}}}`.
/// Unreadable metadata is logged and ignored: it is advice, the labels are the data.
pub(crate) fn class_label_names(
    path: &Path,
    metadata: Option<&str>,
    column: &str,
) -> Option<ClassNames> {
    let value: serde_json::Value = match serde_json::from_str(metadata?) {
        Ok(v) => v,
        Err(e) => {
            tracing::warn!(path = %path.display(), "ignoring unreadable {HF_METADATA_KEY} metadata: {e}");
            return None;
        }
    };
    let feature = value.get("info")?.get("features")?.get(column)?;
    if feature.get("_type")?.as_str()? != "ClassLabel" {
        return None;
    }
    let names: Option<Vec<String>> = feature
        .get("names")?
        .as_array()?
        .iter()
        .map(|n| n.as_str().map(str::to_owned))
        .collect();
    match ClassNames::new(names?, NameSource::ClassLabel(path.to_path_buf())) {
        Ok(names) => Some(names),
        Err(e) => {
            tracing::warn!("ignoring ClassLabel names: {e}");
            None
        }
    }
}

fn is_string(t: &DataType) -> bool {
    matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
}

pub(crate) fn read(path: &Path, spec: &TableSpec) -> Result<RawTable> {
    let mut file = File::open(path).map_err(|e| TableError::io("open", path, e))?;
    let len = file
        .metadata()
        .map_err(|e| TableError::io("stat", path, e))?
        .len();
    if len == 0 {
        return Err(TableError::EmptyTable {
            path: path.to_path_buf(),
            hint: " (the file has 0 bytes)",
        });
    }
    let pq = |source| TableError::Parquet {
        path: path.to_path_buf(),
        source,
    };
    // Read whole, as crate::reader does: page sizes claimed by headers are then checked
    // against the bytes there are, not allocated first.
    let bytes = {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut file, &mut buf)
            .map_err(|e| TableError::io("read", path, e))?;
        bytes::Bytes::from(buf)
    };
    let damaged = |reason: String| TableError::DamagedParquet {
        path: path.to_path_buf(),
        reason,
    };
    // The footer's Thrift first: parquet would spin on some damage (see `thrift.rs`).
    if let Some(footer) = footer_bytes(&bytes) {
        check_struct(footer).map_err(|why| damaged(format!("footer: {why}")))?;
    }
    let builder = guard(path, || {
        ParquetRecordBatchReaderBuilder::try_new(bytes.clone())
    })?
    .map_err(pq)?;
    check_footer(path, len, builder.metadata())?;
    // Then every page header, before the reader decodes one.
    for (g, group) in builder.metadata().row_groups().iter().enumerate() {
        for column in group.columns() {
            let start = column
                .dictionary_page_offset()
                .unwrap_or_else(|| column.data_page_offset());
            // In the file: check_footer said so.
            let (start, size) = (
                usize::try_from(start).unwrap_or(0),
                usize::try_from(column.compressed_size()).unwrap_or(0),
            );
            check_pages(&bytes, start, start.saturating_add(size)).map_err(|why| {
                damaged(format!(
                    "row group {g}, column {:?}: {why}",
                    column.column_path().string()
                ))
            })?;
        }
    }
    let schema = builder.schema().clone();
    let columns: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
    let resolved = resolve(path, &columns, spec, None)?;
    let text_columns = resolved.text_names(&columns);
    let label_column = columns[resolved.label].clone();
    for &i in &resolved.text {
        let t = schema.field(i).data_type();
        if !is_string(t) {
            return Err(TableError::WrongColumnType {
                path: path.to_path_buf(),
                column: columns[i].clone(),
                expected: TEXT_TYPES,
                found: t.to_string(),
            });
        }
    }
    let label_type = schema.field(resolved.label).data_type();
    if label_type.is_floating()
        || matches!(
            label_type,
            DataType::Decimal128(..) | DataType::Decimal256(..)
        )
    {
        return Err(TableError::FloatLabelColumn {
            path: path.to_path_buf(),
            column: label_column,
            found: label_type.to_string(),
        });
    }
    if !label_type.is_integer() && !is_string(label_type) {
        return Err(TableError::WrongColumnType {
            path: path.to_path_buf(),
            column: label_column,
            expected: LABEL_TYPES,
            found: label_type.to_string(),
        });
    }
    let hf = builder
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .and_then(|kv| kv.iter().find(|k| k.key == HF_METADATA_KEY))
        .and_then(|k| k.value.as_deref())
        .or_else(|| schema.metadata().get(HF_METADATA_KEY).map(String::as_str));
    let class_names = class_label_names(path, hf, &label_column);

    // Projected batches hold the chosen root columns in schema order.
    let mut needed: Vec<usize> = resolved
        .text
        .iter()
        .copied()
        .chain([resolved.label])
        .collect();
    needed.sort_unstable();
    needed.dedup();
    let at_batch = |i: usize| needed.binary_search(&i).unwrap_or(0);
    let mask = ProjectionMask::roots(builder.parquet_schema(), needed.iter().copied());
    let mut batches = guard(path, || {
        builder
            .with_projection(mask)
            .with_batch_size(BATCH_ROWS)
            .build()
    })?
    .map_err(pq)?;

    let mut rows = Vec::new();
    let mut kinds = KindCheck::default();
    loop {
        let base = rows.len();
        let next = guard(path, || batches.next())?;
        let batch = match next {
            None => break,
            Some(Ok(b)) => b,
            Some(Err(source)) => {
                return Err(TableError::Arrow {
                    path: path.to_path_buf(),
                    row: base,
                    source,
                });
            }
        };
        let texts: Vec<_> = resolved
            .text
            .iter()
            .map(|&i| {
                text_accessor(batch.column(at_batch(i)).as_ref()).ok_or_else(|| {
                    TableError::WrongColumnType {
                        path: path.to_path_buf(),
                        column: columns[i].clone(),
                        expected: TEXT_TYPES,
                        found: batch.column(at_batch(i)).data_type().to_string(),
                    }
                })
            })
            .collect::<Result<_>>()?;
        let label_col = batch.column(at_batch(resolved.label));
        let int_labels = labels_of(label_col);
        let str_labels = text_accessor(label_col.as_ref());
        for i in 0..batch.num_rows() {
            let row = base + i;
            let at = || Location {
                path: path.to_path_buf(),
                row,
                line: None,
            };
            let mut pieces = Vec::with_capacity(texts.len());
            for (get, name) in texts.iter().zip(&text_columns) {
                pieces.push(get(i).ok_or_else(|| TableError::MissingValue {
                    at: Box::new(at()),
                    column: name.clone(),
                    expected: "a text",
                })?);
            }
            let text = join_text(pieces, &spec.text_separator, at, || text_columns.clone())?;
            let missing = || TableError::MissingValue {
                at: Box::new(at()),
                column: label_column.clone(),
                expected: "a class id or name",
            };
            let label = match (&int_labels, &str_labels) {
                (Some(v), _) => {
                    let v = v[i].ok_or_else(missing)?;
                    RawLabel::Int(i64::try_from(v).map_err(|_| TableError::InvalidLabel {
                        at: Box::new(at()),
                        column: label_column.clone(),
                        value: v.to_string(),
                        reason: "an integer too large for a class id",
                    })?)
                }
                (None, Some(get)) => {
                    let s = get(i)
                        .filter(|s| !s.trim().is_empty())
                        .ok_or_else(missing)?;
                    RawLabel::Str(s.to_owned())
                }
                (None, None) => {
                    return Err(TableError::WrongColumnType {
                        path: path.to_path_buf(),
                        column: label_column.clone(),
                        expected: LABEL_TYPES,
                        found: label_col.data_type().to_string(),
                    });
                }
            };
            kinds.check(&label, at, &label_column, false)?;
            rows.push(RawRow {
                row,
                line: None,
                text,
                label,
            });
        }
    }
    Ok(RawTable {
        path: path.to_path_buf(),
        format: Format::Parquet,
        columns,
        text_columns,
        label_column,
        header: true,
        rows,
        class_names,
    })
}

/// Writing small parquet files in tests.
#[cfg(test)]
pub(crate) mod test_files {
    use std::collections::HashMap;
    use std::sync::Arc;

    use arrow_array::{ArrayRef, RecordBatch};
    use arrow_schema::{Field, Schema};
    use parquet::arrow::ArrowWriter;
    use parquet::file::metadata::KeyValue;
    use parquet::file::properties::WriterProperties;

    /// Write `columns` with optional `huggingface` metadata, in row groups of 2 rows.
    pub(crate) fn write(path: &std::path::Path, columns: Vec<(&str, ArrayRef)>, hf: Option<&str>) {
        let fields: Vec<Field> = columns
            .iter()
            .map(|(n, a)| Field::new(*n, a.data_type().clone(), true))
            .collect();
        let schema = Arc::new(Schema::new_with_metadata(fields, HashMap::new()));
        let batch = RecordBatch::try_new(
            schema.clone(),
            columns.into_iter().map(|(_, a)| a).collect(),
        )
        .unwrap();
        let mut props = WriterProperties::builder().set_max_row_group_row_count(Some(2));
        if let Some(hf) = hf {
            props = props.set_key_value_metadata(Some(vec![KeyValue::new(
                "huggingface".into(),
                hf.to_owned(),
            )]));
        }
        let mut w = ArrowWriter::try_new(
            std::fs::File::create(path).unwrap(),
            schema,
            Some(props.build()),
        )
        .unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
    }

    /// A file with `texts` and `labels` (utf8 + int64, IMDb's schema on the Hub).
    pub(crate) fn write_reviews(path: &std::path::Path, texts: &[&str], labels: &[i64]) {
        write(
            path,
            vec![
                (
                    "text",
                    Arc::new(arrow_array::StringArray::from(texts.to_vec())) as ArrayRef,
                ),
                (
                    "label",
                    Arc::new(arrow_array::Int64Array::from(labels.to_vec())) as ArrayRef,
                ),
            ],
            None,
        );
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{
        ArrayRef, Float64Array, Int32Array, Int64Array, LargeStringArray, StringArray, UInt64Array,
    };

    use super::super::raw::Column;
    use super::test_files::write;
    use super::*;

    const HF: &str = r#"{"info": {"features": {"text": {"dtype": "string", "_type": "Value"}, "label": {"names": ["neg", "pos"], "_type": "ClassLabel"}}}}"#;

    fn text(v: Vec<Option<&str>>) -> ArrayRef {
        Arc::new(StringArray::from(v))
    }

    #[test]
    fn projected_columns_and_classlabel_names_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("train-00000-of-00001.parquet");
        write(
            &p,
            vec![
                ("id", Arc::new(Int32Array::from(vec![9, 8, 7])) as ArrayRef),
                ("text", text(vec![Some("a"), Some("b"), Some("c")])),
                (
                    "label",
                    Arc::new(Int64Array::from(vec![0, 1, 1])) as ArrayRef,
                ),
            ],
            Some(HF),
        );
        let t = read(&p, &TableSpec::default()).unwrap();
        assert_eq!(t.columns, ["id", "text", "label"]);
        assert_eq!(
            t.rows
                .iter()
                .map(|r| (r.row, r.text.as_str(), r.label.clone()))
                .collect::<Vec<_>>(),
            [
                (0, "a", RawLabel::Int(0)),
                (1, "b", RawLabel::Int(1)),
                (2, "c", RawLabel::Int(1))
            ]
        );
        let names = t.class_names.unwrap();
        assert_eq!(names.names, ["neg", "pos"]);
        assert_eq!(names.source, NameSource::ClassLabel(p.clone()));
        // The id column as label by position, the text column by name.
        let spec = TableSpec {
            text: vec![Column::Name("text".into())],
            label: Some(Column::Index(1)),
            ..TableSpec::default()
        };
        let t = read(&p, &spec).unwrap();
        assert_eq!(t.rows[2].label, RawLabel::Int(7));
        assert_eq!(t.class_names, None);
    }

    #[test]
    fn string_labels_and_large_strings_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.parquet");
        write(
            &p,
            vec![
                (
                    "content",
                    Arc::new(LargeStringArray::from(vec!["x", "y"])) as ArrayRef,
                ),
                ("class", text(vec![Some("ham"), Some("spam")])),
            ],
            None,
        );
        let t = read(&p, &TableSpec::default()).unwrap();
        assert_eq!(t.rows[1].label, RawLabel::Str("spam".into()));
        assert_eq!(t.rows[1].text, "y");
    }

    #[test]
    fn bad_columns_and_values_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.parquet");
        write(
            &p,
            vec![
                ("text", text(vec![Some("a"), Some("b")])),
                (
                    "label",
                    Arc::new(Float64Array::from(vec![0.0, 1.0])) as ArrayRef,
                ),
            ],
            None,
        );
        let err = read(&p, &TableSpec::default()).unwrap_err();
        assert!(matches!(err, TableError::FloatLabelColumn { .. }), "{err}");
        assert!(err.to_string().contains("floating-point"), "{err}");

        write(
            &p,
            vec![
                ("text", text(vec![Some("a"), Some("b"), None])),
                (
                    "label",
                    Arc::new(Int64Array::from(vec![0, 1, 1])) as ArrayRef,
                ),
            ],
            None,
        );
        let err = read(&p, &TableSpec::default()).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                r#"{}, row 2, column "text": missing value, expected a text"#,
                p.display()
            )
        );

        write(
            &p,
            vec![
                ("text", text(vec![Some("a"), Some("")])),
                ("label", Arc::new(Int64Array::from(vec![0, 1])) as ArrayRef),
            ],
            None,
        );
        assert!(matches!(
            read(&p, &TableSpec::default()),
            Err(TableError::EmptyText { at, .. }) if at.row == 1
        ));

        write(
            &p,
            vec![
                ("text", text(vec![Some("a"), Some("b")])),
                (
                    "label",
                    Arc::new(UInt64Array::from(vec![0, u64::MAX])) as ArrayRef,
                ),
            ],
            None,
        );
        let err = read(&p, &TableSpec::default()).unwrap_err();
        assert!(err.to_string().contains("18446744073709551615"), "{err}");

        write(
            &p,
            vec![
                ("text", Arc::new(Int32Array::from(vec![1])) as ArrayRef),
                ("label", Arc::new(Int64Array::from(vec![0])) as ArrayRef),
            ],
            None,
        );
        let err = read(&p, &TableSpec::default()).unwrap_err();
        assert!(matches!(err, TableError::WrongColumnType { .. }), "{err}");
    }

    #[test]
    fn unusable_metadata_is_ignored() {
        let p = Path::new("f.parquet");
        assert_eq!(class_label_names(p, Some("{not json"), "label"), None);
        assert_eq!(class_label_names(p, Some(HF), "other"), None);
        let value = r#"{"info": {"features": {"label": {"dtype": "int64", "_type": "Value"}}}}"#;
        assert_eq!(class_label_names(p, Some(value), "label"), None);
        let dup =
            r#"{"info": {"features": {"label": {"names": ["a", "a"], "_type": "ClassLabel"}}}}"#;
        assert_eq!(class_label_names(p, Some(dup), "label"), None);
    }

    #[test]
    fn parquet_errors_say_the_file_and_the_library_message_once() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.parquet");
        std::fs::write(&p, b"PAR1 not really").unwrap();
        let err = read(&p, &TableSpec::default()).unwrap_err();
        let msg = super::super::error::said_once(&err);
        assert_eq!(
            msg,
            format!(
                "{}: cannot read parquet: Parquet error: Invalid Parquet file. Corrupt footer",
                p.display()
            )
        );
        assert_eq!(msg.matches("t.parquet").count(), 1, "{msg}");
    }

    #[test]
    fn a_truncated_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.parquet");
        std::fs::write(&p, b"PAR1 not really").unwrap();
        assert!(matches!(
            read(&p, &TableSpec::default()),
            Err(TableError::Parquet { .. })
        ));
        std::fs::write(&p, b"").unwrap();
        assert!(matches!(
            read(&p, &TableSpec::default()),
            Err(TableError::EmptyTable { .. })
        ));
    }

    /// Rewrites the footer of `path` (a file of exactly 2 rows) so that it declares `rows` rows,
    /// leaving the row groups alone. parquet's own metadata writer recomputes the count, so this
    /// edits the Thrift compact encoding: `FileMetaData.num_rows` is field 3 (i64) right after
    /// the schema list, header byte `0x16`, value zigzag(2) = `0x04`; the schema has no i64
    /// fields, so the first `16 04` in the footer is it (row groups, which repeat the pair, come
    /// after).
    fn forge_row_count(path: &Path, rows: i64) {
        let bytes = std::fs::read(path).unwrap();
        let n = bytes.len();
        let footer_len = u32::from_le_bytes(bytes[n - 8..n - 4].try_into().unwrap()) as usize;
        let start = n - 8 - footer_len;
        let footer = &bytes[start..n - 8];
        let at = footer.windows(2).position(|w| w == [0x16, 0x04]).unwrap();
        let mut zigzag = ((rows << 1) ^ (rows >> 63)) as u64;
        let mut varint = Vec::new();
        loop {
            let byte = (zigzag & 0x7f) as u8;
            zigzag >>= 7;
            if zigzag == 0 {
                varint.push(byte);
                break;
            }
            varint.push(byte | 0x80);
        }
        let mut forged = footer[..=at].to_vec();
        forged.extend_from_slice(&varint);
        forged.extend_from_slice(&footer[at + 2..]);
        let mut out = bytes[..start].to_vec();
        out.extend_from_slice(&forged);
        out.extend_from_slice(&u32::try_from(forged.len()).unwrap().to_le_bytes());
        out.extend_from_slice(b"PAR1");
        std::fs::write(path, out).unwrap();
    }

    #[test]
    fn a_footer_claiming_more_rows_than_its_row_groups_is_refused_without_allocating() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("forged.parquet");
        super::test_files::write_reviews(&p, &["good", "bad"], &[1, 0]);
        // Forged to the truth, it reads: the forging itself keeps the file valid.
        let original = std::fs::read(&p).unwrap();
        forge_row_count(&p, 2);
        assert_eq!(std::fs::read(&p).unwrap(), original);
        assert_eq!(read(&p, &TableSpec::default()).unwrap().rows.len(), 2);
        forge_row_count(&p, 1 << 40);
        let msg = read(&p, &TableSpec::default()).unwrap_err().to_string();
        assert!(
            msg.contains("forged.parquet")
                && msg.contains("1099511627776")
                && msg.contains("row groups 2"),
            "{msg}"
        );
    }

    /// Files the fuzz harness found the parquet library panicking on (its regression files,
    /// crates/fuzz/regressions/parquet/): a division by zero decoding a byte-array page, a
    /// validity bitmap shorter than its length, a negative column chunk size in the footer.
    /// Each is an error naming the file.
    #[test]
    fn damaged_files_the_parquet_library_panics_on_are_errors_naming_the_file() {
        let found = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/regressions/parquet");
        for (name, says) in [
            ("panic-s1-i1641.parquet", "divide by zero"),
            ("panic-s1-i1939.parquet", "out of bounds"),
            ("panic-s1-i5640.parquet", "-251"),
        ] {
            let dir = tempfile::tempdir().unwrap();
            let p = dir.path().join(name);
            std::fs::copy(found.join(name), &p).unwrap();
            let err = read(&p, &TableSpec::default()).unwrap_err();
            let msg = err.to_string();
            assert!(
                matches!(err, TableError::DamagedParquet { .. })
                    && msg.contains(name)
                    && msg.contains(says),
                "{name}: {msg}"
            );
        }
    }
}

//! Reading labelled reviews from parquet: streams record batches, projects just `text` and `label`,
//! accepts `utf8`/`large_utf8`/`utf8_view` text and any integer label type, and validates every row.
//!
//! Nothing is silently dropped or coerced: a missing column, a wrong type, a null, a label outside
//! {0, 1} or an empty file is an [`Error`] naming the file, the column and the (0-based) row.

use std::fs::File;
use std::path::{Path, PathBuf};

use arrow_array::types::{
    Int8Type, Int16Type, Int32Type, Int64Type, UInt8Type, UInt16Type, UInt32Type, UInt64Type,
};
use arrow_array::{
    Array, ArrayRef, ArrowPrimitiveType, LargeStringArray, PrimitiveArray, RecordBatch,
    StringArray, StringViewArray,
};
use arrow_schema::DataType;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};

use crate::error::{Error, Result, panic_message};

/// Name of the review text column.
pub const TEXT_COLUMN: &str = "text";
/// Name of the label column (0 = negative, 1 = positive).
pub const LABEL_COLUMN: &str = "label";
/// Rows per record batch: large enough to amortise per-batch overhead, small enough to stream.
const BATCH_ROWS: usize = 4096;

const TEXT_TYPES: &str = "utf8, large_utf8 or utf8_view";
const LABEL_TYPES: &str = "an integer type (int8..int64, uint8..uint64)";

/// One labelled review.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Review {
    /// 0-based row in the source file (kept through subsetting, for traceability).
    pub row: usize,
    /// The review text.
    pub text: String,
    /// The class index (IMDb: 0 = negative, 1 = positive).
    pub label: u32,
}

/// Streams [`Review`]s from a parquet file, one record batch at a time.
pub struct ReviewReader {
    path: PathBuf,
    inner: ParquetRecordBatchReader,
    next_row: usize,
    rows: usize,
    // Set once the parquet library has panicked: its reader state is then unknown, so
    // iteration ends after reporting the error.
    failed: bool,
}

/// Runs a call into the parquet library, turning a panic into [`Error::ParquetPanic`].
///
/// The library asserts where it should return errors on some damaged files (fuzzing found a
/// division by zero decoding a byte-array page, a bitmap shorter than its length, and more;
/// see `crates/fuzz`). Catching is sound here: the call works on a reader this crate owns
/// alone, and after a panic that reader is dropped or never used again ([`ReviewReader`]'s
/// `failed`). The default panic hook still prints the library's message to stderr.
fn guard_parquet<T>(path: &Path, row: usize, call: impl FnOnce() -> T) -> Result<T> {
    catch_parquet(call).map_err(|message| Error::ParquetPanic {
        path: path.to_path_buf(),
        row,
        message,
    })
}

/// Runs a call into the parquet library; a panic becomes its message. The one place both
/// parquet readers ([`ReviewReader`] and `table`'s) catch the library's panics.
pub(crate) fn catch_parquet<T>(call: impl FnOnce() -> T) -> std::result::Result<T, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(call))
        .map_err(|panic| panic_message(panic.as_ref()))
}

/// A column chunk whose byte range (from the footer) is not inside the file.
pub(crate) struct ChunkOutside {
    /// 0-based row group.
    pub row_group: usize,
    /// The column's path in the schema.
    pub column: String,
    /// Its first byte as declared (dictionary page, else first data page).
    pub start: i64,
    /// Its declared compressed size.
    pub size: i64,
}

/// The first column chunk whose byte range does not lie inside a file of `len` bytes: the
/// parquet library asserts (panics) on a negative offset or size, and would seek past the
/// end on a range beyond it.
pub(crate) fn chunk_outside_file(
    len: u64,
    metadata: &parquet::file::metadata::ParquetMetaData,
) -> Option<ChunkOutside> {
    for (g, group) in metadata.row_groups().iter().enumerate() {
        for column in group.columns() {
            let start = column
                .dictionary_page_offset()
                .unwrap_or_else(|| column.data_page_offset());
            let size = column.compressed_size();
            let end = u64::try_from(start)
                .ok()
                .zip(u64::try_from(size).ok())
                .and_then(|(s, n)| s.checked_add(n));
            if end.is_none_or(|end| end > len) {
                return Some(ChunkOutside {
                    row_group: g,
                    column: column.column_path().string(),
                    start,
                    size,
                });
            }
        }
    }
    None
}

/// Checks that every column chunk's byte range lies inside the file ([`chunk_outside_file`]).
fn check_column_chunks(
    path: &Path,
    len: u64,
    metadata: &parquet::file::metadata::ParquetMetaData,
) -> Result<()> {
    match chunk_outside_file(len, metadata) {
        None => Ok(()),
        Some(c) => Err(Error::ColumnChunkOutOfFile {
            path: path.to_path_buf(),
            row_group: c.row_group,
            column: c.column,
            start: c.start,
            size: c.size,
            len,
        }),
    }
}

impl std::fmt::Debug for ReviewReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReviewReader")
            .field("path", &self.path)
            .field("next_row", &self.next_row)
            .field("rows", &self.rows)
            .finish_non_exhaustive()
    }
}

impl ReviewReader {
    /// Open `path`, check the schema, and prepare to stream the two columns.
    pub fn open(path: &Path) -> Result<ReviewReader> {
        let mut file = File::open(path).map_err(|e| Error::io("open", path, e))?;
        let len = file
            .metadata()
            .map_err(|e| Error::io("stat", path, e))?
            .len();
        if len == 0 {
            return Err(Error::EmptyFile {
                path: path.to_path_buf(),
            });
        }
        let pq = |source| Error::Parquet {
            path: path.to_path_buf(),
            source,
        };
        // Read whole: a page header claiming more bytes than the file has is then an error at
        // the range check instead of an allocation of that size (the File reader's way).
        let bytes = {
            let mut buf = Vec::new();
            std::io::Read::read_to_end(&mut file, &mut buf)
                .map_err(|e| Error::io("read", path, e))?;
            bytes::Bytes::from(buf)
        };
        let builder = guard_parquet(path, 0, || ParquetRecordBatchReaderBuilder::try_new(bytes))?
            .map_err(pq)?;
        check_column_chunks(path, len, builder.metadata())?;
        let schema = builder.schema().clone();
        let find = |column: &'static str| {
            schema.index_of(column).map_err(|_| Error::MissingColumn {
                path: path.to_path_buf(),
                column,
                found: schema.fields().iter().map(|f| f.name().clone()).collect(),
            })
        };
        let (text_idx, label_idx) = (find(TEXT_COLUMN)?, find(LABEL_COLUMN)?);
        let wrong = |column, expected, dt: &DataType| Error::WrongType {
            path: path.to_path_buf(),
            column,
            expected,
            found: dt.to_string(),
        };
        let text_type = schema.field(text_idx).data_type();
        if !matches!(
            text_type,
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
        ) {
            return Err(wrong(TEXT_COLUMN, TEXT_TYPES, text_type));
        }
        let label_type = schema.field(label_idx).data_type();
        if !label_type.is_integer() {
            return Err(wrong(LABEL_COLUMN, LABEL_TYPES, label_type));
        }
        // The footer's row count is only a claim: it must agree with the row groups', and it
        // never sizes an allocation (a 1 KB file may claim 2^40 rows).
        let declared = builder.metadata().file_metadata().num_rows();
        let in_row_groups = builder
            .metadata()
            .row_groups()
            .iter()
            .try_fold(0i64, |sum, g| sum.checked_add(g.num_rows()));
        if in_row_groups != Some(declared) {
            return Err(Error::RowCountMismatch {
                path: path.to_path_buf(),
                declared,
                in_row_groups: in_row_groups.unwrap_or(i64::MAX),
            });
        }
        let rows = usize::try_from(declared).unwrap_or(0);
        if rows == 0 {
            return Err(Error::NoRows {
                path: path.to_path_buf(),
            });
        }
        // Arrow fields map one-to-one onto the parquet schema's root columns for flat files.
        let mask = ProjectionMask::roots(builder.parquet_schema(), [text_idx, label_idx]);
        let inner = guard_parquet(path, 0, || {
            builder
                .with_projection(mask)
                .with_batch_size(BATCH_ROWS)
                .build()
        })?
        .map_err(pq)?;
        tracing::debug!(path = %path.display(), rows, %text_type, %label_type, "opened parquet");
        Ok(ReviewReader {
            path: path.to_path_buf(),
            inner,
            next_row: 0,
            rows,
            failed: false,
        })
    }

    /// Number of rows the file's metadata declares.
    pub fn num_rows(&self) -> usize {
        self.rows
    }

    fn convert(&self, batch: &RecordBatch) -> Result<Vec<Review>> {
        let path = &self.path;
        let base = self.next_row;
        let column = |name: &'static str| {
            batch
                .column_by_name(name)
                .ok_or_else(|| Error::MissingColumn {
                    path: path.clone(),
                    column: name,
                    found: batch
                        .schema()
                        .fields()
                        .iter()
                        .map(|f| f.name().clone())
                        .collect(),
                })
        };
        let texts = column(TEXT_COLUMN)?;
        let labels = labels_of(column(LABEL_COLUMN)?).ok_or_else(|| Error::WrongType {
            path: path.clone(),
            column: LABEL_COLUMN,
            expected: LABEL_TYPES,
            found: batch
                .schema()
                .field_with_name(LABEL_COLUMN)
                .map(|f| f.data_type().to_string())
                .unwrap_or_default(),
        })?;
        let text_at = text_accessor(texts.as_ref()).ok_or_else(|| Error::WrongType {
            path: path.clone(),
            column: TEXT_COLUMN,
            expected: TEXT_TYPES,
            found: texts.data_type().to_string(),
        })?;
        let mut out = Vec::with_capacity(batch.num_rows());
        for (i, label) in labels.into_iter().enumerate() {
            let row = base + i;
            let null = |column, expected| Error::NullValue {
                path: path.clone(),
                column,
                row,
                expected,
            };
            let text = text_at(i).ok_or_else(|| null(TEXT_COLUMN, "a review text"))?;
            let label = label.ok_or_else(|| null(LABEL_COLUMN, "0 or 1"))?;
            let label = match label {
                0 => 0,
                1 => 1,
                value => {
                    return Err(Error::LabelOutOfRange {
                        path: path.clone(),
                        row,
                        value,
                    });
                }
            };
            out.push(Review {
                row,
                text: text.to_owned(),
                label,
            });
        }
        Ok(out)
    }
}

impl Iterator for ReviewReader {
    type Item = Result<Vec<Review>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let inner = &mut self.inner;
        let next = match guard_parquet(&self.path, self.next_row, || inner.next()) {
            Ok(next) => next?,
            Err(panicked) => {
                self.failed = true;
                return Some(Err(panicked));
            }
        };
        let batch = match next {
            Ok(b) => b,
            Err(source) => {
                return Some(Err(Error::Arrow {
                    path: self.path.clone(),
                    row: self.next_row,
                    source,
                }));
            }
        };
        let reviews = self.convert(&batch);
        self.next_row += batch.num_rows();
        Some(reviews)
    }
}

/// Read all reviews of a file (validated; in file order).
pub fn read_reviews(path: &Path) -> Result<Vec<Review>> {
    let _span = tracing::debug_span!("read_reviews", path = %path.display()).entered();
    let reader = ReviewReader::open(path)?;
    // Grown as rows arrive, not pre-sized from the footer's claim.
    let mut out = Vec::new();
    for batch in reader {
        out.extend(batch?);
    }
    let name = path
        .file_name()
        .unwrap_or(path.as_os_str())
        .to_string_lossy();
    tracing::info!(rows = out.len(), "read {name}");
    Ok(out)
}

/// Per-row text lookup over whichever string array type the file uses (`None` for nulls).
pub(crate) fn text_accessor<'a>(
    col: &'a dyn Array,
) -> Option<Box<dyn Fn(usize) -> Option<&'a str> + 'a>> {
    let any = col.as_any();
    if let Some(a) = any.downcast_ref::<StringArray>() {
        return Some(Box::new(move |i| a.is_valid(i).then(|| a.value(i))));
    }
    if let Some(a) = any.downcast_ref::<LargeStringArray>() {
        return Some(Box::new(move |i| a.is_valid(i).then(|| a.value(i))));
    }
    if let Some(a) = any.downcast_ref::<StringViewArray>() {
        return Some(Box::new(move |i| a.is_valid(i).then(|| a.value(i))));
    }
    None
}

/// Integer labels widened to i128 (every integer type fits, so out-of-range values are
/// reported exactly); `None` for a column of another type.
pub(crate) fn labels_of(col: &ArrayRef) -> Option<Vec<Option<i128>>> {
    fn widen<T>(col: &ArrayRef) -> Option<Vec<Option<i128>>>
    where
        T: ArrowPrimitiveType,
        T::Native: Into<i128>,
    {
        let a = col.as_any().downcast_ref::<PrimitiveArray<T>>()?;
        Some(a.iter().map(|v| v.map(Into::into)).collect())
    }
    match col.data_type() {
        DataType::Int8 => widen::<Int8Type>(col),
        DataType::Int16 => widen::<Int16Type>(col),
        DataType::Int32 => widen::<Int32Type>(col),
        DataType::Int64 => widen::<Int64Type>(col),
        DataType::UInt8 => widen::<UInt8Type>(col),
        DataType::UInt16 => widen::<UInt16Type>(col),
        DataType::UInt32 => widen::<UInt32Type>(col),
        DataType::UInt64 => widen::<UInt64Type>(col),
        _ => None,
    }
}

/// Helpers to write small parquet files in tests (of this crate and others).
#[cfg(test)]
pub(crate) mod test_files {
    use std::sync::Arc;

    use arrow_array::{ArrayRef, RecordBatch};
    use arrow_schema::{Field, Schema};
    use parquet::arrow::ArrowWriter;
    use parquet::file::properties::WriterProperties;

    /// Write `columns` (name, array) as a parquet file with small row groups.
    pub(crate) fn write(path: &std::path::Path, columns: Vec<(&str, ArrayRef)>) {
        let fields: Vec<Field> = columns
            .iter()
            .map(|(n, a)| Field::new(*n, a.data_type().clone(), true))
            .collect();
        let schema = Arc::new(Schema::new(fields));
        let batch = RecordBatch::try_new(
            schema.clone(),
            columns.into_iter().map(|(_, a)| a).collect(),
        )
        .unwrap();
        let props = WriterProperties::builder()
            .set_max_row_group_row_count(Some(1000))
            .build();
        let mut w = ArrowWriter::try_new(std::fs::File::create(path).unwrap(), schema, Some(props))
            .unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
    }

    /// A valid file with `texts` and `labels` (utf8 + int64, like the Hub's).
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
        );
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{
        BooleanArray, Float32Array, Int8Array, Int64Array, LargeStringArray, StringArray,
        StringViewArray, UInt32Array,
    };

    use super::test_files::{write, write_reviews};
    use super::*;

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
        write_reviews(&p, &["good", "bad"], &[1, 0]);
        // Forged to the truth, it reads: the forging itself keeps the file valid.
        let original = std::fs::read(&p).unwrap();
        forge_row_count(&p, 2);
        assert_eq!(std::fs::read(&p).unwrap(), original);
        assert_eq!(read_reviews(&p).unwrap().len(), 2);
        forge_row_count(&p, 1 << 40);
        let err = read_reviews(&p).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("forged.parquet")
                && msg.contains("1099511627776")
                && msg.contains("hold 2"),
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
            ("panic-s1-i5640.parquet", "size -251"),
        ] {
            let (_d, p) = tmp(name);
            std::fs::copy(found.join(name), &p).unwrap();
            let err = read_reviews(&p).unwrap_err();
            let msg = err.to_string();
            assert!(
                matches!(
                    err,
                    Error::ParquetPanic { .. } | Error::ColumnChunkOutOfFile { .. }
                ) && msg.contains(name)
                    && msg.contains(says),
                "{name}: {msg}"
            );
        }
    }

    fn tmp(name: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(name);
        (dir, p)
    }

    #[test]
    fn reads_text_and_label_in_order_and_ignores_other_columns() {
        let (_d, p) = tmp("ok.parquet");
        write(
            &p,
            vec![
                ("id", Arc::new(Int64Array::from(vec![7, 8, 9])) as ArrayRef),
                (
                    "text",
                    Arc::new(StringArray::from(vec!["bad", "good", ""])) as ArrayRef,
                ),
                (
                    "extra",
                    Arc::new(BooleanArray::from(vec![true, false, true])) as ArrayRef,
                ),
                (
                    "label",
                    Arc::new(Int64Array::from(vec![0, 1, 1])) as ArrayRef,
                ),
            ],
        );
        let r = read_reviews(&p).unwrap();
        assert_eq!(
            r,
            vec![
                Review {
                    row: 0,
                    text: "bad".into(),
                    label: 0
                },
                Review {
                    row: 1,
                    text: "good".into(),
                    label: 1
                },
                Review {
                    row: 2,
                    text: String::new(),
                    label: 1
                },
            ]
        );
    }

    #[test]
    fn accepts_large_utf8_view_and_other_integer_labels() {
        let (_d, p) = tmp("large.parquet");
        write(
            &p,
            vec![
                (
                    "text",
                    Arc::new(LargeStringArray::from(vec!["a", "b"])) as ArrayRef,
                ),
                ("label", Arc::new(Int8Array::from(vec![1, 0])) as ArrayRef),
            ],
        );
        let r = read_reviews(&p).unwrap();
        assert_eq!((r[0].text.as_str(), r[0].label, r[1].label), ("a", 1, 0));

        let (_d2, p2) = tmp("view.parquet");
        write(
            &p2,
            vec![
                (
                    "text",
                    Arc::new(StringViewArray::from(vec!["x", "y"])) as ArrayRef,
                ),
                ("label", Arc::new(UInt32Array::from(vec![0, 1])) as ArrayRef),
            ],
        );
        let r = read_reviews(&p2).unwrap();
        assert_eq!((r[1].text.as_str(), r[1].label), ("y", 1));
    }

    #[test]
    fn row_numbers_continue_across_batches_and_row_groups() {
        let (_d, p) = tmp("many.parquet");
        let n = BATCH_ROWS + 1500;
        let texts: Vec<String> = (0..n).map(|i| format!("review {i}")).collect();
        let mut labels: Vec<i64> = (0..n).map(|i| (i % 2) as i64).collect();
        let text_refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        write_reviews(&p, &text_refs, &labels);
        let r = read_reviews(&p).unwrap();
        assert_eq!(r.len(), n);
        assert!(
            r.iter()
                .enumerate()
                .all(|(i, x)| x.row == i && x.text == format!("review {i}"))
        );

        labels[BATCH_ROWS + 7] = 5;
        write_reviews(&p, &text_refs, &labels);
        let err = read_reviews(&p).unwrap_err();
        assert!(
            matches!(err, Error::LabelOutOfRange { row, value: 5, .. } if row == BATCH_ROWS + 7),
            "{err}"
        );
    }

    #[test]
    fn missing_column_is_named_with_the_columns_found() {
        let (_d, p) = tmp("nolabel.parquet");
        write(
            &p,
            vec![
                ("text", Arc::new(StringArray::from(vec!["a"])) as ArrayRef),
                ("sentiment", Arc::new(Int64Array::from(vec![1])) as ArrayRef),
            ],
        );
        let err = read_reviews(&p).unwrap_err();
        let msg = err.to_string();
        assert!(
            matches!(
                err,
                Error::MissingColumn {
                    column: "label",
                    ..
                }
            ),
            "{msg}"
        );
        assert!(
            msg.contains("nolabel.parquet") && msg.contains("sentiment"),
            "{msg}"
        );
    }

    #[test]
    fn wrong_types_are_rejected() {
        let (_d, p) = tmp("floatlabel.parquet");
        write(
            &p,
            vec![
                ("text", Arc::new(StringArray::from(vec!["a"])) as ArrayRef),
                ("label", Arc::new(Float32Array::from(vec![1.0])) as ArrayRef),
            ],
        );
        let err = read_reviews(&p).unwrap_err();
        assert!(
            matches!(
                err,
                Error::WrongType {
                    column: "label",
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("Float32"), "{err}");

        let (_d2, p2) = tmp("inttext.parquet");
        write(
            &p2,
            vec![
                ("text", Arc::new(Int64Array::from(vec![3])) as ArrayRef),
                ("label", Arc::new(Int64Array::from(vec![1])) as ArrayRef),
            ],
        );
        let err = read_reviews(&p2).unwrap_err();
        assert!(
            matches!(err, Error::WrongType { column: "text", .. }),
            "{err}"
        );
    }

    #[test]
    fn nulls_are_errors_with_row_and_column() {
        let (_d, p) = tmp("nulltext.parquet");
        write(
            &p,
            vec![
                (
                    "text",
                    Arc::new(StringArray::from(vec![Some("a"), None])) as ArrayRef,
                ),
                ("label", Arc::new(Int64Array::from(vec![0, 1])) as ArrayRef),
            ],
        );
        let err = read_reviews(&p).unwrap_err();
        assert!(
            matches!(
                err,
                Error::NullValue {
                    column: "text",
                    row: 1,
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("row 1"), "{err}");

        let (_d2, p2) = tmp("nulllabel.parquet");
        write(
            &p2,
            vec![
                (
                    "text",
                    Arc::new(StringArray::from(vec!["a", "b", "c"])) as ArrayRef,
                ),
                (
                    "label",
                    Arc::new(Int64Array::from(vec![Some(0), Some(1), None])) as ArrayRef,
                ),
            ],
        );
        let err = read_reviews(&p2).unwrap_err();
        assert!(
            matches!(
                err,
                Error::NullValue {
                    column: "label",
                    row: 2,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn labels_outside_zero_one_are_errors() {
        let (_d, p) = tmp("neg.parquet");
        write_reviews(&p, &["a", "b"], &[0, -1]);
        let err = read_reviews(&p).unwrap_err();
        assert!(
            matches!(
                err,
                Error::LabelOutOfRange {
                    row: 1,
                    value: -1,
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("neg.parquet"), "{err}");
    }

    #[test]
    fn empty_files_are_errors() {
        let (_d, p) = tmp("zero.parquet");
        std::fs::write(&p, b"").unwrap();
        assert!(matches!(
            read_reviews(&p).unwrap_err(),
            Error::EmptyFile { .. }
        ));

        let (_d2, p2) = tmp("norows.parquet");
        write_reviews(&p2, &[], &[]);
        let err = read_reviews(&p2).unwrap_err();
        assert!(matches!(err, Error::NoRows { .. }), "{err}");
    }

    #[test]
    fn garbage_and_missing_files_are_errors_naming_the_file() {
        let (_d, p) = tmp("garbage.parquet");
        std::fs::write(&p, b"this is not parquet at all").unwrap();
        let err = read_reviews(&p).unwrap_err();
        assert!(
            matches!(err, Error::Parquet { .. }) && err.to_string().contains("garbage.parquet"),
            "{err}"
        );

        let err = read_reviews(Path::new("/nonexistent/x.parquet")).unwrap_err();
        assert!(
            matches!(err, Error::Io { .. }) && err.to_string().contains("/nonexistent/x.parquet"),
            "{err}"
        );
    }
}

//! Arrow and parquet helpers under the parquet table reader (`parquet.rs`): catching the
//! parquet library's panics, checking the footer's column chunks against the file, per-row
//! access to any string array type, integer labels of any width; and, for tests, writing
//! small parquet files.

use arrow_array::types::{
    Int8Type, Int16Type, Int32Type, Int64Type, UInt8Type, UInt16Type, UInt32Type, UInt64Type,
};
use arrow_array::{
    Array, ArrayRef, ArrowPrimitiveType, LargeStringArray, PrimitiveArray, StringArray,
    StringViewArray,
};
use arrow_schema::DataType;

use crate::error::panic_message;

/// Runs a call into the parquet library; a panic becomes its message: the one place the
/// library's panics are caught.
///
/// The library asserts where it should return errors on some damaged files (fuzzing found a
/// division by zero decoding a byte-array page, a bitmap shorter than its length, and more;
/// see `crates/fuzz`). Catching is sound here: the call works on a reader the caller owns
/// alone, and after a panic that reader is dropped and never used again. The default panic
/// hook still prints the library's message to stderr.
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

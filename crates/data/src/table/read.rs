//! [`read_table`]: one file of any format into a [`RawTable`], by the reader of its format
//! (`delimited.rs`, `jsonl.rs`, `parquet.rs`), with the class names found beside it.

use std::path::Path;

use super::error::{Result, TableError};
use super::names::read_classes_file;
use super::raw::{Format, RawTable, TableSpec};
use super::{delimited, jsonl, parquet};

/// Read one file: the rows' joined text and raw label, with class names found beside it.
///
/// # Errors
/// Any [`TableError`] about files, formats, columns or values; see the module doc.
pub fn read_table(path: &Path, spec: &TableSpec) -> Result<RawTable> {
    let _span = tracing::debug_span!("read_table", path = %path.display()).entered();
    let format = match spec.format {
        Some(f) => f,
        None => Format::from_path(path)?,
    };
    let mut table = match format {
        Format::Csv => delimited::read(path, spec, delimited::Delimiter::Comma)?,
        Format::Tsv => delimited::read(path, spec, delimited::Delimiter::Tab)?,
        Format::JsonLines => jsonl::read(path, spec)?,
        Format::Parquet => parquet::read(path, spec)?,
    };
    if table.rows.is_empty() {
        return Err(TableError::EmptyTable {
            path: path.to_path_buf(),
            hint: if matches!(format, Format::Csv | Format::Tsv) && table.header {
                " (only a header row)"
            } else {
                ""
            },
        });
    }
    if table.class_names.is_none()
        && let Some(dir) = path.parent()
    {
        table.class_names = read_classes_file(dir)?;
    }
    let name = path
        .file_name()
        .unwrap_or(path.as_os_str())
        .to_string_lossy();
    tracing::info!(
        rows = table.rows.len(),
        text = ?table.text_columns,
        label = %table.label_column,
        "read {name}"
    );
    Ok(table)
}

//! Labelled text files — IMDb's, the user's own — in parquet, CSV/TSV and JSON Lines, any number
//! of classes (at least two, checked once, here, where the classes are decided).
//!
//! Four steps, each usable alone:
//! 1. [`read_table`] reads one file into a [`RawTable`]: per data row the joined text and the raw
//!    label ([`RawLabel`]: an integer or a string, as the file has it), the columns found, and the
//!    class names found beside the data ([`ClassNames`]: the Hub's `ClassLabel` names in a
//!    parquet file's `huggingface` metadata, or a [`CLASSES_FILE`] next to the file).
//! 2. [`Classes::from_training`] decides the classes from the training table(s); [`Classes::map`]
//!    turns any table into [`Review`](crate::Review)s with class indices `0..n`.
//! 3. [`stratified_split`] holds out a seeded, per-class fraction for testing.
//! 4. [`load_dataset`] does all of it for a [`DatasetSpec`]: a file or a directory of split files
//!    (Hub layouts included), an optional test file, an optional hold-out fraction.
//!
//! # Columns ([`TableSpec`])
//! * A [`Column`] is a name or a 1-based position (`"2"` is the second column, as a user counts
//!   CSV columns; a parquet or JSON Lines file counts its fields in file order). Several text
//!   columns are joined with [`TableSpec::text_separator`] (default `" "`), e.g. AG News's title
//!   and description: `Column::parse_list("2,3")`.
//! * Unnamed columns are detected: the text from [`TEXT_NAMES`], the label from [`LABEL_NAMES`]
//!   (case-insensitive, first name in the list that matches wins); when none matches, the error
//!   lists the columns found.
//! * CSV/TSV header row: [`TableSpec::header`], or detected: the first row is a header when one of
//!   its cells is a column the spec names or one of the recognised names. Columns of a file
//!   without a header are called `"1"`, `"2"`, ... in messages and can only be given by position.
//!
//! # Labels ([`Classes`])
//! Class names come from, in order: [`TableSpec::label_names`], the training file's `ClassLabel`
//! metadata or `classes.txt`, IMDb's own (neg, pos: [`crate::imdb::class_names_for`]), the distinct string labels sorted, or for integer labels their
//! numbers `0..=max` (`1..=max` when the smallest is 1). Integer labels are class indices, except
//! that labels starting at 1 (`1..=n` with `n` names, or any labels without names whose smallest
//! is 1) are shifted to start at 0, which is logged (`tracing::info`). At least two classes, at most [`MAX_CLASSES`]. A label that no
//! training row has is an error naming it, the file and the row.
//!
//! # Rows
//! [`Review::row`](crate::Review::row) is the 0-based data row in its file (header excluded);
//! for a split of several shards, rows are counted on across the shards in order.
//! Errors name the file, the 0-based row, for text formats the 1-based line, and the column.
//!
//! # Decisions
//! * Values are taken as written: text is not trimmed or unescaped (AG News's `\n` escapes stay,
//!   as Python's `csv` and `pandas` leave them), labels are trimmed in CSV/TSV only.
//! * Nothing is dropped: an empty text, a missing value, a float or mixed-type label is an error.
//! * The hold-out uses [`crate::subset`]'s ChaCha8 + Fisher–Yates, one stream per class, so a
//!   seed gives the same split on every machine.

mod arrow;
mod dataset;
mod delimited;
mod error;
mod jsonl;
mod labels;
mod names;
mod parquet;
mod raw;
mod read;
mod record;
mod split;
mod thrift;

pub use self::dataset::{
    CONVERTED_PARQUET, Dataset, DatasetSpec, SplitFiles, find_splits, find_splits_in_files,
    load_dataset, load_splits, read_file, read_recorded,
};
pub use self::error::{Location, Result, TableError};
pub use self::labels::Classes;
pub use self::names::{CLASSES_FILE, ClassNames, MAX_CLASSES, NameSource};
pub use self::raw::{
    Column, DEFAULT_SEPARATOR, Format, LABEL_NAMES, RawLabel, RawRow, RawTable, TEXT_NAMES,
    TableSpec,
};
pub use self::read::read_table;
pub use self::record::{SPLIT_FILE, SplitRecord};
pub(crate) use self::split::hold_out;
pub use self::split::stratified_split;

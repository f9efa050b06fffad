//! `split.json`: which data rows a run trained, validated and tested on, so the run can be
//! resumed, evaluated again or repeated by another tool on exactly the same examples.

use std::path::{Path, PathBuf};

use super::dataset::read_recorded;
use super::error::{Result, TableError};
use super::raw::{Column, TableSpec};
use crate::example::Review;

/// The name of [`SplitRecord`]'s file in a run directory.
pub const SPLIT_FILE: &str = "split.json";

/// `split.json`: which data rows a run trained, validated and tested on (0-based data rows of
/// the files, continuing across shards), its classes and the raw label of each, so another
/// tool (the PyTorch + PEFT reference, `scripts/bench/peft_classify.py`) can use exactly the
/// same examples. Files written before validation splits existed have no `val_*` fields.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SplitRecord {
    pub train_files: Vec<PathBuf>,
    pub test_files: Vec<PathBuf>,
    pub test_fraction: Option<f64>,
    pub seed: u64,
    pub text_columns: Vec<String>,
    pub label_column: String,
    /// `--header` as given (CSV/TSV), so the files are read again the same way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<bool>,
    pub classes: Vec<String>,
    pub raw_labels: Vec<String>,
    pub train_rows: Vec<usize>,
    pub test_rows: Vec<usize>,
    /// The validation split's files: the training files when it was carved from them
    /// (`val_fraction`), else the validation file given.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub val_files: Vec<PathBuf>,
    /// The fraction of the training examples carved out for validation, when it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub val_fraction: Option<f64>,
    /// The validation rows of `val_files` (empty: the run had no validation split).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub val_rows: Vec<usize>,
}

impl SplitRecord {
    /// `dir/split.json`, as `train` wrote it, checked for consistency.
    ///
    /// # Errors
    /// [`TableError::Io`] when it cannot be read; [`TableError::SplitRecord`] when it is not
    /// JSON of this shape or contradicts itself.
    pub fn read(dir: &Path) -> Result<SplitRecord> {
        let path = dir.join(SPLIT_FILE);
        let bytes = std::fs::read(&path).map_err(|source| TableError::Io {
            action: "read",
            path: path.clone(),
            source,
        })?;
        let bad = |reason: String| TableError::SplitRecord {
            path: path.clone(),
            reason,
        };
        let record: SplitRecord = serde_json::from_slice(&bytes).map_err(|e| {
            // The parser's position once, before its message (which ends with it).
            let message = e.to_string();
            let suffix = format!(" at line {} column {}", e.line(), e.column());
            match message.strip_suffix(&suffix) {
                Some(reason) if e.line() > 0 => bad(format!(
                    "line {}, column {}: not a split.json train wrote: {reason}",
                    e.line(),
                    e.column()
                )),
                _ => bad(format!("not a split.json train wrote: {message}")),
            }
        })?;
        record.check().map_err(bad)?;
        Ok(record)
    }

    /// What must hold for the rows to be read back: at least two classes, one raw label
    /// each, files for every part that has rows, columns that parse.
    fn check(&self) -> std::result::Result<(), String> {
        if self.classes.len() < 2 {
            return Err(format!(
                "\"classes\" has {} entries; a run has at least two",
                self.classes.len()
            ));
        }
        if self.raw_labels.len() != self.classes.len() {
            return Err(format!(
                "\"raw_labels\" has {} entries for {} classes",
                self.raw_labels.len(),
                self.classes.len()
            ));
        }
        for (rows, files, key) in [
            (&self.train_rows, &self.train_files, "train"),
            (&self.test_rows, &self.test_files, "test"),
            (&self.val_rows, &self.val_files, "val"),
        ] {
            if !rows.is_empty() && files.is_empty() {
                return Err(format!(
                    "\"{key}_rows\" has rows but \"{key}_files\" is empty"
                ));
            }
        }
        if self.test_rows.is_empty() {
            return Err("\"test_rows\" is empty".into());
        }
        self.table_spec().map_err(|e| e.to_string())?;
        Ok(())
    }

    /// How the files are read again: the recorded columns as the user would give them (a
    /// headerless file's are positions: "2").
    fn table_spec(&self) -> Result<TableSpec> {
        Ok(TableSpec {
            text: self
                .text_columns
                .iter()
                .map(|c| c.parse())
                .collect::<Result<Vec<Column>>>()?,
            label: Some(self.label_column.parse()?),
            header: self.header,
            ..TableSpec::default()
        })
    }

    /// Whether the run had a validation split.
    pub fn has_validation(&self) -> bool {
        !self.val_rows.is_empty()
    }

    /// The recorded `rows` of `files` (one part of the run), read again with the recorded
    /// columns, in the recorded order (the order the run trained on).
    ///
    /// # Errors
    /// As [`read_recorded`].
    pub fn reviews(&self, files: &[PathBuf], rows: &[usize]) -> Result<Vec<Review>> {
        read_recorded(files, &self.table_spec()?, &self.raw_labels, rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `split.json` as versions before validation splits wrote it.
    const OLD: &str = r#"{"train_files":["d/train.csv"],"test_files":["d/train.csv"],
        "test_fraction":0.2,"seed":42,"text_columns":["2","3"],"label_column":"1",
        "classes":["World","Sports"],"raw_labels":["1","2"],"train_rows":[0,2],"test_rows":[1]}"#;

    fn write(dir: &Path, text: &str) {
        std::fs::write(dir.join(SPLIT_FILE), text).unwrap();
    }

    #[test]
    fn files_without_validation_still_read_and_write_back_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), OLD);
        let r = SplitRecord::read(dir.path()).unwrap();
        assert!(!r.has_validation());
        assert_eq!(r.text_columns, ["2", "3"]);
        let back: serde_json::Value = serde_json::to_value(&r).unwrap();
        let old: serde_json::Value = serde_json::from_str(OLD).unwrap();
        assert_eq!(
            back, old,
            "no val_* keys are added to a run without validation"
        );
    }

    #[test]
    fn contradictions_are_refused_naming_the_file_and_the_field() {
        let dir = tempfile::tempdir().unwrap();
        let cases = [
            (
                OLD.replace(r#""raw_labels":["1","2"]"#, r#""raw_labels":["1"]"#),
                "raw_labels",
            ),
            (
                OLD.replace(r#""classes":["World","Sports"]"#, r#""classes":["World"]"#),
                "classes",
            ),
            (
                OLD.replace(r#""test_rows":[1]"#, r#""test_rows":[]"#),
                "test_rows",
            ),
            (
                OLD.replace(r#""label_column":"1""#, r#""label_column":"""#),
                "column",
            ),
            (OLD.replace('}', r#","val_rows":[3]}"#), "val_files"),
            (OLD.replace("42", "-1"), "not a split.json"),
        ];
        for (text, needle) in cases {
            write(dir.path(), &text);
            let e = SplitRecord::read(dir.path()).unwrap_err().to_string();
            assert!(
                e.contains(SPLIT_FILE) && e.contains(needle),
                "{needle}: {e}"
            );
        }
        let e = SplitRecord::read(&dir.path().join("none"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("cannot read") && e.contains("none"), "{e}");
    }
}

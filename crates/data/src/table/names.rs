//! Class names found beside the data or given ([`ClassNames`], with their [`NameSource`]): a
//! [`CLASSES_FILE`] next to a data file, the Hub's `ClassLabel` metadata (read by `parquet.rs`),
//! or the caller's list; [`MAX_CLASSES`] bounds them all.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use super::error::{Result, TableError};

/// A file of class names, one per line, in class order, next to a data file.
pub const CLASSES_FILE: &str = "classes.txt";

/// The most classes a label column may make (a guard against a column of ids taken for labels).
pub const MAX_CLASSES: usize = 10_000;

/// Where class names came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NameSource {
    /// Given by the caller ([`super::TableSpec::label_names`]).
    Given,
    /// The Hub's `ClassLabel` feature in a parquet file's `huggingface` metadata.
    ClassLabel(PathBuf),
    /// A [`CLASSES_FILE`], one name per line.
    ClassesFile(PathBuf),
    /// The distinct string labels of the training data, sorted.
    DistinctStrings,
    /// The integer labels of the training data, written as numbers.
    Integers,
    /// What is known about a dataset whose files do not say (IMDb's neg/pos:
    /// [`crate::imdb::class_names_for`]); the dataset named.
    KnownDataset(&'static str),
}

impl fmt::Display for NameSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NameSource::Given => f.write_str("the label names given"),
            NameSource::ClassLabel(p) => write!(f, "the ClassLabel metadata of {}", p.display()),
            NameSource::ClassesFile(p) => write!(f, "{}", p.display()),
            NameSource::DistinctStrings => f.write_str("the distinct labels, sorted"),
            NameSource::Integers => f.write_str("the integer labels"),
            NameSource::KnownDataset(name) => write!(f, "{name}'s class names"),
        }
    }
}

/// Class names in class order, with where they came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClassNames {
    /// The names; index = class.
    pub names: Vec<String>,
    /// Where they came from.
    pub source: NameSource,
}

impl ClassNames {
    /// Checked names: none empty, none twice, at most [`MAX_CLASSES`].
    ///
    /// # Errors
    /// [`TableError::BadClassNames`].
    pub fn new(names: Vec<String>, source: NameSource) -> Result<ClassNames> {
        let bad = |reason: String| TableError::BadClassNames {
            source_name: source.to_string(),
            reason,
        };
        if names.is_empty() {
            return Err(bad("no names".into()));
        }
        if names.len() > MAX_CLASSES {
            return Err(bad(format!(
                "{} names, more than the {MAX_CLASSES} supported",
                names.len()
            )));
        }
        let mut seen = HashMap::new();
        for (i, name) in names.iter().enumerate() {
            if name.trim().is_empty() {
                return Err(bad(format!("name {} (0-based) is empty", i)));
            }
            if let Some(first) = seen.insert(name.as_str(), i) {
                return Err(bad(format!(
                    "{name:?} is given twice (classes {first} and {i})"
                )));
            }
        }
        Ok(ClassNames { names, source })
    }
}

/// `dir/classes.txt` if there is one: one name per line, trailing blank lines ignored.
pub(crate) fn read_classes_file(dir: &Path) -> Result<Option<ClassNames>> {
    let path = dir.join(CLASSES_FILE);
    if !path.is_file() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&path).map_err(|e| TableError::io("read", &path, e))?;
    let mut names: Vec<String> = text.lines().map(|l| l.trim().to_owned()).collect();
    while names.last().is_some_and(String::is_empty) {
        names.pop();
    }
    if let Some(i) = names.iter().position(String::is_empty) {
        return Err(TableError::BadClassNames {
            source_name: path.display().to_string(),
            reason: format!("line {} is empty", i + 1),
        });
    }
    ClassNames::new(names, NameSource::ClassesFile(path)).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn class_name_lists_are_checked() {
        assert!(ClassNames::new(names(&["a", "a"]), NameSource::Given).is_err());
        assert!(ClassNames::new(names(&["a", " "]), NameSource::Given).is_err());
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read_classes_file(dir.path()).unwrap(), None);
        std::fs::write(dir.path().join(CLASSES_FILE), "World\r\nSports\n\n").unwrap();
        let n = read_classes_file(dir.path()).unwrap().unwrap();
        assert_eq!(n.names, ["World", "Sports"]);
        std::fs::write(dir.path().join(CLASSES_FILE), "World\n\nSports\n").unwrap();
        let err = read_classes_file(dir.path()).unwrap_err();
        assert!(err.to_string().contains("line 2 is empty"), "{err}");
    }
}

//! Labels to classes: [`Classes`] decides the class list from the training table(s) and maps any
//! table's raw labels to class indices `0..n` (the names found or given, [`ClassNames`], are in
//! `names.rs`).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use super::error::{Location, Result, TableError};
use super::names::{ClassNames, MAX_CLASSES, NameSource};
use super::raw::{RawLabel, RawTable};
use crate::example::Review;

/// How raw labels become class indices.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Mapping {
    /// Integer labels: class = label - offset.
    Int { offset: i64 },
    /// String labels: class = position of the name.
    Str(HashMap<String, u32>),
}

/// Class names listed in full in the log up to this many; beyond, the first few and a count.
const LISTED_CLASSES: usize = 8;

/// `names` for one log line: all of them up to [`LISTED_CLASSES`], else the first four and
/// `… (N more)`.
fn shorten_list(names: &[String]) -> String {
    if names.len() <= LISTED_CLASSES {
        return names.join(", ");
    }
    format!("{}, … ({} more)", names[..4].join(", "), names.len() - 4)
}

/// The classes of a dataset, decided from its training data (see the module doc for the rules).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Classes {
    names: Vec<String>,
    source: NameSource,
    mapping: Mapping,
    counts: Vec<usize>,
    train: PathBuf,
    column: String,
}

/// Where the smallest and the largest integer label are.
struct IntRange {
    min: (i64, Location),
    max: (i64, Location),
}

fn int_range(tables: &[RawTable]) -> Option<IntRange> {
    let mut range: Option<IntRange> = None;
    for t in tables {
        for r in &t.rows {
            let RawLabel::Int(v) = r.label else { continue };
            match &mut range {
                None => {
                    range = Some(IntRange {
                        min: (v, t.location(r)),
                        max: (v, t.location(r)),
                    });
                }
                Some(g) => {
                    if v < g.min.0 {
                        g.min = (v, t.location(r));
                    }
                    if v > g.max.0 {
                        g.max = (v, t.location(r));
                    }
                }
            }
        }
    }
    range
}

impl Classes {
    /// Decide the classes from the training table(s) (all shards of the training split) and
    /// `label_names` (overriding names found beside the data).
    ///
    /// # Errors
    /// Mixed label kinds across the tables, unusable names, a label outside the names, a
    /// negative integer label, fewer than two classes or more than [`MAX_CLASSES`].
    pub fn from_training(tables: &[RawTable], label_names: Option<&[String]>) -> Result<Classes> {
        let Some(first) = tables.first() else {
            return Err(TableError::EmptyTable {
                path: PathBuf::new(),
                hint: " (no training files)",
            });
        };
        let (Some(first_row), column) = (first.rows.first(), first.label_column.clone()) else {
            return Err(TableError::EmptyTable {
                path: first.path.clone(),
                hint: "",
            });
        };
        // Each table is of one kind already; the shards must agree with each other.
        for t in &tables[1..] {
            if let Some(r) = t.rows.first()
                && r.label.kind() != first_row.label.kind()
            {
                return Err(TableError::MixedLabels {
                    at: Box::new(t.location(r)),
                    column: t.label_column.clone(),
                    value: r.label.to_string(),
                    kind: r.label.kind(),
                    first_kind: match first_row.label {
                        RawLabel::Int(_) => "integers",
                        RawLabel::Str(_) => "strings",
                    },
                    first: Box::new(first.location(first_row)),
                    hint: "",
                });
            }
        }
        let known = match label_names {
            Some(names) => Some(ClassNames::new(names.to_vec(), NameSource::Given)?),
            None => tables.iter().find_map(|t| t.class_names.clone()),
        };
        let all_rows = || {
            tables
                .iter()
                .flat_map(|t| t.rows.iter().map(move |r| (t, r)))
        };
        let (names, source, mapping) = match (&first_row.label, known) {
            (RawLabel::Str(_), Some(known)) => {
                let index: HashMap<String, u32> = (0u32..)
                    .zip(&known.names)
                    .map(|(i, n)| (n.clone(), i))
                    .collect();
                for (t, r) in all_rows() {
                    if let RawLabel::Str(s) = &r.label
                        && !index.contains_key(s)
                    {
                        return Err(TableError::LabelNotInNames {
                            at: Box::new(t.location(r)),
                            column: t.label_column.clone(),
                            label: s.clone(),
                            source_name: known.source.to_string(),
                            names: known.names,
                        });
                    }
                }
                (known.names, known.source, Mapping::Str(index))
            }
            (RawLabel::Str(_), None) => {
                let mut distinct: BTreeMap<&str, ()> = BTreeMap::new();
                for (_, r) in all_rows() {
                    if let RawLabel::Str(s) = &r.label {
                        distinct.insert(s, ());
                    }
                }
                if distinct.len() > MAX_CLASSES {
                    return Err(TableError::TooManyClasses {
                        path: first.path.clone(),
                        column,
                        classes: distinct.len() as u128,
                        max: MAX_CLASSES,
                    });
                }
                let names: Vec<String> = distinct.into_keys().map(str::to_owned).collect();
                let index = (0u32..).zip(&names).map(|(i, n)| (n.clone(), i)).collect();
                (names, NameSource::DistinctStrings, Mapping::Str(index))
            }
            (RawLabel::Int(_), known) => {
                let Some(range) = int_range(tables) else {
                    return Err(TableError::EmptyTable {
                        path: first.path.clone(),
                        hint: "",
                    });
                };
                Self::int_classes(range, known, &first.path, &column)?
            }
        };
        let mut classes = Classes {
            names,
            source,
            mapping,
            counts: Vec::new(),
            train: first.path.clone(),
            column,
        };
        let mut counts = vec![0usize; classes.names.len()];
        for (_, r) in all_rows() {
            if let Some(c) = classes.index_of(&r.label) {
                counts[c as usize] += 1;
            }
        }
        classes.counts = counts;
        let present = classes.counts.iter().filter(|&&n| n > 0).count();
        if present < 2 {
            return Err(TableError::OneClass {
                path: first.path.clone(),
                column: classes.column,
                label: first_row.label.to_string(),
                rows: all_rows().count(),
            });
        }
        for (name, _) in classes
            .names
            .iter()
            .zip(&classes.counts)
            .filter(|(_, n)| **n == 0)
        {
            tracing::warn!(class = %name, "class {name:?} has no training rows");
        }
        tracing::info!(
            source = %classes.source,
            "{} classes: {}",
            classes.names.len(),
            shorten_list(&classes.names)
        );
        Ok(classes)
    }

    /// Integer labels: identity, or shifted by one when they start at 1.
    fn int_classes(
        range: IntRange,
        known: Option<ClassNames>,
        path: &Path,
        column: &str,
    ) -> Result<(Vec<String>, NameSource, Mapping)> {
        let IntRange { min, max } = range;
        let (offset, names, source) = match known {
            Some(known) => {
                let n = known.names.len() as i64;
                let offset = if min.0 >= 0 && max.0 < n {
                    0
                } else if min.0 == 1 && max.0 == n {
                    1
                } else {
                    // Non-negative labels fail only by a too-large maximum.
                    let (label, at) = if min.0 < 0 { min } else { max };
                    return Err(TableError::LabelOutOfRange {
                        at: Box::new(at),
                        column: column.to_owned(),
                        label,
                        range: format!("0..={} (or 1..={n})", n - 1),
                        names: format!(" ({n} class names from {})", known.source),
                    });
                };
                (offset, known.names, known.source)
            }
            None => {
                if min.0 < 0 {
                    return Err(TableError::LabelOutOfRange {
                        at: Box::new(min.1),
                        column: column.to_owned(),
                        label: min.0,
                        range: "the class ids 0, 1, ...".into(),
                        names: String::new(),
                    });
                }
                let offset = i64::from(min.0 == 1);
                let classes = (i128::from(max.0) - i128::from(offset) + 1) as u128;
                if classes > MAX_CLASSES as u128 {
                    return Err(TableError::TooManyClasses {
                        path: path.to_path_buf(),
                        column: column.to_owned(),
                        classes,
                        max: MAX_CLASSES,
                    });
                }
                let names = (offset..=max.0).map(|v| v.to_string()).collect();
                (offset, names, NameSource::Integers)
            }
        };
        if offset != 0 {
            tracing::info!(
                "labels {}..={} mapped to classes 0..={}",
                min.0,
                max.0,
                max.0 - offset
            );
        }
        Ok((names, source, Mapping::Int { offset }))
    }

    /// The class names; index = class.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The number of classes.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Never true (at least two classes); for clippy's `len_without_is_empty`.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// Where the names came from.
    pub fn source(&self) -> &NameSource {
        &self.source
    }

    /// What is subtracted from integer labels (1 when they start at 1); `None` for string labels.
    pub fn label_offset(&self) -> Option<i64> {
        match self.mapping {
            Mapping::Int { offset } => Some(offset),
            Mapping::Str(_) => None,
        }
    }

    /// The raw label value of each class, as it is written in the data (an integer in
    /// decimal, or the string): what another tool reading the same files must map to class
    /// `i` (e.g. the PyTorch reference on the same split).
    pub fn raw_labels(&self) -> Vec<String> {
        match &self.mapping {
            Mapping::Int { offset } => (0..self.names.len() as i64)
                .map(|i| (i + offset).to_string())
                .collect(),
            Mapping::Str(index) => {
                let mut raw = vec![String::new(); self.names.len()];
                for (label, &class) in index {
                    if let Some(slot) = raw.get_mut(class as usize) {
                        slot.clone_from(label);
                    }
                }
                raw
            }
        }
    }

    /// Training rows per class.
    pub fn train_counts(&self) -> &[usize] {
        &self.counts
    }

    /// The label column of the (first) training file.
    pub fn label_column(&self) -> &str {
        &self.column
    }

    /// The class of a raw label, if it has one.
    pub fn index_of(&self, label: &RawLabel) -> Option<u32> {
        match (&self.mapping, label) {
            (Mapping::Int { offset }, RawLabel::Int(v)) => v
                .checked_sub(*offset)
                .and_then(|c| u32::try_from(c).ok())
                .filter(|&c| (c as usize) < self.names.len()),
            (Mapping::Str(index), RawLabel::Str(s)) => index.get(s).copied(),
            _ => None,
        }
    }

    /// `table`'s rows as [`Review`]s, in file order, `row_offset` added to each row (for shards
    /// after the first).
    ///
    /// # Errors
    /// [`TableError::UnseenLabel`] for a label no training row has, naming it, the file and row.
    pub fn map(&self, table: RawTable, row_offset: usize) -> Result<Vec<Review>> {
        let RawTable {
            path,
            label_column,
            rows,
            ..
        } = table;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let class = self
                .index_of(&r.label)
                .filter(|&c| self.counts[c as usize] > 0);
            let Some(label) = class else {
                return Err(TableError::UnseenLabel {
                    at: Box::new(Location {
                        path,
                        row: r.row,
                        line: r.line,
                    }),
                    column: label_column,
                    label: r.label.to_string(),
                    train: self.train.clone(),
                    names: self
                        .names
                        .iter()
                        .zip(&self.counts)
                        .filter(|(_, n)| **n > 0)
                        .map(|(s, _)| s.clone())
                        .collect(),
                });
            };
            // Moved, not copied: a split's texts are its bulk.
            out.push(Review {
                row: row_offset + r.row,
                text: r.text,
                label,
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::super::raw::{Format, RawRow};
    use super::*;

    #[test]
    fn long_class_lists_are_shortened_in_the_log() {
        let few: Vec<String> = ["neg", "pos"].map(String::from).to_vec();
        assert_eq!(shorten_list(&few), "neg, pos");
        let many: Vec<String> = (0..300).map(|i| format!("class{i}")).collect();
        assert_eq!(
            shorten_list(&many),
            "class0, class1, class2, class3, … (296 more)"
        );
    }

    fn table(name: &str, labels: Vec<RawLabel>) -> RawTable {
        RawTable {
            path: PathBuf::from(name),
            format: Format::Csv,
            columns: vec!["text".into(), "label".into()],
            text_columns: vec!["text".into()],
            label_column: "label".into(),
            header: true,
            rows: labels
                .into_iter()
                .enumerate()
                .map(|(row, label)| RawRow {
                    row,
                    line: Some(row as u64 + 2),
                    text: format!("t{row}"),
                    label,
                })
                .collect(),
            class_names: None,
        }
    }

    fn ints(v: &[i64]) -> Vec<RawLabel> {
        v.iter().map(|&i| RawLabel::Int(i)).collect()
    }

    fn strs(v: &[&str]) -> Vec<RawLabel> {
        v.iter().map(|s| RawLabel::Str((*s).into())).collect()
    }

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    fn labels(reviews: &[Review]) -> Vec<u32> {
        reviews.iter().map(|r| r.label).collect()
    }

    #[test]
    fn string_labels_become_their_sorted_distinct_names() {
        let t = table("a.jsonl", strs(&["pos", "neg", "neutral", "neg"]));
        let c = Classes::from_training(std::slice::from_ref(&t), None).unwrap();
        assert_eq!(c.names(), ["neg", "neutral", "pos"]);
        assert_eq!(c.source(), &NameSource::DistinctStrings);
        assert_eq!(c.train_counts(), [2, 1, 1]);
        assert_eq!(c.label_offset(), None);
        assert_eq!(labels(&c.map(t, 0).unwrap()), [2, 0, 1, 0]);
    }

    #[test]
    fn given_names_order_string_labels() {
        let t = table("a.csv", strs(&["pos", "neg"]));
        let given = names(&["pos", "neg"]);
        let c = Classes::from_training(std::slice::from_ref(&t), Some(&given)).unwrap();
        assert_eq!(labels(&c.map(t, 10).unwrap()), [0, 1]);
        let t = table("a.csv", strs(&["pos", "meh"]));
        let err = Classes::from_training(&[t], Some(&given)).unwrap_err();
        assert!(
            err.to_string()
                .starts_with(r#"a.csv, row 1 (line 3), column "label": label "meh" is not one of"#),
            "{err}"
        );
    }

    #[test]
    fn integer_labels_from_one_are_shifted_to_zero() {
        // Without names: 1..=4 become 0..=3, named by their original numbers.
        let t = table("a.csv", ints(&[3, 1, 4, 2]));
        let c = Classes::from_training(std::slice::from_ref(&t), None).unwrap();
        assert_eq!(c.names(), ["1", "2", "3", "4"]);
        assert_eq!(c.label_offset(), Some(1));
        assert_eq!(labels(&c.map(t.clone(), 0).unwrap()), [2, 0, 3, 1]);
        // With four names: the same shift.
        let mut named = t.clone();
        named.class_names = Some(
            ClassNames::new(
                names(&["World", "Sports", "Business", "Sci/Tech"]),
                NameSource::ClassesFile("classes.txt".into()),
            )
            .unwrap(),
        );
        let c = Classes::from_training(std::slice::from_ref(&named), None).unwrap();
        assert_eq!(c.names()[0], "World");
        assert_eq!(labels(&c.map(named, 0).unwrap()), [2, 0, 3, 1]);
        // Zero-based labels stay.
        let t = table("a.csv", ints(&[0, 2, 1]));
        let c = Classes::from_training(std::slice::from_ref(&t), None).unwrap();
        assert_eq!((c.names().len(), c.label_offset()), (3, Some(0)));
    }

    #[test]
    fn integer_labels_outside_the_names_are_refused() {
        let mut t = table("a.csv", ints(&[0, 1, 5]));
        let given = names(&["a", "b", "c"]);
        let err = Classes::from_training(std::slice::from_ref(&t), Some(&given)).unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("a.csv, row 2 (line 4)"), "{msg}");
        assert!(msg.contains("label 5 is outside 0..=2 (or 1..=3)"), "{msg}");
        t.rows[0].label = RawLabel::Int(-1);
        let err = Classes::from_training(&[t], None).unwrap_err();
        assert!(err.to_string().contains("row 0 (line 2)"), "{err}");
        assert!(err.to_string().contains("label -1"), "{err}");
    }

    #[test]
    fn one_class_only_is_refused() {
        let t = table("one.csv", strs(&["spam", "spam"]));
        let err = Classes::from_training(&[t], None).unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"one.csv: label column "label" holds one class only ("spam", all 2 rows); a classifier needs at least two"#
        );
        // Names do not make up for missing data.
        let t = table("one.csv", ints(&[0, 0]));
        let given = names(&["a", "b"]);
        assert!(matches!(
            Classes::from_training(&[t], Some(&given)),
            Err(TableError::OneClass { .. })
        ));
    }

    #[test]
    fn huge_label_ranges_are_refused() {
        let t = table("ids.csv", ints(&[0, 1_000_000_000]));
        assert!(matches!(
            Classes::from_training(&[t], None),
            Err(TableError::TooManyClasses { .. })
        ));
    }

    #[test]
    fn a_test_label_unseen_in_training_names_file_and_row() {
        let train = table("train.csv", strs(&["a", "b"]));
        let c = Classes::from_training(&[train], Some(&names(&["a", "b", "c"]))).unwrap();
        for (label, shown) in [
            (RawLabel::Str("c".into()), r#""c""#),
            (RawLabel::Str("z".into()), r#""z""#),
            (RawLabel::Int(0), "0"),
        ] {
            let test = table("test.csv", vec![RawLabel::Str("a".into()), label]);
            let err = c.map(test, 0).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!(
                    r#"test.csv, row 1 (line 3), column "label": label {shown} does not occur in the training data (train.csv); classes trained on: "a", "b""#
                )
            );
        }
    }

    #[test]
    fn shards_must_agree_on_the_label_kind() {
        let a = table("a.jsonl", ints(&[0, 1]));
        let b = table("b.jsonl", strs(&["x"]));
        let err = Classes::from_training(&[a, b], None).unwrap_err();
        assert!(matches!(err, TableError::MixedLabels { .. }), "{err}");
        assert!(err.to_string().starts_with("b.jsonl, row 0"), "{err}");
    }
}

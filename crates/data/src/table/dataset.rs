//! A whole dataset from local files: [`load_dataset`] reads the training split, decides the
//! classes, and reads the test split or holds one out; [`find_splits`] recognises split files in a
//! directory laid out by hand or as on the Hugging Face Hub.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::error::{Result, TableError};
use super::labels::Classes;
use super::names::{ClassNames, NameSource, read_classes_file};
use super::raw::{Format, RawTable, TableSpec};
use super::read::read_table;
use super::split::stratified_split;
use crate::example::Review;
use crate::subset::DEFAULT_SEED;

/// The Hub's auto-converted parquet branch of a dataset repository: `<config>/<split>/NNNN.parquet`
/// for every dataset, whatever its own format; what `datasets` reads when a repository's files
/// are not data files it can read directly.
pub const CONVERTED_PARQUET: &str = "refs/convert/parquet";
/// Splits used for testing when there is no `test` split, in order of preference.
const TEST_STANDINS: &[&str] = &["validation", "dev"];
/// The splits whose presence marks a directory as holding a dataset.
const KNOWN_SPLITS: &[&str] = &["train", "test", "validation", "dev"];

/// What to load.
#[derive(Clone, Debug, PartialEq)]
pub struct DatasetSpec {
    /// The training data: a data file, or a directory of split files (see [`find_splits`]).
    pub train: PathBuf,
    /// A test data file, overriding any test split in a `train` directory.
    pub test: Option<PathBuf>,
    /// A validation data file (same format and columns as the training data).
    pub validation: Option<PathBuf>,
    /// For a directory: the configuration (subdirectory) to use when there are several.
    pub config: Option<String>,
    /// Hold out this fraction of each class for testing (for data without a test split).
    pub test_fraction: Option<f64>,
    /// How to read every file.
    pub table: TableSpec,
    /// Seed of the hold-out.
    pub seed: u64,
}

impl DatasetSpec {
    /// `train` with everything else at its default (no test file, no hold-out, columns detected,
    /// [`DEFAULT_SEED`]).
    pub fn new(train: impl Into<PathBuf>) -> DatasetSpec {
        DatasetSpec {
            train: train.into(),
            test: None,
            validation: None,
            config: None,
            test_fraction: None,
            table: TableSpec::default(),
            seed: DEFAULT_SEED,
        }
    }
}

/// A dataset ready for tokenisation.
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    /// Training examples, in row order.
    pub train: Vec<Review>,
    /// Test examples, in row order.
    pub test: Vec<Review>,
    /// Validation examples of the validation file given, in row order.
    pub validation: Option<Vec<Review>>,
    /// The classes (names, where they came from, training counts).
    pub classes: Classes,
    /// The training split's files (shards in order).
    pub train_files: Vec<PathBuf>,
    /// The test split's files (the training files for a hold-out).
    pub test_files: Vec<PathBuf>,
    /// The hold-out fraction, when the test split was held out.
    pub test_fraction: Option<f64>,
    /// The text column(s) of the (first) training file.
    pub text_columns: Vec<String>,
    /// The label column of the (first) training file.
    pub label_column: String,
}

/// The split files found in a directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SplitFiles {
    /// The directory they are in (the one given, its `data/`, or a configuration's).
    pub dir: PathBuf,
    /// Split name → its files, shards in order.
    pub splits: BTreeMap<String, Vec<PathBuf>>,
}

impl SplitFiles {
    /// The files of `split`.
    pub fn get(&self, split: &str) -> Option<&[PathBuf]> {
        self.splits.get(split).map(Vec::as_slice)
    }

    /// The splits [`load_splits`] reads, in that order: `train` and the test split (`test`,
    /// else `validation`/`dev`); or, with no `train` but a single split, that one (to hold a test
    /// part out of). The files to fetch when the split files are not local yet.
    pub fn used(&self) -> Vec<&str> {
        if self.splits.contains_key("train") {
            let test = ["test"]
                .iter()
                .chain(TEST_STANDINS)
                .find(|s| self.splits.contains_key(**s));
            std::iter::once("train").chain(test.copied()).collect()
        } else if self.splits.len() == 1 {
            self.splits.keys().map(String::as_str).collect()
        } else {
            Vec::new()
        }
    }
}

/// The split a data file belongs to: its name up to the first `-` or `.` (`train.csv`,
/// `train-00000-of-00002.parquet`), if it has a data extension.
fn split_of(name: &str) -> Option<&str> {
    let (_, ext) = name.rsplit_once('.')?;
    Format::from_extension(ext)?;
    let end = name.find(['-', '.']).unwrap_or(name.len());
    (end > 0).then(|| &name[..end])
}

/// `<split>-NNNNN-of-MMMMM.<ext>` → (NNNNN, MMMMM).
fn shard_of(name: &str) -> Option<(usize, usize)> {
    let stem = name.rsplit_once('.')?.0;
    let mut parts = stem.rsplitn(4, '-');
    let total = parts.next()?.parse().ok()?;
    (parts.next()? == "of").then_some(())?;
    let index = parts.next()?.parse().ok()?;
    Some((index, total))
}

/// How deep [`Listing::walk`] looks: `<config>/<split>/<file>`, the deepest layout recognised.
const MAX_DEPTH: usize = 3;

/// The files of a dataset, by `/`-joined path relative to its root: a directory walked
/// ([`Listing::walk`]) or a Hub repository's file list. [`find_splits`] and
/// [`find_splits_in_files`] decide from it alike, so a dataset on the Hub is recognised exactly as
/// the same files in a directory would be.
struct Listing {
    /// Sorted.
    files: Vec<String>,
}

impl Listing {
    fn new(files: &[String]) -> Listing {
        let mut files: Vec<String> = files
            .iter()
            .filter(|f| !f.split('/').any(|part| part.starts_with('.')))
            .cloned()
            .collect();
        files.sort();
        files.dedup();
        Listing { files }
    }

    /// The files under `dir` down to [`MAX_DEPTH`] (links followed, as the Hub cache's
    /// snapshot entries are links; hidden entries skipped).
    fn walk(dir: &Path) -> Result<Listing> {
        fn visit(dir: &Path, prefix: &str, depth: usize, out: &mut Vec<String>) -> Result<()> {
            let entries =
                std::fs::read_dir(dir).map_err(|e| TableError::io("read directory", dir, e))?;
            for entry in entries {
                let entry = entry.map_err(|e| TableError::io("read directory", dir, e))?;
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.starts_with('.') {
                    continue;
                }
                let path = entry.path();
                if path.is_dir() {
                    if depth + 1 < MAX_DEPTH {
                        visit(&path, &format!("{prefix}{name}/"), depth + 1, out)?;
                    }
                } else {
                    out.push(format!("{prefix}{name}"));
                }
            }
            Ok(())
        }
        let mut files = Vec::new();
        visit(dir, "", 0, &mut files)?;
        files.sort();
        Ok(Listing { files })
    }

    /// The entries directly in directory `prefix` (`""` or `"a/b/"`): `(name, is_dir)`, sorted.
    fn entries(&self, prefix: &str) -> Vec<(String, bool)> {
        let mut out: Vec<(String, bool)> = Vec::new();
        for f in &self.files {
            let Some(rest) = f.strip_prefix(prefix) else {
                continue;
            };
            let entry = match rest.split_once('/') {
                Some((dir, _)) => (dir.to_owned(), true),
                None => (rest.to_owned(), false),
            };
            if out.last() != Some(&entry) {
                out.push(entry);
            }
        }
        out.sort();
        out.dedup();
        out
    }

    fn is_dir(&self, prefix: &str) -> bool {
        self.files.iter().any(|f| f.starts_with(prefix))
    }
}

/// The split files directly in directory `prefix` of `listing`: `<split>.*`, `<split>-*` and
/// `<split>/*` (the Hub's auto-converted parquet layout, for the known split names); paths
/// relative to the listing's root. `root` is only for messages.
fn collect(listing: &Listing, root: &Path, prefix: &str) -> Result<BTreeMap<String, Vec<String>>> {
    let dir = || under(root, prefix);
    // Split → (file name below `prefix`, path below the root).
    let mut found: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for (name, is_dir) in listing.entries(prefix) {
        if is_dir {
            if KNOWN_SPLITS.contains(&name.as_str()) {
                for (inner, inner_dir) in listing.entries(&format!("{prefix}{name}/")) {
                    if !inner_dir && split_of(&inner).is_some() {
                        found
                            .entry(name.clone())
                            .or_default()
                            .push((format!("{name}/{inner}"), format!("{prefix}{name}/{inner}")));
                    }
                }
            }
        } else if let Some(split) = split_of(&name) {
            found
                .entry(split.to_owned())
                .or_default()
                .push((name.clone(), format!("{prefix}{name}")));
        }
    }
    let mut splits = BTreeMap::new();
    for (split, files) in found {
        let names: Vec<String> = files.iter().map(|(n, _)| n.clone()).collect();
        let ambiguous = || TableError::AmbiguousSplit {
            dir: dir(),
            split: split.clone(),
            files: names.clone(),
        };
        // One layout and one format per split.
        let in_subdir = names.iter().filter(|n| n.contains('/')).count();
        if in_subdir != 0 && in_subdir != names.len() {
            return Err(ambiguous());
        }
        let formats: Vec<Option<Format>> = names
            .iter()
            .map(|n| {
                n.rsplit_once('.')
                    .and_then(|(_, e)| Format::from_extension(e))
            })
            .collect();
        if formats.windows(2).any(|w| w[0] != w[1]) {
            return Err(ambiguous());
        }
        if in_subdir == 0 && names.len() > 1 {
            // Several files directly here: they must be the shards of one set.
            let shards: Option<Vec<(usize, usize)>> = names.iter().map(|n| shard_of(n)).collect();
            let Some(shards) = shards else {
                return Err(ambiguous());
            };
            let total = shards[0].1;
            let complete = shards.len() == total
                && shards
                    .iter()
                    .enumerate()
                    .all(|(i, &(index, t))| index == i && t == total);
            if !complete {
                return Err(TableError::IncompleteShards {
                    dir: dir(),
                    split,
                    expected: total,
                    found: names,
                });
            }
        } else if in_subdir == 0
            && let Some((index, total)) = shard_of(&names[0])
            && (index, total) != (0, 1)
        {
            return Err(TableError::IncompleteShards {
                dir: dir(),
                split,
                expected: total,
                found: names,
            });
        }
        splits.insert(split, files.into_iter().map(|(_, p)| p).collect());
    }
    Ok(splits)
}

/// Directory `prefix` (`""` or `"a/b/"`) of a listing rooted at `root`, as a path.
fn under(root: &Path, prefix: &str) -> PathBuf {
    match prefix.trim_end_matches('/') {
        "" => root.to_path_buf(),
        p => root.join(p),
    }
}

fn has_known(splits: &BTreeMap<String, Vec<String>>) -> bool {
    KNOWN_SPLITS.iter().any(|s| splits.contains_key(*s))
}

/// Recognise the split files of a dataset directory. Looked for, in order: in `dir` itself (or
/// in `dir/<config>` when a configuration is given); in `dir/data/` (the Hub's
/// `data/<split>-NNNNN-of-MMMMM.parquet`); in the one subdirectory that has them (a
/// configuration, e.g. IMDb's `plain_text/`). A split is a file `<split>.<ext>`, a complete set of
/// shards `<split>-NNNNN-of-MMMMM.<ext>` (in order), or a directory `<split>/` of data files (the
/// Hub's auto-converted `<config>/<split>/0000.parquet`).
///
/// # Errors
/// No split found, several configurations and none chosen, an unknown configuration, a split
/// given twice (two formats or layouts) or an incomplete set of shards.
pub fn find_splits(dir: &Path, config: Option<&str>) -> Result<SplitFiles> {
    find_in(&Listing::walk(dir)?, dir, config)
}

/// [`find_splits`] over a list of files (a Hub repository's, by their paths in it) rather than a
/// directory: the same rules, the paths returned under `root` (where the files are or will be,
/// e.g. the repository's snapshot in the Hub cache).
///
/// # Errors
/// As [`find_splits`].
pub fn find_splits_in_files(
    files: &[String],
    root: &Path,
    config: Option<&str>,
) -> Result<SplitFiles> {
    find_in(&Listing::new(files), root, config)
}

fn find_in(listing: &Listing, root: &Path, config: Option<&str>) -> Result<SplitFiles> {
    let subdirs = |prefix: &str| -> Vec<String> {
        listing
            .entries(prefix)
            .into_iter()
            .filter(|(n, is_dir)| *is_dir && !KNOWN_SPLITS.contains(&n.as_str()))
            .map(|(n, _)| n)
            .collect()
    };
    let found = |prefix: String, splits: BTreeMap<String, Vec<String>>| SplitFiles {
        dir: under(root, &prefix),
        splits: splits
            .into_iter()
            .map(|(s, files)| (s, files.iter().map(|f| root.join(f)).collect()))
            .collect(),
    };
    if let Some(config) = config {
        let prefix = format!("{}/", config.trim_matches('/'));
        if config.is_empty() || !listing.is_dir(&prefix) {
            return Err(TableError::NoSuchConfig {
                dir: root.to_path_buf(),
                config: config.to_owned(),
                found: subdirs(""),
            });
        }
        let splits = collect(listing, root, &prefix)?;
        return if splits.is_empty() {
            Err(no_split(listing, root, &prefix, "split"))
        } else {
            Ok(found(prefix, splits))
        };
    }
    let here = collect(listing, root, "")?;
    if has_known(&here) {
        return Ok(found(String::new(), here));
    }
    if listing.is_dir("data/") {
        let data = collect(listing, root, "data/")?;
        if has_known(&data) {
            return Ok(found("data/".into(), data));
        }
    }
    let mut configs = Vec::new();
    for name in subdirs("") {
        if name == "data" {
            continue;
        }
        let prefix = format!("{name}/");
        let splits = collect(listing, root, &prefix)?;
        if has_known(&splits) {
            configs.push((name, prefix, splits));
        }
    }
    match configs.len() {
        0 if !here.is_empty() => Ok(found(String::new(), here)),
        0 => Err(no_split(listing, root, "", "split")),
        1 => {
            let (name, prefix, splits) = configs.remove(0);
            tracing::info!("using configuration {name:?} of {}", root.display());
            Ok(found(prefix, splits))
        }
        _ => Err(TableError::SeveralConfigs {
            dir: root.to_path_buf(),
            configs: configs.into_iter().map(|(n, _, _)| n).collect(),
        }),
    }
}

/// The error for a directory without the split asked for, listing its data files.
fn no_split(listing: &Listing, root: &Path, prefix: &str, what: &'static str) -> TableError {
    TableError::NoSplit {
        dir: under(root, prefix),
        what,
        found: listing
            .entries(prefix)
            .into_iter()
            .filter(|(n, is_dir)| !is_dir && split_of(n).is_some())
            .map(|(n, _)| n)
            .collect(),
    }
}

/// The files of a split read as one: rows numbered on across the files.
fn read_split(files: &[PathBuf], spec: &TableSpec) -> Result<Vec<RawTable>> {
    files.iter().map(|f| read_table(f, spec)).collect()
}

/// Map tables through the classes, numbering rows on across them.
fn map_split(classes: &Classes, tables: Vec<RawTable>) -> Result<Vec<Review>> {
    let mut out = Vec::new();
    for t in tables {
        let offset = out.len();
        out.extend(classes.map(t, offset)?);
    }
    Ok(out)
}

/// Where the test examples come from.
enum TestSource {
    Files(Vec<PathBuf>),
    HoldOut(f64),
}

/// Load a dataset: the training split (a file or a directory's split), its classes, and the test
/// split (the test file given, the directory's `test` split, else its `validation`/`dev` split,
/// else a stratified hold-out of `test_fraction`). A directory with a single split and no `train`
/// (e.g. AG News's `test.csv`) is the data a fraction is held out from.
///
/// # Errors
/// Any [`TableError`]; in particular [`TableError::NoTestSplit`] when there is neither a test
/// split nor a fraction, and [`TableError::TestAndFraction`] when there are both.
pub fn load_dataset(spec: &DatasetSpec) -> Result<Dataset> {
    let meta =
        std::fs::metadata(&spec.train).map_err(|e| TableError::io("open", &spec.train, e))?;
    if meta.is_dir() {
        let splits = find_splits(&spec.train, spec.config.as_deref())?;
        return load_splits(spec, &splits, &spec.train);
    }
    let _span = tracing::debug_span!("load_dataset", train = %spec.train.display()).entered();
    finish_with_test(spec, vec![spec.train.clone()], None, None)
}

/// [`load_dataset`] of split files already found ([`find_splits`], or
/// [`find_splits_in_files`] for a Hub repository's files once fetched); `root` is the dataset's
/// root directory, where a `classes.txt` may name the classes. `spec.train` is only named in
/// messages.
///
/// # Errors
/// As [`load_dataset`].
pub fn load_splits(spec: &DatasetSpec, splits: &SplitFiles, root: &Path) -> Result<Dataset> {
    let _span = tracing::debug_span!("load_dataset", root = %root.display()).entered();
    let test = ["test"]
        .iter()
        .chain(TEST_STANDINS)
        .find_map(|s| splits.get(s).map(|f| (*s, f.to_vec())));
    let (train_files, found_test) = match splits.get("train") {
        Some(train) => {
            if let Some((name, _)) = &test
                && *name != "test"
                && spec.test.is_none()
            {
                tracing::info!("no test split: testing on the {name} split");
            }
            (train.to_vec(), test.map(|(_, f)| f))
        }
        None if spec.test_fraction.is_some() && splits.splits.len() == 1 => {
            let (name, files) = splits.splits.iter().next().map_or_else(
                || (String::new(), Vec::new()),
                |(n, f)| (n.clone(), f.clone()),
            );
            tracing::info!(
                "no train split in {}: holding out from the {name} split",
                splits.dir.display()
            );
            (files, None)
        }
        None => {
            return Err(TableError::NoSplit {
                dir: splits.dir.clone(),
                what: "train split",
                found: splits.splits.keys().cloned().collect(),
            });
        }
    };
    finish_with_test(spec, train_files, found_test, Some(root.to_path_buf()))
}

/// The test source (a test file given, the split found, or a hold-out), then [`finish`].
fn finish_with_test(
    spec: &DatasetSpec,
    train_files: Vec<PathBuf>,
    found_test: Option<Vec<PathBuf>>,
    names_dir: Option<PathBuf>,
) -> Result<Dataset> {
    let test = match (
        spec.test.clone().map(|t| vec![t]).or(found_test),
        spec.test_fraction,
    ) {
        (Some(test), Some(_)) => {
            return Err(TableError::TestAndFraction {
                path: spec.train.clone(),
                test: test.first().cloned().unwrap_or_default(),
            });
        }
        (Some(files), None) => TestSource::Files(files),
        (None, Some(fraction)) => TestSource::HoldOut(fraction),
        (None, None) => {
            return Err(TableError::NoTestSplit {
                path: spec.train.clone(),
                looked: "a test file, or a test, validation or dev split",
            });
        }
    };
    finish(spec, train_files, test, names_dir)
}

/// The classes of a training split: names given, else found beside the data (`ClassLabel`
/// metadata, a `classes.txt` beside a file or in `names_dir`, the dataset's root), else known
/// for the dataset ([`crate::imdb::class_names_for`]), else from the labels themselves.
fn decide_classes(
    train_tables: &mut [RawTable],
    train_files: &[PathBuf],
    names_dir: Option<PathBuf>,
    spec: &TableSpec,
) -> Result<Classes> {
    // A directory's classes.txt names the classes of split files in its subdirectories too.
    if train_tables.iter().all(|t| t.class_names.is_none())
        && let Some(dir) = names_dir
        && let Some(names) = read_classes_file(&dir)?
        && let Some(first) = train_tables.first_mut()
    {
        first.class_names = Some(names);
    }
    // IMDb's files rebuilt from the original release carry no names: its own are known.
    if train_tables.iter().all(|t| t.class_names.is_none())
        && let Some(names) = train_files
            .first()
            .and_then(|f| crate::imdb::class_names_for(f))
        && let Some(first) = train_tables.first_mut()
    {
        first.class_names = Some(ClassNames::new(
            names,
            NameSource::KnownDataset(crate::imdb::DATASET),
        )?);
    }
    Classes::from_training(train_tables, spec.label_names.as_deref())
}

/// The examples a run recorded (its `split.json`): the data rows `rows` (0-based, counted on
/// across `files`, in the order given) of `files`, read with `spec` (the recorded columns),
/// each label mapped to its class by `raw_labels` (each class's raw label in class order, as
/// [`Classes::raw_labels`] wrote them). What `imdb-lora eval RUN_DIR` evaluates on: exactly the
/// run's test examples, whatever options the run was given to choose them.
///
/// # Errors
/// As [`read_table`]; [`TableError::RecordedRowMissing`] for a row the files no longer have,
/// [`TableError::LabelNotInNames`] for a label that is no class's.
pub fn read_recorded(
    files: &[PathBuf],
    spec: &TableSpec,
    raw_labels: &[String],
    rows: &[usize],
) -> Result<Vec<Review>> {
    let tables = read_split(files, spec)?;
    let all: Vec<(&RawTable, &super::raw::RawRow)> = tables
        .iter()
        .flat_map(|t| t.rows.iter().map(move |r| (t, r)))
        .collect();
    let class_of: std::collections::HashMap<&str, u32> = raw_labels
        .iter()
        .zip(0u32..)
        .map(|(raw, class)| (raw.as_str(), class))
        .collect();
    rows.iter()
        .map(|&row| {
            let (table, raw) = all.get(row).ok_or_else(|| TableError::RecordedRowMissing {
                first: files.first().cloned().unwrap_or_default(),
                files: files.len(),
                row,
                rows: all.len(),
            })?;
            let label = match &raw.label {
                super::raw::RawLabel::Int(i) => i.to_string(),
                super::raw::RawLabel::Str(s) => s.clone(),
            };
            let class = class_of.get(label.as_str()).copied().ok_or_else(|| {
                TableError::LabelNotInNames {
                    at: Box::new(table.location(raw)),
                    column: table.label_column.clone(),
                    label: label.clone(),
                    source_name: "the run's recorded classes".into(),
                    names: raw_labels.to_vec(),
                }
            })?;
            Ok(Review {
                row,
                text: raw.text.clone(),
                label: class,
            })
        })
        .collect()
}

/// One data file read as a training split: its examples in row order and the classes they
/// make, decided as [`load_dataset`] decides them (for tools that time or check one file, like
/// the tokenisation benchmark).
///
/// # Errors
/// As [`read_table`] and [`Classes::from_training`].
pub fn read_file(path: &Path, spec: &TableSpec) -> Result<(Vec<Review>, Classes)> {
    let files = [path.to_path_buf()];
    let mut tables = read_split(&files, spec)?;
    let classes = decide_classes(&mut tables, &files, None, spec)?;
    Ok((map_split(&classes, tables)?, classes))
}

fn finish(
    spec: &DatasetSpec,
    train_files: Vec<PathBuf>,
    test: TestSource,
    names_dir: Option<PathBuf>,
) -> Result<Dataset> {
    let mut train_tables = read_split(&train_files, &spec.table)?;
    let classes = decide_classes(&mut train_tables, &train_files, names_dir, &spec.table)?;
    let text_columns = train_tables
        .first()
        .map(|t| t.text_columns.clone())
        .unwrap_or_default();
    let label_column = classes.label_column().to_owned();
    let train = map_split(&classes, train_tables)?;
    let (train, test, test_files) = match test {
        TestSource::Files(files) => {
            let tables = read_split(&files, &spec.table)?;
            for t in &tables {
                if let Some(names) = &t.class_names
                    && names.names != classes.names()
                    && spec.table.label_names.is_none()
                {
                    tracing::warn!(
                        "{} names its classes {:?}, the training data {:?}; using the training data's",
                        t.path.display(),
                        names.names,
                        classes.names()
                    );
                }
            }
            (train, map_split(&classes, tables)?, files)
        }
        TestSource::HoldOut(fraction) => {
            let (train, test) = stratified_split(train, fraction, spec.seed)?;
            (train, test, train_files.clone())
        }
    };
    // Mapped through the training data's classes, as the test split is: a label no training
    // row has is an error naming the file and row.
    let validation = match &spec.validation {
        Some(file) => Some(map_split(
            &classes,
            read_split(std::slice::from_ref(file), &spec.table)?,
        )?),
        None => None,
    };
    tracing::info!(
        train = train.len(),
        test = test.len(),
        validation = validation.as_ref().map(Vec::len),
        classes = classes.len(),
        "dataset loaded"
    );
    Ok(Dataset {
        train,
        test,
        validation,
        classes,
        train_files,
        test_files,
        test_fraction: spec.test_fraction,
        text_columns,
        label_column,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(dir: &Path, rel: &str) {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, "text,label\na,0\nb,1\n").unwrap();
    }

    fn names(s: &SplitFiles, split: &str) -> Vec<String> {
        s.get(split)
            .unwrap()
            .iter()
            .map(|p| p.strip_prefix(&s.dir).unwrap().display().to_string())
            .collect()
    }

    #[test]
    fn a_validation_file_is_read_whole_through_the_training_classes() {
        let d = tempfile::tempdir().unwrap();
        let train = d.path().join("train.csv");
        let test = d.path().join("test.csv");
        let val = d.path().join("val.csv");
        std::fs::write(&train, "text,label\na,neg\nb,pos\nc,neg\n").unwrap();
        std::fs::write(&test, "text,label\nd,pos\n").unwrap();
        std::fs::write(&val, "text,label\ne,pos\nf,neg\n").unwrap();
        let mut spec = DatasetSpec::new(&train);
        spec.test = Some(test);
        spec.validation = Some(val.clone());
        let data = load_dataset(&spec).unwrap();
        let v: Vec<(usize, &str, u32)> = data
            .validation
            .as_ref()
            .unwrap()
            .iter()
            .map(|r| (r.row, r.text.as_str(), r.label))
            .collect();
        assert_eq!(v, [(0, "e", 1), (1, "f", 0)]);
        assert_eq!(data.train.len(), 3, "the training data is not touched");
        // A label no training row has is an error naming the validation file.
        std::fs::write(&val, "text,label\ne,mixed\n").unwrap();
        let e = load_dataset(&spec).unwrap_err().to_string();
        assert!(e.contains("val.csv") && e.contains("mixed"), "{e}");
        // Without one, there is none.
        spec.validation = None;
        assert!(load_dataset(&spec).unwrap().validation.is_none());
    }

    #[test]
    fn recorded_rows_are_read_back_across_shards_with_their_classes() {
        let d = tempfile::tempdir().unwrap();
        let a = d.path().join("train-00000-of-00002.csv");
        let b = d.path().join("train-00001-of-00002.csv");
        std::fs::write(&a, "text,label\nx0,pos\nx1,neg\n").unwrap();
        std::fs::write(&b, "text,label\nx2,neg\nx3,mixed\n").unwrap();
        let files = [a.clone(), b];
        let raw = ["neg".to_owned(), "pos".to_owned()];
        let got = read_recorded(&files, &TableSpec::default(), &raw, &[2, 0]).unwrap();
        let rows: Vec<(usize, &str, u32)> = got
            .iter()
            .map(|r| (r.row, r.text.as_str(), r.label))
            .collect();
        assert_eq!(rows, [(2, "x2", 0), (0, "x0", 1)]);
        let err = read_recorded(&files, &TableSpec::default(), &raw, &[4]).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "{} (and 1 more files): row 4 was recorded, but the files have 4 data rows; \
                 were they changed since?",
                a.display()
            )
        );
        let err = read_recorded(&files, &TableSpec::default(), &raw, &[3]).unwrap_err();
        assert!(matches!(err, TableError::LabelNotInNames { .. }), "{err}");
        assert!(err.to_string().contains("\"mixed\""), "{err}");
    }

    #[test]
    fn split_and_shard_names_are_recognised() {
        assert_eq!(split_of("train.csv"), Some("train"));
        assert_eq!(split_of("train-00000-of-00002.parquet"), Some("train"));
        assert_eq!(split_of("validation.jsonl"), Some("validation"));
        assert_eq!(split_of("classes.txt"), None);
        assert_eq!(split_of("README.md"), None);
        assert_eq!(shard_of("train-00001-of-00002.parquet"), Some((1, 2)));
        assert_eq!(shard_of("train.parquet"), None);
        assert_eq!(shard_of("my-train.csv"), None);
    }

    #[test]
    fn flat_sharded_config_and_converted_layouts_are_found() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        touch(root, "flat/train.csv");
        touch(root, "flat/test.csv");
        touch(root, "flat/classes.txt");
        let s = find_splits(&root.join("flat"), None).unwrap();
        assert_eq!(names(&s, "train"), ["train.csv"]);
        assert_eq!(names(&s, "test"), ["test.csv"]);

        touch(root, "hub/data/train-00001-of-00002.parquet");
        touch(root, "hub/data/train-00000-of-00002.parquet");
        touch(root, "hub/data/test-00000-of-00001.parquet");
        touch(root, "hub/README.md");
        let s = find_splits(&root.join("hub"), None).unwrap();
        assert_eq!(s.dir, root.join("hub/data"));
        assert_eq!(
            names(&s, "train"),
            [
                "train-00000-of-00002.parquet",
                "train-00001-of-00002.parquet"
            ]
        );

        touch(root, "imdb/plain_text/train-00000-of-00001.parquet");
        touch(root, "imdb/plain_text/unsupervised-00000-of-00001.parquet");
        let s = find_splits(&root.join("imdb"), None).unwrap();
        assert_eq!(s.dir, root.join("imdb/plain_text"));
        assert!(s.get("unsupervised").is_some());

        touch(root, "conv/default/train/0000.parquet");
        touch(root, "conv/default/train/0001.parquet");
        touch(root, "conv/other/test.csv");
        let err = find_splits(&root.join("conv"), None).unwrap_err();
        assert!(matches!(err, TableError::SeveralConfigs { .. }), "{err}");
        assert!(err.to_string().contains(r#""default", "other""#), "{err}");
        let s = find_splits(&root.join("conv"), Some("default")).unwrap();
        assert_eq!(
            names(&s, "train"),
            ["train/0000.parquet", "train/0001.parquet"]
        );
        let err = find_splits(&root.join("conv"), Some("nope")).unwrap_err();
        assert!(matches!(err, TableError::NoSuchConfig { .. }), "{err}");
    }

    #[test]
    fn a_file_list_is_read_as_the_same_files_in_a_directory() {
        let layouts: &[&[&str]] = &[
            &[
                "README.md",
                "data/train-00000-of-00002.parquet",
                "data/train-00001-of-00002.parquet",
                "data/test-00000-of-00001.parquet",
            ],
            &[
                "plain_text/train-00000-of-00001.parquet",
                "plain_text/test-00000-of-00001.parquet",
                "plain_text/unsupervised-00000-of-00001.parquet",
                ".gitattributes",
            ],
            &[
                "default/train/0000.parquet",
                "default/train/0001.parquet",
                "default/validation/0000.parquet",
            ],
            &["test.csv", "classes.txt", "readme.txt"],
            &["a/train.csv", "b/train.csv"],
            &["train.csv", "train.jsonl"],
            &["data/train-00000-of-00003.parquet"],
        ];
        for files in layouts {
            let d = tempfile::tempdir().unwrap();
            for f in *files {
                touch(d.path(), f);
            }
            let listed: Vec<String> = files.iter().map(|f| (*f).to_owned()).collect();
            let from_dir = find_splits(d.path(), None);
            let from_list = find_splits_in_files(&listed, d.path(), None);
            match (from_dir, from_list) {
                (Ok(a), Ok(b)) => assert_eq!(a, b, "{files:?}"),
                (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "{files:?}"),
                (a, b) => panic!("{files:?}: directory {a:?}, list {b:?}"),
            }
        }
        let root = Path::new("/snap");
        let listed = |fs: &[&str]| fs.iter().map(|f| (*f).to_owned()).collect::<Vec<_>>();
        let s = find_splits_in_files(&listed(layouts[1]), root, None).unwrap();
        assert_eq!(s.used(), ["train", "test"]);
        assert_eq!(
            s.get("train").unwrap(),
            [root.join("plain_text/train-00000-of-00001.parquet")]
        );
        let s = find_splits_in_files(&listed(layouts[2]), root, Some("default")).unwrap();
        assert_eq!(s.used(), ["train", "validation"]);
        let s = find_splits_in_files(&listed(layouts[3]), root, None).unwrap();
        assert_eq!(s.used(), ["test"]);
        let err = find_splits_in_files(&listed(layouts[2]), root, Some("other")).unwrap_err();
        assert!(matches!(err, TableError::NoSuchConfig { .. }), "{err}");
        assert!(err.to_string().contains("default"), "{err}");
    }

    #[test]
    fn broken_layouts_are_refused() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        touch(root, "two/train.csv");
        touch(root, "two/train.jsonl");
        let err = find_splits(&root.join("two"), None).unwrap_err();
        assert!(matches!(err, TableError::AmbiguousSplit { .. }), "{err}");

        touch(root, "gap/train-00000-of-00003.parquet");
        touch(root, "gap/train-00002-of-00003.parquet");
        let err = find_splits(&root.join("gap"), None).unwrap_err();
        assert!(
            matches!(err, TableError::IncompleteShards { expected: 3, .. }),
            "{err}"
        );

        touch(root, "one/train-00001-of-00002.parquet");
        assert!(matches!(
            find_splits(&root.join("one"), None),
            Err(TableError::IncompleteShards { .. })
        ));

        touch(root, "none/notes.txt");
        touch(root, "none/reviews.csv");
        // A file whose name is no known split is still listed as found.
        let s = find_splits(&root.join("none"), None).unwrap();
        assert!(s.get("reviews").is_some());
        touch(root, "empty/notes.txt");
        let err = find_splits(&root.join("empty"), None).unwrap_err();
        assert!(matches!(err, TableError::NoSplit { .. }), "{err}");
    }
}

//! A whole `metrics.json`: [`MetricsFile`] is the run ([`RunMetrics`]) plus the per-class
//! metrics of every evaluation ([`RunClasses`], the top-level key `classes`), for every run
//! whatever its number of classes: one schema, [`SCHEMA_VERSION`].
//!
//! Files of the binary layout older versions wrote for IMDb runs ([`LEGACY_SCHEMA_VERSION`],
//! no `classes`) still read: their per-class metrics are derived from each evaluation's binary
//! confusion matrix, the classes named as IMDb's ([`LEGACY_CLASS_NAMES`]), the only data that
//! layout was written for.

use std::collections::HashMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::classes::{ClassConfusion, ClassMetrics};
use crate::classification::EvalMetrics;
use crate::error::{MetricsError, ValidationError};
use crate::schema::{
    EpochRecord, LEGACY_SCHEMA_VERSION, PREVIOUS_SCHEMA_VERSION, RATIO_TOLERANCE, RunConfig,
    RunMetrics, SCHEMA_VERSION, Selection, in_range,
};

/// The class names of a [`LEGACY_SCHEMA_VERSION`] file: that layout was only written for
/// IMDb runs, whose label 0 is `neg` and 1 `pos`.
pub const LEGACY_CLASS_NAMES: [&str; 2] = ["neg", "pos"];

/// The per-class metrics of a run: one [`ClassMetrics`] per evaluation of its
/// [`RunMetrics`] (`baseline`, then `epochs` in order), every one over the same named
/// classes. Stored in `metrics.json` under `classes`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunClasses {
    /// Per-class metrics of the baseline evaluation.
    pub baseline: ClassMetrics,
    /// Per-class metrics of each epoch's evaluation; `epochs[i]` belongs to the run's
    /// `epochs[i]`.
    pub epochs: Vec<ClassMetrics>,
    /// The final test evaluation's, with a validation split (`RunMetrics::test`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test: Option<ClassMetrics>,
}

impl RunClasses {
    /// The class names, in class-index order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.baseline.names()
    }

    /// Number of classes N.
    pub fn num_classes(&self) -> usize {
        self.baseline.num_classes()
    }

    /// Per-class metrics of the last completed epoch.
    pub fn final_epoch(&self) -> Option<&ClassMetrics> {
        self.epochs.last()
    }

    /// The saved model's per-class metrics on the test set (as [`RunMetrics::after`]).
    pub fn after(&self) -> Option<&ClassMetrics> {
        self.test.as_ref().or_else(|| self.final_epoch())
    }

    /// The per-class metrics of a two-class run, derived from the binary confusion matrix of
    /// each evaluation (class 0 is `names[0]`, class 1 `names[1]`): how a
    /// [`LEGACY_SCHEMA_VERSION`] file's are had ([`LEGACY_CLASS_NAMES`]).
    ///
    /// # Errors
    /// None for a valid run (two names for 2×2 matrices); the `Result` is
    /// [`ClassMetrics::from_confusion`]'s.
    pub fn of_binary_run(run: &RunMetrics, names: [&str; 2]) -> Result<Self, MetricsError> {
        let of = |eval: &EvalMetrics| {
            ClassMetrics::from_confusion(&names, &ClassConfusion::from(eval.confusion))
        };
        Ok(Self {
            baseline: of(&run.baseline)?,
            epochs: run
                .epochs
                .iter()
                .map(|e| of(&e.eval))
                .collect::<Result<_, _>>()?,
            test: run.test.as_ref().map(of).transpose()?,
        })
    }
}

/// Everything a `metrics.json` holds.
///
/// The headline [`EvalMetrics`] mean: accuracy over all samples, F1/precision/recall of the
/// positive class (class 1) for N = 2 and macro averages for N > 2 (where the binary
/// `confusion` is absent); `classes` has every class's.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricsFile {
    /// The run: configuration, parameter counts, headline metrics of every evaluation.
    pub run: RunMetrics,
    /// The per-class metrics of every evaluation.
    pub classes: RunClasses,
}

/// Serialised form of a file: the run's keys in their order, then `classes`. Borrowed, so
/// writing copies nothing.
/// The saved model's test evaluation as the report shows it ("after"): which epoch it is, its
/// headline and per-class metrics. With a validation split this is the final `test`
/// evaluation of the selected (or last) epoch's model; without one, the last epoch's.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Saved<'a> {
    /// The 1-based epoch whose model was saved.
    pub epoch: usize,
    /// Its test-set metrics.
    pub eval: &'a EvalMetrics,
    /// Its per-class test-set metrics.
    pub classes: &'a ClassMetrics,
    /// Whether a validation split chose it (then the epochs' evaluations are on validation).
    pub on_validation: bool,
}

#[derive(Serialize)]
struct FileOut<'a> {
    schema_version: u32,
    config: &'a RunConfig,
    trainable_params: u64,
    total_params: u64,
    baseline: &'a EvalMetrics,
    epochs: &'a [EpochRecord],
    train_samples_per_s: f64,
    eval_samples_per_s: f64,
    total_seconds: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    selection: &'a Option<Selection>,
    #[serde(skip_serializing_if = "Option::is_none")]
    test: &'a Option<EvalMetrics>,
    classes: &'a RunClasses,
}

impl<'a> FileOut<'a> {
    fn new(run: &'a RunMetrics, classes: &'a RunClasses) -> Self {
        // Destructured without `..`: a field added to RunMetrics fails to compile here
        // until it is written with classes too.
        let RunMetrics {
            schema_version,
            config,
            trainable_params,
            total_params,
            baseline,
            epochs,
            train_samples_per_s,
            eval_samples_per_s,
            total_seconds,
            selection,
            test,
        } = run;
        Self {
            schema_version: *schema_version,
            config,
            trainable_params: *trainable_params,
            total_params: *total_params,
            baseline,
            epochs,
            train_samples_per_s: *train_samples_per_s,
            eval_samples_per_s: *eval_samples_per_s,
            total_seconds: *total_seconds,
            selection,
            test,
            classes,
        }
    }
}

/// A file as parsed: the run's keys and `classes`, which the schema requires.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileIn {
    schema_version: u32,
    config: RunConfig,
    trainable_params: u64,
    total_params: u64,
    baseline: EvalMetrics,
    epochs: Vec<EpochRecord>,
    train_samples_per_s: f64,
    eval_samples_per_s: f64,
    total_seconds: f64,
    #[serde(default)]
    selection: Option<Selection>,
    #[serde(default)]
    test: Option<EvalMetrics>,
    classes: RunClasses,
}

impl From<FileIn> for MetricsFile {
    fn from(f: FileIn) -> Self {
        Self {
            run: RunMetrics {
                schema_version: f.schema_version,
                config: f.config,
                trainable_params: f.trainable_params,
                total_params: f.total_params,
                baseline: f.baseline,
                epochs: f.epochs,
                train_samples_per_s: f.train_samples_per_s,
                eval_samples_per_s: f.eval_samples_per_s,
                total_seconds: f.total_seconds,
                selection: f.selection,
                test: f.test,
            },
            classes: f.classes,
        }
    }
}

/// Only the version, parsed first so that a file from another schema
/// version gets a clear error instead of a confusing "missing field".
#[derive(Deserialize)]
struct VersionProbe {
    schema_version: u32,
}

fn parse_err(path: &Path, source: serde_json::Error) -> MetricsError {
    MetricsError::Parse {
        path: path.to_path_buf(),
        line: source.line(),
        column: source.column(),
        source,
    }
}

impl MetricsFile {
    /// The run and its classes, with `run.schema_version` set to [`SCHEMA_VERSION`].
    pub fn new(mut run: RunMetrics, classes: RunClasses) -> Self {
        run.schema_version = SCHEMA_VERSION;
        Self { run, classes }
    }

    /// Reads, parses and [validates](Self::validate) a `metrics.json` ([`SCHEMA_VERSION`], or
    /// the [`LEGACY_SCHEMA_VERSION`] binary layout, read as described in the module doc).
    ///
    /// # Errors
    /// Every error names `path`: [`MetricsError::Read`],
    /// [`MetricsError::Parse`] (with serde's line, column and message naming
    /// the key), [`MetricsError::SchemaVersion`],
    /// [`MetricsError::InvalidFile`] (naming the inconsistent field).
    /// The saved model's test evaluation ([`Saved`]); `None` before the first epoch ends.
    pub fn saved(&self) -> Option<Saved<'_>> {
        let done = self.run.epochs.len();
        Some(Saved {
            epoch: match &self.run.selection {
                Some(sel) => sel.saved_epoch(done),
                None => self.run.final_epoch()?.epoch,
            },
            eval: self.run.after()?,
            classes: self.classes.after()?,
            on_validation: self.run.config.val_n.is_some(),
        })
    }

    pub fn read(path: &Path) -> Result<Self, MetricsError> {
        let text = std::fs::read_to_string(path).map_err(|source| MetricsError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let probe: VersionProbe = serde_json::from_str(&text).map_err(|e| parse_err(path, e))?;
        let invalid = |source| MetricsError::InvalidFile {
            path: path.to_path_buf(),
            source,
        };
        let file = match probe.schema_version {
            LEGACY_SCHEMA_VERSION => {
                let run: RunMetrics =
                    serde_json::from_str(&text).map_err(|e| parse_err(path, e))?;
                // Checked as written first: the per-class metrics derive from its matrices.
                run.validate_legacy().map_err(invalid)?;
                let classes = RunClasses::of_binary_run(&run, LEGACY_CLASS_NAMES)?;
                Self::new(run, classes)
            }
            // Schema 2 is schema 3 without its optional fields: read alike, then upgraded.
            SCHEMA_VERSION | PREVIOUS_SCHEMA_VERSION => {
                let mut file: MetricsFile = serde_json::from_str::<FileIn>(&text)
                    .map_err(|e| parse_err(path, e))?
                    .into();
                file.run.schema_version = SCHEMA_VERSION;
                file
            }
            found => {
                return Err(MetricsError::SchemaVersion {
                    path: path.to_path_buf(),
                    found,
                    expected: SCHEMA_VERSION,
                });
            }
        };
        file.validate().map_err(invalid)?;
        Ok(file)
    }

    /// [Validates](Self::validate), then writes pretty-printed JSON to `path` atomically
    /// (through [`imdb_lora_fsio::write`]: readers and a crash see the old file or the
    /// complete new one, never a torn mix).
    ///
    /// # Errors
    /// [`MetricsError::Invalid`] if validation fails (nothing is written),
    /// [`MetricsError::Serialize`] or [`MetricsError::Write`] naming `path`.
    pub fn write_atomic(&self, path: &Path) -> Result<(), MetricsError> {
        self.validate()?;
        let json = serde_json::to_vec_pretty(&FileOut::new(&self.run, &self.classes));
        let mut json = json.map_err(|source| MetricsError::Serialize {
            path: path.to_path_buf(),
            source,
        })?;
        json.push(b'\n');
        imdb_lora_fsio::write(path, &json).map_err(|source| MetricsError::Write {
            path: path.to_path_buf(),
            source,
        })
    }

    /// Checks everything [`RunMetrics::validate`] checks, and the classes:
    ///
    /// * one [`ClassMetrics`] per evaluation (`classes.epochs` as long as `epochs`);
    /// * at least 2 classes, names non-empty, distinct, the same in every evaluation;
    /// * each matrix N×N, its counts summing to the evaluation's `samples`;
    /// * each class's support its row sum, its precision, recall and F1 and the macro and
    ///   weighted averages those derived from the matrix;
    /// * the headline agrees: `accuracy` from the matrix; for N = 2 the binary `confusion`
    ///   is the matrix's (class 1 positive), for N > 2 it is absent and `f1`, `precision`,
    ///   `recall` are the macro averages.
    ///
    /// # Errors
    /// The first [`ValidationError`] found, naming the field (e.g.
    /// `classes.epochs[1].per_class[2].support`).
    pub fn validate(&self) -> Result<(), ValidationError> {
        self.run.validate()?;
        let classes = &self.classes;
        validate_classes(
            "classes.baseline",
            &classes.baseline,
            None,
            "baseline",
            &self.run.baseline,
        )?;
        if classes.epochs.len() != self.run.epochs.len() {
            return Err(ValidationError::new(
                "classes.epochs",
                format!(
                    "expected one entry per record of `epochs` ({}), got {}",
                    self.run.epochs.len(),
                    classes.epochs.len()
                ),
            ));
        }
        for (i, (c, record)) in classes.epochs.iter().zip(&self.run.epochs).enumerate() {
            validate_classes(
                &format!("classes.epochs[{i}]"),
                c,
                Some(&classes.baseline),
                &format!("epochs[{i}].eval"),
                &record.eval,
            )?;
        }
        match (&classes.test, &self.run.test) {
            (None, None) => {}
            (Some(c), Some(test)) => {
                validate_classes("classes.test", c, Some(&classes.baseline), "test", test)?
            }
            (Some(_), None) | (None, Some(_)) => {
                return Err(ValidationError::new(
                    "classes.test",
                    "expected per-class metrics exactly when a final `test` evaluation is recorded",
                ));
            }
        }
        Ok(())
    }
}

/// `value` in [0, 1] and within tolerance of `expected`.
fn derived(field: String, value: f64, expected: f64, from: &str) -> Result<(), ValidationError> {
    in_range(&field, value, 0.0, 1.0, true)?;
    if (value - expected).abs() > RATIO_TOLERANCE {
        return Err(ValidationError::new(
            field,
            format!("expected {expected} (derived from {from}), got {value}"),
        ));
    }
    Ok(())
}

/// Checks one evaluation's class metrics `c` (at `at`) against themselves, against the
/// baseline's names (`reference`) and against its headline metrics `eval` (at `eval_at`).
fn validate_classes(
    at: &str,
    c: &ClassMetrics,
    reference: Option<&ClassMetrics>,
    eval_at: &str,
    eval: &EvalMetrics,
) -> Result<(), ValidationError> {
    let n = c.per_class.len();
    if n < 2 {
        return Err(ValidationError::new(
            format!("{at}.per_class"),
            format!("expected at least 2 classes, got {n}"),
        ));
    }
    if let Some(r) = reference
        && r.per_class.len() != n
    {
        return Err(ValidationError::new(
            format!("{at}.per_class"),
            format!(
                "expected {} classes (as classes.baseline), got {n}",
                r.per_class.len()
            ),
        ));
    }
    let mut seen: HashMap<&str, usize> = HashMap::with_capacity(n);
    for (i, row) in c.per_class.iter().enumerate() {
        let field = format!("{at}.per_class[{i}].name");
        if row.name.trim().is_empty() {
            return Err(ValidationError::new(
                field,
                "expected a non-empty class name",
            ));
        }
        if let Some(j) = seen.insert(&row.name, i) {
            return Err(ValidationError::new(
                field,
                format!(
                    "expected a name no other class has, got `{}` again (as per_class[{j}])",
                    row.name
                ),
            ));
        }
        if let Some(expected) = reference.and_then(|r| r.per_class.get(i))
            && expected.name != row.name
        {
            return Err(ValidationError::new(
                field,
                format!(
                    "expected `{}` (as classes.baseline.per_class[{i}].name), got `{}`",
                    expected.name, row.name
                ),
            ));
        }
    }

    let matrix_at = format!("{at}.confusion");
    if c.confusion.len() != n {
        return Err(ValidationError::new(
            matrix_at,
            format!(
                "expected {n} rows (one per class), got {}",
                c.confusion.len()
            ),
        ));
    }
    if let Some((r, row)) = c
        .confusion
        .iter()
        .enumerate()
        .find(|(_, row)| row.len() != n)
    {
        return Err(ValidationError::new(
            format!("{matrix_at}[{r}]"),
            format!("expected {n} counts (one per class), got {}", row.len()),
        ));
    }
    let matrix = ClassConfusion::from_rows(&c.confusion)
        .map_err(|e| ValidationError::new(matrix_at.clone(), e.to_string()))?;
    match matrix.checked_total() {
        Some(total) if total == eval.samples => {}
        total => {
            let got = total.map_or_else(|| "a sum beyond 2^64".to_string(), |t| t.to_string());
            return Err(ValidationError::new(
                matrix_at,
                format!(
                    "expected the counts to sum to {eval_at}.samples = {}, got {got}",
                    eval.samples
                ),
            ));
        }
    }

    for (i, row) in c.per_class.iter().enumerate() {
        let field = |name: &str| format!("{at}.per_class[{i}].{name}");
        let support = matrix.support(i);
        if row.support != support {
            return Err(ValidationError::new(
                field("support"),
                format!(
                    "expected {support} (the sum of {matrix_at}[{i}]), got {}",
                    row.support
                ),
            ));
        }
        derived(
            field("precision"),
            row.precision,
            matrix.precision(i),
            &matrix_at,
        )?;
        derived(field("recall"), row.recall, matrix.recall(i), &matrix_at)?;
        derived(field("f1"), row.f1, matrix.f1(i), &matrix_at)?;
    }
    for (name, value, expected) in [
        (
            "macro_precision",
            c.macro_precision,
            matrix.macro_precision(),
        ),
        ("macro_recall", c.macro_recall, matrix.macro_recall()),
        ("macro_f1", c.macro_f1, matrix.macro_f1()),
        (
            "weighted_precision",
            c.weighted_precision,
            matrix.weighted_precision(),
        ),
        (
            "weighted_recall",
            c.weighted_recall,
            matrix.weighted_recall(),
        ),
        ("weighted_f1", c.weighted_f1, matrix.weighted_f1()),
    ] {
        derived(format!("{at}.{name}"), value, expected, &matrix_at)?;
    }

    derived(
        format!("{eval_at}.accuracy"),
        eval.accuracy,
        matrix.accuracy(),
        &matrix_at,
    )?;
    if let Some(binary) = matrix.to_binary() {
        if eval.confusion != binary {
            return Err(ValidationError::new(
                format!("{eval_at}.confusion"),
                format!(
                    "expected {binary:?} (from {matrix_at}, class 1 positive), got {:?}",
                    eval.confusion
                ),
            ));
        }
        // RunMetrics::validate has checked f1, precision and recall against it.
    } else {
        if !eval.confusion.is_empty() {
            return Err(ValidationError::new(
                format!("{eval_at}.confusion"),
                format!(
                    "expected no binary matrix over {n} classes (theirs is {matrix_at}), got {:?}",
                    eval.confusion
                ),
            ));
        }
        let from = format!("the macro average of {matrix_at}");
        derived(format!("{eval_at}.f1"), eval.f1, matrix.macro_f1(), &from)?;
        derived(
            format!("{eval_at}.precision"),
            eval.precision,
            matrix.macro_precision(),
            &from,
        )?;
        derived(
            format!("{eval_at}.recall"),
            eval.recall,
            matrix.macro_recall(),
            &from,
        )?;
    }
    Ok(())
}

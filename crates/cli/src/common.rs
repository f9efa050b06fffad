//! Options shared by the experiment subcommands: where the model and data come from, which
//! subset, and how they are resolved through the Hub cache.

use std::path::{Path, PathBuf};

use anyhow::Context;
use imdb_lora_data::table::{
    Column, DatasetSpec, SplitRecord, TableSpec, load_dataset, load_splits,
};
use imdb_lora_data::{
    SubsetSpec, TextTokenizer, TokenizedSplit, prepare_split, prepare_split_with_validation,
};
use imdb_lora_hub::{HubClient, HubConfig, Repo, RepoType, Source};
use imdb_lora_infer::ModelFiles;

use crate::fetch;

/// How batches are padded (train and eval).
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Training")]
pub struct PadArgs {
    /// Pad each batch's length up to a multiple of this many tokens (at most --max-len), so
    /// a GPU backend compiles its kernels for a few shapes; 0 pads exactly to each batch's
    /// longest text. Default: 32 on cuda and wgpu, 0 on the CPU backends.
    #[arg(long, env = "IMDB_LORA_PAD_MULTIPLE", value_name = "TOKENS")]
    pub pad_multiple: Option<usize>,
}

impl PadArgs {
    /// The pad multiple to batch with (`None`: exact padding).
    pub fn resolve(&self) -> Option<usize> {
        match self.pad_multiple {
            Some(0) => None,
            Some(n) => Some(n),
            None => crate::backend::DEFAULT_PAD_MULTIPLE,
        }
    }
}

/// The base model (train, download; eval and predict name theirs otherwise).
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Model")]
pub struct ModelArgs {
    /// Base model: a Hub repository id (`owner/name[@revision]`) or a local directory.
    #[arg(long, default_value = fetch::DEFAULT_MODEL, value_name = "REPO|DIR")]
    pub model: String,
}

impl ModelArgs {
    /// The model's files, fetched through `client` when `--model` is a Hub id.
    pub fn files(&self, client: &HubClient) -> anyhow::Result<ModelFiles> {
        let source = Source::parse(&self.model, RepoType::Model)?;
        // A local directory's errors name its files; a Hub id's say where the id came from.
        let hub = matches!(source, Source::Hub(_));
        fetch::fetch_model(client, &source).map_err(|e| match hub {
            true => e.context(taken_as_hub_id("--model", &self.model, "model")),
            false => e,
        })
    }
}

/// Data and subset options.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Data")]
pub struct DataArgs {
    /// The labelled texts: a Hub dataset (`owner/name[@revision]`: its parquet, CSV or JSON
    /// Lines split files, else its auto-converted parquet branch; IMDb by default), a parquet,
    /// CSV, TSV or JSON Lines file, or a directory of split files (`train.csv`, `test.csv`,
    /// Hub-style `data/train-00000-of-00002.parquet`, IMDb's
    /// `plain_text/{train,test}-00000-of-00001.parquet`, ...).
    #[arg(long, visible_alias = "train-file", default_value = imdb_lora_data::imdb::DATASET,
          value_name = "REPO|DIR|FILE")]
    pub data: String,
    /// The configuration (subset) to use when the data has several: a subdirectory of the
    /// Hub dataset or directory (e.g. `plain_text`, `default`).
    #[arg(long, value_name = "NAME")]
    pub data_config: Option<String>,
    /// Your data's test split, when `--data` is its training file (same format and columns).
    #[arg(long, value_name = "FILE")]
    pub test_file: Option<PathBuf>,
    /// Hold out this fraction (between 0 and 1) of your training data as the test split,
    /// stratified by class and seeded: for data without a test split (AG News's one file).
    #[arg(long, value_name = "FRACTION")]
    pub test_fraction: Option<f64>,
    /// Your data's text column(s): names or 1-based positions, comma-separated; several are
    /// joined with a space (`2,3`: AG News's title and description). Default: the column
    /// named text, sentence, content or review.
    #[arg(long, value_name = "COL[,COL...]")]
    pub text_column: Option<String>,
    /// Your data's label column: a name or a 1-based position. Default: label, labels or class.
    #[arg(long, value_name = "COL")]
    pub label_column: Option<String>,
    /// CSV/TSV: whether the first row is a header (true) or data (false). Default: detected
    /// (a header when one of its cells names a column asked for, or text, label, ...).
    #[arg(long, value_name = "true|false")]
    pub header: Option<bool>,
    /// Class names in class order, comma-separated. Default: from the data (the Hub's
    /// ClassLabel names, a classes.txt beside the file, or the distinct labels sorted).
    #[arg(long, value_name = "NAME,...", value_delimiter = ',')]
    pub label_names: Option<Vec<String>>,
    /// SMALL_RUN: a balanced (stratified), seeded 4,000-example train / 2,000-example test subset.
    #[arg(long, env = "SMALL_RUN", value_parser = clap::builder::BoolishValueParser::new(),
          default_value = "false", conflicts_with_all = ["train_n", "test_n"])]
    pub small: bool,
    /// Training examples (balanced over the classes, seeded subset; default all of them).
    #[arg(long)]
    pub train_n: Option<usize>,
    /// Test examples (balanced over the classes, seeded subset; default all of them).
    #[arg(long)]
    pub test_n: Option<usize>,
    /// Truncation length in tokens, [CLS] and [SEP] included: at most the model's positions
    /// (512 for BERT-shaped models, 8192 for ModernBERT).
    #[arg(long, default_value_t = imdb_lora_data::DEFAULT_MAX_LEN)]
    pub max_len: usize,
    /// Seed for subsets, data order, dropout and fresh weights.
    #[arg(long, default_value_t = imdb_lora_train::TrainConfig::default().seed)]
    pub seed: u64,
    /// Use only the Hugging Face cache and local directories; never the network.
    #[arg(long)]
    pub offline: bool,
}

impl DataArgs {
    /// A Hub client from the `HF_*` environment, offline if `--offline` says so, its download
    /// progress drawn by the UI.
    pub fn client(&self) -> HubClient {
        let config = HubConfig::from_env();
        let offline = config.offline || self.offline;
        HubClient::new(config.with_offline(offline)).with_progress(crate::ui::progress())
    }

    /// The data, read, its classes decided, split, subset and tokenised (the training part only
    /// when `with_train`; the split is the same either way). Every dataset, IMDb included,
    /// comes this one way.
    pub fn load(
        &self,
        client: &HubClient,
        tokenizer: &TextTokenizer,
        with_train: bool,
        val: &Validation,
    ) -> anyhow::Result<LoadedData> {
        let parse = |what: &str, s: &str| -> anyhow::Result<Vec<Column>> {
            Column::parse_list(s).with_context(|| format!("--{what} {s}"))
        };
        let table = TableSpec {
            text: match &self.text_column {
                Some(s) => parse("text-column", s)?,
                None => Vec::new(),
            },
            label: match &self.label_column {
                Some(s) => parse("label-column", s)?.into_iter().next(),
                None => None,
            },
            label_names: self.label_names.clone(),
            header: self.header,
            ..TableSpec::default()
        };
        let mut spec = DatasetSpec::new(&self.data);
        spec.test = self.test_file.clone();
        if let Validation::File(file) = val {
            spec.validation = Some(file.clone());
        }
        spec.test_fraction = self.test_fraction;
        spec.table = table;
        spec.seed = self.seed;
        spec.config = self.data_config.clone();
        // Local files' errors name the file, row and column; a Hub id's say where it came from.
        let dataset = match self.hub_dataset()? {
            None => load_dataset(&spec)?,
            Some(repo) => fetch::fetch_dataset(client, &repo, spec.config.as_deref())
                .and_then(|fetched| Ok(load_splits(&spec, &fetched.splits, &fetched.root)?))
                .with_context(|| taken_as_hub_id("--data", &self.data, "dataset"))?,
        };
        // The data crate has logged the classes and the splits' sizes.
        let classes = dataset.classes.names().to_vec();
        let (train_spec, test_spec) = self.subsets();
        let first = |files: &[PathBuf]| {
            files
                .first()
                .cloned()
                .unwrap_or_else(|| PathBuf::from(&self.data))
        };
        let (train_path, test_path) = (first(&dataset.train_files), first(&dataset.test_files));
        // The validation split: carved from the training texts chosen (stratified, seeded),
        // or the file given, whole.
        let (train, validation, val_files) = match (with_train, val, dataset.validation) {
            (false, _, _) => (None, None, Vec::new()),
            (true, Validation::Fraction(fraction), _) => {
                let (train, val) = prepare_split_with_validation(
                    &train_path,
                    dataset.train,
                    tokenizer,
                    &train_spec,
                    *fraction,
                )?;
                (Some(train), Some(val), dataset.train_files.clone())
            }
            (true, Validation::File(file), Some(reviews)) => {
                let train = prepare_split(&train_path, dataset.train, tokenizer, &train_spec)?;
                let val = prepare_split(file, reviews, tokenizer, &SubsetSpec::full(self.seed))?;
                (Some(train), Some(val), vec![file.clone()])
            }
            (true, _, _) => {
                let train = prepare_split(&train_path, dataset.train, tokenizer, &train_spec)?;
                (Some(train), None, Vec::new())
            }
        };
        let train = train.map(|t| self.report("train", t, &classes));
        let validation = validation.map(|v| self.report("validation", v, &classes));
        let test = self.report(
            "test",
            prepare_split(&test_path, dataset.test, tokenizer, &test_spec)?,
            &classes,
        );
        // One row per text (a long text's windows share theirs), in the order used.
        let rows = |split: &TokenizedSplit| {
            let mut seen = std::collections::HashSet::new();
            split
                .examples
                .iter()
                .map(|e| e.row)
                .filter(|r| seen.insert(*r))
                .collect()
        };
        let record = SplitRecord {
            train_files: dataset.train_files.clone(),
            test_files: dataset.test_files.clone(),
            test_fraction: dataset.test_fraction,
            seed: self.seed,
            text_columns: dataset.text_columns.clone(),
            label_column: dataset.label_column.clone(),
            header: self.header,
            classes: classes.clone(),
            raw_labels: dataset.classes.raw_labels(),
            train_rows: train.as_ref().map(rows).unwrap_or_default(),
            test_rows: rows(&test),
            val_rows: validation.as_ref().map(rows).unwrap_or_default(),
            val_files,
            val_fraction: match val {
                Validation::Fraction(f) => Some(*f),
                _ => None,
            },
        };
        Ok(LoadedData {
            train,
            test,
            validation,
            classes,
            record,
        })
    }

    /// `--data` as a Hub dataset repository when it is not a local file or directory.
    pub fn hub_dataset(&self) -> anyhow::Result<Option<Repo>> {
        if Path::new(&self.data).exists() {
            return Ok(None);
        }
        match Source::parse(&self.data, RepoType::Dataset)? {
            Source::Hub(repo) => Ok(Some(repo)),
            Source::Local(_) => Ok(None),
        }
    }

    /// `(train, test)` subset specifications.
    pub fn subsets(&self) -> (SubsetSpec, SubsetSpec) {
        if self.small {
            return (
                SubsetSpec::small_run_train(self.seed),
                SubsetSpec::small_run_test(self.seed),
            );
        }
        // Every row of a balanced split, taken balanced, is the whole split in `full`'s order:
        // IMDb's `--train-n 25000` is its whole split, as it always was.
        let spec = |n: Option<usize>| match n {
            Some(n) => SubsetSpec::balanced(n, self.seed),
            None => SubsetSpec::full(self.seed),
        };
        (spec(self.train_n), spec(self.test_n))
    }

    pub fn tokenizer(&self, files: &ModelFiles) -> anyhow::Result<TextTokenizer> {
        Ok(TextTokenizer::from_files(
            &files.tokenizer_files(),
            self.max_len,
        )?)
    }

    /// Logs a split as it will be used ([`log_split`]).
    fn report(&self, what: &str, split: TokenizedSplit, classes: &[String]) -> TokenizedSplit {
        log_split(what, &split, classes, self.max_len);
        split
    }
}

/// Fewer examples of a class than this in an evaluation split draw a warning.
const MIN_CLASS_SUPPORT: usize = 10;

/// Logs a split as it will be used, on one line: its examples per class (by name, the first
/// few of many classes) and their lengths; a warning when most texts are cut at `max_len`.
pub fn log_split(what: &str, split: &TokenizedSplit, classes: &[String], max_len: usize) {
    let counts: Vec<String> = classes
        .iter()
        .zip(split.counts.as_slice())
        .take(8)
        .map(|(name, n)| format!("{name} {n}"))
        .collect();
    let more = match classes.len() {
        n if n > 8 => format!(", … ({} more classes)", n - 8),
        _ => String::new(),
    };
    let (n, truncated) = (split.stats.examples, split.stats.truncated);
    let windows = match split.stats.sequences {
        s if s > n => format!(" in {s} windows"),
        _ => String::new(),
    };
    tracing::info!(
        path = %split.path.display(),
        "{what}: {n} examples ({}{more}){windows}, mean {:.1} tokens, {truncated} cut at {max_len}",
        counts.join(", "),
        split.stats.mean_len(),
    );
    // An evaluation split needs a few examples of each class for its per-class metrics to
    // mean anything (one example moves a class of 5 by 20 points).
    if what != "train" {
        for (name, &count) in classes.iter().zip(split.counts.as_slice()) {
            if count < MIN_CLASS_SUPPORT {
                tracing::warn!(
                    "{what}: class {name} has {count} examples (fewer than {MIN_CLASS_SUPPORT}): \
                     its precision, recall and F1 will swing with single examples; a larger \
                     split (--val-fraction, --test-fraction, --test-n) gives it more"
                );
            }
        }
    }
    if 2 * truncated > n {
        tracing::warn!(
            "{what}: {truncated} of {n} texts ({:.0} %) are longer than --max-len {max_len} \
             tokens and were cut; a larger --max-len sees more of them (at a cost in speed)",
            100.0 * truncated as f64 / n.max(1) as f64,
        );
    }
}

/// Where a run's validation split comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum Validation {
    /// None: every epoch is evaluated on the test set, as before validation splits existed.
    None,
    /// A file of its own (same format and columns as the training data), used whole.
    File(PathBuf),
    /// This fraction of each class's training texts, seeded.
    Fraction(f64),
}

/// The context of an error about `spec`, given with `flag` and not found locally: it was taken
/// as the id of a Hub repository of `kind`, which the user may not have meant.
fn taken_as_hub_id(flag: &str, spec: &str, kind: &str) -> String {
    format!("{flag} {spec}: not a file or directory here, so it was taken as a Hub {kind} id")
}

/// The data, ready for training and evaluation.
#[derive(Debug)]
pub struct LoadedData {
    /// The training part (absent when only the test part was asked for).
    pub train: Option<TokenizedSplit>,
    /// The test part.
    pub test: TokenizedSplit,
    /// The validation part, when one was asked for.
    pub validation: Option<TokenizedSplit>,
    /// The class names, in class order.
    pub classes: Vec<String>,
    /// Which rows went where: written as `split.json` into the run directory.
    pub record: SplitRecord,
}

/// The recorded `rows` of `files` (one part of a run's `split.json`), read again in the
/// recorded order (the order the run trained on), tokenised and logged as `what`
/// ([`log_split`]).
pub fn tokenized_part(
    record: &SplitRecord,
    files: &[PathBuf],
    rows: &[usize],
    tokenizer: &TextTokenizer,
    what: &str,
) -> anyhow::Result<TokenizedSplit> {
    let reviews = record.reviews(files, rows)?;
    let (examples, stats) = tokenizer.encode_reviews(&reviews, what)?;
    let split = TokenizedSplit {
        path: files.first().cloned().unwrap_or_default(),
        counts: imdb_lora_data::LabelCounts::of(reviews.iter().map(|r| &r.label)),
        examples,
        stats,
    };
    log_split(what, &split, &record.classes, tokenizer.max_len());
    Ok(split)
}

/// The directory holding a model's files (for copying its tokenizer next to a saved model).
pub fn model_dir(files: &ModelFiles) -> PathBuf {
    files
        .config
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Refuses a `--max-len` longer than the model's positions cover (512 for BERT-shaped
/// models, 8192 for ModernBERT): every batch would fail at the embeddings otherwise.
pub fn check_max_len(
    max_len: usize,
    config: &imdb_lora_encoder::EncoderConfig,
    config_path: &Path,
) -> anyhow::Result<()> {
    let limit = config.max_sequence_length();
    anyhow::ensure!(
        max_len <= limit,
        "--max-len {max_len} is longer than the {limit} tokens the model's positions cover \
         ({}: max_position_embeddings); give --max-len {limit} or less",
        config_path.display()
    );
    Ok(())
}

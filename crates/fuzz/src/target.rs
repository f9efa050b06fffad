//! The fuzz targets, one per loader the CLI uses, and [`Harness`], which writes an input where
//! that loader expects its file and calls it on the tiny fixtures (or, for the user-data
//! readers, on small data files of its own).

use std::error::Error as StdError;
use std::fmt;
use std::path::{Component, Path, PathBuf};

use anyhow::Context as _;
use burn::backend::{Autodiff, Flex};
use imdb_lora_data::TextTokenizer;
use imdb_lora_data::table::{Column, SplitRecord, TableSpec};
use imdb_lora_encoder::{EncoderConfig, PeftAdapter, SequenceClassifier};
use imdb_lora_metrics::MetricsFile;
use imdb_lora_train::optim::{AdamW, AdamWConfig};

/// The backend the loaders build tensors on (the CLI's default CPU backend).
type B = Flex;
/// The training backend (checkpoints are restored onto it).
type AB = Autodiff<Flex>;

// The context every target loads against: the tiny BERT (2 layers, hidden 32, vocab 99) and
// its PEFT adapter, embedded so that the binary does not depend on where it runs.
pub(crate) const TINY_CONFIG: &[u8] =
    include_bytes!("../../../fixtures/tiny_bert/seqcls/config.json");
pub(crate) const TINY_WEIGHTS: &[u8] =
    include_bytes!("../../../fixtures/tiny_bert/seqcls/model.safetensors");
pub(crate) const TINY_BARE_CONFIG: &[u8] =
    include_bytes!("../../../fixtures/tiny_bert/bare/config.json");
pub(crate) const TINY_BARE_WEIGHTS: &[u8] =
    include_bytes!("../../../fixtures/tiny_bert/bare/model.safetensors");
pub(crate) const TINY_ADAPTER_CONFIG: &[u8] =
    include_bytes!("../../../fixtures/peft/tiny/adapter/adapter_config.json");
pub(crate) const TINY_ADAPTER_WEIGHTS: &[u8] =
    include_bytes!("../../../fixtures/peft/tiny/adapter/adapter_model.safetensors");

/// The sentences the tokenizer target encodes once a tokenizer loads.
const SENTENCES: [&str; 2] = [
    "A triumph from start to finish.",
    "I want those two hours back... [SEP] naïve 12345 ##x",
];

/// Truncation length the tokenizer target loads with.
const MAX_LEN: usize = 32;

/// AG News's `classes.txt`: beside the copy of a CSV/TSV/JSON Lines input that is read with
/// columns by position, so that class names found beside the data are exercised too.
pub(crate) const NEWS_CLASSES: &str = "World\nSports\nBusiness\nSci/Tech\n";

/// The data files the `split_json` target reads a record's rows from: (path relative to its
/// data directory, contents). A record names them by these relative paths (see
/// [`resolve_in`]).
pub(crate) const SPLIT_DATA: [(&str, &str); 5] = [
    (
        "train.csv",
        "text,label\n\
         A triumph from start to finish.,1\n\
         I want those two hours back.,0\n\
         \"great film, great cast!\",1\n\
         awful. just awful.,0\n\
         \"it was \"\"not\"\" good\",0\n\
         \"two\nlines\",1\n\
         meh.,0\n\
         Ünïcödé 😀,1\n",
    ),
    (
        "test.csv",
        "text,label\nthe movie is bad?,0\nloved it,1\nboring,0\nsuperb,1\n",
    ),
    (
        "news/train.csv",
        "\"3\",\"Wall St. Bears Claw Back\",\"Short-sellers, Wall Street's dwindling band\"\n\
         \"3\",\"Oil and Economy\",\"Soaring crude prices \\\\ plus worries\"\n\
         \"1\",\"Afghan Army Dispatched\",\"KABUL (Reuters) - Afghanistan\"\n\
         \"2\",\"Phelps Wins Again\",\"ATHENS - Michael Phelps won\nhis sixth gold\"\n\
         \"4\",\"New Chip Unveiled\",\"\"\"Faster\"\", says maker\"\n\
         \"1\",\"Talks Resume\",\"Negotiators met\"\n\
         \"2\",\"Cup Final\",\"A late goal\"\n\
         \"4\",\"Space Probe\",\"Launch delayed\"\n",
    ),
    ("news/classes.txt", NEWS_CLASSES),
    (
        "reviews.jsonl",
        "{\"id\": 1, \"text\": \"great film\", \"label\": \"pos\"}\n\
         {\"id\": 2, \"text\": \"awful\", \"label\": \"neg\"}\n\
         \n\
         {\"id\": 3, \"text\": \"Ünïcödé — \\u00e9 😀\", \"label\": \"pos\", \"extra\": [1, {}]}\n\
         {\"label\": \"neg\", \"text\": \"meh\"}\r\n\
         {\"id\": 5, \"text\": \"fine\", \"label\": \"pos\"}\n",
    ),
];

/// What a file's bytes are, for the mutations that understand structure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// A JSON document.
    Json,
    /// safetensors: 8-byte header length, JSON header, data.
    Safetensors,
    /// parquet: `PAR1`, pages, Thrift footer, 4-byte footer length, `PAR1`.
    Parquet,
    /// Delimited text (CSV, TSV): lines of fields, quotes, delimiters.
    Delimited,
    /// JSON Lines: one JSON object per line.
    JsonLines,
    /// Opaque bytes (the self-test targets).
    Raw,
}

/// One loader under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Target {
    /// `config.json`: `EncoderConfig::from_file` (parse + validate), then, when it is accepted,
    /// the tiny weights loaded with it (`imdb_lora_encoder::load_classifier_with_config`, fresh head).
    Config,
    /// `model.safetensors`: `imdb_lora_encoder::load_classifier_with_config` with the tiny config.
    Safetensors,
    /// `tokenizer.json`: `TextTokenizer::from_tokenizer_json`, `check_ids_fit` against the
    /// tiny model's tables, and two sentences encoded.
    Tokenizer,
    /// PEFT `adapter_config.json` (beside the tiny adapter's weights): `PeftAdapter::read`
    /// and `apply` to the tiny model.
    AdapterConfig,
    /// PEFT `adapter_model.safetensors` (beside the tiny adapter's config): as above.
    AdapterModel,
    /// A parquet split (IMDb-shaped seeds): `imdb_lora_data::table::read_file`, as every
    /// dataset's files are read (columns, labels to classes, rows).
    Parquet,
    /// A training checkpoint: `imdb_lora_train::checkpoint::load` onto the tiny model.
    Checkpoint,
    /// `metrics.json`: `MetricsFile::read` (parse + validate).
    Metrics,
    /// A user's CSV file: `imdb_lora_data::table::read_file` with the default spec (columns
    /// detected) and, on a second copy beside AG News's `classes.txt`, with columns by position
    /// (text `2,3`, label `1`, no header row).
    Csv,
    /// A user's TSV file: as [`Target::Csv`].
    Tsv,
    /// A user's JSON Lines file: as [`Target::Csv`] (positions count fields in file order).
    JsonLines,
    /// A run's `split.json`: `SplitRecord::read`, then, when accepted, the recorded rows of
    /// each part read back (`SplitRecord::reviews`) from the harness's own data files.
    SplitJson,
    /// Self-test: every third input panics.
    SelftestPanic,
    /// Self-test: every third input aborts the process.
    SelftestAbort,
    /// Self-test: every third input never returns.
    SelftestHang,
    /// Self-test: every third input allocates 1 GiB.
    SelftestAlloc,
}

impl Target {
    /// The loader targets, in the order runs visit them.
    pub const LOADERS: [Target; 12] = [
        Target::Config,
        Target::Safetensors,
        Target::Tokenizer,
        Target::AdapterConfig,
        Target::AdapterModel,
        Target::Parquet,
        Target::Checkpoint,
        Target::Metrics,
        Target::Csv,
        Target::Tsv,
        Target::JsonLines,
        Target::SplitJson,
    ];

    /// Targets that check the harness itself (never part of `all`).
    pub const SELFTESTS: [Target; 4] = [
        Target::SelftestPanic,
        Target::SelftestAbort,
        Target::SelftestHang,
        Target::SelftestAlloc,
    ];

    /// The name on the command line and of the `seeds/`, `regressions/` and `pending/`
    /// subdirectories.
    pub fn name(self) -> &'static str {
        match self {
            Target::Config => "config",
            Target::Safetensors => "safetensors",
            Target::Tokenizer => "tokenizer",
            Target::AdapterConfig => "adapter_config",
            Target::AdapterModel => "adapter_model",
            Target::Parquet => "parquet",
            Target::Checkpoint => "checkpoint",
            Target::Metrics => "metrics",
            Target::Csv => "csv",
            Target::Tsv => "tsv",
            Target::JsonLines => "jsonl",
            Target::SplitJson => "split_json",
            Target::SelftestPanic => "selftest-panic",
            Target::SelftestAbort => "selftest-abort",
            Target::SelftestHang => "selftest-hang",
            Target::SelftestAlloc => "selftest-alloc",
        }
    }

    /// The target called `name`.
    pub fn from_name(name: &str) -> Option<Target> {
        Target::LOADERS
            .into_iter()
            .chain(Target::SELFTESTS)
            .find(|t| t.name() == name)
    }

    /// Whether this is one of the harness's own self-test targets.
    pub fn is_selftest(self) -> bool {
        Target::SELFTESTS.contains(&self)
    }

    /// The structure of this target's files.
    pub fn format(self) -> Format {
        match self {
            Target::Config
            | Target::Tokenizer
            | Target::AdapterConfig
            | Target::Metrics
            | Target::SplitJson => Format::Json,
            Target::Safetensors | Target::AdapterModel | Target::Checkpoint => Format::Safetensors,
            Target::Parquet => Format::Parquet,
            Target::Csv | Target::Tsv => Format::Delimited,
            Target::JsonLines => Format::JsonLines,
            _ => Format::Raw,
        }
    }

    /// The extension crash files get (so they open in the right tool); the data readers'
    /// inputs are written with it too, since their format is decided by it.
    pub fn extension(self) -> &'static str {
        match self {
            Target::Csv => "csv",
            Target::Tsv => "tsv",
            Target::JsonLines => "jsonl",
            _ => match self.format() {
                Format::Json => "json",
                Format::Safetensors => "safetensors",
                Format::Parquet => "parquet",
                Format::Delimited | Format::JsonLines | Format::Raw => "bin",
            },
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How one input ended (a panic is not an outcome: it unwinds out of [`Harness::run`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The loader accepted the file.
    Ok,
    /// The loader refused it with an error (its message and sources, joined by `: `).
    Err(String),
}

/// What a target loads against, built once per worker.
enum Context {
    None,
    /// The tiny model's config (the safetensors and tokenizer targets).
    Config(Box<EncoderConfig>),
    /// The tiny classifier (the adapter targets).
    Model(Box<SequenceClassifier<B>>),
    /// The tiny classifier on the training backend (the checkpoint target).
    TrainModel(Box<SequenceClassifier<AB>>),
}

/// Runs inputs through one target: each input is written to the file name its loader reads,
/// in a private scratch directory (in `/dev/shm` when there is one: no disk traffic), and the
/// loader is called on it.
pub struct Harness {
    target: Target,
    // Keeps the scratch directory alive; removed on drop.
    _scratch: tempfile::TempDir,
    dir: PathBuf,
    input: PathBuf,
    // The data readers' second copy of the input, read with columns by position beside
    // AG News's `classes.txt`.
    copy: Option<PathBuf>,
    context: Context,
}

impl fmt::Debug for Harness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Harness")
            .field("target", &self.target)
            .field("input", &self.input)
            .finish_non_exhaustive()
    }
}

/// Writes a fixture into the scratch directory (once per harness), through `fsio` as every
/// file the workspace writes.
fn write(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    imdb_lora_fsio::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))
}

/// Where the `split_json` target finds a file a record names: `path`'s plain components under
/// `data` (its data directory), any root, prefix, `.` or `..` dropped. Seeds name the files
/// by relative paths (`train.csv`, `news/train.csv`); a mutated record's paths stay inside the
/// scratch directory whatever they say, so the harness never reads a file outside it (a
/// `/dev/zero` would read forever), and it never changes the process's directory (the tests
/// run harnesses on several threads).
pub fn resolve_in(data: &Path, path: &Path) -> PathBuf {
    let mut out = data.to_path_buf();
    for part in path.components() {
        if let Component::Normal(name) = part {
            out.push(name);
        }
    }
    out
}

/// The columns AG News is read with (no header row; label first, title and description the
/// text), as a user names them by position.
fn by_position() -> imdb_lora_data::table::Result<TableSpec> {
    Ok(TableSpec {
        text: Column::parse_list("2,3")?,
        label: Some("1".parse()?),
        header: Some(false),
        ..TableSpec::default()
    })
}

/// A fresh private directory for scratch files, in `/dev/shm` when there is one.
///
/// # Errors
/// When no temporary directory can be created.
pub fn scratch_dir() -> anyhow::Result<tempfile::TempDir> {
    let shm = Path::new("/dev/shm");
    let builder = {
        let mut b = tempfile::Builder::new();
        b.prefix("imdb-lora-fuzz-");
        b
    };
    if shm.is_dir()
        && let Ok(dir) = builder.tempdir_in(shm)
    {
        return Ok(dir);
    }
    builder
        .tempdir()
        .context("cannot create a scratch directory")
}

impl Harness {
    /// A harness for `target`, with the tiny fixtures in place.
    ///
    /// # Errors
    /// When the scratch directory or the fixtures cannot be set up (never because of an
    /// input).
    pub fn new(target: Target) -> anyhow::Result<Harness> {
        Self::new_in(target, None)
    }

    /// As [`Harness::new`], with the scratch directory created inside `parent` when given (the
    /// supervisor's, which it removes even when a worker dies without cleaning up).
    ///
    /// # Errors
    /// As [`Harness::new`].
    pub fn new_in(target: Target, parent: Option<&Path>) -> anyhow::Result<Harness> {
        let scratch = match parent {
            Some(p) => tempfile::Builder::new()
                .prefix("worker-")
                .tempdir_in(p)
                .with_context(|| format!("cannot create a scratch directory in {}", p.display()))?,
            None => scratch_dir()?,
        };
        let dir = scratch.path().to_path_buf();
        let model_dir = dir.join("model");
        std::fs::create_dir_all(&model_dir).context("cannot create the model directory")?;
        let adapter_dir = dir.join("adapter");
        std::fs::create_dir_all(&adapter_dir).context("cannot create the adapter directory")?;
        let tiny_config = || -> anyhow::Result<EncoderConfig> {
            let path = model_dir.join(imdb_lora_encoder::files::CONFIG_FILE);
            write(&path, TINY_CONFIG)?;
            Ok(EncoderConfig::from_file(&path)?)
        };
        let tiny_files = || -> anyhow::Result<()> {
            write(
                &model_dir.join(imdb_lora_encoder::files::CONFIG_FILE),
                TINY_CONFIG,
            )?;
            write(
                &model_dir.join(imdb_lora_encoder::files::WEIGHTS_FILE),
                TINY_WEIGHTS,
            )
        };
        let tiny_model = || -> anyhow::Result<SequenceClassifier<B>> {
            tiny_files()?;
            Ok(imdb_lora_encoder::load_classifier::<B>(&model_dir, &Default::default(), 0)?.0)
        };
        let mut copy = None;
        let (input, context) = match target {
            Target::Config => {
                // Accepted configs are loaded with the bare weights: no classifier in them, so
                // the config's label count sizes a fresh head.
                write(
                    &model_dir.join(imdb_lora_encoder::files::WEIGHTS_FILE),
                    TINY_BARE_WEIGHTS,
                )?;
                (
                    dir.join(imdb_lora_encoder::files::CONFIG_FILE),
                    Context::None,
                )
            }
            Target::Safetensors => (
                dir.join(imdb_lora_encoder::files::WEIGHTS_FILE),
                Context::Config(Box::new(tiny_config()?)),
            ),
            Target::Tokenizer => (
                dir.join(imdb_lora_encoder::files::TOKENIZER_JSON),
                Context::Config(Box::new(tiny_config()?)),
            ),
            Target::AdapterConfig => {
                write(
                    &adapter_dir.join(imdb_lora_encoder::adapter::ADAPTER_WEIGHTS),
                    TINY_ADAPTER_WEIGHTS,
                )?;
                (
                    adapter_dir.join(imdb_lora_encoder::adapter::ADAPTER_CONFIG),
                    Context::Model(Box::new(tiny_model()?)),
                )
            }
            Target::AdapterModel => {
                write(
                    &adapter_dir.join(imdb_lora_encoder::adapter::ADAPTER_CONFIG),
                    TINY_ADAPTER_CONFIG,
                )?;
                (
                    adapter_dir.join(imdb_lora_encoder::adapter::ADAPTER_WEIGHTS),
                    Context::Model(Box::new(tiny_model()?)),
                )
            }
            Target::Checkpoint => {
                tiny_files()?;
                let model =
                    imdb_lora_encoder::load_classifier::<AB>(&model_dir, &Default::default(), 0)?.0;
                (
                    dir.join("last.safetensors"),
                    Context::TrainModel(Box::new(model)),
                )
            }
            Target::Parquet => (dir.join("train.parquet"), Context::None),
            Target::Metrics => (dir.join("metrics.json"), Context::None),
            Target::Csv | Target::Tsv | Target::JsonLines => {
                let name = format!("train.{}", target.extension());
                let news = dir.join("news");
                std::fs::create_dir_all(&news).context("cannot create the news directory")?;
                write(
                    &news.join(imdb_lora_data::table::CLASSES_FILE),
                    NEWS_CLASSES.as_bytes(),
                )?;
                copy = Some(news.join(&name));
                (dir.join(name), Context::None)
            }
            Target::SplitJson => {
                let data = dir.join("data");
                for (name, text) in SPLIT_DATA {
                    let path = data.join(name);
                    if let Some(parent) = path.parent() {
                        std::fs::create_dir_all(parent)
                            .with_context(|| format!("cannot create {}", parent.display()))?;
                    }
                    write(&path, text.as_bytes())?;
                }
                let run = dir.join("run");
                std::fs::create_dir_all(&run).context("cannot create the run directory")?;
                (run.join(imdb_lora_data::table::SPLIT_FILE), Context::None)
            }
            _ => (dir.join("input.bin"), Context::None),
        };
        Ok(Harness {
            target,
            _scratch: scratch,
            dir,
            input,
            copy,
            context,
        })
    }

    /// The target this harness runs.
    pub fn target(&self) -> Target {
        self.target
    }

    /// Runs one input. A loader's error is an [`Outcome::Err`]; a loader's panic unwinds out
    /// of this call (the caller catches it).
    ///
    /// # Errors
    /// Only when the input cannot be written to the scratch directory.
    pub fn run(&self, bytes: &[u8]) -> anyhow::Result<Outcome> {
        if self.target.is_selftest() {
            return Ok(selftest(self.target, bytes));
        }
        // Straight to the file, not through `imdb_lora_fsio::write`: the workspace's one
        // direct write (tidy's DIRECT_WRITES_ALLOWED). The input file is this harness's private
        // scratch file (in /dev/shm when there is one), rewritten for every input, thousands
        // of times a second, and read back at once by this thread: no one else can see a torn
        // one and nothing of it outlives the run, while fsio's temp file, fsync, rename and
        // directory fsync per input would cost as much as a fast loader (on a disk-backed
        // /tmp, two fsyncs each).
        for path in std::iter::once(&self.input).chain(&self.copy) {
            std::fs::write(path, bytes)
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        Ok(match self.load() {
            Ok(()) => Outcome::Ok,
            Err(e) => Outcome::Err(chain(e.as_ref())),
        })
    }

    fn load(&self) -> Result<(), Box<dyn StdError + Send + Sync>> {
        let device = Default::default();
        match (self.target, &self.context) {
            (Target::Config, _) => {
                let config = EncoderConfig::from_file(&self.input)?;
                let weights = self
                    .dir
                    .join("model")
                    .join(imdb_lora_encoder::files::WEIGHTS_FILE);
                imdb_lora_encoder::load_classifier_with_config::<B>(&weights, &config, &device, 0)?;
            }
            (Target::Safetensors, Context::Config(config)) => {
                imdb_lora_encoder::load_classifier_with_config::<B>(
                    &self.input,
                    config,
                    &device,
                    0,
                )?;
            }
            (Target::Tokenizer, Context::Config(config)) => {
                let tokenizer = TextTokenizer::from_tokenizer_json(&self.input, MAX_LEN)?;
                tokenizer.check_ids_fit(config.vocab_size, config.type_vocab_size)?;
                for s in SENTENCES {
                    tokenizer.encode(s)?;
                }
            }
            (Target::AdapterConfig | Target::AdapterModel, Context::Model(model)) => {
                PeftAdapter::read(&self.dir.join("adapter"))?.apply(model)?;
            }
            (Target::Checkpoint, Context::TrainModel(model)) => {
                let optimizer = AdamW::<B>::new(AdamWConfig::default());
                imdb_lora_train::checkpoint::load::<AB>(&self.input, model, optimizer, &device)?;
            }
            (Target::Parquet, _) => {
                imdb_lora_data::table::read_file(
                    &self.input,
                    &imdb_lora_data::table::TableSpec::default(),
                )?;
            }
            (Target::Metrics, _) => {
                MetricsFile::read(&self.input)?;
            }
            (Target::Csv | Target::Tsv | Target::JsonLines, _) => {
                // Both readings run on every input; either accepting it is a clean outcome.
                let detected = imdb_lora_data::table::read_file(&self.input, &TableSpec::default());
                let positional = match &self.copy {
                    Some(copy) => Some(imdb_lora_data::table::read_file(copy, &by_position()?)),
                    None => None,
                };
                match (detected, positional) {
                    (Ok(_), _) | (_, Some(Ok(_))) => {}
                    (Err(a), Some(Err(b))) => {
                        return Err(format!("{}; by position: {}", chain(&a), chain(&b)).into());
                    }
                    (Err(a), None) => return Err(a.into()),
                }
            }
            (Target::SplitJson, _) => {
                let run = self.dir.join("run");
                let record = SplitRecord::read(&run)?;
                let data = self.dir.join("data");
                let files = |files: &[PathBuf]| -> Vec<PathBuf> {
                    files.iter().map(|f| resolve_in(&data, f)).collect()
                };
                record.reviews(&files(&record.train_files), &record.train_rows)?;
                record.reviews(&files(&record.test_files), &record.test_rows)?;
                if !record.val_files.is_empty() || !record.val_rows.is_empty() {
                    record.reviews(&files(&record.val_files), &record.val_rows)?;
                }
            }
            (target, _) => return Err(format!("no loader context for target {target}").into()),
        }
        Ok(())
    }
}

/// `e` and its sources, joined by `: ` (skipping a source whose text the message already
/// repeats).
fn chain(e: &(dyn StdError + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

/// The self-test targets' behaviour: an input whose first byte is 2 crashes in the target's
/// way; any other input is fine.
fn selftest(target: Target, bytes: &[u8]) -> Outcome {
    if bytes.first() != Some(&2) {
        return Outcome::Ok;
    }
    match target {
        Target::SelftestPanic => panic!("selftest panic on purpose"),
        Target::SelftestAbort => std::process::abort(),
        Target::SelftestHang => loop {
            std::thread::sleep(std::time::Duration::from_secs(3600));
        },
        Target::SelftestAlloc => {
            // 1 GiB, touched so the allocation cannot be elided.
            let v = vec![1u8; 1 << 30];
            Outcome::Err(format!(
                "allocated {} bytes",
                v.iter().map(|&b| b as usize).sum::<usize>()
            ))
        }
        _ => Outcome::Ok,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_s_paths_resolve_inside_the_data_directory() {
        let data = Path::new("/scratch/data");
        for (named, resolved) in [
            ("train.csv", "/scratch/data/train.csv"),
            ("news/train.csv", "/scratch/data/news/train.csv"),
            ("./news/../train.csv", "/scratch/data/news/train.csv"),
            ("/dev/zero", "/scratch/data/dev/zero"),
            ("../../etc/passwd", "/scratch/data/etc/passwd"),
            ("", "/scratch/data"),
        ] {
            assert_eq!(resolve_in(data, Path::new(named)), Path::new(resolved));
        }
    }
}

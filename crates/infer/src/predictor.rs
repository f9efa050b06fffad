//! [`Predictor`]: a model, its tokenizer and label names, loaded once — with any number of
//! PEFT adapters over one shared base — predicting batches of texts.

use std::cmp::Reverse;
use std::path::{Path, PathBuf};

use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};
use imdb_lora_data::batch::collate_to;
use imdb_lora_data::tokenize::MAX_SUPPORTED_LEN;
use imdb_lora_data::{BatcherConfig, Encoded, RecordedLongText, Side, TextTokenizer, Tokens};
use imdb_lora_encoder::adapter::{ADAPTER_CONFIG, ADAPTER_WEIGHTS};
use imdb_lora_encoder::export::{CONFIG_FILE, WEIGHTS_FILE};
use imdb_lora_encoder::heads::{Head, output_key};
use imdb_lora_encoder::{
    EncoderConfig, KernelBackend, MappedFile, PeftAdapter, Precision, Quantization,
    SequenceClassifier,
};

use crate::prediction::{Labels, Prediction, softmax};
use crate::{InferError, ModelFiles, TextInput};
use imdb_lora_data::long_text::mean_logits;

/// Default truncation length, in tokens (`[CLS]` and `[SEP]` included).
pub const DEFAULT_MAX_LEN: usize = 256;
/// Default number of texts per forward pass.
pub const DEFAULT_BATCH_SIZE: usize = 32;
/// Seed for a classifier head the checkpoint lacks; only used when an adapter then replaces
/// that head (otherwise loading is refused).
const HEAD_SEED: u64 = 0;

/// How texts are cut and grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PredictOptions {
    /// Longest token sequence fed to the model; longer texts keep their head. Capped at the
    /// model's longest input (`max_position_embeddings`; for RoBERTa that less the padding
    /// offset).
    pub max_len: usize,
    /// Texts per forward pass.
    pub batch_size: usize,
    /// The encoder's compute precision (bf16: mixed precision, see [`imdb_lora_encoder::Precision`]);
    /// an adapter is merged in f32 first.
    pub precision: Precision,
    /// Pad each batch to a multiple of this many tokens (capped at `max_len`): fewer distinct
    /// shapes, so the GPU backends compile fewer kernels. `None`: pad to the longest text.
    pub pad_multiple: Option<usize>,
    /// Quantise the encoder's projections (after merging a lone adapter; several adapters run
    /// unmerged beside the shared int8 weights). A model saved in int8 runs in int8 without
    /// it. Needs f32 `precision`.
    pub quantize: Option<Quantization>,
}

impl Default for PredictOptions {
    fn default() -> Self {
        Self {
            max_len: DEFAULT_MAX_LEN,
            batch_size: DEFAULT_BATCH_SIZE,
            precision: Precision::F32,
            pad_multiple: None,
            quantize: None,
        }
    }
}

impl PredictOptions {
    /// With another truncation length.
    pub fn with_max_len(mut self, max_len: usize) -> Self {
        self.max_len = max_len;
        self
    }

    /// With another batch size.
    pub fn with_batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size;
        self
    }

    /// With another compute precision.
    pub fn with_precision(mut self, precision: Precision) -> Self {
        self.precision = precision;
        self
    }

    /// With the encoder quantised (`None`: as the model is stored).
    pub fn with_quantize(mut self, quantize: Option<Quantization>) -> Self {
        self.quantize = quantize;
        self
    }

    /// With batches padded to a multiple of `tokens`.
    pub fn with_pad_multiple(mut self, tokens: Option<usize>) -> Self {
        self.pad_multiple = tokens;
        self
    }
}

/// A PEFT LoRA adapter to load over the model, and the name requests pick it by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Adapter {
    /// The name it is served under.
    pub name: String,
    /// `adapter_config.json` + `adapter_model.safetensors`.
    pub dir: PathBuf,
}

impl Adapter {
    /// An adapter directory, named after its last path component (`adapter` when it has
    /// none).
    pub fn from_dir(dir: &Path) -> Self {
        let name = dir.file_name().map_or_else(
            || "adapter".to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        Self {
            name,
            dir: dir.to_path_buf(),
        }
    }
}

/// One classifier a [`Predictor`] can run: the model itself, or an adapter over it.
#[derive(Debug)]
struct Classifier<B: Backend> {
    /// The adapter's name; `None` for the model itself.
    name: Option<String>,
    model: SequenceClassifier<B>,
    labels: Labels,
    /// The adapter's directory and rank.
    adapter: Option<(PathBuf, usize)>,
    merged: bool,
}

/// What one of a predictor's classifiers is, for listing (a server's `/info`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassifierInfo {
    /// The adapter's name; `None` for the model itself.
    pub name: Option<String>,
    /// Class names by output index.
    pub labels: Vec<String>,
    /// The adapter directory.
    pub adapter_dir: Option<PathBuf>,
    /// The adapter's LoRA rank.
    pub rank: Option<usize>,
    /// Whether the adapter is folded into the weights (the only classifier loaded) rather
    /// than applied beside a shared base.
    pub merged: bool,
}

/// A loaded classifier ready to label texts.
///
/// Built from a model directory (`config.json`, `model.safetensors`, and `tokenizer.json` or
/// `vocab.txt`) or files already resolved ([`ModelFiles`]), with zero or more PEFT LoRA
/// adapters (`adapter_config.json`, `adapter_model.safetensors`, as PEFT or
/// `imdb_lora_encoder::save_adapter` write them). Without adapters the model itself is the
/// classifier (it needs a trained head). With adapters, each adapter is one classifier and
/// the first is the default: one adapter is merged into the weights (one matmul per
/// projection, as fast as a plain model); several are applied unmerged over one copy of the
/// base weights, so memory is the base plus the adapters' own size.
#[derive(Debug)]
pub struct Predictor<B: Backend> {
    classifiers: Vec<Classifier<B>>,
    config: EncoderConfig,
    input: TextInput,
    batch_size: usize,
    pad_multiple: Option<usize>,
    device: B::Device,
}

fn missing(path: PathBuf, what: &str) -> InferError {
    InferError::MissingFile {
        path,
        what: what.to_string(),
    }
}

/// The first dimension of `key` in a safetensors file, if it holds it (header only).
fn head_rows(path: &Path, key: &str) -> Result<Option<usize>, InferError> {
    let file = MappedFile::open(path)?;
    Ok(file
        .tensors()?
        .shape(key)
        .and_then(|shape| shape.first().copied()))
}

/// Checks that `dir` is a PEFT adapter directory, naming what is wrong otherwise.
fn check_adapter_dir(dir: &Path) -> Result<(), InferError> {
    if !dir.is_dir() {
        return Err(missing(dir.to_path_buf(), "PEFT adapter directory"));
    }
    if !dir.join(ADAPTER_CONFIG).is_file() {
        if dir.join(CONFIG_FILE).is_file() {
            return Err(InferError::ModelGivenAsAdapter {
                dir: dir.to_path_buf(),
            });
        }
        return Err(missing(
            dir.join(ADAPTER_CONFIG),
            "PEFT adapter configuration",
        ));
    }
    if !dir.join(ADAPTER_WEIGHTS).is_file() {
        return Err(missing(
            dir.join(ADAPTER_WEIGHTS),
            "PEFT adapter weights (only safetensors adapters are supported)",
        ));
    }
    Ok(())
}

/// The label names for an adapter whose head has `rows` outputs over a model configured with
/// `config`: the model's own when the counts agree; else those of a `config.json` beside the
/// adapter (this tool's run layout, `model/adapter/` inside `model/`) when its count agrees;
/// else generic `LABEL_i` (a PEFT adapter does not carry them).
fn adapter_labels(config: &EncoderConfig, dir: &Path, rows: usize) -> EncoderConfig {
    if rows == config.num_labels() {
        return config.clone();
    }
    if let Some(parent) = dir.parent().map(|p| p.join(CONFIG_FILE))
        && let Ok(beside) = EncoderConfig::from_file(&parent)
        && beside.num_labels() == rows
    {
        let names: Vec<String> = (0..rows).map(|i| beside.label_name(i)).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        tracing::info!(adapter = %dir.display(), from = %parent.display(), "label names");
        return config.clone().with_labels(&names);
    }
    tracing::info!(
        rows,
        adapter = %dir.display(),
        "the adapter's head has {rows} labels; using generic names LABEL_0.."
    );
    let names: Vec<String> = (0..rows).map(|i| format!("LABEL_{i}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    config.clone().with_labels(&names)
}

impl<B: KernelBackend> Predictor<B> {
    /// Loads a model directory, with the given PEFT adapters over it.
    ///
    /// The directory must hold `config.json`, `model.safetensors` and a tokenizer
    /// (`tokenizer.json`, or `vocab.txt` with an optional `tokenizer_config.json`). Errors name
    /// the missing file, and recognise an adapter directory given as the model (and the
    /// reverse).
    pub fn from_dir(
        model_dir: &Path,
        adapters: &[Adapter],
        options: PredictOptions,
        device: &B::Device,
    ) -> Result<Self, InferError> {
        if !model_dir.is_dir() {
            return Err(InferError::NoModelDir {
                path: model_dir.to_path_buf(),
            });
        }
        let config = model_dir.join(CONFIG_FILE);
        if !config.is_file() {
            if model_dir.join(ADAPTER_CONFIG).is_file() {
                return Err(InferError::AdapterGivenAsModel {
                    dir: model_dir.to_path_buf(),
                });
            }
            return Err(missing(config, "model configuration"));
        }
        let weights = model_dir.join(WEIGHTS_FILE);
        if !weights.is_file() {
            let what = if model_dir.join("pytorch_model.bin").is_file() {
                "model weights (only safetensors is supported; this directory has pytorch_model.bin)"
            } else {
                "model weights"
            };
            return Err(missing(weights, what));
        }
        let optional = |name: &str| Some(model_dir.join(name)).filter(|p| p.is_file());
        let files = ModelFiles {
            source: format!("directory {}", model_dir.display()),
            config,
            weights,
            tokenizer_json: optional("tokenizer.json"),
            vocab: optional("vocab.txt"),
            tokenizer_config: optional("tokenizer_config.json"),
        };
        if files.tokenizer_json.is_none() && files.vocab.is_none() {
            return Err(missing(
                model_dir.join("tokenizer.json"),
                "tokenizer (neither tokenizer.json nor vocab.txt is in the model directory)",
            ));
        }
        Self::from_model_files(&files, adapters, options, device)
    }

    /// As [`Predictor::from_dir`], from files already resolved (e.g. by
    /// the CLI's `fetch_model` from the Hub cache).
    pub fn from_model_files(
        files: &ModelFiles,
        adapters: &[Adapter],
        options: PredictOptions,
        device: &B::Device,
    ) -> Result<Self, InferError> {
        let _span = tracing::info_span!("load_predictor", model = %files.source).entered();
        if options.batch_size == 0 {
            return Err(InferError::InvalidOption {
                name: "batch_size",
                value: 0,
                expected: "at least 1",
            });
        }
        for (i, a) in adapters.iter().enumerate() {
            if adapters[..i].iter().any(|b| b.name == a.name) {
                return Err(InferError::DuplicateAdapter {
                    name: a.name.clone(),
                });
            }
        }
        let config = EncoderConfig::from_file(&files.config)?;
        // Each file's head, read once from its header (`None`: no head; a missing adapter file
        // is left to `check_adapter_dir` below, which names it).
        let head_key = format!("{}.weight", output_key(config.family));
        let model_head = head_rows(&files.weights, &head_key)?;
        let mut adapter_heads = Vec::with_capacity(adapters.len());
        for adapter in adapters {
            check_adapter_dir(&adapter.dir)?;
            let rows = head_rows(
                &adapter.dir.join(ADAPTER_WEIGHTS),
                &format!("base_model.model.{head_key}"),
            )?;
            // A base model (e.g. MiniLM, 2 generic labels) under an adapter trained with
            // another number of labels: the adapter's head says how many (PEFT needs
            // `num_labels=N` told; here the file says it).
            let rows = match (rows, model_head) {
                (Some(rows), _) => rows,
                (None, Some(_)) => config.num_labels(),
                (None, None) => {
                    return Err(InferError::NoClassifierHead {
                        weights: files.weights.clone(),
                        adapter: Some(adapter.dir.join(ADAPTER_WEIGHTS)),
                    });
                }
            };
            let labels = adapter_labels(&config, &adapter.dir, rows);
            if labels.num_labels() < 2 {
                return Err(InferError::TooFewLabels {
                    path: adapter.dir.join(ADAPTER_WEIGHTS),
                    found: labels.num_labels(),
                });
            }
            adapter_heads.push(labels);
        }
        if adapters.is_empty() {
            if model_head.is_none() {
                return Err(InferError::NoClassifierHead {
                    weights: files.weights.clone(),
                    adapter: None,
                });
            }
            if config.num_labels() < 2 {
                return Err(InferError::TooFewLabels {
                    path: files.config.clone(),
                    found: config.num_labels(),
                });
            }
        }

        let max_len = options.max_len.min(config.max_sequence_length());
        if max_len < options.max_len {
            tracing::warn!(
                requested = options.max_len,
                max_len,
                "max_len capped at the longest input the model's positions cover"
            );
        }
        if !(2..=MAX_SUPPORTED_LEN).contains(&max_len) {
            return Err(InferError::InvalidOption {
                name: "max_len",
                value: max_len,
                expected: "at least 2 ([CLS] and [SEP]) and at most 8192",
            });
        }
        // A model trained with a long-text rule carries it, with the window it was trained
        // with: applied here, so predict and the server see texts as training did.
        let (max_len, long_text) = RecordedLongText::resolve(
            config.extra.get(imdb_lora_data::long_text::CONFIG_KEY),
            &files.config,
            max_len,
        )?;
        let tokenizer = TextTokenizer::from_files(&files.tokenizer_files(), max_len)?
            .with_long_text(long_text)?;
        if tokenizer.vocab_size() > config.vocab_size {
            return Err(InferError::VocabMismatch {
                tokenizer: tokenizer.source().to_path_buf(),
                tokenizer_vocab: tokenizer.vocab_size(),
                config: files.config.clone(),
                model_vocab: config.vocab_size,
            });
        }
        // A count that fits can still hold an id that does not (ids need not be contiguous).
        tokenizer.check_ids_fit(config.vocab_size, config.type_vocab_size)?;
        let input = TextInput::new(tokenizer)?;

        // A model with a head of another size than its config's label count fails here, with
        // the shapes named.
        let base = if model_head.is_some() {
            imdb_lora_encoder::load_classifier_with_config::<B>(
                &files.weights,
                &config,
                device,
                HEAD_SEED,
            )?
        } else {
            imdb_lora_encoder::load_classifier_without_head::<B>(
                &files.weights,
                &config,
                device,
                HEAD_SEED,
            )?
        };
        if options.quantize.is_some() && options.precision != Precision::F32 {
            return Err(InferError::InvalidSetting {
                name: "quantize",
                value: options.quantize.map(|q| q.to_string()).unwrap_or_default(),
                expected: "f32 precision: int8 weights are quantised from f32 ones",
            });
        }
        // The model as it runs: in its precision, quantised when asked (once: a model saved
        // in int8 already is).
        let finish = |model: SequenceClassifier<B>| -> Result<SequenceClassifier<B>, InferError> {
            let model = model.with_precision(options.precision);
            Ok(match options.quantize {
                Some(Quantization::Int8) => model.quantize_int8()?,
                _ => model,
            })
        };
        let classifiers = if adapters.is_empty() {
            vec![Classifier {
                name: None,
                labels: Labels::from_config(&config),
                model: finish(base)?,
                adapter: None,
                merged: false,
            }]
        } else {
            let merge = adapters.len() == 1;
            // Merged: the adapter's update is added to the f32 weights, then rounded (or
            // quantised). Shared: the base is converted once, and every adapter runs beside it.
            let base = if merge { base } else { finish(base)? };
            let mut out = Vec::with_capacity(adapters.len());
            for (adapter, labels) in adapters.iter().zip(adapter_heads) {
                let peft = PeftAdapter::read(&adapter.dir)?;
                // The checkpoint's own head is of no use when the adapter brings one of
                // another size; the encoder's weights are shared either way (cloning a
                // tensor shares its storage).
                let start = if labels.num_labels() == base.num_labels() {
                    base.clone()
                } else {
                    SequenceClassifier::new(
                        base.encoder.clone(),
                        Head::fresh(&labels, device, HEAD_SEED),
                        &labels,
                    )
                };
                let mut model = peft.apply(&start)?;
                if merge {
                    // Folding B·A into the base weights makes inference cost what the plain
                    // model costs.
                    model = finish(model.merge_lora())?;
                }
                tracing::info!(
                    name = %adapter.name,
                    adapter = %adapter.dir.display(),
                    r = peft.lora.r,
                    targets = ?peft.lora.target_modules,
                    merged = merge,
                    "applied LoRA adapter"
                );
                // An int8 base (a model saved in int8) cannot take the update: the adapter
                // then runs beside it.
                let merged = model
                    .projection_paths()
                    .iter()
                    .all(|(_, p)| p.lora.is_none() || p.is_merged());
                out.push(Classifier {
                    name: Some(adapter.name.clone()),
                    labels: Labels::from_config(&labels),
                    model,
                    adapter: Some((adapter.dir.clone(), peft.lora.r)),
                    merged,
                });
            }
            out
        };
        tracing::info!(
            max_len,
            precision = %options.precision,
            int8 = classifiers[0].model.is_int8(),
            batch_size = options.batch_size,
            labels = ?classifiers[0].labels.names,
            classifiers = classifiers.len(),
            "predictor ready"
        );
        Ok(Self {
            classifiers,
            config,
            input,
            batch_size: options.batch_size,
            pad_multiple: options.pad_multiple,
            device: device.clone(),
        })
    }

    /// Whether the default classifier's projections hold int8 weights (quantised when
    /// loading, or saved so).
    pub fn is_int8(&self) -> bool {
        self.classifiers.first().is_some_and(|c| c.model.is_int8())
    }

    /// The truncation length in use (after capping at the model's longest input).
    pub fn max_len(&self) -> usize {
        self.input.max_len()
    }

    /// Texts per forward pass.
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// The names the default classifier's `label` takes, by model output index.
    pub fn label_names(&self) -> Vec<&str> {
        self.classifiers[0]
            .labels
            .names
            .iter()
            .map(String::as_str)
            .collect()
    }

    /// Every classifier loaded, the default first.
    pub fn classifiers(&self) -> Vec<ClassifierInfo> {
        self.classifiers
            .iter()
            .map(|c| ClassifierInfo {
                name: c.name.clone(),
                labels: c.labels.names.clone(),
                adapter_dir: c.adapter.as_ref().map(|(dir, _)| dir.clone()),
                rank: c.adapter.as_ref().map(|(_, r)| *r),
                merged: c.merged,
            })
            .collect()
    }

    /// The model configuration.
    pub fn config(&self) -> &EncoderConfig {
        &self.config
    }

    /// The default classifier (its adapter merged, if it has one and is the only one).
    pub fn model(&self) -> &SequenceClassifier<B> {
        &self.classifiers[0].model
    }

    /// The tokenizer side of the predictor, to encode texts on another thread.
    pub fn input(&self) -> &TextInput {
        &self.input
    }

    /// Token ids as the model sees them: `[CLS] ... [SEP]`, at most `max_len`, no padding.
    ///
    /// A text longer than `max_len` is given to the model by the model's long-text rule: by
    /// default it keeps its head (`[CLS]`, the first `max_len - 2` tokens, `[SEP]`); a model
    /// trained on windows gets all of them (`Tokens::more`). A text cut is logged with its
    /// index. An empty text is `[CLS] [SEP]`.
    pub fn encode(&self, texts: &[&str]) -> Result<Vec<Tokens>, InferError> {
        let all = self.input.encode_batch(texts, Side::Right)?;
        for (index, tokens) in all.iter().enumerate() {
            if tokens.truncated {
                tracing::warn!(
                    index,
                    max_len = self.max_len(),
                    "text {index} is longer than max_len {}; part of it was left out",
                    self.max_len()
                );
            }
        }
        Ok(all)
    }

    /// Labels every text with the default classifier, in input order.
    ///
    /// Texts are tokenised (see [`Predictor::encode`]), sorted by length so that each batch of
    /// `batch_size` pads little, run through the model, and returned in the order given.
    /// Empty strings are valid input (the model sees just `[CLS] [SEP]`); no texts gives no
    /// predictions.
    pub fn predict(&self, texts: &[&str]) -> Result<Vec<Prediction>, InferError> {
        let tokens = self.encode(texts)?;
        // Every sequence with its text (a long text's windows are several).
        let sequences: Vec<(usize, &[u32])> = tokens
            .iter()
            .enumerate()
            .flat_map(|(i, t)| t.sequences().map(move |s| (i, s.as_slice())))
            .collect();
        let mut order: Vec<usize> = (0..sequences.len()).collect();
        // Longest first: if a batch is too big for memory, the first one says so.
        order.sort_by_key(|&i| Reverse(sequences[i].1.len()));
        let mut logits: Vec<Vec<Vec<f32>>> = vec![Vec::new(); texts.len()];
        for chunk in order.chunks(self.batch_size) {
            let batch: Vec<&[u32]> = chunk.iter().map(|&i| sequences[i].1).collect();
            for (&i, l) in chunk.iter().zip(self.logits(0, &batch)?) {
                logits[sequences[i].0].push(l);
            }
        }
        Ok(texts
            .iter()
            .zip(logits)
            .map(|(text, windows)| self.prediction(0, text, &mean_logits(&windows)))
            .collect())
    }

    /// The prediction of classifier `classifier` for `text` from its logits (a long text's
    /// windows': their mean, [`mean_logits`]).
    pub fn prediction(&self, classifier: usize, text: &str, logits: &[f32]) -> Prediction {
        self.classifiers[classifier]
            .labels
            .prediction(text, softmax(logits))
    }

    /// The length a batch whose longest input has `longest` tokens is padded to: rounded up
    /// to the pad multiple, never past `max_len`.
    pub fn padded_len(&self, longest: usize) -> usize {
        BatcherConfig::eval(self.batch_size)
            .with_pad_multiple(self.pad_multiple)
            .padded_len(longest, self.max_len())
    }

    /// One forward pass of classifier `classifier` (an index into
    /// [`Predictor::classifiers`]) over `inputs` (token ids as [`TextInput`] gives them):
    /// each input's logits, in order. The batch is padded to its longest input, rounded up to
    /// the pad multiple.
    pub fn logits(
        &self,
        classifier: usize,
        inputs: &[&[u32]],
    ) -> Result<Vec<Vec<f32>>, InferError> {
        let c = self
            .classifiers
            .get(classifier)
            .ok_or_else(|| InferError::Output(format!("no classifier {classifier}")))?;
        if inputs.is_empty() {
            return Ok(Vec::new());
        }
        let examples: Vec<Encoded> = inputs
            .iter()
            .enumerate()
            .map(|(row, ids)| Encoded {
                row,
                label: 0,
                type_ids: vec![0; ids.len()],
                ids: ids.to_vec(),
            })
            .collect();
        let refs: Vec<&Encoded> = examples.iter().collect();
        let longest = inputs.iter().map(|ids| ids.len()).max().unwrap_or(0);
        let batch = collate_to(&refs, self.input.pad_id(), self.padded_len(longest));
        let shape = [batch.batch_size, batch.seq_len];
        let tensor = |values: Vec<i64>| {
            Tensor::<B, 2, Int>::from_data(TensorData::new(values, shape), &self.device)
        };
        let logits = c.model.forward(
            tensor(batch.input_ids),
            tensor(batch.attention_mask),
            Some(tensor(batch.token_type_ids)),
        )?;
        let values: Vec<f32> = logits
            .into_data()
            .convert::<f32>()
            .to_vec()
            .map_err(|e| InferError::Output(format!("{e:?}")))?;
        let n = c.labels.names.len();
        if values.len() != n * inputs.len() {
            return Err(InferError::Output(format!(
                "expected {} logits, got {}",
                n * inputs.len(),
                values.len()
            )));
        }
        Ok(values.chunks_exact(n).map(<[f32]>::to_vec).collect())
    }
}

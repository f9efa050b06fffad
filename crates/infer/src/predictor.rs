//! [`Predictor`]: model + tokenizer + label names, loaded once, predicting batches of texts.

use std::cmp::Reverse;
use std::path::{Path, PathBuf};

use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};
use imdb_lora_data::tokenize::MAX_SUPPORTED_LEN;
use imdb_lora_data::{Encoded, Review, TextTokenizer, collate};
use imdb_lora_encoder::adapter::{ADAPTER_CONFIG, ADAPTER_WEIGHTS};
use imdb_lora_encoder::export::{CONFIG_FILE, WEIGHTS_FILE};
use imdb_lora_encoder::heads::output_key;
use imdb_lora_encoder::{
    EncoderConfig, KernelBackend, MappedFile, PeftAdapter, Precision, SequenceClassifier,
};
use serde::Serialize;

use crate::{InferError, ModelFiles};

/// Default truncation length, in tokens (`[CLS]` and `[SEP]` included).
pub const DEFAULT_MAX_LEN: usize = 256;
/// Default number of texts per forward pass.
pub const DEFAULT_BATCH_SIZE: usize = 32;
/// Seed for the classifier head that `imdb_lora_encoder::load_classifier` creates for a checkpoint without
/// one; only used when an adapter then replaces that head (otherwise loading is refused).
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
}

impl Default for PredictOptions {
    fn default() -> Self {
        Self {
            max_len: DEFAULT_MAX_LEN,
            batch_size: DEFAULT_BATCH_SIZE,
            precision: Precision::F32,
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
}

/// The predicted class of one text, with every class's probability.
///
/// Serialised in one shape for every model, as transformers' `pipeline` names things:
/// `{"text", "label", "score", "probs": {name: probability, ...}}` (`score`: the probability
/// of `label`; classes in the model's label order). A two-label sentiment model (labels named
/// negative/positive, or transformers' generic `LABEL_0`/`LABEL_1`) also has the recipe's
/// fields, right after `text`: `{"text", "neg_prob", "pos_prob", "label", "score", "probs"}`.
///
/// Probabilities are the softmax of the model's logits, computed in f64 (they sum to 1 up to
/// f64 rounding); `label` names the most probable class (the lower index on a tie).
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    /// The input text, unchanged (also when the model saw only its truncated head).
    pub text: String,
    /// Name of the most probable class, from the model's `id2label` (`neg`/`pos` for a
    /// sentiment model with transformers' generic names).
    pub label: String,
    /// Every class's name and probability, in the model's label order.
    pub probs: Vec<(String, f64)>,
    /// For a sentiment model: the output indices of the negative and positive classes.
    sentiment: Option<[usize; 2]>,
}

impl Prediction {
    /// Probability of the negative class, for a sentiment model.
    pub fn neg_prob(&self) -> Option<f64> {
        self.sentiment.map(|[neg, _]| self.probs[neg].1)
    }

    /// Probability of the positive class, for a sentiment model.
    pub fn pos_prob(&self) -> Option<f64> {
        self.sentiment.map(|[_, pos]| self.probs[pos].1)
    }

    /// Probability of the class named `name`.
    pub fn prob(&self, name: &str) -> Option<f64> {
        self.probs.iter().find(|(n, _)| n == name).map(|(_, p)| *p)
    }

    /// Probability of the predicted class, [`Self::label`].
    pub fn score(&self) -> f64 {
        self.prob(&self.label).unwrap_or(0.0)
    }
}

impl Serialize for Prediction {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap as _;

        /// The class probabilities as a JSON object, in label order.
        struct Probs<'a>(&'a [(String, f64)]);
        impl Serialize for Probs<'_> {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let mut map = serializer.serialize_map(Some(self.0.len()))?;
                for (name, p) in self.0 {
                    map.serialize_entry(name, p)?;
                }
                map.end()
            }
        }

        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("text", &self.text)?;
        // The recipe's fields of a sentiment model: formatting, not another shape.
        if let Some([neg, pos]) = self.sentiment {
            map.serialize_entry("neg_prob", &self.probs[neg].1)?;
            map.serialize_entry("pos_prob", &self.probs[pos].1)?;
        }
        map.serialize_entry("label", &self.label)?;
        map.serialize_entry("score", &self.score())?;
        map.serialize_entry("probs", &Probs(&self.probs))?;
        map.end()
    }
}

/// What the classes are called, and which are negative and positive for a sentiment model.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Labels {
    /// Display names by output index.
    names: Vec<String>,
    /// For a sentiment model: the output indices of the negative and positive classes.
    sentiment: Option<[usize; 2]>,
}

impl Labels {
    /// From `id2label`. Two labels are a sentiment model when transformers' generic names
    /// (`LABEL_0`/`LABEL_1`, shown as `neg`/`pos` with IMDb's convention: 0 is negative) or
    /// names starting with "neg"/"pos" (any case, either order, so `{"0": "POSITIVE",
    /// "1": "NEGATIVE"}` is read correctly) say so. Everything else is plain classes.
    fn from_config(config: &EncoderConfig) -> Self {
        let mut names: Vec<String> = (0..config.num_labels())
            .map(|i| config.label_name(i))
            .collect();
        if names.len() != 2 {
            return Self {
                names,
                sentiment: None,
            };
        }
        if names[0] == "LABEL_0" && names[1] == "LABEL_1" {
            names = vec!["neg".into(), "pos".into()];
            return Self {
                names,
                sentiment: Some([0, 1]),
            };
        }
        let starts = |n: &str, p: &str| n.to_ascii_lowercase().starts_with(p);
        let sentiment = if starts(&names[0], "neg") && starts(&names[1], "pos") {
            Some([0, 1])
        } else if starts(&names[0], "pos") && starts(&names[1], "neg") {
            Some([1, 0])
        } else {
            None
        };
        Self { names, sentiment }
    }
}

/// A loaded classifier ready to label texts.
///
/// Built from a saved model directory (`config.json`, `model.safetensors`, and
/// `tokenizer.json` or `vocab.txt`), or from a base model plus a PEFT LoRA adapter directory
/// (`adapter_config.json`, `adapter_model.safetensors`, as written by PEFT or by
/// `imdb_lora_encoder::save_adapter`). Adapters are merged into the weights on loading: one matmul per
/// projection, as fast as a plain model.
#[derive(Debug)]
pub struct Predictor<B: Backend> {
    model: SequenceClassifier<B>,
    config: EncoderConfig,
    /// Truncates at `probe_len`, one more than `max_len` where the tokenizer allows it, so
    /// that a text longer than `max_len` is recognised (and reported) as such.
    tokenizer: TextTokenizer,
    probe_len: usize,
    max_len: usize,
    batch_size: usize,
    labels: Labels,
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

impl<B: KernelBackend> Predictor<B> {
    /// Loads a model directory, optionally with a PEFT adapter directory on top.
    ///
    /// The directory must hold `config.json`, `model.safetensors` and a tokenizer
    /// (`tokenizer.json`, or `vocab.txt` with an optional `tokenizer_config.json`). Errors name
    /// the missing file, and recognise an adapter directory given as the model (and the
    /// reverse).
    pub fn from_dir(
        model_dir: &Path,
        adapter_dir: Option<&Path>,
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
        Self::from_model_files(&files, adapter_dir, options, device)
    }

    /// As [`Predictor::from_dir`], from files already resolved (e.g. by
    /// the CLI's `fetch_model` from the Hub cache).
    pub fn from_model_files(
        files: &ModelFiles,
        adapter_dir: Option<&Path>,
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
        let mut config = EncoderConfig::from_file(&files.config)?;
        // A base model (e.g. MiniLM, 2 generic labels) under an adapter trained with another
        // number of labels: the adapter's head says how many (PEFT needs `num_labels=N` told;
        // here the file says it). Their names are not in a PEFT adapter: generic ones.
        // Each file's head, read once from its header (`None`: no head; a missing adapter file
        // is left to `check_adapter_dir` below, which names it).
        let head_key = format!("{}.weight", output_key(config.family));
        let model_head = head_rows(&files.weights, &head_key)?;
        let adapter_head = match adapter_dir.map(|dir| dir.join(ADAPTER_WEIGHTS)) {
            Some(weights) if weights.is_file() => {
                head_rows(&weights, &format!("base_model.model.{head_key}"))?
            }
            _ => None,
        };
        if let Some(dir) = adapter_dir
            && let Some(labels) = adapter_head
            && labels != config.num_labels()
            && labels >= 2
        {
            tracing::info!(
                labels,
                adapter = %dir.display(),
                "the adapter's head has {labels} labels; using generic names LABEL_0.."
            );
            let names: Vec<String> = (0..labels).map(|i| format!("LABEL_{i}")).collect();
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            config = config.with_labels(&names);
        }
        if config.num_labels() < 2 {
            return Err(InferError::TooFewLabels {
                path: files.config.clone(),
                found: config.num_labels(),
            });
        }
        let max_len = options.max_len.min(config.max_sequence_length());
        if max_len < options.max_len {
            tracing::warn!(
                requested = options.max_len,
                max_len,
                "max_len capped at the longest input the model's positions cover"
            );
        }
        if max_len < 2 {
            return Err(InferError::InvalidOption {
                name: "max_len",
                value: max_len,
                expected: "at least 2 ([CLS] and [SEP])",
            });
        }
        // One token more than we keep, so that "longer than max_len" is observable.
        let probe_len = (max_len + 1).min(MAX_SUPPORTED_LEN);
        let tokenizer = TextTokenizer::from_files(&files.tokenizer_files(), probe_len)?;
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

        if let Some(dir) = adapter_dir {
            check_adapter_dir(dir)?;
            if model_head.is_none() && adapter_head.is_none() {
                return Err(InferError::NoClassifierHead {
                    weights: files.weights.clone(),
                    adapter: Some(dir.join(ADAPTER_WEIGHTS)),
                });
            }
        } else if model_head.is_none() {
            return Err(InferError::NoClassifierHead {
                weights: files.weights.clone(),
                adapter: None,
            });
        }

        // The checkpoint's own head is of no use when the adapter brings one of another size.
        let mut model = if adapter_dir.is_some()
            && model_head.is_some_and(|rows| rows != config.num_labels())
        {
            imdb_lora_encoder::load_classifier_without_head::<B>(
                &files.weights,
                &config,
                device,
                HEAD_SEED,
            )?
        } else {
            imdb_lora_encoder::load_classifier_with_config::<B>(
                &files.weights,
                &config,
                device,
                HEAD_SEED,
            )?
        };
        if let Some(dir) = adapter_dir {
            let adapter = PeftAdapter::read(dir)?;
            model = adapter.apply(&model)?;
            // Folding B·A into the base weights makes inference cost what the plain model costs.
            model = model.merge_lora();
            tracing::info!(
                adapter = %dir.display(),
                r = adapter.lora.r,
                targets = ?adapter.lora.target_modules,
                "applied and merged LoRA adapter"
            );
        }
        // After the merge: the adapter's update is added to the f32 weights, then rounded.
        let model = model.with_precision(options.precision);
        let labels = Labels::from_config(&config);
        tracing::info!(
            max_len,
            precision = %options.precision,
            batch_size = options.batch_size,
            labels = ?labels.names,
            "predictor ready"
        );
        Ok(Self {
            model,
            config,
            tokenizer,
            probe_len,
            max_len,
            batch_size: options.batch_size,
            labels,
            device: device.clone(),
        })
    }

    /// The truncation length in use (after capping at the model's longest input).
    pub fn max_len(&self) -> usize {
        self.max_len
    }

    /// Texts per forward pass.
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// The names `label` takes, by model output index.
    pub fn label_names(&self) -> Vec<&str> {
        self.labels.names.iter().map(String::as_str).collect()
    }

    /// The model configuration.
    pub fn config(&self) -> &EncoderConfig {
        &self.config
    }

    /// The classifier (adapters, if any, merged).
    pub fn model(&self) -> &SequenceClassifier<B> {
        &self.model
    }

    /// Token ids as the model sees them: `[CLS] ... [SEP]`, at most `max_len`, no padding.
    ///
    /// A text longer than `max_len` keeps its head (`[CLS]`, the first `max_len - 2` tokens,
    /// `[SEP]`), and a warning with its index is logged. An empty text is `[CLS] [SEP]`.
    pub fn encode(&self, texts: &[&str]) -> Result<Vec<Vec<u32>>, InferError> {
        let mut all = self.tokenizer.encode_batch(texts)?;
        for (index, ids) in all.iter_mut().enumerate() {
            if ids.len() > self.max_len {
                // Single-sequence truncation drops tokens from the right, then adds [CLS]/[SEP]:
                // cutting the one-longer encoding is exactly the encoding at `max_len`.
                let sep = ids.last().copied().unwrap_or_default();
                ids.truncate(self.max_len - 1);
                ids.push(sep);
                tracing::warn!(
                    index,
                    max_len = self.max_len,
                    "text {index} is longer than max_len; truncated to its first {} tokens",
                    self.max_len
                );
            } else if ids.len() == self.max_len && self.probe_len == self.max_len {
                // At the tokenizer's own limit there is no longer encoding to compare with:
                // ask it whether it cut anything.
                let review = Review {
                    row: index,
                    text: texts[index].to_string(),
                    label: 0,
                };
                let (_, stats) = self
                    .tokenizer
                    .encode_reviews(&[review], &format!("text {index}"))?;
                if stats.truncated > 0 {
                    tracing::warn!(
                        index,
                        max_len = self.max_len,
                        "text {index} is longer than max_len; truncated to its first {} tokens",
                        self.max_len
                    );
                }
            }
        }
        Ok(all)
    }

    /// Labels every text, in input order.
    ///
    /// Texts are tokenised (see [`Predictor::encode`]), sorted by length so that each batch of
    /// `batch_size` pads little, run through the model, and returned in the order given.
    /// Empty strings are valid input (the model sees just `[CLS] [SEP]`); no texts gives no
    /// predictions.
    pub fn predict(&self, texts: &[&str]) -> Result<Vec<Prediction>, InferError> {
        let ids = self.encode(texts)?;
        let mut order: Vec<usize> = (0..texts.len()).collect();
        // Longest first: if a batch is too big for memory, the first one says so.
        order.sort_by_key(|&i| Reverse(ids[i].len()));
        let mut out: Vec<(usize, Prediction)> = Vec::with_capacity(texts.len());
        for chunk in order.chunks(self.batch_size) {
            let examples: Vec<Encoded> = chunk
                .iter()
                .map(|&i| Encoded {
                    row: i,
                    label: 0,
                    type_ids: vec![0; ids[i].len()],
                    ids: ids[i].clone(),
                })
                .collect();
            let probs = self.probabilities(&examples)?;
            for (&i, p) in chunk.iter().zip(probs) {
                out.push((i, self.prediction(texts[i], p)));
            }
        }
        out.sort_by_key(|(i, _)| *i);
        Ok(out.into_iter().map(|(_, p)| p).collect())
    }

    /// Softmax over the logits of each example, in f64.
    fn probabilities(&self, examples: &[Encoded]) -> Result<Vec<Vec<f64>>, InferError> {
        let refs: Vec<&Encoded> = examples.iter().collect();
        let batch = collate(&refs, self.tokenizer.pad_id());
        let shape = [batch.batch_size, batch.seq_len];
        let tensor = |values: Vec<i64>| {
            Tensor::<B, 2, Int>::from_data(TensorData::new(values, shape), &self.device)
        };
        let logits = self.model.forward(
            tensor(batch.input_ids),
            tensor(batch.attention_mask),
            Some(tensor(batch.token_type_ids)),
        )?;
        let values: Vec<f32> = logits
            .into_data()
            .convert::<f32>()
            .to_vec()
            .map_err(|e| InferError::Output(format!("{e:?}")))?;
        let n = self.labels.names.len();
        if values.len() != n * examples.len() {
            return Err(InferError::Output(format!(
                "expected {} logits, got {}",
                n * examples.len(),
                values.len()
            )));
        }
        Ok(values.chunks_exact(n).map(softmax).collect())
    }

    fn prediction(&self, text: &str, probs: Vec<f64>) -> Prediction {
        // The first of equal maxima, as `argmax` in PyTorch.
        let best = (0..probs.len()).fold(0, |b, i| if probs[i] > probs[b] { i } else { b });
        Prediction {
            text: text.to_string(),
            label: self.labels.names[best].clone(),
            probs: self.labels.names.iter().cloned().zip(probs).collect(),
            sentiment: self.labels.sentiment,
        }
    }
}

/// Numerically stable softmax, in f64.
fn softmax(logits: &[f32]) -> Vec<f64> {
    let m = logits
        .iter()
        .fold(f64::NEG_INFINITY, |m, &l| m.max(f64::from(l)));
    let exps: Vec<f64> = logits.iter().map(|&l| (f64::from(l) - m).exp()).collect();
    let sum: f64 = exps.iter().sum();
    exps.into_iter().map(|e| e / sum).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn softmax_is_stable_and_normalised() {
        let p = softmax(&[1000.0, 999.0]);
        assert!((p[0] + p[1] - 1.0).abs() < 1e-15 && p[0] > p[1]);
        assert_eq!(softmax(&[0.0, 0.0]), [0.5, 0.5]);
        let four = softmax(&[1.0, 2.0, 3.0, 4.0]);
        assert!((four.iter().sum::<f64>() - 1.0).abs() < 1e-15);
        assert!(four.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn label_roles_follow_names() {
        let generic = Labels::from_config(&EncoderConfig::default());
        assert_eq!(
            (generic.names.clone(), generic.sentiment),
            (vec!["neg".to_string(), "pos".to_string()], Some([0, 1]))
        );
        let named = EncoderConfig::default().with_labels(&["NEGATIVE", "POSITIVE"]);
        assert_eq!(Labels::from_config(&named).sentiment, Some([0, 1]));
        let reversed = EncoderConfig::default().with_labels(&["pos", "neg"]);
        assert_eq!(Labels::from_config(&reversed).sentiment, Some([1, 0]));
        let spam = EncoderConfig::default().with_labels(&["ham", "spam"]);
        assert_eq!(Labels::from_config(&spam).sentiment, None);
        let news =
            EncoderConfig::default().with_labels(&["World", "Sports", "Business", "Sci/Tech"]);
        let l = Labels::from_config(&news);
        assert_eq!((l.names.len(), l.sentiment), (4, None));
    }

    fn prediction(names: &[&str], probs: &[f64], sentiment: Option<[usize; 2]>) -> Prediction {
        Prediction {
            text: "a".into(),
            label: names[0].into(),
            probs: names
                .iter()
                .map(|n| n.to_string())
                .zip(probs.iter().copied())
                .collect(),
            sentiment,
        }
    }

    #[test]
    fn prediction_serialises_with_the_documented_fields_in_order() {
        let mut p = prediction(&["neg", "pos"], &[0.25, 0.75], Some([0, 1]));
        p.label = "pos".into();
        assert_eq!(
            serde_json::to_string(&p).unwrap(),
            r#"{"text":"a","neg_prob":0.25,"pos_prob":0.75,"label":"pos","score":0.75,"probs":{"neg":0.25,"pos":0.75}}"#
        );
        assert_eq!((p.neg_prob(), p.pos_prob()), (Some(0.25), Some(0.75)));
        let reversed = prediction(&["POSITIVE", "NEGATIVE"], &[0.75, 0.25], Some([1, 0]));
        assert_eq!(
            serde_json::to_string(&reversed).unwrap(),
            r#"{"text":"a","neg_prob":0.25,"pos_prob":0.75,"label":"POSITIVE","score":0.75,"probs":{"POSITIVE":0.75,"NEGATIVE":0.25}}"#
        );
        let news = prediction(&["World", "Sports", "Sci/Tech"], &[0.5, 0.25, 0.25], None);
        assert_eq!(
            serde_json::to_string(&news).unwrap(),
            r#"{"text":"a","label":"World","score":0.5,"probs":{"World":0.5,"Sports":0.25,"Sci/Tech":0.25}}"#
        );
        assert_eq!((news.neg_prob(), news.prob("Sports")), (None, Some(0.25)));
    }
}

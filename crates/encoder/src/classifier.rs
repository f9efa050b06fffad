//! [`SequenceClassifier`]: any family's encoder with its classification head, as
//! transformers' `AutoModelForSequenceClassification` builds it, and the one type training,
//! evaluation, prediction and the file formats work with.
//!
//! The encoder is an enum over the two layer shapes ([`Encoder::Bert`] for BERT, RoBERTa and
//! ELECTRA, [`Encoder::DistilBert`]); everything LoRA does goes through
//! [`TransformerLayer`], so no caller branches on the family.

use std::path::Path;

use burn::module::Module;
use burn::nn::{Dropout, Embedding};
use burn::tensor::backend::Backend;
use burn::tensor::{DType, Int, Tensor, TensorData};
use imdb_lora_kernels::int8::{Int8Linear, round_table};
use imdb_lora_kernels::{KernelBackend, to_dtype};
use imdb_lora_lora::{BaseLayer, LoraConfig, LoraLinear};

use crate::bert::BertModel;
use crate::config::{EncoderConfig, Family};
use crate::deberta_v2::DebertaV2Model;
use crate::distilbert::DistilBertModel;
use crate::error::EncoderError;
use crate::files;
use crate::heads::Head;
use crate::layers::{TransformerLayer, dropout, layers_precision, linear_in};
use crate::modernbert::ModernBertModel;
use crate::precision::Precision;
use crate::targets::{DEFAULT_MODULES_TO_SAVE, check_targets, layer_path, selects};
use crate::weights::{MappedFile, Weights, frozen};

/// The encoder of a family.
// One encoder per model, built once and moved rarely: the size difference between the
// variants (BERT's pooler and embedding options) costs nothing worth a box.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum Encoder<B: Backend> {
    /// BERT, RoBERTa, XLM-R, CamemBERT, ELECTRA.
    Bert(BertModel<B>),
    /// DistilBERT.
    DistilBert(DistilBertModel<B>),
    /// DeBERTa-v2 and -v3.
    DebertaV2(DebertaV2Model<B>),
    /// ModernBERT.
    ModernBert(ModernBertModel<B>),
}

/// Applies `f` to every projection of `layers`, with the layer's index.
fn map_layers<B: Backend, L: TransformerLayer<B>, E>(
    layers: Vec<L>,
    f: &mut impl FnMut(usize, &'static str, LoraLinear<B>) -> Result<LoraLinear<B>, E>,
) -> Result<Vec<L>, E> {
    layers
        .into_iter()
        .enumerate()
        .map(|(i, layer)| layer.map_projections(|name, l| f(i, name, l)))
        .collect()
}

fn layer_projections<B: Backend, L: TransformerLayer<B>>(
    layers: &[L],
) -> Vec<(usize, &'static str, &LoraLinear<B>)> {
    layers
        .iter()
        .enumerate()
        .flat_map(|(i, l)| l.projections().into_iter().map(move |(n, p)| (i, n, p)))
        .collect()
}

impl<B: Backend> Encoder<B> {
    /// A randomly initialised encoder (frozen, like a loaded one).
    pub fn init(config: &EncoderConfig, device: &B::Device) -> Self {
        match config.family {
            Family::DistilBert => Self::DistilBert(DistilBertModel::init(config, device)),
            Family::DebertaV2 => Self::DebertaV2(DebertaV2Model::init(config, device)),
            Family::ModernBert => Self::ModernBert(ModernBertModel::init(config, device)),
            Family::Bert | Family::Roberta | Family::Electra => {
                Self::Bert(BertModel::init(config, device))
            }
        }
    }

    /// From weights whose prefix points at the encoder.
    pub fn load(
        w: &Weights,
        config: &EncoderConfig,
        device: &B::Device,
    ) -> Result<Self, EncoderError> {
        Ok(match config.family {
            Family::DistilBert => Self::DistilBert(DistilBertModel::load(w, config, device)?),
            Family::DebertaV2 => Self::DebertaV2(DebertaV2Model::load(w, config, device)?),
            Family::ModernBert => Self::ModernBert(ModernBertModel::load(w, config, device)?),
            Family::Bert | Family::Roberta | Family::Electra => {
                Self::Bert(BertModel::load(w, config, device)?)
            }
        })
    }

    /// What the head reads: BERT's pooler output, ModernBERT's configured pooling, else the
    /// first token's final state.
    ///
    /// # Shapes
    /// - input_ids, attention_mask, token_type_ids: `[batch, seq]`
    /// - output: `[batch, hidden]`
    pub fn pooled(
        &self,
        input_ids: Tensor<B, 2, Int>,
        attention_mask: Tensor<B, 2, Int>,
        token_type_ids: Option<Tensor<B, 2, Int>>,
    ) -> Result<Tensor<B, 2>, EncoderError>
    where
        B: KernelBackend,
    {
        match self {
            Self::Bert(m) => m.pooled(input_ids, attention_mask, token_type_ids),
            // No token types in DistilBERT: the ids a tokenizer made are ignored, as
            // transformers' DistilBERT does not take them.
            Self::DistilBert(m) => m.first_token(input_ids, attention_mask),
            Self::DebertaV2(m) => m.first_token(input_ids, attention_mask, token_type_ids),
            // No token types in ModernBERT either.
            Self::ModernBert(m) => m.pooled(input_ids, attention_mask),
        }
    }

    /// Number of layers.
    pub fn num_layers(&self) -> usize {
        match self {
            Self::Bert(m) => m.layers().len(),
            Self::DistilBert(m) => m.layers().len(),
            Self::DebertaV2(m) => m.layers().len(),
            Self::ModernBert(m) => m.layers().len(),
        }
    }

    /// Every projection LoRA may adapt: `(layer, name within the layer, projection)`.
    pub fn projections(&self) -> Vec<(usize, &'static str, &LoraLinear<B>)> {
        match self {
            Self::Bert(m) => layer_projections(m.layers()),
            Self::DistilBert(m) => layer_projections(m.layers()),
            Self::DebertaV2(m) => layer_projections(m.layers()),
            Self::ModernBert(m) => layer_projections(m.layers()),
        }
    }

    /// Applies `f` to every projection, in [`Self::projections`]' order.
    pub fn map_projections<E>(
        self,
        mut f: impl FnMut(usize, &'static str, LoraLinear<B>) -> Result<LoraLinear<B>, E>,
    ) -> Result<Self, E> {
        Ok(match self {
            Self::Bert(mut m) => {
                m.encoder.layer = map_layers(m.encoder.layer, &mut f)?;
                Self::Bert(m)
            }
            Self::DistilBert(mut m) => {
                m.transformer.layer = map_layers(m.transformer.layer, &mut f)?;
                Self::DistilBert(m)
            }
            Self::DebertaV2(mut m) => {
                m.encoder.layer = map_layers(m.encoder.layer, &mut f)?;
                Self::DebertaV2(m)
            }
            Self::ModernBert(mut m) => {
                m.layers = map_layers(m.layers, &mut f)?;
                Self::ModernBert(m)
            }
        })
    }

    fn map_all(self, f: impl Fn(LoraLinear<B>) -> LoraLinear<B>) -> Self {
        match self.map_projections(|_, _, l| Ok::<_, std::convert::Infallible>(f(l))) {
            Ok(encoder) => encoder,
            Err(never) => match never {},
        }
    }

    /// The precision the encoder computes in: its projections' dtype (see [`Precision`]).
    pub fn precision(&self) -> Precision {
        match self {
            Self::Bert(m) => layers_precision(m.layers()),
            Self::DistilBert(m) => layers_precision(m.layers()),
            Self::DebertaV2(m) => layers_precision(m.layers()),
            Self::ModernBert(m) => layers_precision(m.layers()),
        }
    }

    /// The encoder with its frozen projections (base layers only, and BERT's pooler) in
    /// `precision`'s dtype; embeddings, layer norms and LoRA adapters stay f32. Casting an
    /// f32 model to bf16 and back gives bf16-rounded weights: to save an f32 model after a
    /// bf16 run, load the base again (see [`SequenceClassifier::with_trained_from`]).
    pub fn with_precision(self, precision: Precision) -> Self {
        let dtype = precision.dtype();
        let encoder = match self {
            Self::Bert(mut m) => {
                m.pooler = m.pooler.map(|mut p| {
                    p.dense = linear_in(p.dense, dtype);
                    p
                });
                Self::Bert(m)
            }
            other => other,
        };
        encoder.map_all(|mut l| {
            l.base_layer = match l.base_layer {
                BaseLayer::Float(f) => BaseLayer::Float(linear_in(f, dtype)),
                int8 => int8,
            };
            l
        })
    }

    /// The encoder with every projection's base weights in int8 ([`Int8Linear`]): a merged
    /// adapter is folded into them and dropped, an unmerged one stays beside them (f32).
    /// The word-embedding table is rounded to a per-row int8 grid, so a saved int8 model
    /// stores it in int8 (a quarter of the file) and loads back the same values; it is still
    /// looked up in f32. Layer norms, position embeddings and BERT's pooler stay f32 (the
    /// pooler runs on one position per text). Refused on a bf16 encoder: quantise the f32
    /// weights. An encoder already in int8 is returned as it is.
    pub fn quantize_int8(self) -> Result<Self, EncoderError> {
        if self.is_int8() {
            // Already quantised (loaded from an int8 directory): nothing to do.
            return Ok(self);
        }
        if self.precision() != Precision::F32 {
            return Err(EncoderError::Input(
                "int8 quantisation starts from f32 weights; this encoder is bf16".into(),
            ));
        }
        let encoder = match self {
            Self::Bert(mut m) => {
                m.embeddings.word_embeddings = on_int8_grid(m.embeddings.word_embeddings)?;
                Self::Bert(m)
            }
            Self::DistilBert(mut m) => {
                m.embeddings.word_embeddings = on_int8_grid(m.embeddings.word_embeddings)?;
                Self::DistilBert(m)
            }
            Self::DebertaV2(mut m) => {
                m.embeddings.word_embeddings = on_int8_grid(m.embeddings.word_embeddings)?;
                Self::DebertaV2(m)
            }
            Self::ModernBert(mut m) => {
                m.embeddings.tok_embeddings = on_int8_grid(m.embeddings.tok_embeddings)?;
                Self::ModernBert(m)
            }
        };
        encoder.map_projections(|i, name, mut l| {
            let BaseLayer::Float(base) = &l.base_layer else {
                return Ok(l);
            };
            let int8 = Int8Linear::quantize(base).map_err(|source| EncoderError::Int8 {
                context: format!("layer {i}, {name}"),
                source,
            })?;
            l.base_layer = BaseLayer::Int8(int8);
            if l.is_merged() {
                l.lora = None;
            }
            Ok(l)
        })
    }

    /// Whether the projections hold int8 weights.
    pub fn is_int8(&self) -> bool {
        self.projections()
            .first()
            .is_some_and(|(_, _, p)| p.base_layer.int8().is_some())
    }
}

/// `table` rounded to its per-row int8 grid (`imdb_lora_kernels::int8::quantize_table`),
/// kept in f32.
fn on_int8_grid<B: Backend>(table: Embedding<B>) -> Result<Embedding<B>, EncoderError> {
    let [n, d] = table.weight.dims();
    let device = table.weight.device();
    let data = table.weight.val().into_data();
    // The old table goes before the new one is made: one copy of it at a time.
    drop(table);
    let mut values = data
        .convert::<f32>()
        .into_vec::<f32>()
        .map_err(|e| EncoderError::Input(format!("reading the word embeddings: {e:?}")))?;
    round_table(&mut values, d).map_err(|source| EncoderError::Int8 {
        context: "embeddings.word_embeddings".into(),
        source,
    })?;
    Ok(Embedding {
        weight: frozen(Tensor::from_data(TensorData::new(values, [n, d]), &device)),
    })
}

/// An encoder with a sequence-classification head (transformers'
/// `*ForSequenceClassification`).
#[derive(Module, Debug)]
pub struct SequenceClassifier<B: Backend> {
    /// `bert`, `roberta`, `electra` or `distilbert`.
    pub encoder: Encoder<B>,
    /// The head (`classifier`, `pre_classifier`).
    pub head: Head<B>,
    /// The head's dropout probability (`classifier_dropout`, DistilBERT's
    /// `seq_classif_dropout`).
    pub dropout: Dropout,
    /// The family (the checkpoint's key names).
    #[module(skip)]
    pub family: Family,
    /// The head modules trained in full (PEFT's `modules_to_save`).
    #[module(skip)]
    pub modules_to_save: Vec<String>,
}

impl<B: Backend> SequenceClassifier<B> {
    /// `encoder` with `head`, PEFT's default `modules_to_save`.
    pub fn new(encoder: Encoder<B>, head: Head<B>, config: &EncoderConfig) -> Self {
        Self {
            encoder,
            head,
            dropout: dropout(config.classifier_dropout_prob()),
            family: config.family,
            modules_to_save: DEFAULT_MODULES_TO_SAVE.map(String::from).to_vec(),
        }
    }

    /// A randomly initialised classifier (the head from `seed`).
    pub fn init(config: &EncoderConfig, device: &B::Device, seed: u64) -> Self {
        Self::new(
            Encoder::init(config, device),
            Head::fresh(config, device, seed),
            config,
        )
    }

    /// Logits over the labels.
    ///
    /// # Shapes
    /// - input_ids, attention_mask, token_type_ids: `[batch, seq]`
    /// - output: `[batch, num_labels]`
    pub fn forward(
        &self,
        input_ids: Tensor<B, 2, Int>,
        attention_mask: Tensor<B, 2, Int>,
        token_type_ids: Option<Tensor<B, 2, Int>>,
    ) -> Result<Tensor<B, 2>, EncoderError>
    where
        B: KernelBackend,
    {
        // The head is f32 whatever the encoder's precision: the logits and loss are f32.
        let pooled = to_dtype(
            self.encoder
                .pooled(input_ids, attention_mask, token_type_ids)?,
            DType::F32,
        );
        Ok(self.head.forward(pooled, self.dropout.prob))
    }

    /// Number of labels.
    pub fn num_labels(&self) -> usize {
        self.head.num_labels()
    }

    /// The device the model lives on.
    pub fn device(&self) -> B::Device {
        self.head.output().weight.device()
    }

    /// Every projection with its full module path (`roberta.encoder.layer.0.attention.self.query`).
    pub fn projection_paths(&self) -> Vec<(String, &LoraLinear<B>)> {
        self.encoder
            .projections()
            .into_iter()
            .map(|(i, name, p)| (format!("{}.{name}", layer_path(self.family, i)), p))
            .collect()
    }

    /// The classifier with fresh LoRA adapters on every projection `config` targets (PEFT's
    /// names, suffix rule, `all-linear`), and its head trained per `config.modules_to_save`
    /// (PEFT's default `classifier`, `score` when unset).
    ///
    /// An unknown target is refused rather than silently matching nothing.
    pub fn with_lora(self, config: &LoraConfig) -> Result<Self, EncoderError> {
        let mut model = self.map_targets(config, |linear| linear.with_adapter(config))?;
        model.modules_to_save = config
            .modules_to_save
            .clone()
            .unwrap_or_else(|| DEFAULT_MODULES_TO_SAVE.map(String::from).to_vec());
        model.head = model.head.with_trainable(&model.modules_to_save);
        let frozen: Vec<&str> = model
            .head
            .linears()
            .iter()
            .map(|(_, key, _)| *key)
            .filter(|k| !model.head.saved_keys(&model.modules_to_save).contains(k))
            .collect();
        let trained = model.head.saved_keys(&model.modules_to_save);
        tracing::info!(
            trained = ?trained,
            frozen = ?frozen,
            "classification head: trained in full and saved with the adapter (PEFT's modules_to_save)"
        );
        Ok(model)
    }

    /// Applies `f` to every projection that `config` targets, in the layers it adapts.
    pub fn map_targets(
        mut self,
        config: &LoraConfig,
        mut f: impl FnMut(LoraLinear<B>) -> Result<LoraLinear<B>, imdb_lora_lora::LoraError>,
    ) -> Result<Self, EncoderError> {
        config.validate().map_err(|source| EncoderError::Lora {
            context: "LoRA configuration".into(),
            source,
        })?;
        let paths: Vec<String> = self
            .projection_paths()
            .into_iter()
            .map(|(p, _)| p)
            .collect();
        let layer_names: Vec<&str> = self
            .encoder
            .projections()
            .into_iter()
            .filter(|(i, _, _)| *i == 0)
            .map(|(_, n, _)| n)
            .collect();
        let head_modules: Vec<&str> = self.head.linears().iter().map(|(_, k, _)| *k).collect();
        check_targets(
            self.family,
            &config.target_modules,
            &paths,
            &layer_names,
            &head_modules,
        )?;
        let family = self.family;
        self.encoder = self.encoder.map_projections(|i, name, linear| {
            let path = format!("{}.{name}", layer_path(family, i));
            if config.adapts_layer(i) && selects(&config.target_modules, &path) {
                f(linear).map_err(|source| EncoderError::Lora {
                    context: path,
                    source,
                })
            } else {
                Ok(linear)
            }
        })?;
        Ok(self)
    }

    /// Folds every adapter into its base weight (idempotent).
    pub fn merge_lora(mut self) -> Self {
        self.encoder = self.encoder.map_all(LoraLinear::merge);
        self
    }

    /// Takes merged adapters back out (idempotent).
    pub fn unmerge_lora(mut self) -> Self {
        self.encoder = self.encoder.map_all(LoraLinear::unmerge);
        self
    }

    /// The precision the encoder computes in.
    pub fn precision(&self) -> Precision {
        self.encoder.precision()
    }

    /// The classifier with int8 projections ([`Encoder::quantize_int8`]); the head stays f32.
    pub fn quantize_int8(mut self) -> Result<Self, EncoderError> {
        self.encoder = self.encoder.quantize_int8()?;
        Ok(self)
    }

    /// Whether the encoder's projections hold int8 weights.
    pub fn is_int8(&self) -> bool {
        self.encoder.is_int8()
    }

    /// The classifier with its encoder in `precision` ([`Encoder::with_precision`]); the
    /// head stays f32.
    pub fn with_precision(mut self, precision: Precision) -> Self {
        self.encoder = self.encoder.with_precision(precision);
        self
    }

    /// `self` (typically the base checkpoint loaded again in f32) carrying `trained`'s LoRA
    /// adapters and head: a bf16 run's result with full-precision base weights, for merging
    /// and saving. The two must have the same layers; adapters are taken unmerged as they are.
    pub fn with_trained_from(mut self, trained: &Self) -> Result<Self, EncoderError> {
        let (ours, theirs) = (self.encoder.num_layers(), trained.encoder.num_layers());
        if ours != theirs || self.family != trained.family {
            return Err(EncoderError::Input(format!(
                "cannot take adapters from a {:?} model of {theirs} layers into a {:?} model \
                 of {ours}",
                trained.family, self.family
            )));
        }
        let sources = trained.encoder.projections();
        let family = self.family;
        self.encoder = self.encoder.map_projections(|i, name, mut linear| {
            let from = sources
                .iter()
                .find(|(j, n, _)| *j == i && *n == name)
                .map(|(_, _, p)| *p);
            if from.is_some_and(|p| p.is_merged()) {
                return Err(EncoderError::Input(format!(
                    "{}.{name}: the adapter is merged into its base weight; unmerge it before \
                     taking it into another base",
                    layer_path(family, i)
                )));
            }
            linear.lora = from.and_then(|p| p.lora.clone());
            Ok(linear)
        })?;
        self.head = trained.head.clone();
        self.modules_to_save = trained.modules_to_save.clone();
        Ok(self)
    }

    /// Number of LoRA parameters in the encoder.
    pub fn num_lora_params(&self) -> usize {
        self.encoder
            .projections()
            .iter()
            .map(|(_, _, p)| p.num_trainable())
            .sum()
    }

    /// Parameters that training updates: LoRA factors plus the head modules trained in full.
    pub fn num_trainable_params(&self) -> usize {
        self.num_lora_params() + self.head.num_trainable_params(&self.modules_to_save)
    }
}

/// Keys a checkpoint may carry that a sequence classifier has no use for: pre-training
/// heads, poolers of families whose classifiers read the first token, and the non-persistent
/// buffers older exports include.
fn is_ignorable(key: &str, family: Family) -> bool {
    const PRETRAINING: [&str; 10] = [
        "cls.",
        "lm_head.",
        "generator",
        "discriminator_predictions.",
        "vocab_transform.",
        "vocab_layer_norm.",
        "vocab_projector.",
        "lm_predictions.",
        "mask_predictions.",
        "decoder.",
    ];
    PRETRAINING.iter().any(|p| key.starts_with(p))
        || key.ends_with("embeddings.position_ids")
        || key.ends_with("embeddings.token_type_ids")
        || (!matches!(family, Family::Bert | Family::DebertaV2) && key.contains("pooler."))
}

/// Where the encoder's keys start in a checkpoint: `""` (a bare model, e.g.
/// all-MiniLM-L6-v2) or the family's prefix (`bert.`, `roberta.`, … in
/// `*For*` classes, e.g. bert-base-uncased).
pub fn detect_prefix(w: &Weights, family: Family) -> Result<String, EncoderError> {
    let prefixed = format!("{}.", family.base_model_prefix());
    ["".to_string(), prefixed.clone()]
        .into_iter()
        .find(|p| w.contains_absolute(&format!("{p}{}", family.word_embeddings_key())))
        .ok_or_else(|| EncoderError::UnknownLayout {
            path: w.path().to_path_buf(),
            family: format!("{family:?}"),
            looked_for: format!(
                "{key}` and `{prefixed}{key}",
                key = family.word_embeddings_key()
            ),
        })
}

/// Loads a sequence classifier from a model directory (`config.json` + `model.safetensors`).
///
/// The head comes from the checkpoint when it has one; otherwise it is created as
/// transformers creates it, from `seed`, and the log says so. Tensors the model does not use
/// are reported in the log (pre-training heads are expected and ignored).
pub fn load_classifier<B: Backend>(
    dir: &Path,
    device: &B::Device,
    seed: u64,
) -> Result<(SequenceClassifier<B>, EncoderConfig), EncoderError> {
    let config = EncoderConfig::from_file(&dir.join(files::CONFIG_FILE))?;
    let model = load_classifier_with_config(&dir.join(files::WEIGHTS_FILE), &config, device, seed)?;
    Ok((model, config))
}

/// As [`load_classifier`], with the configuration given and the weights file named.
pub fn load_classifier_with_config<B: Backend>(
    weights_path: &Path,
    config: &EncoderConfig,
    device: &B::Device,
    seed: u64,
) -> Result<SequenceClassifier<B>, EncoderError> {
    load(weights_path, config, device, seed, true)
}

/// As [`load_classifier_with_config`], but a head in the checkpoint is left out and a fresh
/// one of `config.num_labels()` outputs made: for an adapter whose own head (of another
/// number of labels) replaces it.
pub fn load_classifier_without_head<B: Backend>(
    weights_path: &Path,
    config: &EncoderConfig,
    device: &B::Device,
    seed: u64,
) -> Result<SequenceClassifier<B>, EncoderError> {
    load(weights_path, config, device, seed, false)
}

fn load<B: Backend>(
    weights_path: &Path,
    config: &EncoderConfig,
    device: &B::Device,
    seed: u64,
    use_head: bool,
) -> Result<SequenceClassifier<B>, EncoderError> {
    let _span = tracing::info_span!("load_encoder", file = %weights_path.display()).entered();
    let file = MappedFile::open(weights_path)?;
    let mut w = file.tensors()?;
    let prefix = detect_prefix(&w, config.family)?;
    w.set_prefix(&prefix);
    let encoder = Encoder::load(&w, config, device)?;
    w.set_prefix("");
    let head = if use_head && Head::<B>::in_checkpoint(&w, config.family) {
        Head::load(&w, config, device)?
    } else {
        tracing::info!(
            num_labels = config.num_labels(),
            seed,
            "no classification head in checkpoint; initialising one with normal(0, {}) \
             (a PEFT adapter's saved head replaces it when applied)",
            config.initializer_range
        );
        Head::fresh_around_checkpoint(&w, config, device, seed)?
    };
    let head_keys: Vec<&str> = head.linears().iter().map(|(_, k, _)| *k).collect();
    let unused: Vec<String> = w
        .unused_keys()
        .into_iter()
        .filter(|k| {
            !is_ignorable(k, config.family)
                && (use_head || !head_keys.iter().any(|h| k.starts_with(&format!("{h}."))))
        })
        .collect();
    if !unused.is_empty() {
        tracing::warn!(?unused, "checkpoint tensors not used by the model");
    }
    tracing::info!(
        family = ?config.family,
        prefix,
        layers = config.num_hidden_layers,
        hidden = config.hidden_size,
        "loaded checkpoint"
    );
    Ok(SequenceClassifier::new(encoder, head, config))
}

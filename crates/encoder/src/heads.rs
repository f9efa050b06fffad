//! The sequence-classification heads of transformers' `*ForSequenceClassification` classes,
//! over what the encoder hands them ([`crate::bert::BertModel::pooled`]: BERT's pooler
//! output, else the first token's state):
//!
//! | family | head | keys |
//! | --- | --- | --- |
//! | BERT | dropout → `classifier` | `classifier.*` |
//! | RoBERTa, XLM-R, CamemBERT | dropout → dense → tanh → dropout → out_proj | `classifier.dense.*`, `classifier.out_proj.*` |
//! | ELECTRA | dropout → dense → GELU → dropout → out_proj | as RoBERTa |
//! | DistilBERT | pre_classifier → ReLU → dropout → classifier | `pre_classifier.*`, `classifier.*` |
//! | DeBERTa-v2 | (`ContextPooler`: dropout → dense → GELU) → dropout → classifier | `pooler.dense.*`, `classifier.*` |
//! | ModernBERT | dense → GELU → norm → dropout → classifier (over `[CLS]` or the mean) | `head.dense.*`, `head.norm.*`, `classifier.*` |
//!
//! DeBERTa's pooler and ModernBERT's `head` sit outside `classifier`, so PEFT's default
//! `modules_to_save` leaves them frozen, as it does here: a base checkpoint without them
//! (deberta-v3-base, ModernBERT-base) gets a freshly drawn, frozen pooler, and the log says
//! so (add `pooler` or `head` to `modules_to_save` to train and save it). ModernBERT's head
//! norm is never trained here (PEFT would train it with `head` in `modules_to_save`).
//!
//! Every head is f32 whatever the encoder's precision, and trainable per module: PEFT trains
//! and saves in full the modules whose names end with a `modules_to_save` entry
//! ([`Head::linears`] names each linear's module).

use burn::module::Module;
use burn::nn::{Dropout, LayerNorm, Linear};
use burn::tensor::Tensor;
use burn::tensor::activation::relu;
use burn::tensor::backend::Backend;
use imdb_lora_kernels::KernelBackend;

use crate::config::{EncoderConfig, Family, HiddenAct};
use crate::error::EncoderError;
use crate::layers::{activate, dropout, fresh_norm, norm, seeded_linear, trainable};
use crate::weights::Weights;

/// BERT's head: one linear layer over the pooler output.
#[derive(Module, Debug)]
pub struct BertHead<B: Backend> {
    /// `classifier`, `hidden → num_labels`.
    pub classifier: Linear<B>,
}

/// The activation between RoBERTa's or ELECTRA's two head layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadActivation {
    /// RoBERTa's.
    Tanh,
    /// ELECTRA's (exact GELU).
    Gelu,
}

/// `RobertaClassificationHead` / `ElectraClassificationHead` (transformers' module
/// `classifier`).
#[derive(Module, Debug)]
pub struct ClassificationHead<B: Backend> {
    /// `classifier.dense`, `hidden → hidden`.
    pub dense: Linear<B>,
    /// `classifier.out_proj`, `hidden → num_labels`.
    pub out_proj: Linear<B>,
    /// Tanh (RoBERTa) or GELU (ELECTRA).
    #[module(skip)]
    pub activation: HeadActivation,
}

/// DistilBERT's head.
#[derive(Module, Debug)]
pub struct DistilBertHead<B: Backend> {
    /// `pre_classifier`, `dim → dim`.
    pub pre_classifier: Linear<B>,
    /// `classifier`, `dim → num_labels`.
    pub classifier: Linear<B>,
}

/// DeBERTa's `ContextPooler` and classifier.
#[derive(Module, Debug)]
pub struct PooledHead<B: Backend> {
    /// `pooler.dense`, `hidden → hidden`.
    pub pooler: Linear<B>,
    /// `classifier`, `hidden → num_labels`.
    pub classifier: Linear<B>,
    /// `pooler_hidden_act`.
    #[module(skip)]
    pub activation: HiddenAct,
    /// `pooler_dropout`, before the pooler's dense layer.
    pub pooler_dropout: Dropout,
}

/// ModernBERT's prediction head and classifier.
#[derive(Module, Debug)]
pub struct ModernHead<B: Backend> {
    /// `head.dense`, `hidden → hidden` (a bias with `classifier_bias`).
    pub dense: Linear<B>,
    /// `head.norm` (a shift with `norm_bias`).
    pub norm: LayerNorm<B>,
    /// `classifier`, `hidden → num_labels`.
    pub classifier: Linear<B>,
    /// `classifier_activation`.
    #[module(skip)]
    pub activation: HiddenAct,
    /// `norm_eps`.
    #[module(skip)]
    pub norm_eps: f64,
}

/// The head of a family.
// One head per model, built once: ModernBERT's norm makes its variant larger, not worth a box.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum Head<B: Backend> {
    /// BERT.
    Bert(BertHead<B>),
    /// RoBERTa, XLM-R, CamemBERT, ELECTRA.
    Dense(ClassificationHead<B>),
    /// DistilBERT.
    DistilBert(DistilBertHead<B>),
    /// DeBERTa-v2.
    Pooled(PooledHead<B>),
    /// ModernBERT.
    Modern(ModernHead<B>),
}

/// The checkpoint key of a family's final head layer (`hidden → num_labels`): where a
/// checkpoint says how many labels its head has.
pub fn output_key(family: Family) -> &'static str {
    match family {
        Family::Roberta | Family::Electra => "classifier.out_proj",
        _ => "classifier",
    }
}

/// Which of a family's head linears are new (not found in the checkpoint) and get drawn.
fn head_layout(family: Family) -> &'static [&'static str] {
    match family {
        Family::Bert => &["classifier"],
        Family::Roberta | Family::Electra => &["classifier.dense", "classifier.out_proj"],
        Family::DistilBert => &["pre_classifier", "classifier"],
        Family::DebertaV2 => &["pooler.dense", "classifier"],
        Family::ModernBert => &["head.dense", "classifier"],
    }
}

impl<B: Backend> Head<B> {
    /// The family's head as transformers initialises an untrained one (normal(0,
    /// initializer_range) weights, zero biases), drawn on the host from `seed` (the n-th
    /// linear from `seed + n`), so it is the same on every backend.
    pub fn fresh(config: &EncoderConfig, device: &B::Device, seed: u64) -> Self {
        let (h, n, std) = (
            config.hidden_size,
            config.num_labels(),
            config.initializer_range,
        );
        match config.family {
            Family::Bert => Self::Bert(BertHead {
                classifier: seeded_linear(h, n, std, seed, device),
            }),
            Family::Roberta | Family::Electra => Self::Dense(ClassificationHead {
                dense: seeded_linear(h, h, std, seed, device),
                out_proj: seeded_linear(h, n, std, seed.wrapping_add(1), device),
                activation: activation_of(config.family),
            }),
            Family::DistilBert => Self::DistilBert(DistilBertHead {
                pre_classifier: seeded_linear(h, h, std, seed, device),
                classifier: seeded_linear(h, n, std, seed.wrapping_add(1), device),
            }),
            Family::DebertaV2 => {
                let d = crate::deberta_v2::params(config);
                Self::Pooled(PooledHead {
                    pooler: seeded_linear(h, h, std, seed, device),
                    classifier: seeded_linear(h, n, std, seed.wrapping_add(1), device),
                    activation: d.pooler_hidden_act,
                    pooler_dropout: dropout(d.pooler_dropout),
                })
            }
            Family::ModernBert => {
                let m = crate::modernbert::params(config);
                let mut dense = seeded_linear(h, h, std, seed, device);
                if !m.classifier_bias {
                    dense.bias = None;
                }
                let mut norm = fresh_norm(h, config.layer_norm_eps, device);
                if !m.norm_bias {
                    norm.beta = None;
                }
                Self::Modern(ModernHead {
                    dense,
                    norm,
                    classifier: seeded_linear(h, n, std, seed.wrapping_add(1), device),
                    activation: m.classifier_activation,
                    norm_eps: config.layer_norm_eps,
                })
            }
        }
        .with_trainable(&[])
    }

    /// A fresh head ([`Self::fresh`]) whose backbone-side part comes from the checkpoint when
    /// it has one: DeBERTa's `pooler.dense`, ModernBERT's `head.dense` and `head.norm` (a
    /// masked-LM checkpoint's head has the same keys), as transformers loads them into a
    /// new classifier. Logs what it drew.
    pub fn fresh_around_checkpoint(
        w: &Weights,
        config: &EncoderConfig,
        device: &B::Device,
        seed: u64,
    ) -> Result<Self, EncoderError> {
        let head = Self::fresh(config, device, seed);
        let h = config.hidden_size;
        let head = match head {
            Self::Pooled(mut p) if w.contains("pooler.dense.weight") => {
                p.pooler = w.linear("pooler.dense", h, h, device)?;
                Self::Pooled(p)
            }
            Self::Modern(mut m) if w.contains("head.dense.weight") => {
                let bias = m.dense.bias.is_some();
                m.dense = w.linear_with("head.dense", h, h, bias, device)?;
                let shift = m.norm.beta.is_some();
                m.norm = w.layer_norm_with("head.norm", h, config.layer_norm_eps, shift, device)?;
                Self::Modern(m)
            }
            head @ (Self::Pooled(_) | Self::Modern(_)) => {
                tracing::warn!(
                    family = ?config.family,
                    "the checkpoint has no pooler / head.dense: drawn fresh from normal(0, {}) and \
                     frozen unless `modules_to_save` names it (PEFT's rule); an adapter trained \
                     this way reproduces only on this same draw",
                    config.initializer_range
                );
                head
            }
            other => other,
        };
        Ok(head.with_trainable(&[]))
    }

    /// Whether the checkpoint (keys relative to its root) holds this family's head.
    pub fn in_checkpoint(w: &Weights, family: Family) -> bool {
        head_layout(family)
            .iter()
            .all(|name| w.contains(&format!("{name}.weight")))
    }

    /// The head stored in the checkpoint (keys relative to its root: `classifier.*`, …).
    pub fn load(
        w: &Weights,
        config: &EncoderConfig,
        device: &B::Device,
    ) -> Result<Self, EncoderError> {
        let (h, n) = (config.hidden_size, config.num_labels());
        Ok(match config.family {
            Family::Bert => Self::Bert(BertHead {
                classifier: w.linear("classifier", h, n, device)?,
            }),
            Family::Roberta | Family::Electra => Self::Dense(ClassificationHead {
                dense: w.linear("classifier.dense", h, h, device)?,
                out_proj: w.linear("classifier.out_proj", h, n, device)?,
                activation: activation_of(config.family),
            }),
            Family::DistilBert => Self::DistilBert(DistilBertHead {
                pre_classifier: w.linear("pre_classifier", h, h, device)?,
                classifier: w.linear("classifier", h, n, device)?,
            }),
            Family::DebertaV2 | Family::ModernBert => {
                let fresh = Self::fresh_around_checkpoint(w, config, device, 0)?;
                return Ok(fresh
                    .map_linear("classifier", |_| w.linear("classifier", h, n, device))?
                    .with_trainable(&[]));
            }
        }
        .with_trainable(&[]))
    }

    /// Logits from the encoder's output (pooler output or first token).
    ///
    /// # Shapes
    /// - pooled: `[batch, hidden]`
    /// - output: `[batch, num_labels]`
    pub fn forward(&self, pooled: Tensor<B, 2>, dropout: f64) -> Tensor<B, 2>
    where
        B: KernelBackend,
    {
        match self {
            Self::Bert(head) => head.classifier.forward(B::kernel_dropout(pooled, dropout)),
            Self::Dense(head) => {
                let x = head.dense.forward(B::kernel_dropout(pooled, dropout));
                let x = match head.activation {
                    HeadActivation::Tanh => x.tanh(),
                    HeadActivation::Gelu => B::kernel_gelu(x),
                };
                head.out_proj.forward(B::kernel_dropout(x, dropout))
            }
            Self::DistilBert(head) => {
                let x = relu(head.pre_classifier.forward(pooled));
                head.classifier.forward(B::kernel_dropout(x, dropout))
            }
            Self::Pooled(head) => {
                let x = B::kernel_dropout(pooled, head.pooler_dropout.prob);
                let x = activate(head.activation, head.pooler.forward(x));
                head.classifier.forward(B::kernel_dropout(x, dropout))
            }
            Self::Modern(head) => {
                let x = activate(head.activation, head.dense.forward(pooled));
                let x = norm(&head.norm, head.norm_eps, x);
                head.classifier.forward(B::kernel_dropout(x, dropout))
            }
        }
    }

    /// The head's linear layers: `(module, key)` — the module PEFT's `modules_to_save`
    /// matches (`classifier` holds both of RoBERTa's layers) and the layer's checkpoint key —
    /// with the layer.
    pub fn linears(&self) -> Vec<(&'static str, &'static str, &Linear<B>)> {
        match self {
            Self::Bert(h) => vec![("classifier", "classifier", &h.classifier)],
            Self::Dense(h) => vec![
                ("classifier", "classifier.dense", &h.dense),
                ("classifier", "classifier.out_proj", &h.out_proj),
            ],
            Self::DistilBert(h) => vec![
                ("pre_classifier", "pre_classifier", &h.pre_classifier),
                ("classifier", "classifier", &h.classifier),
            ],
            Self::Pooled(h) => vec![
                ("pooler", "pooler.dense", &h.pooler),
                ("classifier", "classifier", &h.classifier),
            ],
            Self::Modern(h) => vec![
                ("head", "head.dense", &h.dense),
                ("classifier", "classifier", &h.classifier),
            ],
        }
    }

    /// The head's layer norms under their checkpoint keys (ModernBERT's `head.norm`).
    pub fn norms(&self) -> Vec<(String, &LayerNorm<B>)> {
        match self {
            Self::Modern(h) => vec![("head.norm".to_string(), &h.norm)],
            _ => Vec::new(),
        }
    }

    /// Replaces the linear layer with checkpoint key `key` by `f` of it.
    pub fn map_linear(
        mut self,
        key: &str,
        f: impl FnOnce(Linear<B>) -> Result<Linear<B>, EncoderError>,
    ) -> Result<Self, EncoderError> {
        let slot = match (&mut self, key) {
            (Self::Bert(h), "classifier") => &mut h.classifier,
            (Self::Dense(h), "classifier.dense") => &mut h.dense,
            (Self::Dense(h), "classifier.out_proj") => &mut h.out_proj,
            (Self::DistilBert(h), "pre_classifier") => &mut h.pre_classifier,
            (Self::DistilBert(h), "classifier") => &mut h.classifier,
            (Self::Pooled(h), "pooler.dense") => &mut h.pooler,
            (Self::Pooled(h), "classifier") => &mut h.classifier,
            (Self::Modern(h), "head.dense") => &mut h.dense,
            (Self::Modern(h), "classifier") => &mut h.classifier,
            _ => {
                return Err(EncoderError::Input(format!(
                    "the head has no linear layer `{key}`"
                )));
            }
        };
        *slot = f(slot.clone())?;
        Ok(self)
    }

    /// Whether each of [`Self::linears`] trains: those whose module ends with one of
    /// `modules_to_save` (PEFT's suffix rule), and the final layer always, the layer a fresh
    /// classification head must learn.
    fn trains(&self, modules_to_save: &[String]) -> Vec<bool> {
        let linears = self.linears();
        let last = linears.len() - 1;
        linears
            .iter()
            .enumerate()
            .map(|(i, (module, _, _))| {
                i == last || modules_to_save.iter().any(|m| module.ends_with(m.as_str()))
            })
            .collect()
    }

    /// The head with [`Self::trains`]' layers taking gradients, the others frozen.
    pub fn with_trainable(self, modules_to_save: &[String]) -> Self {
        let trains = self.trains(modules_to_save);
        let set = |l: Linear<B>, i: usize| trainable(l, trains[i]);
        match self {
            Self::Bert(h) => Self::Bert(BertHead {
                classifier: set(h.classifier, 0),
            }),
            Self::Dense(h) => Self::Dense(ClassificationHead {
                dense: set(h.dense, 0),
                out_proj: set(h.out_proj, 1),
                activation: h.activation,
            }),
            Self::DistilBert(h) => Self::DistilBert(DistilBertHead {
                pre_classifier: set(h.pre_classifier, 0),
                classifier: set(h.classifier, 1),
            }),
            Self::Pooled(h) => Self::Pooled(PooledHead {
                pooler: set(h.pooler, 0),
                classifier: set(h.classifier, 1),
                ..h
            }),
            Self::Modern(h) => Self::Modern(ModernHead {
                dense: set(h.dense, 0),
                classifier: set(h.classifier, 1),
                ..h
            }),
        }
    }

    /// The checkpoint keys of the layers `modules_to_save` trains (and saves).
    pub fn saved_keys(&self, modules_to_save: &[String]) -> Vec<&'static str> {
        self.linears()
            .iter()
            .zip(self.trains(modules_to_save))
            .filter(|(_, t)| *t)
            .map(|((_, key, _), _)| *key)
            .collect()
    }

    /// The final linear layer (`hidden → num_labels`).
    pub fn output(&self) -> &Linear<B> {
        match self {
            Self::Bert(h) => &h.classifier,
            Self::Dense(h) => &h.out_proj,
            Self::DistilBert(h) => &h.classifier,
            Self::Pooled(h) => &h.classifier,
            Self::Modern(h) => &h.classifier,
        }
    }

    /// Number of labels.
    pub fn num_labels(&self) -> usize {
        self.output().weight.dims()[1]
    }

    /// Parameters `modules_to_save` trains.
    pub fn num_trainable_params(&self, modules_to_save: &[String]) -> usize {
        self.linears()
            .iter()
            .zip(self.trains(modules_to_save))
            .filter(|(_, t)| *t)
            .map(|((_, _, l), _)| l.num_params())
            .sum()
    }
}

fn activation_of(family: Family) -> HeadActivation {
    match family {
        Family::Electra => HeadActivation::Gelu,
        _ => HeadActivation::Tanh,
    }
}

//! Mixed precision: the dtype the encoder computes in ([`Precision`]) and the dtype a
//! checkpoint's weights are stored in ([`WeightDtype`]).
//!
//! bf16 here is mixed precision as `torch.autocast` practises it, not a cast of everything:
//! the frozen projections (the encoder's linears and the pooler) hold bf16 weights and the
//! activations between them are bf16, while everything that accumulates or is trained stays
//! f32: the embedding tables and their sum (a lookup, not a product, and autocast keeps it
//! f32 too), every layer norm (computed in f32 with f32 parameters, its output rounded
//! back), the attention scores from the scaling on (mask, softmax and dropout in f32, the
//! probabilities rounded for the product with the values), the LoRA factors and classifier
//! head (f32 master weights, rounded to bf16 for their products as autocast does, so their
//! gradients come back f32 through the cast), the logits, the loss and the optimizer.
//!
//! The dtype is carried by the weights themselves, so no flag travels with the model: the
//! encoder computes in its projections' dtype ([`crate::Encoder::precision`]), and
//! [`crate::KernelOps`] rounds a LoRA factor to its input's dtype on the way into a product.

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use burn::tensor::DType;
use safetensors::Dtype;

use crate::config::MODEL_TYPES;
use crate::error::EncoderError;
use crate::weights::{MappedFile, Weights};

/// The dtype the encoder's frozen projections and activations are computed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precision {
    /// Everything in f32 (the default).
    #[default]
    F32,
    /// Mixed precision: frozen projections and activations in bf16, see the module docs.
    Bf16,
}

impl Precision {
    /// Burn's dtype for the projections and activations.
    pub fn dtype(self) -> DType {
        match self {
            Self::F32 => DType::F32,
            Self::Bf16 => DType::BF16,
        }
    }

    /// The precision a tensor of `dtype` computes in (`None` for a dtype we never compute in).
    pub fn of_dtype(dtype: DType) -> Option<Self> {
        match dtype {
            DType::F32 => Some(Self::F32),
            DType::BF16 => Some(Self::Bf16),
            _ => None,
        }
    }

    /// The name on the command line and in `metrics.json` (`f32`, `bf16`).
    pub fn name(self) -> &'static str {
        match self {
            Self::F32 => "f32",
            Self::Bf16 => "bf16",
        }
    }
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Precision {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "f32" | "fp32" | "float32" => Ok(Self::F32),
            "bf16" | "bfloat16" => Ok(Self::Bf16),
            other => Err(format!("unknown precision {other:?}; expected f32 or bf16")),
        }
    }
}

/// How an inference model's projections are quantised ([`crate::SequenceClassifier::quantize_int8`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quantization {
    /// Int8 weights per output channel, activations per row at run time (dynamic).
    Int8,
}

impl Quantization {
    /// The name on the command line (`int8`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Int8 => "int8",
        }
    }
}

impl fmt::Display for Quantization {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Quantization {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "int8" | "i8" => Ok(Self::Int8),
            other => Err(format!("unknown quantisation {other:?}; expected int8")),
        }
    }
}

/// A floating-point storage type of checkpoint files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WeightDtype {
    /// 32-bit IEEE float.
    #[default]
    F32,
    /// bfloat16.
    Bf16,
    /// IEEE half precision.
    F16,
}

impl WeightDtype {
    /// The safetensors dtype.
    pub fn safetensors(self) -> Dtype {
        match self {
            Self::F32 => Dtype::F32,
            Self::Bf16 => Dtype::BF16,
            Self::F16 => Dtype::F16,
        }
    }

    /// From a safetensors dtype (`None` for a non-float or unsupported one).
    pub fn from_safetensors(dtype: Dtype) -> Option<Self> {
        match dtype {
            Dtype::F32 => Some(Self::F32),
            Dtype::BF16 => Some(Self::Bf16),
            Dtype::F16 => Some(Self::F16),
            _ => None,
        }
    }

    /// PyTorch's name, as transformers records it in `config.json` (`dtype`).
    pub fn torch_name(self) -> &'static str {
        match self {
            Self::F32 => "float32",
            Self::Bf16 => "bfloat16",
            Self::F16 => "float16",
        }
    }

    /// The name on the command line (`f32`, `bf16`, `f16`).
    pub fn name(self) -> &'static str {
        match self {
            Self::F32 => "f32",
            Self::Bf16 => "bf16",
            Self::F16 => "f16",
        }
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            Self::F32 => 4,
            Self::Bf16 | Self::F16 => 2,
        }
    }

    /// `values` as little-endian bytes of this dtype (rounded to nearest even when narrower).
    pub fn encode(self, values: &[f32]) -> Vec<u8> {
        match self {
            Self::F32 => values.iter().flat_map(|v| v.to_le_bytes()).collect(),
            Self::Bf16 => values
                .iter()
                .flat_map(|v| burn::tensor::bf16::from_f32(*v).to_le_bytes())
                .collect(),
            Self::F16 => values
                .iter()
                .flat_map(|v| burn::tensor::f16::from_f32(*v).to_le_bytes())
                .collect(),
        }
    }

    /// The dtype a checkpoint stores its weights in: that of its word-embedding table (every
    /// encoder checkpoint has one, bare or prefixed; transformers saves a model in one
    /// dtype).
    pub fn of_checkpoint(path: &Path) -> Result<Self, EncoderError> {
        let file = MappedFile::open(path)?;
        let w = file.tensors()?;
        Self::of_weights(&w)
    }

    /// [`Self::of_checkpoint`] of already opened weights.
    pub fn of_weights(w: &Weights) -> Result<Self, EncoderError> {
        // Every family's table name (ModernBERT's is `tok_embeddings`).
        let tables: Vec<&str> = MODEL_TYPES
            .iter()
            .map(|(_, family, _)| family.word_embeddings_key())
            .collect();
        let key = w
            .keys()
            .into_iter()
            .filter(|k| tables.iter().any(|t| k.ends_with(t)))
            .min_by_key(String::len)
            .ok_or_else(|| EncoderError::MissingTensor {
                path: w.path().to_path_buf(),
                key: tables.join("` or `"),
            })?;
        let dtype = w.dtype(&key).ok_or_else(|| EncoderError::MissingTensor {
            path: w.path().to_path_buf(),
            key: key.clone(),
        })?;
        Self::from_safetensors(dtype).ok_or_else(|| EncoderError::UnsupportedDtype {
            path: w.path().to_path_buf(),
            key,
            dtype: format!("{dtype:?}"),
        })
    }
}

impl fmt::Display for WeightDtype {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for WeightDtype {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "f32" | "fp32" | "float32" => Ok(Self::F32),
            "bf16" | "bfloat16" => Ok(Self::Bf16),
            "f16" | "fp16" | "float16" => Ok(Self::F16),
            other => Err(format!(
                "unknown weight dtype {other:?}; expected f32, bf16 or f16"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back() {
        for p in [Precision::F32, Precision::Bf16] {
            assert_eq!(p.name().parse::<Precision>(), Ok(p));
            assert_eq!(Precision::of_dtype(p.dtype()), Some(p));
        }
        for d in [WeightDtype::F32, WeightDtype::Bf16, WeightDtype::F16] {
            assert_eq!(d.name().parse::<WeightDtype>(), Ok(d));
            assert_eq!(d.torch_name().parse::<WeightDtype>(), Ok(d));
            assert_eq!(WeightDtype::from_safetensors(d.safetensors()), Some(d));
        }
        assert!("f16".parse::<Precision>().is_err());
        assert!("int8".parse::<WeightDtype>().is_err());
    }

    #[test]
    fn encode_rounds_to_nearest() {
        // 1 + 2^-8 is halfway between two bf16 values and rounds to even (1.0); 1 + 3·2^-9
        // rounds up to 1 + 2^-7.
        let bytes = WeightDtype::Bf16.encode(&[1.0 + 2f32.powi(-8), 1.0 + 3.0 * 2f32.powi(-9)]);
        let back: Vec<f32> = bytes
            .chunks_exact(2)
            .map(|c| burn::tensor::bf16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect();
        assert_eq!(back, [1.0, 1.0 + 2f32.powi(-7)]);
        assert_eq!(WeightDtype::F16.encode(&[0.5]).len(), 2);
        assert_eq!(WeightDtype::F32.encode(&[0.5]), 0.5f32.to_le_bytes());
    }
}

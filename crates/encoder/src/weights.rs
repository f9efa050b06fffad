//! Reading Hugging Face safetensors checkpoints (memory-mapped) into Burn tensors.
//!
//! Handles both BERT key conventions: bare `BertModel` keys (`embeddings.*`, as in
//! all-MiniLM-L6-v2) and `bert.`-prefixed keys (`BertForPreTraining` /
//! `SequenceClassifier`, as in bert-base-uncased, whose `cls.*` heads are ignored).
//! Also accepts the legacy `LayerNorm.gamma`/`LayerNorm.beta` names of TF-converted files.

use std::collections::BTreeSet;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use burn::module::{Param, ParamId};
use burn::nn::{Embedding, LayerNorm, LayerNormConfig, Linear};
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData, bf16, f16};
use memmap2::Mmap;
use safetensors::{Dtype, SafeTensors};

use imdb_lora_kernels::int8::{Int8Linear, Int8Parts, dequantize_table};
use imdb_lora_lora::{BaseLayer, LoraLinear};

use crate::error::EncoderError;

/// A memory-mapped safetensors file.
pub struct MappedFile {
    path: PathBuf,
    mmap: Mmap,
}

impl MappedFile {
    /// Maps `path` read-only.
    pub fn open(path: &Path) -> Result<Self, EncoderError> {
        let io = |source| EncoderError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = File::open(path).map_err(io)?;
        // SAFETY: the mapping is read-only and private to this process; a concurrent writer
        // truncating the file is the one hazard, and our own writers always replace files by
        // rename, never in place.
        #[allow(unsafe_code)]
        let mmap = unsafe { Mmap::map(&file) }.map_err(io)?;
        Ok(Self {
            path: path.to_path_buf(),
            mmap,
        })
    }

    /// Parses the header (validating every offset against the file size).
    pub fn tensors(&self) -> Result<Weights<'_>, EncoderError> {
        let st =
            SafeTensors::deserialize(&self.mmap).map_err(|source| EncoderError::Safetensors {
                path: self.path.clone(),
                source,
            })?;
        Ok(Weights {
            path: &self.path,
            st,
            prefix: String::new(),
            used: Mutex::new(BTreeSet::new()),
        })
    }
}

/// The tensors of one checkpoint, addressed relative to a key prefix.
pub struct Weights<'a> {
    path: &'a Path,
    st: SafeTensors<'a>,
    prefix: String,
    // Which keys the model consumed, to report leftovers (a Mutex so loading can borrow `&self`).
    used: Mutex<BTreeSet<String>>,
}

impl<'a> Weights<'a> {
    /// The file these weights come from.
    pub fn path(&self) -> &Path {
        self.path
    }

    /// Whether a key (relative to the current prefix) exists.
    pub fn contains(&self, key: &str) -> bool {
        self.st.tensor(&self.full_key(key)).is_ok()
    }

    /// Whether a key exists, ignoring the prefix.
    pub fn contains_absolute(&self, key: &str) -> bool {
        self.st.tensor(key).is_ok()
    }

    /// All keys in the file.
    pub fn keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self.st.names().into_iter().map(str::to_string).collect();
        keys.sort();
        keys
    }

    /// The stored shape of `key` (absolute), if present.
    pub fn shape(&self, key: &str) -> Option<Vec<usize>> {
        self.st.tensor(key).ok().map(|v| v.shape().to_vec())
    }

    /// The stored dtype of `key` (absolute), if present.
    pub fn dtype(&self, key: &str) -> Option<Dtype> {
        self.st.tensor(key).ok().map(|v| v.dtype())
    }

    /// Keys of the file that no `read` has consumed so far.
    pub fn unused_keys(&self) -> Vec<String> {
        let used = self.used.lock().map(|u| u.clone()).unwrap_or_default();
        self.keys()
            .into_iter()
            .filter(|k| !used.contains(k))
            .collect()
    }

    /// Sets the prefix prepended to every key (`""` or `"bert."`).
    pub fn set_prefix(&mut self, prefix: &str) {
        self.prefix = prefix.to_string();
    }

    fn full_key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    /// The stored tensor `key` (relative to the prefix) and its full key, after checking its
    /// shape (the caller marks it used once it has read it).
    fn view(
        &self,
        key: &str,
        expected: &[usize],
    ) -> Result<(String, safetensors::tensor::TensorView<'_>), EncoderError> {
        let key = self.full_key(key);
        let view = self
            .st
            .tensor(&key)
            .map_err(|_| EncoderError::MissingTensor {
                path: self.path.to_path_buf(),
                key: key.clone(),
            })?;
        if view.shape() != expected {
            return Err(EncoderError::ShapeMismatch {
                path: self.path.to_path_buf(),
                key,
                expected: expected.to_vec(),
                found: view.shape().to_vec(),
            });
        }
        Ok((key, view))
    }

    /// Reads tensor `key` as f32 after checking its shape.
    pub fn read(&self, key: &str, expected: &[usize]) -> Result<Vec<f32>, EncoderError> {
        let (key, view) = self.view(key, expected)?;
        let bytes = view.data();
        let values = match view.dtype() {
            Dtype::F32 => bytes
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            Dtype::F16 => bytes
                .chunks_exact(2)
                .map(|c| f16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            Dtype::BF16 => bytes
                .chunks_exact(2)
                .map(|c| bf16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            other => {
                return Err(EncoderError::UnsupportedDtype {
                    path: self.path.to_path_buf(),
                    key,
                    dtype: format!("{other:?}"),
                });
            }
        };
        if let Ok(mut used) = self.used.lock() {
            used.insert(key);
        }
        Ok(values)
    }

    /// A frozen tensor of the given shape.
    pub fn tensor<B: Backend, const D: usize>(
        &self,
        key: &str,
        shape: [usize; D],
        device: &B::Device,
    ) -> Result<Tensor<B, D>, EncoderError> {
        let values = self.read(key, &shape)?;
        Ok(Tensor::from_data(TensorData::new(values, shape), device))
    }

    /// A PyTorch `nn.Linear` (`{name}.weight` `[out, in]`, `{name}.bias` `[out]`) as a frozen
    /// Burn `Linear` (weight `[in, out]`; transposed once here, not at every forward).
    pub fn linear<B: Backend>(
        &self,
        name: &str,
        d_input: usize,
        d_output: usize,
        device: &B::Device,
    ) -> Result<Linear<B>, EncoderError> {
        self.linear_with(name, d_input, d_output, true, device)
    }

    /// [`Self::linear`] of a layer that has a bias only when `bias` says so (ModernBERT's
    /// `attention_bias`, `mlp_bias`, …): a missing expected bias is an error, as is reading
    /// none where the configuration has one.
    pub fn linear_with<B: Backend>(
        &self,
        name: &str,
        d_input: usize,
        d_output: usize,
        bias: bool,
        device: &B::Device,
    ) -> Result<Linear<B>, EncoderError> {
        let w = self.read(&format!("{name}.weight"), &[d_output, d_input])?;
        let transposed = transpose(&w, d_output, d_input);
        let weight = Tensor::from_data(TensorData::new(transposed, [d_input, d_output]), device);
        let bias = bias
            .then(|| self.tensor::<B, 1>(&format!("{name}.bias"), [d_output], device))
            .transpose()?;
        Ok(Linear {
            weight: frozen(weight),
            bias: bias.map(frozen),
        })
    }

    /// A projection LoRA may adapt, as its base layer: the `nn.Linear` of [`Self::linear`], or
    /// an int8 layer when `{name}.weight` is stored as I8 (what `save_pretrained` writes for
    /// an int8 model: `{name}.weight` `[out, in]` i8, `{name}.weight_scale` `[out]`, and the
    /// f32 bias).
    pub fn projection<B: Backend>(
        &self,
        name: &str,
        d_input: usize,
        d_output: usize,
        device: &B::Device,
    ) -> Result<LoraLinear<B>, EncoderError> {
        self.projection_with(name, d_input, d_output, true, device)
    }

    /// [`Self::projection`] with a bias only when `bias` says so (see [`Self::linear_with`]).
    pub fn projection_with<B: Backend>(
        &self,
        name: &str,
        d_input: usize,
        d_output: usize,
        bias: bool,
        device: &B::Device,
    ) -> Result<LoraLinear<B>, EncoderError> {
        let weight_key = format!("{name}.weight");
        if self.dtype(&self.full_key(&weight_key)) != Some(Dtype::I8) {
            return Ok(LoraLinear::new(
                self.linear_with(name, d_input, d_output, bias, device)?,
            ));
        }
        let q = self.read_i8(&weight_key, &[d_output, d_input])?;
        let scale = self.read(&format!("{name}.weight_scale"), &[d_output])?;
        let bias = bias
            .then(|| self.read(&format!("{name}.bias"), &[d_output]))
            .transpose()?;
        let parts = Int8Parts::new(q, scale, bias, d_input, d_output).map_err(|source| {
            EncoderError::Int8 {
                context: format!("{}: {}.*", self.path.display(), self.full_key(name)),
                source,
            }
        })?;
        Ok(LoraLinear {
            base_layer: BaseLayer::Int8(Int8Linear::from_parts(&parts, device)),
            lora: None,
        })
    }

    /// Reads the I8 tensor `key` after checking its shape.
    fn read_i8(&self, key: &str, expected: &[usize]) -> Result<Vec<i8>, EncoderError> {
        let (key, view) = self.view(key, expected)?;
        if view.dtype() != Dtype::I8 {
            return Err(EncoderError::UnsupportedDtype {
                path: self.path.to_path_buf(),
                key,
                dtype: format!("{:?} (expected I8)", view.dtype()),
            });
        }
        let values = view.data().iter().map(|&b| b as i8).collect();
        if let Ok(mut used) = self.used.lock() {
            used.insert(key);
        }
        Ok(values)
    }

    /// A frozen `nn.Embedding` (`{name}.weight`, `[n, d]`, same layout in both frameworks).
    pub fn embedding<B: Backend>(
        &self,
        name: &str,
        n: usize,
        d: usize,
        device: &B::Device,
    ) -> Result<Embedding<B>, EncoderError> {
        let key = format!("{name}.weight");
        if self.dtype(&self.full_key(&key)) != Some(Dtype::I8) {
            return Ok(Embedding {
                weight: frozen(self.tensor(&key, [n, d], device)?),
            });
        }
        // An int8 model's table (`save_pretrained`): per-row scales beside it, computed on in
        // f32 as every embedding is.
        let q = self.read_i8(&key, &[n, d])?;
        let scale = self.read(&format!("{name}.weight_scale"), &[n])?;
        let values = dequantize_table(&q, &scale, d);
        Ok(Embedding {
            weight: frozen(Tensor::from_data(TensorData::new(values, [n, d]), device)),
        })
    }

    /// A frozen LayerNorm, `{name}.weight`/`.bias` or the legacy `.gamma`/`.beta`.
    pub fn layer_norm<B: Backend>(
        &self,
        name: &str,
        d: usize,
        eps: f64,
        device: &B::Device,
    ) -> Result<LayerNorm<B>, EncoderError> {
        self.layer_norm_with(name, d, eps, true, device)
    }

    /// [`Self::layer_norm`] with a bias (shift) only when `bias` says so (ModernBERT's
    /// `norm_bias`).
    pub fn layer_norm_with<B: Backend>(
        &self,
        name: &str,
        d: usize,
        eps: f64,
        bias: bool,
        device: &B::Device,
    ) -> Result<LayerNorm<B>, EncoderError> {
        let (w, b) = if self.contains(&format!("{name}.gamma")) {
            ("gamma", "beta")
        } else {
            ("weight", "bias")
        };
        let mut norm = LayerNormConfig::new(d).with_epsilon(eps).init(device);
        norm.gamma = frozen(self.tensor(&format!("{name}.{w}"), [d], device)?);
        norm.beta = bias
            .then(|| self.tensor(&format!("{name}.{b}"), [d], device))
            .transpose()?
            .map(frozen);
        Ok(norm)
    }
}

/// A parameter that takes no gradient.
pub fn frozen<B: Backend, const D: usize>(tensor: Tensor<B, D>) -> Param<Tensor<B, D>> {
    Param::initialized(ParamId::new(), tensor.set_require_grad(false))
}

/// Row-major `[rows, cols]` → `[cols, rows]`.
pub fn transpose(values: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0.0; values.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = values[r * cols + c];
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transpose_swaps_axes() {
        let m = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        assert_eq!(transpose(&m, 2, 3), [1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
    }
}

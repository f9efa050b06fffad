//! Serialising tensors (safetensors) and JSON, and writing them through [`fsio`] (temp file in
//! the same directory + rename), so a crash never leaves a half-written model or adapter behind.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use burn::tensor::Tensor;
use burn::tensor::backend::Backend;
use safetensors::{Dtype, View};

use crate::error::EncoderError;
use crate::precision::WeightDtype;

/// A tensor ready to be written: little-endian bytes, dtype and shape.
#[derive(Debug, Clone, PartialEq)]
pub struct OwnedTensor {
    /// Element type.
    pub dtype: Dtype,
    /// Shape, row-major.
    pub shape: Vec<usize>,
    /// Raw little-endian data.
    pub data: Vec<u8>,
}

impl OwnedTensor {
    /// An f32 tensor.
    pub fn f32(shape: &[usize], values: &[f32]) -> Self {
        Self {
            dtype: Dtype::F32,
            shape: shape.to_vec(),
            data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        }
    }

    /// An i8 tensor.
    pub fn i8(shape: &[usize], values: &[i8]) -> Self {
        Self {
            dtype: Dtype::I8,
            shape: shape.to_vec(),
            data: values.iter().map(|&v| v as u8).collect(),
        }
    }

    /// This f32 tensor's values stored as `dtype` (a no-op for f32, and for any tensor that
    /// is not f32).
    pub fn stored_as(self, dtype: WeightDtype) -> Self {
        if self.dtype != Dtype::F32 || dtype.safetensors() == Dtype::F32 {
            return self;
        }
        let values: Vec<f32> = self
            .data
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        Self {
            dtype: dtype.safetensors(),
            shape: self.shape,
            data: dtype.encode(&values),
        }
    }

    /// An i64 tensor.
    pub fn i64(shape: &[usize], values: &[i64]) -> Self {
        Self {
            dtype: Dtype::I64,
            shape: shape.to_vec(),
            data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        }
    }

    /// A Burn float tensor (of any float dtype), as f32.
    pub fn from_tensor<B: Backend, const D: usize>(
        tensor: Tensor<B, D>,
    ) -> Result<Self, EncoderError> {
        Self::from_tensor_as(tensor, WeightDtype::F32)
    }

    /// A Burn float tensor (of any float dtype), stored as `dtype`.
    pub fn from_tensor_as<B: Backend, const D: usize>(
        tensor: Tensor<B, D>,
        dtype: WeightDtype,
    ) -> Result<Self, EncoderError> {
        let shape = tensor.dims().to_vec();
        let values: Vec<f32> = tensor
            .into_data()
            .convert::<f32>()
            .to_vec()
            .map_err(|e| EncoderError::Input(format!("tensor data: {e:?}")))?;
        Ok(Self {
            dtype: dtype.safetensors(),
            shape,
            data: dtype.encode(&values),
        })
    }

    /// A Burn linear weight (`[in, out]`) in PyTorch's `[out, in]` orientation, as f32.
    pub fn from_linear_weight<B: Backend>(weight: Tensor<B, 2>) -> Result<Self, EncoderError> {
        Self::from_tensor(weight.transpose())
    }

    /// [`Self::from_linear_weight`], stored as `dtype`.
    pub fn from_linear_weight_as<B: Backend>(
        weight: Tensor<B, 2>,
        dtype: WeightDtype,
    ) -> Result<Self, EncoderError> {
        Self::from_tensor_as(weight.transpose(), dtype)
    }
}

impl View for &OwnedTensor {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.data)
    }
    fn data_len(&self) -> usize {
        self.data.len()
    }
}

/// Writes `bytes` to `path` atomically ([`imdb_lora_fsio::write`]), naming `path` on failure.
pub(crate) fn write(path: &Path, bytes: &[u8]) -> Result<(), EncoderError> {
    imdb_lora_fsio::write(path, bytes).map_err(|source| EncoderError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// Serialises tensors (sorted by name) into a safetensors file, atomically.
pub fn write_safetensors(
    path: &Path,
    tensors: &BTreeMap<String, OwnedTensor>,
    metadata: Option<HashMap<String, String>>,
) -> Result<(), EncoderError> {
    let bytes = safetensors::serialize(tensors.iter().map(|(k, v)| (k.as_str(), v)), metadata)
        .map_err(|source| EncoderError::Safetensors {
            path: path.to_path_buf(),
            source,
        })?;
    write(path, &bytes)
}

/// Writes pretty JSON, atomically.
pub fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> Result<(), EncoderError> {
    let mut text = serde_json::to_string_pretty(value).map_err(|source| EncoderError::Config {
        path: path.to_path_buf(),
        source,
    })?;
    text.push('\n');
    write(path, text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safetensors_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.safetensors");
        let mut map = BTreeMap::new();
        map.insert(
            "a".to_string(),
            OwnedTensor::f32(&[2, 2], &[1.0, 2.0, 3.0, 4.0]),
        );
        map.insert("b".to_string(), OwnedTensor::i64(&[1], &[7]));
        write_safetensors(&path, &map, None).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        assert_eq!(st.tensor("a").unwrap().shape(), [2, 2]);
        assert_eq!(st.tensor("b").unwrap().data(), 7i64.to_le_bytes());
    }
}

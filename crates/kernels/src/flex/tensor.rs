//! Flex tensors as the kernels see them: f32 slices read in place, written into a buffer
//! they own, and the conversions between Burn's `Tensor` and Flex's primitive.

use std::borrow::Cow;

use burn::backend::Flex;
use burn::tensor::{DType, Tensor, TensorData, TensorMetadata, TensorPrimitive};
use burn_flex::FlexTensor;

/// Elements per parallel task in element-wise kernels (64 KiB of f32).
pub(super) const CHUNK: usize = 1 << 14;

/// A Flex tensor's values in row-major order, borrowed when it is contiguous.
pub(super) fn values(t: &FlexTensor) -> Cow<'_, [f32]> {
    match t.as_slice::<f32>() {
        Some(s) => Cow::Borrowed(s),
        None => Cow::Owned(t.to_contiguous().storage::<f32>().to_vec()),
    }
}

pub(super) fn is_f32(t: &FlexTensor) -> bool {
    t.dtype() == DType::F32
}

pub(super) fn flex_tensor(values: Vec<f32>, shape: burn::tensor::Shape) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape))
}

/// `t` as a sole-owner, contiguous tensor whose buffer is exactly its values, ready to be
/// overwritten: `t` itself when it already is one (a fresh op result usually is), else a copy
/// (one pass, and no zero-filling of a new buffer).
pub(super) fn unique(mut t: FlexTensor) -> FlexTensor {
    let n = t.shape().num_elements();
    let reusable = t.is_contiguous() && t.layout().start_offset() == 0;
    if reusable && t.try_storage_mut::<f32>().is_some_and(|s| s.len() == n) {
        return t;
    }
    let shape = t.shape();
    flex_tensor(values(&t).into_owned(), shape)
}

/// The values of a tensor from [`unique`] (never copies: it is the sole owner).
pub(super) fn values_mut(t: &mut FlexTensor) -> &mut [f32] {
    t.storage_mut::<f32>()
}

pub(super) fn float<const D: usize>(t: FlexTensor) -> Tensor<Flex, D> {
    Tensor::from_primitive(TensorPrimitive::Float(t))
}

pub(super) fn prim<const D: usize>(t: Tensor<Flex, D>) -> FlexTensor {
    t.into_primitive().tensor()
}

//! [`KernelOps`]: a backend's kernels ([`KernelBackend`]) handed to the LoRA layers.

use burn::tensor::Tensor;
use imdb_lora_kernels::int8::Int8Linear;
use imdb_lora_kernels::{KernelBackend, to_dtype};
use imdb_lora_lora::LoraOps;

/// A [`KernelBackend`]'s kernels as the operations of the LoRA layers
/// (`LoraLinear::forward_with(x, KernelOps)`).
#[derive(Debug, Clone, Copy, Default)]
pub struct KernelOps;

impl<B: KernelBackend> LoraOps<B> for KernelOps {
    /// In the input's dtype: under bf16 mixed precision, the f32 LoRA factors are rounded for
    /// their products (autocast's rule), and their gradients come back f32 through the cast.
    fn linear<const D: usize>(
        x: Tensor<B, D>,
        weight: Tensor<B, 2>,
        bias: Option<Tensor<B, 1>>,
    ) -> Tensor<B, D> {
        let dtype = x.dtype();
        B::kernel_linear(x, to_dtype(weight, dtype), bias.map(|b| to_dtype(b, dtype)))
    }

    fn dropout<const D: usize>(x: Tensor<B, D>, prob: f64) -> Tensor<B, D> {
        B::kernel_dropout(x, prob)
    }

    fn linear_int8<const D: usize>(x: Tensor<B, D>, layer: &Int8Linear<B>) -> Tensor<B, D> {
        B::kernel_linear_int8(x, layer)
    }
}

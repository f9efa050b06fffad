//! LoRA (low-rank adaptation) for Burn linear layers, with Hugging Face PEFT's semantics.
//!
//! A [`LoraLinear`] wraps a frozen base [`Linear`](burn::nn::Linear) and adds a trainable
//! low-rank update: `y = base(x) + B(A(dropout(x))) · scaling`, with `scaling = alpha / r`
//! (or `alpha / sqrt(r)` with rsLoRA). `A` starts Kaiming-uniform (a = √5) and `B` at zero,
//! exactly as PEFT initialises them, so an untrained adapter leaves the output unchanged.
//!
//! The base may also be an int8 layer for inference ([`BaseLayer::Int8`], the format and
//! kernels of `imdb_lora_kernels::int8`), with an adapter beside it unmerged.
//!
//! The crate knows nothing about BERT: which layers get adapters is the model's business;
//! this crate only supplies the layer, its configuration and the merge arithmetic.

mod config;
mod error;
mod linear;

pub use config::LoraConfig;
pub use error::LoraError;
pub use linear::{BaseLayer, BurnOps, LoraAdapter, LoraLinear, LoraOps};

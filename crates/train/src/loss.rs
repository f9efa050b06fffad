//! The training loss.

use burn::nn::loss::{CrossEntropyLoss, CrossEntropyLossConfig};
use burn::tensor::backend::Backend;

/// The training loss: cross-entropy, weighted per class when `weights` are given (as
/// `torch.nn.CrossEntropyLoss(weight=w)`: the batch's weighted losses over the sum of its
/// examples' weights).
pub fn loss_function<B: Backend>(
    weights: Option<&[f64]>,
    device: &B::Device,
) -> CrossEntropyLoss<B> {
    CrossEntropyLossConfig::new()
        .with_weights(weights.map(|w| w.iter().map(|&w| w as f32).collect()))
        .init(device)
}

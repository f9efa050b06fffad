//! FLOP counts of BERT + LoRA training and evaluation batches, so measured throughput can be
//! put beside the machine's matmul rate (the `flops` command of `imdb-lora-perf`).
//!
//! # Counting convention
//!
//! One multiply-add is 2 FLOPs. Only matrix products are counted; softmax, LayerNorm, GELU,
//! dropout, biases, embeddings lookups, the loss and the optimizer step are left out (a few
//! per cent of the total at BERT sizes). For a padded batch `[B, L]` (every padded position
//! is computed, so padding counts), hidden size `h`, feed-forward width `i`, LoRA rank `r`:
//!
//! * **projections** per layer: `2·B·L·(4·h² + 2·h·i)`: query, key, value, attention output,
//!   and the two feed-forward matrices;
//! * **attention** per layer: `4·B·L²·h`: `Q·Kᵀ` and `P·V` (all heads together);
//! * **LoRA** per layer: `2 modules × 2·B·L·2·h·r` (query and value; `A` then `B`);
//! * **head** once per batch: pooler `2·B·h²` and classifier `2·B·h·2`.
//!
//! Evaluation is forward only. Training is forward + backward, where backward counts:
//! the frozen projections and the frozen pooler once (input gradients only: their weights
//! get no gradient), the attention products twice (gradients with respect to both operands),
//! the LoRA products twice (input and weight gradients) and the trainable classifier twice.
//! Training FLOPs are therefore `forward + projections + 2·attention + 2·LoRA + pooler +
//! 2·classifier`, i.e. a little over 2× the forward pass.
//!
//! `scripts/bench/peer_micro.py flops` implements the same formula for the PyTorch reference;
//! both print the counts of a `16 × 256` reference batch so that a difference shows.
//!
//! The count is the model's standard computation, what transformers performs. imdb-lora's
//! classifier runs the last encoder layer at the `[CLS]` position only (keys and values
//! still for every token), which skips ≈ 14 % of these FLOPs for MiniLM at 256 tokens
//! (one sixth of the layers, 85 % of such a layer); its GFLOP/s are therefore model FLOPs
//! per second, comparable between the two sides, not the arithmetic its kernels executed.

use serde_json::{Value, json};

/// Classes of the sentiment head.
pub const NUM_LABELS: u64 = 2;
/// LoRA modules per layer (query and value).
pub const LORA_MODULES: u64 = 2;
/// The project's LoRA rank.
pub const LORA_R: u64 = 8;

/// The sizes the count depends on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ModelShape {
    /// Hidden size `h`.
    pub hidden: u64,
    /// Feed-forward width `i`.
    pub intermediate: u64,
    /// Encoder layers.
    pub layers: u64,
    /// LoRA rank `r`.
    pub lora_r: u64,
}

impl ModelShape {
    /// The shape of `config` with LoRA rank `lora_r`.
    pub fn of(config: &imdb_lora_encoder::EncoderConfig, lora_r: u64) -> ModelShape {
        ModelShape {
            hidden: config.hidden_size as u64,
            intermediate: config.intermediate_size as u64,
            layers: config.num_hidden_layers as u64,
            lora_r,
        }
    }
}

/// Forward FLOPs of one `[B, L]` batch, by kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ForwardFlops {
    /// The six frozen projections of every layer.
    pub projections: u64,
    /// The two attention products of every layer.
    pub attention: u64,
    /// The LoRA factors of every layer.
    pub lora: u64,
    /// The frozen pooler.
    pub pooler: u64,
    /// The trainable classifier.
    pub classifier: u64,
}

impl ForwardFlops {
    /// The counts for a batch of `batch` sequences padded to `len` tokens.
    pub fn of(shape: &ModelShape, batch: u64, len: u64) -> ForwardFlops {
        let (h, i, n) = (shape.hidden, shape.intermediate, shape.layers);
        let tokens = batch * len;
        ForwardFlops {
            projections: n * 2 * tokens * (4 * h * h + 2 * h * i),
            attention: n * 4 * batch * len * len * h,
            lora: n * LORA_MODULES * 2 * tokens * 2 * h * shape.lora_r,
            pooler: 2 * batch * h * h,
            classifier: 2 * batch * h * NUM_LABELS,
        }
    }

    /// The whole forward pass.
    pub fn forward(&self) -> u64 {
        self.projections + self.attention + self.lora + self.pooler + self.classifier
    }

    /// The backward pass (see the module documentation).
    pub fn backward(&self) -> u64 {
        self.projections + 2 * self.attention + 2 * self.lora + self.pooler + 2 * self.classifier
    }

    /// Forward + backward.
    pub fn train(&self) -> u64 {
        self.forward() + self.backward()
    }
}

/// Totals over a sequence of batches.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Batches counted.
    pub batches: u64,
    /// Sequences.
    pub samples: u64,
    /// Token slots, padding included (`Σ B·L`).
    pub padded_tokens: u64,
    /// Real tokens.
    pub real_tokens: u64,
    /// Forward FLOPs.
    pub forward_flops: u64,
    /// Backward FLOPs (0 when counting evaluation).
    pub backward_flops: u64,
}

impl Tally {
    /// Adds a batch whose sequences have the token counts `lengths`, padded to the longest.
    pub fn add(&mut self, shape: &ModelShape, lengths: &[usize], backward: bool) {
        let batch = lengths.len() as u64;
        let len = lengths.iter().copied().max().unwrap_or(0) as u64;
        let f = ForwardFlops::of(shape, batch, len);
        self.batches += 1;
        self.samples += batch;
        self.padded_tokens += batch * len;
        self.real_tokens += lengths.iter().map(|&l| l as u64).sum::<u64>();
        self.forward_flops += f.forward();
        if backward {
            self.backward_flops += f.backward();
        }
    }

    /// Forward + backward FLOPs.
    pub fn flops(&self) -> u64 {
        self.forward_flops + self.backward_flops
    }

    /// As JSON: `{batches, samples, padded_tokens, real_tokens, forward_flops, backward_flops, flops}`.
    pub fn to_json(&self) -> Value {
        json!({
            "batches": self.batches,
            "samples": self.samples,
            "padded_tokens": self.padded_tokens,
            "real_tokens": self.real_tokens,
            "forward_flops": self.forward_flops,
            "backward_flops": self.backward_flops,
            "flops": self.flops(),
        })
    }
}

/// Counts over batch plans: `plan` holds each batch's example indices, `lengths` each
/// example's token count.
pub fn tally(shape: &ModelShape, plan: &[Vec<usize>], lengths: &[usize], backward: bool) -> Tally {
    let mut t = Tally::default();
    for batch in plan {
        let lens: Vec<usize> = batch.iter().map(|&i| lengths[i]).collect();
        t.add(shape, &lens, backward);
    }
    t
}

/// The counts of one `batch × len` batch, printed by both implementations to cross-check
/// the formula.
pub fn reference_batch(shape: &ModelShape, batch: u64, len: u64) -> Value {
    let f = ForwardFlops::of(shape, batch, len);
    json!({
        "batch": batch,
        "len": len,
        "forward_flops": f.forward(),
        "train_flops": f.train(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINILM: ModelShape = ModelShape {
        hidden: 384,
        intermediate: 1536,
        layers: 6,
        lora_r: 8,
    };

    /// The module documentation's figure for the `[CLS]`-only last layer, from the formula:
    /// that layer still projects keys and values for every token and nothing else at scale.
    #[test]
    fn the_cls_only_last_layer_skips_about_14_percent_of_minilm_at_256_tokens() {
        let (batch, len, h) = (16, 256, MINILM.hidden);
        let f = ForwardFlops::of(&MINILM, batch, len);
        let layer = (f.projections + f.attention) / MINILM.layers;
        let keys_values = 2 * batch * len * 2 * h * h;
        let of_layer = (layer - keys_values) as f64 / layer as f64;
        let of_model = (layer - keys_values) as f64 / f.forward() as f64;
        assert!((of_layer - 0.85).abs() < 0.005, "{of_layer}");
        assert!((of_model - 0.14).abs() < 0.005, "{of_model}");
    }

    #[test]
    fn layer_terms_match_the_criterion_bench() {
        let one = ModelShape {
            layers: 1,
            ..MINILM
        };
        let f = ForwardFlops::of(&one, 16, 256);
        assert_eq!(
            f.projections + f.attention,
            crate::layer_forward_flops(16, 256)
        );
        // 2 modules × 2·B·L·2·h·r
        assert_eq!(f.lora, 2 * 2 * 16 * 256 * 2 * 384 * 8);
    }

    #[test]
    fn training_is_forward_plus_backward() {
        let f = ForwardFlops::of(&MINILM, 16, 256);
        assert_eq!(
            f.backward(),
            f.projections + 2 * f.attention + 2 * f.lora + f.pooler + 2 * f.classifier
        );
        assert_eq!(f.train(), f.forward() + f.backward());
        // ≈ 6 × 16.1 GFLOP forward.
        let g = f.forward() as f64 / 1e9;
        assert!((g - 97.1).abs() < 0.5, "{g}");
    }

    #[test]
    fn tally_pads_to_the_longest_of_each_batch() {
        let lengths = [10, 20, 5, 7];
        let plan = vec![vec![0, 1], vec![2, 3]];
        let t = tally(&MINILM, &plan, &lengths, true);
        assert_eq!(t.batches, 2);
        assert_eq!(t.samples, 4);
        assert_eq!(t.padded_tokens, 2 * 20 + 2 * 7);
        assert_eq!(t.real_tokens, 42);
        let expected =
            ForwardFlops::of(&MINILM, 2, 20).train() + ForwardFlops::of(&MINILM, 2, 7).train();
        assert_eq!(t.flops(), expected);
        let eval = tally(&MINILM, &plan, &lengths, false);
        assert_eq!(eval.backward_flops, 0);
        assert_eq!(eval.flops(), eval.forward_flops);
    }
}

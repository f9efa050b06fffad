//! Shared workloads and result reading for the backend benchmarks (`benches/backends.rs`).
//!
//! The workloads are those of training and evaluating all-MiniLM-L6-v2 with LoRA on IMDb:
//! one encoder layer of its shape (hidden 384, 12 heads, intermediate 1536) on a batch of
//! 16 sequences of 256 tokens with a padding mask, forward alone and forward + backward
//! through LoRA adapters; the full 6-layer encoder forward; and plain square matmuls to see
//! what each backend's GEMM reaches. Models are randomly initialised, so no files are needed.
//!
//! [`median_ns`] reads back criterion's own median from `estimates.json`, so the bench can
//! print a table (with GFLOP/s) that matches what criterion reported.
//!
//! [`flops`] counts the FLOPs of real training and evaluation batches for the
//! `imdb-lora-perf` binary (`src/main.rs`), which `cargo xtask bench` runs beside the
//! PyTorch reference.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Distribution, Int, Tensor, TensorData};
use imdb_lora_encoder::bert::{BertLayer, BertModel};
use imdb_lora_encoder::{Encoder, EncoderConfig, EncoderError, SequenceClassifier};
use imdb_lora_lora::LoraConfig;

pub mod flops;

/// all-MiniLM-L6-v2's hidden size.
pub const HIDDEN: usize = 384;
/// all-MiniLM-L6-v2's number of attention heads.
pub const HEADS: usize = 12;
/// all-MiniLM-L6-v2's feed-forward width.
pub const INTERMEDIATE: usize = 1536;
/// all-MiniLM-L6-v2's number of encoder layers.
pub const LAYERS: usize = 6;
/// Sequences per batch in the BERT workloads.
pub const BATCH: usize = 16;
/// Tokens per sequence in the BERT workloads.
pub const SEQ: usize = 256;
/// Square matmul sizes.
pub const MATMUL_SIZES: [usize; 3] = [512, 1024, 2048];

/// A BERT configuration of all-MiniLM-L6-v2's shape with `layers` encoder layers.
pub fn minilm_config(layers: usize) -> EncoderConfig {
    EncoderConfig {
        hidden_size: HIDDEN,
        num_attention_heads: HEADS,
        intermediate_size: INTERMEDIATE,
        num_hidden_layers: layers,
        ..EncoderConfig::default()
    }
}

/// One randomly initialised (frozen) encoder layer of all-MiniLM-L6-v2's shape.
pub fn encoder_layer<B: Backend>(device: &B::Device) -> BertLayer<B> {
    B::seed(device, 0);
    let mut layers = BertModel::<B>::init(&minilm_config(1), device)
        .encoder
        .layer;
    layers.swap_remove(0)
}

/// As [`encoder_layer`], with fresh LoRA adapters (the project default: r 8, alpha 16,
/// dropout 0.1 on query + value). Only the adapters require a gradient.
pub fn lora_encoder_layer<B: AutodiffBackend>(
    device: &B::Device,
) -> Result<BertLayer<B>, EncoderError> {
    B::seed(device, 0);
    let model = SequenceClassifier::<B>::init(&minilm_config(1), device, 0)
        .with_lora(&LoraConfig::default())?;
    match model.encoder {
        Encoder::Bert(mut m) => Ok(m.encoder.layer.swap_remove(0)),
        _ => Err(EncoderError::Input(
            "minilm_config is a BERT configuration".into(),
        )),
    }
}

/// The full randomly initialised encoder of all-MiniLM-L6-v2's shape.
pub fn full_model<B: Backend>(device: &B::Device) -> BertModel<B> {
    B::seed(device, 0);
    BertModel::init(&minilm_config(LAYERS), device)
}

/// Standard-normal hidden states, `[batch, seq, HIDDEN]`.
pub fn hidden_states<B: Backend>(batch: usize, seq: usize, device: &B::Device) -> Tensor<B, 3> {
    B::seed(device, 1);
    Tensor::random([batch, seq, HIDDEN], Distribution::Normal(0.0, 1.0), device)
}

/// Token counts per sequence: even rows full (long reviews are truncated to `seq`), odd rows
/// between half and all of `seq`. At 16 × 256 about 14 % of the positions are padding.
pub fn lengths(batch: usize, seq: usize) -> Vec<usize> {
    (0..batch)
        .map(|i| {
            if i % 2 == 0 {
                seq
            } else {
                seq / 2 + (i * 37) % (seq / 2).max(1)
            }
        })
        .collect()
}

/// A `[batch, seq]` attention mask, 1 for tokens and 0 for padding, per [`lengths`].
pub fn padding_mask<B: Backend>(batch: usize, seq: usize, device: &B::Device) -> Tensor<B, 2, Int> {
    let values: Vec<i64> = lengths(batch, seq)
        .into_iter()
        .flat_map(|len| (0..seq).map(move |j| i64::from(j < len)))
        .collect();
    Tensor::from_data(TensorData::new(values, [batch, seq]), device)
}

/// Deterministic pseudo-random token ids in `[0, vocab)`, `[batch, seq]`.
pub fn input_ids<B: Backend>(
    batch: usize,
    seq: usize,
    vocab: usize,
    device: &B::Device,
) -> Tensor<B, 2, Int> {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let values: Vec<i64> = (0..batch * seq)
        .map(|_| {
            // xorshift64*: plenty for token ids.
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            let r = state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33;
            (r % vocab as u64) as i64
        })
        .collect();
    Tensor::from_data(TensorData::new(values, [batch, seq]), device)
}

/// Floating-point operations of an `n × n` by `n × n` matmul: `2·n³` (one multiply and one
/// add per term).
pub fn matmul_flops(n: usize) -> u64 {
    2 * (n as u64).pow(3)
}

/// Approximate floating-point operations of one encoder layer's forward pass on
/// `batch × seq` tokens: the six projections (`2·T·(4h² + 2·h·i)`) plus the two attention
/// products (`2·2·batch·seq²·h`). Softmax, LayerNorm, GELU and biases are left out (< 2 %).
pub fn layer_forward_flops(batch: usize, seq: usize) -> u64 {
    let (t, h, i) = ((batch * seq) as u64, HIDDEN as u64, INTERMEDIATE as u64);
    2 * t * (4 * h * h + 2 * h * i) + 4 * (batch as u64) * (seq as u64).pow(2) * h
}

/// Where criterion writes its results, found as criterion 0.7 finds it: `$CRITERION_HOME`,
/// else `$CARGO_TARGET_DIR/criterion`, else `<target>/criterion` next to the running bench
/// executable (`<target>/<profile>/deps/<bench>`).
pub fn criterion_dir() -> PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return PathBuf::from(home);
    }
    if let Some(target) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(target).join("criterion");
    }
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.ancestors().nth(3).map(Path::to_path_buf))
        .unwrap_or_else(|| PathBuf::from("target"))
        .join("criterion")
}

/// Criterion's median estimate, in nanoseconds, for benchmark `id` (`group/function[/param]`),
/// or `None` when it has no result written at or after `since` (e.g. it was filtered out of
/// this run, so an older result is not passed off as a new one).
pub fn median_ns(dir: &Path, id: &str, since: SystemTime) -> Option<f64> {
    let path = dir.join(id).join("new").join("estimates.json");
    let modified = std::fs::metadata(&path).ok()?.modified().ok()?;
    if modified < since {
        return None;
    }
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    json.get("median")?.get("point_estimate")?.as_f64()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flop_counts() {
        assert_eq!(matmul_flops(512), 268_435_456);
        // 16 × 256 tokens through a MiniLM layer: ≈ 16.1 GFLOP.
        let f = layer_forward_flops(16, 256) as f64 / 1e9;
        assert!((f - 16.1).abs() < 0.1, "{f}");
    }

    #[test]
    fn lengths_mix_full_and_padded_rows() {
        let l = lengths(BATCH, SEQ);
        assert_eq!(l.len(), BATCH);
        assert!(l.iter().all(|&n| (SEQ / 2..=SEQ).contains(&n)));
        assert!(l.iter().any(|&n| n < SEQ));
        assert_eq!(l[0], SEQ);
    }
}

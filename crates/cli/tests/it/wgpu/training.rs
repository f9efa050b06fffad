//! A few training steps of the real all-MiniLM-L6-v2 on wgpu, through the same `fine_tune` the
//! binary runs (LoRA on query and value, AdamW, clipping, warm-up, checkpoints, evaluation):
//! a tiny batch of sentences whose label is a sentiment word ("great" / "awful") amid other
//! words, which a few steps learn.

use burn::backend::Autodiff;
use imdb_lora_data::Encoded;
use imdb_lora_encoder::load_classifier;
use imdb_lora_lora::LoraConfig;
use imdb_lora_train::{Datasets, RunSpec, TrainConfig, fine_tune};

use super::*;

/// MiniLM's (bert-base-uncased's) ids: `[CLS]`, `[SEP]`, "great", "awful", and common words.
const CLS: u32 = 101;
const SEP: u32 = 102;
const GREAT: u32 = 2307;
const AWFUL: u32 = 9643;

/// `n` sentences of 6 to 12 tokens, label 1 carrying "great", label 0 "awful", in turn.
fn sentences(n: usize, offset: usize) -> Vec<Encoded> {
    (0..n)
        .map(|i| {
            let label = (i % 2) as u32;
            let len = 6 + (i * 5 + offset) % 7;
            let mut ids = vec![CLS];
            for j in 0..len {
                ids.push(if j == len / 2 {
                    if label == 1 { GREAT } else { AWFUL }
                } else {
                    2003 + ((i * 13 + j * 7 + offset) % 90) as u32
                });
            }
            ids.push(SEP);
            Encoded {
                row: i + offset,
                label,
                type_ids: vec![0; ids.len()],
                ids,
            }
        })
        .collect()
}

#[test]
fn minilm_learns_in_a_few_steps_on_wgpu() {
    let Some(device) = device() else { return };
    let _lock = device_lock();
    type AW = Autodiff<W>;
    let (base, _) = load_classifier::<AW>(&minilm_dir(), &device, 0).unwrap();
    let data = Datasets {
        train: sentences(32, 0),
        test: sentences(16, 500),
        validation: None,
        pad_id: 0,
        classes: vec!["neg".into(), "pos".into()],
    };
    let config = TrainConfig {
        epochs: 2,
        batch_size: 8,
        eval_batch_size: 16,
        lr: 2e-3,
        warmup_ratio: 0.1,
        seed: 5,
        checkpoint_every: None,
        ..TrainConfig::default()
    };
    let run = RunSpec {
        model: "sentence-transformers/all-MiniLM-L6-v2".into(),
        model_sha256: None,
        data: "sentiment words".into(),
        max_len: 16,
        backend: "wgpu".into(),
        precision: imdb_lora_encoder::Precision::F32,
        lora: LoraConfig::default(),
        train: config,
        long_text: imdb_lora_data::LongText::Truncate,
    };
    let out = tempfile::tempdir().unwrap();
    let outcome = fine_tune(
        base,
        &run,
        &data,
        out.path(),
        &device,
        &imdb_lora_progress::Silent,
        &imdb_lora_train::Interrupt::new(),
    )
    .unwrap();
    let m = &outcome.metrics;
    let losses: Vec<f64> = m.epochs.iter().map(|e| e.train_loss).collect();
    eprintln!(
        "baseline accuracy {:.3} loss {:.4}; epochs: train loss {losses:?}, accuracy {:?}",
        m.baseline.accuracy,
        m.baseline.loss,
        m.epochs.iter().map(|e| e.eval.accuracy).collect::<Vec<_>>()
    );
    assert!(outcome.finished);
    assert_eq!(losses.len(), 2);
    assert!(losses.iter().all(|l| l.is_finite()));
    let last = m.final_epoch().unwrap();
    assert!(
        last.eval.loss < m.baseline.loss,
        "evaluation loss {} not below the baseline's {}",
        last.eval.loss,
        m.baseline.loss
    );
    assert!(
        last.eval.accuracy > m.baseline.accuracy.max(0.75),
        "accuracy {} after training (baseline {})",
        last.eval.accuracy,
        m.baseline.accuracy
    );
    assert!(out.path().join("metrics.json").is_file());
}

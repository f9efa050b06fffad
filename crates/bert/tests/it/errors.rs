//! Bad checkpoints and configurations fail with typed errors naming the file or key — never a
//! panic; and the parameter count of a bert-base-uncased-shaped model matches PEFT's.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use crate::common::*;
use bert::{
    BertConfig, BertError, BertForSequenceClassification, BertModel, ParamCount, load_classifier,
};
use lora::LoraConfig;

fn copy_tiny(to: &Path) {
    for f in ["config.json", "model.safetensors"] {
        std::fs::copy(fixture("tiny_bert/seqcls").join(f), to.join(f)).unwrap();
    }
}

fn load(dir: &Path) -> BertError {
    load_classifier::<B>(dir, &Default::default(), 0).unwrap_err()
}

#[test]
fn missing_weights_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    copy_tiny(dir.path());
    std::fs::remove_file(dir.path().join("model.safetensors")).unwrap();
    let err = load(dir.path());
    assert!(matches!(err, BertError::Io { .. }), "{err}");
    assert!(err.to_string().contains("model.safetensors"), "{err}");
}

#[test]
fn truncated_and_corrupt_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    copy_tiny(dir.path());
    let path = dir.path().join("model.safetensors");
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 1000]).unwrap();
    let err = load(dir.path());
    assert!(matches!(err, BertError::Safetensors { .. }), "{err}");
    assert!(err.to_string().contains("model.safetensors"), "{err}");

    let mut corrupt = bytes.clone();
    corrupt[8..20].copy_from_slice(b"not json at ");
    std::fs::write(&path, &corrupt).unwrap();
    assert!(matches!(load(dir.path()), BertError::Safetensors { .. }));

    std::fs::write(&path, b"").unwrap();
    assert!(matches!(load(dir.path()), BertError::Safetensors { .. }));
}

#[test]
fn shape_disagreeing_with_config_names_key_and_shapes() {
    let dir = tempfile::tempdir().unwrap();
    copy_tiny(dir.path());
    let config = std::fs::read_to_string(dir.path().join("config.json")).unwrap();
    std::fs::write(
        dir.path().join("config.json"),
        config.replace("\"intermediate_size\": 37", "\"intermediate_size\": 40"),
    )
    .unwrap();
    let err = load(dir.path());
    let msg = err.to_string();
    assert!(matches!(err, BertError::ShapeMismatch { .. }), "{msg}");
    assert!(
        msg.contains("bert.encoder.layer.0.intermediate.dense.weight"),
        "{msg}"
    );
    assert!(
        msg.contains("[40, 32]") && msg.contains("[37, 32]"),
        "{msg}"
    );
}

#[test]
fn non_bert_config_and_foreign_weights_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    copy_tiny(dir.path());
    std::fs::write(
        dir.path().join("config.json"),
        r#"{"model_type": "roberta"}"#,
    )
    .unwrap();
    let err = load(dir.path());
    assert!(matches!(err, BertError::NotBert { .. }) && err.to_string().contains("roberta"));

    // Valid safetensors, but not BERT's keys.
    let dir = tempfile::tempdir().unwrap();
    copy_tiny(dir.path());
    let mut map = std::collections::BTreeMap::new();
    map.insert(
        "transformer.wte.weight".to_string(),
        bert::OwnedTensor::f32(&[2], &[0.0, 1.0]),
    );
    bert::write_safetensors(&dir.path().join("model.safetensors"), &map, None).unwrap();
    let err = load(dir.path());
    assert!(matches!(err, BertError::UnknownLayout { .. }), "{err}");
}

#[test]
fn bert_base_shaped_parameter_counts_match_peft() {
    let _rng = rng_lock();
    // PEFT on bert-base-uncased with 2 labels and the default config prints
    // "trainable params: 296,450 || all params: 109,780,228"; its total counts the
    // 1,538-parameter head twice.
    let config = BertConfig::default().with_labels(&["neg", "pos"]);
    let device = Default::default();
    let bert = BertModel::<B>::init(&config, &device)
        .with_lora(&LoraConfig::default())
        .unwrap();
    let model = BertForSequenceClassification::with_fresh_head(bert, &config, &device, 0);
    let count = ParamCount::of(&model);
    assert_eq!(count.trainable, 296_450);
    assert_eq!(count.total, 109_780_228 - 1_538);
    assert!(count.to_string().ends_with("trainable%: 0.2700"), "{count}");
}

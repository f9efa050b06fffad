//! Bad checkpoints and configurations fail with typed errors naming the file or key — never a
//! panic; and the parameter count of a bert-base-uncased-shaped model matches PEFT's.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use crate::common::*;
use imdb_lora_encoder::{
    EncoderConfig, EncoderError, ParamCount, SequenceClassifier, load_classifier,
};
use imdb_lora_lora::LoraConfig;

fn copy_tiny(to: &Path) {
    for f in ["config.json", "model.safetensors"] {
        std::fs::copy(fixture("tiny_bert/seqcls").join(f), to.join(f)).unwrap();
    }
}

fn load(dir: &Path) -> EncoderError {
    load_classifier::<B>(dir, &Default::default(), 0).unwrap_err()
}

#[test]
fn missing_weights_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    copy_tiny(dir.path());
    std::fs::remove_file(dir.path().join("model.safetensors")).unwrap();
    let err = load(dir.path());
    assert!(matches!(err, EncoderError::Io { .. }), "{err}");
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
    assert!(matches!(err, EncoderError::Safetensors { .. }), "{err}");
    assert!(err.to_string().contains("model.safetensors"), "{err}");

    let mut corrupt = bytes.clone();
    corrupt[8..20].copy_from_slice(b"not json at ");
    std::fs::write(&path, &corrupt).unwrap();
    assert!(matches!(load(dir.path()), EncoderError::Safetensors { .. }));

    std::fs::write(&path, b"").unwrap();
    assert!(matches!(load(dir.path()), EncoderError::Safetensors { .. }));
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
    assert!(matches!(err, EncoderError::ShapeMismatch { .. }), "{msg}");
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
    std::fs::write(dir.path().join("config.json"), r#"{"model_type": "gpt2"}"#).unwrap();
    let err = load(dir.path());
    assert!(
        matches!(err, EncoderError::UnsupportedModelType { .. })
            && err.to_string().contains("gpt2")
            && err.to_string().contains("distilbert"),
        "{err}"
    );

    // Valid safetensors, but not BERT's keys.
    let dir = tempfile::tempdir().unwrap();
    copy_tiny(dir.path());
    let mut map = std::collections::BTreeMap::new();
    map.insert(
        "transformer.wte.weight".to_string(),
        imdb_lora_encoder::OwnedTensor::f32(&[2], &[0.0, 1.0]),
    );
    imdb_lora_encoder::write_safetensors(&dir.path().join("model.safetensors"), &map, None)
        .unwrap();
    let err = load(dir.path());
    assert!(matches!(err, EncoderError::UnknownLayout { .. }), "{err}");
}

#[test]
fn bert_base_shaped_parameter_counts_match_peft() {
    let _rng = rng_lock();
    // PEFT on bert-base-uncased with 2 labels and the default config prints
    // "trainable params: 296,450 || all params: 109,780,228"; its total counts the
    // 1,538-parameter head twice.
    let config = EncoderConfig::default().with_labels(&["neg", "pos"]);
    let device = Default::default();
    let model = SequenceClassifier::<B>::init(&config, &device, 0)
        .with_lora(&LoraConfig::default())
        .unwrap();
    let count = ParamCount::of(&model);
    assert_eq!(count.trainable, 296_450);
    assert_eq!(count.total, 109_780_228 - 1_538);
    assert!(count.to_string().ends_with("trainable%: 0.2700"), "{count}");
}

/// The checkpoint's own tensors are shape-checked before any fresh layer is created, and the
/// embeddings (which fix the width) before the layers: a 1,024-wide layer and a missing pooler
/// over 32-wide embeddings fail at once, not after reading the layer (16 MiB) and drawing a
/// fresh pooler (4 MiB) from the config's width.
#[test]
fn checkpoint_shapes_are_checked_before_fresh_layers_are_allocated() {
    let dir = tempfile::tempdir().unwrap();
    let config = std::fs::read_to_string(fixture("tiny_bert/bare/config.json")).unwrap();
    let config = config
        .replace("\"hidden_size\": 32", "\"hidden_size\": 1024")
        .replace("\"num_hidden_layers\": 2", "\"num_hidden_layers\": 1");
    std::fs::write(dir.path().join("config.json"), config).unwrap();
    let (h, i) = (1024, 37);
    let mut map = std::collections::BTreeMap::new();
    let mut put = |key: &str, shape: &[usize]| {
        let n = shape.iter().product();
        map.insert(
            key.to_string(),
            imdb_lora_encoder::OwnedTensor::f32(shape, &vec![0.0; n]),
        );
    };
    put("embeddings.word_embeddings.weight", &[99, 32]);
    let layer = "encoder.layer.0";
    for proj in [
        "attention.self.query",
        "attention.self.key",
        "attention.self.value",
    ] {
        put(&format!("{layer}.{proj}.weight"), &[h, h]);
        put(&format!("{layer}.{proj}.bias"), &[h]);
    }
    put(&format!("{layer}.attention.output.dense.weight"), &[h, h]);
    put(&format!("{layer}.attention.output.dense.bias"), &[h]);
    put(&format!("{layer}.intermediate.dense.weight"), &[i, h]);
    put(&format!("{layer}.intermediate.dense.bias"), &[i]);
    put(&format!("{layer}.output.dense.weight"), &[h, i]);
    put(&format!("{layer}.output.dense.bias"), &[h]);
    for norm in ["attention.output.LayerNorm", "output.LayerNorm"] {
        put(&format!("{layer}.{norm}.weight"), &[h]);
        put(&format!("{layer}.{norm}.bias"), &[h]);
    }
    imdb_lora_encoder::write_safetensors(&dir.path().join("model.safetensors"), &map, None)
        .unwrap();

    let mut err = None;
    let info = allocation_counter::measure(|| err = Some(load(dir.path())));
    let err = err.unwrap();
    assert!(matches!(err, EncoderError::ShapeMismatch { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("embeddings.word_embeddings.weight"),
        "{err}"
    );
    assert!(
        info.bytes_max < 1 << 20,
        "peak allocation {} bytes before the error",
        info.bytes_max
    );
}

//! `save_pretrained`: a LoRA-adapted classifier saved merged as a plain Hugging Face checkpoint
//! reloads here with the adapted model's logits, and transformers (no PEFT) loads the committed
//! export with no missing or unexpected keys and computes the same logits
//! (`fixtures/export/tiny/`, made by `scripts/hf_logits.py`, see scripts/README.md).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use crate::common::*;
use imdb_lora_encoder::layers::TransformerLayer as _;
use imdb_lora_encoder::{
    EncoderConfig, PeftAdapter, SequenceClassifier, copy_tokenizer_files, load_classifier,
    save_pretrained,
};
use imdb_lora_lora::LoraConfig;

fn tiny() -> (SequenceClassifier<B>, EncoderConfig) {
    load_classifier::<B>(&fixture("tiny_bert/seqcls"), &Default::default(), 0).unwrap()
}

/// The tiny model with a seeded, non-trivial default-config adapter (B non-zero), as in
/// the `adapter` tests.
fn tiny_with_random_adapter(seed: u64) -> (SequenceClassifier<B>, EncoderConfig) {
    let (model, config) = tiny();
    (
        with_random_adapter(model, &LoraConfig::default(), seed),
        config,
    )
}

/// `(key, shape, dtype)` of every tensor, sorted.
type KeyShapes = Vec<(String, Vec<usize>, String)>;

/// The tensors' [`KeyShapes`] and the sorted `__metadata__` of a safetensors file.
fn layout(path: &Path) -> (KeyShapes, Option<Vec<(String, String)>>) {
    let bytes = std::fs::read(path).unwrap();
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let mut metadata: Option<Vec<(String, String)>> = meta
        .metadata()
        .as_ref()
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect());
    if let Some(m) = metadata.as_mut() {
        m.sort();
    }
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut v: KeyShapes = st
        .tensors()
        .into_iter()
        .map(|(k, t)| (k, t.shape().to_vec(), format!("{:?}", t.dtype())))
        .collect();
    v.sort();
    (v, metadata)
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn merged_export_reloads_with_the_adapted_models_logits() {
    let _rng = rng_lock();
    let e = Expected::open(&fixture("tiny_bert/expected.safetensors"));
    let (model, config) = tiny_with_random_adapter(21);
    let adapted = logits(&model, &e);
    // The adapter must matter, or the comparison below would prove nothing.
    let base_diff = max_abs_diff(adapted.clone(), logits(&tiny().0, &e));
    assert!(
        base_diff > 1e-2,
        "adapter changes logits by only {base_diff}"
    );

    let dir = tempfile::tempdir().unwrap();
    save_pretrained(
        &model,
        &config,
        dir.path(),
        imdb_lora_encoder::WeightDtype::F32,
    )
    .unwrap();
    // Saving merges a copy: the model keeps its separate, unmerged adapters.
    assert!(
        bert(&model)
            .encoder
            .layer
            .iter()
            .flat_map(|l| l.projections())
            .all(|(_, p)| !p.is_merged())
    );
    assert_eq!(model.num_lora_params(), 2 * 2 * 8 * (32 + 32));

    let (reloaded, reloaded_config) =
        load_classifier::<B>(dir.path(), &Default::default(), 0).unwrap();
    assert_eq!(reloaded.num_lora_params(), 0, "a plain checkpoint");
    assert_close("reloaded", logits(&reloaded, &e), adapted, 1e-5);
    assert_eq!(
        reloaded_config.architectures,
        Some(vec!["BertForSequenceClassification".to_string()])
    );
    assert_eq!(
        (reloaded_config.label_name(0), reloaded_config.label_name(1)),
        ("neg".into(), "pos".into())
    );

    // Saving an already merged model writes the same weights (merge is idempotent).
    let merged = model.clone().merge_lora();
    let again = tempfile::tempdir().unwrap();
    save_pretrained(
        &merged,
        &config,
        again.path(),
        imdb_lora_encoder::WeightDtype::F32,
    )
    .unwrap();
    let (twice, _) = load_classifier::<B>(again.path(), &Default::default(), 0).unwrap();
    assert_close(
        "merged twice",
        logits(&twice, &e),
        logits(&reloaded, &e),
        0.0,
    );
}

#[test]
fn committed_export_gives_transformers_logits_and_matches_a_fresh_export() {
    let _rng = rng_lock();
    // `fixtures/export/tiny/model` was written by `save_pretrained` (the ignored test below);
    // transformers loaded it (no missing/unexpected keys) and computed `expected.safetensors`.
    let dir = fixture("export/tiny");
    let e = Expected::open(&dir.join("expected.safetensors"));
    let (model, _) = load_classifier::<B>(&dir.join("model"), &Default::default(), 0).unwrap();
    assert_close(
        "logits vs transformers",
        logits(&model, &e),
        e.f32("logits"),
        1e-5,
    );

    // What we write today has the same files, keys, shapes, dtypes, metadata and config.
    let (fresh, config) = tiny_with_random_adapter(22);
    let out = tempfile::tempdir().unwrap();
    save_pretrained(
        &fresh,
        &config,
        out.path(),
        imdb_lora_encoder::WeightDtype::F32,
    )
    .unwrap();
    let mut files: Vec<String> = std::fs::read_dir(out.path())
        .unwrap()
        .map(|f| f.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(files, ["config.json", "model.safetensors"]);
    let (fresh_keys, fresh_meta) = layout(&out.path().join("model.safetensors"));
    let (committed_keys, committed_meta) = layout(&dir.join("model/model.safetensors"));
    assert_eq!(fresh_keys, committed_keys);
    assert_eq!(fresh_meta, committed_meta);
    assert_eq!(
        fresh_meta,
        Some(vec![("format".to_string(), "pt".to_string())])
    );
    assert!(fresh_keys.iter().all(|(k, _, _)| !k.contains("lora")));
    assert_eq!(
        fresh_keys.len(),
        41,
        "transformers' SequenceClassifier key count"
    );
    // The committed config's every field, plus the fields of the source config.json that
    // this crate does not use, carried over as transformers' save_pretrained carries them.
    let fresh = json(&out.path().join("config.json"));
    let committed = json(&dir.join("model/config.json"));
    let source = json(&fixture("tiny_bert/bare/config.json"));
    for (key, value) in committed.as_object().unwrap() {
        assert_eq!(fresh.get(key), Some(value), "{key}");
    }
    for (key, value) in fresh.as_object().unwrap() {
        if committed.get(key).is_none() {
            assert_eq!(source.get(key), Some(value), "{key} comes from nowhere");
        }
    }
}

#[test]
fn peft_minilm_adapter_exports_to_peft_merged_logits() {
    // A bare MiniLM checkpoint + an adapter written by PEFT, saved merged: the result is a
    // self-contained classifier giving PEFT's `merge_and_unload()` logits.
    let e = Expected::open(&fixture("peft/minilm/expected.safetensors"));
    let (base, config) = load_classifier::<B>(&minilm_dir(), &Default::default(), 0).unwrap();
    let model = PeftAdapter::read(&fixture("peft/minilm/adapter"))
        .unwrap()
        .apply(&base)
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    save_pretrained(
        &model,
        &config,
        dir.path(),
        imdb_lora_encoder::WeightDtype::F32,
    )
    .unwrap();
    let (reloaded, reloaded_config) =
        load_classifier::<B>(dir.path(), &Default::default(), 0).unwrap();
    assert_close(
        "merged export",
        logits(&reloaded, &e),
        e.f32("logits_merged"),
        1e-4,
    );
    assert_eq!(reloaded_config.label_name(1), "LABEL_1");
    let written = copy_tokenizer_files(&minilm_dir(), dir.path()).unwrap();
    assert!(dir.path().join("tokenizer.json").is_file() && dir.path().join("vocab.txt").is_file());
    assert_eq!(written.len(), 4);
}

#[test]
fn a_configuration_that_does_not_describe_the_model_is_refused() {
    let (model, config) = tiny();
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("out");
    for (bad, field) in [
        (config.clone().with_labels(&["a", "b", "c"]), "num_labels"),
        (
            EncoderConfig {
                num_hidden_layers: 3,
                ..config.clone()
            },
            "num_hidden_layers",
        ),
        (
            EncoderConfig {
                vocab_size: 100,
                ..config.clone()
            },
            "vocab_size",
        ),
    ] {
        let err = save_pretrained(&model, &bad, &target, imdb_lora_encoder::WeightDtype::F32)
            .unwrap_err()
            .to_string();
        assert!(err.contains(field) && err.contains("config.json"), "{err}");
        assert!(!target.exists(), "nothing is written for a refused config");
    }
    let err = copy_tokenizer_files(&fixture("tiny_bert/seqcls"), &target).unwrap_err();
    assert!(err.to_string().contains("tokenizer.json"), "{err}");
}

/// Regenerates `fixtures/export/tiny/model`; then run `scripts/hf_logits.py` as
/// `scripts/README.md` describes to refresh `expected.safetensors`.
#[test]
#[ignore = "writes fixtures; run by hand"]
fn regenerate_export_fixture() {
    let _rng = rng_lock();
    let (model, config) = tiny_with_random_adapter(21);
    save_pretrained(
        &model,
        &config,
        &fixture("export/tiny/model"),
        imdb_lora_encoder::WeightDtype::F32,
    )
    .unwrap();
}

//! PEFT interchange: adapters saved by PEFT load here and give PEFT's logits; adapters saved
//! here round-trip exactly and load in PEFT (reference logits computed by PEFT from a file
//! this crate wrote); bad adapters are refused with errors naming the key.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use crate::common::*;
use imdb_lora_encoder::{
    ParamCount, PeftAdapter, SequenceClassifier, load_classifier, save_adapter,
};
use imdb_lora_lora::LoraConfig;

fn tiny() -> SequenceClassifier<B> {
    load_classifier::<B>(&fixture("tiny_bert/seqcls"), &Default::default(), 0)
        .unwrap()
        .0
}

#[test]
fn peft_saved_tiny_adapter_gives_peft_logits_merged_and_unmerged() {
    let e = Expected::open(&fixture("peft/tiny/expected.safetensors"));
    let base = tiny();
    let adapter = PeftAdapter::read(&fixture("peft/tiny/adapter")).unwrap();
    assert_eq!((adapter.lora.r, adapter.lora.lora_alpha), (4, 8.0));
    let model = adapter.apply(&base).unwrap();
    assert_close("logits", logits(&model, &e), e.f32("logits"), 1e-5);
    let merged = model.clone().merge_lora();
    assert_close("merged", logits(&merged, &e), e.f32("logits_merged"), 1e-5);
    // The adapter's head without its LoRA factors: PEFT's `logits_no_lora`.
    let head_only = model
        .clone()
        .map_targets(&adapter.lora, |mut linear| {
            linear.lora = None;
            Ok(linear)
        })
        .unwrap();
    assert_close(
        "head only",
        logits(&head_only, &e),
        e.f32("logits_no_lora"),
        1e-5,
    );
    // `apply` left the base model untouched.
    assert_close("base", logits(&base, &e), logits(&tiny(), &e), 0.0);
}

/// The bare tiny encoder with a fresh four-way head named as AG News's classes.
fn tiny4() -> SequenceClassifier<B> {
    let dir = fixture("tiny_bert/bare");
    let config = imdb_lora_encoder::EncoderConfig::from_file(&dir.join("config.json"))
        .unwrap()
        .with_labels(&["World", "Sports", "Business", "Sci/Tech"]);
    imdb_lora_encoder::load_classifier_with_config::<B>(
        &dir.join("model.safetensors"),
        &config,
        &Default::default(),
        0,
    )
    .unwrap()
}

/// A PEFT adapter trained (here: randomised) on a four-label head — the bare tiny encoder
/// loaded by transformers with `num_labels=4` — loads here onto the same encoder with a fresh
/// four-way head and gives PEFT's logits, merged and unmerged (scripts/make_fixture_classes.py).
#[test]
fn peft_saved_four_label_adapter_gives_peft_logits() {
    let e = Expected::open(&fixture("peft/tiny4/expected.safetensors"));
    let model = PeftAdapter::read(&fixture("peft/tiny4/adapter"))
        .unwrap()
        .apply(&tiny4())
        .unwrap();
    assert_eq!(model.head.output().weight.dims(), [32, 4]);
    assert_close("logits", logits(&model, &e), e.f32("logits"), 1e-5);
    let merged = model.clone().merge_lora();
    assert_close("merged", logits(&merged, &e), e.f32("logits_merged"), 1e-5);
}

#[test]
fn peft_saved_minilm_adapter_gives_peft_logits() {
    let e = Expected::open(&fixture("peft/minilm/expected.safetensors"));
    let (base, _) = load_classifier::<B>(&minilm_dir(), &Default::default(), 0).unwrap();
    let model = PeftAdapter::read(&fixture("peft/minilm/adapter"))
        .unwrap()
        .apply(&base)
        .unwrap();
    assert_close("logits", logits(&model, &e), e.f32("logits"), 1e-4);
    let merged = model.clone().merge_lora();
    assert_close("merged", logits(&merged, &e), e.f32("logits_merged"), 1e-4);
}

/// The tiny model with a seeded, non-trivial default-config adapter (B non-zero).
fn tiny_with_random_adapter(seed: u64) -> (SequenceClassifier<B>, LoraConfig) {
    let config = LoraConfig::default();
    (with_random_adapter(tiny(), &config, seed), config)
}

#[test]
fn save_then_reload_gives_identical_predictions() {
    let _rng = rng_lock();
    let e = Expected::open(&fixture("tiny_bert/expected.safetensors"));
    let (model, config) = tiny_with_random_adapter(11);
    let dir = tempfile::tempdir().unwrap();
    save_adapter(&model, &config, "fixtures/tiny_bert/seqcls", dir.path()).unwrap();
    let reloaded = PeftAdapter::read(dir.path())
        .unwrap()
        .apply(&tiny())
        .unwrap();
    let diff = max_abs_diff(logits(&model, &e), logits(&reloaded, &e));
    assert_eq!(diff, 0.0, "head or adapters not restored exactly");
    assert_eq!(
        reloaded.num_trainable_params(),
        model.num_trainable_params()
    );
}

#[test]
fn adapter_written_here_is_peft_shaped_and_peft_computes_the_same_logits() {
    let _rng = rng_lock();
    // `fixtures/peft/from_rust/adapter` was written by `save_adapter` (see the ignored test
    // below); PEFT then loaded it and computed `expected.safetensors` (scripts/README.md).
    let dir = fixture("peft/from_rust");
    let e = Expected::open(&dir.join("expected.safetensors"));
    let model = PeftAdapter::read(&dir.join("adapter"))
        .unwrap()
        .apply(&tiny())
        .unwrap();
    assert_close("logits vs PEFT", logits(&model, &e), e.f32("logits"), 1e-5);

    // And what we write today has the same files, keys, shapes and config fields.
    let (fresh, config) = tiny_with_random_adapter(12);
    let out = tempfile::tempdir().unwrap();
    save_adapter(&fresh, &config, "fixtures/tiny_bert/seqcls", out.path()).unwrap();
    let keys = |p: &Path| {
        let bytes = std::fs::read(p.join("adapter_model.safetensors")).unwrap();
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        let mut v: Vec<(String, Vec<usize>)> = st
            .tensors()
            .into_iter()
            .map(|(k, t)| (k, t.shape().to_vec()))
            .collect();
        v.sort();
        v
    };
    assert_eq!(keys(out.path()), keys(&dir.join("adapter")));
    let json = |p: &Path| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(p.join("adapter_config.json")).unwrap())
            .unwrap()
    };
    assert_eq!(json(out.path()), json(&dir.join("adapter")));
}

/// Regenerates `fixtures/peft/from_rust/adapter`; then run `scripts/peft_logits.py` as
/// `scripts/README.md` describes to refresh `expected.safetensors`.
#[test]
#[ignore = "writes fixtures; run by hand"]
fn regenerate_from_rust_fixture() {
    let _rng = rng_lock();
    let (model, config) = tiny_with_random_adapter(12);
    save_adapter(
        &model,
        &config,
        "fixtures/tiny_bert/seqcls",
        &fixture("peft/from_rust/adapter"),
    )
    .unwrap();
}

/// The other direction for N labels: a four-label adapter written by `save_adapter` (the ignored
/// test below) that PEFT loaded onto the bare encoder with `num_labels=4`; PEFT's logits are in
/// `fixtures/peft/from_rust4/expected.safetensors` (scripts/README.md).
#[test]
fn four_label_adapter_written_here_gives_peft_logits_in_peft() {
    let dir = fixture("peft/from_rust4");
    let e = Expected::open(&dir.join("expected.safetensors"));
    let adapter = PeftAdapter::read(&dir.join("adapter")).unwrap();
    let model = adapter.apply(&tiny4()).unwrap();
    assert_eq!(model.head.output().weight.dims(), [32, 4]);
    assert_close("logits vs PEFT", logits(&model, &e), e.f32("logits"), 1e-5);
    // PEFT's head differs from a fresh one: the saved head was the trained one.
    assert!(max_abs_diff(logits(&tiny4(), &e), e.f32("logits")) > 1e-3);
}

/// Regenerates `fixtures/peft/from_rust4/adapter`; then run `scripts/peft_logits.py` with
/// `--num-labels 4` as `scripts/README.md` describes to refresh `expected.safetensors`.
#[test]
#[ignore = "writes fixtures; run by hand"]
fn regenerate_from_rust4_fixture() {
    let _rng = rng_lock();
    let config = LoraConfig::default();
    let mut model = with_random_adapter(tiny4(), &config, 13);
    // A head unlike the fresh one, so the test sees it come from the file.
    let device = Default::default();
    let dist = burn::tensor::Distribution::Normal(0.0, 0.5);
    bert_head_mut(&mut model).classifier.weight =
        burn::module::Param::from_tensor(burn::tensor::Tensor::random([32, 4], dist, &device));
    bert_head_mut(&mut model).classifier.bias = Some(burn::module::Param::from_tensor(
        burn::tensor::Tensor::random([4], dist, &device),
    ));
    save_adapter(
        &model,
        &config,
        "fixtures/tiny_bert/bare",
        &fixture("peft/from_rust4/adapter"),
    )
    .unwrap();
}

#[test]
fn trainable_parameters_match_peft_for_minilm() {
    let _rng = rng_lock();
    let (base, _) = load_classifier::<B>(&minilm_dir(), &Default::default(), 0).unwrap();
    let model = base.with_lora(&LoraConfig::default()).unwrap();
    let count = ParamCount::of(&model);
    // PEFT: "trainable params: 74,498 || all params: 22,788,484"; its total counts the
    // 770-parameter head twice (a frozen copy is kept for modules_to_save).
    assert_eq!(count.trainable, 74_498);
    assert_eq!(count.total, 22_788_484 - 770);
    assert_eq!(
        count.to_string(),
        "trainable params: 74,498 || all params: 22,787,714 || trainable%: 0.3269"
    );
}

fn copy_adapter(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for f in ["adapter_config.json", "adapter_model.safetensors"] {
        std::fs::copy(from.join(f), to.join(f)).unwrap();
    }
}

fn rewrite_tensors(dir: &Path, edit: impl FnOnce(&mut Vec<(String, Vec<usize>, Vec<u8>)>)) {
    let path = dir.join("adapter_model.safetensors");
    let bytes = std::fs::read(&path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut tensors: Vec<(String, Vec<usize>, Vec<u8>)> = st
        .tensors()
        .into_iter()
        .map(|(k, v)| (k, v.shape().to_vec(), v.data().to_vec()))
        .collect();
    edit(&mut tensors);
    let map = tensors
        .into_iter()
        .map(|(k, shape, data)| {
            (
                k,
                imdb_lora_encoder::OwnedTensor {
                    dtype: safetensors::Dtype::F32,
                    shape,
                    data,
                },
            )
        })
        .collect();
    imdb_lora_encoder::write_safetensors(&path, &map, None).unwrap();
}

#[test]
fn bad_adapters_are_refused_with_the_key_named() {
    let src = fixture("peft/tiny/adapter");
    let base = tiny();
    let q_a = "base_model.model.bert.encoder.layer.1.attention.self.query.lora_A.weight";

    let dir = tempfile::tempdir().unwrap();
    copy_adapter(&src, dir.path());
    rewrite_tensors(dir.path(), |t| t.retain(|(k, _, _)| k != q_a));
    let err = PeftAdapter::read(dir.path())
        .unwrap()
        .apply(&base)
        .unwrap_err();
    assert!(
        err.to_string().contains("missing tensor") && err.to_string().contains(q_a),
        "{err}"
    );

    let dir = tempfile::tempdir().unwrap();
    copy_adapter(&src, dir.path());
    rewrite_tensors(dir.path(), |t| {
        t.push((
            "base_model.model.bert.pooler.dense.weight".into(),
            vec![1],
            vec![0; 4],
        ))
    });
    let err = PeftAdapter::read(dir.path())
        .unwrap()
        .apply(&base)
        .unwrap_err();
    assert!(err.to_string().contains("pooler.dense.weight"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    copy_adapter(&src, dir.path());
    let config = std::fs::read_to_string(dir.path().join("adapter_config.json")).unwrap();
    std::fs::write(
        dir.path().join("adapter_config.json"),
        config.replace("\"LORA\"", "\"PREFIX_TUNING\""),
    )
    .unwrap();
    let err = PeftAdapter::read(dir.path()).unwrap_err();
    assert!(err.to_string().contains("PREFIX_TUNING"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    copy_adapter(&src, dir.path());
    std::fs::write(
        dir.path().join("adapter_config.json"),
        config.replace("\"query\"", "\"qkv_proj\""),
    )
    .unwrap();
    // `value` still matches, so query's tensors are left over: refused, not ignored.
    let err = PeftAdapter::read(dir.path())
        .unwrap()
        .apply(&base)
        .unwrap_err();
    assert!(err.to_string().contains("query.lora_A"), "{err}");

    // An adapter for another base model (MiniLM: hidden 384) on the tiny one (hidden 32).
    let err = PeftAdapter::read(&fixture("peft/minilm/adapter"))
        .unwrap()
        .apply(&base)
        .unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("[8, 32]") && msg.contains("[8, 384]"), "{msg}");

    let err = PeftAdapter::read(Path::new("/nonexistent/adapter")).unwrap_err();
    assert!(
        err.to_string()
            .contains("/nonexistent/adapter/adapter_config.json"),
        "{err}"
    );
}

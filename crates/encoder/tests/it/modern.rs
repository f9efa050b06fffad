//! DeBERTa-v2/v3 and ModernBERT against transformers and PEFT on tiny random checkpoints made
//! by `scripts/make_fixture_modern.py` (hidden 36, head size 12, 2–3 layers): DeBERTa-v3's
//! shape (shared keys, c2p + p2c, log buckets of 8 over 16 tokens) and a c2p-only variant with
//! its own position projection and absolute positions; ModernBERT with a window of ±2 tokens
//! in one of three layers and mean pooling, and a variant with every bias on, cls pooling and
//! two local layers. Hidden states are compared on real tokens only: transformers masks
//! DeBERTa's padded query rows, and gives ModernBERT's padded rows whose window is all padding
//! a uniform row, neither of which any real token reads.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use burn::tensor::{Int, Tensor};
use imdb_lora_encoder::{
    Encoder, EncoderConfig, Family, FamilyParams, PeftAdapter, Pooling, SequenceClassifier,
    load_classifier, load_classifier_with_config, save_adapter, save_pretrained,
};
use imdb_lora_lora::LoraConfig;

use crate::common::*;

/// Every fixture: `(directory, family)`.
const MODELS: [(&str, Family); 4] = [
    ("deberta-v2", Family::DebertaV2),
    ("deberta-v2-c2p", Family::DebertaV2),
    ("modernbert", Family::ModernBert),
    ("modernbert-bias", Family::ModernBert),
];

/// The fixtures with PEFT adapters and tokenizers.
const WITH_PEFT: [&str; 2] = ["deberta-v2", "modernbert"];

fn dir(name: &str) -> std::path::PathBuf {
    fixture(&format!("modern/{name}"))
}

fn types(e: &Expected) -> Option<Tensor<B, 2, Int>> {
    e.has("token_type_ids").then(|| e.i64("token_type_ids"))
}

fn family_logits(model: &SequenceClassifier<B>, e: &Expected) -> Tensor<B, 2> {
    model
        .forward(e.i64("input_ids"), e.i64("attention_mask"), types(e))
        .unwrap()
}

/// Every token's final state, padded rows zeroed.
fn hidden(model: &SequenceClassifier<B>, e: &Expected) -> Tensor<B, 3> {
    let (ids, mask) = (e.i64("input_ids"), e.i64::<2>("attention_mask"));
    let states = match &model.encoder {
        Encoder::DebertaV2(m) => m.forward(ids, mask.clone(), types(e)).unwrap(),
        Encoder::ModernBert(m) => m.forward(ids, mask.clone()).unwrap(),
        _ => panic!("not a family of this file"),
    };
    real_rows(states, mask)
}

fn real_rows(states: Tensor<B, 3>, mask: Tensor<B, 2, Int>) -> Tensor<B, 3> {
    let [batch, seq] = mask.dims();
    states * mask.float().reshape([batch, seq, 1])
}

#[test]
fn both_families_match_transformers_on_real_tokens_and_logits() {
    for (name, family) in MODELS {
        let e = Expected::open(&dir(name).join("expected.safetensors"));
        let (model, config) =
            load_classifier::<B>(&dir(name).join("seqcls"), &Default::default(), 0).unwrap();
        assert_eq!(config.family, family, "{name}");
        assert_eq!(config.label_name(1), "neutral");
        let want_hidden = real_rows(e.f32("last_hidden_state"), e.i64("attention_mask"));
        assert_close(
            &format!("{name} last_hidden_state"),
            hidden(&model, &e),
            want_hidden.clone(),
            1e-5,
        );
        assert_close(
            &format!("{name} logits"),
            family_logits(&model, &e),
            e.f32("logits"),
            1e-5,
        );
        let (bare, _) =
            load_classifier::<B>(&dir(name).join("bare"), &Default::default(), 0).unwrap();
        assert_close(
            &format!("{name} bare"),
            hidden(&bare, &e),
            want_hidden,
            1e-5,
        );
    }
}

#[test]
fn modernbert_pools_the_first_token_or_the_mean_as_configured() {
    let e = Expected::open(&dir("modernbert").join("expected.safetensors"));
    let seqcls = dir("modernbert").join("seqcls");
    let mut config = EncoderConfig::from_file(&seqcls.join("config.json")).unwrap();
    let FamilyParams::ModernBert(params) = &mut config.params else {
        panic!("not ModernBERT's parameters")
    };
    assert_eq!(params.classifier_pooling, Pooling::Mean);
    params.classifier_pooling = Pooling::Cls;
    let cls = load_classifier_with_config::<B>(
        &seqcls.join("model.safetensors"),
        &config,
        &Default::default(),
        0,
    )
    .unwrap();
    assert_close(
        "modernbert cls pooling",
        family_logits(&cls, &e),
        e.f32("logits_cls"),
        1e-5,
    );
}

#[test]
fn modernbert_configs_of_the_hub_and_of_transformers_5_read_alike() {
    let seqcls = dir("modernbert").join("seqcls");
    let new = EncoderConfig::from_file(&seqcls.join("config.json")).unwrap();
    let hub = EncoderConfig::from_file(&seqcls.join("config_hub_style.json")).unwrap();
    assert_eq!(new.params, hub.params);
    let FamilyParams::ModernBert(p) = &new.params else {
        panic!("not ModernBERT's parameters")
    };
    assert_eq!(p.half_window(), 2);
    assert_eq!(
        (p.global_rope_theta, p.local_rope_theta),
        (160_000.0, 10_000.0)
    );
    // 64 rotary positions: 64 tokens run, 65 are refused before anything is computed.
    let (model, _) = load_classifier::<B>(&seqcls, &Default::default(), 0).unwrap();
    let device = Default::default();
    let ids = |n: usize| Tensor::<B, 2, Int>::ones([1, n], &device).mul_scalar(5);
    let mask = |n: usize| Tensor::<B, 2, Int>::ones([1, n], &device);
    assert!(model.forward(ids(64), mask(64), None).is_ok());
    let err = model
        .forward(ids(65), mask(65), None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("65") && err.contains("64"), "{err}");
}

#[test]
fn peft_adapters_of_both_families_give_peft_logits_unmerged_and_merged() {
    for name in WITH_PEFT {
        let root = dir(name).join("peft");
        let e = Expected::open(&root.join("expected.safetensors"));
        let (base, _) =
            load_classifier::<B>(&dir(name).join("seqcls"), &Default::default(), 0).unwrap();
        let model = PeftAdapter::read(&root.join("adapter"))
            .unwrap()
            .apply(&base)
            .unwrap();
        assert!(model.num_lora_params() > 0, "{name}");
        assert_close(name, family_logits(&model, &e), e.f32("logits"), 1e-5);
        assert_close(
            &format!("{name} merged"),
            family_logits(&model.clone().merge_lora(), &e),
            e.f32("logits_merged"),
            1e-5,
        );
    }
}

#[test]
fn peft_s_all_linear_adapters_on_the_pooler_or_head_are_refused_by_name() {
    // PEFT's all-linear puts LoRA on DeBERTa's pooler.dense and ModernBERT's head.dense too;
    // our heads take no adapter, so such an adapter is refused, naming the module.
    for (name, module) in [("deberta-v2", "pooler.dense"), ("modernbert", "head.dense")] {
        let (base, _) =
            load_classifier::<B>(&dir(name).join("seqcls"), &Default::default(), 0).unwrap();
        let err = PeftAdapter::read(&dir(name).join("peft_all_linear/adapter"))
            .and_then(|a| a.apply(&base))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains(module), "{name}: {err}");
    }
}

#[test]
fn peft_s_default_targets_and_saved_modules_are_ours() {
    let _rng = rng_lock();
    for name in WITH_PEFT {
        let (base, config) =
            load_classifier::<B>(&dir(name).join("seqcls"), &Default::default(), 0).unwrap();
        let lora = LoraConfig {
            target_modules: config.family.default_lora_targets(),
            ..LoraConfig::default()
        };
        let model = base.with_lora(&lora).unwrap();
        let mut ours: Vec<String> = model
            .projection_paths()
            .into_iter()
            .filter(|(_, p)| p.lora.is_some())
            .map(|(path, _)| path)
            .collect();
        ours.sort();
        let peft = PeftAdapter::read(&dir(name).join("peft/adapter")).unwrap();
        let (peft_base, _) =
            load_classifier::<B>(&dir(name).join("seqcls"), &Default::default(), 0).unwrap();
        let mut theirs: Vec<String> = peft
            .apply(&peft_base)
            .unwrap()
            .projection_paths()
            .into_iter()
            .filter(|(_, p)| p.lora.is_some())
            .map(|(path, _)| path)
            .collect();
        theirs.sort();
        assert_eq!(ours, theirs, "{name}");
        // PEFT's `classifier` leaves DeBERTa's pooler and ModernBERT's head frozen.
        assert_eq!(
            model.head.saved_keys(&model.modules_to_save),
            ["classifier"],
            "{name}"
        );
    }
}

#[test]
fn our_adapters_and_merged_models_of_both_families_read_back_to_the_same_logits() {
    let _rng = rng_lock();
    for (name, _) in MODELS {
        let e = Expected::open(&dir(name).join("expected.safetensors"));
        let (base, config) =
            load_classifier::<B>(&dir(name).join("seqcls"), &Default::default(), 0).unwrap();
        let lora = LoraConfig {
            r: 4,
            target_modules: vec!["all-linear".into()],
            ..LoraConfig::default()
        };
        let model = with_random_adapter(base.clone().with_lora(&lora).unwrap(), &lora, 5);
        let want = family_logits(&model, &e);
        let out = tempfile::tempdir().unwrap();
        save_pretrained(
            &model,
            &config,
            &out.path().join("model"),
            imdb_lora_encoder::WeightDtype::F32,
        )
        .unwrap();
        save_adapter(&model, &lora, "base", &out.path().join("adapter")).unwrap();
        let (merged, merged_config) =
            load_classifier::<B>(&out.path().join("model"), &Default::default(), 0).unwrap();
        assert_eq!(merged_config.params, config.params, "{name}");
        assert_close(
            &format!("{name} merged export"),
            family_logits(&merged, &e),
            want.clone(),
            1e-5,
        );
        let reapplied = PeftAdapter::read(&out.path().join("adapter"))
            .unwrap()
            .apply(&base)
            .unwrap();
        assert_close(
            &format!("{name} adapter"),
            family_logits(&reapplied, &e),
            want,
            1e-5,
        );
    }
}

/// `fixtures/modern/<name>/from_rust/`: a merged model and an adapter as we write them
/// (default targets, seeded random factors, a trained classifier).
fn from_rust(name: &str) -> (SequenceClassifier<B>, EncoderConfig, LoraConfig) {
    let (base, config) =
        load_classifier::<B>(&dir(name).join("seqcls"), &Default::default(), 0).unwrap();
    let lora = LoraConfig {
        r: 4,
        target_modules: config.family.default_lora_targets(),
        ..LoraConfig::default()
    };
    let mut model = with_random_adapter(base.with_lora(&lora).unwrap(), &lora, 31);
    let device = Default::default();
    model.head = model
        .head
        .clone()
        .map_linear("classifier", |mut l| {
            <B as burn::tensor::backend::Backend>::seed(&device, 32);
            let noise = Tensor::<B, 2>::random(
                l.weight.dims(),
                burn::tensor::Distribution::Normal(0.0, 0.2),
                &device,
            );
            l.weight = l.weight.map(|w| w + noise);
            Ok(l)
        })
        .unwrap();
    (model, config, lora)
}

/// Regenerates `fixtures/modern/{deberta-v2,modernbert}/from_rust/{model,adapter}`; then run
/// `scripts/check_families_from_rust.py --set modern` (scripts/README.md).
#[test]
#[ignore = "writes fixtures; run by hand"]
fn regenerate_from_rust_fixtures() {
    let _rng = rng_lock();
    for name in WITH_PEFT {
        let (model, config, lora) = from_rust(name);
        let out = dir(name).join("from_rust");
        save_pretrained(
            &model,
            &config,
            &out.join("model"),
            imdb_lora_encoder::WeightDtype::F32,
        )
        .unwrap();
        save_adapter(
            &model,
            &lora,
            &format!("fixtures/modern/{name}/seqcls"),
            &out.join("adapter"),
        )
        .unwrap();
    }
}

/// What we write loads in transformers as `DebertaV2ForSequenceClassification` /
/// `ModernBertForSequenceClassification` with no missing or unexpected key, and in PEFT, and
/// both compute our logits (`scripts/check_families_from_rust.py --set modern`).
#[test]
fn our_files_of_both_families_give_our_logits_in_transformers_and_peft() {
    let _rng = rng_lock();
    for name in WITH_PEFT {
        let root = dir(name).join("from_rust");
        let e = Expected::open(&root.join("expected.safetensors"));
        let (model, _, _) = from_rust(name);
        let ours = family_logits(&model, &e);
        assert_close(
            &format!("{name} vs transformers"),
            ours.clone(),
            e.f32("logits_model"),
            1e-5,
        );
        assert_close(&format!("{name} vs PEFT"), ours, e.f32("logits_peft"), 1e-5);
        let (merged, _) =
            load_classifier::<B>(&root.join("model"), &Default::default(), 0).unwrap();
        assert_close(
            &format!("{name} committed model"),
            family_logits(&merged, &e),
            e.f32("logits_model"),
            1e-5,
        );
    }
}

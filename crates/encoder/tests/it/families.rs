//! Every family against transformers and PEFT on tiny random checkpoints of odd sizes (hidden
//! 36, head size 12, 2–3 layers; ELECTRA's embeddings 20 wide), made by
//! `scripts/make_fixture_families.py`: hidden states and logits of the sequence classifier
//! and of the bare model, PEFT adapters (default and all-linear targets) unmerged and merged,
//! and our own files read back.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use burn::tensor::{Int, Tensor};
use imdb_lora_encoder::{
    Encoder, Family, PeftAdapter, SequenceClassifier, load_classifier, save_adapter,
    save_pretrained,
};
use imdb_lora_lora::LoraConfig;

use crate::common::*;

/// Every fixture family: `(directory, family, model_type)`.
const FAMILIES: [(&str, Family, &str); 5] = [
    ("roberta", Family::Roberta, "roberta"),
    ("xlm-roberta", Family::Roberta, "xlm-roberta"),
    ("camembert", Family::Roberta, "camembert"),
    ("electra", Family::Electra, "electra"),
    ("distilbert", Family::DistilBert, "distilbert"),
];

fn dir(name: &str) -> std::path::PathBuf {
    fixture(&format!("families/{name}"))
}

fn types(e: &Expected) -> Option<Tensor<B, 2, Int>> {
    e.has("token_type_ids").then(|| e.i64("token_type_ids"))
}

fn family_logits(model: &SequenceClassifier<B>, e: &Expected) -> Tensor<B, 2> {
    model
        .forward(e.i64("input_ids"), e.i64("attention_mask"), types(e))
        .unwrap()
}

/// Every token's final state.
fn hidden(model: &SequenceClassifier<B>, e: &Expected) -> Tensor<B, 3> {
    match &model.encoder {
        Encoder::Bert(m) => {
            m.forward(e.i64("input_ids"), e.i64("attention_mask"), types(e))
                .unwrap()
                .last_hidden_state
        }
        Encoder::DistilBert(m) => m
            .forward(e.i64("input_ids"), e.i64("attention_mask"))
            .unwrap(),
        _ => panic!("DeBERTa and ModernBERT are modern.rs's"),
    }
}

#[test]
fn every_family_matches_transformers_hidden_states_and_logits() {
    for (name, family, model_type) in FAMILIES {
        let e = Expected::open(&dir(name).join("expected.safetensors"));
        let (model, config) =
            load_classifier::<B>(&dir(name).join("seqcls"), &Default::default(), 0).unwrap();
        assert_eq!(
            (config.family, config.model_type.as_deref()),
            (family, Some(model_type))
        );
        assert_eq!(config.label_name(1), "neutral");
        assert_close(
            &format!("{name} last_hidden_state"),
            hidden(&model, &e),
            e.f32("last_hidden_state"),
            1e-5,
        );
        assert_close(
            &format!("{name} logits"),
            family_logits(&model, &e),
            e.f32("logits"),
            1e-5,
        );
        // The bare model is the same backbone, without the family's prefix.
        let (bare, _) =
            load_classifier::<B>(&dir(name).join("bare"), &Default::default(), 0).unwrap();
        assert_close(
            &format!("{name} bare"),
            hidden(&bare, &e),
            e.f32("last_hidden_state"),
            1e-5,
        );
    }
}

#[test]
fn peft_adapters_of_every_family_give_peft_logits_unmerged_and_merged() {
    for (name, _, _) in FAMILIES {
        for adapter_dir in ["peft", "peft_all_linear"] {
            let root = dir(name).join(adapter_dir);
            if !root.exists() {
                continue;
            }
            let what = format!("{name}/{adapter_dir}");
            let e = Expected::open(&root.join("expected.safetensors"));
            let (base, _) =
                load_classifier::<B>(&dir(name).join("seqcls"), &Default::default(), 0).unwrap();
            let model = PeftAdapter::read(&root.join("adapter"))
                .unwrap()
                .apply(&base)
                .unwrap();
            assert!(model.num_lora_params() > 0, "{what}");
            assert_close(&what, family_logits(&model, &e), e.f32("logits"), 1e-5);
            assert_close(
                &format!("{what} merged"),
                family_logits(&model.clone().merge_lora(), &e),
                e.f32("logits_merged"),
                1e-5,
            );
        }
    }
}

#[test]
fn peft_s_default_targets_and_saved_modules_are_ours() {
    let _rng = rng_lock();
    for (name, family, _) in FAMILIES {
        let (base, config) =
            load_classifier::<B>(&dir(name).join("seqcls"), &Default::default(), 0).unwrap();
        let lora = LoraConfig {
            target_modules: config.family.default_lora_targets(),
            ..LoraConfig::default()
        };
        let model = base.with_lora(&lora).unwrap();
        let adapted: Vec<String> = model
            .projection_paths()
            .into_iter()
            .filter(|(_, p)| p.lora.is_some())
            .map(|(path, _)| path)
            .collect();
        // The adapter PEFT made with its own defaults names the same modules.
        let peft = PeftAdapter::read(&dir(name).join("peft/adapter")).unwrap();
        let mut peft_adapted: Vec<String> = adapted
            .iter()
            .filter(|p| {
                peft.lora
                    .target_modules
                    .iter()
                    .any(|t| imdb_lora_encoder::targets::target_matches(t, p))
            })
            .cloned()
            .collect();
        peft_adapted.sort();
        let mut ours = adapted.clone();
        ours.sort();
        assert_eq!(ours, peft_adapted, "{name}");
        assert_eq!(adapted.len(), 2 * config.num_hidden_layers, "{name}");
        // PEFT's `classifier` suffix takes DistilBERT's `pre_classifier` too.
        let saved = model.head.saved_keys(&model.modules_to_save);
        let want: &[&str] = match family {
            Family::Bert => &["classifier"],
            Family::Roberta | Family::Electra => &["classifier.dense", "classifier.out_proj"],
            Family::DistilBert => &["pre_classifier", "classifier"],
            Family::DebertaV2 | Family::ModernBert => unreachable!("not in FAMILIES"),
        };
        assert_eq!(saved, want, "{name}");
    }
}

#[test]
fn our_adapters_and_merged_models_of_every_family_read_back_to_the_same_logits() {
    let _rng = rng_lock();
    for (name, _, _) in FAMILIES {
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
        assert_eq!(merged_config.family, config.family, "{name}");
        assert_close(
            &format!("{name} merged export"),
            family_logits(&merged, &e),
            want.clone(),
            1e-5,
        );
        let adapter = PeftAdapter::read(&out.path().join("adapter")).unwrap();
        // all-linear is written as the module paths it selected, as PEFT writes it.
        assert!(
            adapter
                .lora
                .target_modules
                .iter()
                .all(|t| t.contains(".layer.")),
            "{name}: {:?}",
            adapter.lora.target_modules
        );
        let reapplied = adapter.apply(&base).unwrap();
        assert_close(
            &format!("{name} adapter"),
            family_logits(&reapplied, &e),
            want,
            1e-5,
        );
    }
}

#[test]
fn a_target_the_family_lacks_is_refused_naming_its_modules() {
    let (base, _) =
        load_classifier::<B>(&dir("distilbert").join("seqcls"), &Default::default(), 0).unwrap();
    let lora = LoraConfig::default(); // query, value: BERT's names
    let err = base.with_lora(&lora).unwrap_err().to_string();
    assert!(
        err.contains("\"query\"") && err.contains("attention.q_lin"),
        "{err}"
    );
}

#[test]
fn roberta_positions_start_after_the_padding_id() {
    // 40 rows, pad id 1: 38 tokens fit, 39 do not.
    let (model, config) =
        load_classifier::<B>(&dir("roberta").join("seqcls"), &Default::default(), 0).unwrap();
    assert_eq!(config.max_sequence_length(), 38);
    let device = Default::default();
    let ids = |n: usize| Tensor::<B, 2, Int>::ones([1, n], &device).mul_scalar(5);
    let mask = |n: usize| Tensor::<B, 2, Int>::ones([1, n], &device);
    assert!(model.forward(ids(38), mask(38), None).is_ok());
    let err = model
        .forward(ids(39), mask(39), None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("39") && err.contains("38"), "{err}");
}

/// `fixtures/families/<name>/from_rust/`: a merged model and an adapter of every family as
/// we write them (default targets, seeded random factors, a head unlike the checkpoint's).
fn from_rust(
    name: &str,
) -> (
    SequenceClassifier<B>,
    imdb_lora_encoder::EncoderConfig,
    LoraConfig,
) {
    let (base, config) =
        load_classifier::<B>(&dir(name).join("seqcls"), &Default::default(), 0).unwrap();
    let lora = LoraConfig {
        r: 4,
        target_modules: config.family.default_lora_targets(),
        ..LoraConfig::default()
    };
    let mut model = with_random_adapter(base.with_lora(&lora).unwrap(), &lora, 31);
    // A trained head: every saved head layer moved off the checkpoint's values.
    let device = Default::default();
    for key in model.head.saved_keys(&model.modules_to_save) {
        model.head = model
            .head
            .clone()
            .map_linear(key, |mut l| {
                let dims = l.weight.dims();
                <B as burn::tensor::backend::Backend>::seed(&device, 32);
                let noise = Tensor::<B, 2>::random(
                    dims,
                    burn::tensor::Distribution::Normal(0.0, 0.2),
                    &device,
                );
                l.weight = l.weight.map(|w| w + noise);
                Ok(l)
            })
            .unwrap();
    }
    (model, config, lora)
}

/// Regenerates `fixtures/families/*/from_rust/{model,adapter}`; then run
/// `scripts/check_families_from_rust.py` (scripts/README.md) to refresh their
/// `expected.safetensors` with what transformers and PEFT compute on them.
#[test]
#[ignore = "writes fixtures; run by hand"]
fn regenerate_from_rust_fixtures() {
    let _rng = rng_lock();
    for (name, _, _) in FAMILIES {
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
            &format!("fixtures/families/{name}/seqcls"),
            &out.join("adapter"),
        )
        .unwrap();
    }
}

/// The other direction: what we write loads in transformers (`AutoModelForSequenceClassification`
/// built the family's own class with no missing or unexpected key) and PEFT, and they compute
/// our logits (`scripts/check_families_from_rust.py` wrote `expected.safetensors`).
#[test]
fn our_files_of_every_family_give_our_logits_in_transformers_and_peft() {
    let _rng = rng_lock();
    for (name, _, _) in FAMILIES {
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
        // The committed files are what we write today.
        let (merged, _) =
            load_classifier::<B>(&root.join("model"), &Default::default(), 0).unwrap();
        assert_close(
            &format!("{name} committed model"),
            family_logits(&merged, &e),
            e.f32("logits_model"),
            1e-5,
        );
        let (base, _) =
            load_classifier::<B>(&dir(name).join("seqcls"), &Default::default(), 0).unwrap();
        let adapted = PeftAdapter::read(&root.join("adapter"))
            .unwrap()
            .apply(&base)
            .unwrap();
        assert_close(
            &format!("{name} committed adapter"),
            family_logits(&adapted, &e),
            e.f32("logits_peft"),
            1e-5,
        );
    }
}

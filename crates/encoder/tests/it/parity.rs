//! Numerical parity with Hugging Face `transformers` on reference outputs it produced
//! (`scripts/make_fixtures.py`): a tiny random BERT in three key conventions, and the real
//! all-MiniLM-L6-v2 from the shared Hub mirror.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common::*;
use burn::backend::Autodiff;
use burn::tensor::Tensor;
use imdb_lora_encoder::bert::BertModel;
use imdb_lora_encoder::{EncoderConfig, Family, MappedFile, detect_prefix, load_classifier};

fn tiny_expected() -> Expected {
    Expected::open(&fixture("tiny_bert/expected.safetensors"))
}

#[test]
fn tiny_seqcls_matches_transformers_hidden_pooled_and_logits() {
    let (model, config) =
        load_classifier::<B>(&fixture("tiny_bert/seqcls"), &Default::default(), 0).unwrap();
    assert_eq!(config.label_name(1), "pos");
    let e = tiny_expected();
    let (ids, mask, types) = (
        e.i64("input_ids"),
        e.i64("attention_mask"),
        e.i64("token_type_ids"),
    );
    let out = bert(&model)
        .forward(ids.clone(), mask.clone(), Some(types.clone()))
        .unwrap();
    assert_close(
        "last_hidden_state",
        out.last_hidden_state,
        e.f32("last_hidden_state"),
        1e-5,
    );
    assert_close(
        "pooler_output",
        out.pooler_output.unwrap(),
        e.f32("pooler_output"),
        1e-5,
    );
    let logits = model.forward(ids, mask, Some(types)).unwrap();
    assert_close("logits", logits, e.f32("logits"), 1e-5);
}

#[test]
fn bare_and_pretraining_conventions_load_the_same_backbone() {
    let e = tiny_expected();
    for dir in ["tiny_bert/bare", "tiny_bert/pretraining"] {
        let (model, _) = load_classifier::<B>(&fixture(dir), &Default::default(), 0).unwrap();
        let out = bert(&model)
            .forward(
                e.i64("input_ids"),
                e.i64("attention_mask"),
                Some(e.i64("token_type_ids")),
            )
            .unwrap();
        assert_close(dir, out.last_hidden_state, e.f32("last_hidden_state"), 1e-5);
        assert_close(
            dir,
            out.pooler_output.unwrap(),
            e.f32("pooler_output"),
            1e-5,
        );
    }
    let file = MappedFile::open(&fixture("tiny_bert/pretraining/model.safetensors")).unwrap();
    assert_eq!(
        detect_prefix(&file.tensors().unwrap(), Family::Bert).unwrap(),
        "bert."
    );
    let file = MappedFile::open(&fixture("tiny_bert/bare/model.safetensors")).unwrap();
    assert_eq!(
        detect_prefix(&file.tensors().unwrap(), Family::Bert).unwrap(),
        ""
    );
}

#[test]
fn fresh_head_is_seeded_and_initialised_like_transformers() {
    let device = Default::default();
    let (a, config) = load_classifier::<B>(&fixture("tiny_bert/bare"), &device, 7).unwrap();
    let (b, _) = load_classifier::<B>(&fixture("tiny_bert/bare"), &device, 7).unwrap();
    let (c, _) = load_classifier::<B>(&fixture("tiny_bert/bare"), &device, 8).unwrap();
    let wa = a.head.output().weight.val();
    assert_eq!(wa.dims(), [config.hidden_size, 2]);
    assert_eq!(max_abs_diff(wa.clone(), b.head.output().weight.val()), 0.0);
    assert!(max_abs_diff(wa.clone(), c.head.output().weight.val()) > 0.0);
    let bias: Vec<f32> = a
        .head
        .output()
        .bias
        .clone()
        .unwrap()
        .val()
        .into_data()
        .to_vec()
        .unwrap();
    assert_eq!(bias, [0.0, 0.0]);
    let w: Vec<f32> = wa.into_data().to_vec().unwrap();
    let std = (w.iter().map(|v| v * v).sum::<f32>() / w.len() as f32).sqrt();
    assert!(
        (0.01..0.03).contains(&std),
        "classifier std {std}, expected ~0.02"
    );
}

#[test]
fn training_path_attention_matches_fused_inference_path() {
    // On an autodiff backend the explicit softmax path runs; with every dropout at 0 it must
    // agree with the fused attention used for inference.
    let dir = fixture("tiny_bert/seqcls");
    let mut config = EncoderConfig::from_file(&dir.join("config.json")).unwrap();
    config.hidden_dropout_prob = 0.0;
    config.attention_probs_dropout_prob = 0.0;
    let file = MappedFile::open(&dir.join("model.safetensors")).unwrap();
    let mut w = file.tensors().unwrap();
    w.set_prefix("bert.");
    let device = Default::default();
    let model = BertModel::<Autodiff<B>>::load(&w, &config, &device).unwrap();
    let e = tiny_expected();
    let out = model
        .forward(
            Tensor::from_inner(e.i64("input_ids")),
            Tensor::from_inner(e.i64("attention_mask")),
            Some(Tensor::from_inner(e.i64("token_type_ids"))),
        )
        .unwrap();
    assert_close(
        "explicit attention",
        out.last_hidden_state.inner(),
        e.f32("last_hidden_state"),
        1e-5,
    );
}

#[test]
fn minilm_matches_transformers_on_real_sentences() {
    let (model, config) = load_classifier::<B>(&minilm_dir(), &Default::default(), 0).unwrap();
    assert_eq!((config.hidden_size, config.num_hidden_layers), (384, 6));
    let e = Expected::open(&fixture("minilm/expected.safetensors"));
    let out = bert(&model)
        .forward(
            e.i64("input_ids"),
            e.i64("attention_mask"),
            Some(e.i64("token_type_ids")),
        )
        .unwrap();
    // Padded positions' states are compared too: they are defined and transformers keeps them.
    assert_close(
        "last_hidden_state",
        out.last_hidden_state,
        e.f32("last_hidden_state"),
        1e-4,
    );
    assert_close(
        "pooler_output",
        out.pooler_output.unwrap(),
        e.f32("pooler_output"),
        1e-4,
    );
}

#[test]
fn legacy_gamma_beta_layer_norm_names_load_the_same() {
    // Checkpoints converted from TensorFlow (the original bert-base-uncased among them) name
    // LayerNorm parameters `gamma`/`beta`; transformers renames them on load, so do we.
    let src = fixture("tiny_bert/pretraining");
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(src.join("config.json"), dir.path().join("config.json")).unwrap();
    let bytes = std::fs::read(src.join("model.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut renamed = std::collections::BTreeMap::new();
    for (key, view) in st.tensors() {
        let key = key
            .replace("LayerNorm.weight", "LayerNorm.gamma")
            .replace("LayerNorm.bias", "LayerNorm.beta");
        let tensor = imdb_lora_encoder::OwnedTensor {
            dtype: view.dtype(),
            shape: view.shape().to_vec(),
            data: view.data().to_vec(),
        };
        renamed.insert(key, tensor);
    }
    assert!(renamed.contains_key("bert.embeddings.LayerNorm.gamma"));
    imdb_lora_encoder::write_safetensors(&dir.path().join("model.safetensors"), &renamed, None)
        .unwrap();
    let (model, _) = load_classifier::<B>(dir.path(), &Default::default(), 0).unwrap();
    let e = tiny_expected();
    let out = bert(&model)
        .forward(
            e.i64("input_ids"),
            e.i64("attention_mask"),
            Some(e.i64("token_type_ids")),
        )
        .unwrap();
    assert_close(
        "gamma/beta",
        out.last_hidden_state,
        e.f32("last_hidden_state"),
        1e-5,
    );
}

//! bf16 mixed precision against transformers + PEFT under `torch.autocast(bfloat16)`, on the
//! real all-MiniLM-L6-v2 with a PEFT adapter and 20 real IMDb reviews
//! (`fixtures/bf16/`, made by `scripts/make_fixture_bf16.py`); dtypes where they must be;
//! gradients through the bf16 encoder reach the f32 adapters; saving in another dtype.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use burn::backend::Autodiff;
use burn::tensor::{DType, Tensor};

use crate::common::*;
use imdb_lora_encoder::{
    PeftAdapter, Precision, SequenceClassifier, WeightDtype, load_classifier, save_pretrained,
};

fn minilm_with_adapter() -> SequenceClassifier<B> {
    let (base, _) = load_classifier::<B>(&minilm_dir(), &Default::default(), 0).unwrap();
    PeftAdapter::read(&fixture("peft/minilm/adapter"))
        .unwrap()
        .apply(&base)
        .unwrap()
}

/// Logits on the fixture's first 4 reviews, cut to 64 tokens: for the tests that compare two
/// of our own models, where the full set would only cost time.
fn few_logits(model: &SequenceClassifier<B>, e: &Expected) -> Tensor<B, 2> {
    let cut = |t: Tensor<B, 2, burn::tensor::Int>| t.slice([0..4, 0..64]);
    model
        .forward(
            cut(e.i64("input_ids")),
            cut(e.i64("attention_mask")),
            Some(cut(e.i64("token_type_ids"))),
        )
        .unwrap()
}

#[test]
fn minilm_bf16_logits_match_autocast() {
    let e = Expected::open(&fixture("bf16/expected.safetensors"));
    let f32_model = minilm_with_adapter();
    let f32_logits = logits(&f32_model, &e);
    // The f32 path is the reference's f32 path (the parity tests' tolerance).
    assert_close("f32", f32_logits.clone(), e.f32("logits_f32"), 1e-4);

    let model = f32_model.with_precision(Precision::Bf16);
    assert_eq!(model.precision(), Precision::Bf16);
    let layer = &bert(&model).encoder.layer[0].attention.self_attention.query;
    assert_eq!(
        layer.base_layer.float().unwrap().weight.val().dtype(),
        DType::BF16
    );
    let adapter = layer.lora.as_ref().expect("query is adapted");
    assert_eq!(
        adapter.lora_a.val().dtype(),
        DType::F32,
        "LoRA masters stay f32"
    );
    assert_eq!(model.head.output().weight.val().dtype(), DType::F32);

    let got = logits(&model, &e);
    assert_eq!(got.dtype(), DType::F32, "logits are f32");
    // How far bf16 moves the logits at all, in PyTorch (≈ 2.3e-3 here): ours must move them
    // by as much (it really computed in bf16) and land as close to autocast as autocast is
    // to f32. Our rounding points differ from autocast's in two places (the residual sums
    // and the layer norms' outputs are bf16 here, f32 there), hence not bit-equality.
    let spread = max_abs_diff::<2>(e.f32("logits_autocast"), e.f32("logits_f32"));
    let moved = max_abs_diff(got.clone(), f32_logits);
    assert!(moved > 1e-4, "bf16 changed the logits by only {moved:e}");
    let diff = max_abs_diff(got.clone(), e.f32("logits_autocast"));
    assert!(
        diff <= 2.0 * spread,
        "bf16 vs autocast: max |diff| = {diff:e} > 2 × PyTorch's own bf16 spread {spread:e}"
    );
    // Same predictions as autocast on every review.
    let ours: Vec<i64> = got.argmax(1).into_data().convert::<i64>().to_vec().unwrap();
    let theirs: Vec<i64> = e
        .f32::<2>("logits_autocast")
        .argmax(1)
        .into_data()
        .convert::<i64>()
        .to_vec()
        .unwrap();
    assert_eq!(ours, theirs);
}

#[test]
fn bf16_gradients_reach_the_f32_adapters_and_head() {
    type AB = Autodiff<B>;
    // Without dropout, so both precisions see the same function (their masks would differ).
    let dir = minilm_dir();
    let mut config = imdb_lora_encoder::EncoderConfig::from_file(&dir.join("config.json")).unwrap();
    config.hidden_dropout_prob = 0.0;
    config.attention_probs_dropout_prob = 0.0;
    let base = imdb_lora_encoder::load_classifier_with_config::<AB>(
        &dir.join("model.safetensors"),
        &config,
        &Default::default(),
        0,
    )
    .unwrap();
    let mut model = PeftAdapter::read(&fixture("peft/minilm/adapter"))
        .unwrap()
        .apply(&base)
        .unwrap();
    model = model
        .map_targets(&imdb_lora_lora::LoraConfig::default(), |mut linear| {
            if let Some(adapter) = linear.lora.as_mut() {
                adapter.lora_dropout.prob = 0.0;
            }
            Ok(linear)
        })
        .unwrap();
    let e = Expected::open(&fixture("bf16/expected.safetensors"));
    let slice = |t: Tensor<B, 2, burn::tensor::Int>| Tensor::from_inner(t.slice([0..4, 0..96]));
    let forward = |m: &SequenceClassifier<AB>| {
        m.forward(
            slice(e.i64("input_ids")),
            slice(e.i64("attention_mask")),
            Some(slice(e.i64("token_type_ids"))),
        )
        .unwrap()
    };
    let grad_of = |m: &SequenceClassifier<AB>| {
        let grads = forward(m).sum().backward();
        let adapter = bert(m).encoder.layer[2]
            .attention
            .self_attention
            .value
            .lora
            .as_ref()
            .unwrap();
        let a = adapter.lora_a.val().grad(&grads).unwrap();
        let head = m.head.output().weight.val().grad(&grads).unwrap();
        (a, head)
    };
    let (a32, head32) = grad_of(&model);
    let bf16 = model.with_precision(Precision::Bf16);
    let (a16, head16) = grad_of(&bf16);
    assert_eq!(a16.dtype(), DType::F32, "the master's gradient is f32");
    // Relative to the gradient's scale: bf16 keeps ≈ 3 significant digits.
    for (what, got, want) in [("lora_A", a16, a32), ("classifier", head16, head32)] {
        let scale = want.clone().abs().max().into_scalar();
        let diff = max_abs_diff(got, want);
        assert!(
            diff <= 0.05 * scale,
            "{what}: bf16 gradient off by {diff:e} (scale {scale:e})"
        );
        assert!(diff > 0.0, "{what}: bf16 gradient identical to f32's");
    }
}

#[test]
fn save_dtype_is_written_and_loads_back() {
    let model = minilm_with_adapter();
    let (_, config) = load_classifier::<B>(&minilm_dir(), &Default::default(), 0).unwrap();
    let config = config.with_labels(&["neg", "pos"]);
    let dir = tempfile::tempdir().unwrap();
    save_pretrained(&model, &config, dir.path(), WeightDtype::Bf16).unwrap();
    let weights = dir.path().join("model.safetensors");
    assert_eq!(
        WeightDtype::of_checkpoint(&weights).unwrap(),
        WeightDtype::Bf16
    );
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("config.json")).unwrap()).unwrap();
    assert_eq!(json["dtype"], "bfloat16");
    // Half the bytes of the f32 checkpoint (22.7 M parameters).
    let size = std::fs::metadata(&weights).unwrap().len();
    assert!((45_000_000..46_500_000).contains(&size), "{size} bytes");

    // Loads back (widened to f32) with the merged adapter's predictions, to bf16 rounding.
    let e = Expected::open(&fixture("bf16/expected.safetensors"));
    let (reloaded, _) = load_classifier::<B>(dir.path(), &Default::default(), 0).unwrap();
    let diff = max_abs_diff(few_logits(&reloaded, &e), few_logits(&model, &e));
    assert!(
        diff < 0.05 && diff > 0.0,
        "bf16 file vs f32 model: {diff:e}"
    );

    // Computed in bf16, a bf16 checkpoint keeps its weights exactly: widened on load and
    // rounded back, the identity for values that were bf16 to begin with.
    let query = |m: &SequenceClassifier<B>| {
        let w = bert(m).encoder.layer[3]
            .attention
            .self_attention
            .query
            .base_layer
            .float()
            .unwrap()
            .weight
            .val();
        w.cast(DType::F32).into_data().to_vec::<f32>().unwrap()
    };
    let kept = reloaded.clone().with_precision(Precision::Bf16);
    assert_eq!(query(&kept), query(&reloaded));
}

#[test]
fn a_bf16_run_saved_from_an_f32_base_keeps_its_full_precision() {
    // What `imdb-lora train --precision bf16` does before saving: the base loaded again in
    // f32 takes the trained adapters and head, and merges in f32.
    let trained = minilm_with_adapter().with_precision(Precision::Bf16);
    let (fresh, _) = load_classifier::<B>(&minilm_dir(), &Default::default(), 0).unwrap();
    let restored = fresh.with_trained_from(&trained).unwrap();
    assert_eq!(restored.precision(), Precision::F32);
    let e = Expected::open(&fixture("bf16/expected.safetensors"));
    // Exactly the f32 model with the adapter: nothing was rounded on the way.
    let diff = max_abs_diff(
        few_logits(&restored, &e),
        few_logits(&minilm_with_adapter(), &e),
    );
    assert_eq!(diff, 0.0);

    // A merged adapter cannot move to another base (its update is inside the old weights).
    let merged = minilm_with_adapter().merge_lora();
    let (fresh, _) = load_classifier::<B>(&minilm_dir(), &Default::default(), 0).unwrap();
    let err = fresh.with_trained_from(&merged).unwrap_err().to_string();
    assert!(
        err.contains("encoder.layer.0.attention.self.query") && err.contains("merged"),
        "{err}"
    );
}

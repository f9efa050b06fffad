//! The classifier's pruned last layer (`BertModel::pooled`, `BertLayer::forward_cls`) against
//! the full forward pass: the same pooled output, and the same gradients for every adapter.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common::*;
use burn::backend::Autodiff;
use burn::module::Param;
use burn::tensor::backend::Backend;
use burn::tensor::{Distribution, Int, Tensor, TensorData};
use imdb_lora_encoder::layers::TransformerLayer as _;
use imdb_lora_encoder::{EncoderConfig, SequenceClassifier, load_classifier_with_config};
use imdb_lora_lora::{LoraAdapter, LoraConfig};

type A = Autodiff<B>;

/// The tiny fixture model on the autodiff backend, dropout off, with seeded non-trivial
/// adapters on every projection (so every layer's query, key and value carry gradients).
fn tiny(seed: u64) -> SequenceClassifier<A> {
    let dir = fixture("tiny_bert/seqcls");
    let mut config = EncoderConfig::from_file(&dir.join("config.json")).unwrap();
    config.hidden_dropout_prob = 0.0;
    config.attention_probs_dropout_prob = 0.0;
    let device = Default::default();
    let mut model =
        load_classifier_with_config::<A>(&dir.join("model.safetensors"), &config, &device, 0)
            .unwrap();
    let lora = LoraConfig {
        r: 4,
        lora_dropout: 0.0,
        target_modules: ["query", "key", "value", "dense"]
            .map(String::from)
            .to_vec(),
        ..LoraConfig::default()
    };
    A::seed(&device, seed);
    model = model
        .map_targets(&lora, |linear| {
            let [d_in, d_out] = linear.dims();
            let a = Tensor::random([d_in, lora.r], Distribution::Normal(0.0, 0.3), &device);
            let b = Tensor::random([lora.r, d_out], Distribution::Normal(0.0, 0.3), &device);
            linear.with_loaded_adapter(LoraAdapter::from_factors(&lora, a, b, d_in, d_out)?)
        })
        .unwrap();
    model
}

/// Three sequences of 9, 6 and 2 real tokens out of 9 (`[CLS]` = 2 first).
fn inputs() -> (Tensor<A, 2, Int>, Tensor<A, 2, Int>) {
    let lens = [9usize, 6, 2];
    let ids: Vec<i64> = lens
        .iter()
        .enumerate()
        .flat_map(|(b, &n)| {
            (0..9).map(move |i| match i {
                0 => 2,
                i if i < n => ((b * 31 + i * 17) % 90 + 5) as i64,
                _ => 0,
            })
        })
        .collect();
    let mask: Vec<i64> = lens
        .iter()
        .flat_map(|&n| (0..9).map(move |i| i64::from(i < n)))
        .collect();
    let device = Default::default();
    (
        Tensor::from_data(TensorData::new(ids, [3, 9]), &device),
        Tensor::from_data(TensorData::new(mask, [3, 9]), &device),
    )
}

/// Every adapter factor's gradient, by module path, after backpropagating `Σ out ⊙ w`.
fn adapter_grads(
    model: &SequenceClassifier<A>,
    out: Tensor<A, 2>,
    w: &Tensor<B, 2>,
) -> Vec<(String, Tensor<B, 2>)> {
    let grads = (out * Tensor::from_inner(w.clone())).sum().backward();
    let mut found = Vec::new();
    for (i, layer) in bert(model).encoder.layer.iter().enumerate() {
        for (name, linear) in layer.projections() {
            let adapter = linear.lora.as_ref().expect("every projection is adapted");
            let factors: [(&str, &Param<Tensor<A, 2>>); 2] =
                [("A", &adapter.lora_a), ("B", &adapter.lora_b)];
            for (factor, param) in factors {
                let grad = param
                    .val()
                    .grad(&grads)
                    .unwrap_or_else(|| panic!("layer {i} {name} lora_{factor}: no gradient"));
                found.push((format!("layer {i} {name} lora_{factor}"), grad));
            }
        }
    }
    found
}

#[test]
fn pooled_equals_the_full_forwards_pooler_output_with_the_same_gradients() {
    let _rng = rng_lock();
    let model = tiny(7);
    let (ids, mask) = inputs();
    let full = bert(&model)
        .forward(ids.clone(), mask.clone(), None)
        .unwrap()
        .pooler_output
        .unwrap();
    let pooled = bert(&model).pooled(ids, mask, None).unwrap();
    assert_eq!(pooled.dims(), [3, 32]);
    assert_close(
        "pooled output",
        pooled.clone().inner(),
        full.clone().inner(),
        1e-5,
    );

    B::seed(&Default::default(), 8);
    let w = Tensor::<B, 2>::random([3, 32], Distribution::Normal(0.0, 1.0), &Default::default());
    let want = adapter_grads(&model, full, &w);
    let got = adapter_grads(&model, pooled, &w);
    assert_eq!(want.len(), 2 * 6 * 2);
    for ((name, g), (_, w)) in got.into_iter().zip(want) {
        let scale = w.clone().abs().max().into_scalar().max(1e-3);
        assert!(
            scale > 1e-6,
            "{name}: gradient vanishes, the test proves nothing"
        );
        assert_close(&name, g.div_scalar(scale), w.div_scalar(scale), 1e-4);
    }
}

#[test]
fn classifier_logits_match_the_head_on_the_full_forward() {
    let _rng = rng_lock();
    let model = tiny(9);
    let (ids, mask) = inputs();
    let logits = model.forward(ids.clone(), mask.clone(), None).unwrap();
    let full = bert(&model)
        .forward(ids, mask, None)
        .unwrap()
        .pooler_output
        .unwrap();
    let want = bert_head(&model).classifier.forward(full);
    assert_close("logits", logits.inner(), want.inner(), 1e-5);
}

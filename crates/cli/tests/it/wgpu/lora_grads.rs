//! The LoRA forward and backward pass on wgpu against the CPU backend (Flex, whose own
//! kernels are checked against Burn's compositions and transformers): the same adapter file
//! loaded on both, dropout off, the same loss; logits and the gradient of every adapter factor
//! and of the head agree to rounding. BERT, DeBERTa-v3 (its position terms through the
//! composed biased attention) and ModernBERT (rotary, the sliding window, GeGLU).

use burn::backend::Autodiff;
use burn::module::Param;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Distribution, Tensor, TensorData};
use imdb_lora_encoder::{
    EncoderConfig, PeftAdapter, SequenceClassifier, load_classifier_with_config, save_adapter,
};
use imdb_lora_lora::{LoraAdapter, LoraConfig};

use super::*;

/// Every projection adapted, rank 4, no dropout (so both backends compute the same function).
fn lora_config() -> LoraConfig {
    LoraConfig {
        r: 4,
        lora_alpha: 8.0,
        lora_dropout: 0.0,
        target_modules: vec!["all-linear".into()],
        ..LoraConfig::default()
    }
}

/// The fixtures: (model directory, reference inputs, with token types).
const CASES: [(&str, &str, bool); 3] = [
    ("tiny_bert/seqcls", "tiny_bert/expected.safetensors", true),
    (
        "modern/deberta-v2/seqcls",
        "modern/deberta-v2/expected.safetensors",
        true,
    ),
    (
        "modern/modernbert/seqcls",
        "modern/modernbert/expected.safetensors",
        false,
    ),
];

/// The tiny model, dropout off, on backend `B`.
fn base<B: imdb_lora_encoder::KernelBackend>(
    seqcls: &str,
    device: &B::Device,
) -> SequenceClassifier<B> {
    let dir = fixture(seqcls);
    let mut config = EncoderConfig::from_file(&dir.join("config.json")).unwrap();
    config.hidden_dropout_prob = 0.0;
    config.attention_probs_dropout_prob = 0.0;
    config.classifier_dropout = Some(0.0);
    load_classifier_with_config::<B>(&dir.join("model.safetensors"), &config, device, 0).unwrap()
}

/// Writes a seeded adapter with non-zero factors and a random head (made on the CPU) to `dir`.
fn write_adapter(seqcls: &str, dir: &std::path::Path) {
    let device = Default::default();
    let lora = lora_config();
    let mut model = base::<F>(seqcls, &device);
    F::seed(&device, 21);
    model = model
        .map_targets(&lora, |linear| {
            let [d_in, d_out] = linear.dims();
            let a = Tensor::random([d_in, lora.r], Distribution::Normal(0.0, 0.3), &device);
            let b = Tensor::random([lora.r, d_out], Distribution::Normal(0.0, 0.3), &device);
            linear.with_loaded_adapter(LoraAdapter::from_factors(&lora, a, b, d_in, d_out)?)
        })
        .unwrap();
    model.head = model
        .head
        .map_linear("classifier", |mut classifier| {
            let [d, n] = classifier.weight.dims();
            classifier.weight = Param::from_tensor(Tensor::random(
                [d, n],
                Distribution::Normal(0.0, 0.5),
                &device,
            ));
            Ok(classifier)
        })
        .unwrap();
    save_adapter(&model, &lora, seqcls, dir).unwrap();
}

/// Logits and the gradients of `Σ logits ⊙ w`: every adapter factor's, by path, then the head's.
fn forward_backward<A: AutodiffBackend + imdb_lora_encoder::KernelBackend>(
    (seqcls, expected, types): (&str, &str, bool),
    adapter: &std::path::Path,
    device: &A::Device,
) -> (Vec<f32>, Vec<(String, Vec<f32>)>) {
    let model = PeftAdapter::read(adapter)
        .unwrap()
        .apply(&base::<A>(seqcls, device))
        .unwrap();
    let e = Expected::open(&fixture(expected));
    let logits = model
        .forward(
            e.ids::<A>("input_ids", device),
            e.ids::<A>("attention_mask", device),
            types.then(|| e.ids::<A>("token_type_ids", device)),
        )
        .unwrap();
    let [rows, cols] = logits.dims();
    // A fixed, uneven weighting (not from an RNG, so both backends see the same one).
    let w: Vec<f32> = (0..rows * cols).map(|i| 0.5 + 0.37 * i as f32).collect();
    let w = Tensor::<A, 2>::from_data(TensorData::new(w, [rows, cols]), device);
    let grads = (logits.clone() * w).sum().backward();
    let mut found = Vec::new();
    for (i, name, linear) in model.encoder.projections() {
        {
            let adapter = linear.lora.as_ref().expect("every projection is adapted");
            for (factor, param) in [("A", &adapter.lora_a), ("B", &adapter.lora_b)] {
                let grad = param
                    .val()
                    .grad(&grads)
                    .unwrap_or_else(|| panic!("layer {i} {name} lora_{factor}: no gradient"));
                found.push((format!("layer {i} {name} lora_{factor}"), values(grad)));
            }
        }
    }
    let head = model
        .head
        .output()
        .weight
        .val()
        .grad(&grads)
        .expect("head gradient");
    found.push(("classifier.weight".into(), values(head)));
    (values(logits.inner()), found)
}

#[test]
fn lora_forward_and_gradients_match_the_cpu_backend() {
    let Some(device) = device() else { return };
    let _lock = device_lock();
    for case in CASES {
        let dir = tempfile::tempdir().unwrap();
        write_adapter(case.0, dir.path());
        let (cpu_logits, cpu_grads) =
            forward_backward::<Autodiff<F>>(case, dir.path(), &Default::default());
        let (gpu_logits, gpu_grads) = forward_backward::<Autodiff<W>>(case, dir.path(), &device);
        compare(case.0, (gpu_logits, gpu_grads), (cpu_logits, cpu_grads));
    }
}

/// The GPU's logits and gradients against the CPU's.
fn compare(
    what: &str,
    (gpu_logits, gpu_grads): (Vec<f32>, Vec<(String, Vec<f32>)>),
    (cpu_logits, cpu_grads): (Vec<f32>, Vec<(String, Vec<f32>)>),
) {
    // Relative to the logits' size, as the gradients below: all-linear adapters of std 0.3
    // make large logits (ModernBERT's reach tens), whose rounding grows with them.
    let scale = cpu_logits.iter().fold(1.0f32, |m, v| m.max(v.abs()));
    let logits_diff = max_abs_diff(what, &gpu_logits, &cpu_logits) / scale;
    eprintln!(
        "{what}: LoRA logits: max |Δ| / max(1, max |logit|) = {logits_diff:.2e} (scale {scale:.1})"
    );
    assert!(
        gpu_logits.iter().all(|v| v.is_finite()) && logits_diff <= 1e-5,
        "{what}: LoRA logits differ by {logits_diff:e} relative"
    );
    assert_eq!(
        gpu_grads.len(),
        cpu_grads.len(),
        "{what}: every factor and the head"
    );
    assert!(
        gpu_grads.len() > 2 * 4,
        "{what}: every layer's projections adapted"
    );
    let mut worst = (0.0f32, String::new());
    for ((name, gpu), (cpu_name, cpu)) in gpu_grads.iter().zip(&cpu_grads) {
        assert_eq!(name, cpu_name);
        assert!(
            gpu.iter().all(|v| v.is_finite()),
            "{name}: non-finite gradient"
        );
        let scale = cpu.iter().fold(1.0f32, |m, v| m.max(v.abs()));
        let diff = max_abs_diff(name, gpu, cpu) / scale;
        if diff > worst.0 {
            worst = (diff, name.clone());
        }
        assert!(diff <= 5e-5, "{name}: max |Δ| / max(1, max |g|) = {diff:e}");
    }
    eprintln!(
        "{what} gradients: worst relative |Δ| = {:.2e} ({})",
        worst.0, worst.1
    );
}

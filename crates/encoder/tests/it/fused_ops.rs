//! The fused Flex kernels (`imdb_lora_kernels::flex`) against Burn's own compositions: outputs in
//! inference, gradients through `Autodiff<Flex>`, and dropout masks that are regenerated,
//! not stored, in the backward pass.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use burn::backend::{Autodiff, Flex};
use burn::nn::Dropout;
use burn::tensor::activation::{gelu, softmax};
use burn::tensor::backend::Backend;
use burn::tensor::module::linear;
use burn::tensor::{Distribution, Int, Tensor, TensorData};
use imdb_lora_encoder::{AttentionMask, KernelBackend};
use imdb_lora_kernels::{attention_composed, layer_norm_composed, merge_heads, split_heads};

use crate::common::rng_lock;

type A = Autodiff<Flex>;

/// Seeds Burn's RNG and draws: callers hold [`rng_lock`].
fn random<B: Backend, const D: usize>(shape: [usize; D], seed: u64) -> Tensor<B, D> {
    B::seed(&Default::default(), seed);
    Tensor::random(shape, Distribution::Normal(0.0, 1.0), &Default::default())
}

/// A batch of 3 with 7, 5 and 2 real tokens out of 7.
fn mask<B: Backend>() -> AttentionMask<B> {
    mask_of(&[7, 5, 2], 7)
}

/// Padding mask for sequences of `lens` real tokens out of `seq`.
fn mask_of<B: Backend>(lens: &[usize], seq: usize) -> AttentionMask<B> {
    let values: Vec<i64> = lens
        .iter()
        .flat_map(|&n| (0..seq).map(move |i| i64::from(i < n)))
        .collect();
    AttentionMask::new(Tensor::<B, 2, Int>::from_data(
        TensorData::new(values, [lens.len(), seq]),
        &Default::default(),
    ))
}

fn max_diff<B: Backend, const D: usize>(a: Tensor<B, D>, b: Tensor<B, D>) -> f32 {
    (a - b)
        .abs()
        .max()
        .into_scalar()
        .to_string()
        .parse()
        .unwrap()
}

const SHAPE: [usize; 4] = [3, 4, 7, 8];

/// The backend's attention on split-head tensors `[batch, heads, seq, head_dim]`: heads
/// merged into the hidden dimension (the kernel's layout), the kernel, heads split again.
fn fused<B: KernelBackend>(
    q: Tensor<B, 4>,
    k: Tensor<B, 4>,
    v: Tensor<B, 4>,
    m: &AttentionMask<B>,
    dropout: f64,
) -> Tensor<B, 4> {
    let heads = q.dims()[1];
    let [q, k, v] = [q, k, v].map(merge_heads);
    split_heads(B::kernel_attention(q, k, v, heads, m, dropout), heads)
}

#[test]
fn inference_attention_matches_burns_fused_attention() {
    let _g = rng_lock();
    let (q, k, v) = (
        random::<Flex, 4>(SHAPE, 1),
        random::<Flex, 4>(SHAPE, 2),
        random::<Flex, 4>(SHAPE, 3),
    );
    let m = mask::<Flex>();
    let fused = fused::<Flex>(q.clone(), k.clone(), v.clone(), &m, 0.1);
    let reference = attention_composed(q, k, v, &m, 0.1);
    let d = max_diff(fused, reference);
    assert!(d < 1e-5, "max difference {d}");
}

#[test]
fn gelu_matches_burns_exact_gelu_forward_and_backward() {
    let _g = rng_lock();
    let x = random::<Flex, 3>([4, 9, 33], 4).mul_scalar(3.0);
    let d = max_diff(Flex::kernel_gelu(x.clone()), gelu(x.clone()));
    assert!(d < 1e-6, "forward: {d}");

    let w = random::<Flex, 3>([4, 9, 33], 5);
    let grad_of = |fused: bool| {
        let x = Tensor::<A, 3>::from_inner(x.clone()).require_grad();
        let y = if fused {
            A::kernel_gelu(x.clone())
        } else {
            gelu(x.clone())
        };
        let grads = (y * Tensor::from_inner(w.clone())).sum().backward();
        x.grad(&grads).unwrap()
    };
    let d = max_diff(grad_of(true), grad_of(false));
    assert!(d < 1e-5, "backward: {d}");
}

/// The portable exact GELU of the autodiff backends without a kernel (CUDA, wgpu, NdArray):
/// its gradient is the exact derivative `Φ(x) + x·φ(x)` (against f64 on the host and the Flex
/// kernel), not the tanh approximation's that Burn's own GELU backward uses on those backends.
#[test]
fn portable_exact_gelu_has_the_exact_derivative() {
    let _g = rng_lock();
    let x = random::<Flex, 3>([4, 9, 33], 6).mul_scalar(3.0);
    let w = random::<Flex, 3>([4, 9, 33], 7);
    let grad_of = |portable: bool| {
        let x = Tensor::<A, 3>::from_inner(x.clone()).require_grad();
        let y = if portable {
            imdb_lora_kernels::gelu_exact_autodiff(x.clone())
        } else {
            A::kernel_gelu(x.clone())
        };
        let grads = (y * Tensor::from_inner(w.clone())).sum().backward();
        x.grad(&grads).unwrap()
    };
    let portable = grad_of(true);
    assert!(max_diff(portable.clone(), grad_of(false)) < 1e-5);
    let xs: Vec<f32> = x.into_data().to_vec().unwrap();
    let ws: Vec<f32> = w.into_data().to_vec().unwrap();
    let got: Vec<f32> = portable.into_data().to_vec().unwrap();
    let worst = xs
        .iter()
        .zip(&ws)
        .zip(&got)
        .map(|((&x, &w), &g)| {
            let x = f64::from(x);
            let cdf = 0.5 * (1.0 + erf_f64(x / std::f64::consts::SQRT_2));
            let pdf = (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt();
            (f64::from(g) - f64::from(w) * (cdf + x * pdf)).abs()
        })
        .fold(0.0, f64::max);
    assert!(worst < 2e-6, "max |Δ| against f64: {worst:e}");
}

/// erf in f64 by its Maclaurin series for |x| ≤ 4 (the largest term, ≈ 4e6, loses under 1e-9
/// to cancellation); beyond, ±1 (erfc(4) ≈ 1.5e-8).
fn erf_f64(x: f64) -> f64 {
    if x.abs() > 4.0 {
        return x.signum();
    }
    let (mut term, mut sum, mut n) = (x, x, 0.0);
    while term.abs() > 1e-17 * sum.abs().max(1e-300) {
        n += 1.0;
        term *= -x * x / n;
        sum += term / (2.0 * n + 1.0);
    }
    sum * 2.0 / std::f64::consts::PI.sqrt()
}

/// `(q, k, v)` gradients of `Σ attention(q, k, v) ⊙ w` through `f`.
fn attention_grads(
    qkv: [&Tensor<Flex, 4>; 3],
    w: &Tensor<Flex, 4>,
    f: impl Fn(Tensor<A, 4>, Tensor<A, 4>, Tensor<A, 4>) -> Tensor<A, 4>,
) -> [Tensor<Flex, 4>; 3] {
    let [q, k, v] = qkv.map(|t| Tensor::<A, 4>::from_inner(t.clone()).require_grad());
    let out = f(q.clone(), k.clone(), v.clone());
    let grads = (out * Tensor::from_inner(w.clone())).sum().backward();
    [q, k, v].map(|t| t.grad(&grads).unwrap())
}

#[test]
fn training_attention_gradients_match_autodiff_of_the_composition() {
    attention_gradients_match(SHAPE, 7, &[7, 5, 2]);
}

/// Long sequences (score blocks of 1 MiB per head, longer than any row chunk), where the
/// per-head mask offsets of the later batch elements are large.
#[test]
fn long_sequence_training_attention_gradients_match_too() {
    attention_gradients_match([3, 2, 520, 8], 520, &[520, 300, 17]);
}

/// The last layer of a classifier asks with the `[CLS]` query alone: one query row over
/// every key, in training and in inference.
#[test]
fn one_query_over_all_keys_matches_the_composition() {
    attention_gradients_match([3, 4, 7, 8], 1, &[7, 5, 2]);
    attention_gradients_match([3, 2, 520, 8], 1, &[520, 300, 17]);
    let _g = rng_lock();
    let q = random::<Flex, 4>([3, 4, 1, 8], 1);
    let (k, v) = (random::<Flex, 4>(SHAPE, 2), random::<Flex, 4>(SHAPE, 3));
    let m = mask::<Flex>();
    let fused = fused::<Flex>(q.clone(), k.clone(), v.clone(), &m, 0.1);
    assert_eq!(fused.dims(), [3, 4, 1, 8]);
    let d = max_diff(fused, attention_composed(q, k, v, &m, 0.1));
    assert!(d < 1e-5, "max difference {d}");
}

/// Gradients with `queries` query positions over `shape[2]` keys.
fn attention_gradients_match(shape: [usize; 4], queries: usize, lens: &[usize]) {
    let _g = rng_lock();
    let q_shape = [shape[0], shape[1], queries, shape[3]];
    let qkv = [
        random::<Flex, 4>(q_shape, 6),
        random::<Flex, 4>(shape, 7),
        random::<Flex, 4>(shape, 8),
    ];
    let w = random::<Flex, 4>(q_shape, 9);
    let m = mask_of::<A>(lens, shape[2]);
    let fused = attention_grads([&qkv[0], &qkv[1], &qkv[2]], &w, |q, k, v| {
        fused::<A>(q, k, v, &m, 0.0)
    });
    let reference = attention_grads([&qkv[0], &qkv[1], &qkv[2]], &w, |q, k, v| {
        attention_composed(q, k, v, &m, 0.0)
    });
    for (name, (a, b)) in ["q", "k", "v"].iter().zip(fused.into_iter().zip(reference)) {
        let d = max_diff(a, b);
        assert!(d < 1e-5, "grad {name}: max difference {d}");
    }
}

#[test]
fn training_attention_with_dropout_matches_the_composition_under_the_same_mask() {
    dropout_attention_matches([3, 4, 7], &[7, 5, 2]);
}

#[test]
fn long_sequence_training_attention_with_dropout_matches_too() {
    dropout_attention_matches([3, 2, 520], &[520, 300, 17]);
}

fn dropout_attention_matches([batch, heads, seq]: [usize; 3], lens: &[usize]) {
    let _g = rng_lock();
    // With head_dim = seq and v = I, the output is the dropped probabilities themselves,
    // which reveals the mask the kernel drew: mask = (P ⊙ mask) / P.
    let q = random::<Flex, 4>([batch, heads, seq, seq], 10);
    let k = random::<Flex, 4>([batch, heads, seq, seq], 11);
    let v = random::<Flex, 4>([batch, heads, seq, seq], 12);
    let w = random::<Flex, 4>([batch, heads, seq, seq], 13);
    let eye = Tensor::<Flex, 2>::eye(seq, &Default::default())
        .reshape([1, 1, seq, seq])
        .expand([batch, heads, seq, seq]);
    let m = mask_of::<A>(lens, seq);
    let prob = 0.3;
    let seed = 99;

    A::seed(&Default::default(), seed);
    let dropped = fused::<A>(
        Tensor::from_inner(q.clone()),
        Tensor::from_inner(k.clone()),
        Tensor::from_inner(eye),
        &m,
        prob,
    )
    .inner();
    let scale = 1.0 / (seq as f64).sqrt();
    let probs = softmax(
        q.clone()
            .matmul(k.clone().swap_dims(2, 3))
            .mul_scalar(scale)
            + mask_of::<Flex>(lens, seq).additive,
        3,
    );
    let keep = dropped.clone().div(probs.clone().clamp_min(1e-30));
    // Padding keys have probability 0 either way; elsewhere the mask is 0 or 1/(1 - p).
    let keep = keep.mask_fill(probs.lower_elem(1e-30), 0.0);
    let kept: Vec<f32> = keep.clone().into_data().to_vec().unwrap();
    let scale_kept = (1.0 / (1.0 - prob)) as f32;
    assert!(
        kept.iter()
            .all(|&x| x.abs() < 1e-4 || (x - scale_kept).abs() < 1e-3)
    );
    let dropped_share = kept.iter().filter(|&&x| x.abs() < 1e-4).count() as f64 / kept.len() as f64;
    // 588 entries, about 30 % dropped plus the padding columns of batches 1 and 2 (≈ 26 %).
    assert!(
        dropped_share > 0.3 && dropped_share < 0.7,
        "{dropped_share}"
    );
    let keep = keep
        .clamp(0.0, scale_kept as f64)
        .div_scalar(scale_kept as f64)
        .round()
        .mul_scalar(scale_kept as f64);

    A::seed(&Default::default(), seed);
    let fused = attention_grads([&q, &k, &v], &w, |q, k, v| fused::<A>(q, k, v, &m, prob));
    let reference = attention_grads([&q, &k, &v], &w, |q, k, v| {
        let scores = q.matmul(k.swap_dims(2, 3)).mul_scalar(scale) + m.additive.clone();
        (softmax(scores, 3) * Tensor::from_inner(keep.clone())).matmul(v)
    });
    for (name, (a, b)) in ["q", "k", "v"].iter().zip(fused.into_iter().zip(reference)) {
        let d = max_diff(a, b);
        assert!(d < 1e-4, "grad {name}: max difference {d}");
    }
}

#[test]
fn dropout_is_deterministic_per_seed_and_its_gradient_uses_the_same_mask() {
    let _g = rng_lock();
    let x = random::<Flex, 2>([64, 129], 14).abs().add_scalar(0.5);
    let w = random::<Flex, 2>([64, 129], 15);
    let run = |seed: u64| {
        A::seed(&Default::default(), seed);
        let xa = Tensor::<A, 2>::from_inner(x.clone()).require_grad();
        let y = A::kernel_dropout(xa.clone(), 0.25);
        let grads = (y.clone() * Tensor::from_inner(w.clone())).sum().backward();
        (y.inner(), xa.grad(&grads).unwrap())
    };
    let (y1, g1) = run(5);
    let (y2, _) = run(5);
    let (y3, _) = run(6);
    assert_eq!(max_diff(y1.clone(), y2), 0.0, "same seed, same mask");
    assert!(max_diff(y1.clone(), y3) > 0.0, "another seed, another mask");

    let factor = y1.div(x.clone());
    let d = max_diff(g1, w * factor.clone());
    assert!(d < 1e-6, "gradient is w ⊙ mask: {d}");
    let f: Vec<f32> = factor.into_data().to_vec().unwrap();
    let dropped = f.iter().filter(|&&v| v == 0.0).count() as f64 / f.len() as f64;
    assert!((dropped - 0.25).abs() < 0.03, "dropped {dropped}");
    assert!(f.iter().all(|&v| v == 0.0 || (v - 1.0 / 0.75).abs() < 1e-5));

    // Without autodiff (inference) dropout is the identity, as burn::nn::Dropout is.
    assert_eq!(
        max_diff(Flex::kernel_dropout(x.clone(), 0.25), x.clone()),
        0.0
    );
    assert_eq!(max_diff(Dropout { prob: 0.25 }.forward(x.clone()), x), 0.0);
}

#[test]
fn linear_matches_burns_linear_with_and_without_bias_and_on_strided_weights() {
    let _g = rng_lock();
    let x = random::<Flex, 3>([3, 5, 7], 20);
    let w = random::<Flex, 2>([7, 4], 21);
    let b = random::<Flex, 1>([4], 22);
    let fused = Flex::kernel_linear(x.clone(), w.clone(), Some(b.clone()));
    assert_eq!(fused.dims(), [3, 5, 4]);
    let d = max_diff(fused, linear(x.clone(), w.clone(), Some(b.clone())));
    assert!(d < 1e-5, "with bias: {d}");
    let d = max_diff(
        Flex::kernel_linear(x.clone(), w.clone(), None),
        linear(x.clone(), w.clone(), None),
    );
    assert!(d < 1e-5, "without bias: {d}");
    // A weight seen through a transpose (strides swapped), and a rank-1 input.
    let wt = random::<Flex, 2>([4, 7], 23).swap_dims(0, 1);
    let d = max_diff(
        Flex::kernel_linear(x.clone(), wt.clone(), Some(b.clone())),
        linear(x.clone(), wt, Some(b.clone())),
    );
    assert!(d < 1e-5, "transposed weight: {d}");
    let v = random::<Flex, 1>([7], 24);
    let d = max_diff(
        Flex::kernel_linear(v.clone(), w.clone(), Some(b.clone())),
        linear(v, w, Some(b)),
    );
    assert!(d < 1e-5, "rank-1 input: {d}");
}

/// Gradients of `Σ linear(x, w, b) ⊙ g` for each of x, w, b that `tracked` marks.
fn linear_grads(
    f: impl Fn(Tensor<A, 3>, Tensor<A, 2>, Option<Tensor<A, 1>>) -> Tensor<A, 3>,
    tracked: [bool; 3],
    bias: bool,
) -> Vec<Option<Tensor<Flex, 1>>> {
    let track = |t: Tensor<A, 1>, on: bool| if on { t.require_grad() } else { t };
    let x = Tensor::<A, 3>::from_inner(random::<Flex, 3>([2, 6, 9], 30));
    let w = Tensor::<A, 2>::from_inner(random::<Flex, 2>([9, 5], 31));
    let b = Tensor::<A, 1>::from_inner(random::<Flex, 1>([5], 32));
    let g = random::<Flex, 3>([2, 6, 5], 33);
    let x = if tracked[0] { x.require_grad() } else { x };
    let w = if tracked[1] { w.require_grad() } else { w };
    let b = bias.then(|| track(b, tracked[2]));
    let out = f(x.clone(), w.clone(), b.clone());
    let grads = (out * Tensor::from_inner(g)).sum().backward();
    vec![
        x.grad(&grads).map(|t| t.flatten(0, 2)),
        w.grad(&grads).map(|t| t.flatten(0, 1)),
        b.and_then(|b| b.grad(&grads)),
    ]
}

#[test]
fn linear_gradients_match_burns_linear_for_every_tracked_combination() {
    let _g = rng_lock();
    for bias in [true, false] {
        for tracked in [
            [true, false, false],
            [true, true, true],
            [false, true, false],
            [false, false, true],
        ] {
            let fused = linear_grads(A::kernel_linear, tracked, bias);
            let reference = linear_grads(linear, tracked, bias);
            for (i, (a, b)) in fused.into_iter().zip(reference).enumerate() {
                match (a, b) {
                    (Some(a), Some(b)) => {
                        let d = max_diff(a, b);
                        assert!(d < 1e-4, "{tracked:?} bias {bias}: grad {i} differs by {d}");
                    }
                    (None, None) => {}
                    (a, b) => panic!(
                        "{tracked:?} bias {bias}: grad {i} present {} vs {}",
                        a.is_some(),
                        b.is_some()
                    ),
                }
            }
        }
    }
}

#[test]
fn layer_norm_matches_burns_forward_and_input_gradient() {
    let _g = rng_lock();
    let x = random::<Flex, 3>([3, 5, 40], 40)
        .mul_scalar(2.0)
        .add_scalar(0.7);
    let gamma = random::<Flex, 1>([40], 41);
    let beta = random::<Flex, 1>([40], 42);
    for beta in [Some(beta.clone()), None] {
        let fused = Flex::kernel_layer_norm(x.clone(), gamma.clone(), beta.clone(), 1e-12);
        let reference = layer_norm_composed(x.clone(), gamma.clone(), beta.clone(), 1e-12);
        let d = max_diff(fused, reference);
        assert!(d < 1e-5, "forward: {d}");
    }
    let w = random::<Flex, 3>([3, 5, 40], 43);
    let grad_of = |fused: bool| {
        let xa = Tensor::<A, 3>::from_inner(x.clone()).require_grad();
        let (g, b) = (
            Tensor::<A, 1>::from_inner(gamma.clone()),
            Some(Tensor::<A, 1>::from_inner(beta.clone())),
        );
        let y = if fused {
            A::kernel_layer_norm(xa.clone(), g, b, 1e-12)
        } else {
            layer_norm_composed(xa.clone(), g, b, 1e-12)
        };
        let grads = (y * Tensor::from_inner(w.clone())).sum().backward();
        xa.grad(&grads).unwrap()
    };
    let d = max_diff(grad_of(true), grad_of(false));
    assert!(d < 1e-4, "backward: {d}");
}

/// A trainable scale or shift takes Burn's path, whose gradients reach them.
#[test]
fn layer_norm_with_a_trained_scale_still_gets_its_gradient() {
    let _g = rng_lock();
    let x = Tensor::<A, 2>::from_inner(random::<Flex, 2>([4, 16], 44));
    let gamma = Tensor::<A, 1>::from_inner(random::<Flex, 1>([16], 45)).require_grad();
    let y = A::kernel_layer_norm(x, gamma.clone(), None, 1e-5);
    let grads = (y * Tensor::from_inner(random::<Flex, 2>([4, 16], 46)))
        .sum()
        .backward();
    assert!(gamma.grad(&grads).is_some());
}

/// The fused kernel with a sliding window (ModernBERT's local layers) and with extra score
/// terms (DeBERTa's position terms, their own scale) against the composition, in inference
/// and in the gradients of q, k, v and the terms; also for a query subset (the `[CLS]`-only
/// last layer) and a window wider than the sequence. Compared on real query rows: a padded
/// row whose whole window is padding has no meaningful softmax (the kernel spreads it over its
/// window, the composition over every key), and no real token reads it.
#[test]
fn windowed_and_biased_attention_match_the_composition_forward_and_backward() {
    let cases = [
        (Some(2), false, 7),
        (Some(1), true, 7),
        (None, true, 7),
        (Some(2), true, 1),
        (Some(50), false, 7),
    ];
    check_scored_attention(&[7, 5, 2], 7, SHAPE[1], SHAPE[3], &cases);
}

/// The same past the sizes where the kernel stops keeping probabilities (recomputed in the
/// backward pass) and where a window's products are banded (blocks of 64 query rows).
#[test]
fn long_windowed_and_biased_attention_match_the_composition_too() {
    let cases = [
        (Some(20), false, 300),
        (Some(20), true, 300),
        (None, true, 300),
    ];
    check_scored_attention(&[300, 233], 300, 2, 8, &cases);
}

/// The fused kernel against [`imdb_lora_kernels::attention_scored_composed`] for sequences of
/// `lens` real tokens out of `seq`, each case `(window, with terms, queries)`.
fn check_scored_attention(
    lens: &[usize],
    seq: usize,
    heads: usize,
    d: usize,
    cases: &[(Option<usize>, bool, usize)],
) {
    use imdb_lora_kernels::{ScoreBias, attention_scored_composed};
    let _g = rng_lock();
    let batch = lens.len();
    let shape = [batch, heads, seq, d];
    let (q, k, v) = (
        random::<Flex, 4>(shape, 11),
        random::<Flex, 4>(shape, 12),
        random::<Flex, 4>(shape, 13),
    );
    let terms = random::<Flex, 4>([batch, heads, seq, seq], 14);
    // The output's weights, zero on padded query rows.
    let real: Vec<f32> = lens
        .iter()
        .flat_map(|&n| (0..heads * seq).map(move |i| f32::from(u8::from(i % seq < n))))
        .collect();
    let real = Tensor::<Flex, 4>::from_data(
        TensorData::new(real, [batch, heads, seq, 1]),
        &Default::default(),
    );
    let w = random::<Flex, 4>(shape, 15) * real.clone();
    let scale = 1.0 / ((3 * d) as f64).sqrt();
    for &(window, biased, queries) in cases {
        let what = format!("window {window:?}, biased {biased}, {queries} queries of {seq}");
        let cut = |t: Tensor<Flex, 4>| t.slice([0..batch, 0..heads, 0..queries, 0..d]);
        let cut_terms = |t: Tensor<Flex, 4>| t.slice([0..batch, 0..heads, 0..queries, 0..seq]);
        // Gradients of q, k, v and the terms through the fused kernel or the composition.
        let run = |fused_path: bool| {
            let m = mask_of::<A>(lens, seq);
            let m = match window {
                Some(w) => m.windowed(w),
                None => m,
            };
            let [q, k, v] = [cut(q.clone()), k.clone(), v.clone()]
                .map(|t| Tensor::<A, 4>::from_inner(t).require_grad());
            let t = Tensor::<A, 4>::from_inner(cut_terms(terms.clone())).require_grad();
            let bias = biased.then(|| ScoreBias {
                terms: t.clone(),
                scale,
            });
            let out = if fused_path {
                let [qm, km, vm] = [q.clone(), k.clone(), v.clone()].map(merge_heads);
                let merged = match bias {
                    Some(bias) => A::kernel_attention_biased(qm, km, vm, heads, &m, bias, 0.0),
                    None => A::kernel_attention(qm, km, vm, heads, &m, 0.0),
                };
                split_heads(merged, heads)
            } else {
                let drop = |x: Tensor<A, 4>, _| x;
                attention_scored_composed([q.clone(), k.clone(), v.clone()], &m, bias, 0.0, drop)
            };
            let grads = (out.clone() * Tensor::from_inner(cut(w.clone())))
                .sum()
                .backward();
            let grad = |t: &Tensor<A, 4>| t.grad(&grads).map(|g| g.into_data());
            let real = cut(real.clone().expand(shape));
            (
                (out.inner() * real).into_data(),
                [grad(&q), grad(&k), grad(&v), grad(&t)],
            )
        };
        let (fused_out, fused_grads) = run(true);
        let (want_out, want_grads) = run(false);
        let diff = |a: burn::tensor::TensorData, b: burn::tensor::TensorData| {
            let (a, b) = (a.to_vec::<f32>().unwrap(), b.to_vec::<f32>().unwrap());
            a.iter()
                .zip(&b)
                .map(|(x, y)| (x - y).abs())
                .fold(0.0f32, f32::max)
        };
        let d = diff(fused_out, want_out);
        assert!(d < 1e-5, "{what}: output differs by {d}");
        for (i, (got, want)) in fused_grads.into_iter().zip(want_grads).enumerate() {
            match (got, want) {
                (Some(got), Some(want)) => {
                    let d = diff(got, want);
                    assert!(d < 1e-4, "{what}: gradient {i} differs by {d}");
                }
                (None, None) => {}
                (got, want) => panic!(
                    "{what}: gradient {i}: fused {} vs composed {}",
                    got.is_some(),
                    want.is_some()
                ),
            }
        }
    }
}

/// The rotary and relative-term kernels against their compositions, forward and backward
/// (ModernBERT's and DeBERTa's per-layer position work), including a query subset.
#[test]
fn rotary_and_relative_terms_match_their_compositions_forward_and_backward() {
    use imdb_lora_kernels::{RelativeIndex, relative_terms_composed, rotary_composed};
    let _g = rng_lock();
    let diff = |a: burn::tensor::TensorData, b: burn::tensor::TensorData| {
        let (a, b) = (a.to_vec::<f32>().unwrap(), b.to_vec::<f32>().unwrap());
        assert_eq!(a.len(), b.len());
        a.iter()
            .zip(&b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0f32, f32::max)
    };
    // Rotary: 3 heads of 8 over 7 positions, tables of 9 rows.
    let x = random::<Flex, 3>([2, 7, 24], 21);
    let cos = random::<Flex, 2>([9, 8], 22);
    let sin = random::<Flex, 2>([9, 8], 23);
    let w = random::<Flex, 3>([2, 7, 24], 24);
    let rotary = |fused: bool| {
        let x = Tensor::<A, 3>::from_inner(x.clone()).require_grad();
        let (c, s) = (
            Tensor::<A, 2>::from_inner(cos.clone()),
            Tensor::<A, 2>::from_inner(sin.clone()),
        );
        let y = if fused {
            A::kernel_rotary(x.clone(), c, s, 3)
        } else {
            rotary_composed(x.clone(), &c, &s, 3)
        };
        let grads = (y.clone() * Tensor::from_inner(w.clone())).sum().backward();
        (y.inner().into_data(), x.grad(&grads).unwrap().into_data())
    };
    let ((y1, g1), (y2, g2)) = (rotary(true), rotary(false));
    assert!(diff(y1, y2) < 1e-6 && diff(g1, g2) < 1e-6, "rotary");

    // Relative terms: 2 × 3 heads, 6 positions, a table of 8 rows (span 4: clamped).
    let (batch, heads, seq, rows) = (2, 3, 6, 8);
    let index: Vec<i64> = (0..seq as i64)
        .flat_map(|i| (0..seq as i64).map(move |j| (i - j + 4).clamp(0, 7)))
        .collect();
    let idx = RelativeIndex::<A>::new(index, seq, &Default::default());
    for queries in [seq, 1] {
        let c2p = random::<Flex, 4>([batch, heads, queries, rows], 25);
        let p2c = random::<Flex, 4>([batch, heads, seq, rows], 26);
        let w = random::<Flex, 4>([batch, heads, queries, seq], 27);
        let run = |fused: bool| {
            let c = Tensor::<A, 4>::from_inner(c2p.clone()).require_grad();
            let p = Tensor::<A, 4>::from_inner(p2c.clone()).require_grad();
            let (cc, pp) = (Some(c.clone()), Some(p.clone()));
            let t = if fused {
                A::kernel_relative_terms(cc, pp, &idx, queries, 0.3)
            } else {
                relative_terms_composed(cc, pp, &idx, queries, 0.3)
            }
            .unwrap();
            let grads = (t.clone() * Tensor::from_inner(w.clone())).sum().backward();
            (
                t.inner().into_data(),
                c.grad(&grads).unwrap().into_data(),
                p.grad(&grads).unwrap().into_data(),
            )
        };
        let ((t1, c1, p1), (t2, c2, p2)) = (run(true), run(false));
        let worst = diff(t1, t2).max(diff(c1, c2)).max(diff(p1, p2));
        assert!(worst < 1e-5, "relative terms, {queries} queries: {worst}");
    }
}

/// The fused GeGLU against its composition, forward and backward.
#[test]
fn geglu_matches_its_composition_forward_and_backward() {
    let _g = rng_lock();
    let x = random::<Flex, 3>([3, 5, 2 * 13], 31).mul_scalar(2.0);
    let w = random::<Flex, 3>([3, 5, 13], 32);
    let run = |fused: bool| {
        let x = Tensor::<A, 3>::from_inner(x.clone()).require_grad();
        let y = if fused {
            A::kernel_geglu(x.clone())
        } else {
            imdb_lora_kernels::geglu_composed(x.clone())
        };
        let grads = (y.clone() * Tensor::from_inner(w.clone())).sum().backward();
        (y.inner(), x.grad(&grads).unwrap())
    };
    let ((y1, g1), (y2, g2)) = (run(true), run(false));
    let (dy, dg) = (max_diff(y1, y2), max_diff(g1, g2));
    assert!(dy < 1e-6 && dg < 1e-5, "output {dy}, gradient {dg}");
    let plain = Flex::kernel_geglu(x.clone());
    assert!(max_diff(plain, imdb_lora_kernels::geglu_composed(x)) < 1e-6);
}

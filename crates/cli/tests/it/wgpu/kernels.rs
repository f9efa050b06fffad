//! Our CubeCL kernels (`imdb_lora_kernels::cube`) against references, on random inputs of awkward
//! sizes (rows not a multiple of the workgroup, sequences not a multiple of the tile, padded
//! rows): outputs and every gradient.
//!
//! References: the exact GELU in f64 on the host; Burn's compositions (`layer_norm_composed`,
//! `attention_heads`) on the same backend, which the parity tests tie to transformers.

use burn::backend::Autodiff;
use burn::tensor::activation::softmax;
use burn::tensor::backend::Backend;
use burn::tensor::{Distribution, Int, Tensor, TensorData};
use imdb_lora_encoder::{AttentionMask, KernelBackend};
use imdb_lora_kernels::{attention_heads, merge_heads, split_heads};

use super::*;

type A = Autodiff<W>;

/// `f()` and how many of our kernels' operations it recorded (so a test sees the kernel ran,
/// not the composition it falls back to: on the code before the kernels this was 0).
fn kernel_ops<T>(f: impl FnOnce() -> T) -> (T, u64) {
    let before = imdb_lora_kernels::cube::kernel_ops_registered();
    let out = f();
    (
        out,
        imdb_lora_kernels::cube::kernel_ops_registered() - before,
    )
}

/// Random `N(0, std²)` values of `shape`, seeded.
fn random<B: Backend, const D: usize>(
    shape: [usize; D],
    std: f64,
    seed: u64,
    device: &B::Device,
) -> Tensor<B, D> {
    B::seed(device, seed);
    Tensor::random(shape, Distribution::Normal(0.0, std), device)
}

/// `(x·Φ(x), Φ(x) + x·φ(x))` in f64.
fn gelu_f64(x: f64) -> (f64, f64) {
    let cdf = 0.5 * (1.0 + erf_f64(x / std::f64::consts::SQRT_2));
    let pdf = (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt();
    (x * cdf, cdf + x * pdf)
}

/// erf by its Maclaurin series (|x| ≤ 3) or continued fraction tail; ≈ 1e-15 in f64.
fn erf_f64(x: f64) -> f64 {
    if x.abs() > 3.0 {
        // erfc(x) ≈ exp(−x²)/(x√π) · (1 − 1/(2x²) + 3/(4x⁴) − 15/(8x⁶)); |x| > 3 → < 1e-7 off.
        let x2 = x * x;
        let tail = (-x2).exp() / (x.abs() * std::f64::consts::PI.sqrt())
            * (1.0 - 1.0 / (2.0 * x2) + 3.0 / (4.0 * x2 * x2) - 15.0 / (8.0 * x2 * x2 * x2));
        return x.signum() * (1.0 - tail);
    }
    let mut term = x;
    let mut sum = x;
    for n in 1..200 {
        term *= -x * x / n as f64;
        sum += term / (2 * n + 1) as f64;
    }
    sum * 2.0 / std::f64::consts::PI.sqrt()
}

#[test]
fn gelu_matches_the_exact_gelu_and_its_derivative_with_the_backward_kernel() {
    let _lock = device_lock();
    let Some(device) = device() else { return };
    // 3·7·37 = 777 elements: three workgroups of 256, the last one partial.
    let x0 = random::<A, 3>([3, 7, 37], 2.0, 5, &device);
    let weight = random::<A, 3>([3, 7, 37], 1.0, 6, &device);
    let x = x0.clone().require_grad();
    let ((y, dx), ops) = kernel_ops(|| {
        let y = A::kernel_gelu(x.clone());
        let grads = (y.clone() * weight.clone()).sum().backward();
        (y, values(x.grad(&grads).unwrap()))
    });
    // The forward pass is Burn's (exact, and fusable with its neighbours); the derivative ours.
    assert_eq!(ops, 1, "GELU backward kernel");
    let (xs, ws, ys) = (values(x0), values(weight), values(y.inner()));
    let (want_y, want_dx): (Vec<f32>, Vec<f32>) = xs
        .iter()
        .zip(&ws)
        .map(|(&x, &w)| {
            let (y, d) = gelu_f64(x as f64);
            (y as f32, (d * w as f64) as f32)
        })
        .unzip();
    // cubecl's erf (Abramowitz & Stegun 7.1.26) is within 1.5e-7; f32 rounding adds as much.
    assert_close("GELU forward vs f64", &ys, &want_y, 2e-6);
    assert_close("GELU kernel gradient vs f64", &dx, &want_dx, 2e-6);
    // Inference: Burn's GELU, exact too.
    let x_inf = Tensor::<W, 3>::from_data(TensorData::new(xs.clone(), [3, 7, 37]), &device);
    let y_inf = values(W::kernel_gelu(x_inf));
    assert_close("GELU forward, inference", &y_inf, &want_y, 2e-6);
}

/// Output and the gradients of `Σ y ⊙ w` for x, γ and β, through `norm`.
fn layer_norm_grads(
    norm: impl Fn(Tensor<A, 3>, Tensor<A, 1>, Option<Tensor<A, 1>>) -> Tensor<A, 3>,
    shape: [usize; 3],
    transposed: bool,
    device: &WgpuDevice,
) -> [Vec<f32>; 4] {
    let d = shape[2];
    let x0 = random::<A, 3>(shape, 3.0, 11, device).add_scalar(1.5);
    let gamma = random::<A, 1>([d], 1.0, 12, device).require_grad();
    let beta = random::<A, 1>([d], 1.0, 13, device).require_grad();
    let weight = random::<A, 3>(shape, 1.0, 14, device);
    let x = x0.require_grad();
    // A strided view (the kernels make it contiguous first).
    let input = if transposed {
        x.clone().swap_dims(0, 1).swap_dims(0, 1)
    } else {
        x.clone()
    };
    let y = norm(input, gamma.clone(), Some(beta.clone()));
    let grads = (y.clone() * weight).sum().backward();
    [
        values(y.inner()),
        values(x.grad(&grads).unwrap()),
        values(gamma.grad(&grads).unwrap()),
        values(beta.grad(&grads).unwrap()),
    ]
}

#[test]
fn layer_norm_kernel_matches_burns_composition() {
    let _lock = device_lock();
    let Some(device) = device() else { return };
    // d = 300: a row is more than one workgroup (256) and not a multiple of it; d = 37: less
    // than one. 2·70 = 140 rows: three blocks of 64 rows for dγ, dβ, the last one partial.
    for (shape, transposed) in [([2, 70, 300], false), ([3, 5, 37], true)] {
        let (kernel, ops) = kernel_ops(|| {
            layer_norm_grads(
                |x, g, b| A::kernel_layer_norm(x, g, b, 1e-12),
                shape,
                transposed,
                &device,
            )
        });
        assert_eq!(ops, 3, "layer norm forward, dx and dγ/dβ kernels");
        let composed = layer_norm_grads(
            |x, g, b| imdb_lora_kernels::layer_norm_composed(x, g, b, 1e-12),
            shape,
            transposed,
            &device,
        );
        // f32 sums in another order; the values are O(1), dγ and dβ sum 140 of them.
        let d = shape[2];
        for (what, tol, k, c) in [
            ("output", 1e-5, &kernel[0], &composed[0]),
            ("dx", 1e-5, &kernel[1], &composed[1]),
            ("dgamma", 5e-5, &kernel[2], &composed[2]),
            ("dbeta", 5e-5, &kernel[3], &composed[3]),
        ] {
            assert_close(&format!("layer norm {what}, d = {d}"), k, c, tol);
        }
    }
    // Inference (no autodiff) runs the same kernel; without a shift too.
    let x = random::<W, 2>([9, 300], 2.0, 21, &device);
    let gamma = random::<W, 1>([300], 1.0, 22, &device);
    let (got, ops) = kernel_ops(|| W::kernel_layer_norm(x.clone(), gamma.clone(), None, 1e-5));
    assert_eq!(ops, 1, "layer norm inference kernel");
    let want = imdb_lora_kernels::layer_norm_composed(x, gamma, None, 1e-5);
    assert_close(
        "layer norm, inference, no shift",
        &values(got),
        &values(want),
        1e-5,
    );
}

/// The sizes of the attention tests: 45 keys (a tile of 32 and a partial one), 3 heads of 20.
const BATCH: usize = 2;
const SEQ: usize = 45;
const HEADS: usize = 3;
const HEAD_DIM: usize = 20;
const HIDDEN: usize = HEADS * HEAD_DIM;

/// Batch element 0 without padding, element 1 with its last 13 positions padded.
fn padding_mask<B: Backend>(device: &B::Device) -> AttentionMask<B> {
    let mask: Vec<i64> = (0..BATCH * SEQ)
        .map(|n| i64::from(n / SEQ == 0 || n % SEQ < SEQ - 13))
        .collect();
    AttentionMask::new(Tensor::<B, 2, Int>::from_data(
        TensorData::new(mask, [BATCH, SEQ]),
        device,
    ))
}

/// q (all positions, or only the first: the `[CLS]` layer), k, v: seeded, on `device`.
fn qkv<B: Backend>(queries: usize, device: &B::Device) -> [Tensor<B, 3>; 3] {
    let q = random::<B, 3>([BATCH, SEQ, HIDDEN], 1.0, 31, device).narrow(1, 0, queries);
    let k = random::<B, 3>([BATCH, SEQ, HIDDEN], 1.0, 32, device);
    let v = random::<B, 3>([BATCH, SEQ, HIDDEN], 1.0, 33, device);
    [q, k, v]
}

/// Output and `[dq, dk, dv]` of `Σ attention(q, k, v) ⊙ w`.
fn attention_grads(
    attend: impl Fn([Tensor<A, 3>; 3], &AttentionMask<A>) -> Tensor<A, 3>,
    queries: usize,
    device: &WgpuDevice,
) -> [Vec<f32>; 4] {
    let [q, k, v] = qkv::<A>(queries, device).map(|t| t.require_grad());
    let mask = padding_mask::<A>(device);
    let w = random::<A, 3>([BATCH, queries, HIDDEN], 1.0, 34, device);
    let y = attend([q.clone(), k.clone(), v.clone()], &mask);
    let grads = (y.clone() * w).sum().backward();
    [
        values(y.inner()),
        values(q.grad(&grads).unwrap()),
        values(k.grad(&grads).unwrap()),
        values(v.grad(&grads).unwrap()),
    ]
}

fn assert_all_close(what: &str, got: &[Vec<f32>; 4], want: &[Vec<f32>; 4], tol: f32) {
    for (name, g, w) in ["output", "dq", "dk", "dv"]
        .iter()
        .zip(got)
        .zip(want)
        .map(|((n, g), w)| (n, g, w))
    {
        assert_close(&format!("{what} {name}"), g, w, tol);
    }
}

#[test]
fn attention_kernel_matches_burns_composition_in_inference() {
    let _lock = device_lock();
    let Some(device) = device() else { return };
    let mask = padding_mask::<W>(&device);
    for queries in [SEQ, 1] {
        let [q, k, v] = qkv::<W>(queries, &device);
        let (got, ops) =
            kernel_ops(|| W::kernel_attention(q.clone(), k.clone(), v.clone(), HEADS, &mask, 0.1));
        assert_eq!(ops, 1, "attention inference kernel");
        let want = attention_heads(q, k, v, HEADS, &mask, 0.1);
        assert_close(
            &format!("attention inference, {queries} queries"),
            &values(got),
            &values(want),
            1e-5,
        );
    }
}

#[test]
fn attention_with_heads_larger_than_the_kernels_take_falls_back_to_the_composition() {
    let _lock = device_lock();
    let Some(device) = device() else { return };
    // One head of 80 (> 64, the kernels' limit for shared memory).
    let [q, k, v] = [41, 42, 43].map(|seed| random::<W, 3>([2, 5, 80], 1.0, seed, &device));
    let mask = AttentionMask::new(Tensor::<W, 2, Int>::ones([2, 5], &device));
    let (got, ops) =
        kernel_ops(|| W::kernel_attention(q.clone(), k.clone(), v.clone(), 1, &mask, 0.0));
    assert_eq!(ops, 0, "no kernel for a head of 80");
    let want = attention_heads(q, k, v, 1, &mask, 0.0);
    assert_close("attention fallback", &values(got), &values(want), 1e-6);
}

#[test]
fn attention_kernel_matches_burns_composition_in_training_without_dropout() {
    let _lock = device_lock();
    let Some(device) = device() else { return };
    for queries in [SEQ, 1] {
        let (got, ops) = kernel_ops(|| {
            attention_grads(
                |[q, k, v], mask| A::kernel_attention(q, k, v, HEADS, mask, 0.0),
                queries,
                &device,
            )
        });
        assert_eq!(ops, 2, "attention forward and backward kernels");
        let want = attention_grads(
            |[q, k, v], mask| attention_heads(q, k, v, HEADS, mask, 0.0),
            queries,
            &device,
        );
        assert_all_close(
            &format!("attention training, {queries} queries:"),
            &got,
            &want,
            1e-5,
        );
    }
}

/// murmur3's finaliser, as `imdb_lora_kernels::flex::mask` (the CPU kernels' dropout masks).
fn fmix32(mut h: u32) -> u32 {
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^ (h >> 16)
}

/// The CPU kernels' dropout mask `[batch, heads, queries, keys]` (0 or `1/(1 − prob)`) for
/// the key drawn as four 16-bit halves.
fn cpu_mask(halves: &[f32], prob: f64, dims: [usize; 4]) -> Vec<f32> {
    let half = |i: usize| (halves[i] as u32) & 0xffff;
    let (k0, k1) = (half(0) << 16 | half(1), half(2) << 16 | half(3));
    let threshold = (prob * 4_294_967_296.0).round() as u32;
    let scale = (1.0 / (1.0 - prob)) as f32;
    (0..dims.iter().product::<usize>() as u32)
        .map(|i| {
            let bits = fmix32(fmix32(i.wrapping_mul(0x9e37_79b9) ^ k0).wrapping_add(k1));
            if bits >= threshold { scale } else { 0.0 }
        })
        .collect()
}

/// The composition with a given (inverted-dropout) mask on the probabilities: the reference
/// for the kernel's dropout, whose mask the test builds on the host.
fn masked_attention(
    [q, k, v]: [Tensor<A, 3>; 3],
    mask: &AttentionMask<A>,
    drop: &Tensor<A, 4>,
) -> Tensor<A, 3> {
    let [q, k, v] = [q, k, v].map(|t| split_heads(t, HEADS));
    let scores = q
        .matmul(k.swap_dims(2, 3))
        .div_scalar((HEAD_DIM as f64).sqrt())
        + mask.additive.clone();
    merge_heads((softmax(scores, 3) * drop.clone()).matmul(v))
}

#[test]
fn attention_kernel_dropout_is_the_cpu_mask_and_its_gradients_match_the_composition() {
    let _lock = device_lock();
    let Some(device) = device() else { return };
    let prob = 0.3;
    for queries in [SEQ, 1] {
        let dims = [BATCH, HEADS, queries, SEQ];
        // The kernel draws its key first after seeding; drawn here the same way, the mask
        // follows from the CPU kernels' function.
        W::seed(&device, 77);
        let halves = values(Tensor::<W, 1>::random(
            [4],
            Distribution::Uniform(0.0, 65_536.0),
            &device,
        ));
        let drop = cpu_mask(&halves, prob, dims);
        let kept = drop.iter().filter(|&&f| f != 0.0).count() as f64 / drop.len() as f64;
        assert!((kept - (1.0 - prob)).abs() < 0.05, "kept share {kept}");
        let got = attention_grads(
            |[q, k, v], mask| {
                A::seed(&device, 77);
                A::kernel_attention(q, k, v, HEADS, mask, prob)
            },
            queries,
            &device,
        );
        let drop = Tensor::<A, 4>::from_data(TensorData::new(drop, dims), &device);
        let want = attention_grads(
            |qkv, mask| masked_attention(qkv, mask, &drop),
            queries,
            &device,
        );
        assert_all_close(
            &format!("attention training, dropout {prob}, {queries} queries:"),
            &got,
            &want,
            1e-5,
        );
    }
}

#[test]
fn attention_kernel_dropout_follows_the_passs_key_not_the_backends_seed() {
    let _lock = device_lock();
    let Some(device) = device() else { return };
    let prob = 0.3;
    let dims = [BATCH, HEADS, SEQ, SEQ];
    let run = |key: u64, seed: u64| {
        attention_grads(
            |[q, k, v], mask| {
                A::seed(&device, seed);
                imdb_lora_encoder::with_dropout_key(imdb_lora_encoder::DropoutKey(key), || {
                    A::kernel_attention(q, k, v, HEADS, mask, prob)
                })
            },
            SEQ,
            &device,
        )
    };
    let a = run(5, 1);
    assert_all_close("same key, another seed:", &run(5, 2), &a, 0.0);
    let b = run(6, 1);
    assert!(a[0] != b[0], "another key, another mask");
    // The mask is the CPU kernels' function of the key's sub-key 0 (the pass's first dropout).
    let [high, low] = imdb_lora_encoder::DropoutKey(5).sub_key(0);
    let halves = [high >> 16, high & 0xffff, low >> 16, low & 0xffff].map(|h| h as f32);
    let drop = cpu_mask(&halves, prob, dims);
    let drop = Tensor::<A, 4>::from_data(TensorData::new(drop, dims), &device);
    let want = attention_grads(|qkv, mask| masked_attention(qkv, mask, &drop), SEQ, &device);
    assert_all_close("keyed dropout vs the CPU mask:", &a, &want, 1e-5);
}

/// The dropout tests' shape: 3·7·37 = 777 elements, three workgroups of 256, the last partial.
const DROP_SHAPE: [usize; 3] = [3, 7, 37];

/// Output and input gradient of `Σ dropout(x) ⊙ w`, with the kernel ops it recorded.
fn dropout_grads(
    drop: impl Fn(Tensor<A, 3>) -> Tensor<A, 3>,
    device: &WgpuDevice,
) -> ([Vec<f32>; 2], u64) {
    let x = random::<A, 3>(DROP_SHAPE, 1.0, 51, device).require_grad();
    let w = random::<A, 3>(DROP_SHAPE, 1.0, 52, device);
    kernel_ops(|| {
        let y = drop(x.clone());
        let grads = (y.clone() * w).sum().backward();
        [values(y.inner()), values(x.grad(&grads).unwrap())]
    })
}

/// The four 16-bit halves (as floats) of sub-key `n` of `key`, as `draw_key` uploads them.
fn key_halves(key: u64, n: u64) -> [f32; 4] {
    let [high, low] = imdb_lora_encoder::DropoutKey(key).sub_key(n);
    [high >> 16, high & 0xffff, low >> 16, low & 0xffff].map(|h| h as f32)
}

#[test]
fn dropout_kernel_is_the_cpu_mask_and_its_gradient_is_the_compositions() {
    let _lock = device_lock();
    let Some(device) = device() else { return };
    let prob = 0.3;
    let n = DROP_SHAPE.iter().product();
    let (got, ops) = dropout_grads(
        |x| {
            imdb_lora_encoder::with_dropout_key(imdb_lora_encoder::DropoutKey(5), || {
                A::kernel_dropout(x, prob)
            })
        },
        &device,
    );
    // On the code before the kernel this was Burn's `Dropout` (RNG mask): no kernel op.
    assert_eq!(ops, 2, "dropout forward and backward kernels");
    // The mask is the CPU kernels' function of the pass's first sub-key, element by element.
    let drop = cpu_mask(&key_halves(5, 0), prob, [n, 1, 1, 1]);
    let mask = Tensor::<A, 3>::from_data(TensorData::new(drop.clone(), DROP_SHAPE), &device);
    let (want, _) = dropout_grads(|x| x * mask.clone(), &device);
    // One f32 product per element on both sides: bit for bit.
    assert_close(
        "dropout kernel output vs x ⊙ CPU mask",
        &got[0],
        &want[0],
        0.0,
    );
    assert_close(
        "dropout kernel dx vs the composition's",
        &got[1],
        &want[1],
        0.0,
    );
    let kept = got[0].iter().filter(|&&y| y != 0.0).count();
    assert_eq!(kept, drop.iter().filter(|&&f| f != 0.0).count());
    // And the CPU backend's dropout under the same key gives the same output.
    let xs = values(random::<W, 3>(DROP_SHAPE, 1.0, 51, &device));
    let x = Tensor::<F, 3>::from_data(TensorData::new(xs.clone(), DROP_SHAPE), &Default::default());
    let x_w = Tensor::<A, 3>::from_data(TensorData::new(xs, DROP_SHAPE), &device);
    let cpu = imdb_lora_encoder::with_dropout_key(imdb_lora_encoder::DropoutKey(5), || {
        Autodiff::<F>::kernel_dropout(Tensor::from_inner(x), prob)
    });
    let gpu = imdb_lora_encoder::with_dropout_key(imdb_lora_encoder::DropoutKey(5), || {
        A::kernel_dropout(x_w, prob)
    });
    assert_close(
        "dropout, wgpu vs the CPU backend, same key",
        &values(gpu.inner()),
        &values(cpu.inner()),
        0.0,
    );
}

#[test]
fn dropout_kernel_keeps_one_minus_p_and_follows_the_key_not_the_seed() {
    let _lock = device_lock();
    let Some(device) = device() else { return };
    let prob = 0.25;
    let shape = [64, 1000];
    let x = random::<A, 2>(shape, 1.0, 61, &device).add_scalar(10.0);
    let run = |key: u64, seed: u64| {
        A::seed(&device, seed);
        values(
            imdb_lora_encoder::with_dropout_key(imdb_lora_encoder::DropoutKey(key), || {
                A::kernel_dropout(x.clone(), prob)
            })
            .inner(),
        )
    };
    let a = run(7, 1);
    let kept = a.iter().filter(|&&y| y != 0.0).count() as f64 / a.len() as f64;
    // 64 000 draws: the share's standard deviation is 0.0017.
    eprintln!("dropout {prob}: kept share {kept:.4}");
    assert!((kept - (1.0 - prob)).abs() < 0.01, "kept share {kept}");
    assert!(run(7, 2) == a, "same key, another backend seed");
    assert!(run(8, 1) != a, "another key, another mask");
    // Outside a keyed pass the key comes from the backend's seeded generator (drawn first
    // after seeding, as the attention kernel's), so masks follow `Backend::seed`.
    W::seed(&device, 77);
    let halves = values(Tensor::<W, 1>::random(
        [4],
        Distribution::Uniform(0.0, 65_536.0),
        &device,
    ));
    let n = shape.iter().product();
    let drop = cpu_mask(&halves, prob, [n, 1, 1, 1]);
    A::seed(&device, 77);
    let seeded = values(A::kernel_dropout(x.clone(), prob).inner());
    let want: Vec<f32> = values(x.clone().inner())
        .iter()
        .zip(&drop)
        .map(|(x, m)| x * m)
        .collect();
    assert_close(
        "unkeyed dropout vs the seeded key's mask",
        &seeded,
        &want,
        0.0,
    );
    A::seed(&device, 77);
    assert!(
        values(A::kernel_dropout(x.clone(), prob).inner()) == seeded,
        "reseeded"
    );
    // No dropout: the identity, no kernel; nor without autodiff (inference).
    let (same, ops) = kernel_ops(|| values(A::kernel_dropout(x.clone(), 0.0).inner()));
    assert!(
        ops == 0 && same == values(x.clone().inner()),
        "probability 0"
    );
    let (same, ops) = kernel_ops(|| values(W::kernel_dropout(x.clone().inner(), prob)));
    assert!(ops == 0 && same == values(x.inner()), "inference");
}

#[test]
fn attention_falling_back_to_the_composition_keeps_its_dropout_keyed() {
    let _lock = device_lock();
    let Some(device) = device() else { return };
    // One head of 80 (> 64, the attention kernels' limit): Burn's operations, and the
    // probabilities' dropout by the dropout kernel, under the pass's key.
    let mask = AttentionMask::new(Tensor::<A, 2, Int>::ones([2, 5], &device));
    let run = |key: u64, seed: u64| {
        let [q, k, v] = [41, 42, 43].map(|s| random::<A, 3>([2, 5, 80], 1.0, s, &device));
        A::seed(&device, seed);
        kernel_ops(|| {
            imdb_lora_encoder::with_dropout_key(imdb_lora_encoder::DropoutKey(key), || {
                values(A::kernel_attention(q, k, v, 1, &mask, 0.3).inner())
            })
        })
    };
    let (a, ops) = run(3, 1);
    assert_eq!(ops, 1, "the dropout kernel on the probabilities");
    assert!(run(3, 2).0 == a, "same key, another backend seed");
    assert!(run(4, 1).0 != a, "another key, another mask");
}

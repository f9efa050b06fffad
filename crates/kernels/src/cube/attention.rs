//! Multi-head attention, flash-style: one pass over the keys with an online softmax, the
//! `[queries, keys]` scores never written to global memory; heads left interleaved in
//! `[batch, seq, heads·head_dim]`, as the projections produce them and the output projection
//! reads them.
//!
//! Burn's composition writes five `[batch, heads, queries, keys]` tensors per layer in training
//! (scores, exponentials, probabilities, the Bernoulli mask, the dropped probabilities) and
//! copies q, k, v to split the heads. Here:
//! - forward: one workgroup per (query tile, head, batch element), one thread per query. Each
//!   tile of keys and values is staged in shared memory; every thread keeps its query, its
//!   running maximum and sum and its output row in registers. Training also writes each row's
//!   log-sum-exp (`[batch, heads, queries]`) for the backward pass.
//! - dropout on the probabilities: the counter-based mask of the CPU kernels
//!   (`flex/mask.rs`: murmur3's finaliser of the element's index in the
//!   `[batch, heads, queries, keys]` tensor and a two-word key), regenerated in the backward
//!   pass, never stored. The key is drawn on the device from the backend's seeded generator,
//!   so the step never waits on the host for it.
//! - backward (FlashAttention-2's recomputation): one kernel per query for `dq` and
//!   `Dᵢ = dOᵢ·Oᵢ`, one per key for `dk`, `dv`; both recompute the probabilities from the
//!   log-sum-exp.
//!
//! Portable on purpose: shared memory and barriers only, no subgroup (`plane_*`) operations,
//! no tensor cores, so lavapipe runs the same code as a GPU.

use burn::tensor::{Shape, TensorMetadata};
use burn_cubecl::tensor::CubeTensor;
use cubecl::CubeDim;
use cubecl::prelude::*;

use super::stream::{CubeKernel, FusedTensor, KernelRuntime, empty, register};

/// Queries per workgroup, keys per staged tile (and threads per workgroup).
const TILE: usize = 32;
/// The largest head size the kernels take: BERT's 64 (MiniLM's 32). The `dk`/`dv` kernel
/// stages `2·TILE·head_dim + 2·TILE` floats in shared memory (16.3 KiB at 64; 128 would pass
/// the 32 KiB that Metal and lavapipe allow), and each thread keeps four rows in registers.
pub const MAX_HEAD_DIM: usize = 64;
/// The most negative finite f32: the running maximum before the first key.
const NEG_BIG: f32 = f32::MIN;

/// The sizes of one attention call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dims {
    pub batch: usize,
    /// Query positions (`seq`, or 1 for the `[CLS]`-only last layer).
    pub queries: usize,
    /// Key (and value) positions.
    pub keys: usize,
    pub heads: usize,
    pub head_dim: usize,
}

impl Dims {
    fn scale(&self) -> f32 {
        1.0 / (self.head_dim as f32).sqrt()
    }

    fn count(&self, rows: usize) -> CubeCount {
        CubeCount::Static(
            rows.div_ceil(TILE) as u32,
            self.heads as u32,
            self.batch as u32,
        )
    }
}

/// Dropout as the kernels apply it: keep an element iff its 32 mask bits ≥ `threshold`, and
/// scale kept ones by `scale` (`flex/mask.rs`'s `MaskSpec`).
#[derive(Debug, Clone, Copy)]
pub struct Dropout {
    pub(super) threshold: u32,
    pub(super) scale: f32,
}

impl Dropout {
    /// `prob` in `(0, 1)`.
    pub fn new(prob: f64) -> Self {
        let threshold = (prob.clamp(0.0, 1.0) * 4_294_967_296.0)
            .round()
            .min(u32::MAX as f64);
        Self {
            threshold: threshold as u32,
            scale: (1.0 / (1.0 - prob)) as f32,
        }
    }
}

/// murmur3's 32-bit finaliser (as `flex/mask.rs`).
#[cube]
fn fmix32(x: u32) -> u32 {
    let mut h = x;
    h ^= h >> 16u32;
    h *= 0x85eb_ca6bu32;
    h ^= h >> 13u32;
    h *= 0xc2b2_ae35u32;
    h ^ (h >> 16u32)
}

/// The dropout factor of mask element `index` under key `(k0, k1)`: 0 or `scale` (also the
/// hidden dropout's, [`super::dropout`]).
#[cube]
pub(super) fn drop_factor(index: u32, k0: u32, k1: u32, threshold: u32, scale: f32) -> f32 {
    let bits = fmix32(fmix32((index * 0x9e37_79b9u32) ^ k0) + k1);
    select(bits >= threshold, scale, f32::new(0.0))
}

/// Key word `w` (0 or 1) from its two 16-bit halves stored as floats in `key[2w..2w + 2]`.
#[cube]
pub(super) fn key_word(key: &Tensor<f32>, #[comptime] w: usize) -> u32 {
    let hi = u32::cast_from(key[2 * w]) & 0xffffu32;
    let lo = u32::cast_from(key[2 * w + 1]) & 0xffffu32;
    (hi << 16u32) | lo
}

/// The forward pass. `mask` is the additive key mask `[batch, keys]`, `key` the dropout key
/// (any tensor when `dropout` is off); `lse` receives each row's log-sum-exp when `write_lse`.
#[cube(launch)]
#[allow(clippy::too_many_arguments)]
fn attention_kernel(
    q: &Tensor<f32>,
    k: &Tensor<f32>,
    v: &Tensor<f32>,
    mask: &Tensor<f32>,
    key: &Tensor<f32>,
    out: &mut Tensor<f32>,
    lse: &mut Tensor<f32>,
    queries: usize,
    keys: usize,
    scale: f32,
    threshold: u32,
    drop_scale: f32,
    #[comptime] head_dim: usize,
    #[comptime] tile: usize,
    #[comptime] dropout: bool,
    #[comptime] write_lse: bool,
) {
    let b = CUBE_POS_Z as usize;
    let h = CUBE_POS_Y as usize;
    let heads = CUBE_COUNT_Y as usize;
    let hidden = heads * head_dim;
    let tid = UNIT_POS_X as usize;
    let i = CUBE_POS_X as usize * tile + tid;
    let valid = i < queries;
    let q_base = (b * queries + i) * hidden + h * head_dim;

    let mut qr = Array::<f32>::new(head_dim);
    let mut acc = Array::<f32>::new(head_dim);
    #[unroll]
    for c in 0usize..head_dim {
        let mut x = f32::new(0.0);
        if valid {
            x = q[q_base + c];
        }
        qr[c] = x * scale;
        acc[c] = f32::new(0.0);
    }
    let k0 = key_word(key, 0usize);
    let k1 = key_word(key, 1usize);
    let mut ks = SharedMemory::<f32>::new(tile * head_dim);
    let mut vs = SharedMemory::<f32>::new(tile * head_dim);
    let mut m = f32::new(NEG_BIG);
    let mut l = f32::new(0.0);
    let row_base = ((b * heads + h) * queries + i) * keys;

    let tiles = keys.div_ceil(tile);
    for t in 0usize..tiles {
        let start = t * tile;
        let j = start + tid;
        let kv_base = (b * keys + j) * hidden + h * head_dim;
        #[unroll]
        for c in 0usize..head_dim {
            let mut kx = f32::new(0.0);
            let mut vx = f32::new(0.0);
            if j < keys {
                kx = k[kv_base + c];
                vx = v[kv_base + c];
            }
            ks[tid * head_dim + c] = kx;
            vs[tid * head_dim + c] = vx;
        }
        sync_cube();
        if valid {
            let n = min(tile, keys - start);
            for r in 0usize..n {
                let jr = start + r;
                let mut s = mask[b * keys + jr];
                #[unroll]
                for c in 0usize..head_dim {
                    s += qr[c] * ks[r * head_dim + c];
                }
                let m_new = select(s > m, s, m);
                let corr = (m - m_new).exp();
                let p = (s - m_new).exp();
                l = l * corr + p;
                let mut w = p;
                if dropout {
                    let index = u32::cast_from(row_base + jr);
                    w = p * drop_factor(index, k0, k1, threshold, drop_scale);
                }
                #[unroll]
                for c in 0usize..head_dim {
                    acc[c] = acc[c] * corr + w * vs[r * head_dim + c];
                }
                m = m_new;
            }
        }
        sync_cube();
    }
    if valid {
        let inv = f32::new(1.0) / l;
        #[unroll]
        for c in 0usize..head_dim {
            out[q_base + c] = acc[c] * inv;
        }
        if write_lse {
            lse[(b * heads + h) * queries + i] = m + l.ln();
        }
    }
}

/// `dq` and `Dᵢ = dOᵢ·Oᵢ` (into `delta`, `[batch, heads, queries]`): one thread per query.
#[cube(launch)]
#[allow(clippy::too_many_arguments)]
fn attention_dq_kernel(
    q: &Tensor<f32>,
    k: &Tensor<f32>,
    v: &Tensor<f32>,
    mask: &Tensor<f32>,
    key: &Tensor<f32>,
    out: &Tensor<f32>,
    grad: &Tensor<f32>,
    lse: &Tensor<f32>,
    dq: &mut Tensor<f32>,
    delta: &mut Tensor<f32>,
    queries: usize,
    keys: usize,
    scale: f32,
    threshold: u32,
    drop_scale: f32,
    #[comptime] head_dim: usize,
    #[comptime] tile: usize,
    #[comptime] dropout: bool,
) {
    let b = CUBE_POS_Z as usize;
    let h = CUBE_POS_Y as usize;
    let heads = CUBE_COUNT_Y as usize;
    let hidden = heads * head_dim;
    let tid = UNIT_POS_X as usize;
    let i = CUBE_POS_X as usize * tile + tid;
    let valid = i < queries;
    let q_base = (b * queries + i) * hidden + h * head_dim;
    let stat = (b * heads + h) * queries + i;

    let mut qr = Array::<f32>::new(head_dim);
    let mut gr = Array::<f32>::new(head_dim);
    let mut acc = Array::<f32>::new(head_dim);
    let mut d_i = f32::new(0.0);
    let mut lse_i = f32::new(0.0);
    #[unroll]
    for c in 0usize..head_dim {
        let mut x = f32::new(0.0);
        let mut g = f32::new(0.0);
        let mut o = f32::new(0.0);
        if valid {
            x = q[q_base + c];
            g = grad[q_base + c];
            o = out[q_base + c];
        }
        qr[c] = x * scale;
        gr[c] = g;
        d_i += g * o;
        acc[c] = f32::new(0.0);
    }
    if valid {
        lse_i = lse[stat];
    }
    let k0 = key_word(key, 0usize);
    let k1 = key_word(key, 1usize);
    let mut ks = SharedMemory::<f32>::new(tile * head_dim);
    let mut vs = SharedMemory::<f32>::new(tile * head_dim);
    let row_base = stat * keys;

    let tiles = keys.div_ceil(tile);
    for t in 0usize..tiles {
        let start = t * tile;
        let j = start + tid;
        let kv_base = (b * keys + j) * hidden + h * head_dim;
        #[unroll]
        for c in 0usize..head_dim {
            let mut kx = f32::new(0.0);
            let mut vx = f32::new(0.0);
            if j < keys {
                kx = k[kv_base + c];
                vx = v[kv_base + c];
            }
            ks[tid * head_dim + c] = kx;
            vs[tid * head_dim + c] = vx;
        }
        sync_cube();
        if valid {
            let n = min(tile, keys - start);
            for r in 0usize..n {
                let jr = start + r;
                let mut s = mask[b * keys + jr];
                let mut dp = f32::new(0.0);
                #[unroll]
                for c in 0usize..head_dim {
                    s += qr[c] * ks[r * head_dim + c];
                    dp += gr[c] * vs[r * head_dim + c];
                }
                let p = (s - lse_i).exp();
                if dropout {
                    let index = u32::cast_from(row_base + jr);
                    dp *= drop_factor(index, k0, k1, threshold, drop_scale);
                }
                let ds = p * (dp - d_i);
                #[unroll]
                for c in 0usize..head_dim {
                    acc[c] += ds * ks[r * head_dim + c];
                }
            }
        }
        sync_cube();
    }
    if valid {
        #[unroll]
        for c in 0usize..head_dim {
            dq[q_base + c] = acc[c] * scale;
        }
        delta[stat] = d_i;
    }
}

/// `dk` and `dv`: one thread per key, the queries (with their output gradients, log-sum-exp
/// and `D`) staged tile by tile.
#[cube(launch)]
#[allow(clippy::too_many_arguments)]
fn attention_dkv_kernel(
    q: &Tensor<f32>,
    k: &Tensor<f32>,
    v: &Tensor<f32>,
    mask: &Tensor<f32>,
    key: &Tensor<f32>,
    grad: &Tensor<f32>,
    lse: &Tensor<f32>,
    delta: &Tensor<f32>,
    dk: &mut Tensor<f32>,
    dv: &mut Tensor<f32>,
    queries: usize,
    keys: usize,
    scale: f32,
    threshold: u32,
    drop_scale: f32,
    #[comptime] head_dim: usize,
    #[comptime] tile: usize,
    #[comptime] dropout: bool,
) {
    let b = CUBE_POS_Z as usize;
    let h = CUBE_POS_Y as usize;
    let heads = CUBE_COUNT_Y as usize;
    let hidden = heads * head_dim;
    let tid = UNIT_POS_X as usize;
    let j = CUBE_POS_X as usize * tile + tid;
    let valid = j < keys;
    let kv_base = (b * keys + j) * hidden + h * head_dim;

    let mut kr = Array::<f32>::new(head_dim);
    let mut vr = Array::<f32>::new(head_dim);
    let mut dk_acc = Array::<f32>::new(head_dim);
    let mut dv_acc = Array::<f32>::new(head_dim);
    let mut mk = f32::new(0.0);
    #[unroll]
    for c in 0usize..head_dim {
        let mut kx = f32::new(0.0);
        let mut vx = f32::new(0.0);
        if valid {
            kx = k[kv_base + c];
            vx = v[kv_base + c];
        }
        kr[c] = kx;
        vr[c] = vx;
        dk_acc[c] = f32::new(0.0);
        dv_acc[c] = f32::new(0.0);
    }
    if valid {
        mk = mask[b * keys + j];
    }
    let k0 = key_word(key, 0usize);
    let k1 = key_word(key, 1usize);
    let mut qs = SharedMemory::<f32>::new(tile * head_dim);
    let mut gs = SharedMemory::<f32>::new(tile * head_dim);
    let mut ls = SharedMemory::<f32>::new(tile);
    let mut ds_ = SharedMemory::<f32>::new(tile);
    let stat_base = (b * heads + h) * queries;

    let tiles = queries.div_ceil(tile);
    for t in 0usize..tiles {
        let start = t * tile;
        let i = start + tid;
        let q_base = (b * queries + i) * hidden + h * head_dim;
        #[unroll]
        for c in 0usize..head_dim {
            let mut x = f32::new(0.0);
            let mut g = f32::new(0.0);
            if i < queries {
                x = q[q_base + c];
                g = grad[q_base + c];
            }
            qs[tid * head_dim + c] = x * scale;
            gs[tid * head_dim + c] = g;
        }
        let mut l_i = f32::new(0.0);
        let mut d_i = f32::new(0.0);
        if i < queries {
            l_i = lse[stat_base + i];
            d_i = delta[stat_base + i];
        }
        ls[tid] = l_i;
        ds_[tid] = d_i;
        sync_cube();
        if valid {
            let n = min(tile, queries - start);
            for r in 0usize..n {
                let mut s = mk;
                let mut dp = f32::new(0.0);
                #[unroll]
                for c in 0usize..head_dim {
                    s += qs[r * head_dim + c] * kr[c];
                    dp += gs[r * head_dim + c] * vr[c];
                }
                let p = (s - ls[r]).exp();
                let mut f = f32::new(1.0);
                if dropout {
                    let index = u32::cast_from((stat_base + start + r) * keys + j);
                    f = drop_factor(index, k0, k1, threshold, drop_scale);
                }
                let pf = p * f;
                let ds = p * (dp * f - ds_[r]);
                #[unroll]
                for c in 0usize..head_dim {
                    dv_acc[c] += pf * gs[r * head_dim + c];
                    dk_acc[c] += ds * qs[r * head_dim + c];
                }
            }
        }
        sync_cube();
    }
    if valid {
        #[unroll]
        for c in 0usize..head_dim {
            dk[kv_base + c] = dk_acc[c];
            dv[kv_base + c] = dv_acc[c];
        }
    }
}

/// The forward kernel with its sizes; `lse` says whether to write the log-sum-exp.
#[derive(Debug)]
struct Forward {
    dims: Dims,
    dropout: Option<Dropout>,
    lse: bool,
}

/// `(threshold, scale)` of an optional dropout (zero threshold, unit scale: keep everything).
fn drop_params(dropout: Option<Dropout>) -> (u32, f32) {
    dropout.map_or((0, 1.0), |d| (d.threshold, d.scale))
}

impl<R: KernelRuntime> CubeKernel<R> for Forward {
    fn run(&self, inputs: Vec<CubeTensor<R>>) -> Vec<CubeTensor<R>> {
        let (q, k, v, mask, key) = match inputs.as_slice() {
            [q, k, v, mask] => (q, k, v, mask, mask),
            [q, k, v, mask, key] => (q, k, v, mask, key),
            _ => return Vec::new(),
        };
        let d = self.dims;
        let out = empty(q, q.shape());
        // Inference writes no log-sum-exp: a one-float stand-in for the argument.
        let lse_shape = match self.lse {
            true => Shape::new([d.batch, d.heads, d.queries]),
            false => Shape::new([1]),
        };
        let lse = empty(q, lse_shape);
        let (threshold, drop_scale) = drop_params(self.dropout);
        attention_kernel::launch::<R>(
            &q.client,
            d.count(d.queries),
            CubeDim::new_1d(TILE as u32),
            q.clone().into_tensor_arg(),
            k.clone().into_tensor_arg(),
            v.clone().into_tensor_arg(),
            mask.clone().into_tensor_arg(),
            key.clone().into_tensor_arg(),
            out.clone().into_tensor_arg(),
            lse.clone().into_tensor_arg(),
            d.queries,
            d.keys,
            d.scale(),
            threshold,
            drop_scale,
            d.head_dim,
            TILE,
            self.dropout.is_some(),
            self.lse,
        );
        if self.lse { vec![out, lse] } else { vec![out] }
    }
}

/// Both backward kernels with their sizes.
#[derive(Debug)]
struct Backward {
    dims: Dims,
    dropout: Option<Dropout>,
}

impl<R: KernelRuntime> CubeKernel<R> for Backward {
    fn run(&self, inputs: Vec<CubeTensor<R>>) -> Vec<CubeTensor<R>> {
        let (q, k, v, mask, out, grad, lse, key) = match inputs.as_slice() {
            [q, k, v, mask, out, grad, lse] => (q, k, v, mask, out, grad, lse, mask),
            [q, k, v, mask, out, grad, lse, key] => (q, k, v, mask, out, grad, lse, key),
            _ => return Vec::new(),
        };
        let d = self.dims;
        let (dq, dk, dv) = (
            empty(q, q.shape()),
            empty(k, k.shape()),
            empty(v, v.shape()),
        );
        let delta = empty(q, Shape::new([d.batch, d.heads, d.queries]));
        let (threshold, drop_scale) = drop_params(self.dropout);
        let dropout = self.dropout.is_some();
        attention_dq_kernel::launch::<R>(
            &q.client,
            d.count(d.queries),
            CubeDim::new_1d(TILE as u32),
            q.clone().into_tensor_arg(),
            k.clone().into_tensor_arg(),
            v.clone().into_tensor_arg(),
            mask.clone().into_tensor_arg(),
            key.clone().into_tensor_arg(),
            out.clone().into_tensor_arg(),
            grad.clone().into_tensor_arg(),
            lse.clone().into_tensor_arg(),
            dq.clone().into_tensor_arg(),
            delta.clone().into_tensor_arg(),
            d.queries,
            d.keys,
            d.scale(),
            threshold,
            drop_scale,
            d.head_dim,
            TILE,
            dropout,
        );
        attention_dkv_kernel::launch::<R>(
            &q.client,
            d.count(d.keys),
            CubeDim::new_1d(TILE as u32),
            q.clone().into_tensor_arg(),
            k.clone().into_tensor_arg(),
            v.clone().into_tensor_arg(),
            mask.clone().into_tensor_arg(),
            key.clone().into_tensor_arg(),
            grad.clone().into_tensor_arg(),
            lse.clone().into_tensor_arg(),
            delta.into_tensor_arg(),
            dk.clone().into_tensor_arg(),
            dv.clone().into_tensor_arg(),
            d.queries,
            d.keys,
            d.scale(),
            threshold,
            drop_scale,
            d.head_dim,
            TILE,
            dropout,
        );
        vec![dq, dk, dv]
    }
}

/// Attention without dropout and without what a backward pass needs (inference).
pub fn forward<R: KernelRuntime>(
    [q, k, v]: [FusedTensor<R>; 3],
    mask: FusedTensor<R>,
    dims: Dims,
) -> FusedTensor<R> {
    let shape = q.shape();
    let kernel = Forward {
        dims,
        dropout: None,
        lse: false,
    };
    let [out] = register("kernel_attention", [q, k, v, mask], [shape], kernel);
    out
}

/// Attention for training: the output and each row's log-sum-exp `[batch, heads, queries]`;
/// with `dropout`, its key `[4]` (16-bit halves of two words, as floats) among the inputs.
pub fn forward_train<R: KernelRuntime>(
    [q, k, v]: [FusedTensor<R>; 3],
    mask: FusedTensor<R>,
    dropout: Option<(Dropout, FusedTensor<R>)>,
    dims: Dims,
) -> [FusedTensor<R>; 2] {
    let shapes = [
        q.shape(),
        Shape::new([dims.batch, dims.heads, dims.queries]),
    ];
    match dropout {
        None => register(
            "kernel_attention_train",
            [q, k, v, mask],
            shapes,
            Forward {
                dims,
                dropout: None,
                lse: true,
            },
        ),
        Some((spec, key)) => register(
            "kernel_attention_train_dropout",
            [q, k, v, mask, key],
            shapes,
            Forward {
                dims,
                dropout: Some(spec),
                lse: true,
            },
        ),
    }
}

/// `[dq, dk, dv]` for the output gradient `grad`, from the forward pass's inputs, output and
/// log-sum-exp (and dropout key).
pub fn backward<R: KernelRuntime>(
    [q, k, v]: [FusedTensor<R>; 3],
    mask: FusedTensor<R>,
    [out, grad, lse]: [FusedTensor<R>; 3],
    dropout: Option<(Dropout, FusedTensor<R>)>,
    dims: Dims,
) -> [FusedTensor<R>; 3] {
    let shapes = [q.shape(), k.shape(), v.shape()];
    match dropout {
        None => register(
            "kernel_attention_backward",
            [q, k, v, mask, out, grad, lse],
            shapes,
            Backward {
                dims,
                dropout: None,
            },
        ),
        Some((spec, key)) => register(
            "kernel_attention_backward_dropout",
            [q, k, v, mask, out, grad, lse, key],
            shapes,
            Backward {
                dims,
                dropout: Some(spec),
            },
        ),
    }
}

//! Int8 linear layers for inference: [`Int8Linear`], the weight format the CPU int8 kernels
//! read, how an f32 layer is quantised into it, and the portable composition that computes the
//! same numbers on any backend.
//!
//! The recipe is PyTorch's dynamic quantisation (`torch.ao.quantization.quantize_dynamic`):
//! weights quantised once, symmetric int8 per output channel; activations quantised at run
//! time, asymmetric u8 (a scale and a zero point) — per row here, where PyTorch takes one pair
//! per tensor, so one outlier token does not coarsen every other token's grid; products
//! accumulated in i32 and scaled back to f32, with the bias added in f32.
//!
//! # The packed weight
//! `weight` holds `q[k, j]` (input `k`, output `j`) as i8 in the layout the kernels' inner loop
//! reads (AVX-512 VNNI's `vpdpbusd` multiplies four consecutive u8 activations by four i8
//! weights in each 32-bit lane): shape `[⌈d_input/4⌉, 4·d_output]`, element `(k, j)` at row
//! `k / 4`, column `4·j + k % 4`, zero for the padding `k ≥ d_input`. `W[k, j] ≈ q[k, j] ·
//! weight_scale[j]`, and `weight_sum[j] = Σ_k q[k, j]` (i32) corrects for the activations' zero
//! point: `Σ_k (a_k − z)·q[k, j] = Σ_k a_k·q[k, j] − z·weight_sum[j]`.

use burn::module::{Module, Param, ParamId};
use burn::nn::Linear;
use burn::tensor::backend::Backend;
use burn::tensor::module::linear;
use burn::tensor::{DType, Int, Tensor, TensorData};

/// The largest quantised `d_input`: i32 accumulators hold `Σ_k a_k·q_k` for
/// `a ≤ 255, |q| ≤ 127` only up to `2³¹ / (255·127)` ≈ 66,000 terms.
pub const MAX_INT8_INPUT: usize = 65_536;

/// What can keep a layer from being quantised.
#[derive(Debug, thiserror::Error)]
pub enum QuantizeError {
    /// A weight, bias or table value is NaN or infinite.
    #[error("{what} holds a non-finite value (NaN or infinity): nothing to quantise")]
    NonFinite {
        /// `weight` or `bias`.
        what: &'static str,
    },
    /// Too many inputs for i32 accumulation.
    #[error("d_input {d_input} exceeds {MAX_INT8_INPUT}, the most i32 accumulators can sum")]
    TooWide {
        /// The layer's input width.
        d_input: usize,
    },
    /// The packed parts disagree in shape.
    #[error("int8 layer parts disagree: {0}")]
    Shape(String),
    /// Reading a tensor back from the device failed.
    #[error("reading the weight failed: {0}")]
    Read(String),
}

/// A frozen linear layer with int8 weights (see the module docs for the format).
#[derive(Module, Debug)]
pub struct Int8Linear<B: Backend> {
    /// Packed `q`, i8, `[⌈d_input/4⌉, 4·d_output]`.
    pub weight: Param<Tensor<B, 2, Int>>,
    /// Per output channel, `[d_output]`.
    pub weight_scale: Param<Tensor<B, 1>>,
    /// `Σ_k q[k, j]`, i32, `[d_output]`.
    pub weight_sum: Param<Tensor<B, 1, Int>>,
    /// f32, `[d_output]`.
    pub bias: Option<Param<Tensor<B, 1>>>,
    /// The layer's input width (the packed rows round it up to a multiple of 4).
    #[module(skip)]
    pub d_input: usize,
}

/// An int8 layer on the host: the values of an [`Int8Linear`], built or read back.
#[derive(Debug, Clone, PartialEq)]
pub struct Int8Parts {
    /// `q[j][k]`, row `j` = output channel `j` (PyTorch's and safetensors' `[d_output,
    /// d_input]` orientation).
    pub q: Vec<i8>,
    /// Per output channel.
    pub scale: Vec<f32>,
    /// Per output channel, when the layer has one.
    pub bias: Option<Vec<f32>>,
    /// Input width.
    pub d_input: usize,
    /// Output width.
    pub d_output: usize,
}

impl Int8Parts {
    /// Quantises `w` (`[d_input, d_output]` row-major, Burn's orientation) per output channel:
    /// `scale[j] = max_k |w[k, j]| / 127`, `q = round(w / scale)` (a zero column gets scale 0).
    pub fn quantize(
        w: &[f32],
        bias: Option<Vec<f32>>,
        d_input: usize,
        d_output: usize,
    ) -> Result<Self, QuantizeError> {
        if w.len() != d_input * d_output {
            return Err(QuantizeError::Shape(format!(
                "{} weight values for [{d_input}, {d_output}]",
                w.len()
            )));
        }
        if w.iter().any(|v| !v.is_finite()) {
            return Err(QuantizeError::NonFinite { what: "weight" });
        }
        if bias
            .as_ref()
            .is_some_and(|b| b.iter().any(|v| !v.is_finite()))
        {
            return Err(QuantizeError::NonFinite { what: "bias" });
        }
        // Column maxima: `w` is `[d_input, d_output]`, a channel is a column.
        let mut col_max = vec![0.0f32; d_output];
        for row in w.chunks_exact(d_output.max(1)) {
            col_max
                .iter_mut()
                .zip(row)
                .for_each(|(m, v)| *m = m.max(v.abs()));
        }
        let scale: Vec<f32> = col_max.iter().map(|&m| scale_of(m)).collect();
        let mut q = vec![0i8; d_input * d_output];
        for (k, row) in w.chunks_exact(d_output.max(1)).enumerate() {
            for (j, &v) in row.iter().enumerate() {
                q[j * d_input + k] = to_grid(v, scale[j]);
            }
        }
        Self::new(q, scale, bias, d_input, d_output)
    }

    /// From quantised values (e.g. read from a file), checking that the parts fit.
    pub fn new(
        q: Vec<i8>,
        scale: Vec<f32>,
        bias: Option<Vec<f32>>,
        d_input: usize,
        d_output: usize,
    ) -> Result<Self, QuantizeError> {
        if d_input > MAX_INT8_INPUT {
            return Err(QuantizeError::TooWide { d_input });
        }
        let fits = q.len() == d_input * d_output
            && scale.len() == d_output
            && bias.as_ref().is_none_or(|b| b.len() == d_output);
        if !fits {
            return Err(QuantizeError::Shape(format!(
                "{} weights, {} scales, {:?} biases for [{d_output}, {d_input}]",
                q.len(),
                scale.len(),
                bias.as_ref().map(Vec::len)
            )));
        }
        if q.contains(&i8::MIN) {
            // −128 has no positive twin: the symmetric grid stops at ±127.
            return Err(QuantizeError::Shape(
                "weight holds -128; symmetric int8 weights lie in [-127, 127]".into(),
            ));
        }
        if scale.iter().any(|s| !s.is_finite() || *s < 0.0) {
            return Err(QuantizeError::NonFinite {
                what: "weight_scale",
            });
        }
        Ok(Self {
            q,
            scale,
            bias,
            d_input,
            d_output,
        })
    }

    /// `q` in the packed layout (module docs).
    pub fn packed(&self) -> Vec<i8> {
        let (k, n) = (self.d_input, self.d_output);
        let mut packed = vec![0i8; k.div_ceil(4) * 4 * n];
        for j in 0..n {
            for (kk, &v) in self.q[j * k..(j + 1) * k].iter().enumerate() {
                packed[((kk / 4) * n + j) * 4 + kk % 4] = v;
            }
        }
        packed
    }

    /// `q` back from the packed layout.
    pub fn unpack(packed: &[i8], d_input: usize, d_output: usize) -> Vec<i8> {
        let mut q = vec![0i8; d_input * d_output];
        for j in 0..d_output {
            for k in 0..d_input {
                q[j * d_input + k] = packed[((k / 4) * d_output + j) * 4 + k % 4];
            }
        }
        q
    }
}

/// The symmetric int8 scale of values whose largest magnitude is `amax`: `amax / 127`.
fn scale_of(amax: f32) -> f32 {
    amax / 127.0
}

/// `v` on the grid of `scale` (`round(v / scale)`, which `as` keeps in ±127 by construction);
/// 0 for a zero scale (an all-zero row or column).
fn to_grid(v: f32, scale: f32) -> i8 {
    if scale > 0.0 {
        (v / scale).round() as i8
    } else {
        0
    }
}

/// The largest magnitude in `row`.
fn amax(row: &[f32]) -> f32 {
    row.iter().fold(0.0f32, |m, v| m.max(v.abs()))
}

/// A table (`rows × cols`, row-major: an embedding table) quantised per row: symmetric int8,
/// `scale[r] = max |row r| / 127` (0 for a zero row). Returns `(q, scale)`.
pub fn quantize_table(
    values: &[f32],
    rows: usize,
    cols: usize,
) -> Result<(Vec<i8>, Vec<f32>), QuantizeError> {
    if values.len() != rows * cols {
        return Err(QuantizeError::Shape(format!(
            "{} table values for [{rows}, {cols}]",
            values.len()
        )));
    }
    if values.iter().any(|v| !v.is_finite()) {
        return Err(QuantizeError::NonFinite { what: "table" });
    }
    let mut q = Vec::with_capacity(values.len());
    let mut scale = Vec::with_capacity(rows);
    for row in values.chunks_exact(cols.max(1)) {
        let s = scale_of(amax(row));
        q.extend(row.iter().map(|&v| to_grid(v, s)));
        scale.push(s);
    }
    Ok((q, scale))
}

/// Rounds a table in place to its per-row int8 grid: the values of
/// `dequantize_table(quantize_table(..))`, without either copy (for a word-embedding table,
/// tens of MiB).
pub fn round_table(values: &mut [f32], cols: usize) -> Result<(), QuantizeError> {
    if values.iter().any(|v| !v.is_finite()) {
        return Err(QuantizeError::NonFinite { what: "table" });
    }
    for row in values.chunks_exact_mut(cols.max(1)) {
        let s = scale_of(amax(row));
        for v in row.iter_mut() {
            *v = f32::from(to_grid(*v, s)) * s;
        }
    }
    Ok(())
}

/// `q[r][c]·scale[r]`: a table of [`quantize_table`] back in f32.
pub fn dequantize_table(q: &[i8], scale: &[f32], cols: usize) -> Vec<f32> {
    q.chunks_exact(cols.max(1))
        .zip(scale)
        .flat_map(|(row, &s)| row.iter().map(move |&v| f32::from(v) * s))
        .collect()
}

impl<B: Backend> Int8Linear<B> {
    /// `linear` quantised (its weight and bias read back to the host).
    pub fn quantize(linear: &Linear<B>) -> Result<Self, QuantizeError> {
        let [d_input, d_output] = linear.weight.dims();
        let read = |t: Tensor<B, 1>| {
            t.into_data()
                .convert::<f32>()
                .to_vec::<f32>()
                .map_err(|e| QuantizeError::Read(format!("{e:?}")))
        };
        let w = read(linear.weight.val().reshape([d_input * d_output]))?;
        let bias = linear.bias.as_ref().map(|b| read(b.val())).transpose()?;
        let parts = Int8Parts::quantize(&w, bias, d_input, d_output)?;
        Ok(Self::from_parts(&parts, &linear.weight.device()))
    }

    /// The layer holding `parts`, on `device`.
    pub fn from_parts(parts: &Int8Parts, device: &B::Device) -> Self {
        let (k, n) = (parts.d_input, parts.d_output);
        let mut sum = vec![0i32; n];
        for (j, s) in sum.iter_mut().enumerate() {
            *s = parts.q[j * k..(j + 1) * k]
                .iter()
                .map(|&v| i32::from(v))
                .sum();
        }
        let weight = Tensor::<B, 2, Int>::from_data(
            TensorData::new(parts.packed(), [k.div_ceil(4), 4 * n]),
            (device, DType::I8),
        );
        let weight_sum =
            Tensor::<B, 1, Int>::from_data(TensorData::new(sum, [n]), (device, DType::I32));
        let float = |v: &[f32]| Tensor::<B, 1>::from_data(TensorData::new(v.to_vec(), [n]), device);
        Self {
            weight: Param::initialized(ParamId::new(), weight),
            weight_scale: Param::from_tensor(float(&parts.scale)),
            weight_sum: Param::initialized(ParamId::new(), weight_sum),
            bias: parts.bias.as_deref().map(|b| Param::from_tensor(float(b))),
            d_input: k,
        }
    }

    /// The layer's values on the host, in PyTorch's orientation (for saving).
    pub fn parts(&self) -> Result<Int8Parts, QuantizeError> {
        let n = self.d_output();
        let packed = self
            .weight
            .val()
            .into_data()
            .convert::<i8>()
            .to_vec::<i8>()
            .map_err(|e| QuantizeError::Read(format!("{e:?}")))?;
        let float = |t: Tensor<B, 1>| {
            t.into_data()
                .convert::<f32>()
                .to_vec::<f32>()
                .map_err(|e| QuantizeError::Read(format!("{e:?}")))
        };
        Int8Parts::new(
            Int8Parts::unpack(&packed, self.d_input, n),
            float(self.weight_scale.val())?,
            self.bias.as_ref().map(|b| float(b.val())).transpose()?,
            self.d_input,
            n,
        )
    }

    /// `[d_input, d_output]`.
    pub fn dims(&self) -> [usize; 2] {
        [self.d_input, self.d_output()]
    }

    /// Output width.
    pub fn d_output(&self) -> usize {
        self.weight_scale.dims()[0]
    }

    /// `W[k, j] = q[k, j]·weight_scale[j]` as an f32 `[d_input, d_output]` weight.
    pub fn dequantized_weight(&self) -> Tensor<B, 2> {
        let [k4, n4] = self.weight.dims();
        let n = n4 / 4;
        self.weight
            .val()
            .float()
            .reshape([k4, n, 4])
            .swap_dims(1, 2)
            .reshape([k4 * 4, n])
            .slice([0..self.d_input, 0..n])
            * self.weight_scale.val().reshape([1, n])
    }
}

/// The int8 layer's output computed with float tensor ops: activations quantised per row
/// (u8, zero point included in the range) and dequantised, times the dequantised weight, plus
/// the bias. The same numbers as the integer kernels up to the order of f32 rounding: the
/// portable [`crate::KernelBackend::kernel_linear_int8`], and the reference its kernels are
/// tested against.
///
/// # Shapes
/// - x: `[..., d_input]`
/// - output: `[..., d_output]`
pub fn linear_int8_composed<B: Backend, const D: usize>(
    x: Tensor<B, D>,
    layer: &Int8Linear<B>,
) -> Tensor<B, D> {
    let x = fake_quantize_rows(x);
    linear(
        x,
        layer.dequantized_weight(),
        layer.bias.as_ref().map(|b| b.val()),
    )
}

/// `x` rounded to its rows' u8 grids: per row, `lo = min(x, 0)`, `hi = max(x, 0)`,
/// `s = (hi − lo)/255`, `z = round(−lo/s)`, `x ≈ (clamp(round(x/s) + z, 0, 255) − z)·s`.
pub fn fake_quantize_rows<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    let last = D - 1;
    let lo = x.clone().min_dim(last).clamp_max(0.0);
    let hi = x.clone().max_dim(last).clamp_min(0.0);
    let range = hi - lo.clone();
    // An all-zero row: any scale gives zeros; 1 avoids 0/0.
    let flat = range.clone().equal_elem(0.0);
    let scale = (range / 255.0).mask_fill(flat, 1.0);
    let zero = (lo.neg() / scale.clone()).round().clamp(0.0, 255.0);
    ((x / scale.clone()).round() + zero.clone())
        .clamp(0.0, 255.0)
        .sub(zero)
        .mul(scale)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packing_round_trips_and_places_four_inputs_per_lane() {
        let (k, n) = (7, 3);
        let q: Vec<i8> = (0..k * n).map(|i| (i as i8) - 10).collect();
        let parts = Int8Parts::new(q.clone(), vec![1.0; n], None, k, n).unwrap();
        let packed = parts.packed();
        assert_eq!(packed.len(), 2 * 4 * n);
        // (k = 5, j = 2) sits at row 1, column 4·2 + 1.
        assert_eq!(packed[(n + 2) * 4 + 1], q[2 * k + 5]);
        // Padding rows k = 7 are zero.
        assert_eq!(packed[(n + 1) * 4 + 3], 0);
        assert_eq!(Int8Parts::unpack(&packed, k, n), q);
    }

    #[test]
    fn quantisation_is_per_output_channel_and_within_half_a_step() {
        let (k, n) = (5, 2);
        // Column 0 small, column 1 large: one shared scale would flatten column 0.
        let w: Vec<f32> = (0..k * n)
            .map(|i| {
                if i % 2 == 0 {
                    0.01 * i as f32
                } else {
                    -3.0 * i as f32
                }
            })
            .collect();
        let p = Int8Parts::quantize(&w, None, k, n).unwrap();
        assert!((p.scale[0] - 0.08 / 127.0).abs() < 1e-9, "{:?}", p.scale);
        for kk in 0..k {
            for j in 0..n {
                let back = f32::from(p.q[j * k + kk]) * p.scale[j];
                assert!((back - w[kk * n + j]).abs() <= p.scale[j] / 2.0 + 1e-6);
            }
        }
        assert_eq!(p.q.iter().map(|v| v.unsigned_abs()).max(), Some(127));
    }

    #[test]
    fn tables_quantise_per_row_and_requantise_to_the_same_values() {
        let (rows, cols) = (3, 4);
        let t = [
            0.5, -1.0, 0.25, 0.0, 0.0, 0.0, 0.0, 0.0, 100.0, 3.0, -7.5, 1.0,
        ];
        let (q, scale) = quantize_table(&t, rows, cols).unwrap();
        assert_eq!(&q[..4], &[64, -127, 32, 0]);
        assert_eq!(scale[1], 0.0, "a zero row keeps scale 0");
        let back = dequantize_table(&q, &scale, cols);
        for (b, v) in back.iter().zip(&t) {
            assert!((b - v).abs() <= 100.0 / 254.0 + 1e-6);
        }
        let mut rounded = t.to_vec();
        round_table(&mut rounded, cols).unwrap();
        assert_eq!(rounded, back, "in place, the same values");
        // A table already on its grid quantises to the same integers (what saving an int8
        // model's embeddings relies on).
        let (q2, scale2) = quantize_table(&back, rows, cols).unwrap();
        assert_eq!(q2, q);
        for (a, b) in scale2.iter().zip(&scale) {
            assert!((a - b).abs() <= f32::EPSILON * b.abs());
        }
    }

    #[test]
    fn bad_parts_are_refused_with_what_is_wrong() {
        let nan = Int8Parts::quantize(&[1.0, f32::NAN], None, 1, 2).unwrap_err();
        assert!(
            nan.to_string().contains("weight holds a non-finite"),
            "{nan}"
        );
        let shape = Int8Parts::new(vec![0; 6], vec![1.0; 2], None, 2, 2).unwrap_err();
        assert!(shape.to_string().contains("6 weights"), "{shape}");
        let wide = Int8Parts::new(vec![], vec![], None, MAX_INT8_INPUT + 1, 0).unwrap_err();
        assert!(matches!(wide, QuantizeError::TooWide { .. }));
        let min = Int8Parts::new(vec![-128], vec![1.0], None, 1, 1).unwrap_err();
        assert!(min.to_string().contains("-128"), "{min}");
    }
}

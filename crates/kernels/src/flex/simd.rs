//! The SIMD dispatch every kernel goes through, and the vectorisable primitives they share
//! (e^x, maximum, sum, dot product).

/// e^x in f32 (Cephes `expf`: 2ⁿ·eʳ with |r| ≤ ln2/2, degree-6 polynomial, ≈ 1 ulp), written
/// branch-free so loops over it vectorise. Below −87 it returns 0 instead of a subnormal.
#[inline(always)]
pub(super) fn exp_f32(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    // 1.5·2²³: adding and subtracting it rounds to the nearest integer.
    const ROUND: f32 = 12_582_912.0;
    let xc = x.clamp(-87.0, 88.0);
    // n = round(xc·log2 e) sits in the low mantissa bits of `t` (|n| ≤ 127 ≪ 2²²).
    let t = xc * LOG2E + ROUND;
    let n = t - ROUND;
    let r = xc - n * 0.693_359_4 - n * -2.121_944_4e-4;
    let poly = ((((1.987_569_2e-4 * r + 1.398_2e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2) * r
        + 0.166_666_65)
        * r
        + 0.5;
    let y = poly * r * r + r + 1.0;
    // 2ⁿ from the bits of `t`, not from `n as i32`: Rust's saturating float → int cast does
    // not vectorise (LLVM emits a scalar convert-compare-select per lane).
    let n_bits = t.to_bits().wrapping_sub(ROUND.to_bits());
    let pow2 = f32::from_bits(n_bits.wrapping_add(127) << 23);
    if x < -87.0 { 0.0 } else { y * pow2 }
}

/// A loop nest to compile once per SIMD level. `run` must be `#[inline(always)]` (and
/// everything it calls): only then is it compiled inside pulp's `#[target_feature]`
/// functions and vectorised at that width. A closure would not do: its body is a separate
/// function the inliner may keep out of line, compiled for the baseline (SSE2) only.
pub(super) trait Kernel {
    fn run(self);
}

struct Dispatch<K>(K);

impl<K: Kernel> pulp::WithSimd for Dispatch<K> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) {
        self.0.run()
    }
}

/// Runs `kernel` compiled for the best SIMD level this CPU has (AVX-512, AVX2, ...).
pub(super) fn simd(kernel: impl Kernel) {
    pulp::Arch::new().dispatch(Dispatch(kernel))
}

/// Lanes of the explicit accumulators below: without fast-math, LLVM keeps a float
/// reduction in source order (scalar) unless the code itself keeps independent partial sums.
const LANES: usize = 16;

#[inline(always)]
pub(super) fn max_of(x: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; LANES];
    let chunks = x.chunks_exact(LANES);
    let tail = chunks.remainder();
    for c in chunks {
        for i in 0..LANES {
            acc[i] = acc[i].max(c[i]);
        }
    }
    tail.iter()
        .chain(&acc)
        .fold(f32::NEG_INFINITY, |m, &v| m.max(v))
}

#[inline(always)]
pub(super) fn min_of(x: &[f32]) -> f32 {
    let mut acc = [f32::INFINITY; LANES];
    let chunks = x.chunks_exact(LANES);
    let tail = chunks.remainder();
    for c in chunks {
        for i in 0..LANES {
            acc[i] = acc[i].min(c[i]);
        }
    }
    tail.iter()
        .chain(&acc)
        .fold(f32::INFINITY, |m, &v| m.min(v))
}

#[inline(always)]
pub(super) fn sum_of(x: &[f32]) -> f32 {
    let mut acc = [0.0f32; LANES];
    let chunks = x.chunks_exact(LANES);
    let tail = chunks.remainder();
    for c in chunks {
        for i in 0..LANES {
            acc[i] += c[i];
        }
    }
    acc.iter().sum::<f32>() + tail.iter().sum::<f32>()
}

/// `Σ a_i·b_i`.
#[inline(always)]
pub(super) fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; LANES];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let (ta, tb) = (ca.remainder(), cb.remainder());
    for (a, b) in ca.zip(cb) {
        for i in 0..LANES {
            acc[i] += a[i] * b[i];
        }
    }
    acc.iter().sum::<f32>() + ta.iter().zip(tb).map(|(&a, &b)| a * b).sum::<f32>()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_matches_std_to_a_few_ulp() {
        let mut worst = 0.0f32;
        for i in -8700..8800 {
            let x = i as f32 * 0.01;
            let (a, b) = (exp_f32(x), x.exp());
            worst = worst.max(((a - b) / b).abs());
        }
        assert!(worst < 5e-7, "relative error {worst}");
        assert_eq!(exp_f32(-100.0), 0.0);
        assert_eq!(exp_f32(f32::MIN), 0.0);
    }
}

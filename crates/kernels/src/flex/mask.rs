//! Counter-based dropout masks: element `i` of a mask is a pure function of `(key, i)`.
//!
//! That is what lets the fused kernels regenerate a mask in the backward pass instead of
//! storing it (one `[batch, heads, seq, seq]` f32 tensor per layer), fill it from any number
//! of threads in any order, and vectorise the generation (32-bit multiplies only).
//! [`MaskKernel`] and [`apply_mask`] apply a mask to a slice and to a whole tensor.

use burn_flex::FlexTensor;
use rayon::prelude::*;

use super::simd::{Kernel, simd};
use super::tensor::{CHUNK, unique, values_mut};

/// The key of one dropout mask: two 32-bit words drawn from the backend's seeded RNG.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaskKey(pub [u32; 2]);

/// murmur3's 32-bit finaliser: a bijection with full avalanche.
#[inline(always)]
fn fmix32(mut h: u32) -> u32 {
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^ (h >> 16)
}

/// Dropout with probability `prob` as an integer test: keep element `i` iff
/// `bits(key, i) >= threshold`.
#[derive(Debug, Clone, Copy)]
pub struct MaskSpec {
    key: MaskKey,
    threshold: u32,
    /// `1 / (1 - prob)`: kept elements are scaled so the expectation is unchanged.
    pub scale: f32,
}

impl MaskSpec {
    /// `prob` in `[0, 1)`.
    pub fn new(key: MaskKey, prob: f64) -> MaskSpec {
        let threshold = (prob.clamp(0.0, 1.0) * 4_294_967_296.0)
            .round()
            .min(u32::MAX as f64);
        MaskSpec {
            key,
            threshold: threshold as u32,
            scale: (1.0 / (1.0 - prob)) as f32,
        }
    }

    /// 32 pseudo-random bits for element `index`.
    #[inline(always)]
    pub fn bits(&self, index: u32) -> u32 {
        let [k0, k1] = self.key.0;
        fmix32(fmix32(index.wrapping_mul(0x9e37_79b9) ^ k0).wrapping_add(k1))
    }

    /// The mask's value at `index`: `0` (dropped) or [`MaskSpec::scale`] (kept).
    #[inline(always)]
    pub fn factor(&self, index: u32) -> f32 {
        // All ones when kept, zero when dropped, and-ed into the scale's bits: LLVM compiled
        // the equivalent `if` into a gather from a two-entry table, 16 loads per vector.
        let keep = u32::from(self.bits(index) >= self.threshold).wrapping_neg();
        f32::from_bits(self.scale.to_bits() & keep)
    }
}

/// `x ← x ⊙ mask` for mask elements `base..base + x.len()`.
pub(super) struct MaskKernel<'a> {
    pub x: &'a mut [f32],
    pub spec: &'a MaskSpec,
    pub base: u32,
}

impl Kernel for MaskKernel<'_> {
    #[inline(always)]
    fn run(self) {
        for (i, x) in self.x.iter_mut().enumerate() {
            *x *= self.spec.factor(self.base.wrapping_add(i as u32));
        }
    }
}

/// `x ⊙ mask`, the mask regenerated from `spec` (element `i` of the flattened tensor uses
/// mask element `offset + i`), in place when `x` is not shared.
pub(super) fn apply_mask(x: FlexTensor, spec: &MaskSpec, offset: usize) -> FlexTensor {
    let mut x = unique(x);
    values_mut(&mut x)
        .par_chunks_mut(CHUNK)
        .enumerate()
        .for_each(|(c, x)| {
            let base = (offset + c * CHUNK) as u32;
            simd(MaskKernel { x, spec, base })
        });
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drop_rate_matches_probability_and_kept_values_are_rescaled() {
        for prob in [0.1, 0.5] {
            let spec = MaskSpec::new(MaskKey([12345, 678]), prob);
            let n = 200_000u32;
            let dropped = (0..n).filter(|&i| spec.factor(i) == 0.0).count();
            let rate = dropped as f64 / n as f64;
            assert!((rate - prob).abs() < 0.005, "prob {prob}: dropped {rate}");
            let kept = (0..n).map(|i| spec.factor(i)).find(|&f| f != 0.0).unwrap();
            assert!((kept as f64 - 1.0 / (1.0 - prob)).abs() < 1e-6);
        }
    }

    #[test]
    fn masks_are_deterministic_per_key_and_differ_between_keys() {
        let a = MaskSpec::new(MaskKey([1, 2]), 0.1);
        let b = MaskSpec::new(MaskKey([1, 3]), 0.1);
        let ma: Vec<f32> = (0..10_000).map(|i| a.factor(i)).collect();
        let ma2: Vec<f32> = (0..10_000).map(|i| a.factor(i)).collect();
        let mb: Vec<f32> = (0..10_000).map(|i| b.factor(i)).collect();
        assert_eq!(ma, ma2);
        let differ = ma.iter().zip(&mb).filter(|(x, y)| x != y).count();
        // Independent masks at p = 0.1 disagree on ≈ 18 % of elements.
        assert!(differ > 1_200 && differ < 2_400, "{differ}");
    }

    #[test]
    fn neighbouring_elements_are_uncorrelated() {
        let spec = MaskSpec::new(MaskKey([7, 9]), 0.5);
        let n = 100_000u32;
        let both = (0..n)
            .filter(|&i| spec.factor(i) == 0.0 && spec.factor(i + 1) == 0.0)
            .count();
        let rate = both as f64 / n as f64;
        assert!((rate - 0.25).abs() < 0.01, "{rate}");
    }

    #[test]
    fn zero_probability_keeps_everything_unscaled() {
        let spec = MaskSpec::new(MaskKey([3, 4]), 0.0);
        assert!((0..10_000).all(|i| spec.factor(i) == 1.0));
    }
}

//! The LoRA-wrapped linear layer: frozen base plus a trainable low-rank update.

use burn::module::{Module, Param};
use burn::nn::{Dropout, Linear};
use burn::tensor::backend::Backend;
use burn::tensor::module::linear;
use burn::tensor::{Distribution, Tensor};
use imdb_lora_kernels::int8::{Int8Linear, linear_int8_composed};

use crate::{LoraConfig, LoraError};

/// The two tensor operations a LoRA layer runs. The layer calls them through this trait so
/// that a caller with faster kernels for its backend (the `bert` crate has some) can supply
/// them; [`BurnOps`] are Burn's own.
pub trait LoraOps<B: Backend> {
    /// `x·weight + bias`, as `burn::tensor::module::linear`.
    fn linear<const D: usize>(
        x: Tensor<B, D>,
        weight: Tensor<B, 2>,
        bias: Option<Tensor<B, 1>>,
    ) -> Tensor<B, D> {
        linear(x, weight, bias)
    }

    /// Inverted dropout with probability `prob`; the identity outside training, as
    /// `burn::nn::Dropout` is.
    fn dropout<const D: usize>(x: Tensor<B, D>, prob: f64) -> Tensor<B, D> {
        Dropout { prob }.forward(x)
    }

    /// An int8 base layer's output (`imdb_lora_kernels::int8` gives the numbers); the
    /// default is their float composition.
    fn linear_int8<const D: usize>(x: Tensor<B, D>, layer: &Int8Linear<B>) -> Tensor<B, D> {
        linear_int8_composed(x, layer)
    }
}

/// The frozen projection under an adapter: float weights (f32, or bf16 under mixed
/// precision), or int8 weights for inference (`imdb_lora_kernels::int8`).
// One per projection, built once: the int8 variant's extra parameter handles (≈ 250 bytes)
// cost nothing worth a box.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum BaseLayer<B: Backend> {
    /// A plain linear layer, weight `[d_input, d_output]`.
    Float(Linear<B>),
    /// Int8 weights per output channel, activations quantised per row at run time.
    Int8(Int8Linear<B>),
}

impl<B: Backend> BaseLayer<B> {
    /// `[d_input, d_output]`.
    pub fn dims(&self) -> [usize; 2] {
        match self {
            Self::Float(l) => l.weight.dims(),
            Self::Int8(l) => l.dims(),
        }
    }

    /// The device the weights are on.
    pub fn device(&self) -> B::Device {
        match self {
            Self::Float(l) => l.weight.device(),
            Self::Int8(l) => l.weight_scale.device(),
        }
    }

    /// The float layer, when it is one.
    pub fn float(&self) -> Option<&Linear<B>> {
        match self {
            Self::Float(l) => Some(l),
            Self::Int8(_) => None,
        }
    }

    /// The int8 layer, when it is one.
    pub fn int8(&self) -> Option<&Int8Linear<B>> {
        match self {
            Self::Float(_) => None,
            Self::Int8(l) => Some(l),
        }
    }

    /// `x·W + b` with Burn's own operations.
    ///
    /// # Shapes
    /// - x: `[..., d_input]`
    /// - output: `[..., d_output]`
    pub fn forward<const D: usize>(&self, x: Tensor<B, D>) -> Tensor<B, D> {
        self.forward_with::<BurnOps, D>(x)
    }

    /// `x·W + b` through `O`'s operations.
    fn forward_with<O: LoraOps<B>, const D: usize>(&self, x: Tensor<B, D>) -> Tensor<B, D> {
        match self {
            Self::Float(l) => O::linear(x, l.weight.val(), l.bias.as_ref().map(|b| b.val())),
            Self::Int8(l) => O::linear_int8(x, l),
        }
    }
}

/// Burn's own `linear` and `Dropout`.
#[derive(Debug, Clone, Copy, Default)]
pub struct BurnOps;

impl<B: Backend> LoraOps<B> for BurnOps {}

/// The trainable part of a LoRA layer.
///
/// Stored in Burn's `[d_input, d_output]` orientation: `lora_a` is the transpose of PEFT's
/// `lora_A.weight` (`[r, d_input]`), `lora_b` the transpose of `lora_B.weight` (`[d_output, r]`).
#[derive(Module, Debug)]
pub struct LoraAdapter<B: Backend> {
    /// Down-projection, `[d_input, r]`.
    pub lora_a: Param<Tensor<B, 2>>,
    /// Up-projection, `[r, d_output]`.
    pub lora_b: Param<Tensor<B, 2>>,
    /// Dropout on the adapter's input (active only on an autodiff backend, i.e. in training).
    pub lora_dropout: Dropout,
    /// `alpha / r` (or `alpha / sqrt(r)`).
    pub scaling: f64,
    /// Whether `B·A·scaling` is currently folded into the base weight.
    pub merged: bool,
}

impl<B: Backend> LoraAdapter<B> {
    /// A fresh adapter as PEFT makes it: `A` Kaiming-uniform with a = √5 (bound `1/√d_input`,
    /// which is Burn's default linear initialiser), `B` zero.
    ///
    /// Draws from the backend's RNG; seed it (`B::seed`) for reproducible adapters.
    pub fn init(
        config: &LoraConfig,
        d_input: usize,
        d_output: usize,
        device: &B::Device,
    ) -> Result<Self, LoraError> {
        config.validate()?;
        // kaiming_uniform_(a=√5) on `[r, d_input]`: gain √(2/(1+5)) times √(3/fan_in) gives
        // 1/√d_input. Drawn eagerly (Burn's initialisers are lazy) so seeding is reproducible.
        let bound = 1.0 / (d_input as f64).sqrt();
        let lora_a = Param::from_tensor(Tensor::random(
            [d_input, config.r],
            Distribution::Uniform(-bound, bound),
            device,
        ));
        let lora_b = Param::from_tensor(Tensor::zeros([config.r, d_output], device));
        Ok(Self {
            lora_a,
            lora_b,
            lora_dropout: Dropout {
                prob: config.lora_dropout,
            },
            scaling: config.scaling(),
            merged: false,
        })
    }

    /// An adapter from given factors in Burn orientation (`[d_input, r]`, `[r, d_output]`).
    pub fn from_factors(
        config: &LoraConfig,
        lora_a: Tensor<B, 2>,
        lora_b: Tensor<B, 2>,
        d_input: usize,
        d_output: usize,
    ) -> Result<Self, LoraError> {
        config.validate()?;
        let check = |factor, expected: [usize; 2], found: [usize; 2]| {
            if expected == found {
                Ok(())
            } else {
                Err(LoraError::FactorShape {
                    factor,
                    expected,
                    found,
                })
            }
        };
        check("lora_A", [d_input, config.r], lora_a.dims())?;
        check("lora_B", [config.r, d_output], lora_b.dims())?;
        Ok(Self {
            lora_a: Param::from_tensor(lora_a),
            lora_b: Param::from_tensor(lora_b),
            lora_dropout: Dropout {
                prob: config.lora_dropout,
            },
            scaling: config.scaling(),
            merged: false,
        })
    }

    /// The rank `r`.
    pub fn rank(&self) -> usize {
        self.lora_a.dims()[1]
    }

    /// The low-rank path alone: `B(A(dropout(x))) · scaling`.
    ///
    /// Computed as two thin products (`x·A`, then `·(B·scaling)`) rather than by
    /// materialising `A·B`, which is what makes LoRA cheap: `O(T·r·(d_in + d_out))` instead of
    /// `O(T·d_in·d_out)`. The scaling goes on the `[r, d_out]` factor, not on the
    /// `[T, d_out]` output: the same product, one pass over `T·d_out` values fewer.
    ///
    /// # Shapes
    /// - input: `[..., d_input]`
    /// - output: `[..., d_output]`
    pub fn forward<const D: usize>(&self, input: Tensor<B, D>) -> Tensor<B, D> {
        self.forward_with(input, BurnOps)
    }

    /// [`LoraAdapter::forward`] with the caller's operations (e.g. a backend's fused kernels).
    pub fn forward_with<O: LoraOps<B>, const D: usize>(
        &self,
        input: Tensor<B, D>,
        _ops: O,
    ) -> Tensor<B, D> {
        let x = O::dropout(input, self.lora_dropout.prob);
        let x = O::linear(x, self.lora_a.val(), None);
        O::linear(x, self.lora_b.val().mul_scalar(self.scaling), None)
    }

    /// The dense update `A·B·scaling`, `[d_input, d_output]`, detached from any autodiff graph.
    pub fn delta_weight(&self) -> Tensor<B, 2> {
        self.lora_a
            .val()
            .matmul(self.lora_b.val())
            .mul_scalar(self.scaling)
            .detach()
    }

    /// Number of adapter parameters (`r·(d_input + d_output)`).
    pub fn num_trainable(&self) -> usize {
        self.lora_a.num_params() + self.lora_b.num_params()
    }
}

/// A linear layer that may carry a LoRA adapter.
///
/// Without an adapter it is exactly its base layer, so a model can use this type for every
/// projection and adapt only those the configuration targets.
#[derive(Module, Debug)]
pub struct LoraLinear<B: Backend> {
    /// The pretrained (frozen) projection.
    pub base_layer: BaseLayer<B>,
    /// The adapter, when this layer is targeted.
    pub lora: Option<LoraAdapter<B>>,
}

impl<B: Backend> LoraLinear<B> {
    /// Wraps a float base layer without an adapter.
    pub fn new(base_layer: Linear<B>) -> Self {
        Self {
            base_layer: BaseLayer::Float(base_layer),
            lora: None,
        }
    }

    /// `[d_input, d_output]` of the base layer.
    pub fn dims(&self) -> [usize; 2] {
        self.base_layer.dims()
    }

    /// Attaches a fresh adapter (replacing any previous one).
    pub fn with_adapter(mut self, config: &LoraConfig) -> Result<Self, LoraError> {
        let [d_input, d_output] = self.dims();
        let device = self.base_layer.device();
        self.lora = Some(LoraAdapter::init(config, d_input, d_output, &device)?);
        Ok(self)
    }

    /// Attaches the given adapter after checking it fits this layer.
    pub fn with_loaded_adapter(mut self, adapter: LoraAdapter<B>) -> Result<Self, LoraError> {
        let [d_input, d_output] = self.dims();
        let r = adapter.rank();
        let found_b: [usize; 2] = adapter.lora_b.dims();
        if adapter.lora_a.dims() != [d_input, r] {
            return Err(LoraError::FactorShape {
                factor: "lora_A",
                expected: [d_input, r],
                found: adapter.lora_a.dims(),
            });
        }
        if found_b != [r, d_output] {
            return Err(LoraError::FactorShape {
                factor: "lora_B",
                expected: [r, d_output],
                found: found_b,
            });
        }
        self.lora = Some(adapter);
        Ok(self)
    }

    /// `base(x) + B(A(dropout(x)))·scaling`; just `base(x)` when merged or unadapted.
    ///
    /// # Shapes
    /// - input: `[..., d_input]`
    /// - output: `[..., d_output]`
    pub fn forward<const D: usize>(&self, input: Tensor<B, D>) -> Tensor<B, D> {
        self.forward_with(input, BurnOps)
    }

    /// [`LoraLinear::forward`] with the caller's operations (see [`LoraOps`]).
    pub fn forward_with<O: LoraOps<B>, const D: usize>(
        &self,
        input: Tensor<B, D>,
        ops: O,
    ) -> Tensor<B, D> {
        match &self.lora {
            Some(adapter) if !adapter.merged => {
                self.base_layer.forward_with::<O, D>(input.clone())
                    + adapter.forward_with(input, ops)
            }
            _ => self.base_layer.forward_with::<O, D>(input),
        }
    }

    /// Folds the update into the base weight, so inference costs one matmul.
    ///
    /// Idempotent: merging an already merged layer changes nothing (never adds the update
    /// twice). A layer without adapter is returned unchanged, and so is one over an int8
    /// base: its adapter stays beside the quantised weight (merge first, then quantise, to
    /// fold it in).
    pub fn merge(mut self) -> Self {
        let BaseLayer::Float(base) = &mut self.base_layer else {
            return self;
        };
        if let Some(adapter) = self.lora.as_mut().filter(|a| !a.merged) {
            let delta = adapter.delta_weight();
            // In the base weight's dtype: a bf16 base gets a bf16-rounded update.
            base.weight = base.weight.clone().map(|w| {
                let dtype = w.dtype();
                w + delta.cast(dtype)
            });
            adapter.merged = true;
        }
        self
    }

    /// Takes a merged update back out of the base weight. Idempotent like [`Self::merge`].
    pub fn unmerge(mut self) -> Self {
        let BaseLayer::Float(base) = &mut self.base_layer else {
            return self;
        };
        if let Some(adapter) = self.lora.as_mut().filter(|a| a.merged) {
            let delta = adapter.delta_weight();
            base.weight = base.weight.clone().map(|w| {
                let dtype = w.dtype();
                w - delta.cast(dtype)
            });
            adapter.merged = false;
        }
        self
    }

    /// Whether the adapter is currently folded into the base weight.
    pub fn is_merged(&self) -> bool {
        self.lora.as_ref().is_some_and(|a| a.merged)
    }

    /// Merges and drops the adapter: the base layer carrying the adapted weight (an int8
    /// base cannot carry it: see [`Self::merge`]; it is returned with the adapter dropped
    /// only when there was none).
    pub fn merge_and_unload(self) -> Result<BaseLayer<B>, LoraError> {
        let merged = self.merge();
        match merged.lora {
            Some(a) if !a.merged => Err(LoraError::Int8Merge),
            _ => Ok(merged.base_layer),
        }
    }

    /// Number of adapter parameters (0 without adapter).
    pub fn num_trainable(&self) -> usize {
        self.lora.as_ref().map_or(0, LoraAdapter::num_trainable)
    }
}

#[cfg(test)]
mod tests {
    use burn::backend::{Autodiff, Flex};
    use burn::nn::LinearConfig;
    use burn::tensor::Tolerance;

    use super::*;

    type B = Flex;
    type AB = Autodiff<Flex>;

    fn base(d_in: usize, d_out: usize) -> Linear<B> {
        LinearConfig::new(d_in, d_out).init(&Default::default())
    }

    fn input(shape: [usize; 3]) -> Tensor<B, 3> {
        Tensor::random(shape, Distribution::Normal(0.0, 1.0), &Default::default())
    }

    /// An adapter with a non-zero `B`, so the update is visible.
    fn trained(layer: LoraLinear<B>, config: &LoraConfig) -> LoraLinear<B> {
        let [d_in, d_out] = layer.dims();
        let device = Default::default();
        let a = Tensor::random([d_in, config.r], Distribution::Normal(0.0, 0.3), &device);
        let b = Tensor::random([config.r, d_out], Distribution::Normal(0.0, 0.3), &device);
        let adapter = LoraAdapter::from_factors(config, a, b, d_in, d_out).unwrap();
        layer.with_loaded_adapter(adapter).unwrap()
    }

    #[test]
    fn fresh_adapter_leaves_output_unchanged() {
        B::seed(&Default::default(), 1);
        let plain = LoraLinear::new(base(12, 7));
        let x = input([2, 5, 12]);
        let expected = plain.forward(x.clone());
        let adapted = plain.with_adapter(&LoraConfig::default()).unwrap();
        adapted
            .forward(x)
            .into_data()
            .assert_eq(&expected.into_data(), true);
    }

    #[test]
    fn init_matches_peft_kaiming_bound_and_zero_b() {
        B::seed(&Default::default(), 2);
        let layer = LoraLinear::new(base(64, 16))
            .with_adapter(&LoraConfig::default())
            .unwrap();
        let adapter = layer.lora.as_ref().unwrap();
        assert_eq!(adapter.lora_a.dims(), [64, 8]);
        assert_eq!(adapter.lora_b.dims(), [8, 16]);
        let bound = 1.0 / 64.0_f32.sqrt();
        let a: Vec<f32> = adapter.lora_a.val().into_data().to_vec().unwrap();
        assert!(a.iter().all(|v| v.abs() <= bound));
        // Uniform on [-bound, bound] has std bound/√3; 512 draws land well within 20 %.
        let std = (a.iter().map(|v| v * v).sum::<f32>() / a.len() as f32).sqrt();
        assert!(
            (std - bound / 3.0_f32.sqrt()).abs() < 0.2 * bound,
            "std {std}"
        );
        let b: Vec<f32> = adapter.lora_b.val().into_data().to_vec().unwrap();
        assert!(b.iter().all(|v| *v == 0.0));
        assert_eq!(layer.num_trainable(), 8 * (64 + 16));
    }

    #[test]
    fn forward_is_base_plus_scaled_low_rank_update() {
        B::seed(&Default::default(), 3);
        let config = LoraConfig {
            r: 4,
            lora_alpha: 8.0,
            lora_dropout: 0.0,
            ..LoraConfig::default()
        };
        let layer = trained(LoraLinear::new(base(10, 6)), &config);
        let x = input([3, 4, 10]);
        let adapter = layer.lora.as_ref().unwrap();
        let manual = layer.base_layer.forward(x.clone())
            + x.clone()
                .matmul(adapter.lora_a.val().unsqueeze())
                .matmul(adapter.lora_b.val().unsqueeze())
                .mul_scalar(2.0);
        layer
            .forward(x)
            .into_data()
            .assert_approx_eq::<f32>(&manual.into_data(), Tolerance::absolute(1e-5));
    }

    #[test]
    fn merge_and_unmerge_round_trip_and_are_idempotent() {
        B::seed(&Default::default(), 4);
        let config = LoraConfig::default();
        let layer = trained(LoraLinear::new(base(16, 9)), &config);
        let original_w = layer.base_layer.float().unwrap().weight.val();
        let x = input([2, 3, 16]);
        let unmerged = layer.forward(x.clone());

        let merged = layer.merge();
        assert!(merged.is_merged());
        let merged_out = merged.forward(x.clone());
        merged_out
            .clone()
            .into_data()
            .assert_approx_eq::<f32>(&unmerged.clone().into_data(), Tolerance::absolute(1e-5));

        // A second merge must not add the update twice.
        let twice = merged.merge();
        twice
            .forward(x.clone())
            .into_data()
            .assert_approx_eq::<f32>(&merged_out.into_data(), Tolerance::absolute(1e-6));

        let back = twice.unmerge().unmerge();
        assert!(!back.is_merged());
        back.base_layer
            .float()
            .unwrap()
            .weight
            .val()
            .into_data()
            .assert_approx_eq::<f32>(&original_w.into_data(), Tolerance::absolute(1e-6));
        back.forward(x)
            .into_data()
            .assert_approx_eq::<f32>(&unmerged.into_data(), Tolerance::absolute(1e-5));
    }

    #[test]
    fn merge_and_unload_gives_plain_linear_with_same_output() {
        B::seed(&Default::default(), 5);
        let layer = trained(LoraLinear::new(base(8, 8)), &LoraConfig::default());
        let x = input([1, 2, 8]);
        let expected = layer.forward(x.clone());
        let plain = layer.merge_and_unload().unwrap();
        plain
            .forward(x)
            .into_data()
            .assert_approx_eq::<f32>(&expected.into_data(), Tolerance::absolute(1e-5));
    }

    #[test]
    fn an_adapter_over_an_int8_base_runs_beside_it_and_never_merges_into_it() {
        B::seed(&Default::default(), 6);
        let config = LoraConfig::default();
        let float = base(24, 10);
        let int8 = Int8Linear::quantize(&float).unwrap();
        let layer = trained(LoraLinear::new(float), &config);
        let quantised = LoraLinear {
            base_layer: BaseLayer::Int8(int8.clone()),
            lora: layer.lora.clone(),
        };
        let x = input([2, 3, 24]);
        let adapter = layer.lora.as_ref().unwrap();
        let want = linear_int8_composed(x.clone(), &int8) + adapter.forward(x.clone());
        let got = quantised.forward(x.clone());
        got.clone()
            .into_data()
            .assert_approx_eq::<f32>(&want.into_data(), Tolerance::absolute(1e-5));
        // Close to the float layer with the same adapter: int8 rounding only.
        got.into_data().assert_approx_eq::<f32>(
            &layer.forward(x.clone()).into_data(),
            Tolerance::absolute(0.05),
        );
        let merged = quantised.merge();
        assert!(!merged.is_merged(), "merge is a no-op over int8 weights");
        let err = merged.merge_and_unload().unwrap_err();
        assert!(err.to_string().contains("int8"), "{err}");
    }

    #[test]
    fn wrong_factor_shapes_are_refused() {
        let device = Default::default();
        let config = LoraConfig::default();
        let a = Tensor::<B, 2>::zeros([8, 8], &device);
        let b = Tensor::<B, 2>::zeros([8, 5], &device);
        let err = LoraAdapter::from_factors(&config, a, b, 6, 5).unwrap_err();
        assert!(err.to_string().contains("lora_A"), "{err}");

        let good = LoraAdapter::<B>::from_factors(
            &config,
            Tensor::zeros([6, 8], &device),
            Tensor::zeros([8, 5], &device),
            6,
            5,
        )
        .unwrap();
        let err = LoraLinear::new(base(7, 5))
            .with_loaded_adapter(good)
            .unwrap_err();
        assert!(err.to_string().contains("[7, 8]"), "{err}");
    }

    #[test]
    fn gradients_reach_only_the_adapter() {
        let device = Default::default();
        AB::seed(&device, 6);
        let mut base_layer: Linear<AB> = LinearConfig::new(6, 4).init(&device);
        base_layer = base_layer.no_grad();
        let layer = LoraLinear::new(base_layer)
            .with_adapter(&LoraConfig::default())
            .unwrap();
        let x = Tensor::<AB, 2>::random([5, 6], Distribution::Normal(0.0, 1.0), &device);
        let grads = layer.forward(x).sum().backward();
        assert!(
            layer
                .base_layer
                .float()
                .unwrap()
                .weight
                .grad(&grads)
                .is_none()
        );
        let adapter = layer.lora.as_ref().unwrap();
        // B is zero, so dL/dA is zero but present; dL/dB is non-zero.
        assert!(adapter.lora_a.grad(&grads).is_some());
        let gb: Vec<f32> = adapter
            .lora_b
            .grad(&grads)
            .unwrap()
            .into_data()
            .to_vec()
            .unwrap();
        assert!(gb.iter().any(|g| *g != 0.0));
    }

    #[test]
    fn dropout_is_inactive_without_autodiff() {
        B::seed(&Default::default(), 7);
        let config = LoraConfig {
            lora_dropout: 0.5,
            ..LoraConfig::default()
        };
        let layer = trained(LoraLinear::new(base(8, 8)), &config);
        let x = input([2, 2, 8]);
        let a = layer.forward(x.clone());
        let b = layer.forward(x);
        a.into_data().assert_eq(&b.into_data(), true);
    }
}

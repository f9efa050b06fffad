//! AdamW with PyTorch's semantics, global-norm gradient clipping and the linear warm-up /
//! decay schedule of `transformers`, over the trainable parameters only.
//!
//! Optimizer state is keyed by each parameter's module path (e.g.
//! `bert.encoder.layer.0.attention.self_attention.query.lora.lora_a`) rather than by Burn's
//! random `ParamId`, so a checkpoint restores onto a freshly built model. Frozen parameters
//! have no gradient and therefore never get state.

use std::collections::BTreeMap;

use burn::module::{AutodiffModule, ModuleMapper, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{ElementConversion, Tensor};

use crate::LrSchedule;

/// Flattened gradients by module path.
pub type Grads<B> = BTreeMap<String, Tensor<B, 1>>;

/// A module's part of a parameter path: its field name, nothing for an enum's variant (the
/// model family: `encoder.Bert.encoder.layer.0…` is keyed `encoder.encoder.layer.0…`, so a key
/// names where a parameter sits, not which Rust type holds it).
fn path_part(name: &str, container: &str) -> String {
    if container.starts_with("Enum:") {
        String::new()
    } else {
        name.to_string()
    }
}

/// The dotted path of a parameter.
fn join(path: &[String]) -> String {
    path.iter()
        .filter(|p| !p.is_empty())
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(".")
}

struct Collect<'a, B: AutodiffBackend> {
    grads: &'a mut GradientsParams,
    path: Vec<String>,
    out: Grads<B::InnerBackend>,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for Collect<'_, B> {
    fn enter_module(&mut self, name: &str, container: &str) {
        self.path.push(path_part(name, container));
    }
    fn exit_module(&mut self, _name: &str, _container: &str) {
        self.path.pop();
    }
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        if let Some(grad) = self.grads.remove::<B::InnerBackend, D>(param.id) {
            let n = grad.shape().num_elements();
            self.out.insert(join(&self.path), grad.reshape([n]));
        }
    }
}

/// Takes the gradients of `model`'s trainable parameters out of `grads`, by module path.
pub fn collect_grads<B: AutodiffBackend, M: AutodiffModule<B>>(
    model: &M,
    grads: B::Gradients,
) -> Grads<B::InnerBackend> {
    let mut grads = GradientsParams::from_grads(grads, model);
    let mut visitor = Collect::<B> {
        grads: &mut grads,
        path: Vec::new(),
        out: BTreeMap::new(),
    };
    model.visit(&mut visitor);
    visitor.out
}

struct Trainable {
    path: Vec<String>,
    out: BTreeMap<String, usize>,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for Trainable {
    fn enter_module(&mut self, name: &str, container: &str) {
        self.path.push(path_part(name, container));
    }
    fn exit_module(&mut self, _name: &str, _container: &str) {
        self.path.pop();
    }
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let value = param.val();
        if value.is_require_grad() {
            self.out
                .insert(join(&self.path), value.shape().num_elements());
        }
    }
}

/// The trainable parameters of `model` (those the optimizer keeps moments for): module path
/// → number of elements, named as [`collect_grads`] names their gradients.
pub fn trainable_sizes<B: AutodiffBackend, M: AutodiffModule<B>>(
    model: &M,
) -> BTreeMap<String, usize> {
    let mut visitor = Trainable {
        path: Vec::new(),
        out: BTreeMap::new(),
    };
    model.visit(&mut visitor);
    visitor.out
}

/// Adds `more` into `acc` (gradient accumulation).
pub fn accumulate<B: Backend>(acc: &mut Grads<B>, more: Grads<B>) {
    for (k, g) in more {
        let sum = match acc.remove(&k) {
            Some(a) => a + g,
            None => g,
        };
        acc.insert(k, sum);
    }
}

/// The L2 norm of all gradients together (PyTorch's `clip_grad_norm_` total norm).
///
/// Summed on the device and read back once: one synchronisation per step, not one per
/// parameter (which on a GPU costs more than the arithmetic). The trainer does not call
/// this (see [`clip_scale`]); it is the host-side reference the tests check against.
pub fn global_norm<B: Backend>(grads: &Grads<B>) -> f64 {
    squared_norm(grads).map_or(0.0, |t| t.into_scalar().elem::<f64>().sqrt())
}

/// The sum of the squares of all gradients, `[1]`, left on the device.
fn squared_norm<B: Backend>(grads: &Grads<B>) -> Option<Tensor<B, 1>> {
    grads
        .values()
        .map(|g| g.clone().powi_scalar(2).sum())
        .reduce(|a, b| a + b)
}

/// The factor PyTorch's `clip_grad_norm_` scales gradients by: `min(1, max / (norm + 1e-6))`.
pub fn clip_factor(norm: f64, max_norm: Option<f64>) -> f64 {
    match max_norm {
        Some(max) => (max / (norm + 1e-6)).min(1.0),
        None => 1.0,
    }
}

/// What the summed gradients are multiplied by before the AdamW update: a host number, or
/// a `[1]` tensor computed on the device (clipping), so the step never waits for the norm.
#[derive(Debug, Clone)]
pub enum GradScale<B: Backend> {
    /// A known factor (the mean over micro-batches, no clipping).
    Host(f64),
    /// A factor on the device.
    Device(Tensor<B, 1>),
}

impl<B: Backend> GradScale<B> {
    fn apply(&self, grad: Tensor<B, 1>) -> Tensor<B, 1> {
        match self {
            GradScale::Host(s) => grad.mul_scalar(*s),
            // `[1]` broadcast over the parameter.
            GradScale::Device(s) => grad * s.clone(),
        }
    }
}

/// The gradient scale of a step over the sum of `micro` batches' gradients: their mean,
/// then clipped to `max_norm` as `clip_grad_norm_` clips it, `min(1, max / (norm + 1e-6))`
/// with `norm` the mean gradient's norm, computed on the device without a read-back.
pub fn clip_scale<B: Backend>(
    grads: &Grads<B>,
    micro: usize,
    max_norm: Option<f64>,
) -> GradScale<B> {
    let mean = 1.0 / micro.max(1) as f64;
    let Some((max, squared)) = max_norm.and_then(|max| Some((max, squared_norm(grads)?))) else {
        return GradScale::Host(mean);
    };
    let norm = squared.sqrt().mul_scalar(mean);
    let factor = norm.add_scalar(1e-6).recip().mul_scalar(max).clamp_max(1.0);
    GradScale::Device(factor.mul_scalar(mean))
}

/// `transformers.get_{linear,constant}_schedule_with_warmup`: the multiplier for optimizer
/// step `step` (0-based; like transformers, the very first step runs at 0 when there is
/// warm-up).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LinearSchedule {
    /// Steps of linear warm-up.
    pub warmup_steps: u64,
    /// Total optimizer steps of the run.
    pub total_steps: u64,
    /// After warm-up: decay (linear) or hold (constant).
    pub kind: LrSchedule,
}

impl LinearSchedule {
    /// `warmup = ceil(ratio · total)`, as transformers' `get_warmup_steps`.
    pub fn new(total_steps: u64, warmup_ratio: f64) -> Self {
        Self {
            warmup_steps: (warmup_ratio * total_steps as f64).ceil() as u64,
            total_steps,
            kind: LrSchedule::Linear,
        }
    }

    /// The same warm-up, then `kind`.
    pub fn with_kind(mut self, kind: LrSchedule) -> Self {
        self.kind = kind;
        self
    }

    /// Learning-rate multiplier at `step`.
    pub fn factor(&self, step: u64) -> f64 {
        if step < self.warmup_steps {
            step as f64 / self.warmup_steps.max(1) as f64
        } else if self.kind == LrSchedule::Constant {
            1.0
        } else {
            let left = self.total_steps.saturating_sub(step) as f64;
            (left / self.total_steps.saturating_sub(self.warmup_steps).max(1) as f64).max(0.0)
        }
    }
}

/// AdamW hyper-parameters (PyTorch defaults for betas and eps).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamWConfig {
    /// First-moment decay.
    pub beta1: f64,
    /// Second-moment decay.
    pub beta2: f64,
    /// Added to the denominator.
    pub eps: f64,
    /// Decoupled weight decay.
    pub weight_decay: f64,
}

impl Default for AdamWConfig {
    fn default() -> Self {
        Self {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.01,
        }
    }
}

/// First and second moments of one parameter, flattened.
#[derive(Debug, Clone)]
pub struct Moments<B: Backend> {
    /// `exp_avg`.
    pub exp_avg: Tensor<B, 1>,
    /// `exp_avg_sq`.
    pub exp_avg_sq: Tensor<B, 1>,
}

/// AdamW as `torch.optim.AdamW`: `p ← p·(1 − lr·wd)`, then the bias-corrected Adam step
/// `p ← p − lr/(1−β₁ᵗ) · m / (√v/√(1−β₂ᵗ) + ε)`.
#[derive(Debug, Clone)]
pub struct AdamW<B: Backend> {
    /// Hyper-parameters.
    pub config: AdamWConfig,
    /// Optimizer steps taken (`t`).
    pub step: u64,
    /// Per-parameter moments, by module path.
    pub state: BTreeMap<String, Moments<B>>,
}

struct Update<'a, B: AutodiffBackend> {
    opt: &'a mut AdamW<B::InnerBackend>,
    grads: &'a mut Grads<B::InnerBackend>,
    path: Vec<String>,
    lr: f64,
    grad_scale: &'a GradScale<B::InnerBackend>,
}

impl<B: AutodiffBackend> ModuleMapper<B> for Update<'_, B> {
    fn enter_module(&mut self, name: &str, container: &str) {
        self.path.push(path_part(name, container));
    }
    fn exit_module(&mut self, _name: &str, _container: &str) {
        self.path.pop();
    }
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        let key = join(&self.path);
        let Some(grad) = self.grads.remove(&key) else {
            return param;
        };
        let (id, tensor, mapper) = param.consume();
        let shape = tensor.shape();
        let flat = tensor.inner().reshape([shape.num_elements()]);
        let updated = self
            .opt
            .update(&key, flat, self.grad_scale.apply(grad), self.lr);
        let value = Tensor::<B, D>::from_inner(updated.reshape(shape)).require_grad();
        Param::from_mapped_value(id, value, mapper)
    }
}

impl<B: Backend> AdamW<B> {
    /// A fresh optimizer with no state.
    pub fn new(config: AdamWConfig) -> Self {
        Self {
            config,
            step: 0,
            state: BTreeMap::new(),
        }
    }

    fn update(
        &mut self,
        key: &str,
        param: Tensor<B, 1>,
        grad: Tensor<B, 1>,
        lr: f64,
    ) -> Tensor<B, 1> {
        let c = self.config;
        let t = self.step as i32 + 1;
        let Moments {
            exp_avg,
            exp_avg_sq,
        } = self.state.remove(key).unwrap_or_else(|| Moments {
            exp_avg: grad.zeros_like(),
            exp_avg_sq: grad.zeros_like(),
        });
        let exp_avg = exp_avg.mul_scalar(c.beta1) + grad.clone().mul_scalar(1.0 - c.beta1);
        let exp_avg_sq =
            exp_avg_sq.mul_scalar(c.beta2) + grad.powi_scalar(2).mul_scalar(1.0 - c.beta2);
        let bias1 = 1.0 - c.beta1.powi(t);
        let bias2 = 1.0 - c.beta2.powi(t);
        let denom = exp_avg_sq
            .clone()
            .sqrt()
            .div_scalar(bias2.sqrt())
            .add_scalar(c.eps);
        let decayed = param.mul_scalar(1.0 - lr * c.weight_decay);
        let out = decayed - exp_avg.clone().div(denom).mul_scalar(lr / bias1);
        self.state.insert(
            key.to_string(),
            Moments {
                exp_avg,
                exp_avg_sq,
            },
        );
        out
    }

    /// Applies one step to every parameter of `model` that has a gradient in `grads`
    /// (already accumulated), scaling gradients by `grad_scale` (mean and clipping) first.
    pub fn step<AB, M>(
        &mut self,
        model: M,
        mut grads: Grads<B>,
        lr: f64,
        grad_scale: &GradScale<B>,
    ) -> M
    where
        AB: AutodiffBackend<InnerBackend = B>,
        M: AutodiffModule<AB>,
    {
        let mut mapper = Update::<AB> {
            opt: self,
            grads: &mut grads,
            path: Vec::new(),
            lr,
            grad_scale,
        };
        let model = model.map(&mut mapper);
        self.step += 1;
        model
    }
}

#[cfg(test)]
mod tests {
    use burn::backend::{Autodiff, Flex};
    use burn::nn::{Linear, LinearConfig};
    use burn::tensor::TensorData;

    use super::*;

    type AB = Autodiff<Flex>;

    #[test]
    fn schedule_matches_transformers_linear_warmup() {
        let s = LinearSchedule::new(100, 0.06);
        assert_eq!(s.warmup_steps, 6);
        assert_eq!(s.factor(0), 0.0);
        assert!((s.factor(3) - 0.5).abs() < 1e-12);
        assert_eq!(s.factor(6), 1.0);
        assert!((s.factor(53) - 47.0 / 94.0).abs() < 1e-12);
        assert_eq!(s.factor(100), 0.0);
        let flat = LinearSchedule::new(10, 0.0);
        assert_eq!(flat.factor(0), 1.0);
        let constant = LinearSchedule::new(100, 0.06).with_kind(LrSchedule::Constant);
        assert!((constant.factor(3) - 0.5).abs() < 1e-12);
        assert_eq!((constant.factor(6), constant.factor(99)), (1.0, 1.0));
    }

    #[test]
    fn clipping_follows_pytorch() {
        assert_eq!(clip_factor(0.5, Some(1.0)), 1.0);
        assert!((clip_factor(4.0, Some(1.0)) - 1.0 / (4.0 + 1e-6)).abs() < 1e-15);
        assert_eq!(clip_factor(4.0, None), 1.0);
    }

    /// The device-side scale is the host formula on the mean gradient's norm, times the mean.
    #[test]
    fn device_clip_scale_matches_the_host_formula() {
        let device = Default::default();
        let grads: Grads<Flex> = BTreeMap::from([
            ("a".to_string(), Tensor::from_floats([3.0, 4.0], &device)),
            ("b".to_string(), Tensor::from_floats([12.0], &device)),
        ]);
        // Summed over 2 micro-batches: the mean gradient's norm is 13 / 2.
        for (max, micro) in [(Some(1.0), 2), (Some(100.0), 2), (None, 2), (Some(1.0), 1)] {
            let expected = clip_factor(13.0 / micro as f64, max) / micro as f64;
            let got = match clip_scale(&grads, micro, max) {
                GradScale::Host(s) => {
                    assert!(max.is_none(), "{max:?}: clipping must stay on the device");
                    s
                }
                GradScale::Device(t) => t.into_scalar().elem::<f64>(),
            };
            assert!(
                (got - expected).abs() < 1e-7,
                "{max:?}/{micro}: {got} vs {expected}"
            );
        }
    }

    /// Two AdamW steps on `y = w·x` computed by hand with PyTorch's formulas.
    #[test]
    fn adamw_matches_hand_computed_pytorch_steps() {
        let device = Default::default();
        let mut layer: Linear<AB> = LinearConfig::new(1, 1).with_bias(false).init(&device);
        layer.weight = Param::from_tensor(Tensor::from_data(
            TensorData::new(vec![0.5f32], [1, 1]),
            &device,
        ));
        let mut opt = AdamW::<Flex>::new(AdamWConfig {
            weight_decay: 0.1,
            ..Default::default()
        });
        let (lr, x) = (0.01, 2.0f32);
        let mut w = 0.5f64;
        let (mut m, mut v) = (0.0f64, 0.0f64);
        for t in 1..=2 {
            let input = Tensor::<AB, 2>::from_data(TensorData::new(vec![x], [1, 1]), &device);
            let loss = layer.forward(input).powi_scalar(2).sum();
            let grads = collect_grads(&layer, loss.backward());
            assert_eq!(grads.len(), 1);
            layer = opt.step(layer, grads, lr, &GradScale::Host(1.0));
            // d(w·x)²/dw = 2·w·x²
            let g = 2.0 * w * f64::from(x * x);
            m = 0.9 * m + 0.1 * g;
            v = 0.999 * v + 0.001 * g * g;
            w *= 1.0 - lr * 0.1;
            let denom = v.sqrt() / (1.0 - 0.999f64.powi(t)).sqrt() + 1e-8;
            w -= lr / (1.0 - 0.9f64.powi(t)) * m / denom;
            let got = layer.weight.val().into_scalar().elem::<f64>();
            assert!((got - w).abs() < 1e-6, "step {t}: {got} vs {w}");
        }
        assert_eq!(opt.step, 2);
        assert!(opt.state.contains_key("weight"));
    }

    #[test]
    fn frozen_parameters_get_no_state() {
        let device = Default::default();
        let layer: Linear<AB> = LinearConfig::new(3, 2).init(&device);
        let layer = Linear {
            weight: layer.weight,
            bias: layer.bias.map(|b| b.set_require_grad(false)),
        };
        let input = Tensor::<AB, 2>::ones([4, 3], &device);
        let grads = collect_grads(&layer, layer.forward(input).sum().backward());
        assert_eq!(grads.keys().collect::<Vec<_>>(), ["weight"]);
        let mut acc = Grads::new();
        accumulate(&mut acc, grads.clone());
        accumulate(&mut acc, grads);
        assert!((global_norm(&acc) - 2.0 * (4.0f64 * 4.0 * 6.0).sqrt()).abs() < 1e-4);
    }
}

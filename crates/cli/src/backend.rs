//! The one place the Burn backend is chosen, from the crate's features: a GPU backend (`cuda`,
//! or `wgpu` for any Vulkan/Metal/DX12 GPU) wins over the default CPU backend, so
//! `cargo build --features cuda` needs no `--no-default-features`; `flex` (default) or
//! `ndarray` otherwise. Two GPU backends or two CPU backends at once, or none at all, is a
//! build error rather than a silent pick.

#[cfg(all(feature = "flex", feature = "ndarray"))]
compile_error!(
    "features `flex` and `ndarray` both select a CPU backend; pick one \
     (`--no-default-features --features ndarray` for ndarray)"
);

#[cfg(all(feature = "cuda", feature = "wgpu"))]
compile_error!("features `cuda` and `wgpu` both select a GPU backend; pick one");

#[cfg(not(any(
    feature = "flex",
    feature = "ndarray",
    feature = "cuda",
    feature = "wgpu"
)))]
compile_error!(
    "no backend selected: enable one of the features `flex` (default), `ndarray`, `cuda`, `wgpu`"
);

/// The inference backend.
#[cfg(feature = "cuda")]
pub type Backend = burn::backend::Cuda;
/// The inference backend.
#[cfg(all(feature = "wgpu", not(feature = "cuda")))]
pub type Backend = burn::backend::Wgpu;
/// The inference backend.
#[cfg(all(
    not(any(feature = "cuda", feature = "wgpu")),
    feature = "flex",
    not(feature = "ndarray")
))]
pub type Backend = burn::backend::Flex;
/// The inference backend.
#[cfg(all(
    not(any(feature = "cuda", feature = "wgpu")),
    feature = "ndarray",
    not(feature = "flex")
))]
pub type Backend = burn::backend::NdArray;

/// The training backend: [`Backend`] with automatic differentiation.
pub type TrainBackend = burn::backend::Autodiff<Backend>;

/// Human-readable name of [`Backend`], for logs and reports.
#[cfg(feature = "cuda")]
pub const BACKEND_NAME: &str = "cuda";
/// Human-readable name of [`Backend`], for logs and reports.
#[cfg(all(feature = "wgpu", not(feature = "cuda")))]
pub const BACKEND_NAME: &str = "wgpu";
/// Human-readable name of [`Backend`], for logs and reports.
#[cfg(all(
    not(any(feature = "cuda", feature = "wgpu")),
    feature = "flex",
    not(feature = "ndarray")
))]
pub const BACKEND_NAME: &str = "flex (CPU)";
/// Human-readable name of [`Backend`], for logs and reports.
#[cfg(all(
    not(any(feature = "cuda", feature = "wgpu")),
    feature = "ndarray",
    not(feature = "flex")
))]
pub const BACKEND_NAME: &str = "ndarray (CPU)";

/// The device models and tensors live on: the first GPU for `cuda`; for `wgpu` the adapter
/// wgpu picks (the high-performance one; `CUBECL_WGPU_DEFAULT_DEVICE=DiscreteGpu(1)`,
/// `IntegratedGpu(0)` or `Cpu` chooses another); the CPU otherwise.
///
/// # Errors
/// `wgpu` only: no graphics adapter (no GPU driver, or no Vulkan loader and driver on Linux),
/// said before Burn would panic on first use.
pub fn device() -> anyhow::Result<burn::tensor::Device<Backend>> {
    #[cfg(feature = "cuda")]
    {
        Ok(burn::backend::cuda::CudaDevice::default())
    }
    #[cfg(all(feature = "wgpu", not(feature = "cuda")))]
    {
        match bert::wgpu_adapter() {
            Some(adapter) => tracing::info!("wgpu adapter: {adapter}"),
            None => anyhow::bail!(
                "wgpu found no graphics adapter: install your GPU's Vulkan driver (Linux, \
                 Windows) or run on macOS (Metal); without a GPU, Mesa's software Vulkan driver \
                 works (`apt-get install mesa-vulkan-drivers`), slowly — see docs/GPU.md"
            ),
        }
        Ok(burn::backend::wgpu::WgpuDevice::default())
    }
    #[cfg(not(any(feature = "cuda", feature = "wgpu")))]
    {
        Ok(Default::default())
    }
}

/// `--precision`, shared by `train`, `eval` and `predict`.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct PrecisionArg {
    /// Compute precision: `f32`, or `bf16` mixed precision (frozen projections and
    /// activations in bf16; LoRA factors, head, layer norms, softmax, logits, loss and
    /// optimizer in f32). bf16 runs on `cuda` and on the CPU (slower there than f32: see
    /// docs/GPU.md); wgpu has none.
    #[arg(long, default_value = "f32", value_name = "f32|bf16")]
    pub precision: bert::Precision,
}

impl PrecisionArg {
    /// The precision, if this build's backend computes in it.
    ///
    /// # Errors
    /// bf16 on `wgpu` (WGSL has no bf16 type; CubeCL's wgpu runtime refuses it) or `ndarray`
    /// (no bf16 arithmetic).
    pub fn checked(self) -> anyhow::Result<bert::Precision> {
        let supported = cfg!(any(feature = "cuda", feature = "flex"))
            && !cfg!(all(feature = "wgpu", not(feature = "cuda")));
        if self.precision != bert::Precision::F32 && !supported {
            anyhow::bail!(
                "--precision {} is not available on the {BACKEND_NAME} backend; use f32, \
                 or a build with the cuda feature (or the default CPU backend)",
                self.precision
            );
        }
        if self.precision == bert::Precision::Bf16 && cfg!(not(feature = "cuda")) {
            tracing::warn!(
                "bf16 on the CPU is emulated (converted to f32 for every product) and slower \
                 than f32 there; it is meant for GPUs (docs/GPU.md)"
            );
        }
        Ok(self.precision)
    }
}

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

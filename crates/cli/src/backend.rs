//! The one place the Burn backend is chosen, from the crate's features: `cuda` (GPU) wins
//! over the default CPU backend, so `cargo build --features cuda` needs no
//! `--no-default-features`; `flex` (default) or `ndarray` otherwise. Two CPU backends at once,
//! or none at all, is a build error rather than a silent pick.

#[cfg(all(feature = "flex", feature = "ndarray"))]
compile_error!(
    "features `flex` and `ndarray` both select a CPU backend; pick one \
     (`--no-default-features --features ndarray` for ndarray)"
);

#[cfg(not(any(feature = "flex", feature = "ndarray", feature = "cuda")))]
compile_error!(
    "no backend selected: enable one of the features `flex` (default), `ndarray`, `cuda`"
);

/// The inference backend.
#[cfg(feature = "cuda")]
pub type Backend = burn::backend::Cuda;
/// The inference backend.
#[cfg(all(not(feature = "cuda"), feature = "flex", not(feature = "ndarray")))]
pub type Backend = burn::backend::Flex;
/// The inference backend.
#[cfg(all(not(feature = "cuda"), feature = "ndarray", not(feature = "flex")))]
pub type Backend = burn::backend::NdArray;

/// The training backend: [`Backend`] with automatic differentiation.
pub type TrainBackend = burn::backend::Autodiff<Backend>;

/// Human-readable name of [`Backend`], for logs and reports.
#[cfg(feature = "cuda")]
pub const BACKEND_NAME: &str = "cuda";
/// Human-readable name of [`Backend`], for logs and reports.
#[cfg(all(not(feature = "cuda"), feature = "flex", not(feature = "ndarray")))]
pub const BACKEND_NAME: &str = "flex (CPU)";
/// Human-readable name of [`Backend`], for logs and reports.
#[cfg(all(not(feature = "cuda"), feature = "ndarray", not(feature = "flex")))]
pub const BACKEND_NAME: &str = "ndarray (CPU)";

/// The device models and tensors live on: the first GPU for `cuda`, the CPU otherwise.
pub fn device() -> burn::tensor::Device<Backend> {
    #[cfg(feature = "cuda")]
    {
        burn::backend::cuda::CudaDevice::default()
    }
    #[cfg(not(feature = "cuda"))]
    {
        Default::default()
    }
}

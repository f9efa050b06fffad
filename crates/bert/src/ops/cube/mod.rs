//! [`BertBackend`] for the CubeCL backends, CUDA and wgpu, in one place.
//!
//! Burn's own operations already run there as (fused) GPU kernels and draw their random
//! numbers on the device, so the portable compositions of [`crate::ops`] are the
//! implementation for now, with the exact GELU derivative in training
//! ([`super::gelu_exact_autodiff`]). CubeCL kernels of our own (fused attention, layer norm, GELU) go
//! below this module, written once against CubeCL's runtime abstraction so that both runtimes
//! run them; a kernel that needs a CUDA-only feature is gated on `cuda` with the portable path
//! as the fallback wgpu (and the lavapipe CI suite) runs.

use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;

use burn::tensor::Tensor;

use super::{BertBackend, gelu_exact_autodiff};

#[cfg(feature = "cuda")]
impl BertBackend for burn::backend::Cuda {}
#[cfg(feature = "cuda")]
impl<C: CheckpointStrategy> BertBackend for burn::backend::Autodiff<burn::backend::Cuda, C> {
    fn bert_gelu<const D: usize>(x: Tensor<Self, D>) -> Tensor<Self, D> {
        gelu_exact_autodiff(x)
    }
}

#[cfg(feature = "wgpu")]
impl BertBackend for burn::backend::Wgpu {}
#[cfg(feature = "wgpu")]
impl<C: CheckpointStrategy> BertBackend for burn::backend::Autodiff<burn::backend::Wgpu, C> {
    fn bert_gelu<const D: usize>(x: Tensor<Self, D>) -> Tensor<Self, D> {
        gelu_exact_autodiff(x)
    }
}

/// The graphics adapter Burn's wgpu backend would run on (`WgpuDevice::DefaultDevice`: the
/// platform's API — Vulkan, Metal or DX12 — and the high-performance adapter), described
/// as "name (device type, API, driver)"; `None` when there is none.
///
/// Burn panics on first use when wgpu finds no adapter (no Vulkan driver installed, no GPU);
/// asking first lets the binary say what is missing and the wgpu test suite skip with a
/// message. Mesa's lavapipe, a software Vulkan driver, is an adapter of type `Cpu`.
#[cfg(feature = "wgpu")]
pub fn wgpu_adapter() -> Option<String> {
    use burn::backend::wgpu::graphics::{AutoGraphicsApi, GraphicsApi};
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor {
        backends: AutoGraphicsApi::backend().into(),
        ..wgpu::InstanceDescriptor::new_without_display_handle()
    });
    let adapter =
        cubecl_common::future::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions {
            power_preference: wgpu::PowerPreference::HighPerformance,
            force_fallback_adapter: false,
            compatible_surface: None,
        }))
        .ok()?;
    let info = adapter.get_info();
    Some(format!(
        "{} ({:?}, {:?}, {} {})",
        info.name, info.device_type, info.backend, info.driver, info.driver_info
    ))
}

//! Our kernels as custom operations of Burn's fusion stream.
//!
//! `burn::backend::Cuda` and `Wgpu` are `Fusion<CubeBackend<R, f32, i32, u8 | u32>>`: an operation
//! is not run when called but recorded in a stream that Burn fuses and executes later. A kernel
//! of ours enters that stream as an `OperationIr::Custom` with its inputs and outputs declared,
//! so the fuser orders it among Burn's operations (it never fuses it) and hands it the
//! `CubeTensor`s of its inputs when the stream runs. Reading a fused tensor's handle instead
//! (`resolve_tensor_float`) would drain the stream and wait for the device at every call.

use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering};

use burn::tensor::{DType, Shape, TensorMetadata};
use burn_cubecl::fusion::FusionCubeRuntime;
use burn_cubecl::kernel::into_contiguous;
use burn_cubecl::ops::numeric::empty_device_contiguous_dtype;
use burn_cubecl::tensor::CubeTensor;
use burn_cubecl::{BoolElement, CubeBackend, CubeRuntime};
use burn_fusion::stream::{Operation, OperationStreams};
use burn_fusion::{Fusion, FusionRuntime, FusionTensor};
use burn_ir::{CustomOpIr, HandleContainer, OperationIr, TensorIr};

/// A CubeCL runtime Burn builds a fused backend on, with that backend's bool element: `u8`
/// for `burn::backend::Cuda`, `u32` for `Wgpu` (the one type parameter the two differ in).
pub trait KernelRuntime: CubeRuntime {
    /// The bool element of Burn's backend on this runtime.
    type Bool: BoolElement;
}

#[cfg(feature = "cuda")]
impl KernelRuntime for cubecl::cuda::CudaRuntime {
    type Bool = u8;
}

#[cfg(feature = "wgpu")]
impl KernelRuntime for cubecl::wgpu::WgpuRuntime {
    type Bool = u32;
}

/// The Cube backend under the fusion layer, with the element types of Burn's `Cuda` and `Wgpu`.
pub type Cube<R> = CubeBackend<R, f32, i32, <R as KernelRuntime>::Bool>;
/// Burn's fused Cube backend: `burn::backend::Cuda` / `Wgpu` for `R` = CUDA / wgpu.
pub type Fused<R> = Fusion<Cube<R>>;
/// A float tensor of [`Fused`].
pub type FusedTensor<R> = FusionTensor<FusionCubeRuntime<R>>;

/// A kernel launch on the Cube tensors of its inputs, returning its outputs in the order
/// and shapes declared to [`register`].
pub trait CubeKernel<R: KernelRuntime>: Send + Sync + std::fmt::Debug + 'static {
    /// Launches the kernel(s); the inputs are contiguous f32 tensors.
    fn run(&self, inputs: Vec<CubeTensor<R>>) -> Vec<CubeTensor<R>>;
}

/// Custom operations recorded so far, for [`registered`].
static REGISTERED: AtomicU64 = AtomicU64::new(0);

/// How many of our kernels' operations this process has recorded: lets a test see that a
/// kernel ran rather than a composition it silently fell back to.
pub fn registered() -> u64 {
    REGISTERED.load(Ordering::Relaxed)
}

/// A [`CubeKernel`] with the stream's description of its tensors.
#[derive(Debug)]
struct CustomOp<R: KernelRuntime, K> {
    ir: CustomOpIr,
    kernel: K,
    _runtime: PhantomData<R>,
}

impl<R: KernelRuntime, K: CubeKernel<R>> Operation<FusionCubeRuntime<R>> for CustomOp<R, K> {
    fn execute(
        &self,
        handles: &mut HandleContainer<<FusionCubeRuntime<R> as FusionRuntime>::FusionHandle>,
    ) {
        let inputs = self
            .ir
            .inputs
            .iter()
            .map(|t| into_contiguous(handles.get_float_tensor::<Cube<R>>(t)))
            .collect();
        let outputs = self.kernel.run(inputs);
        for (ir, tensor) in self.ir.outputs.iter().zip(outputs) {
            handles.register_float_tensor::<Cube<R>>(&ir.id, tensor);
        }
    }
}

/// Records `kernel` in the stream of `inputs` (all f32 on one device) with f32 outputs of
/// the given shapes, and returns those outputs.
pub fn register<R: KernelRuntime, K: CubeKernel<R>, const I: usize, const O: usize>(
    name: &'static str,
    inputs: [FusedTensor<R>; I],
    outputs: [Shape; O],
    kernel: K,
) -> [FusedTensor<R>; O] {
    const { assert!(I > 0, "a kernel has at least one input") };
    let client = inputs[0].client.clone();
    let streams = OperationStreams::with_inputs(&inputs);
    let outputs = outputs
        .map(|shape| TensorIr::uninit(client.create_empty_handle(), shape, DType::F32))
        .to_vec();
    let inputs = inputs.map(|t| t.into_ir()).to_vec();
    let ir = CustomOpIr {
        id: name.to_owned(),
        inputs,
        outputs,
    };
    let op = CustomOp {
        ir: ir.clone(),
        kernel,
        _runtime: PhantomData::<R>,
    };
    REGISTERED.fetch_add(1, Ordering::Relaxed);
    let Ok(out) = client
        .register(streams, OperationIr::Custom(ir), op)
        .try_into()
    else {
        unreachable!("Burn's fusion client returns one tensor per declared output")
    };
    out
}

/// Whether every tensor is f32 (the kernels' element type; anything else takes Burn's path).
pub fn all_f32<R: KernelRuntime>(tensors: &[&FusedTensor<R>]) -> bool {
    tensors.iter().all(|t| t.dtype() == DType::F32)
}

/// A new contiguous f32 tensor on the device of `like`.
pub fn empty<R: KernelRuntime>(like: &CubeTensor<R>, shape: Shape) -> CubeTensor<R> {
    empty_device_contiguous_dtype(like.client.clone(), like.device.clone(), shape, DType::F32)
}

//! The GPU path on Burn's wgpu backend, run on whatever adapter wgpu finds: Mesa's lavapipe
//! (a software Vulkan driver) in CI, a real GPU on a developer's machine. The model against
//! transformers' numbers, the LoRA forward and backward pass against the CPU backend, a few
//! training steps of the real all-MiniLM-L6-v2, and the `imdb-lora` binary built for wgpu
//! end to end.
//!
//! `cargo test -p imdb-lora --features wgpu --test it wgpu::` (a module of the crate's one test
//! binary, compiled only with the feature). Without an adapter each test
//! says so and passes, unless `IMDB_LORA_REQUIRE_WGPU=1` (CI sets it after installing lavapipe),
//! where a missing adapter fails. Lavapipe compiles each shader on first use (seconds each) and
//! runs on the CPU: the shapes here are small on purpose.
// The measured differences and the adapter are printed (`--nocapture`): docs/GPU.md quotes them,
// and a skip must say why.
#![allow(clippy::print_stderr)]

mod binary;
mod kernels;
mod lora_grads;
mod parity;
mod training;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, OnceLock};

use burn::backend::wgpu::WgpuDevice;
use burn::tensor::{Int, Tensor, TensorData};
use safetensors::{Dtype, SafeTensors};

/// The backend under test.
pub type W = burn::backend::Wgpu;
/// The CPU backend it is compared with.
pub type F = burn::backend::Flex;

/// Set to make a missing adapter a failure rather than a skip.
const REQUIRE_VAR: &str = "IMDB_LORA_REQUIRE_WGPU";

/// The wgpu device, or `None` (after saying why) when there is no adapter to run on.
pub fn device() -> Option<WgpuDevice> {
    static ADAPTER: OnceLock<Option<String>> = OnceLock::new();
    let adapter = ADAPTER.get_or_init(|| {
        let found = imdb_lora_encoder::wgpu_adapter();
        match &found {
            Some(a) => eprintln!("wgpu adapter: {a}"),
            None if std::env::var_os(REQUIRE_VAR).is_some_and(|v| v != "0") => panic!(
                "{REQUIRE_VAR} is set but wgpu finds no adapter: install Mesa's lavapipe \
                 (apt-get install mesa-vulkan-drivers)"
            ),
            None => eprintln!(
                "SKIPPED: wgpu finds no graphics adapter (no Vulkan driver); install Mesa's \
                 lavapipe (apt-get install mesa-vulkan-drivers) to run the wgpu suite"
            ),
        }
        found
    });
    adapter.as_ref().map(|_| WgpuDevice::default())
}

/// One test at a time on the device: they seed the backend's global RNG, and lavapipe runs
/// on the same few cores anyway.
pub fn device_lock() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

pub fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures")
        .join(rel)
}

pub fn minilm_dir() -> PathBuf {
    imdb_lora_testkit::shared::minilm_dir().unwrap_or_else(|e| panic!("{e}"))
}

/// Tensors of a reference file (made by transformers), by name.
pub struct Expected {
    bytes: Vec<u8>,
}

impl Expected {
    pub fn open(path: &Path) -> Self {
        Self {
            bytes: std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
        }
    }

    fn data(&self, name: &str) -> TensorData {
        let st = SafeTensors::deserialize(&self.bytes).unwrap();
        let v = st
            .tensor(name)
            .unwrap_or_else(|_| panic!("no tensor {name}"));
        let shape = v.shape().to_vec();
        match v.dtype() {
            Dtype::F32 => TensorData::new(
                v.data()
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                    .collect::<Vec<f32>>(),
                shape,
            ),
            Dtype::I64 => TensorData::new(
                v.data()
                    .chunks_exact(8)
                    .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
                    .collect::<Vec<i64>>(),
                shape,
            ),
            other => panic!("{name}: unexpected dtype {other:?}"),
        }
    }

    pub fn f32(&self, name: &str) -> Vec<f32> {
        self.data(name).to_vec().unwrap()
    }

    /// Whether the file holds `name`.
    pub fn has(&self, name: &str) -> bool {
        SafeTensors::deserialize(&self.bytes)
            .unwrap()
            .tensor(name)
            .is_ok()
    }

    pub fn ids<B: burn::tensor::backend::Backend>(
        &self,
        name: &str,
        device: &B::Device,
    ) -> Tensor<B, 2, Int> {
        Tensor::from_data(self.data(name), device)
    }
}

pub fn values<B: burn::tensor::backend::Backend, const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
    t.into_data().convert::<f32>().to_vec().unwrap()
}

/// Largest `|a - b|`, after checking the lengths agree.
pub fn max_abs_diff(what: &str, a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

pub fn assert_close(what: &str, got: &[f32], want: &[f32], tol: f32) {
    assert!(
        got.iter().all(|v| v.is_finite()),
        "{what}: non-finite values"
    );
    let diff = max_abs_diff(what, got, want);
    eprintln!("{what}: max |Δ| = {diff:.2e} (tolerance {tol:.0e})");
    assert!(diff <= tol, "{what}: max |Δ| = {diff:e} > {tol:e}");
}

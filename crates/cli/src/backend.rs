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

/// The batches' default pad multiple (`--pad-multiple`): on a GPU backend every distinct
/// shape compiles its own kernels, and sorted evaluation batches alone bring ≈ 18 lengths
/// at max_len 256; multiples of 32 bring at most 8 (a multiple of the tensor cores' tiles,
/// and at most 31 padded tokens per review). The CPU backends compile nothing and pay for
/// every padded slot: exact padding.
#[cfg(any(feature = "cuda", feature = "wgpu"))]
pub const DEFAULT_PAD_MULTIPLE: Option<usize> = Some(32);
/// The batches' default pad multiple (`--pad-multiple`): none on the CPU backends.
#[cfg(not(any(feature = "cuda", feature = "wgpu")))]
pub const DEFAULT_PAD_MULTIPLE: Option<usize> = None;

/// `serve --max-batch-tokens` by default: TEI's 16,384 on the GPU backends, where a large pass
/// fills the device; 2,048 on the CPU backends, where a pass of 8 reviews at 256 tokens runs
/// faster per text than 16, 32 or 64 (measured in docs/SERVING.md).
#[cfg(any(feature = "cuda", feature = "wgpu"))]
pub const DEFAULT_MAX_BATCH_TOKENS: usize = 16384;
/// `serve --max-batch-tokens` by default on the CPU backends (see the GPU one).
#[cfg(not(any(feature = "cuda", feature = "wgpu")))]
pub const DEFAULT_MAX_BATCH_TOKENS: usize = 2048;

/// The training backend: [`Backend`] with automatic differentiation.
pub type TrainBackend = burn::backend::Autodiff<Backend>;

// The backend's name as a literal (so `concat!` can use it): one definition per feature set.
#[cfg(feature = "cuda")]
macro_rules! backend_name {
    () => {
        "cuda"
    };
}
#[cfg(all(feature = "wgpu", not(feature = "cuda")))]
macro_rules! backend_name {
    () => {
        "wgpu"
    };
}
#[cfg(all(
    not(any(feature = "cuda", feature = "wgpu")),
    feature = "flex",
    not(feature = "ndarray")
))]
macro_rules! backend_name {
    () => {
        "flex (CPU)"
    };
}
#[cfg(all(
    not(any(feature = "cuda", feature = "wgpu")),
    feature = "ndarray",
    not(feature = "flex")
))]
macro_rules! backend_name {
    () => {
        "ndarray (CPU)"
    };
}

/// Human-readable name of [`Backend`], for logs and reports.
pub const BACKEND_NAME: &str = backend_name!();

/// What `--version` prints: the version and the backend this binary was built for.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    backend_name!(),
    " backend; build others with --features cuda|wgpu|ndarray)"
);

/// The device models and tensors live on: the first GPU for `cuda`; for `wgpu` the adapter
/// wgpu picks (the high-performance one; `CUBECL_WGPU_DEFAULT_DEVICE=DiscreteGpu(1)`,
/// `IntegratedGpu(0)` or `Cpu` chooses another); the CPU otherwise.
///
/// # Errors
/// `wgpu` only: no graphics adapter (no GPU driver, or no Vulkan loader and driver on Linux),
/// said before Burn would panic on first use.
pub fn device() -> anyhow::Result<burn::tensor::Device<Backend>> {
    #[cfg(any(feature = "cuda", feature = "wgpu"))]
    configure_cubecl();
    #[cfg(feature = "cuda")]
    {
        Ok(burn::backend::cuda::CudaDevice::default())
    }
    #[cfg(all(feature = "wgpu", not(feature = "cuda")))]
    {
        match imdb_lora_encoder::wgpu_adapter() {
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
#[command(next_help_heading = "Model")]
pub struct PrecisionArg {
    /// Compute precision: `f32`, or `bf16` mixed precision (frozen projections and
    /// activations in bf16; LoRA factors, head, layer norms, softmax, logits, loss and
    /// optimizer in f32). bf16 runs on `cuda` and on the CPU (slower there than f32: see
    /// docs/PRECISION.md); wgpu has none.
    #[arg(long, default_value = "f32", value_name = "f32|bf16")]
    pub precision: imdb_lora_encoder::Precision,
}

impl PrecisionArg {
    /// The precision, if this build's backend computes in it.
    ///
    /// # Errors
    /// bf16 on `wgpu` (WGSL has no bf16 type; CubeCL's wgpu runtime refuses it) or `ndarray`
    /// (no bf16 arithmetic).
    pub fn checked(self) -> anyhow::Result<imdb_lora_encoder::Precision> {
        // The backends `Backend` can be that compute in bf16: cuda, or flex when no GPU
        // feature overrides it.
        let supported =
            cfg!(feature = "cuda") || (cfg!(feature = "flex") && !cfg!(feature = "wgpu"));
        if self.precision != imdb_lora_encoder::Precision::F32 && !supported {
            anyhow::bail!(
                "--precision {} is not available on the {BACKEND_NAME} backend; use f32, \
                 or a build with the cuda feature (or the default CPU backend)",
                self.precision
            );
        }
        if self.precision == imdb_lora_encoder::Precision::Bf16 && cfg!(not(feature = "cuda")) {
            tracing::warn!(
                "bf16 on the CPU is emulated (converted to f32 for every product) and slower \
                 than f32 there; it is meant for GPUs (docs/PRECISION.md)"
            );
        }
        Ok(self.precision)
    }
}

/// `--quantize`: int8 inference (eval, predict, serve, export).
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct QuantizeArg {
    /// Quantise the encoder's linear projections to int8 (weights per output channel,
    /// activations per row at run time, i32 sums; embeddings stored int8, looked up in f32;
    /// layer norms, softmax and head in f32), after merging the adapter. CPU backend only, f32
    /// precision. A model saved with `export --quantize int8` runs in int8 without it.
    #[arg(long, value_name = "int8")]
    pub quantize: Option<imdb_lora_encoder::Quantization>,
}

impl QuantizeArg {
    /// The quantisation, if this build's backend runs it at `precision`; the int8 kernel in
    /// use is logged.
    ///
    /// # Errors
    /// int8 on a GPU backend (no int8 kernels there; the portable composition would be slower
    /// than f32), or with bf16.
    pub fn checked(
        self,
        precision: imdb_lora_encoder::Precision,
    ) -> anyhow::Result<Option<imdb_lora_encoder::Quantization>> {
        let Some(q) = self.quantize else {
            return Ok(None);
        };
        if !INT8_KERNELS {
            anyhow::bail!(
                "--quantize {q} runs on the CPU backend (flex), which has int8 kernels; this \
                 build's backend is {BACKEND_NAME}"
            );
        }
        anyhow::ensure!(
            precision == imdb_lora_encoder::Precision::F32,
            "--quantize {q} goes with --precision f32 (the int8 weights are quantised from f32 \
             ones), not {precision}"
        );
        #[cfg(all(feature = "flex", not(any(feature = "cuda", feature = "wgpu"))))]
        tracing::info!(
            kernel = imdb_lora_encoder::Int8Kernel::chosen().name(),
            "int8 inference"
        );
        Ok(Some(q))
    }
}

/// Whether this build's backend has int8 kernels (Flex, the default CPU backend).
pub const INT8_KERNELS: bool = cfg!(all(
    feature = "flex",
    not(any(feature = "cuda", feature = "wgpu"))
));

/// The kernel cache's settings: plain functions of paths and environment values, so the CPU
/// builds test them too; only the GPU builds use them.
#[cfg_attr(
    not(any(feature = "cuda", feature = "wgpu")),
    allow(dead_code, reason = "used by the GPU backends; tested in every build")
)]
mod kernel_cache {
    /// `IMDB_LORA_KERNEL_CACHE`: the directory CubeCL keeps compiled kernels (and autotune
    /// results) in between runs; empty, `0` or `off` turns the cache off.
    pub const KERNEL_CACHE_ENV: &str = "IMDB_LORA_KERNEL_CACHE";

    /// CubeCL's own configuration files, looked for in the current directory and its parents in
    /// this order (`cubecl-common`'s `RuntimeConfig::from_current_dir`); the `burn.toml` ones
    /// count only with a `[cubecl]` table.
    const CUBECL_FILES: [&str; 2] = ["cubecl.toml", "CubeCL.toml"];
    const CUBECL_SECTION_FILES: [&str; 2] = ["burn.toml", "Burn.toml"];

    /// The user's CubeCL configuration file, if `dir` or a parent has one: it then configures
    /// CubeCL entirely (the binary adds nothing), as it would without this binary.
    pub fn user_cubecl_config(dir: &std::path::Path) -> Option<std::path::PathBuf> {
        dir.ancestors().find_map(|d| {
            let own = CUBECL_FILES.iter().map(|n| d.join(n)).find(|p| p.is_file());
            own.or_else(|| {
                CUBECL_SECTION_FILES
                    .iter()
                    .map(|n| d.join(n))
                    .find(|p| std::fs::read_to_string(p).is_ok_and(|t| t.contains("[cubecl")))
            })
        })
    }

    /// Where compiled kernels are kept: `IMDB_LORA_KERNEL_CACHE` if set (`None` when it turns
    /// the cache off), else `target/cubecl-cache` in the nearest directory from `cwd` up that
    /// holds a `Cargo.toml` (the checkout: project-local, ignored by git, and where a carried
    /// tree runs), else `.cubecl-cache` in `cwd`.
    pub fn kernel_cache_dir(
        env: Option<std::ffi::OsString>,
        cwd: &std::path::Path,
    ) -> Option<std::path::PathBuf> {
        if let Some(value) = env {
            let off = value.is_empty() || value == "0" || value == "off";
            return (!off).then(|| cwd.join(value));
        }
        let dir = match cwd.ancestors().find(|d| d.join("Cargo.toml").is_file()) {
            Some(root) => root.join("target").join("cubecl-cache"),
            None => cwd.join(".cubecl-cache"),
        };
        Some(dir)
    }

    /// CubeCL's runtime configuration as the binary sets it, in `CubeClRuntimeConfig`'s serde
    /// form (so it is built and tested without a GPU backend): compiled kernels and autotune
    /// results cached in `cache` (`None`: nothing cached), everything else CubeCL's defaults.
    ///
    /// Autotune itself stays off: Burn's CUDA and wgpu backends are built without their
    /// `autotune` feature (root Cargo.toml). With `--pad-multiple` there are a few shapes per
    /// run, so tuning would now cost a few benchmarks per bucket, and its results would land in
    /// the same cache; whether it pays needs a GPU to measure (issue #16).
    pub fn cubecl_settings(cache: Option<&std::path::Path>) -> serde_json::Value {
        let mut settings = serde_json::json!({ "compilation": {}, "autotune": {} });
        if let Some(dir) = cache {
            let file = serde_json::json!({ "file": dir });
            settings["compilation"]["cache"] = file.clone();
            settings["autotune"]["cache"] = file;
        }
        settings
    }
}

/// Sets CubeCL's configuration before the first device use: the persistent kernel cache
/// ([`kernel_cache::kernel_cache_dir`]), unless the user has a CubeCL configuration file of
/// their own ([`kernel_cache::user_cubecl_config`]); CubeCL's environment variables (`CUBECL_DEBUG_LOG`,
/// `CUBECL_DEBUG_OPTION`, `CUBECL_AUTOTUNE_LEVEL`) apply on top either way.
///
/// Without it, CUDA compiles every kernel with NVRTC in every process (CubeCL's cache is off
/// by default). wgpu's default WGSL compiler has no compiled-kernel cache in CubeCL 0.10
/// (only its SPIR-V compiler does), so there the setting only keeps autotune results.
#[cfg(any(feature = "cuda", feature = "wgpu"))]
fn configure_cubecl() {
    use cubecl_runtime::config::{CubeClRuntimeConfig, RuntimeConfig};

    let cwd = std::env::current_dir().unwrap_or_else(|_| std::path::PathBuf::from("."));
    if let Some(file) = kernel_cache::user_cubecl_config(&cwd) {
        tracing::info!(file = %file.display(), "CubeCL configured by the user's file");
        return;
    }
    if CubeClRuntimeConfig::storage().lock().is_some() {
        tracing::debug!("CubeCL already configured");
        return;
    }
    let cache =
        kernel_cache::kernel_cache_dir(std::env::var_os(kernel_cache::KERNEL_CACHE_ENV), &cwd);
    let settings = kernel_cache::cubecl_settings(cache.as_deref());
    match serde_json::from_value::<CubeClRuntimeConfig>(settings) {
        Ok(config) => {
            CubeClRuntimeConfig::set(config.override_from_env());
            match &cache {
                Some(dir) => tracing::info!(dir = %dir.display(), "CubeCL kernel cache"),
                None => tracing::info!("CubeCL kernel cache off"),
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "CubeCL configuration not set; kernels are not cached")
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::path::Path;

    use super::kernel_cache::*;

    #[test]
    fn kernel_cache_is_project_local_unless_the_environment_says() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = tmp.path().join("repo");
        let sub = repo.join("crates/x");
        std::fs::create_dir_all(&sub).unwrap();
        assert_eq!(
            kernel_cache_dir(None, &sub),
            Some(sub.join(".cubecl-cache")),
            "no Cargo.toml above"
        );
        std::fs::write(repo.join("Cargo.toml"), "").unwrap();
        assert_eq!(
            kernel_cache_dir(None, &sub),
            Some(repo.join("target/cubecl-cache"))
        );
        assert_eq!(
            kernel_cache_dir(Some("/abs/cache".into()), &sub),
            Some("/abs/cache".into())
        );
        assert_eq!(
            kernel_cache_dir(Some("rel".into()), &sub),
            Some(sub.join("rel"))
        );
        for off in ["", "0", "off"] {
            assert_eq!(kernel_cache_dir(Some(off.into()), &sub), None, "{off:?}");
        }
    }

    #[test]
    fn a_users_cubecl_file_wins() {
        let tmp = tempfile::tempdir().unwrap();
        let sub = tmp.path().join("a/b");
        std::fs::create_dir_all(&sub).unwrap();
        assert_eq!(user_cubecl_config(&sub), None);
        // A burn.toml without a [cubecl] table is not CubeCL's.
        std::fs::write(tmp.path().join("a/burn.toml"), "[other]\n").unwrap();
        assert_eq!(user_cubecl_config(&sub), None);
        std::fs::write(tmp.path().join("a/burn.toml"), "[cubecl.autotune]\n").unwrap();
        assert_eq!(
            user_cubecl_config(&sub),
            Some(tmp.path().join("a/burn.toml"))
        );
        std::fs::write(sub.join("cubecl.toml"), "").unwrap();
        assert_eq!(user_cubecl_config(&sub), Some(sub.join("cubecl.toml")));
    }

    #[test]
    fn settings_name_the_cache_for_compilation_and_autotune() {
        let on = cubecl_settings(Some(Path::new("/c")));
        assert_eq!(on["compilation"]["cache"]["file"], "/c");
        assert_eq!(on["autotune"]["cache"]["file"], "/c");
        let off = cubecl_settings(None);
        assert!(off["compilation"].get("cache").is_none());
        assert!(off["autotune"].get("cache").is_none());
    }

    /// The settings are CubeCL's own configuration: they deserialise into it, the cache where
    /// CUDA's PTX cache and the autotune cache look for it.
    #[cfg(any(feature = "cuda", feature = "wgpu"))]
    #[test]
    fn settings_are_a_cubecl_configuration() {
        use cubecl_runtime::config::CubeClRuntimeConfig;
        use cubecl_runtime::config::cache::CacheConfig;

        let config: CubeClRuntimeConfig =
            serde_json::from_value(cubecl_settings(Some(Path::new("/c")))).unwrap();
        let root = config.compilation.cache.as_ref().map(CacheConfig::root);
        assert_eq!(root, Some("/c".into()));
        assert_eq!(config.autotune.cache.root(), Path::new("/c"));
        let off: CubeClRuntimeConfig = serde_json::from_value(cubecl_settings(None)).unwrap();
        assert!(off.compilation.cache.is_none());
    }
}

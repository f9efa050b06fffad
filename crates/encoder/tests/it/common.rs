//! Shared helpers for the bert crate's integration tests: fixture paths, tensor I/O, and the
//! one lock on Burn's process-global RNG.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use burn::tensor::{Int, Tensor, TensorData};
use safetensors::{Dtype, SafeTensors};

pub type B = burn::backend::Flex;

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn fixture(rel: &str) -> PathBuf {
    repo().join("fixtures").join(rel)
}

/// all-MiniLM-L6-v2 in `../shared` (or `$IMDB_LORA_SHARED`); fails loudly when absent: CI
/// always has it.
pub fn minilm_dir() -> PathBuf {
    imdb_lora_testkit::shared::minilm_dir().unwrap_or_else(|e| panic!("{e}"))
}

/// Holds Burn's RNG for the caller's test.
///
/// The RNG is process-global (`Backend::seed` stores it, every random tensor takes from it) and
/// the tests run on parallel threads: a test that seeds or draws (random tensors, LoRA `A`
/// initialisation, `BertModel::init`, dropout in training) holds this guard for its whole body,
/// or another test's draw could land between its seed and its use. One lock for the whole test
/// binary; a poisoned lock (a failed test) is taken over, the RNG has no invariant to break.
pub fn rng_lock() -> MutexGuard<'static, ()> {
    static RNG: Mutex<()> = Mutex::new(());
    RNG.lock().unwrap_or_else(|e| e.into_inner())
}

/// Tensors of a reference file, by name.
pub struct Expected {
    bytes: Vec<u8>,
}

impl Expected {
    pub fn open(path: &Path) -> Self {
        Self {
            bytes: std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
        }
    }

    /// Whether the file holds `name`.
    pub fn has(&self, name: &str) -> bool {
        SafeTensors::deserialize(&self.bytes)
            .unwrap()
            .tensor(name)
            .is_ok()
    }

    fn view(&self, name: &str) -> (Vec<usize>, Dtype, Vec<u8>) {
        let st = SafeTensors::deserialize(&self.bytes).unwrap();
        let v = st
            .tensor(name)
            .unwrap_or_else(|_| panic!("no tensor {name}"));
        (v.shape().to_vec(), v.dtype(), v.data().to_vec())
    }

    pub fn f32<const D: usize>(&self, name: &str) -> Tensor<B, D> {
        let (shape, dtype, data) = self.view(name);
        assert_eq!(dtype, Dtype::F32, "{name}");
        let values: Vec<f32> = data
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        Tensor::from_data(TensorData::new(values, shape), &Default::default())
    }

    pub fn i64<const D: usize>(&self, name: &str) -> Tensor<B, D, Int> {
        let (shape, dtype, data) = self.view(name);
        assert_eq!(dtype, Dtype::I64, "{name}");
        let values: Vec<i64> = data
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
            .collect();
        Tensor::from_data(TensorData::new(values, shape), &Default::default())
    }
}

/// Largest absolute difference between two tensors of the same shape.
pub fn max_abs_diff<const D: usize>(a: Tensor<B, D>, b: Tensor<B, D>) -> f32 {
    assert_eq!(a.dims(), b.dims());
    let a: Vec<f32> = a.into_data().to_vec().unwrap();
    let b: Vec<f32> = b.into_data().to_vec().unwrap();
    a.iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[track_caller]
pub fn assert_close<const D: usize>(what: &str, got: Tensor<B, D>, want: Tensor<B, D>, tol: f32) {
    let diff = max_abs_diff(got, want);
    assert!(diff <= tol, "{what}: max |diff| = {diff:e} > {tol:e}");
}

/// `model` with seeded, non-trivial LoRA factors (`B` non-zero, so they change the output).
pub fn with_random_adapter(
    mut model: imdb_lora_encoder::SequenceClassifier<B>,
    lora: &imdb_lora_lora::LoraConfig,
    seed: u64,
) -> imdb_lora_encoder::SequenceClassifier<B> {
    use burn::tensor::Distribution;
    use burn::tensor::backend::Backend;
    let device = Default::default();
    B::seed(&device, seed);
    model = model
        .map_targets(lora, |linear| {
            let [d_in, d_out] = linear.dims();
            let a = Tensor::random([d_in, lora.r], Distribution::Normal(0.0, 0.2), &device);
            let b = Tensor::random([lora.r, d_out], Distribution::Normal(0.0, 0.2), &device);
            linear.with_loaded_adapter(imdb_lora_lora::LoraAdapter::from_factors(
                lora, a, b, d_in, d_out,
            )?)
        })
        .unwrap();
    model
}

/// The classifier's logits for a fixture's inputs (`input_ids`, `attention_mask`,
/// `token_type_ids`).
pub fn logits(model: &imdb_lora_encoder::SequenceClassifier<B>, e: &Expected) -> Tensor<B, 2> {
    model
        .forward(
            e.i64("input_ids"),
            e.i64("attention_mask"),
            Some(e.i64("token_type_ids")),
        )
        .unwrap()
}

/// The BERT encoder of a BERT-family classifier (tests of BERT's own modules).
pub fn bert<Bk: burn::tensor::backend::Backend>(
    model: &imdb_lora_encoder::SequenceClassifier<Bk>,
) -> &imdb_lora_encoder::bert::BertModel<Bk> {
    match &model.encoder {
        imdb_lora_encoder::Encoder::Bert(m) => m,
        _ => panic!("not a BERT-family model"),
    }
}

/// The head of a BERT classifier.
pub fn bert_head<Bk: burn::tensor::backend::Backend>(
    model: &imdb_lora_encoder::SequenceClassifier<Bk>,
) -> &imdb_lora_encoder::heads::BertHead<Bk> {
    match &model.head {
        imdb_lora_encoder::heads::Head::Bert(h) => h,
        _ => panic!("not a BERT head"),
    }
}

/// The head of a BERT classifier, to change.
pub fn bert_head_mut<Bk: burn::tensor::backend::Backend>(
    model: &mut imdb_lora_encoder::SequenceClassifier<Bk>,
) -> &mut imdb_lora_encoder::heads::BertHead<Bk> {
    match &mut model.head {
        imdb_lora_encoder::heads::Head::Bert(h) => h,
        _ => panic!("not a BERT head"),
    }
}

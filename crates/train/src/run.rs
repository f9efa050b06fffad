//! [`RunSpec`]: the one record of what a run is — its inputs and its LoRA and training
//! settings — filled once by the caller (the CLI from its arguments, a test by hand). The
//! configuration `metrics.json` records ([`RunConfig`]) and the resume fingerprint are both
//! derived from it here, so no setting is copied by hand between structs.

use imdb_lora_encoder::Precision;
use imdb_lora_lora::LoraConfig;
use imdb_lora_metrics::RunConfig;
use serde::Serialize;

use crate::{Datasets, TrainConfig, TrainError};

/// Everything that defines a run; the examples themselves are [`Datasets`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunSpec {
    /// The base model as the user named it (a Hub id or a directory).
    pub model: String,
    /// sha256 of the base model's weights file, when known: part of the run's identity, so a
    /// resumed run refuses a checkpoint made on other weights under the same name.
    pub model_sha256: Option<String>,
    /// The data as the user named it (a Hub id, a file or a directory).
    pub data: String,
    /// Truncation length in tokens the examples were encoded with.
    pub max_len: usize,
    /// The Burn backend that runs it, e.g. `flex`, `cuda`.
    pub backend: String,
    /// The encoder's precision (`bf16`: mixed precision).
    #[serde(serialize_with = "by_name")]
    pub precision: Precision,
    /// The adapters.
    pub lora: LoraConfig,
    /// How to train.
    pub train: TrainConfig,
}

fn by_name<S: serde::Serializer>(precision: &Precision, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(precision)
}

impl RunSpec {
    /// What `metrics.json` records of this run over `train_n` training and `test_n` test
    /// examples (the f32 precision is left out, so an f32 run's file is what it always was).
    pub fn record(&self, train_n: usize, test_n: usize) -> RunConfig {
        let t = &self.train;
        RunConfig {
            model: self.model.clone(),
            data: self.data.clone(),
            train_n,
            test_n,
            max_len: self.max_len,
            epochs: t.epochs,
            batch_size: t.batch_size,
            lr: t.lr,
            weight_decay: t.weight_decay,
            warmup_ratio: t.warmup_ratio,
            lr_schedule: t.lr_schedule.name().into(),
            max_grad_norm: t.max_grad_norm,
            seed: t.seed,
            lora_r: self.lora.r,
            lora_alpha: self.lora.lora_alpha,
            lora_dropout: self.lora.lora_dropout,
            target_modules: self.lora.target_modules.clone(),
            backend: self.backend.clone(),
            model_sha256: self.model_sha256.clone(),
            precision: (self.precision != Precision::F32).then(|| self.precision.to_string()),
        }
    }

    /// Identifies what determines the run's numbers — this spec and the examples' counts and
    /// classes; when and whether to pause (`stop_after_steps`, `checkpoint_every`) and step
    /// timing do not — so that a checkpoint of another run is refused.
    pub(crate) fn fingerprint(&self, data: &Datasets) -> Result<String, TrainError> {
        let identity = RunSpec {
            train: TrainConfig {
                stop_after_steps: None,
                checkpoint_every: None,
                step_timing: false,
                ..self.train.clone()
            },
            ..self.clone()
        };
        serde_json::to_string(&(identity, data.train.len(), data.test.len(), &data.classes))
            .map_err(|e| TrainError::Config(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> RunSpec {
        RunSpec {
            model: "m".into(),
            model_sha256: Some("ab".into()),
            data: "d".into(),
            max_len: 64,
            backend: "flex".into(),
            precision: Precision::F32,
            lora: LoraConfig::default(),
            train: TrainConfig::default(),
        }
    }

    fn data(classes: &[&str]) -> Datasets {
        Datasets {
            train: Vec::new(),
            test: Vec::new(),
            pad_id: 0,
            classes: classes.iter().map(|&c| c.to_owned()).collect(),
        }
    }

    #[test]
    fn the_fingerprint_covers_what_changes_the_numbers_and_nothing_else() {
        let base = spec().fingerprint(&data(&["neg", "pos"])).unwrap();
        // Pausing and timing do not change the numbers.
        let mut paused = spec();
        paused.train.stop_after_steps = Some(3);
        paused.train.checkpoint_every = Some(7);
        paused.train.step_timing = true;
        assert_eq!(paused.fingerprint(&data(&["neg", "pos"])).unwrap(), base);
        // Every setting that does, and the classes, change it.
        let changed: [fn(&mut RunSpec); 6] = [
            |s| s.train.lr = 1e-4,
            |s| s.train.seed = 1,
            |s| s.lora.r = 4,
            |s| s.max_len = 128,
            |s| s.precision = Precision::Bf16,
            |s| s.model_sha256 = None,
        ];
        for change in changed {
            let mut s = spec();
            change(&mut s);
            assert_ne!(s.fingerprint(&data(&["neg", "pos"])).unwrap(), base);
        }
        assert_ne!(spec().fingerprint(&data(&["pos", "neg"])).unwrap(), base);
    }

    #[test]
    fn the_record_names_the_schedule_and_leaves_f32_out() {
        let r = spec().record(10, 4);
        assert_eq!(
            (r.train_n, r.test_n, r.lr_schedule.as_str()),
            (10, 4, "linear")
        );
        assert_eq!((r.precision, r.max_grad_norm), (None, Some(1.0)));
        let mut bf16 = spec();
        bf16.precision = Precision::Bf16;
        assert_eq!(bf16.record(1, 1).precision.as_deref(), Some("bf16"));
    }
}

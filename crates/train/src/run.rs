//! [`RunSpec`]: the one record of what a run is — its inputs and its LoRA and training
//! settings — filled once by the caller (the CLI from its arguments, a test by hand). The
//! configuration `metrics.json` records ([`RunConfig`]) and the resume fingerprint are both
//! derived from it here, so no setting is copied by hand between structs.

use std::collections::BTreeSet;

use imdb_lora_data::LongText;
use imdb_lora_encoder::Precision;
use imdb_lora_lora::LoraConfig;
use imdb_lora_metrics::RunConfig;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{Datasets, TrainConfig, TrainError};

/// Everything that defines a run; the examples themselves are [`Datasets`]. Written as
/// `run.json` into the run directory by the binary, which continues a run from it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    #[serde(serialize_with = "by_name", deserialize_with = "from_name")]
    pub precision: Precision,
    /// The adapters.
    pub lora: LoraConfig,
    /// How to train.
    pub train: TrainConfig,
    /// How texts longer than `max_len` were given to the model (the default, cut at the end,
    /// is not written: run.json files of older runs read as it).
    #[serde(default, skip_serializing_if = "is_truncate")]
    pub long_text: LongText,
}

fn is_truncate(rule: &LongText) -> bool {
    *rule == LongText::Truncate
}

/// The texts among `examples`: its distinct rows (a long text split into windows is one).
fn texts(examples: &[imdb_lora_data::Encoded]) -> usize {
    examples
        .iter()
        .map(|e| e.row)
        .collect::<std::collections::HashSet<_>>()
        .len()
}

fn by_name<S: serde::Serializer>(precision: &Precision, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(precision)
}

fn from_name<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Precision, D::Error> {
    let name = String::deserialize(d)?;
    name.parse().map_err(serde::de::Error::custom)
}

impl RunSpec {
    /// What `metrics.json` records of this run over `data` (the f32 precision is left out, so
    /// an f32 run's file is what it always was; the counts are of texts, the class weights
    /// resolved).
    ///
    /// # Errors
    /// [`TrainError::Config`] for class weights that do not fit the classes.
    pub fn record(&self, data: &Datasets) -> Result<RunConfig, TrainError> {
        let t = &self.train;
        let class_weights = match &t.class_weights {
            Some(w) => Some(w.resolve(&data.train_counts())?),
            None => None,
        };
        Ok(RunConfig {
            model: self.model.clone(),
            data: self.data.clone(),
            train_n: texts(&data.train),
            test_n: texts(&data.test),
            val_n: data.validation.as_deref().map(texts),
            class_weights,
            long_text: self.long_text.describe(),
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
        })
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
                more_epochs: false,
                ..self.train.clone()
            },
            ..self.clone()
        };
        // A validation split's size joins only when there is one: the fingerprints of runs
        // without one are what they were before validation splits existed.
        let fingerprint = match &data.validation {
            None => {
                serde_json::to_string(&(identity, data.train.len(), data.test.len(), &data.classes))
            }
            Some(v) => serde_json::to_string(&(
                identity,
                data.train.len(),
                data.test.len(),
                &data.classes,
                v.len(),
            )),
        };
        fingerprint.map_err(|e| TrainError::Config(e.to_string()))
    }
}

/// Names of the parts of a [`RunSpec::fingerprint`] after the spec itself.
const FINGERPRINT_PARTS: [&str; 4] = [
    "training examples",
    "test examples",
    "classes",
    "validation examples",
];

/// A value as a difference shows it: its JSON, cut to 60 characters.
fn shown(value: Option<&Value>) -> String {
    let text = value.map_or_else(|| "(absent)".to_owned(), Value::to_string);
    match text.char_indices().nth(60) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text,
    }
}

fn differences(path: &str, old: &Value, new: &Value, out: &mut Vec<String>) {
    let join = |key: &str| match path {
        "" => key.to_owned(),
        p => format!("{p}.{key}"),
    };
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for key in keys {
                match (a.get(key), b.get(key)) {
                    (Some(x), Some(y)) => differences(&join(key), x, y, out),
                    (x, y) => out.push(format!("{} {} → {}", join(key), shown(x), shown(y))),
                }
            }
        }
        _ if old != new => out.push(format!(
            "{path} {} → {}",
            shown(Some(old)),
            shown(Some(new))
        )),
        _ => {}
    }
}

/// What differs between two [`RunSpec::fingerprint`]s, one `setting old → new` per leaf
/// (`train.lr 0.0002 → 0.0001`, `model_sha256 "ab…" → "cd…"`, `classes [...] → [...]`);
/// empty when they are equal or not comparable (a checkpoint of an older version, whose
/// fingerprint has another shape).
pub(crate) fn fingerprint_differences(old: &str, new: &str) -> Vec<String> {
    let parse = |s: &str| serde_json::from_str::<Value>(s).ok();
    let (Some(Value::Array(old)), Some(Value::Array(new))) = (parse(old), parse(new)) else {
        return Vec::new();
    };
    if old.len() != new.len() || old.len() > FINGERPRINT_PARTS.len() + 1 || old.len() < 4 {
        return Vec::new();
    }
    let mut out = Vec::new();
    for (i, (a, b)) in old.iter().zip(&new).enumerate() {
        let path = i.checked_sub(1).map_or("", |p| FINGERPRINT_PARTS[p]);
        differences(path, a, b, &mut out);
    }
    out
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
            long_text: LongText::Truncate,
        }
    }

    fn data(classes: &[&str]) -> Datasets {
        Datasets {
            train: Vec::new(),
            test: Vec::new(),
            validation: None,
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
    fn a_refused_resume_can_name_each_setting_that_differs() {
        let old = spec().fingerprint(&data(&["neg", "pos"])).unwrap();
        let mut changed = spec();
        changed.train.lr = 1e-4;
        changed.lora.target_modules = vec!["query".into()];
        changed.model_sha256 = Some("cd".into());
        let mut other = data(&["neg", "pos", "mixed"]);
        other.test = vec![imdb_lora_data::Encoded {
            row: 0,
            ids: vec![1],
            type_ids: vec![0],
            label: 0,
        }];
        let new = changed.fingerprint(&other).unwrap();
        assert_eq!(
            fingerprint_differences(&old, &new),
            [
                r#"lora.target_modules ["query","value"] → ["query"]"#,
                r#"model_sha256 "ab" → "cd""#,
                "train.lr 0.0002 → 0.0001",
                "test examples 0 → 1",
                r#"classes ["neg","pos"] → ["neg","pos","mixed"]"#,
            ]
        );
        assert!(fingerprint_differences(&old, &old).is_empty());
        // An older checkpoint's fingerprint has another shape: nothing to name.
        assert!(fingerprint_differences("[{}, 1]", &new).is_empty());
    }

    #[test]
    fn a_spec_reads_back_as_written() {
        let mut s = spec();
        s.precision = Precision::Bf16;
        let json = serde_json::to_string(&s).unwrap();
        assert!(json.contains(r#""precision":"bf16""#), "{json}");
        assert_eq!(serde_json::from_str::<RunSpec>(&json).unwrap(), s);
    }

    fn examples(labels: &[u32]) -> Vec<imdb_lora_data::Encoded> {
        (0..)
            .zip(labels)
            .map(|(row, &label)| imdb_lora_data::Encoded {
                row,
                label,
                ids: vec![1, 2],
                type_ids: vec![0, 0],
            })
            .collect()
    }

    #[test]
    fn the_record_names_the_schedule_and_leaves_f32_out() {
        let mut d = data(&["neg", "pos"]);
        d.train = examples(&[0; 10]);
        d.test = examples(&[1; 4]);
        let r = spec().record(&d).unwrap();
        assert_eq!(
            (r.train_n, r.test_n, r.lr_schedule.as_str()),
            (10, 4, "linear")
        );
        assert_eq!((r.precision, r.max_grad_norm), (None, Some(1.0)));
        assert_eq!((r.val_n, r.class_weights), (None, None));
        let mut bf16 = spec();
        bf16.precision = Precision::Bf16;
        assert_eq!(bf16.record(&d).unwrap().precision.as_deref(), Some("bf16"));
    }

    #[test]
    fn class_weights_resolve_as_scikit_learns_balanced_and_are_checked() {
        let mut d = data(&["a", "b", "c"]);
        d.train = examples(&[0, 0, 0, 0, 0, 0, 1, 1, 2, 2, 2, 2]);
        d.validation = Some(examples(&[0, 1]));
        let mut s = spec();
        s.train.class_weights = Some(crate::ClassWeights::Auto);
        let r = s.record(&d).unwrap();
        // n / (k × count): 12 / (3 × 6), 12 / (3 × 2), 12 / (3 × 4).
        assert_eq!(r.class_weights, Some(vec![12.0 / 18.0, 2.0, 1.0]));
        assert_eq!(r.val_n, Some(2));
        s.train.class_weights = Some(crate::ClassWeights::Given(vec![1.0, 2.0]));
        let e = s.record(&d).unwrap_err().to_string();
        assert!(e.contains("2 given for 3 classes"), "{e}");
        s.train.class_weights = Some(crate::ClassWeights::Given(vec![1.0, 0.0, 1.0]));
        assert!(s.record(&d).unwrap_err().to_string().contains("class 1"));
        d.train = examples(&[0, 0, 1]);
        s.train.class_weights = Some(crate::ClassWeights::Auto);
        let e = s.record(&d).unwrap_err().to_string();
        assert!(e.contains("class 2 has no training example"), "{e}");
    }
}

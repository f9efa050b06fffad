//! The training loop on the tiny BERT fixture: it learns a separable toy task, touches only
//! adapters and head, is deterministic, resumes exactly, and guards its checkpoints.

use std::path::{Path, PathBuf};

use burn::backend::{Autodiff, Flex};
use burn::module::AutodiffModule;
use burn::tensor::Tensor;
use burn::tensor::backend::Backend;
use imdb_lora_data::Encoded;
use imdb_lora_encoder::bert::{BertModel, BertPooler};
use imdb_lora_encoder::layers::TransformerLayer as _;
use imdb_lora_encoder::{Encoder, SequenceClassifier, load_classifier};
use imdb_lora_lora::LoraConfig;
use imdb_lora_metrics::{MetricsFile, RunMetrics};
use imdb_lora_train::{
    Datasets, Interrupt, RunOutcome, RunSpec, TrainConfig, TrainError, fine_tune,
};

pub(crate) type AB = Autodiff<Flex>;

fn tiny_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/tiny_bert/seqcls")
}

pub(crate) fn tiny() -> SequenceClassifier<AB> {
    load_classifier::<AB>(&tiny_dir(), &Default::default(), 0)
        .unwrap()
        .0
}

/// Positive reviews mention token 5 ("great"), negative ones token 7 ("awful"), amid noise.
pub(crate) fn toy(n: usize, offset: usize) -> Vec<Encoded> {
    toy_classes(n, offset, 2, |label| if label == 1 { 5 } else { 7 })
}

/// `n` examples of `classes` labels in turn, each with its label's `marker` token amid noise.
fn toy_classes(n: usize, offset: usize, classes: usize, marker: fn(u32) -> u32) -> Vec<Encoded> {
    (0..n)
        .map(|i| {
            let label = (i % classes) as u32;
            let len = 4 + (i * 7 + offset) % 9;
            let mut ids = vec![1u32];
            for j in 0..len {
                ids.push(if j == len / 2 {
                    marker(label)
                } else {
                    20 + ((i * 13 + j * 5 + offset) % 60) as u32
                });
            }
            ids.push(2);
            let type_ids = vec![0; ids.len()];
            Encoded {
                row: i + offset,
                label,
                ids,
                type_ids,
            }
        })
        .collect()
}

pub(crate) fn data() -> Datasets {
    Datasets {
        train: toy(48, 0),
        test: toy(24, 1000),
        validation: None,
        pad_id: 0,
        classes: vec!["neg".into(), "pos".into()],
    }
}

pub(crate) fn spec(config: &TrainConfig) -> RunSpec {
    RunSpec {
        model: "fixtures/tiny_bert/seqcls".into(),
        model_sha256: None,
        data: "toy".into(),
        max_len: 16,
        backend: "flex".into(),
        precision: imdb_lora_encoder::Precision::F32,
        lora: lora(),
        train: config.clone(),
        long_text: imdb_lora_data::LongText::Truncate,
    }
}

pub(crate) fn train_config(epochs: usize) -> TrainConfig {
    TrainConfig {
        epochs,
        batch_size: 8,
        eval_batch_size: 16,
        lr: 5e-3,
        warmup_ratio: 0.1,
        seed: 3,
        checkpoint_every: Some(2),
        ..TrainConfig::default()
    }
}

fn lora() -> LoraConfig {
    LoraConfig {
        r: 4,
        lora_alpha: 8.0,
        ..LoraConfig::default()
    }
}

fn run(out: &Path, config: &TrainConfig) -> Result<RunOutcome<AB>, TrainError> {
    run_reporting(out, config, &imdb_lora_progress::Silent)
}

fn run_reporting(
    out: &Path,
    config: &TrainConfig,
    progress: &dyn imdb_lora_progress::Progress,
) -> Result<RunOutcome<AB>, TrainError> {
    let _guard = crate::rng_lock();
    fine_tune(
        tiny(),
        &spec(config),
        &data(),
        out,
        &Default::default(),
        progress,
        &Interrupt::new(),
    )
}

/// The numbers that must not depend on timing.
fn numbers(m: &RunMetrics) -> Vec<(f64, f64, f64, f64)> {
    std::iter::once((0.0, m.baseline.accuracy, m.baseline.f1, m.baseline.loss))
        .chain(
            m.epochs
                .iter()
                .map(|e| (e.train_loss, e.eval.accuracy, e.eval.f1, e.eval.loss)),
        )
        .collect()
}

fn flat<const D: usize>(t: Tensor<Flex, D>) -> Vec<f32> {
    t.into_data().to_vec().unwrap()
}

#[test]
fn learns_a_separable_task_and_changes_only_adapters_and_head() {
    let out = tempfile::tempdir().unwrap();
    let before = tiny().valid();
    // The tiny random backbone needs a larger rate than bert-base's 2e-4 to learn in seconds.
    let config = TrainConfig {
        lr: 2e-2,
        ..train_config(10)
    };
    let outcome = run(out.path(), &config).unwrap();
    let m = &outcome.metrics;
    assert!(outcome.finished);
    assert_eq!(m.epochs.len(), 10);
    let last = m.epochs.last().unwrap();
    assert!(last.train_loss < m.epochs[0].train_loss, "{:?}", numbers(m));
    assert!(
        last.eval.accuracy >= 0.9,
        "accuracy {} (baseline {})",
        last.eval.accuracy,
        m.baseline.accuracy
    );
    assert!(last.eval.accuracy > m.baseline.accuracy);
    assert_eq!(m.trainable_params, 2 * 2 * 4 * (32 + 32) + 2 * 32 + 2);
    assert_eq!(
        MetricsFile::read(&out.path().join("metrics.json"))
            .unwrap()
            .run,
        *m
    );

    // Frozen weights are bit-identical; adapters and head moved.
    let after = &outcome.model;
    for (a, b) in bert(&before)
        .encoder
        .layer
        .iter()
        .zip(&bert(after).encoder.layer)
    {
        for ((name, pa), (_, pb)) in a.projections().iter().zip(b.projections()) {
            assert_eq!(
                flat(pa.base_layer.float().unwrap().weight.val()),
                flat(pb.base_layer.float().unwrap().weight.val()),
                "{name}"
            );
            let adapted = pb.lora.is_some();
            assert_eq!(
                adapted,
                *name == "attention.self.query" || *name == "attention.self.value"
            );
            if let Some(l) = &pb.lora {
                assert!(
                    flat(l.lora_b.val()).iter().any(|v| *v != 0.0),
                    "{name} lora_B untrained"
                );
            }
        }
        assert_eq!(
            flat(a.output.layer_norm.gamma.val()),
            flat(b.output.layer_norm.gamma.val())
        );
    }
    assert_eq!(
        flat(bert(&before).embeddings.word_embeddings.weight.val()),
        flat(bert(after).embeddings.word_embeddings.weight.val())
    );
    assert_eq!(
        flat(pooler(&before).dense.weight.val()),
        flat(pooler(after).dense.weight.val())
    );
    assert_ne!(
        flat(before.head.output().weight.val()),
        flat(after.head.output().weight.val())
    );
    assert!(out.path().join("checkpoints/last.safetensors").exists());
    assert!(out.path().join("checkpoints/best.safetensors").exists());
}

#[test]
fn same_seed_gives_identical_metrics() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let ma = run(a.path(), &train_config(2)).unwrap().metrics;
    let mb = run(b.path(), &train_config(2)).unwrap().metrics;
    assert_eq!(numbers(&ma), numbers(&mb));
    let mut other = train_config(2);
    other.seed = 4;
    let c = tempfile::tempdir().unwrap();
    let mc = run(c.path(), &other).unwrap().metrics;
    assert_ne!(numbers(&ma), numbers(&mc), "the seed must matter");
}

#[test]
fn interrupted_run_resumes_to_the_same_result() {
    let full = tempfile::tempdir().unwrap();
    let expected = run(full.path(), &train_config(2)).unwrap().metrics;

    let out = tempfile::tempdir().unwrap();
    // 6 batches per epoch: stop mid-epoch 1, then at the epoch boundary, then mid-epoch 2.
    for stop in [3, 3, 2] {
        let config = TrainConfig {
            stop_after_steps: Some(stop),
            ..train_config(2)
        };
        let outcome = run(out.path(), &config).unwrap();
        assert!(!outcome.finished, "stopped after {stop}");
    }
    let resumed = run(out.path(), &train_config(2)).unwrap();
    assert!(resumed.finished);
    assert_eq!(numbers(&resumed.metrics), numbers(&expected));
}

#[test]
fn checkpoint_of_another_configuration_is_refused() {
    let out = tempfile::tempdir().unwrap();
    let config = TrainConfig {
        stop_after_steps: Some(1),
        ..train_config(1)
    };
    run(out.path(), &config).unwrap();
    let mut other = train_config(1);
    other.lr = 1e-3;
    let err = run(out.path(), &other).unwrap_err();
    assert!(matches!(err, TrainError::Checkpoint { .. }), "{err}");
    assert!(err.to_string().contains("last.safetensors"), "{err}");
}

#[test]
fn non_finite_loss_stops_and_keeps_the_last_good_checkpoint() {
    let out = tempfile::tempdir().unwrap();
    let mut config = train_config(2);
    config.lr = 1e30;
    config.max_grad_norm = None;
    config.warmup_ratio = 0.0;
    let err = run(out.path(), &config).unwrap_err();
    assert!(matches!(err, TrainError::NonFiniteLoss { .. }), "{err}");
    let last = out.path().join("checkpoints/last.safetensors");
    let bytes = std::fs::read(&last).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    for (name, t) in st.tensors() {
        let values: Vec<f32> = t
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        assert!(
            values.iter().all(|v| v.is_finite()),
            "{name} holds non-finite values"
        );
    }
}

#[test]
fn zero_steps_means_baseline_only_and_then_resumes() {
    let out = tempfile::tempdir().unwrap();
    let config = TrainConfig {
        stop_after_steps: Some(0),
        ..train_config(1)
    };
    let outcome = run(out.path(), &config).unwrap();
    assert!(!outcome.finished);
    assert!(outcome.metrics.epochs.is_empty());
    let full = tempfile::tempdir().unwrap();
    let expected = run(full.path(), &train_config(1)).unwrap().metrics;
    assert_eq!(
        outcome.metrics.baseline.accuracy,
        expected.baseline.accuracy
    );
    let resumed = run(out.path(), &train_config(1)).unwrap();
    assert!(resumed.finished);
    assert_eq!(numbers(&resumed.metrics), numbers(&expected));
}

#[test]
fn fine_tune_reports_each_epochs_batches_and_evaluations() {
    let out = tempfile::tempdir().unwrap();
    let recorder = imdb_lora_progress::Recorder::new();
    let config = train_config(1);
    run_reporting(out.path(), &config, &recorder).unwrap();
    let d = data();
    let num_batches = d.train.len().div_ceil(config.batch_size) as u64;
    let eval_batches = d.test.len().div_ceil(config.eval_batch_size) as u64;
    assert_eq!(recorder.advanced("epoch 1/1"), num_batches);
    assert_eq!(recorder.advanced("baseline evaluation"), eval_batches);
    assert_eq!(recorder.advanced("epoch 1/1 evaluation"), eval_batches);
    let events = recorder.events();
    assert!(events.contains(&imdb_lora_progress::Event::Start {
        label: "epoch 1/1".into(),
        total: Some(num_batches),
        unit: imdb_lora_progress::Unit::Items,
    }));
    // The running loss is read back every 20 batches and at the epoch's end, not after each
    // batch (each read waits for the device): one message for these 6 batches.
    let loss_messages = events
        .iter()
        .filter(|e| {
            matches!(
                e,
                imdb_lora_progress::Event::Message { label, message }
                    if label == "epoch 1/1" && message.starts_with("loss ")
            )
        })
        .count();
    assert_eq!(loss_messages, 1, "{events:?}");
}

/// A checkpoint's tensors by name.
type Tensors = std::collections::BTreeMap<String, imdb_lora_encoder::OwnedTensor>;

/// A named way to spoil a checkpoint.
type Edit<'a> = (&'a str, &'a dyn Fn(&mut Tensors));

/// Rewrites `path` (a checkpoint) with `edit` applied to its tensors, keeping its metadata.
fn tamper(path: &Path, edit: impl FnOnce(&mut Tensors)) {
    let bytes = std::fs::read(path).unwrap();
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let metadata = header.metadata().clone();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut tensors: std::collections::BTreeMap<_, _> = st
        .tensors()
        .into_iter()
        .map(|(name, t)| {
            let tensor = imdb_lora_encoder::OwnedTensor {
                dtype: t.dtype(),
                shape: t.shape().to_vec(),
                data: t.data().to_vec(),
            };
            (name, tensor)
        })
        .collect();
    edit(&mut tensors);
    imdb_lora_encoder::write_safetensors(path, &tensors, metadata).unwrap();
}

/// Resuming checks the optimizer's moments against the parameters they belong to: each one
/// names a trainable parameter, has its size and finite values, and after the first step no
/// trainable parameter lacks them. Otherwise the checkpoint is refused, naming the key.
#[test]
fn checkpoint_with_moments_that_do_not_fit_the_parameters_is_refused() {
    const KEY: &str = "optimizer.exp_avg.head.classifier.weight";
    let stopped = TrainConfig {
        stop_after_steps: Some(2),
        ..train_config(1)
    };
    let shorten = |t: &mut Tensors| {
        let m = t.get_mut(KEY).unwrap();
        m.shape = vec![m.shape.iter().product::<usize>() - 1];
        m.data.truncate(m.data.len() - 4);
    };
    let rename = |t: &mut Tensors| {
        for p in ["optimizer.exp_avg.", "optimizer.exp_avg_sq."] {
            let m = t.remove(&format!("{p}head.classifier.weight")).unwrap();
            t.insert(format!("{p}head.classifier.weights"), m);
        }
    };
    let drop_both = |t: &mut Tensors| {
        t.remove(KEY).unwrap();
        t.remove("optimizer.exp_avg_sq.head.classifier.weight")
            .unwrap();
    };
    let nan = |t: &mut Tensors| {
        let m = t.get_mut(KEY).unwrap();
        m.data[..4].copy_from_slice(&f32::NAN.to_le_bytes());
    };
    let cases: [Edit; 4] = [
        ("values", &shorten),
        ("matches no trainable parameter", &rename),
        ("no optimizer state", &drop_both),
        ("non-finite", &nan),
    ];
    for (what, edit) in cases {
        let out = tempfile::tempdir().unwrap();
        run(out.path(), &stopped).unwrap();
        tamper(&out.path().join("checkpoints/last.safetensors"), edit);
        let err = run(out.path(), &train_config(1)).unwrap_err();
        let msg = err.to_string();
        assert!(
            matches!(err, TrainError::Checkpoint { .. }),
            "{what}: {msg}"
        );
        assert!(
            msg.contains("classifier.weight") && msg.contains(what),
            "{what}: {msg}"
        );
    }
}

/// Four classes, each marked by its own token amid noise: class `c` has token `5 + c`.
fn toy4(n: usize, offset: usize) -> Vec<Encoded> {
    toy_classes(n, offset, 4, |label| 5 + label)
}

#[test]
fn four_classes_train_with_per_class_metrics_in_schema_2() {
    const NAMES: [&str; 4] = ["World", "Sports", "Business", "Sci/Tech"];
    let names: Vec<String> = NAMES.map(String::from).to_vec();
    // The bare encoder with a fresh four-way head, as a user's N-class run starts.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/tiny_bert/bare");
    let config = imdb_lora_encoder::EncoderConfig::from_file(&dir.join("config.json"))
        .unwrap()
        .with_labels(&NAMES);
    let data = Datasets {
        train: toy4(96, 0),
        test: toy4(48, 1000),
        validation: None,
        pad_id: 0,
        classes: names.clone(),
    };
    let config_train = TrainConfig {
        lr: 1e-2,
        ..train_config(10)
    };
    let out = tempfile::tempdir().unwrap();
    let outcome = {
        let _guard = crate::rng_lock();
        let base = imdb_lora_encoder::load_classifier_with_config::<AB>(
            &dir.join("model.safetensors"),
            &config,
            &Default::default(),
            0,
        )
        .unwrap();
        fine_tune(
            base,
            &spec(&config_train),
            &data,
            out.path(),
            &Default::default(),
            &imdb_lora_progress::Silent,
            &Interrupt::new(),
        )
        .unwrap()
    };
    assert!(outcome.finished);
    let classes = &outcome.classes;
    assert_eq!(classes.names().collect::<Vec<_>>(), names);
    assert_eq!(classes.epochs.len(), 10);
    let last = outcome.metrics.final_epoch().unwrap();
    assert!(
        last.eval.accuracy > outcome.metrics.baseline.accuracy && last.eval.accuracy >= 0.8,
        "accuracy {} after training, {} before",
        last.eval.accuracy,
        outcome.metrics.baseline.accuracy
    );
    // The headline F1 of more than two classes is the macro average.
    let final_classes = classes.final_epoch().unwrap();
    assert_eq!(last.eval.f1, final_classes.macro_f1);
    assert_eq!(
        final_classes.confusion.iter().flatten().sum::<u64>(),
        48,
        "every test example in the matrix"
    );
    let file = imdb_lora_metrics::MetricsFile::read(&out.path().join("metrics.json")).unwrap();
    assert_eq!(file.run.schema_version, imdb_lora_metrics::SCHEMA_VERSION);
    assert_eq!(&file.classes, classes);
}

/// A token no toy example uses but the poisoned one: its embedding row is set to NaN.
const POISON: u32 = 90;

/// `tiny()` whose embedding of [`POISON`] is NaN: any batch holding that token has a NaN
/// loss, every other batch computes exactly what it would with the clean model.
fn poisoned() -> SequenceClassifier<AB> {
    let mut model = tiny();
    let Encoder::Bert(bert) = &mut model.encoder else {
        panic!("tiny() is a BERT")
    };
    let emb = &mut bert.embeddings.word_embeddings;
    let weight = emb.weight.clone();
    let hidden = weight.dims()[1];
    emb.weight = weight.map(|w| {
        let nan = Tensor::<AB, 2>::full([1, hidden], f32::NAN, &Default::default());
        w.slice_assign([POISON as usize..POISON as usize + 1, 0..hidden], nan)
    });
    model
}

/// The optimizer step a checkpoint was written at.
fn checkpoint_step(path: &Path) -> u64 {
    let bytes = std::fs::read(path).unwrap();
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let json = header.metadata().as_ref().unwrap()["train_state"].clone();
    serde_json::from_str::<serde_json::Value>(&json).unwrap()["optimizer_step"]
        .as_u64()
        .unwrap()
}

/// The loss is read back only every few batches and before checkpoints, so a NaN loss is
/// noticed steps after the batch that produced it. The error must still name that batch and
/// step, and the checkpoint due in between must not be written from the model those NaN
/// gradients updated: `last` stays the one before the bad batch, and resuming from it (with a
/// clean model) replays the uninterrupted run exactly.
#[test]
fn non_finite_loss_mid_epoch_names_its_step_and_the_last_checkpoint_resumes() {
    let config = train_config(2); // checkpoints every 2 steps, 6 batches per epoch
    let mut data = data();
    // Poison the first example of epoch 1's batch 3: steps 0-2 are clean, so the checkpoint at
    // step 2 is good; batch 3 (step 3) is bad, and the one at step 4 would hold NaN.
    let batcher = imdb_lora_data::Batcher::new(
        data.train.clone(),
        data.pad_id,
        spec(&config).max_len,
        imdb_lora_data::BatcherConfig::train(config.batch_size, config.seed),
    )
    .unwrap();
    const BAD: usize = 3;
    let victim = batcher.plan(0)[BAD][0];
    // Its first noise token (the class marker sits in the middle).
    data.train[victim].ids[1] = POISON;

    let fine_tune_on = |base: SequenceClassifier<AB>, out: &Path| {
        let _guard = crate::rng_lock();
        fine_tune(
            base,
            &spec(&config),
            &data,
            out,
            &Default::default(),
            &imdb_lora_progress::Silent,
            &Interrupt::new(),
        )
    };
    let clean = tempfile::tempdir().unwrap();
    let expected = fine_tune_on(tiny(), clean.path()).unwrap().metrics;

    let out = tempfile::tempdir().unwrap();
    let err = fine_tune_on(poisoned(), out.path()).unwrap_err();
    match err {
        TrainError::NonFiniteLoss {
            epoch,
            batch,
            step,
            value,
        } => {
            assert_eq!((epoch, batch, step), (1, BAD, BAD as u64), "{err}");
            assert!(value.is_nan());
        }
        other => panic!("expected a non-finite loss, got {other}"),
    }
    let last = out.path().join("checkpoints/last.safetensors");
    assert_eq!(
        checkpoint_step(&last),
        2,
        "the checkpoint before the bad batch"
    );

    let resumed = fine_tune_on(tiny(), out.path()).unwrap();
    assert!(resumed.finished);
    assert_eq!(numbers(&resumed.metrics), numbers(&expected));
}

/// An in-memory log sink for `tracing_subscriber`'s JSON lines.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The JSON log events of one run of `config`.
fn logged_events(config: &TrainConfig) -> Vec<serde_json::Value> {
    let sink = Captured::default();
    let writer = sink.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_writer(move || writer.clone())
        .finish();
    let out = tempfile::tempdir().unwrap();
    tracing::subscriber::with_default(subscriber, || run(out.path(), config).unwrap());
    let bytes = sink.0.lock().unwrap().clone();
    String::from_utf8(bytes)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn step_timing_logs_every_step_and_the_epochs_medians_only_when_asked() {
    let message = |e: &serde_json::Value| e["fields"]["message"].as_str().unwrap_or("").to_owned();
    let config = TrainConfig {
        step_timing: true,
        ..train_config(1)
    };
    let events = logged_events(&config);
    let steps: Vec<&serde_json::Value> = events
        .iter()
        .filter(|e| message(e) == "step_timing")
        .collect();
    assert_eq!(steps.len(), 6, "one per optimizer step");
    for (i, e) in steps.iter().enumerate() {
        assert_eq!(e["level"], "INFO");
        assert_eq!(e["fields"]["step"], i as u64 + 1);
        for field in ["enqueue_ms", "sync_ms"] {
            let ms: f64 = e["fields"][field].as_str().unwrap().parse().unwrap();
            assert!(ms >= 0.0, "{field}: {ms}");
        }
    }
    let summary: Vec<_> = events
        .iter()
        .filter(|e| message(e) == "step_timing_summary")
        .collect();
    assert_eq!(summary.len(), 1);
    assert_eq!(summary[0]["fields"]["steps"], 6);
    assert!(summary[0]["fields"]["median_sync_ms"].is_string());

    let quiet = logged_events(&train_config(1));
    assert!(!quiet.iter().any(|e| message(e).starts_with("step_timing")));
}

/// The BERT encoder of a BERT-family classifier.
fn bert<Bk: Backend>(model: &SequenceClassifier<Bk>) -> &BertModel<Bk> {
    match &model.encoder {
        Encoder::Bert(m) => m,
        _ => panic!("not a BERT-family model"),
    }
}

/// BERT's pooler.
fn pooler<Bk: Backend>(model: &SequenceClassifier<Bk>) -> &BertPooler<Bk> {
    bert(model).pooler.as_ref().expect("BERT has a pooler")
}

/// Evaluation merges the adapters into a copy for speed (one product per projection): the
/// model it was given keeps its base weights bit for bit and its adapters unmerged, and the
/// probabilities are those of the unmerged forward pass.
#[test]
fn evaluation_runs_on_a_merged_copy_and_leaves_the_model_bit_exact() {
    use burn::tensor::{Distribution, Tensor, backend::Backend};
    use imdb_lora_lora::{LoraAdapter, LoraConfig};
    let _guard = crate::rng_lock();
    let device = Default::default();
    Flex::seed(&device, 11);
    let lora = LoraConfig::default();
    let model = load_classifier::<Flex>(&tiny_dir(), &device, 0)
        .unwrap()
        .0
        .map_targets(&lora, |linear| {
            let [d_in, d_out] = linear.dims();
            let a = Tensor::random([d_in, lora.r], Distribution::Normal(0.0, 0.3), &device);
            let b = Tensor::random([lora.r, d_out], Distribution::Normal(0.0, 0.3), &device);
            linear.with_loaded_adapter(LoraAdapter::from_factors(&lora, a, b, d_in, d_out)?)
        })
        .unwrap();
    let snapshot = |m: &SequenceClassifier<Flex>| -> Vec<Vec<f32>> {
        m.projection_paths()
            .iter()
            .flat_map(|(_, p)| {
                let mut ts = vec![p.base_layer.float().unwrap().weight.val()];
                if let Some(a) = &p.lora {
                    ts.extend([a.lora_a.val(), a.lora_b.val()]);
                }
                ts
            })
            .map(|t| t.into_data().to_vec::<f32>().unwrap())
            .collect()
    };
    let before = snapshot(&model);
    let examples = toy(12, 7);
    let batcher = imdb_lora_data::Batcher::new(
        examples.clone(),
        0,
        16,
        imdb_lora_data::BatcherConfig::eval(4),
    )
    .unwrap();
    let names = ["neg".to_owned(), "pos".to_owned()];
    let e = imdb_lora_train::evaluate_texts(
        &model,
        batcher.epoch(0),
        &device,
        &imdb_lora_progress::Silent,
        "t",
        &names,
    )
    .unwrap();
    assert_eq!(
        snapshot(&model),
        before,
        "the evaluated model's weights changed"
    );
    assert!(model.projection_paths().iter().all(|(_, p)| !p.is_merged()));
    // The unmerged forward pass, batch by batch, gives the same probabilities.
    let unmerged: Vec<f64> = batcher
        .epoch(0)
        .flat_map(|batch| {
            let t = imdb_lora_train::BatchTensors::<Flex>::new(batch, &device);
            let logits = model
                .forward(t.input_ids, t.attention_mask, Some(t.token_type_ids))
                .unwrap();
            burn::tensor::activation::softmax(logits, 1)
                .into_data()
                .to_vec::<f32>()
                .unwrap()
        })
        .map(f64::from)
        .collect();
    let merged: Vec<f64> = e
        .texts
        .iter()
        .flat_map(|t| t.probabilities.clone())
        .collect();
    assert_eq!(merged.len(), unmerged.len());
    for (m, u) in merged.iter().zip(&unmerged) {
        assert!((m - u).abs() < 1e-5, "{m} vs {u}");
    }
}

//! Runs with a validation split: epochs evaluated on it, never on the test set between the
//! baseline and the saved model; the best epoch chosen on it is the model returned (and its
//! checkpoint); early stopping ends the run; choosing without one is refused.

use imdb_lora_metrics::MetricsFile;
use imdb_lora_progress::{Event, Recorder};
use imdb_lora_train::{BestMetric, Datasets, Interrupt, TrainConfig, evaluate, fine_tune};

use crate::train::{data, spec, tiny, toy, train_config};

/// The toy task with 16 validation examples of their own.
fn with_validation() -> Datasets {
    Datasets {
        validation: Some(toy(16, 500)),
        ..data()
    }
}

fn run(
    out: &std::path::Path,
    config: &TrainConfig,
    data: &Datasets,
    progress: &dyn imdb_lora_progress::Progress,
) -> Result<imdb_lora_train::RunOutcome<super::train::AB>, imdb_lora_train::TrainError> {
    let _guard = crate::rng_lock();
    fine_tune(
        tiny(),
        &spec(config),
        data,
        out,
        &Default::default(),
        progress,
        &Interrupt::new(),
    )
}

/// Evaluates `model` on `examples` as the trainer does.
fn eval_on(
    model: &imdb_lora_encoder::SequenceClassifier<burn::backend::Flex>,
    examples: &[imdb_lora_data::Encoded],
) -> imdb_lora_metrics::EvalMetrics {
    let batcher = imdb_lora_data::Batcher::new(
        examples.to_vec(),
        0,
        16,
        imdb_lora_data::BatcherConfig::eval(16),
    )
    .unwrap();
    let names = ["neg".to_owned(), "pos".to_owned()];
    let silent = imdb_lora_progress::Silent;
    evaluate(
        model,
        batcher.epoch(0),
        &Default::default(),
        &silent,
        "t",
        &names,
    )
    .unwrap()
    .0
}

#[test]
fn epochs_are_evaluated_on_validation_and_the_test_set_only_before_and_at_the_end() {
    let out = tempfile::tempdir().unwrap();
    let recorder = Recorder::new();
    let mut config = train_config(3);
    config.load_best = true;
    config.metric_for_best = BestMetric::Accuracy;
    let d = with_validation();
    let outcome = run(out.path(), &config, &d, &recorder).unwrap();
    let evaluations: Vec<String> = recorder
        .events()
        .into_iter()
        .filter_map(|e| match e {
            Event::Start { label, .. } => Some(label),
            _ => None,
        })
        .filter(|l| l.contains("evaluation") || l.contains("validation"))
        .collect();
    assert_eq!(
        evaluations,
        [
            "baseline evaluation",
            "epoch 1/3 validation",
            "epoch 2/3 validation",
            "epoch 3/3 validation",
            "test evaluation",
        ]
    );
    let m = &outcome.metrics;
    assert_eq!(m.config.val_n, Some(16));
    assert!(m.epochs.iter().all(|e| e.eval.samples == 16));
    let test = m.test.expect("the saved model's test evaluation");
    assert_eq!((m.baseline.samples, test.samples), (24, 24));
    let sel = m.selection.as_ref().expect("a selection");
    assert_eq!((sel.metric.as_str(), sel.load_best), ("accuracy", true));
    // The best epoch: the earliest with the highest validation accuracy.
    let best = m
        .epochs
        .iter()
        .map(|e| e.eval.accuracy)
        .fold(f64::MIN, f64::max);
    let first_best = m
        .epochs
        .iter()
        .find(|e| e.eval.accuracy == best)
        .unwrap()
        .epoch;
    assert_eq!(sel.best_epoch, first_best);

    // The model returned is that epoch's: on the validation split it scores what that epoch
    // scored, and on the test set what the final test evaluation recorded.
    let model = outcome.model;
    let on_val = eval_on(&model, d.validation.as_deref().unwrap());
    let at_best = &m.epochs[sel.best_epoch - 1].eval;
    assert_eq!(
        (on_val.accuracy, on_val.loss),
        (at_best.accuracy, at_best.loss),
        "the saved model is epoch {}'s",
        sel.best_epoch
    );
    let on_test = eval_on(&model, &d.test);
    assert_eq!((on_test.accuracy, on_test.loss), (test.accuracy, test.loss));

    // metrics.json says so, and reads back.
    let file = MetricsFile::read(&out.path().join("metrics.json")).unwrap();
    assert_eq!(file.run.selection.as_ref(), Some(sel));
    assert_eq!(file.saved().unwrap().epoch, sel.best_epoch);

    // Finished: running it again changes nothing and evaluates nothing more.
    let again = Recorder::new();
    let outcome = run(out.path(), &config, &d, &again).unwrap();
    assert_eq!(&outcome.metrics, m);
    assert!(
        again
            .events()
            .iter()
            .all(|e| !matches!(e, Event::Start { label, .. } if label.contains("evaluation")))
    );
}

#[test]
fn the_test_set_each_epoch_is_a_record_only_when_asked() {
    let out = tempfile::tempdir().unwrap();
    let recorder = Recorder::new();
    let mut config = train_config(2);
    config.test_each_epoch = true;
    config.load_best = true;
    let d = with_validation();
    let outcome = run(out.path(), &config, &d, &recorder).unwrap();
    let labels: Vec<String> = recorder
        .events()
        .into_iter()
        .filter_map(|e| match e {
            Event::Start { label, .. } if label.contains("evaluation") => Some(label),
            _ => None,
        })
        .collect();
    assert_eq!(
        labels,
        [
            "baseline evaluation",
            "epoch 1/2 test evaluation",
            "epoch 2/2 test evaluation",
            "test evaluation",
        ]
    );
    let m = &outcome.metrics;
    assert!(
        m.epochs
            .iter()
            .all(|e| e.test.is_some_and(|t| t.samples == 24))
    );
    // The choice is still the validation split's: the same as without the record.
    let plain = tempfile::tempdir().unwrap();
    config.test_each_epoch = false;
    let without = run(plain.path(), &config, &d, &imdb_lora_progress::Silent).unwrap();
    assert_eq!(m.selection, without.metrics.selection);
    assert!(without.metrics.epochs.iter().all(|e| e.test.is_none()));
    MetricsFile::read(&out.path().join("metrics.json")).unwrap();
}

#[test]
fn without_load_best_the_last_epoch_is_saved_and_tested() {
    let out = tempfile::tempdir().unwrap();
    let d = with_validation();
    let outcome = run(
        out.path(),
        &train_config(2),
        &d,
        &imdb_lora_progress::Silent,
    )
    .unwrap();
    let m = &outcome.metrics;
    assert!(!m.selection.as_ref().unwrap().load_best);
    let last = &m.epochs[1].eval;
    let on_val = eval_on(&outcome.model, d.validation.as_deref().unwrap());
    assert_eq!((on_val.accuracy, on_val.loss), (last.accuracy, last.loss));
}

#[test]
fn early_stopping_ends_the_run_and_a_resume_does_not_train_on() {
    let out = tempfile::tempdir().unwrap();
    // An unreachable improvement: the learning rate is so small that nothing changes, so the
    // validation loss never improves on epoch 1 (equal is no improvement).
    let mut config = train_config(5);
    config.lr = 1e-12;
    config.early_stopping_patience = Some(2);
    let d = with_validation();
    let outcome = run(out.path(), &config, &d, &imdb_lora_progress::Silent).unwrap();
    let m = &outcome.metrics;
    assert!(outcome.finished);
    let sel = m.selection.as_ref().unwrap();
    assert_eq!(
        m.epochs.len(),
        3,
        "stopped after epoch 1 + 2 without improvement"
    );
    assert!(sel.stopped_early && sel.patience == Some(2));
    assert!(m.test.is_some());
    let outcome = run(out.path(), &config, &d, &imdb_lora_progress::Silent).unwrap();
    assert_eq!(outcome.metrics.epochs.len(), 3);
}

#[test]
fn choosing_an_epoch_without_a_validation_split_is_refused_with_the_reason() {
    for edit in [
        (|c: &mut TrainConfig| c.load_best = true) as fn(&mut TrainConfig),
        |c| c.early_stopping_patience = Some(1),
    ] {
        let out = tempfile::tempdir().unwrap();
        let mut config = train_config(1);
        edit(&mut config);
        let e = run(out.path(), &config, &data(), &imdb_lora_progress::Silent)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("validation split") && e.contains("optimistic"),
            "{e}"
        );
        assert!(
            !out.path().join("checkpoints").exists(),
            "nothing was written"
        );
    }
}

//! Sample `metrics.json` contents ([`RunMetrics`] of two-class runs, made whole files by
//! [`binary_file`], and [`MetricsFile`]s over four classes) for the tests of the crates that write, read or render it: the metrics schema
//! and the report.

use imdb_lora_metrics::{
    ConfusionMatrix, EpochRecord, EvalMetrics, MetricsFile, RunConfig, RunMetrics, SCHEMA_VERSION,
};

/// Trainable parameters of bert-base-uncased with r = 8 adapters on query and value plus the
/// classifier head.
pub const TRAINABLE_PARAMS: u64 = 296_450;
/// All parameters of that model.
pub const TOTAL_PARAMS: u64 = 109_779_460;

/// The recipe's configuration (bert-base-uncased on 2,000 training and 1,000 test IMDb
/// reviews, on CUDA) for a run of `epochs` epochs.
pub fn run_config(epochs: usize) -> RunConfig {
    RunConfig {
        model: "bert-base-uncased".into(),
        data: "stanfordnlp/imdb".into(),
        train_n: 2000,
        test_n: 1000,
        max_len: 256,
        epochs,
        batch_size: 16,
        lr: 2e-4,
        weight_decay: 0.01,
        warmup_ratio: 0.06,
        lr_schedule: "linear".into(),
        max_grad_norm: Some(1.0),
        seed: 42,
        lora_r: 8,
        lora_alpha: 16.0,
        lora_dropout: 0.1,
        target_modules: vec!["query".into(), "value".into()],
        backend: "cuda".into(),
        model_sha256: None,
        precision: None,
        val_n: None,
        class_weights: None,
        long_text: None,
    }
}

/// A complete run of `epochs` epochs whose test accuracy rises with every epoch (each
/// evaluation over 1,000 reviews taking 2 s; the baseline calls most reviews positive).
pub fn rising_run(epochs: usize) -> RunMetrics {
    let eval = |tp, fp, tn, fn_, loss| {
        EvalMetrics::from_confusion(ConfusionMatrix { tp, fp, tn, fn_ }, loss, 2.0)
    };
    let records = (1..=epochs)
        .map(|epoch| EpochRecord {
            epoch,
            train_loss: 0.6 / epoch as f64,
            train_seconds: 100.0,
            train_samples_per_s: 20.0,
            eval: eval(430 + epoch as u64, 60, 440, 70 - epoch as u64, 0.3),
            test: None,
        })
        .collect();
    RunMetrics {
        schema_version: SCHEMA_VERSION,
        config: run_config(epochs),
        trainable_params: TRAINABLE_PARAMS,
        total_params: TOTAL_PARAMS,
        baseline: eval(400, 380, 120, 100, 0.69),
        epochs: records,
        train_samples_per_s: 20.0,
        eval_samples_per_s: 500.0,
        total_seconds: 320.5,
        selection: None,
        test: None,
    }
}

/// A run on a balanced test set (500 positive, 500 negative reviews, each evaluation taking
/// 4 s) where `per_epoch[i]` = (tp, tn) after epoch i + 1. The baseline is an untrained head
/// that calls almost everything positive. An empty `per_epoch` is a run of one epoch that
/// has not completed it.
pub fn balanced_run(per_epoch: &[(u64, u64)]) -> RunMetrics {
    /// A confusion matrix over 500 positive and 500 negative reviews.
    fn eval(tp: u64, tn: u64, loss: f64) -> EvalMetrics {
        let c = ConfusionMatrix {
            tp,
            fp: 500 - tn,
            tn,
            fn_: 500 - tp,
        };
        EvalMetrics::from_confusion(c, loss, 4.0)
    }
    let n = per_epoch.len();
    RunMetrics {
        schema_version: SCHEMA_VERSION,
        config: run_config(n.max(1)),
        trainable_params: TRAINABLE_PARAMS,
        total_params: TOTAL_PARAMS,
        baseline: eval(480, 30, 0.7012),
        epochs: per_epoch
            .iter()
            .enumerate()
            .map(|(i, &(tp, tn))| EpochRecord {
                epoch: i + 1,
                train_loss: 0.55 / (i + 1) as f64,
                train_seconds: 95.5,
                train_samples_per_s: 20.9,
                eval: eval(tp, tn, 0.40 - 0.05 * i as f64),
                test: None,
            })
            .collect(),
        train_samples_per_s: 20.9,
        eval_samples_per_s: 250.0,
        total_seconds: 95.5 * n as f64 + 4.0 * (n as f64 + 1.0) + 12.0,
        selection: None,
        test: None,
    }
}

/// AG News's four topics, in class-index order.
pub const AG_NEWS_CLASSES: [&str; 4] = ["World", "Sports", "Business", "Sci/Tech"];

/// Test items per class in [`four_class_run`] (1,600 in all).
pub const FOUR_CLASS_SUPPORT: u64 = 400;

/// The confusion matrix of a 4-class evaluation over [`FOUR_CLASS_SUPPORT`] items per class
/// where class `c` gets `correct[c]` right and its errors are spread over the other classes
/// (the remainder of an uneven split going to the first of them).
pub fn four_class_matrix(correct: [u64; 4]) -> Vec<Vec<u64>> {
    (0..4)
        .map(|c| {
            let wrong = FOUR_CLASS_SUPPORT - correct[c];
            let (share, rest) = (wrong / 3, wrong % 3);
            let mut row = vec![share; 4];
            row[c] = correct[c];
            row[(c + 1) % 4] += rest;
            row
        })
        .collect()
}

/// A run over AG News's four topics ([`AG_NEWS_CLASSES`]; all-MiniLM-L6-v2 on
/// 6,000 training and 1,600 test items) of `epochs` completed epochs, each better than the
/// last (until every class has 396 of 400 right); Sci/Tech stays the hardest class. The baseline is an untrained head that calls most
/// items World.
pub fn four_class_run(epochs: usize) -> MetricsFile {
    use imdb_lora_metrics::{ClassConfusion, ClassMetrics, RunClasses};
    let eval = |rows: Vec<Vec<u64>>, loss: f64| {
        // The rows are square by construction.
        let matrix = ClassConfusion::from_rows(&rows).unwrap_or_else(|e| panic!("{e}"));
        let classes = ClassMetrics::from_confusion(&AG_NEWS_CLASSES, &matrix)
            .unwrap_or_else(|e| panic!("{e}"));
        (
            EvalMetrics::from_class_confusion(&matrix, loss, 3.2),
            classes,
        )
    };
    let baseline_rows = vec![
        vec![250, 50, 60, 40],
        vec![240, 70, 50, 40],
        vec![260, 40, 60, 40],
        vec![230, 60, 50, 60],
    ];
    let (baseline, baseline_classes) = eval(baseline_rows, 1.3863);
    let (records, class_epochs): (Vec<_>, Vec<_>) = (1..=epochs)
        .map(|epoch| {
            let e = epoch as u64;
            let (eval, classes) = eval(
                four_class_matrix(
                    [340 + 12 * e, 372 + 6 * e, 318 + 14 * e, 300 + 16 * e]
                        .map(|c| c.min(FOUR_CLASS_SUPPORT - 4)),
                ),
                0.55 / epoch as f64,
            );
            let record = EpochRecord {
                epoch,
                train_loss: 0.7 / epoch as f64,
                train_seconds: 61.5,
                train_samples_per_s: 97.6,
                eval,
                test: None,
            };
            (record, classes)
        })
        .unzip();
    let mut config = run_config(epochs.max(1));
    config.model = "sentence-transformers/all-MiniLM-L6-v2".into();
    config.data = "../shared/data/ag_news/test.csv".into();
    config.train_n = 6000;
    config.test_n = (4 * FOUR_CLASS_SUPPORT) as usize;
    config.max_len = 128;
    config.backend = "flex".into();
    let run = RunMetrics {
        schema_version: SCHEMA_VERSION,
        config,
        trainable_params: 75_268,
        total_params: 22_788_484,
        baseline,
        epochs: records,
        train_samples_per_s: 97.6,
        eval_samples_per_s: 500.0,
        total_seconds: 61.5 * epochs as f64 + 3.2 * (epochs as f64 + 1.0),
        selection: None,
        test: None,
    };
    MetricsFile::new(
        run,
        RunClasses {
            baseline: baseline_classes,
            epochs: class_epochs,
            test: None,
        },
    )
}

/// A two-class run ([`rising_run`], [`balanced_run`]) as a whole `metrics.json`: its
/// per-class metrics derived from its binary matrices, the classes named as IMDb's (neg, pos).
pub fn binary_file(run: RunMetrics) -> MetricsFile {
    let classes = imdb_lora_metrics::RunClasses::of_binary_run(&run, ["neg", "pos"])
        .unwrap_or_else(|e| panic!("two names for 2×2 matrices: {e}"));
    MetricsFile::new(run, classes)
}

//! The experiment loop: baseline evaluation, LoRA fine-tuning with per-epoch evaluation,
//! checkpoints and resume, and `metrics.json`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::module::AutodiffModule;
use burn::nn::loss::CrossEntropyLoss;
use burn::tensor::backend::{AutodiffBackend, Backend};
use imdb_lora_data::{Batcher, BatcherConfig, Encoded};
use imdb_lora_encoder::{DropoutKey, KernelBackend, ParamCount, SequenceClassifier};
use imdb_lora_lora::LoraConfig;
use imdb_lora_metrics::{
    ClassMetrics, EpochRecord, EvalMetrics, MetricsFile, RunClasses, RunConfig, RunMetrics,
    SCHEMA_VERSION,
};
use imdb_lora_progress::{Progress, Unit};

use crate::checkpoint::{self, CheckpointDir, TrainState};
use crate::eval::{BatchTensors, evaluate};
use crate::loss::loss_function;
use crate::optim::{
    AdamW, AdamWConfig, Grads, LinearSchedule, accumulate, clip_scale, collect_grads,
};
use crate::readback::{LossAt, PendingLosses, StepTiming};
use crate::selection::patience_spent;
use crate::{BestMetric, Interrupt, RunSpec, TrainConfig, TrainError};

/// Tokenised training, validation and test sets.
#[derive(Debug, Clone)]
pub struct Datasets {
    /// Training examples.
    pub train: Vec<Encoded>,
    /// Test examples.
    pub test: Vec<Encoded>,
    /// Validation examples, when the run has a validation split: then every epoch is
    /// evaluated on them, the best epoch is chosen on them, and the test set is evaluated only
    /// for the baseline and the saved model.
    pub validation: Option<Vec<Encoded>>,
    /// The tokenizer's `[PAD]` id.
    pub pad_id: u32,
    /// The class names, one per model output, in class order (the data decided them: at
    /// least two). Every evaluation reports per-class metrics under these names.
    pub classes: Vec<String>,
}

impl Datasets {
    /// Training examples per class, in class order: the sequences the loss sees (a long
    /// text split into windows counts once per window), what `--class-weights auto` inverts.
    pub fn train_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.classes.len()];
        for e in &self.train {
            if let Some(c) = counts.get_mut(e.label as usize) {
                *c += 1;
            }
        }
        counts
    }
}

/// What a finished (or resumably stopped) run returns.
#[derive(Debug)]
pub struct RunOutcome<B: AutodiffBackend> {
    /// The trained model, on the inference backend.
    pub model: SequenceClassifier<B::InnerBackend>,
    /// Everything measured (also written to `metrics.json`).
    pub metrics: RunMetrics,
    /// The per-class metrics of every evaluation.
    pub classes: RunClasses,
    /// False when `stop_after_steps` or an [`Interrupt`] ended the run early; run again to
    /// resume.
    pub finished: bool,
    /// Whether an [`Interrupt`] ended it early.
    pub interrupted: bool,
    /// Optimizer steps taken so far (of this run, across resumes).
    pub step: u64,
    /// Optimizer steps of the whole run.
    pub total_steps: u64,
}

/// File name of the metrics written into the output directory.
pub const METRICS_FILE: &str = "metrics.json";

/// The training loss is read back to the host every this many batches (and before every
/// checkpoint, and at the epoch's end): the progress message's running loss and the
/// non-finite check. Each read waits for the device to finish the queued steps; on a GPU at
/// ≈ 40 steps/s (MiniLM, batch 16) that is about two waits a second, each costing about a
/// launch latency while the host runs ahead, so under 1 % of a step; on the CPU (≈ 1–5
/// steps/s) the loss message trails the batch counter by a few seconds, nothing more.
const LOSS_READ_EVERY: usize = 20;

/// A seed per micro-batch, so dropout masks depend only on (seed, position) and a resumed
/// run replays exactly the masks an uninterrupted one would have drawn: the forward pass's
/// [`DropoutKey`] (or, on a backend whose dropout draws from its RNG, the RNG's seed).
fn step_seed(seed: u64, micro_step: u64) -> u64 {
    // SplitMix64 finaliser: decorrelates neighbouring steps.
    let mut z = seed ^ micro_step.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Runs the experiment: baseline, `epochs` of fine-tuning with evaluation after each, writing
/// checkpoints into `out/checkpoints/` and `out/metrics.json`.
///
/// `base` is the frozen backbone with its classifier head (fresh or from the checkpoint);
/// adapters are added here from `run.lora`. If `out` holds a checkpoint of the same run
/// ([`RunSpec`]'s fingerprint), the run resumes from it; one of another run is an error.
/// `stop_after_steps` in `run.train`, or `interrupt` once requested (checked after every
/// optimizer step and before every epoch), ends this invocation early, resumably.
///
/// Each epoch is reported to `progress` as a task "epoch i/n" counting its batches, with the
/// running training loss as its message; each evaluation pass as a task counting its batches
/// ("baseline evaluation", "epoch i/n evaluation").
pub fn fine_tune<AB: AutodiffBackend + KernelBackend>(
    base: SequenceClassifier<AB>,
    run: &RunSpec,
    data: &Datasets,
    out: &Path,
    device: &AB::Device,
    progress: &dyn Progress,
    interrupt: &Interrupt,
) -> Result<RunOutcome<AB>, TrainError>
where
    AB::InnerBackend: KernelBackend,
{
    let (config, lora) = (&run.train, &run.lora);
    config.validate()?;
    // DEBUG: at INFO the output directory would repeat on every line of the run.
    let _span = tracing::debug_span!("fine_tune", out = %out.display()).entered();
    std::fs::create_dir_all(out).map_err(|e| TrainError::Checkpoint {
        path: out.to_path_buf(),
        reason: format!("cannot create output directory: {e}"),
    })?;
    if data.classes.len() != base.num_labels() {
        return Err(TrainError::Config(format!(
            "{} class names given for a head of {} outputs; give one name per output",
            data.classes.len(),
            base.num_labels()
        )));
    }
    if data.validation.is_none() && (config.early_stopping_patience.is_some() || config.load_best) {
        return Err(TrainError::Config(
            "early stopping and choosing the best epoch need a validation split: chosen on the \
             test set, the model's test score would be optimistic (the test set would have \
             taken part in training decisions); give a validation split (--val-fraction F or \
             --val-file FILE)"
                .into(),
        ));
    }
    let record = run.record(data)?;
    let trainer = Trainer::new(data, run, &record, out, device, progress, interrupt)?;
    let fingerprint = run.fingerprint(data)?;
    let adam = AdamW::new(AdamWConfig {
        weight_decay: config.weight_decay,
        ..AdamWConfig::default()
    });
    let (mut model, mut ls) = if trainer.ckpt.last().exists() {
        trainer.resume(&base, adam, &fingerprint)?
    } else {
        trainer.start(base, lora, adam, fingerprint)?
    };
    let params = ParamCount::of(&model);
    // `stop_after_steps = 0` is "baseline only": evaluate, checkpoint, stop.
    let baseline_only = config.stop_after_steps == Some(0);
    let mut finished = !baseline_only || ls.state.epoch >= config.epochs;

    while !baseline_only && ls.state.epoch < config.epochs && !ls.state.stopped_early {
        if interrupt.is_requested() {
            finished = false;
            break;
        }
        let (trained, end) = trainer.train_epoch(model, &mut ls)?;
        model = trained;
        if end == EpochEnd::Stopped {
            finished = false;
            break;
        }
        trainer.end_epoch(&model, &mut ls, params)?;
        if trainer.stop_reached(&ls) && ls.state.epoch < config.epochs && !ls.state.stopped_early {
            finished = false;
            break;
        }
    }
    // A validation split chose the model: the saved one (the best epoch's with `load_best`)
    // is evaluated on the test set once, recorded in the last checkpoint.
    let has_epochs = !ls.state.history.is_empty();
    if finished && !baseline_only && has_epochs && trainer.validation.is_some() {
        let chosen = match config.load_best {
            true => trainer.best_model(&model)?,
            false => model.clone(),
        };
        if ls.state.final_test.is_none() {
            let (test, classes) = trainer.evaluate(&chosen, &trainer.test, "test evaluation")?;
            tracing::info!(
                accuracy = %format_args!("{:.4}", test.accuracy),
                f1 = %format_args!("{:.4}", test.f1),
                loss = %format_args!("{:.4}", test.loss),
                "saved model evaluated on the test set"
            );
            ls.state.final_test = Some(test);
            ls.state.classes.test = Some(classes);
            checkpoint::save(&trainer.ckpt.last(), &model, &ls.optimizer, &ls.state)?;
        }
        model = chosen;
    }
    let metrics = build_metrics(&record, config, params, &ls.state);
    // Rewriting identical metrics would only make later steps (plots) look stale.
    if MetricsFile::read(&trainer.metrics_path).ok().as_ref() != Some(&metrics) {
        metrics.write_atomic(&trainer.metrics_path)?;
    }
    Ok(RunOutcome {
        model: model.valid(),
        metrics: metrics.run,
        classes: metrics.classes,
        finished,
        interrupted: !finished && interrupt.is_requested(),
        step: ls.state.optimizer_step,
        total_steps: config.steps_per_epoch(trainer.num_batches) * config.epochs as u64,
    })
}

/// "epoch 3/5" for the 0-based `epoch` of `epochs`: the progress task's label.
fn epoch_label(epoch: usize, epochs: usize) -> String {
    format!("epoch {}/{epochs}", epoch + 1)
}

/// Mean per-sample training loss of the epoch so far.
fn epoch_loss(state: &TrainState) -> f64 {
    state.epoch_loss_sum / state.epoch_samples.max(1) as f64
}

/// How an epoch's training pass ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EpochEnd {
    /// Every batch was trained on: evaluate and close the epoch.
    Completed,
    /// `stop_after_steps` was reached mid-epoch; a checkpoint holds the position.
    Stopped,
}

/// What the loop changes besides the model: the optimizer, the run's position and history
/// (all checkpointed) and the optimizer steps this invocation took (not checkpointed).
struct LoopState<B: Backend> {
    optimizer: AdamW<B>,
    state: TrainState,
    steps_this_run: u64,
}

impl<B: Backend> LoopState<B> {
    fn new(optimizer: AdamW<B>, state: TrainState) -> Self {
        Self {
            optimizer,
            state,
            steps_this_run: 0,
        }
    }
}

/// The model and loop state the epochs start from, fresh or resumed.
type Begin<AB> = (
    SequenceClassifier<AB>,
    LoopState<<AB as AutodiffBackend>::InnerBackend>,
);

/// What stays fixed while the loop runs: inputs, batchers, schedule and where files go.
///
/// The model is not kept here but passed from step to step by value, as `AdamW::step` takes
/// it and returns the updated one.
struct Trainer<'a, AB: AutodiffBackend> {
    config: &'a TrainConfig,
    run: &'a RunConfig,
    device: &'a AB::Device,
    progress: &'a dyn Progress,
    interrupt: &'a Interrupt,
    train: Batcher,
    test: Batcher,
    /// The validation split's batches, when the run has one.
    validation: Option<Batcher>,
    num_batches: usize,
    schedule: LinearSchedule,
    loss_fn: CrossEntropyLoss<AB>,
    ckpt: CheckpointDir,
    metrics_path: PathBuf,
    classes: Vec<String>,
}

impl<'a, AB> Trainer<'a, AB>
where
    AB: AutodiffBackend + KernelBackend,
    AB::InnerBackend: KernelBackend,
{
    /// Batchers and learning-rate schedule of `spec` on `data` writing into `out`; `run` is
    /// what `metrics.json` records of it.
    fn new(
        data: &Datasets,
        spec: &'a RunSpec,
        run: &'a RunConfig,
        out: &Path,
        device: &'a AB::Device,
        progress: &'a dyn Progress,
        interrupt: &'a Interrupt,
    ) -> Result<Self, TrainError> {
        let config = &spec.train;
        let mut train_cfg = BatcherConfig::train(config.batch_size, config.seed)
            .with_pad_multiple(config.pad_multiple);
        if let Some(window) = config.bucket_window {
            train_cfg = train_cfg.with_bucketing(window);
        }
        let train = Batcher::new(data.train.clone(), data.pad_id, spec.max_len, train_cfg)?;
        let eval_batcher = |examples: &Vec<Encoded>| {
            Batcher::new(
                examples.clone(),
                data.pad_id,
                spec.max_len,
                BatcherConfig::eval(config.eval_batch_size).with_pad_multiple(config.pad_multiple),
            )
        };
        let test = eval_batcher(&data.test)?;
        let validation = data.validation.as_ref().map(eval_batcher).transpose()?;
        let num_batches = train.num_batches();
        let schedule = LinearSchedule::new(
            config.steps_per_epoch(num_batches) * config.epochs as u64,
            config.warmup_ratio,
        )
        .with_kind(config.lr_schedule);
        Ok(Self {
            config,
            run,
            device,
            progress,
            interrupt,
            train,
            test,
            validation,
            num_batches,
            schedule,
            loss_fn: loss_function(run.class_weights.as_deref(), device),
            ckpt: CheckpointDir::new(out),
            metrics_path: out.join(METRICS_FILE),
            classes: data.classes.clone(),
        })
    }

    /// Restores model, optimizer and position from the last checkpoint onto `base`, refusing
    /// a checkpoint whose fingerprint is not this run's.
    fn resume(
        &self,
        base: &SequenceClassifier<AB>,
        adam: AdamW<AB::InnerBackend>,
        fingerprint: &str,
    ) -> Result<Begin<AB>, TrainError> {
        let restored = checkpoint::load(&self.ckpt.last(), base, adam, self.device)?;
        let mut restored = restored;
        if restored.state.fingerprint != fingerprint {
            let changed =
                crate::run::fingerprint_differences(&restored.state.fingerprint, fingerprint);
            let only_epochs = changed.len() == 1 && changed[0].starts_with("train.epochs ");
            if only_epochs && self.config.more_epochs && restored.state.epoch <= self.config.epochs
            {
                tracing::info!(
                    "continuing the run ({}) to {} epochs",
                    changed[0],
                    self.config.epochs
                );
                restored.state.fingerprint = fingerprint.to_owned();
            } else {
                let what = match changed.is_empty() {
                    true => "another configuration or other base weights".to_owned(),
                    false => format!("other settings ({})", changed.join("; ")),
                };
                let hint = match only_epochs {
                    true => "; to train it for more epochs: train --resume-from DIR --epochs N",
                    false => "",
                };
                return Err(TrainError::Checkpoint {
                    path: self.ckpt.last(),
                    reason: format!(
                        "belongs to a run with {what}; use another output directory, or \
                         delete this one to start over{hint}"
                    ),
                });
            }
        }
        if restored.state.epoch >= self.config.epochs {
            tracing::info!(
                epochs = self.config.epochs,
                "run already complete in its checkpoint"
            );
        } else {
            tracing::info!(
                epoch = restored.state.epoch + 1,
                batch = restored.state.batches_done,
                step = restored.state.optimizer_step,
                "resuming from checkpoint"
            );
        }
        Ok((
            restored.model,
            LoopState::new(restored.optimizer, restored.state),
        ))
    }

    /// A fresh run: adds the adapters to `base` (their initialisation drawn from the seeded
    /// backend RNG), evaluates the baseline and writes the first checkpoint.
    fn start(
        &self,
        base: SequenceClassifier<AB>,
        lora: &LoraConfig,
        adam: AdamW<AB::InnerBackend>,
        fingerprint: String,
    ) -> Result<Begin<AB>, TrainError> {
        AB::seed(self.device, self.config.seed);
        let model = base.with_lora(lora)?;
        tracing::info!("{}", ParamCount::of(&model));
        let (baseline, baseline_classes) =
            self.evaluate(&model, &self.test, "baseline evaluation")?;
        tracing::info!(
            accuracy = %format_args!("{:.4}", baseline.accuracy),
            f1 = %format_args!("{:.4}", baseline.f1),
            loss = %format_args!("{:.4}", baseline.loss),
            "baseline evaluated"
        );
        let state = TrainState {
            fingerprint,
            epoch: 0,
            batches_done: 0,
            optimizer_step: 0,
            epoch_loss_sum: 0.0,
            epoch_samples: 0,
            epoch_seconds: 0.0,
            baseline,
            history: Vec::new(),
            lora: lora.clone(),
            classes: RunClasses {
                baseline: baseline_classes,
                epochs: Vec::new(),
                test: None,
            },
            stopped_early: false,
            final_test: None,
        };
        checkpoint::save(&self.ckpt.last(), &model, &adam, &state)?;
        Ok((model, LoopState::new(adam, state)))
    }

    /// Trains on the current epoch's remaining batches (all of them unless resuming
    /// mid-epoch), stepping the optimizer every `grad_accum_steps` batches and at the last,
    /// checkpointing where `checkpoint_every` or `stop_after_steps` asks.
    fn train_epoch(
        &self,
        mut model: SequenceClassifier<AB>,
        ls: &mut LoopState<AB::InnerBackend>,
    ) -> Result<(SequenceClassifier<AB>, EpochEnd), TrainError> {
        let config = self.config;
        let epoch = ls.state.epoch;
        let task = self.progress.start(
            &epoch_label(epoch, config.epochs),
            Some(self.num_batches as u64),
            Unit::Items,
        );
        if ls.state.batches_done > 0 {
            task.advance(ls.state.batches_done as u64);
        }
        let mut grads: Grads<AB::InnerBackend> = Grads::new();
        let mut micro = 0usize;
        let mut losses = PendingLosses::default();
        let mut timing = StepTiming::new(config.step_timing);
        let mut started = Instant::now();
        // Batches are built lazily, so an epoch holds one padded batch at a time (on resume,
        // the batches already done are collated and dropped: cheap next to one step).
        for (index, batch) in self
            .train
            .epoch(epoch as u64)
            .enumerate()
            .skip(ls.state.batches_done)
        {
            timing.begin();
            let seed = step_seed(config.seed, (epoch * self.num_batches + index) as u64);
            // Keyed masks need a backend whose every dropout takes the key; bf16 activations
            // take Burn's compositions (RNG masks) even there.
            if !AB::KEYED_DROPOUT || model.precision() != imdb_lora_encoder::Precision::F32 {
                // Replayable masks the old way; this drains a fusion stream.
                AB::seed(self.device, seed);
            }
            let size = batch.batch_size;
            let t = BatchTensors::<AB>::new(batch, self.device);
            let logits = imdb_lora_encoder::with_dropout_key(DropoutKey(seed), || {
                model.forward(t.input_ids, t.attention_mask, Some(t.token_type_ids))
            })?;
            let loss = self.loss_fn.forward(logits, t.labels);
            // Kept on the device: read (and checked) at the next read point, not here.
            losses.push(
                loss.clone().inner(),
                LossAt {
                    batch: index,
                    step: ls.optimizer.step,
                    size,
                },
            );
            accumulate(&mut grads, collect_grads(&model, loss.backward()));
            micro += 1;

            let last = index + 1 == self.num_batches;
            if micro == config.grad_accum_steps || last {
                model = self.step(model, std::mem::take(&mut grads), micro, ls);
                timing.end::<AB>(self.device, ls.optimizer.step);
                micro = 0;
                ls.state.batches_done = index + 1;
                let stop = self.stop_reached(ls);
                let periodic = config
                    .checkpoint_every
                    .is_some_and(|n| ls.optimizer.step.is_multiple_of(n));
                if (stop || periodic) && !last {
                    // Read first: a checkpoint never holds a model updated from a bad loss.
                    losses.read(&mut ls.state, epoch)?;
                    ls.state.epoch_seconds += started.elapsed().as_secs_f64();
                    started = Instant::now();
                    checkpoint::save(&self.ckpt.last(), &model, &ls.optimizer, &ls.state)?;
                }
                if stop && !last {
                    task.set_message(&format!("stopped after {} steps", ls.steps_this_run));
                    return Ok((model, EpochEnd::Stopped));
                }
            }
            if last || (index + 1).is_multiple_of(LOSS_READ_EVERY) {
                losses.read(&mut ls.state, epoch)?;
                task.set_message(&format!("loss {:.4}", epoch_loss(&ls.state)));
            }
            task.advance(1);
        }
        losses.read(&mut ls.state, epoch)?;
        timing.summary(epoch);
        ls.state.epoch_seconds += started.elapsed().as_secs_f64();
        Ok((model, EpochEnd::Completed))
    }

    /// One optimizer step on the summed gradients of `micro` batches: their mean, clipped
    /// to `max_grad_norm` (the factor computed on the device), at the scheduled learning rate.
    fn step(
        &self,
        model: SequenceClassifier<AB>,
        grads: Grads<AB::InnerBackend>,
        micro: usize,
        ls: &mut LoopState<AB::InnerBackend>,
    ) -> SequenceClassifier<AB> {
        let scale = clip_scale(&grads, micro, self.config.max_grad_norm);
        let lr = self.config.lr * self.schedule.factor(ls.optimizer.step);
        let model = ls.optimizer.step(model, grads, lr, &scale);
        ls.steps_this_run += 1;
        ls.state.optimizer_step = ls.optimizer.step;
        model
    }

    /// Whether this invocation has taken the `stop_after_steps` it was allowed, or was
    /// interrupted.
    fn stop_reached(&self, ls: &LoopState<AB::InnerBackend>) -> bool {
        self.interrupt.is_requested()
            || self
                .config
                .stop_after_steps
                .is_some_and(|n| ls.steps_this_run >= n)
    }

    /// Closes the epoch just trained: evaluates it, records it, moves the position to the
    /// next epoch and writes the checkpoints (`best` too when its accuracy beats every earlier
    /// epoch's) and `metrics.json`.
    fn end_epoch(
        &self,
        model: &SequenceClassifier<AB>,
        ls: &mut LoopState<AB::InnerBackend>,
        params: ParamCount,
    ) -> Result<(), TrainError> {
        let state = &mut ls.state;
        let label = epoch_label(state.epoch, self.config.epochs);
        let (set, what) = match &self.validation {
            Some(v) => (v, "validation"),
            None => (&self.test, "evaluation"),
        };
        let (eval, eval_classes) = self.evaluate(model, set, &format!("{label} {what}"))?;
        // Asked for: the test set too, recorded beside the validation split's numbers.
        let test = match self.validation.is_some() && self.config.test_each_epoch {
            true => Some(
                self.evaluate(model, &self.test, &format!("{label} test evaluation"))?
                    .0,
            ),
            false => None,
        };
        let record = EpochRecord {
            epoch: state.epoch + 1,
            train_loss: epoch_loss(state),
            train_seconds: state.epoch_seconds,
            train_samples_per_s: state.epoch_samples as f64 / state.epoch_seconds.max(1e-9),
            eval,
            test,
        };
        // Rounded for reading; metrics.json has every digit.
        tracing::info!(
            epoch = record.epoch,
            train_loss = %format_args!("{:.4}", record.train_loss),
            accuracy = %format_args!("{:.4}", record.eval.accuracy),
            f1 = %format_args!("{:.4}", record.eval.f1),
            samples_per_s = %format_args!("{:.1}", record.train_samples_per_s),
            "epoch finished"
        );
        // With a validation split, `best` is the model it chooses; without one, the epoch of
        // the best test accuracy is kept as a record (choosing by it would be peeking).
        let metric = match self.validation {
            Some(_) => self.config.metric_for_best,
            None => BestMetric::Accuracy,
        };
        let best_so_far = state
            .history
            .iter()
            .all(|r| metric.improves(metric.of(&record.eval), metric.of(&r.eval)));
        state.history.push(record);
        if let Some(patience) = self.config.early_stopping_patience
            && patience_spent(&state.history, metric, patience)
            && state.epoch + 1 < self.config.epochs
        {
            tracing::info!(
                epoch = state.epoch + 1,
                patience,
                metric = metric.name(),
                "early stopping: no improvement on the validation split"
            );
            state.stopped_early = true;
        }
        state.classes.epochs.push(eval_classes);
        state.epoch += 1;
        state.batches_done = 0;
        state.epoch_loss_sum = 0.0;
        state.epoch_samples = 0;
        state.epoch_seconds = 0.0;
        checkpoint::save(&self.ckpt.last(), model, &ls.optimizer, state)?;
        if best_so_far {
            checkpoint::save(&self.ckpt.best(), model, &ls.optimizer, state)?;
        }
        build_metrics(self.run, self.config, params, state).write_atomic(&self.metrics_path)?;
        Ok(())
    }

    /// The best epoch's model (`checkpoints/best.safetensors`'s adapters and head on `model`'s
    /// frozen base).
    fn best_model(
        &self,
        model: &SequenceClassifier<AB>,
    ) -> Result<SequenceClassifier<AB>, TrainError> {
        let adam = AdamW::new(AdamWConfig::default());
        Ok(checkpoint::load(&self.ckpt.best(), model, adam, self.device)?.model)
    }

    /// Evaluates `model` (its inference copy) on `set`, reported to the progress sink as
    /// `label`: the headline and the per-class metrics.
    fn evaluate(
        &self,
        model: &SequenceClassifier<AB>,
        set: &Batcher,
        label: &str,
    ) -> Result<(EvalMetrics, ClassMetrics), TrainError> {
        evaluate(
            &model.valid(),
            set.epoch(0),
            self.device,
            self.progress,
            label,
            &self.classes,
        )
    }
}

fn build_metrics(
    run: &RunConfig,
    config: &TrainConfig,
    params: ParamCount,
    state: &TrainState,
) -> MetricsFile {
    let train_samples: u64 = state
        .history
        .iter()
        .map(|r| (r.train_samples_per_s * r.train_seconds).round() as u64)
        .sum();
    let train_seconds: f64 = state.history.iter().map(|r| r.train_seconds).sum();
    let evals: Vec<&EvalMetrics> = std::iter::once(&state.baseline)
        .chain(state.history.iter().map(|r| &r.eval))
        .chain(state.history.iter().filter_map(|r| r.test.as_ref()))
        .chain(&state.final_test)
        .collect();
    let selection = crate::selection::selection(run, config, state);
    let eval_samples: u64 = evals.iter().map(|e| e.samples).sum();
    let eval_seconds: f64 = evals.iter().map(|e| e.seconds).sum();
    let run = RunMetrics {
        schema_version: SCHEMA_VERSION,
        config: run.clone(),
        trainable_params: params.trainable as u64,
        total_params: params.total as u64,
        baseline: state.baseline,
        epochs: state.history.clone(),
        train_samples_per_s: train_samples as f64 / train_seconds.max(1e-9),
        eval_samples_per_s: eval_samples as f64 / eval_seconds.max(1e-9),
        total_seconds: train_seconds + eval_seconds,
        selection,
        test: state.final_test,
    };
    MetricsFile::new(run, state.classes.clone())
}

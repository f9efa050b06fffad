//! What the training loop reads back from the device: the micro-batches' losses, kept on the
//! device until a read point fetches them in one transfer ([`PendingLosses`]), and, when
//! asked, each optimizer step's enqueue and synchronisation times ([`StepTiming`]).

use std::time::Instant;

use burn::tensor::Tensor;
use burn::tensor::backend::Backend;

use crate::TrainError;
use crate::checkpoint::TrainState;

/// Where a pending loss came from, for the running sums and the error naming a bad one.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LossAt {
    /// 0-based batch of the epoch.
    pub(crate) batch: usize,
    /// Optimizer steps taken before this batch.
    pub(crate) step: u64,
    /// Examples in the batch (the loss is their mean).
    pub(crate) size: usize,
}

/// The micro-batches' mean losses since the last read, still on the device: the step never
/// waits for them. [`PendingLosses::read`] fetches them in one transfer.
pub(crate) struct PendingLosses<B: Backend> {
    values: Vec<Tensor<B, 1>>,
    at: Vec<LossAt>,
}

impl<B: Backend> Default for PendingLosses<B> {
    fn default() -> Self {
        Self {
            values: Vec::new(),
            at: Vec::new(),
        }
    }
}

impl<B: Backend> PendingLosses<B> {
    pub(crate) fn push(&mut self, loss: Tensor<B, 1>, at: LossAt) {
        self.values.push(loss);
        self.at.push(at);
    }

    /// Reads every pending loss at once (one device synchronisation) and adds them to the
    /// epoch's sums in batch order, as they were added one by one before, so the sums are
    /// bit-identical; the first non-finite one is an error naming its batch and step.
    pub(crate) fn read(&mut self, state: &mut TrainState, epoch: usize) -> Result<(), TrainError> {
        if self.values.is_empty() {
            return Ok(());
        }
        let values = Tensor::cat(std::mem::take(&mut self.values), 0)
            .into_data()
            .convert::<f64>()
            .to_vec::<f64>()
            .map_err(|e| TrainError::Tensor(format!("{e:?}")))?;
        for (value, at) in values.into_iter().zip(std::mem::take(&mut self.at)) {
            if !value.is_finite() {
                return Err(TrainError::NonFiniteLoss {
                    epoch: epoch + 1,
                    batch: at.batch,
                    step: at.step,
                    value,
                });
            }
            state.epoch_loss_sum += value * at.size as f64;
            state.epoch_samples += at.size as u64;
        }
        Ok(())
    }
}

/// `TrainConfig::step_timing`: per optimizer step, the host time to enqueue it (from its
/// first micro-batch to the optimizer's return) and the time `sync` then waits for the
/// device, as INFO events `step_timing`; medians at the epoch's end.
pub(crate) struct StepTiming {
    on: bool,
    begun: Option<Instant>,
    enqueue_ms: Vec<f64>,
    sync_ms: Vec<f64>,
}

impl StepTiming {
    pub(crate) fn new(on: bool) -> Self {
        Self {
            on,
            begun: None,
            enqueue_ms: Vec::new(),
            sync_ms: Vec::new(),
        }
    }

    /// A micro-batch starts; the first of a step starts its clock.
    pub(crate) fn begin(&mut self) {
        if self.on && self.begun.is_none() {
            self.begun = Some(Instant::now());
        }
    }

    /// The optimizer step `step` (1-based count after it) is enqueued: wait for the device.
    pub(crate) fn end<B: Backend>(&mut self, device: &B::Device, step: u64) {
        let Some(begun) = self.begun.take() else {
            return;
        };
        let enqueued = Instant::now();
        if let Err(e) = B::sync(device) {
            tracing::warn!(error = ?e, "step timing: device synchronisation failed");
        }
        let enqueue_ms = (enqueued - begun).as_secs_f64() * 1e3;
        let sync_ms = enqueued.elapsed().as_secs_f64() * 1e3;
        tracing::info!(
            step,
            enqueue_ms = %format_args!("{enqueue_ms:.3}"),
            sync_ms = %format_args!("{sync_ms:.3}"),
            "step_timing"
        );
        self.enqueue_ms.push(enqueue_ms);
        self.sync_ms.push(sync_ms);
    }

    /// Medians of the epoch's steps (0-based `epoch`), then a fresh record.
    pub(crate) fn summary(&mut self, epoch: usize) {
        if !self.on || self.enqueue_ms.is_empty() {
            return;
        }
        let steps = self.enqueue_ms.len();
        tracing::info!(
            epoch = epoch + 1,
            steps,
            median_enqueue_ms = %format_args!("{:.3}", median(&mut self.enqueue_ms)),
            median_sync_ms = %format_args!("{:.3}", median(&mut self.sync_ms)),
            "step_timing_summary"
        );
        self.enqueue_ms.clear();
        self.sync_ms.clear();
    }
}

/// The median (the mean of the middle two of an even count); 0 for none.
fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => 0.0,
        _ if n % 2 == 1 => values[n / 2],
        _ => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

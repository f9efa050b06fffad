//! Dynamic batching: inputs already tokenised arrive as [`Job`]s; one thread owns the model
//! and packs waiting jobs into forward passes by a token budget, one classifier (adapter) per
//! pass, and answers each job on its own channel.
//!
//! Packing: the oldest waiting job always goes into the next pass (no job waits behind
//! newer ones for ever); the pass is filled with jobs of the same classifier whose lengths are
//! nearest the oldest's, so padding stays small, as long as `inputs × padded length` stays
//! within `max_batch_tokens` (and the count within `max_batch_requests`). Jobs whose client has
//! gone are dropped unrun; jobs past their deadline are answered with a timeout unrun.

use std::collections::VecDeque;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use imdb_lora_encoder::KernelBackend;
use imdb_lora_infer::Predictor;
use tokio::sync::oneshot;

use crate::Limits;
use crate::metrics::Metrics;

/// One input waiting for the model.
#[derive(Debug)]
pub(crate) struct Job {
    /// Index of the classifier (adapter) to run.
    pub classifier: usize,
    /// Token ids, at most `max_len`.
    pub ids: Vec<u32>,
    /// When it was queued.
    pub queued: Instant,
    /// When its client stops waiting.
    pub deadline: Instant,
    /// Where the answer goes.
    pub reply: oneshot::Sender<Result<Done, Failed>>,
}

/// A job's answer.
#[derive(Debug, Clone)]
pub(crate) struct Done {
    /// The classifier's logits.
    pub logits: Vec<f32>,
    /// Time waiting for the pass.
    pub queue: Duration,
    /// Time of the pass.
    pub inference: Duration,
}

/// Why a job got no logits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Failed {
    /// It waited past its deadline.
    Timeout,
    /// The forward pass failed (the message says how).
    Backend(String),
}

/// What the model thread needs besides the model.
pub(crate) struct Worker {
    pub jobs: Receiver<Job>,
    pub limits: Limits,
    pub metrics: Metrics,
    /// Cleared when the thread ends, however it ends: `/health` reads it.
    pub alive: Arc<AtomicBool>,
    /// Set by shutdown: finish what is queued, then stop.
    pub stopping: Arc<AtomicBool>,
}

/// Clears `alive` when dropped, so a panic that ends the thread is seen too.
struct AliveGuard(Arc<AtomicBool>);

impl Drop for AliveGuard {
    fn drop(&mut self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

/// Takes the next pass out of `waiting` (not empty): see the module doc.
/// `padded` gives a pass's padded length from its longest input's.
fn next_batch(
    waiting: &mut VecDeque<Job>,
    limits: &Limits,
    padded: &dyn Fn(usize) -> usize,
) -> Vec<Job> {
    let Some(first) = waiting.front() else {
        return Vec::new();
    };
    let classifier = first.classifier;
    let anchor = first.ids.len();
    // Candidates: the same classifier, nearest in length to the oldest first.
    let mut candidates: Vec<(usize, usize)> = waiting
        .iter()
        .enumerate()
        .skip(1)
        .filter(|(_, j)| j.classifier == classifier)
        .map(|(i, j)| (j.ids.len().abs_diff(anchor), i))
        .collect();
    candidates.sort_unstable();
    let cap = limits.max_batch_requests.unwrap_or(usize::MAX);
    let mut chosen = vec![0usize];
    let mut longest = anchor;
    for (_, i) in candidates {
        if chosen.len() >= cap {
            break;
        }
        let len = longest.max(waiting[i].ids.len());
        if padded(len) * (chosen.len() + 1) > limits.max_batch_tokens {
            continue;
        }
        longest = len;
        chosen.push(i);
    }
    chosen.sort_unstable();
    // Remove from the back so the indices stay valid.
    let mut batch: Vec<Job> = chosen
        .iter()
        .rev()
        .filter_map(|&i| waiting.remove(i))
        .collect();
    batch.reverse();
    batch
}

/// The model thread's loop: until the job channel closes (every sender dropped) or shutdown
/// asks and nothing is left.
pub(crate) fn run<B: KernelBackend>(predictor: Predictor<B>, worker: Worker) {
    let _alive = AliveGuard(worker.alive.clone());
    let padded = |longest| predictor.padded_len(longest);
    let mut waiting: VecDeque<Job> = VecDeque::new();
    loop {
        if waiting.is_empty() {
            match worker.jobs.recv_timeout(Duration::from_millis(100)) {
                Ok(job) => waiting.push_back(job),
                Err(RecvTimeoutError::Timeout) => {
                    if worker.stopping.load(Ordering::SeqCst) {
                        break;
                    }
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        while let Ok(job) = worker.jobs.try_recv() {
            waiting.push_back(job);
        }
        let now = Instant::now();
        waiting.retain_mut(|job| {
            if job.reply.is_closed() {
                return false;
            }
            if now >= job.deadline {
                let (tx, _) = oneshot::channel();
                let reply = std::mem::replace(&mut job.reply, tx);
                let _ = reply.send(Err(Failed::Timeout));
                return false;
            }
            true
        });
        worker.metrics.queue_size.set(waiting.len() as i64);
        if waiting.is_empty() {
            continue;
        }
        let batch = next_batch(&mut waiting, &worker.limits, &padded);
        worker.metrics.queue_size.set(waiting.len() as i64);
        let classifier = batch[0].classifier;
        let inputs: Vec<&[u32]> = batch.iter().map(|j| j.ids.as_slice()).collect();
        let longest = inputs.iter().map(|i| i.len()).max().unwrap_or(0);
        worker.metrics.batch_size.observe(batch.len() as f64);
        worker
            .metrics
            .batch_tokens
            .observe((padded(longest) * batch.len()) as f64);
        let start = Instant::now();
        // A panic in the backend fails this pass, not the server: the model is only read, so
        // nothing is left half-updated.
        let result =
            std::panic::catch_unwind(AssertUnwindSafe(|| predictor.logits(classifier, &inputs)));
        let inference = start.elapsed();
        let result = match result {
            Ok(Ok(logits)) => Ok(logits),
            Ok(Err(e)) => Err(Failed::Backend(e.to_string())),
            Err(_) => Err(Failed::Backend("the model panicked on this batch".into())),
        };
        match result {
            Ok(logits) => {
                for (job, logits) in batch.into_iter().zip(logits) {
                    let done = Done {
                        logits,
                        queue: start.duration_since(job.queued),
                        inference,
                    };
                    let _ = job.reply.send(Ok(done));
                }
            }
            Err(failed) => {
                tracing::error!(?failed, inputs = batch.len(), "batch failed");
                for job in batch {
                    let _ = job.reply.send(Err(failed.clone()));
                }
            }
        }
    }
    tracing::debug!("model thread done");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(classifier: usize, len: usize) -> (Job, oneshot::Receiver<Result<Done, Failed>>) {
        let (tx, rx) = oneshot::channel();
        let now = Instant::now();
        (
            Job {
                classifier,
                ids: vec![1; len],
                queued: now,
                deadline: now + Duration::from_secs(60),
                reply: tx,
            },
            rx,
        )
    }

    fn queue(
        specs: &[(usize, usize)],
    ) -> (VecDeque<Job>, Vec<oneshot::Receiver<Result<Done, Failed>>>) {
        let (jobs, rxs): (Vec<_>, Vec<_>) = specs.iter().map(|&(c, l)| job(c, l)).unzip();
        (jobs.into(), rxs)
    }

    fn lens(batch: &[Job]) -> Vec<(usize, usize)> {
        batch.iter().map(|j| (j.classifier, j.ids.len())).collect()
    }

    #[test]
    fn the_oldest_goes_first_with_its_classifiers_nearest_lengths_within_the_budget() {
        let limits = Limits {
            max_batch_tokens: 300,
            ..Limits::default()
        };
        let (mut q, _rx) = queue(&[(0, 100), (1, 100), (0, 10), (0, 95), (0, 250), (0, 90)]);
        // 100 first; then 95 and 90 (3 × 100 = 300 fits); 10 would make 4 × 100.
        let b = next_batch(&mut q, &limits, &|l| l);
        assert_eq!(lens(&b), [(0, 100), (0, 95), (0, 90)]);
        // The other classifier's job is now the oldest: alone.
        let b = next_batch(&mut q, &limits, &|l| l);
        assert_eq!(lens(&b), [(1, 100)]);
        // 10 then 250: 2 × 250 = 500 > 300, so 10 alone, then 250 alone.
        assert_eq!(lens(&next_batch(&mut q, &limits, &|l| l)), [(0, 10)]);
        assert_eq!(lens(&next_batch(&mut q, &limits, &|l| l)), [(0, 250)]);
        assert!(q.is_empty());
    }

    #[test]
    fn padding_multiple_and_request_cap_count() {
        let by32 = |l: usize| l.div_ceil(32) * 32;
        let limits = Limits {
            max_batch_tokens: 128,
            max_batch_requests: Some(3),
            ..Limits::default()
        };
        let (mut q, _rx) = queue(&[(0, 20), (0, 20), (0, 20), (0, 20), (0, 20)]);
        // Padded to 32: 4 × 32 = 128 would fit, but the cap is 3.
        assert_eq!(next_batch(&mut q, &limits, &by32).len(), 3);
        let limits = Limits {
            max_batch_tokens: 64,
            ..Limits::default()
        };
        let (mut q, _rx) = queue(&[(0, 20), (0, 20), (0, 20)]);
        // Padded to 32: only 2 fit in 64 (unpadded, 3 × 20 would).
        assert_eq!(next_batch(&mut q, &limits, &by32).len(), 2);
    }
}

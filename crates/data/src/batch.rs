//! Batching: dynamic padding to the longest sequence of each batch (not to `max_len`), attention
//! masks, a seeded per-epoch shuffle, optional length bucketing, and padding statistics.
//!
//! Optionally the padded length is rounded up to a multiple of `pad_multiple` (capped at
//! `max_len`): a GPU backend compiles a kernel per distinct shape, and sorted or bucketed
//! batches bring dozens of lengths; multiples of 32 or 64 bring a handful. CPU backends keep
//! exact dynamic padding (they compile nothing, and every padded slot costs time).
//!
//! Batches are plain row-major `Vec<i64>`s (`[batch_size * seq_len]`) so that the model crate can
//! turn them into tensors of any backend; this crate knows nothing about models.
//!
//! Length bucketing: the epoch's shuffled order is cut into windows of `bucket_window` batches; each
//! window is sorted by length and cut into batches, so each batch holds similar lengths; the batch
//! order is then shuffled again so that the model does not see lengths in a sawtooth pattern.
//! Randomness is preserved at window granularity (the usual "sort within shuffled windows" scheme).

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::subset;
use crate::tokenize::Encoded;

/// One padded batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Batch {
    /// Token ids, row-major `[batch_size, seq_len]`, padded with the tokenizer's `[PAD]` id.
    pub input_ids: Vec<i64>,
    /// 1 for real tokens, 0 for padding; same shape.
    pub attention_mask: Vec<i64>,
    /// Segment ids (0 for single texts, and for padding); same shape.
    pub token_type_ids: Vec<i64>,
    /// Labels, `[batch_size]` (0 = negative, 1 = positive).
    pub labels: Vec<i64>,
    /// Source-file rows of the examples, `[batch_size]` (to trace predictions back to reviews).
    pub rows: Vec<usize>,
    /// Number of examples.
    pub batch_size: usize,
    /// Padded length: the longest sequence in the batch (rounded up to the batcher's
    /// `pad_multiple`, if any).
    pub seq_len: usize,
}

impl Batch {
    /// Real (non-padding) tokens.
    pub fn real_tokens(&self) -> usize {
        self.attention_mask.iter().filter(|&&m| m != 0).count()
    }

    /// Fraction of the `[batch_size, seq_len]` slots that are padding.
    pub fn padding_ratio(&self) -> f64 {
        let total = self.batch_size * self.seq_len;
        if total == 0 {
            0.0
        } else {
            1.0 - self.real_tokens() as f64 / total as f64
        }
    }
}

/// Pad `examples` to the longest of them.
pub fn collate(examples: &[&Encoded], pad_id: u32) -> Batch {
    collate_to(examples, pad_id, 0)
}

/// Pad `examples` to `seq_len` tokens, or to the longest of them if that is longer.
pub fn collate_to(examples: &[&Encoded], pad_id: u32, seq_len: usize) -> Batch {
    let batch_size = examples.len();
    let longest = examples.iter().map(|e| e.ids.len()).max().unwrap_or(0);
    let seq_len = seq_len.max(longest);
    let cells = batch_size * seq_len;
    let mut input_ids = Vec::with_capacity(cells);
    let mut attention_mask = Vec::with_capacity(cells);
    let mut token_type_ids = Vec::with_capacity(cells);
    for e in examples {
        let pad = seq_len - e.ids.len();
        input_ids.extend(e.ids.iter().map(|&t| i64::from(t)));
        input_ids.extend(std::iter::repeat_n(i64::from(pad_id), pad));
        attention_mask.extend(std::iter::repeat_n(1, e.ids.len()));
        attention_mask.extend(std::iter::repeat_n(0, pad));
        // type_ids normally has the same length as ids; pad or cut defensively so the shape holds.
        let types = e
            .type_ids
            .iter()
            .map(|&t| i64::from(t))
            .chain(std::iter::repeat(0));
        token_type_ids.extend(types.take(seq_len));
    }
    Batch {
        input_ids,
        attention_mask,
        token_type_ids,
        labels: examples.iter().map(|e| i64::from(e.label)).collect(),
        rows: examples.iter().map(|e| e.row).collect(),
        batch_size,
        seq_len,
    }
}

/// A good length-bucketing window, in batches (`imdb-lora train --bucket-window 50`):
/// transformers' `group_by_length` sorts megabatches of 50 batches too. Bucketing is off
/// unless asked for, as it is in transformers.
pub const SUGGESTED_BUCKET_WINDOW: usize = 50;

/// How to form batches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatcherConfig {
    /// Examples per batch.
    pub batch_size: usize,
    /// Shuffle every epoch (seeded by `seed` and the epoch number).
    pub shuffle: bool,
    /// Shuffle seed.
    pub seed: u64,
    /// Length bucketing: sort by length within windows of this many batches (`None` = off).
    pub bucket_window: Option<usize>,
    /// Drop a final incomplete batch.
    pub drop_last: bool,
    /// Round each batch's padded length up to a multiple of this many tokens, at most
    /// `max_len` (`None`: pad to the longest sequence exactly). For GPU backends: fewer
    /// distinct shapes, fewer kernels compiled.
    pub pad_multiple: Option<usize>,
}

impl BatcherConfig {
    /// Training: shuffled each epoch, no bucketing, keep the last partial batch.
    pub fn train(batch_size: usize, seed: u64) -> BatcherConfig {
        BatcherConfig {
            batch_size,
            shuffle: true,
            seed,
            bucket_window: None,
            drop_last: false,
            pad_multiple: None,
        }
    }

    /// Evaluation: the whole set sorted by length, longest first, so each batch pads to
    /// about its own length (16 % fewer padded slots on the bench's 1,024 IMDb test reviews
    /// at max_len 256 and batch 64: 219,264 instead of 262,144, docs/BENCHMARKS.md). Metrics do
    /// not depend on the order; the first batch is the largest, so memory peaks at once.
    pub fn eval(batch_size: usize) -> BatcherConfig {
        BatcherConfig {
            batch_size,
            shuffle: false,
            seed: 0,
            bucket_window: Some(usize::MAX),
            drop_last: false,
            pad_multiple: None,
        }
    }

    /// Turn on length bucketing with windows of `batches` batches.
    pub fn with_bucketing(mut self, batches: usize) -> BatcherConfig {
        self.bucket_window = Some(batches);
        self
    }

    /// Pad every batch to a multiple of `tokens` (`None`: exactly to its longest sequence).
    pub fn with_pad_multiple(mut self, tokens: Option<usize>) -> BatcherConfig {
        self.pad_multiple = tokens;
        self
    }

    /// The padded length of a batch whose longest sequence has `longest` tokens: `longest`
    /// rounded up to the pad multiple, but never past `max_len` (nor below `longest`).
    pub fn padded_len(&self, longest: usize, max_len: usize) -> usize {
        match self.pad_multiple {
            Some(m) if m > 1 && longest > 0 => longest
                .div_ceil(m)
                .saturating_mul(m)
                .min(max_len)
                .max(longest),
            _ => longest,
        }
    }
}

/// Padding totals over a number of batches.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PaddingStats {
    /// Batches counted.
    pub batches: usize,
    /// Real tokens.
    pub real_tokens: u64,
    /// Token slots (real + padding).
    pub slots: u64,
    /// Slots had every batch been padded to `max_len` instead (for comparison).
    pub slots_at_max_len: u64,
}

impl PaddingStats {
    /// Fraction of slots that are padding.
    pub fn padding_ratio(&self) -> f64 {
        if self.slots == 0 {
            0.0
        } else {
            1.0 - self.real_tokens as f64 / self.slots as f64
        }
    }

    /// The padding fraction of fixed padding to `max_len`.
    pub fn padding_ratio_at_max_len(&self) -> f64 {
        if self.slots_at_max_len == 0 {
            0.0
        } else {
            1.0 - self.real_tokens as f64 / self.slots_at_max_len as f64
        }
    }
}

impl std::fmt::Display for PaddingStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} batches, {} real tokens in {} slots: {:.1}% padding ({:.1}% if padded to max_len)",
            self.batches,
            self.real_tokens,
            self.slots,
            100.0 * self.padding_ratio(),
            100.0 * self.padding_ratio_at_max_len()
        )
    }
}

/// Forms batches over a tokenised split, epoch after epoch. Cheap to clone (the examples are
/// shared), and [`EpochBatches`] owns what it needs, so batches can be produced on another thread.
#[derive(Clone, Debug)]
pub struct Batcher {
    examples: Arc<[Encoded]>,
    pad_id: u32,
    max_len: usize,
    config: BatcherConfig,
}

impl Batcher {
    /// A batcher over `examples`, padding with `pad_id`; `max_len` caps the rounded length of
    /// `pad_multiple` and is the comparison of the padding statistics.
    pub fn new(
        examples: impl Into<Arc<[Encoded]>>,
        pad_id: u32,
        max_len: usize,
        config: BatcherConfig,
    ) -> Result<Batcher> {
        if config.batch_size == 0 {
            return Err(Error::BatchConfig {
                setting: "batch_size",
                found: 0,
                expected: "at least 1",
            });
        }
        if config.bucket_window == Some(0) {
            return Err(Error::BatchConfig {
                setting: "bucket_window",
                found: 0,
                expected: "at least 1 batch",
            });
        }
        if config.pad_multiple == Some(0) {
            return Err(Error::BatchConfig {
                setting: "pad_multiple",
                found: 0,
                expected: "at least 1 token",
            });
        }
        Ok(Batcher {
            examples: examples.into(),
            pad_id,
            max_len,
            config,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &BatcherConfig {
        &self.config
    }

    /// Number of examples.
    pub fn num_examples(&self) -> usize {
        self.examples.len()
    }

    /// Batches per epoch.
    pub fn num_batches(&self) -> usize {
        let (n, b) = (self.examples.len(), self.config.batch_size);
        if self.config.drop_last {
            n / b
        } else {
            n.div_ceil(b)
        }
    }

    /// The example indices of each batch of `epoch`, in order.
    pub fn plan(&self, epoch: u64) -> Vec<Vec<usize>> {
        let cfg = &self.config;
        let mut rng = subset::rng(cfg.seed, epoch);
        let mut order: Vec<usize> = (0..self.examples.len()).collect();
        if cfg.shuffle {
            subset::shuffle(&mut order, &mut rng);
        }
        let mut batches: Vec<Vec<usize>> = match cfg.bucket_window {
            None => order
                .chunks(cfg.batch_size)
                .map(<[usize]>::to_vec)
                .collect(),
            Some(window) => {
                let mut out = Vec::new();
                for w in order.chunks(window.saturating_mul(cfg.batch_size)) {
                    let mut w = w.to_vec();
                    // Stable sort, longest first: deterministic given the shuffled window.
                    w.sort_by_key(|&i| std::cmp::Reverse(self.examples[i].ids.len()));
                    out.extend(w.chunks(cfg.batch_size).map(<[usize]>::to_vec));
                }
                out
            }
        };
        if cfg.drop_last {
            batches.retain(|b| b.len() == cfg.batch_size);
        }
        if cfg.shuffle && cfg.bucket_window.is_some() {
            subset::shuffle(&mut batches, &mut rng);
        }
        batches
    }

    /// The batches of `epoch`.
    pub fn epoch(&self, epoch: u64) -> EpochBatches {
        EpochBatches {
            examples: Arc::clone(&self.examples),
            pad_id: self.pad_id,
            max_len: self.max_len,
            config: self.config,
            plan: self.plan(epoch).into_iter(),
        }
    }

    /// Padding statistics of `epoch`'s batches (without building them).
    pub fn padding_stats(&self, epoch: u64) -> PaddingStats {
        let mut s = PaddingStats::default();
        for b in self.plan(epoch) {
            let longest = b
                .iter()
                .map(|&i| self.examples[i].ids.len())
                .max()
                .unwrap_or(0);
            s.batches += 1;
            s.real_tokens += b
                .iter()
                .map(|&i| self.examples[i].ids.len() as u64)
                .sum::<u64>();
            s.slots += (b.len() * self.config.padded_len(longest, self.max_len)) as u64;
            s.slots_at_max_len += (b.len() * self.max_len) as u64;
        }
        s
    }
}

/// Iterator over one epoch's batches.
#[derive(Debug)]
pub struct EpochBatches {
    examples: Arc<[Encoded]>,
    pad_id: u32,
    max_len: usize,
    config: BatcherConfig,
    plan: std::vec::IntoIter<Vec<usize>>,
}

impl Iterator for EpochBatches {
    type Item = Batch;

    fn next(&mut self) -> Option<Batch> {
        let idx = self.plan.next()?;
        let refs: Vec<&Encoded> = idx.iter().map(|&i| &self.examples[i]).collect();
        let longest = refs.iter().map(|e| e.ids.len()).max().unwrap_or(0);
        let seq_len = self.config.padded_len(longest, self.max_len);
        Some(collate_to(&refs, self.pad_id, seq_len))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.plan.size_hint()
    }
}

impl ExactSizeIterator for EpochBatches {}

#[cfg(test)]
mod tests {
    use super::*;

    fn ex(row: usize, len: usize) -> Encoded {
        let mut ids = vec![101];
        ids.extend((0..len.saturating_sub(2)).map(|i| 1000 + i as u32));
        ids.push(102);
        Encoded {
            row,
            label: (row % 2) as u32,
            ids,
            type_ids: vec![0; len],
        }
    }

    #[test]
    fn collate_pads_to_the_longest_with_mask() {
        let (a, b) = (ex(0, 3), ex(1, 5));
        let batch = collate(&[&a, &b], 0);
        assert_eq!((batch.batch_size, batch.seq_len), (2, 5));
        assert_eq!(
            batch.input_ids,
            vec![101, 1000, 102, 0, 0, 101, 1000, 1001, 1002, 102]
        );
        assert_eq!(batch.attention_mask, vec![1, 1, 1, 0, 0, 1, 1, 1, 1, 1]);
        assert_eq!(batch.token_type_ids, vec![0; 10]);
        assert_eq!(batch.labels, vec![0, 1]);
        assert_eq!(batch.rows, vec![0, 1]);
        assert_eq!(batch.real_tokens(), 8);
        assert!((batch.padding_ratio() - 0.2).abs() < 1e-12);
    }

    #[test]
    fn pad_id_is_used() {
        let (a, b) = (ex(0, 2), ex(1, 3));
        assert_eq!(collate(&[&a, &b], 7).input_ids[2], 7);
    }

    fn lengths(n: usize) -> Vec<Encoded> {
        // Deterministic spread of lengths 2..=129.
        (0..n).map(|i| ex(i, 2 + (i * 37) % 128)).collect()
    }

    fn sorted_rows(plan: &[Vec<usize>]) -> Vec<usize> {
        let mut all: Vec<usize> = plan.iter().flatten().copied().collect();
        all.sort_unstable();
        all
    }

    #[test]
    fn epochs_cover_every_example_once_and_shuffle_reproducibly() {
        let b = Batcher::new(lengths(103), 0, 256, BatcherConfig::train(10, 9)).unwrap();
        assert_eq!(b.num_batches(), 11);
        let e0 = b.plan(0);
        assert_eq!(e0.len(), 11);
        assert_eq!(sorted_rows(&e0), (0..103).collect::<Vec<_>>());
        assert_eq!(e0, b.plan(0), "same seed and epoch → same order");
        assert_ne!(e0, b.plan(1), "epochs differ");
        let other = Batcher::new(lengths(103), 0, 256, BatcherConfig::train(10, 10)).unwrap();
        assert_ne!(e0, other.plan(0), "seeds differ");
        let batches: Vec<Batch> = b.epoch(0).collect();
        assert_eq!(batches.len(), 11);
        assert_eq!(batches.iter().map(|x| x.batch_size).sum::<usize>(), 103);
        assert!(
            batches
                .iter()
                .all(|x| x.seq_len == x.rows.iter().map(|&r| 2 + (r * 37) % 128).max().unwrap())
        );
    }

    #[test]
    fn eval_sorts_by_length_unbucketed_keeps_file_order_and_drop_last_drops() {
        let data = lengths(25);
        let b = Batcher::new(data.clone(), 0, 256, BatcherConfig::eval(10)).unwrap();
        let plan = b.plan(3);
        assert_eq!(plan, b.plan(0), "no shuffling: the same every epoch");
        assert_eq!(plan.iter().map(Vec::len).collect::<Vec<_>>(), [10, 10, 5]);
        assert_eq!(sorted_rows(&plan), (0..25).collect::<Vec<_>>());
        let lens: Vec<usize> = plan.concat().iter().map(|&i| data[i].ids.len()).collect();
        assert!(
            lens.windows(2).all(|w| w[0] >= w[1]),
            "longest first: {lens:?}"
        );

        let in_order = BatcherConfig {
            bucket_window: None,
            ..BatcherConfig::eval(10)
        };
        let b = Batcher::new(data, 0, 256, in_order).unwrap();
        assert_eq!(
            b.plan(3),
            vec![
                (0..10).collect::<Vec<_>>(),
                (10..20).collect(),
                (20..25).collect()
            ]
        );
        let cfg = BatcherConfig {
            drop_last: true,
            ..BatcherConfig::train(10, 1)
        };
        let b = Batcher::new(lengths(25), 0, 256, cfg).unwrap();
        assert_eq!(b.num_batches(), 2);
        assert_eq!(b.epoch(0).len(), 2);
        assert!(b.plan(0).iter().all(|x| x.len() == 10));
    }

    #[test]
    fn bucketing_cuts_padding_and_keeps_coverage() {
        let data = lengths(2000);
        let plain = Batcher::new(data.clone(), 0, 256, BatcherConfig::train(16, 3)).unwrap();
        let bucketed =
            Batcher::new(data, 0, 256, BatcherConfig::train(16, 3).with_bucketing(50)).unwrap();
        let (p, q) = (plain.padding_stats(0), bucketed.padding_stats(0));
        assert_eq!(p.real_tokens, q.real_tokens);
        assert_eq!(
            sorted_rows(&bucketed.plan(0)),
            (0..2000).collect::<Vec<_>>()
        );
        assert_eq!(bucketed.plan(0).len(), bucketed.num_batches());
        // Uniform lengths 2..129 in batches of 16: ~46% padding unsorted; sorted windows of 800
        // examples leave only a few percent.
        assert!(p.padding_ratio() > 0.35, "{p}");
        assert!(q.padding_ratio() < 0.05, "{q}");
        assert!(q.padding_ratio_at_max_len() > 0.7, "{q}");
        // The batch order is shuffled: lengths are not monotone over the epoch.
        let firsts: Vec<usize> = bucketed
            .plan(0)
            .iter()
            .map(|b| bucketed.examples[b[0]].ids.len())
            .collect();
        assert!(firsts.windows(2).any(|w| w[0] < w[1]) && firsts.windows(2).any(|w| w[0] > w[1]));
        assert_ne!(bucketed.plan(0), bucketed.plan(1));
    }

    #[test]
    fn padding_stats_match_built_batches() {
        let b = Batcher::new(
            lengths(57),
            0,
            200,
            BatcherConfig::train(8, 4).with_bucketing(3),
        )
        .unwrap();
        let s = b.padding_stats(2);
        let batches: Vec<Batch> = b.epoch(2).collect();
        assert_eq!(s.batches, batches.len());
        assert_eq!(
            s.real_tokens,
            batches.iter().map(|x| x.real_tokens() as u64).sum::<u64>()
        );
        assert_eq!(
            s.slots,
            batches
                .iter()
                .map(|x| (x.batch_size * x.seq_len) as u64)
                .sum::<u64>()
        );
        assert_eq!(s.slots_at_max_len, 57 * 200);
    }

    #[test]
    fn invalid_settings_are_errors() {
        assert!(matches!(
            Batcher::new(lengths(3), 0, 8, BatcherConfig::train(0, 1)),
            Err(Error::BatchConfig {
                setting: "batch_size",
                ..
            })
        ));
        assert!(matches!(
            Batcher::new(
                lengths(3),
                0,
                8,
                BatcherConfig::train(2, 1).with_bucketing(0)
            ),
            Err(Error::BatchConfig {
                setting: "bucket_window",
                ..
            })
        ));
    }

    #[test]
    fn pad_multiple_rounds_lengths_up_to_max_len_and_keeps_the_data() {
        // Lengths 2..=40, max_len 40.
        let examples: Vec<Encoded> = (0..57).map(|i| ex(i, 2 + (i * 37) % 39)).collect();
        let exact = Batcher::new(examples.clone(), 0, 40, BatcherConfig::train(8, 3)).unwrap();
        let cfg = BatcherConfig::train(8, 3).with_pad_multiple(Some(16));
        let padded = Batcher::new(examples, 0, 40, cfg).unwrap();
        let mut seen = std::collections::BTreeSet::new();
        for (a, b) in exact.epoch(0).zip(padded.epoch(0)) {
            assert_eq!(a.rows, b.rows, "same batches, same order");
            // 16, 32, or the cap 40 (not 48) when the longest exceeds 32.
            let want = if a.seq_len > 32 {
                40
            } else {
                a.seq_len.div_ceil(16) * 16
            };
            assert_eq!(b.seq_len, want, "longest {}", a.seq_len);
            seen.insert(b.seq_len);
            assert_eq!(a.real_tokens(), b.real_tokens(), "only padding added");
            for (row, (x, y)) in a
                .input_ids
                .chunks(a.seq_len)
                .zip(b.input_ids.chunks(b.seq_len))
                .enumerate()
            {
                assert_eq!(&y[..a.seq_len], x, "row {row}");
                assert!(y[a.seq_len..].iter().all(|&t| t == 0), "row {row}");
            }
            assert_eq!(b.attention_mask.len(), b.batch_size * b.seq_len);
        }
        assert!(seen.len() <= 3, "{seen:?}");
        let stats = padded.padding_stats(0);
        let built: u64 = padded
            .epoch(0)
            .map(|b| (b.batch_size * b.seq_len) as u64)
            .sum();
        assert_eq!(stats.slots, built);
        assert!(stats.slots > exact.padding_stats(0).slots);
    }

    #[test]
    fn padded_len_never_shortens_and_defaults_to_exact() {
        let exact = BatcherConfig::eval(4);
        assert_eq!(exact.padded_len(37, 256), 37);
        let by64 = exact.with_pad_multiple(Some(64));
        assert_eq!(by64.padded_len(37, 256), 64);
        assert_eq!(by64.padded_len(64, 256), 64);
        assert_eq!(by64.padded_len(200, 256), 256);
        assert_eq!(by64.padded_len(200, 220), 220, "capped at max_len");
        assert_eq!(by64.padded_len(300, 256), 300, "never below the longest");
        assert_eq!(by64.padded_len(0, 256), 0);
        assert!(matches!(
            Batcher::new(lengths(3), 0, 8, by64.with_pad_multiple(Some(0))),
            Err(Error::BatchConfig {
                setting: "pad_multiple",
                ..
            })
        ));
    }
}

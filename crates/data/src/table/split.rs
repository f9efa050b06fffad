//! The seeded, stratified hold-out: the same fraction of every class goes to the test split.

use super::error::{Result, TableError};
use crate::example::Review;
use crate::subset;

/// Hold-out shuffles use ChaCha8 streams from here on, one per class (`2^32 + class`), apart from
/// the streams the subset and epoch shuffles use (`0, 1, ...`).
const STREAM_BASE: u64 = 1 << 32;

/// Split `reviews` into (train, test): of each class, `round(count × test_fraction)` rows drawn
/// with `seed` go to test (at most all but one, so training keeps every class), the rest to train.
/// Both come back in row order. The draw of a class depends only on the seed, the class and its
/// rows in input order, so it is the same on every machine.
///
/// # Errors
/// [`TableError::BadFraction`] outside (0, 1); [`TableError::SplitTooSmall`] when either side would
/// be empty.
pub fn stratified_split(
    reviews: Vec<Review>,
    test_fraction: f64,
    seed: u64,
) -> Result<(Vec<Review>, Vec<Review>)> {
    if !(test_fraction > 0.0 && test_fraction < 1.0) {
        return Err(TableError::BadFraction(test_fraction));
    }
    let rows = reviews.len();
    let (mut train, mut test) = hold_out(reviews, test_fraction, seed, STREAM_BASE);
    if train.is_empty() || test.is_empty() {
        return Err(TableError::SplitTooSmall {
            fraction: test_fraction,
            rows,
            test: test.len(),
            train: train.len(),
        });
    }
    train.sort_by_key(|r| r.row);
    test.sort_by_key(|r| r.row);
    tracing::info!(
        train = train.len(),
        test = test.len(),
        "held out {test_fraction} of each class for testing"
    );
    Ok((train, test))
}

/// The draw behind every hold-out (the test split here, the validation split in
/// [`crate::split_validation`]): of each class, `round(count × fraction)` reviews drawn with
/// `seed` on stream `stream_base + class`, at most all but one (the kept side keeps every
/// class), are held out. Returns (kept, held out), both in input order. The draw of a class
/// depends only on the seed, the stream, the class and its reviews in input order, so it is
/// the same on every machine.
pub(crate) fn hold_out(
    reviews: Vec<Review>,
    fraction: f64,
    seed: u64,
    stream_base: u64,
) -> (Vec<Review>, Vec<Review>) {
    let classes = reviews
        .iter()
        .map(|r| r.label as usize + 1)
        .max()
        .unwrap_or(0);
    let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); classes];
    for (i, r) in reviews.iter().enumerate() {
        by_class[r.label as usize].push(i);
    }
    let mut held = vec![false; reviews.len()];
    for (class, mut members) in (0u64..).zip(by_class) {
        subset::shuffle(&mut members, &mut subset::rng(seed, stream_base + class));
        // Counts are far below 2^52, so the product and its rounding are exact enough and the
        // same on every machine (IEEE 754).
        let k = (members.len() as f64 * fraction).round() as usize;
        for &i in members.iter().take(k.min(members.len().saturating_sub(1))) {
            held[i] = true;
        }
    }
    let (mut kept, mut out) = (Vec::new(), Vec::new());
    for (r, h) in reviews.into_iter().zip(held) {
        match h {
            true => out.push(r),
            false => kept.push(r),
        }
    }
    (kept, out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::subset::LabelCounts;

    fn reviews(per_class: &[usize]) -> Vec<Review> {
        let mut out = Vec::new();
        for (label, &n) in (0u32..).zip(per_class) {
            for _ in 0..n {
                let row = out.len();
                out.push(Review {
                    row,
                    text: format!("r{row}"),
                    label,
                });
            }
        }
        out
    }

    fn counts(r: &[Review]) -> Vec<usize> {
        LabelCounts::of(r.iter().map(|r| &r.label))
            .as_slice()
            .to_vec()
    }

    #[test]
    fn every_class_gives_the_same_fraction() {
        let (train, test) = stratified_split(reviews(&[100, 50, 10, 3]), 0.2, 7).unwrap();
        assert_eq!(counts(&test), [20, 10, 2, 1]);
        assert_eq!(counts(&train), [80, 40, 8, 2]);
        assert!(train.windows(2).all(|w| w[0].row < w[1].row));
        assert!(test.windows(2).all(|w| w[0].row < w[1].row));
        let mut all: Vec<usize> = train.iter().chain(&test).map(|r| r.row).collect();
        all.sort_unstable();
        assert_eq!(all, (0..163).collect::<Vec<_>>());
    }

    #[test]
    fn the_seed_decides_and_is_reproducible() {
        let rows = |seed| {
            let (_, test) = stratified_split(reviews(&[50, 50]), 0.3, seed).unwrap();
            test.iter().map(|r| r.row).collect::<Vec<_>>()
        };
        assert_eq!(rows(1), rows(1));
        assert_ne!(rows(1), rows(2));
        // Pinned: a change of the draw (rng, stream, shuffle) changes every split made before.
        assert_eq!(&rows(42)[..5], [4, 7, 11, 13, 17]);
    }

    #[test]
    fn training_keeps_every_class_and_bad_fractions_are_refused() {
        // One row of class 1: rounding would send it to test; it stays in training.
        let (train, test) = stratified_split(reviews(&[10, 1]), 0.5, 0).unwrap();
        assert_eq!(counts(&train), [5, 1]);
        assert_eq!(counts(&test), [5]);
        for f in [0.0, 1.0, -0.1, f64::NAN] {
            assert!(matches!(
                stratified_split(reviews(&[4, 4]), f, 0),
                Err(TableError::BadFraction(_))
            ));
        }
        assert!(matches!(
            stratified_split(reviews(&[1, 1]), 0.5, 0),
            Err(TableError::SplitTooSmall { .. })
        ));
    }
}

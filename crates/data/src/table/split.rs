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
    let classes = reviews
        .iter()
        .map(|r| r.label as usize + 1)
        .max()
        .unwrap_or(0);
    let mut by_class: Vec<Vec<Review>> = (0..classes).map(|_| Vec::new()).collect();
    for r in reviews {
        by_class[r.label as usize].push(r);
    }
    let (mut train, mut test) = (Vec::new(), Vec::new());
    for (class, mut members) in (0u64..).zip(by_class) {
        subset::shuffle(&mut members, &mut subset::rng(seed, STREAM_BASE + class));
        // Counts are far below 2^52, so the product and its rounding are exact enough and the
        // same on every machine (IEEE 754).
        let k = (members.len() as f64 * test_fraction).round() as usize;
        let k = k.min(members.len().saturating_sub(1));
        let rest = members.split_off(k);
        test.extend(members);
        train.extend(rest);
    }
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

//! The validation split carved from the training texts: seeded, stratified by class, before
//! tokenisation (so every window of a text stays on one side), recorded by row in `split.json`.

use std::collections::{BTreeMap, HashSet};

use crate::error::{Error, Result};
use crate::example::Review;
use crate::subset;

/// Validation carves use ChaCha8 streams from here on, one per class (`2^33 + class`), apart
/// from the subset, epoch and test hold-out streams.
const STREAM_BASE: u64 = 1 << 33;

/// Splits `examples` into (train, validation): of each class's texts (distinct rows),
/// `round(count × fraction)` drawn with `seed` go to validation, at most all but one (training
/// keeps every class). Both keep the input order; examples sharing a row go together.
///
/// # Errors
/// [`Error::ValidationSplit`] for a fraction outside (0, 1) or a validation split that would
/// be empty.
pub fn split_validation(
    examples: Vec<Review>,
    fraction: f64,
    seed: u64,
) -> Result<(Vec<Review>, Vec<Review>)> {
    let refuse = |reason: String| Err(Error::ValidationSplit { fraction, reason });
    if !(fraction > 0.0 && fraction < 1.0) {
        return refuse("expected a fraction between 0 and 1 (exclusive)".into());
    }
    // Each class's texts in first-appearance order: the draw depends only on the seed, the
    // class and the order of the examples.
    let mut by_class: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
    let mut seen = HashSet::new();
    for e in &examples {
        if seen.insert(e.row) {
            by_class.entry(e.label).or_default().push(e.row);
        }
    }
    let mut chosen = HashSet::new();
    for (class, mut rows) in by_class {
        subset::shuffle(
            &mut rows,
            &mut subset::rng(seed, STREAM_BASE + u64::from(class)),
        );
        // Counts are far below 2^52: the product and its rounding are the same everywhere.
        let k = (rows.len() as f64 * fraction).round() as usize;
        chosen.extend(rows.into_iter().take(k));
    }
    // At most all but one text of a class: put back the last drawn of any class emptied.
    let (mut val, mut train): (Vec<Review>, Vec<Review>) =
        examples.into_iter().partition(|e| chosen.contains(&e.row));
    let train_classes: HashSet<u32> = train.iter().map(|e| e.label).collect();
    let emptied: Vec<u32> = val
        .iter()
        .map(|e| e.label)
        .filter(|l| !train_classes.contains(l))
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    for class in emptied {
        if let Some(row) = val.iter().rev().find(|e| e.label == class).map(|e| e.row) {
            let (back, keep): (Vec<Review>, Vec<Review>) =
                val.into_iter().partition(|e| e.row == row);
            val = keep;
            train.extend(back);
        }
    }
    if val.is_empty() {
        return refuse(format!(
            "no text falls in the validation split of {} training texts; give a larger fraction",
            seen.len()
        ));
    }
    tracing::info!(
        train = train.len(),
        validation = val.len(),
        "carved {fraction} of each class's training texts for validation"
    );
    Ok((train, val))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example(row: usize, label: u32) -> Review {
        Review {
            row,
            label,
            text: format!("t{row}"),
        }
    }

    fn rows(e: &[Review]) -> Vec<usize> {
        e.iter().map(|e| e.row).collect()
    }

    #[test]
    fn each_class_gives_its_fraction_seeded_and_windows_stay_together() {
        // 40 texts of class 0, 10 of class 1; text 7 has three windows.
        let mut ex: Vec<Review> = (0..50).map(|r| example(r, u32::from(r >= 40))).collect();
        ex.insert(8, example(7, 0));
        ex.insert(9, example(7, 0));
        let (train, val) = split_validation(ex.clone(), 0.2, 3).unwrap();
        let count = |e: &[Review], l: u32| {
            e.iter()
                .filter(|e| e.label == l)
                .map(|e| e.row)
                .collect::<HashSet<_>>()
                .len()
        };
        assert_eq!((count(&val, 0), count(&val, 1)), (8, 2));
        assert_eq!((count(&train, 0), count(&train, 1)), (32, 8));
        let windows_of_7 = |e: &[Review]| e.iter().filter(|e| e.row == 7).count();
        assert!(windows_of_7(&train) == 3 || windows_of_7(&val) == 3);
        // Input order kept on both sides; the same seed draws the same rows, another seed others.
        assert!(rows(&val).windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(
            rows(&split_validation(ex.clone(), 0.2, 3).unwrap().1),
            rows(&val)
        );
        assert_ne!(
            rows(&split_validation(ex.clone(), 0.2, 4).unwrap().1),
            rows(&val)
        );
        // Disjoint from the test hold-out's streams: pinned, so a change of the draw shows.
        assert_eq!(&rows(&val)[..4], [4, 6, 11, 19]);
    }

    #[test]
    fn training_keeps_every_class_and_bad_fractions_are_refused() {
        let ex = vec![example(0, 0), example(1, 0), example(2, 1)];
        let (train, val) = split_validation(ex.clone(), 0.6, 1).unwrap();
        assert!(
            train.iter().any(|e| e.label == 1),
            "the one text of class 1 stays"
        );
        assert_eq!(val.len(), 1);
        for f in [0.0, 1.0, -0.5, f64::NAN] {
            let e = split_validation(ex.clone(), f, 1).unwrap_err().to_string();
            assert!(
                e.contains("validation") && e.contains("between 0 and 1"),
                "{e}"
            );
        }
        let e = split_validation(ex, 0.01, 1).unwrap_err().to_string();
        assert!(e.contains("larger fraction"), "{e}");
    }
}

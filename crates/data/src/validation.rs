//! The validation split carved from the training texts: seeded, stratified by class (the test
//! hold-out's draw, on streams of its own), before tokenisation (so every window of a text
//! stays on one side), recorded by row in `split.json`.

use crate::error::{Error, Result};
use crate::example::Review;
use crate::table::hold_out;

/// Validation carves use ChaCha8 streams from here on, one per class (`2^33 + class`), apart
/// from the subset, epoch and test hold-out streams.
const STREAM_BASE: u64 = 1 << 33;

/// Splits `examples` into (train, validation): of each class, `round(count × fraction)` texts
/// drawn with `seed` go to validation, at most all but one (training keeps every class), by
/// the test hold-out's own draw on streams of their own. Both keep the input order.
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
    let texts = examples.len();
    let (train, val) = hold_out(examples, fraction, seed, STREAM_BASE);
    if val.is_empty() {
        return refuse(format!(
            "no text falls in the validation split of {texts} training texts; give a larger fraction"
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
    use std::collections::HashSet;

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
    fn each_class_gives_its_fraction_seeded_in_input_order() {
        // 40 texts of class 0, 10 of class 1.
        let ex: Vec<Review> = (0..50).map(|r| example(r, u32::from(r >= 40))).collect();
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

//! Texts longer than the model's window: cut at the end (the default, as transformers'
//! tokenizers do), keep the head and the tail, or split into overlapping windows whose
//! logits are averaged per text. One rule for training, evaluation, `predict` and the server,
//! recorded with the saved model.
//!
//! The cuts are made here on a text's full encoding rather than by the `tokenizers` crate's
//! truncation, because head + tail is not one of its strategies, and so both rules share one
//! definition of what the body of a sequence is: everything between the special tokens the
//! model's post-processor puts first and last (`[CLS] … [SEP]`, `<s> … </s>`).

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// How a text longer than `max_len` tokens is given to the model.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "rule", rename_all = "kebab-case")]
pub enum LongText {
    /// Keep the head: the first `max_len` tokens, special tokens included (transformers'
    /// `truncation=True`).
    #[default]
    Truncate,
    /// Keep the first quarter of the body and the last three quarters' worth from the end:
    /// the head + tail rule of Sun et al. (2019), *How to Fine-Tune BERT for Text
    /// Classification?* (128 + 382 of 510 tokens there).
    HeadTail,
    /// Overlapping windows of `max_len` tokens, `stride` tokens shared by neighbours (the
    /// `stride` of transformers' `return_overflowing_tokens`): each window is trained on with
    /// the text's label; a text's prediction is the mean of its windows' logits.
    Window {
        /// Tokens of body shared by consecutive windows.
        stride: usize,
    },
}

/// The key of a saved model's `config.json` under which training records its long-text rule
/// (transformers keeps unknown keys as attributes and ignores them).
pub const CONFIG_KEY: &str = "imdb_lora_long_text";

/// A long-text rule with the window length it was trained with, as `config.json` records it
/// (`{"rule": "window", "stride": 64, "max_len": 128}`): what `predict` and the server apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedLongText {
    /// The rule.
    #[serde(flatten)]
    pub rule: LongText,
    /// The sequence length (special tokens included) it was trained with.
    pub max_len: usize,
}

impl RecordedLongText {
    /// The rule a saved model's `config.json` (at `path`) records under [`CONFIG_KEY`]
    /// (`value`); `None` when it records none (the default rule, or a model not saved here).
    ///
    /// # Errors
    /// [`Error::LongText`] naming the file and the key when the value is not a rule.
    pub fn from_config(
        value: Option<&serde_json::Value>,
        path: &std::path::Path,
    ) -> Result<Option<RecordedLongText>> {
        let Some(value) = value else {
            return Ok(None);
        };
        serde_json::from_value(value.clone())
            .map(Some)
            .map_err(|e| {
                Error::LongText(format!(
                    "{}: \"{CONFIG_KEY}\" is not a long-text rule ({e}); expected e.g. \
                 {{\"rule\": \"window\", \"stride\": 64, \"max_len\": 128}}",
                    path.display()
                ))
            })
    }
}

impl RecordedLongText {
    /// The window length and rule a saved model runs with: the ones its `config.json`
    /// records ([`RecordedLongText::from_config`]), else `max_len` and [`LongText::Truncate`].
    /// What `eval`, `predict` and the server all apply.
    ///
    /// # Errors
    /// As [`RecordedLongText::from_config`].
    pub fn resolve(
        value: Option<&serde_json::Value>,
        path: &std::path::Path,
        max_len: usize,
    ) -> Result<(usize, LongText)> {
        Ok(match RecordedLongText::from_config(value, path)? {
            Some(r) => {
                if r.max_len != max_len {
                    tracing::info!(
                        max_len = r.max_len,
                        rule = r.rule.describe(),
                        "the model was trained on sequences of max_len {}: using that",
                        r.max_len
                    );
                }
                (r.max_len, r.rule)
            }
            None => (max_len, LongText::Truncate),
        })
    }
}

/// The mean of a text's windows' logits (its one sequence's, for a text that fits): how a
/// text split into windows is predicted, in training's evaluation, `predict` and the server.
pub fn mean_logits(windows: &[Vec<f32>]) -> Vec<f32> {
    let Some(first) = windows.first() else {
        return Vec::new();
    };
    if windows.len() == 1 {
        return first.clone();
    }
    let n = windows.len() as f64;
    (0..first.len())
        .map(|c| (windows.iter().map(|w| f64::from(w[c])).sum::<f64>() / n) as f32)
        .collect()
}

impl LongText {
    /// Checks the rule against `max_len`: a window must advance by at least one token.
    ///
    /// # Errors
    /// [`Error::LongText`] when `stride` leaves no room to advance.
    pub fn check(self, max_len: usize, specials: usize) -> Result<()> {
        if let LongText::Window { stride } = self {
            let body = max_len.saturating_sub(specials);
            if stride >= body {
                return Err(Error::LongText(format!(
                    "--stride {stride} must be smaller than the {body} tokens of text a window of \
                     --max-len {max_len} holds (besides its {specials} special tokens)"
                )));
            }
        }
        Ok(())
    }

    /// How the rule reads in logs and `metrics.json` (`None` for the default).
    pub fn describe(self) -> Option<String> {
        match self {
            LongText::Truncate => None,
            LongText::HeadTail => Some("head-tail".into()),
            LongText::Window { stride } => Some(format!("window, stride {stride}")),
        }
    }

    /// The sequences the model sees for one text's full encoding `ids` (special tokens
    /// included: `prefix` of them first, `suffix` last), at most `max_len` tokens each; and
    /// whether part of the text was left out. Each sequence keeps the special tokens.
    pub fn sequences(
        self,
        ids: &[u32],
        prefix: usize,
        suffix: usize,
        max_len: usize,
    ) -> (Vec<Vec<u32>>, bool) {
        if ids.len() <= max_len || prefix + suffix > ids.len() {
            return (vec![ids.to_vec()], false);
        }
        let (head, rest) = ids.split_at(prefix);
        let (body, tail) = rest.split_at(rest.len() - suffix);
        let room = max_len.saturating_sub(prefix + suffix);
        let wrap = |parts: &[&[u32]]| -> Vec<u32> {
            let mut out = head.to_vec();
            for p in parts {
                out.extend_from_slice(p);
            }
            out.extend_from_slice(tail);
            out
        };
        match self {
            LongText::Truncate => (vec![wrap(&[&body[..room]])], true),
            LongText::HeadTail => {
                let keep_head = room / 4;
                let keep_tail = room - keep_head;
                (
                    vec![wrap(&[&body[..keep_head], &body[body.len() - keep_tail..]])],
                    true,
                )
            }
            LongText::Window { stride } => {
                // `check` keeps stride < room; a zero room (max_len = the special tokens) gives
                // one empty window rather than looping.
                let step = room.saturating_sub(stride).max(1);
                let mut windows = Vec::new();
                let mut start = 0;
                loop {
                    let end = (start + room).min(body.len());
                    windows.push(wrap(&[&body[start..end]]));
                    if end == body.len() || room == 0 {
                        break;
                    }
                    start += step;
                }
                (windows, false)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `[CLS]=1`, body 100..100+n, `[SEP]=2`.
    fn text(n: u32) -> Vec<u32> {
        std::iter::once(1)
            .chain(100..100 + n)
            .chain(std::iter::once(2))
            .collect()
    }

    #[test]
    fn windows_cover_a_long_text_exactly_with_the_stride() {
        for (n, max_len, stride) in [(20u32, 8, 2), (21, 8, 2), (1000, 256, 128), (7, 5, 1)] {
            let ids = text(n);
            let (windows, cut) = LongText::Window { stride }.sequences(&ids, 1, 1, max_len);
            assert!(!cut, "nothing is left out");
            let room = max_len - 2;
            let bodies: Vec<&[u32]> = windows.iter().map(|w| &w[1..w.len() - 1]).collect();
            for w in &windows {
                assert!(w.len() <= max_len && w[0] == 1 && w[w.len() - 1] == 2);
            }
            // Every window but the last is full; neighbours share exactly `stride` tokens.
            for pair in bodies.windows(2) {
                assert_eq!(pair[0].len(), room);
                assert_eq!(
                    &pair[0][room - stride..],
                    &pair[1][..stride.min(pair[1].len())]
                );
            }
            // Joined without their overlaps, the windows are the text, in order.
            let mut joined: Vec<u32> = bodies[0].to_vec();
            for b in &bodies[1..] {
                joined.extend_from_slice(&b[stride.min(b.len())..]);
            }
            assert_eq!(joined, (100..100 + n).collect::<Vec<_>>(), "n {n}");
        }
        // 20 tokens, windows of 6 advancing by 4: starts 0, 4, 8, 12 (ends at 18), 16.
        let (w, _) = LongText::Window { stride: 2 }.sequences(&text(20), 1, 1, 8);
        assert_eq!(w.len(), 5);
        // A short text is one window, as it is.
        let (w, cut) = LongText::Window { stride: 2 }.sequences(&text(5), 1, 1, 8);
        assert_eq!((w, cut), (vec![text(5)], false));
    }

    #[test]
    fn head_tail_keeps_a_quarter_from_the_start_and_the_rest_from_the_end() {
        let (s, cut) = LongText::HeadTail.sequences(&text(1000), 1, 1, 510 + 2);
        assert!(cut);
        let s = &s[0];
        assert_eq!(s.len(), 512);
        assert_eq!(&s[1..128], (100..227).collect::<Vec<_>>().as_slice());
        assert_eq!(s[128], 100 + 1000 - 383);
        assert_eq!(&s[s.len() - 2..], [100 + 999, 2]);
        // Truncate keeps the head only; a short text passes unchanged.
        let (t, cut) = LongText::Truncate.sequences(&text(10), 1, 1, 6);
        assert_eq!((t, cut), (vec![vec![1, 100, 101, 102, 103, 2]], true));
        let (t, cut) = LongText::HeadTail.sequences(&text(3), 1, 1, 6);
        assert_eq!((t, cut), (vec![text(3)], false));
    }

    #[test]
    fn the_rule_recorded_in_a_config_reads_back_and_a_bad_one_names_file_and_key() {
        let r = RecordedLongText {
            rule: LongText::Window { stride: 64 },
            max_len: 128,
        };
        let v = serde_json::to_value(r).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"rule": "window", "stride": 64, "max_len": 128})
        );
        let p = std::path::Path::new("m/config.json");
        assert_eq!(RecordedLongText::from_config(Some(&v), p).unwrap(), Some(r));
        assert_eq!(RecordedLongText::from_config(None, p).unwrap(), None);
        let bad = serde_json::json!({"rule": "sideways", "max_len": 8});
        let e = RecordedLongText::from_config(Some(&bad), p)
            .unwrap_err()
            .to_string();
        assert!(e.contains("m/config.json") && e.contains(CONFIG_KEY), "{e}");
    }

    #[test]
    fn a_stride_that_cannot_advance_is_refused_and_the_rule_reads_back() {
        assert!(LongText::Window { stride: 6 }.check(8, 2).is_err());
        assert!(LongText::Window { stride: 5 }.check(8, 2).is_ok());
        let e = LongText::Window { stride: 300 }
            .check(256, 2)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("--stride 300") && e.contains("254 tokens"),
            "{e}"
        );
        for rule in [
            LongText::Truncate,
            LongText::HeadTail,
            LongText::Window { stride: 64 },
        ] {
            let json = serde_json::to_string(&rule).unwrap();
            assert_eq!(serde_json::from_str::<LongText>(&json).unwrap(), rule);
        }
        assert_eq!(
            serde_json::to_string(&LongText::Window { stride: 64 }).unwrap(),
            r#"{"rule":"window","stride":64}"#
        );
    }

    #[test]
    fn the_tokenizer_applies_the_rule_to_reviews_and_single_texts() {
        let dir = tempfile::tempdir().unwrap();
        let vocab = dir.path().join("vocab.txt");
        std::fs::write(
            &vocab,
            "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\na\nb\nc\nd\ne\n",
        )
        .unwrap();
        let tok = crate::TextTokenizer::from_vocab(&vocab, true, 6).unwrap();
        let text = "a b c d e a b c d e"; // 10 tokens, windows of 4 advancing by 3
        let review = crate::Review {
            row: 7,
            text: text.into(),
            label: 1,
        };
        let windows = tok.with_long_text(LongText::Window { stride: 1 }).unwrap();
        let (encoded, stats) = windows
            .encode_reviews(std::slice::from_ref(&review), "t")
            .unwrap();
        let ids: Vec<Vec<u32>> = encoded.iter().map(|e| e.ids.clone()).collect();
        assert_eq!(
            ids,
            [
                vec![2, 5, 6, 7, 8, 3],
                vec![2, 8, 9, 5, 6, 3],
                vec![2, 6, 7, 8, 9, 3],
            ]
        );
        assert!(
            encoded
                .iter()
                .all(|e| e.row == 7 && e.label == 1 && e.type_ids == [0; 6])
        );
        assert_eq!(
            (stats.examples, stats.sequences, stats.truncated),
            (1, 3, 0)
        );
        let t = windows.encode_marked(text).unwrap();
        assert_eq!(
            (t.ids.clone(), t.more.len(), t.truncated),
            (ids[0].clone(), 2, false)
        );
        assert_eq!(windows.encode_batch_marked(&[text]).unwrap(), vec![t]);
        // Head + tail: one of the four body tokens from the start, three from the end.
        let ht = tok.with_long_text(LongText::HeadTail).unwrap();
        let t = ht.encode_marked(text).unwrap();
        assert_eq!((t.ids, t.truncated), (vec![2, 5, 7, 8, 9, 3], true));
        // The default cuts the end, as before.
        let t = tok.encode_marked(text).unwrap();
        assert_eq!(
            (t.ids, t.truncated, t.more.len()),
            (vec![2, 5, 6, 7, 8, 3], true, 0)
        );
        assert!(tok.with_long_text(LongText::Window { stride: 4 }).is_err());
    }
}

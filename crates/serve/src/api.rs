//! The `/predict` contract: TEI's request (`inputs`, `truncate`, `truncation_direction`,
//! `raw_scores`) plus our `adapter`, read field by field so every refusal names the field and
//! what it expected; and TEI's answer, `[{"score", "label"}, ...]` sorted by score.
//!
//! `inputs` is a string (one text), a list of strings (a batch) or TEI's batch of one-element
//! lists `[["a"], ["b"]]`. TEI reads a two-string list as a text pair (for cross-encoders);
//! our models classify single texts, so here a flat list is a batch, and a two-element inner
//! list is refused as a pair.

use imdb_lora_infer::Side;
use serde::Serialize;
use serde_json::Value;

use crate::ApiError;

/// A `/predict` request, checked.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PredictRequest {
    /// The texts.
    pub texts: Vec<String>,
    /// `inputs` was a list: the answer is a list of answers.
    pub batch: bool,
    /// Cut texts over the limit; `None`: the server's `--auto-truncate`.
    pub truncate: Option<bool>,
    /// Which end is cut.
    pub side: Side,
    /// Logits instead of probabilities.
    pub raw_scores: bool,
    /// The adapter asked for; `None`: the default.
    pub adapter: Option<String>,
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// Parses and checks a request body.
///
/// # Errors
/// 400 for a body that is not a JSON object (the parser's position named); 422 for a field of
/// the wrong type or value, naming it.
pub(crate) fn parse_predict(body: &[u8]) -> Result<PredictRequest, ApiError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("the body is not valid JSON: {e}")))?;
    let Value::Object(mut map) = value else {
        return Err(ApiError::bad_request(format!(
            "the body is {}; expected a JSON object such as {{\"inputs\": \"some text\"}}",
            kind(&value)
        )));
    };
    let inputs = map.remove("inputs").ok_or_else(|| {
        ApiError::unprocessable("missing field `inputs`: a text, or a list of texts")
    })?;
    let (texts, batch) = match inputs {
        Value::String(s) => (vec![s], false),
        Value::Array(items) => {
            let mut texts = Vec::with_capacity(items.len());
            for (i, item) in items.into_iter().enumerate() {
                texts.push(match item {
                    Value::String(s) => s,
                    Value::Array(mut inner) if inner.len() == 1 => match inner.pop() {
                        Some(Value::String(s)) => s,
                        other => {
                            return Err(ApiError::unprocessable(format!(
                                "`inputs[{i}][0]` is {}; expected a text",
                                other.as_ref().map_or("missing", kind)
                            )));
                        }
                    },
                    Value::Array(inner) if inner.len() == 2 => {
                        return Err(ApiError::unprocessable(format!(
                            "`inputs[{i}]` is a text pair; this model classifies single texts"
                        )));
                    }
                    other => {
                        return Err(ApiError::unprocessable(format!(
                            "`inputs[{i}]` is {}; expected a text",
                            kind(&other)
                        )));
                    }
                });
            }
            (texts, true)
        }
        other => {
            return Err(ApiError::unprocessable(format!(
                "`inputs` is {}; expected a text or a list of texts",
                kind(&other)
            )));
        }
    };
    let flag = |map: &mut serde_json::Map<String, Value>, name: &str| match map.remove(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(b)),
        Some(other) => Err(ApiError::unprocessable(format!(
            "`{name}` is {}; expected true or false",
            kind(&other)
        ))),
    };
    let truncate = flag(&mut map, "truncate")?;
    let raw_scores = flag(&mut map, "raw_scores")?.unwrap_or(false);
    let side = match map.remove("truncation_direction") {
        None | Some(Value::Null) => Side::Right,
        Some(Value::String(s)) if s.eq_ignore_ascii_case("right") => Side::Right,
        Some(Value::String(s)) if s.eq_ignore_ascii_case("left") => Side::Left,
        Some(other) => {
            return Err(ApiError::unprocessable(format!(
                "`truncation_direction` is {}; expected \"right\" (keep the head) or \"left\" \
                 (keep the tail)",
                match &other {
                    Value::String(s) => format!("{s:?}"),
                    v => kind(v).to_string(),
                }
            )));
        }
    };
    let adapter = match map.remove("adapter") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s),
        Some(other) => {
            return Err(ApiError::unprocessable(format!(
                "`adapter` is {}; expected an adapter's name",
                kind(&other)
            )));
        }
    };
    Ok(PredictRequest {
        texts,
        batch,
        truncate,
        side,
        raw_scores,
        adapter,
    })
}

/// One class's score, as TEI answers it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Score {
    /// Probability (softmax), or the logit with `raw_scores`.
    pub score: f64,
    /// The class's name.
    pub label: String,
}

/// Every class's score for one text, highest first (the lower index first on a tie).
pub(crate) fn scores(labels: &[String], logits: &[f32], raw: bool) -> Vec<Score> {
    let values: Vec<f64> = if raw {
        logits.iter().map(|&l| f64::from(l)).collect()
    } else {
        imdb_lora_infer::softmax(logits)
    };
    let mut out: Vec<(usize, Score)> = labels
        .iter()
        .zip(values)
        .enumerate()
        .map(|(i, (label, score))| {
            (
                i,
                Score {
                    score,
                    label: label.clone(),
                },
            )
        })
        .collect();
    out.sort_by(|(i, a), (j, b)| b.score.total_cmp(&a.score).then(i.cmp(j)));
    out.into_iter().map(|(_, s)| s).collect()
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;

    use super::*;

    fn ok(body: &str) -> PredictRequest {
        parse_predict(body.as_bytes()).unwrap_or_else(|e| panic!("{body}: {e:?}"))
    }

    fn err(body: &[u8]) -> ApiError {
        parse_predict(body).unwrap_err()
    }

    #[test]
    fn tei_shapes_parse() {
        let one = ok(r#"{"inputs": "good"}"#);
        assert_eq!(
            (one.texts.clone(), one.batch),
            (vec!["good".to_string()], false)
        );
        assert_eq!(
            (one.truncate, one.side, one.raw_scores, one.adapter),
            (None, Side::Right, false, None)
        );
        let flat = ok(r#"{"inputs": ["a", "b", "c"], "raw_scores": true}"#);
        assert_eq!(
            (flat.texts.len(), flat.batch, flat.raw_scores),
            (3, true, true)
        );
        let tei = ok(
            r#"{"inputs": [["a"], ["b"]], "truncate": false, "truncation_direction": "Left", "adapter": "x", "other": 1}"#,
        );
        assert_eq!(tei.texts, ["a", "b"]);
        assert_eq!(
            (tei.truncate, tei.side, tei.adapter.as_deref()),
            (Some(false), Side::Left, Some("x"))
        );
        assert!(ok(r#"{"inputs": []}"#).texts.is_empty());
    }

    #[test]
    fn refusals_name_the_field() {
        let e = err(b"{\"inputs\": ");
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert!(e.message.contains("not valid JSON"), "{e:?}");
        assert_eq!(err(b"[1]").status, StatusCode::BAD_REQUEST);
        assert_eq!(err(b"\xff\xfe").status, StatusCode::BAD_REQUEST);
        for (body, field) in [
            (r#"{}"#, "inputs"),
            (r#"{"inputs": 3}"#, "`inputs` is a number"),
            (r#"{"inputs": ["a", 3]}"#, "`inputs[1]` is a number"),
            (r#"{"inputs": [["a", "b"]]}"#, "`inputs[0]` is a text pair"),
            (r#"{"inputs": [[3]]}"#, "`inputs[0][0]` is a number"),
            (
                r#"{"inputs": "a", "truncate": "yes"}"#,
                "`truncate` is a string",
            ),
            (r#"{"inputs": "a", "raw_scores": 1}"#, "`raw_scores`"),
            (r#"{"inputs": "a", "truncation_direction": "up"}"#, "\"up\""),
            (r#"{"inputs": "a", "adapter": 7}"#, "`adapter` is a number"),
        ] {
            let e = err(body.as_bytes());
            assert_eq!(e.status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
            assert!(e.message.contains(field), "{body}: {}", e.message);
        }
    }

    #[test]
    fn scores_are_sorted_probabilities_or_logits() {
        let labels = ["neg".to_string(), "pos".to_string(), "mid".to_string()];
        let s = scores(&labels, &[0.0, 2.0, 0.0], false);
        assert_eq!(
            s.iter().map(|s| s.label.as_str()).collect::<Vec<_>>(),
            ["pos", "neg", "mid"],
            "highest first, ties in label order"
        );
        assert!((s.iter().map(|s| s.score).sum::<f64>() - 1.0).abs() < 1e-12);
        let raw = scores(&labels, &[-1.0, 3.5, 0.25], true);
        assert_eq!(
            (raw[0].score, raw[1].score, raw[2].score),
            (3.5, 0.25, -1.0)
        );
    }
}

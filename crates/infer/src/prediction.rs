//! What a prediction is: [`Prediction`] (the predicted class and every class's probability,
//! serialised in one shape for every model), the label names a model's config gives
//! ([`Labels`]), and the softmax that turns logits into probabilities.

use imdb_lora_encoder::EncoderConfig;
use serde::Serialize;

/// The predicted class of one text, with every class's probability.
///
/// Serialised in one shape for every model, as transformers' `pipeline` names things:
/// `{"text", "label", "score", "probs": {name: probability, ...}}` (`score`: the probability
/// of `label`; classes in the model's label order). A two-label sentiment model (labels named
/// negative/positive, or transformers' generic `LABEL_0`/`LABEL_1`) also has the recipe's
/// fields, right after `text`: `{"text", "neg_prob", "pos_prob", "label", "score", "probs"}`.
///
/// Probabilities are the softmax of the model's logits, computed in f64 (they sum to 1 up to
/// f64 rounding); `label` names the most probable class (the lower index on a tie).
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    /// The input text, unchanged (also when the model saw only its truncated head).
    pub text: String,
    /// Name of the most probable class, from the model's `id2label` (`neg`/`pos` for a
    /// sentiment model with transformers' generic names).
    pub label: String,
    /// Every class's name and probability, in the model's label order.
    pub probs: Vec<(String, f64)>,
    /// For a sentiment model: the output indices of the negative and positive classes.
    sentiment: Option<[usize; 2]>,
}

impl Prediction {
    /// Probability of the negative class, for a sentiment model.
    pub fn neg_prob(&self) -> Option<f64> {
        self.sentiment.map(|[neg, _]| self.probs[neg].1)
    }

    /// Probability of the positive class, for a sentiment model.
    pub fn pos_prob(&self) -> Option<f64> {
        self.sentiment.map(|[_, pos]| self.probs[pos].1)
    }

    /// Probability of the class named `name`.
    pub fn prob(&self, name: &str) -> Option<f64> {
        self.probs.iter().find(|(n, _)| n == name).map(|(_, p)| *p)
    }

    /// Probability of the predicted class, [`Self::label`].
    pub fn score(&self) -> f64 {
        self.prob(&self.label).unwrap_or(0.0)
    }
}

impl Serialize for Prediction {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap as _;

        /// The class probabilities as a JSON object, in label order.
        struct Probs<'a>(&'a [(String, f64)]);
        impl Serialize for Probs<'_> {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let mut map = serializer.serialize_map(Some(self.0.len()))?;
                for (name, p) in self.0 {
                    map.serialize_entry(name, p)?;
                }
                map.end()
            }
        }

        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("text", &self.text)?;
        // The recipe's fields of a sentiment model: formatting, not another shape.
        if let Some([neg, pos]) = self.sentiment {
            map.serialize_entry("neg_prob", &self.probs[neg].1)?;
            map.serialize_entry("pos_prob", &self.probs[pos].1)?;
        }
        map.serialize_entry("label", &self.label)?;
        map.serialize_entry("score", &self.score())?;
        map.serialize_entry("probs", &Probs(&self.probs))?;
        map.end()
    }
}

/// What the classes are called, and which are negative and positive for a sentiment model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Labels {
    /// Display names by output index.
    pub(crate) names: Vec<String>,
    /// For a sentiment model: the output indices of the negative and positive classes.
    pub(crate) sentiment: Option<[usize; 2]>,
}

impl Labels {
    /// From `id2label`. Two labels are a sentiment model when transformers' generic names
    /// (`LABEL_0`/`LABEL_1`, shown as `neg`/`pos` with IMDb's convention: 0 is negative) or
    /// names starting with "neg"/"pos" (any case, either order, so `{"0": "POSITIVE",
    /// "1": "NEGATIVE"}` is read correctly) say so. Everything else is plain classes.
    pub(crate) fn from_config(config: &EncoderConfig) -> Self {
        let mut names: Vec<String> = (0..config.num_labels())
            .map(|i| config.label_name(i))
            .collect();
        if names.len() != 2 {
            return Self {
                names,
                sentiment: None,
            };
        }
        if names[0] == "LABEL_0" && names[1] == "LABEL_1" {
            names = vec!["neg".into(), "pos".into()];
            return Self {
                names,
                sentiment: Some([0, 1]),
            };
        }
        let starts = |n: &str, p: &str| n.to_ascii_lowercase().starts_with(p);
        let sentiment = if starts(&names[0], "neg") && starts(&names[1], "pos") {
            Some([0, 1])
        } else if starts(&names[0], "pos") && starts(&names[1], "neg") {
            Some([1, 0])
        } else {
            None
        };
        Self { names, sentiment }
    }

    /// The prediction for `text` with class probabilities `probs` (in label order): the most
    /// probable class, the first of equal maxima (as `argmax` in PyTorch).
    pub(crate) fn prediction(&self, text: &str, probs: Vec<f64>) -> Prediction {
        let best = (0..probs.len()).fold(0, |b, i| if probs[i] > probs[b] { i } else { b });
        Prediction {
            text: text.to_string(),
            label: self.names[best].clone(),
            probs: self.names.iter().cloned().zip(probs).collect(),
            sentiment: self.sentiment,
        }
    }
}

/// Numerically stable softmax, in f64: the probabilities every [`Prediction`] carries.
pub fn softmax(logits: &[f32]) -> Vec<f64> {
    let m = logits
        .iter()
        .fold(f64::NEG_INFINITY, |m, &l| m.max(f64::from(l)));
    let exps: Vec<f64> = logits.iter().map(|&l| (f64::from(l) - m).exp()).collect();
    let sum: f64 = exps.iter().sum();
    exps.into_iter().map(|e| e / sum).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn softmax_is_stable_and_normalised() {
        let p = softmax(&[1000.0, 999.0]);
        assert!((p[0] + p[1] - 1.0).abs() < 1e-15 && p[0] > p[1]);
        assert_eq!(softmax(&[0.0, 0.0]), [0.5, 0.5]);
        let four = softmax(&[1.0, 2.0, 3.0, 4.0]);
        assert!((four.iter().sum::<f64>() - 1.0).abs() < 1e-15);
        assert!(four.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn label_roles_follow_names() {
        let generic = Labels::from_config(&EncoderConfig::default());
        assert_eq!(
            (generic.names.clone(), generic.sentiment),
            (vec!["neg".to_string(), "pos".to_string()], Some([0, 1]))
        );
        let named = EncoderConfig::default().with_labels(&["NEGATIVE", "POSITIVE"]);
        assert_eq!(Labels::from_config(&named).sentiment, Some([0, 1]));
        let reversed = EncoderConfig::default().with_labels(&["pos", "neg"]);
        assert_eq!(Labels::from_config(&reversed).sentiment, Some([1, 0]));
        let spam = EncoderConfig::default().with_labels(&["ham", "spam"]);
        assert_eq!(Labels::from_config(&spam).sentiment, None);
        let news =
            EncoderConfig::default().with_labels(&["World", "Sports", "Business", "Sci/Tech"]);
        let l = Labels::from_config(&news);
        assert_eq!((l.names.len(), l.sentiment), (4, None));
    }

    fn prediction(names: &[&str], probs: &[f64], sentiment: Option<[usize; 2]>) -> Prediction {
        Prediction {
            text: "a".into(),
            label: names[0].into(),
            probs: names
                .iter()
                .map(|n| n.to_string())
                .zip(probs.iter().copied())
                .collect(),
            sentiment,
        }
    }

    #[test]
    fn prediction_serialises_with_the_documented_fields_in_order() {
        let mut p = prediction(&["neg", "pos"], &[0.25, 0.75], Some([0, 1]));
        p.label = "pos".into();
        assert_eq!(
            serde_json::to_string(&p).unwrap(),
            r#"{"text":"a","neg_prob":0.25,"pos_prob":0.75,"label":"pos","score":0.75,"probs":{"neg":0.25,"pos":0.75}}"#
        );
        assert_eq!((p.neg_prob(), p.pos_prob()), (Some(0.25), Some(0.75)));
        let reversed = prediction(&["POSITIVE", "NEGATIVE"], &[0.75, 0.25], Some([1, 0]));
        assert_eq!(
            serde_json::to_string(&reversed).unwrap(),
            r#"{"text":"a","neg_prob":0.25,"pos_prob":0.75,"label":"POSITIVE","score":0.75,"probs":{"POSITIVE":0.75,"NEGATIVE":0.25}}"#
        );
        let news = prediction(&["World", "Sports", "Sci/Tech"], &[0.5, 0.25, 0.25], None);
        assert_eq!(
            serde_json::to_string(&news).unwrap(),
            r#"{"text":"a","label":"World","score":0.5,"probs":{"World":0.5,"Sports":0.25,"Sci/Tech":0.25}}"#
        );
        assert_eq!((news.neg_prob(), news.prob("Sports")), (None, Some(0.25)));
    }
}

//! `config.json` of any supported family, read and written: the family from `model_type`,
//! then the family's defaults (transformers' configuration class) under the file's values, in
//! the family's own field names (DistilBERT's differ).

use std::path::Path;

use serde_json::Value;

use crate::config::{EncoderConfig, Family, NOT_CARRIED};
use crate::error::EncoderError;

impl EncoderConfig {
    /// Reads and validates a `config.json` of any supported family.
    pub fn from_file(path: &Path) -> Result<Self, EncoderError> {
        let text = std::fs::read_to_string(path).map_err(|source| EncoderError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let value: Value = serde_json::from_str(&text).map_err(|source| EncoderError::Config {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_value(value, path)
    }

    /// Parses and validates a configuration; `path` names it in errors.
    pub fn from_value(value: Value, path: &Path) -> Result<Self, EncoderError> {
        let family = family_of(&value, path)?;
        let config_error = |source| EncoderError::Config {
            path: path.to_path_buf(),
            source,
        };
        let mut config = match family {
            Family::DistilBert => {
                crate::distilbert::config_from_value(value).map_err(config_error)?
            }
            Family::ModernBert => {
                crate::modernbert::config_from_value(value).map_err(config_error)?
            }
            Family::Bert | Family::Roberta | Family::Electra | Family::DebertaV2 => {
                let defaults = match family {
                    Family::Roberta => crate::roberta::default_config(),
                    Family::Electra => crate::electra::default_config(),
                    Family::DebertaV2 => crate::deberta_v2::default_config(),
                    _ => Self::default(),
                };
                let mut merged = serde_json::to_value(&defaults).map_err(config_error)?;
                if let (Value::Object(base), Value::Object(file)) = (&mut merged, value) {
                    base.extend(file);
                }
                if family == Family::DebertaV2 {
                    crate::deberta_v2::config_from_value(merged).map_err(config_error)?
                } else {
                    serde_json::from_value::<Self>(merged).map_err(config_error)?
                }
            }
        };
        config.family = family;
        config.validate(path)?;
        Ok(config)
    }

    /// The configuration as a `config.json` object in the family's own field names; fields
    /// read from a file and not used here are carried over, except [`NOT_CARRIED`].
    pub fn to_json(&self) -> Result<Value, serde_json::Error> {
        let mut value = match self.family {
            Family::DistilBert => crate::distilbert::config_to_value(self)?,
            Family::DebertaV2 => crate::deberta_v2::config_to_value(self)?,
            Family::ModernBert => crate::modernbert::config_to_value(self)?,
            Family::Bert | Family::Roberta | Family::Electra => serde_json::to_value(self)?,
        };
        if let Value::Object(map) = &mut value {
            map.retain(|k, v| {
                let written_anew = NOT_CARRIED.contains(&k.as_str());
                let implied = k == "num_labels" && v.is_null();
                !(written_anew || implied)
            });
        }
        Ok(value)
    }
}

/// The family of a parsed `config.json`: its `model_type`, else (older BERT exports) a
/// `Bert*` architecture.
fn family_of(value: &Value, path: &Path) -> Result<Family, EncoderError> {
    let model_type = value.get("model_type").and_then(Value::as_str);
    let bert_architecture = value
        .get("architectures")
        .and_then(Value::as_array)
        .is_some_and(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .any(|n| n.starts_with("Bert"))
        });
    match model_type {
        Some(t) => Family::of_model_type(t),
        None if bert_architecture => Some(Family::Bert),
        None => None,
    }
    .ok_or_else(|| EncoderError::UnsupportedModelType {
        path: path.to_path_buf(),
        found: model_type.unwrap_or("<no model_type>").to_string(),
        supported: Family::supported_model_types(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::HiddenAct;

    fn parse(json: &str) -> Result<EncoderConfig, EncoderError> {
        let value: Value = serde_json::from_str(json).map_err(|source| EncoderError::Config {
            path: "config.json".into(),
            source,
        })?;
        EncoderConfig::from_value(value, Path::new("config.json"))
    }

    #[test]
    fn minilm_config_parses_with_unknown_fields() {
        let c = parse(
            r#"{"_name_or_path": "x", "architectures": ["BertModel"], "gradient_checkpointing": false,
            "hidden_act": "gelu", "hidden_size": 384, "intermediate_size": 1536, "model_type": "bert",
            "num_attention_heads": 12, "num_hidden_layers": 6, "use_cache": true}"#,
        )
        .unwrap();
        assert_eq!(
            (c.hidden_size, c.head_dim(), c.num_hidden_layers),
            (384, 32, 6)
        );
        assert_eq!((c.vocab_size, c.layer_norm_eps), (30522, 1e-12));
        assert_eq!(c.num_labels(), 2);
        assert_eq!(c.label_name(1), "LABEL_1");
        assert_eq!(c.family, Family::Bert);
        // Unused fields travel on; the ones the writer sets anew do not.
        let json = c.to_json().unwrap();
        assert_eq!(json["use_cache"], true);
        assert!(json.get("_name_or_path").is_none());
    }

    #[test]
    fn labels_follow_transformers_precedence() {
        let c = parse(r#"{"model_type": "bert", "id2label": {"0": "neg", "1": "pos"}}"#).unwrap();
        assert_eq!((c.num_labels(), c.label_name(1)), (2, "pos".to_string()));
        let c = parse(r#"{"model_type": "bert", "num_labels": 3}"#).unwrap();
        assert_eq!(c.num_labels(), 3);
        let c = EncoderConfig::default().with_labels(&["neg", "pos"]);
        assert_eq!(c.label2id.as_ref().unwrap()["pos"], 1);
    }

    #[test]
    fn each_family_takes_its_own_defaults() {
        let r = parse(r#"{"model_type": "xlm-roberta"}"#).unwrap();
        assert_eq!(
            (r.family, r.vocab_size, r.pad_token_id),
            (Family::Roberta, 50265, 1)
        );
        assert_eq!(
            r.classification_architecture(),
            "XLMRobertaForSequenceClassification"
        );
        let r = parse(r#"{"model_type": "roberta", "max_position_embeddings": 514}"#).unwrap();
        assert_eq!(r.max_sequence_length(), 512);
        let e = parse(r#"{"model_type": "electra"}"#).unwrap();
        assert_eq!((e.embedding_width(), e.hidden_size), (128, 256));
        let d = parse(r#"{"model_type": "distilbert", "dim": 36, "n_heads": 3, "n_layers": 2, "hidden_dim": 52}"#)
            .unwrap();
        assert_eq!(
            (
                d.family,
                d.hidden_size,
                d.num_attention_heads,
                d.intermediate_size,
                d.type_vocab_size
            ),
            (Family::DistilBert, 36, 3, 52, 0)
        );
        let back = d.to_json().unwrap();
        assert_eq!(
            (back["dim"].as_u64(), back["n_layers"].as_u64()),
            (Some(36), Some(2))
        );
        assert!(back.get("hidden_size").is_none());
    }

    #[test]
    fn unsupported_and_inconsistent_configs_are_refused() {
        let err = parse(r#"{"model_type": "gpt2"}"#).unwrap_err();
        assert!(
            matches!(err, EncoderError::UnsupportedModelType { .. }),
            "{err}"
        );
        let msg = err.to_string();
        assert!(
            msg.contains("gpt2") && msg.contains("xlm-roberta") && msg.contains("distilbert"),
            "{msg}"
        );
        let err = parse(r#"{"model_type": "bert", "hidden_size": 100}"#).unwrap_err();
        assert!(err.to_string().contains("num_attention_heads"), "{err}");
        let err = parse(r#"{"model_type": "bert", "hidden_act": "swish"}"#).unwrap_err();
        assert!(err.to_string().contains("config.json"), "{err}");
        let err = parse(r#"{"model_type": "bert", "position_embedding_type": "relative_key"}"#)
            .unwrap_err();
        assert!(err.to_string().contains("relative_key"), "{err}");
        let err = parse(r#"{"model_type": "bert", "id2label": {"0": "a", "7": "b"}}"#).unwrap_err();
        assert!(err.to_string().contains("\"7\""), "{err}");
        let err = parse(r#"{"model_type": "roberta", "max_position_embeddings": 2}"#).unwrap_err();
        assert!(err.to_string().contains("pad_token_id"), "{err}");
    }

    #[test]
    fn absurd_sizes_are_refused_naming_the_key_before_anything_is_built() {
        for (json, key) in [
            (
                r#"{"model_type": "bert", "num_labels": 1000000000}"#,
                "num_labels",
            ),
            (
                r#"{"model_type": "bert", "hidden_size": 1200000000, "num_attention_heads": 1}"#,
                "hidden_size",
            ),
            (
                r#"{"model_type": "bert", "num_hidden_layers": 0}"#,
                "num_hidden_layers",
            ),
            (
                r#"{"model_type": "bert", "max_position_embeddings": 4294967296}"#,
                "max_position_embeddings",
            ),
            (r#"{"model_type": "bert", "vocab_size": 0}"#, "vocab_size"),
            (
                r#"{"model_type": "bert", "type_vocab_size": 0}"#,
                "type_vocab_size",
            ),
            (
                r#"{"model_type": "bert", "vocab_size": 2000000, "hidden_size": 12288}"#,
                "vocab_size × embedding_size",
            ),
            (
                r#"{"model_type": "bert", "pad_token_id": 30522}"#,
                "pad_token_id",
            ),
            (
                r#"{"model_type": "electra", "embedding_size": 100000}"#,
                "embedding_size",
            ),
            (
                r#"{"model_type": "distilbert", "n_layers": 0}"#,
                "num_hidden_layers",
            ),
        ] {
            let err = parse(json).unwrap_err().to_string();
            assert!(
                err.contains(key) && err.contains("config.json"),
                "{json}: {err}"
            );
        }
        // bert-large's sizes pass.
        parse(r#"{"model_type": "bert", "hidden_size": 1024, "num_attention_heads": 16, "num_hidden_layers": 24, "intermediate_size": 4096}"#).unwrap();
    }

    #[test]
    fn approximate_gelu_names_are_accepted() {
        for name in ["gelu_new", "gelu_pytorch_tanh"] {
            let c = parse(&format!(
                r#"{{"model_type": "bert", "hidden_act": "{name}"}}"#
            ))
            .unwrap();
            assert_eq!(c.hidden_act, HiddenAct::GeluTanh);
        }
    }
}

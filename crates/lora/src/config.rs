//! The LoRA hyper-parameters, named and defaulted as in PEFT's `LoraConfig`.

use serde::{Deserialize, Serialize};

use crate::LoraError;

/// LoRA hyper-parameters.
///
/// Field names follow PEFT's `adapter_config.json` (`r`, `lora_alpha`, `lora_dropout`,
/// `target_modules`, `layers_to_transform`, `use_rslora`) so the struct reads like the file.
/// The defaults are those of the project (r = 8, alpha = 16, dropout = 0.1, query + value).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoraConfig {
    /// Rank of the update `B·A`.
    pub r: usize,
    /// Scaling numerator: the update is multiplied by `lora_alpha / r`.
    pub lora_alpha: f64,
    /// Dropout applied to the adapter's input during training only.
    pub lora_dropout: f64,
    /// Names of the modules to adapt, as PEFT's `adapter_config.json` lists them (`query`,
    /// `value`, ...). Only data here: which modules a name selects is the model's rule.
    pub target_modules: Vec<String>,
    /// Only adapt these layer indices; `None` adapts every layer.
    #[serde(default)]
    pub layers_to_transform: Option<Vec<usize>>,
    /// Rank-stabilised LoRA: scale by `lora_alpha / sqrt(r)` instead of `lora_alpha / r`.
    #[serde(default)]
    pub use_rslora: bool,
    /// Modules trained and saved in full beside the adapters (PEFT's field); `None`: PEFT's
    /// default for sequence classification. Only data here, as `target_modules` is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modules_to_save: Option<Vec<String>>,
}

impl Default for LoraConfig {
    fn default() -> Self {
        Self {
            r: 8,
            lora_alpha: 16.0,
            lora_dropout: 0.1,
            target_modules: vec!["query".into(), "value".into()],
            layers_to_transform: None,
            use_rslora: false,
            modules_to_save: None,
        }
    }
}

impl LoraConfig {
    /// The factor applied to `B·A·x`.
    pub fn scaling(&self) -> f64 {
        if self.use_rslora {
            self.lora_alpha / (self.r as f64).sqrt()
        } else {
            self.lora_alpha / self.r as f64
        }
    }

    /// Whether layer `index` receives adapters.
    pub fn adapts_layer(&self, index: usize) -> bool {
        self.layers_to_transform
            .as_ref()
            .is_none_or(|layers| layers.contains(&index))
    }

    /// Checks ranges PEFT would also refuse, before any tensor is allocated.
    pub fn validate(&self) -> Result<(), LoraError> {
        if self.r == 0 {
            return Err(LoraError::InvalidConfig {
                field: "r",
                value: self.r.to_string(),
                expected: "a rank of at least 1",
            });
        }
        if !(self.lora_alpha.is_finite() && self.lora_alpha > 0.0) {
            return Err(LoraError::InvalidConfig {
                field: "lora_alpha",
                value: self.lora_alpha.to_string(),
                expected: "a finite positive number",
            });
        }
        if !(0.0..1.0).contains(&self.lora_dropout) {
            return Err(LoraError::InvalidConfig {
                field: "lora_dropout",
                value: self.lora_dropout.to_string(),
                expected: "a probability in [0, 1)",
            });
        }
        if self.target_modules.is_empty() {
            return Err(LoraError::InvalidConfig {
                field: "target_modules",
                value: "[]".into(),
                expected: "at least one module name",
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_projects() {
        let c = LoraConfig::default();
        assert_eq!((c.r, c.lora_alpha, c.lora_dropout), (8, 16.0, 0.1));
        assert_eq!(c.target_modules, ["query", "value"]);
        assert_eq!(c.scaling(), 2.0);
        assert!(c.validate().is_ok());
    }

    #[test]
    fn rslora_scales_by_square_root() {
        let c = LoraConfig {
            r: 16,
            use_rslora: true,
            ..LoraConfig::default()
        };
        assert_eq!(c.scaling(), 4.0);
    }

    #[test]
    fn layer_and_module_selection() {
        let c = LoraConfig {
            layers_to_transform: Some(vec![1, 3]),
            ..LoraConfig::default()
        };
        assert!(c.adapts_layer(1) && c.adapts_layer(3));
        assert!(!c.adapts_layer(0));
        let targeted = |name: &str| c.target_modules.iter().any(|t| t == name);
        assert!(targeted("query") && !targeted("key"));
        assert!(LoraConfig::default().adapts_layer(11));
    }

    #[test]
    fn invalid_values_are_named() {
        for (c, field) in [
            (
                LoraConfig {
                    r: 0,
                    ..LoraConfig::default()
                },
                "r",
            ),
            (
                LoraConfig {
                    lora_alpha: f64::NAN,
                    ..LoraConfig::default()
                },
                "lora_alpha",
            ),
            (
                LoraConfig {
                    lora_dropout: 1.0,
                    ..LoraConfig::default()
                },
                "lora_dropout",
            ),
            (
                LoraConfig {
                    target_modules: vec![],
                    ..LoraConfig::default()
                },
                "target_modules",
            ),
        ] {
            let err = c.validate().unwrap_err();
            assert!(err.to_string().contains(field), "{err}");
        }
    }
}

//! Which modules a LoRA configuration adapts, by PEFT's rules.
//!
//! PEFT matches each name in `target_modules` against every module path of the model it
//! wraps (`roberta.encoder.layer.0.attention.self.query`): a name selects a module when it
//! equals the path or is a dot-separated suffix of it, so `query` selects every layer's
//! query and a full path (what PEFT writes for `all-linear`) selects one module.
//! `all-linear` selects every linear layer but the classification head; names that select a
//! head module (`classifier.dense`, `pre_classifier`) adapt nothing, because PEFT trains
//! those modules in full (`modules_to_save`).

use crate::config::Family;
use crate::error::EncoderError;

/// PEFT's shorthand for every linear layer of the backbone.
pub const ALL_LINEAR: &str = "all-linear";

/// PEFT's `modules_to_save` for sequence classification (`SEQ_CLS`): the head's module names
/// across transformers' classes.
pub const DEFAULT_MODULES_TO_SAVE: [&str; 2] = ["classifier", "score"];

/// Whether a LoRA target name selects the module at `module_path` (PEFT's rule: the target
/// equals the path or is a dot-separated suffix of it).
pub fn target_matches(target: &str, module_path: &str) -> bool {
    module_path == target || module_path.ends_with(&format!(".{target}"))
}

/// Whether any of `targets` selects the projection at `module_path` (a full path from the
/// classifier's root).
pub(crate) fn selects(targets: &[String], module_path: &str) -> bool {
    targets
        .iter()
        .any(|t| t == ALL_LINEAR || target_matches(t, module_path))
}

/// The path from the classifier's root to layer `i` (`bert.encoder.layer.3`,
/// `distilbert.transformer.layer.3`), as transformers and PEFT name it.
pub fn layer_path(family: Family, i: usize) -> String {
    let stack = match family {
        Family::DistilBert => "transformer.layer",
        Family::ModernBert => "layers",
        _ => "encoder.layer",
    };
    format!("{}.{stack}.{i}", family.base_model_prefix())
}

/// Refuses a target that selects nothing: neither a projection (`projection_paths`, full
/// paths; `layer_names` are the same within one layer, for the message) nor a head module
/// (`head_modules`), rather than silently adapting nothing.
pub(crate) fn check_targets(
    family: Family,
    targets: &[String],
    projection_paths: &[String],
    layer_names: &[&str],
    head_modules: &[&str],
) -> Result<(), EncoderError> {
    for target in targets {
        if target == ALL_LINEAR {
            continue;
        }
        let selects_projection = projection_paths.iter().any(|p| target_matches(target, p));
        let selects_head = head_modules
            .iter()
            .any(|m| target_matches(target, m) || *m == target);
        if !selects_projection && !selects_head {
            return Err(EncoderError::Input(format!(
                "LoRA target module {target:?} selects no module of this {family:?} model; \
                 it has {layer_names:?} in every layer (or `{ALL_LINEAR}`)"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffix_rule_is_peft_s() {
        let p = "roberta.encoder.layer.0.attention.self.query";
        assert!(target_matches("query", p));
        assert!(target_matches("self.query", p));
        assert!(target_matches(p, p));
        assert!(!target_matches("ery", p));
        assert!(!target_matches(
            "roberta.encoder.layer.1.attention.self.query",
            p
        ));
        assert!(selects(&["all-linear".into()], p));
    }

    #[test]
    fn layer_paths_follow_transformers() {
        assert_eq!(layer_path(Family::Bert, 2), "bert.encoder.layer.2");
        assert_eq!(
            layer_path(Family::DistilBert, 0),
            "distilbert.transformer.layer.0"
        );
    }

    #[test]
    fn unknown_targets_name_the_family_s_modules() {
        let paths = vec![
            "distilbert.transformer.layer.0.attention.q_lin".to_string(),
            "distilbert.transformer.layer.0.ffn.lin1".to_string(),
        ];
        let err = check_targets(
            Family::DistilBert,
            &["query".into()],
            &paths,
            &["attention.q_lin", "ffn.lin1"],
            &["pre_classifier", "classifier"],
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("\"query\"") && err.contains("attention.q_lin"),
            "{err}"
        );
        check_targets(
            Family::DistilBert,
            &["q_lin".into(), "pre_classifier".into(), "all-linear".into()],
            &paths,
            &[],
            &["pre_classifier", "classifier"],
        )
        .unwrap();
    }
}

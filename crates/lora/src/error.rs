//! Errors raised while configuring or manipulating LoRA layers.

/// What can go wrong with a LoRA configuration or layer.
#[derive(Debug, thiserror::Error)]
pub enum LoraError {
    /// A configuration value is out of its valid range.
    #[error("invalid LoRA configuration: {field} = {value} ({expected})")]
    InvalidConfig {
        /// The offending field, by its PEFT name.
        field: &'static str,
        /// The value found, rendered as text.
        value: String,
        /// What was expected instead.
        expected: &'static str,
    },
    /// Adapter factors whose shapes do not fit the wrapped layer.
    #[error("LoRA factor {factor} has shape {found:?}, expected {expected:?}")]
    FactorShape {
        /// `lora_A` or `lora_B`.
        factor: &'static str,
        /// The shape required by the base layer and the rank.
        expected: [usize; 2],
        /// The shape given.
        found: [usize; 2],
    },
    /// An adapter cannot be folded into int8 weights.
    #[error(
        "a LoRA adapter cannot be merged into an int8 base layer: merge it into the float \
         weights first, then quantise"
    )]
    Int8Merge,
}

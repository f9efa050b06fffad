//! ELECTRA discriminators (`model_type` `electra`): BERT's encoder
//! ([`crate::bert::BertModel`]) under the `electra.` prefix, with transformers'
//! `modeling_electra.py` differences:
//!
//! - embeddings of their own width (`embedding_size`), projected to `hidden_size` by
//!   `embeddings_project` when the two differ (the small and base checkpoints);
//! - no pooler: `ElectraClassificationHead` reads `[CLS]` (dropout → dense → GELU → dropout →
//!   `out_proj`; [`crate::heads::ClassificationHead`]).
//!
//! Generators and the pre-training discriminator head (`discriminator_predictions.*`) are
//! not classifiers: their extra tensors are ignored on loading.

use crate::config::{EncoderConfig, Family};

/// `transformers.ElectraConfig()`'s defaults (electra-small-discriminator's shapes).
pub fn default_config() -> EncoderConfig {
    EncoderConfig {
        family: Family::Electra,
        model_type: Some("electra".into()),
        embedding_size: Some(128),
        hidden_size: 256,
        num_attention_heads: 4,
        intermediate_size: 1024,
        ..EncoderConfig::default()
    }
}

//! RoBERTa, XLM-RoBERTa and CamemBERT (`model_type` `roberta`, `xlm-roberta`, `camembert`):
//! BERT's encoder ([`crate::bert::BertModel`]) under the `roberta.` prefix, with
//! transformers' `modeling_roberta.py` differences:
//!
//! - positions: `padding_idx + 1` onward for each non-padding token and `padding_idx` for
//!   padding ([`crate::bert::Positions::AfterPadding`]), so a 514-row table covers 512 tokens;
//! - one token type (`type_vocab_size` 1 in the published checkpoints);
//! - no pooler: `RobertaClassificationHead` reads `<s>` (dropout → dense → tanh → dropout →
//!   `out_proj`; [`crate::heads::ClassificationHead`]).
//!
//! The three `model_type`s share one implementation, as transformers' classes share one
//! architecture; they differ in their tokenizers (byte-level BPE for RoBERTa, SentencePiece
//! Unigram for XLM-R and CamemBERT), which come from each checkpoint's `tokenizer.json`.

use crate::config::{EncoderConfig, Family};

/// `transformers.RobertaConfig()`'s defaults (those of XLMRobertaConfig and CamembertConfig
/// too): BERT's but for the vocabulary and the special tokens' ids.
pub fn default_config() -> EncoderConfig {
    EncoderConfig {
        family: Family::Roberta,
        model_type: Some("roberta".into()),
        vocab_size: 50265,
        pad_token_id: 1,
        ..EncoderConfig::default()
    }
}

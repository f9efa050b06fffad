//! Text classification with a fine-tuned BERT classifier (IMDb sentiment, or any label set):
//! load once, label batches of texts.
//!
//! A [`Predictor`] comes from a saved model directory (what `imdb_lora_encoder::save_pretrained` writes,
//! plus tokenizer files, or any Hugging Face `SequenceClassifier` checkpoint with
//! two or more labels) or from a base model and PEFT LoRA adapter directories ([`Adapter`]):
//! one is merged, several share the base unmerged and are picked by index
//! ([`Predictor::logits`]). [`TextInput`] is its tokenizer, shareable across threads. [`Predictor::predict`] tokenises (truncating to `max_len`, default 256, with a
//! warning naming each truncated text), batches by length to limit padding, and returns one
//! [`Prediction`] per text, in input order, with softmax probabilities: for a sentiment model
//! the recipe's `{"text", "neg_prob", "pos_prob", "label"}`, otherwise
//! `{"text", "label", "probs": {name: p, ...}}`.
//!
//! The crate is generic over the Burn backend; the binary picks one.

mod error;
mod files;
mod input;
mod prediction;
mod predictor;

pub use error::InferError;
pub use files::ModelFiles;
pub use imdb_lora_data::long_text::mean_logits;
pub use imdb_lora_data::{Side, Tokens};
pub use input::TextInput;
pub use prediction::{Prediction, softmax};
pub use predictor::{
    Adapter, ClassifierInfo, DEFAULT_BATCH_SIZE, DEFAULT_MAX_LEN, PredictOptions, Predictor,
};

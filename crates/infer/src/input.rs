//! [`TextInput`]: how texts become model inputs — the model's tokenizer, cutting a long text
//! at `max_len` from either end. Cloneable and shareable across threads, so a server can
//! tokenise off the thread that runs the model.

use imdb_lora_data::{Side, TextTokenizer, Tokens};

use crate::InferError;

/// The model's tokenizer, twice: one keeps a long text's head, one its tail.
#[derive(Debug, Clone)]
pub struct TextInput {
    head: TextTokenizer,
    tail: TextTokenizer,
}

impl TextInput {
    /// From a tokenizer configured at the model's `max_len`.
    pub(crate) fn new(head: TextTokenizer) -> Result<Self, InferError> {
        let tail = head.truncating_from(Side::Left)?;
        Ok(Self { head, tail })
    }

    /// The longest token sequence given to the model, special tokens included.
    pub fn max_len(&self) -> usize {
        self.head.max_len()
    }

    /// Id of the padding token.
    pub fn pad_id(&self) -> u32 {
        self.head.pad_id()
    }

    fn side(&self, side: Side) -> &TextTokenizer {
        match side {
            Side::Right => &self.head,
            Side::Left => &self.tail,
        }
    }

    /// One text as token ids (`[CLS] ... [SEP]`), cut at `max_len` from `side` if longer,
    /// with whether it was; on the calling thread.
    pub fn encode(&self, text: &str, side: Side) -> Result<Tokens, InferError> {
        Ok(self.side(side).encode_marked(text)?)
    }

    /// Many texts, in parallel (the tokenizer's thread pool).
    pub fn encode_batch(&self, texts: &[&str], side: Side) -> Result<Vec<Tokens>, InferError> {
        Ok(self.side(side).encode_batch_marked(texts)?)
    }
}

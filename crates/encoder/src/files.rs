//! The file names of a Hugging Face BERT model directory: the model defines what a checkpoint
//! is made of, so the Hub client, the exporter and the predictor all take the names from here.

/// File name of the model configuration.
pub const CONFIG_FILE: &str = "config.json";
/// File name of the model weights.
pub const WEIGHTS_FILE: &str = "model.safetensors";
/// The files without which a directory holds no loadable model.
pub const REQUIRED_FILES: [&str; 2] = [CONFIG_FILE, WEIGHTS_FILE];

/// The fast tokenizer's file, preferred when present.
pub const TOKENIZER_JSON: &str = "tokenizer.json";
/// The WordPiece vocabulary, the fallback when there is no [`TOKENIZER_JSON`].
pub const VOCAB_FILE: &str = "vocab.txt";
/// Tokenizer files a model directory may carry, in this order:
/// [`crate::export::copy_tokenizer_files`] copies those present. A directory needs at least
/// one of the first two ([`TOKENIZER_JSON`], [`VOCAB_FILE`]) to be tokenised.
pub const TOKENIZER_FILES: [&str; 4] = [
    TOKENIZER_JSON,
    VOCAB_FILE,
    "tokenizer_config.json",
    "special_tokens_map.json",
];

//! Tokenisation with the Hugging Face `tokenizers` crate: the text between the model's own
//! special tokens (`[CLS] text [SEP]`, `<s> text </s>`), truncated to `max_len`, never padded
//! (padding is per batch, see [`crate::batch`]), encoded in parallel.
//!
//! The tokenizer comes from `tokenizer.json` when the model has one (bit-for-bit the Python fast
//! tokenizer, whatever its model: WordPiece, byte-level BPE, Unigram with Metaspace; its
//! post-processor adds the special tokens as transformers does), else it is built from
//! `vocab.txt` exactly as `transformers`' `BertTokenizerFast` does (BertNormalizer with the model's `do_lower_case`, BertPreTokenizer, WordPiece with `##`
//! continuation and 100-character word limit, `[CLS] $A [SEP]`). Whatever truncation or padding a
//! `tokenizer.json` carries is overridden: all-MiniLM-L6-v2's, for instance, pads every sequence to
//! 128, which would both waste compute and silently cap the length.

use std::path::{Path, PathBuf};
use std::time::Instant;

use tokenizers::decoders::wordpiece::WordPiece as WordPieceDecoder;
use tokenizers::models::wordpiece::WordPiece;
use tokenizers::normalizers::BertNormalizer;
use tokenizers::pre_tokenizers::bert::BertPreTokenizer;
use tokenizers::processors::bert::BertProcessing;
use tokenizers::{
    AddedToken, Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy,
};

use crate::error::{Error, Result, panic_message};
use crate::example::Review;
use crate::long_text::LongText;

/// The padding tokens of the supported families' vocabularies, in the order looked for:
/// WordPiece's (BERT, ELECTRA, DistilBERT), then SentencePiece's and byte-level BPE's
/// (RoBERTa, XLM-R, CamemBERT).
const PAD_TOKENS: [&str; 2] = ["[PAD]", "<pad>"];

/// Default sequence length cap.
pub const DEFAULT_MAX_LEN: usize = 256;
/// Largest supported `max_len`: ModernBERT's 8,192 rotary positions, the longest of any
/// supported family (BERT-shaped models have 512 position embeddings; each model's own limit
/// is checked against its configuration, `EncoderConfig::max_sequence_length`).
pub const MAX_SUPPORTED_LEN: usize = 8192;
/// Smallest useful `max_len`: `[CLS]` and `[SEP]`.
pub const MIN_LEN: usize = 2;
/// Texts encoded per parallel call: bounds the memory of intermediate `Encoding`s (which hold
/// token strings and offsets) while keeping enough work per call for all cores.
const ENCODE_CHUNK: usize = 2048;

/// The fast tokenizer's file, preferred when present.
pub const TOKENIZER_JSON: &str = "tokenizer.json";
/// The WordPiece vocabulary, the fallback.
pub const VOCAB_FILE: &str = "vocab.txt";
/// Where `do_lower_case` is read from when building from [`VOCAB_FILE`].
pub const TOKENIZER_CONFIG: &str = "tokenizer_config.json";

/// BERT's special tokens, in the order BERT's vocab lists them.
const SPECIAL_TOKENS: [&str; 5] = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"];

/// Which end of a long text is cut off.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Side {
    /// Keep the head (transformers' default `truncation_side="right"`).
    #[default]
    Right,
    /// Keep the tail.
    Left,
}

/// One text's token ids, and whether part of it was left out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tokens {
    /// `[CLS] ... [SEP]`, at most `max_len` (under [`LongText::Window`], the first window).
    pub ids: Vec<u32>,
    /// The text had more tokens than `max_len` and some were left out.
    pub truncated: bool,
    /// The further windows of a long text under [`LongText::Window`], in order (empty
    /// otherwise): its prediction is the mean of the logits of `ids` and these.
    pub more: Vec<Vec<u32>>,
}

impl Tokens {
    /// Every sequence of the text: `ids`, then the further windows.
    pub fn sequences(&self) -> impl Iterator<Item = &Vec<u32>> {
        std::iter::once(&self.ids).chain(&self.more)
    }
}

/// A review as token ids.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Encoded {
    /// 0-based row in the source file.
    pub row: usize,
    /// The class index (IMDb: 0 = negative, 1 = positive).
    pub label: u32,
    /// Token ids, `[CLS] ... [SEP]`, at most `max_len`.
    pub ids: Vec<u32>,
    /// Token type (segment) ids, same length as `ids` (all 0 for single texts).
    pub type_ids: Vec<u32>,
}

/// Summary of a tokenisation run.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct TokenizeStats {
    /// Number of texts.
    pub examples: usize,
    /// Total tokens kept (after truncation).
    pub tokens: u64,
    /// Texts that were longer than `max_len` and got truncated.
    pub truncated: usize,
    /// Longest kept sequence.
    pub longest: usize,
    /// Sequences given to the model: the texts, or more under [`LongText::Window`].
    pub sequences: usize,
    /// Wall time in seconds.
    pub seconds: f64,
}

impl TokenizeStats {
    /// Mean kept length.
    pub fn mean_len(&self) -> f64 {
        if self.examples == 0 {
            0.0
        } else {
            self.tokens as f64 / self.examples as f64
        }
    }
}

/// Where a tokenizer's files are (a model directory, a Hub snapshot): what
/// [`TextTokenizer::from_files`] loads. At least one of `tokenizer_json` and `vocab` is needed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TokenizerFiles {
    /// Where they came from, for messages (`directory ...`, `model owner/name@main`).
    pub source: String,
    /// [`TOKENIZER_JSON`], if there is one.
    pub tokenizer_json: Option<PathBuf>,
    /// [`VOCAB_FILE`], if there is one.
    pub vocab: Option<PathBuf>,
    /// [`TOKENIZER_CONFIG`], if there is one.
    pub tokenizer_config: Option<PathBuf>,
}

impl TokenizerFiles {
    /// The files present in `dir`.
    pub fn in_dir(dir: &Path) -> TokenizerFiles {
        let opt = |name: &str| Some(dir.join(name)).filter(|p| p.is_file());
        TokenizerFiles {
            source: format!("directory {}", dir.display()),
            tokenizer_json: opt(TOKENIZER_JSON),
            vocab: opt(VOCAB_FILE),
            tokenizer_config: opt(TOKENIZER_CONFIG),
        }
    }
}

/// A BERT WordPiece tokenizer configured for this pipeline.
#[derive(Clone, Debug)]
pub struct TextTokenizer {
    inner: Tokenizer,
    max_len: usize,
    pad_id: u32,
    source: PathBuf,
    /// The largest id in the vocabulary (added tokens included).
    max_token_id: u32,
    /// The largest token type id the post-processor gives a single text.
    max_type_id: u32,
    /// How texts longer than `max_len` are given to the model; when not
    /// [`LongText::Truncate`], `inner` encodes whole texts and [`LongText::sequences`] cuts.
    long_text: LongText,
    /// Special tokens the post-processor puts before and after a single text.
    specials: (usize, usize),
}

/// Parses a `tokenizer.json` without letting the `tokenizers` crate panic on it.
///
/// The crate's deserialisers `expect` where they should return errors: a JSON syntax error
/// inside the `decoder` object panics with "Helper: Error(...)", and a `Precompiled`
/// normaliser with a malformed charsmap panics with "Precompiled" (both found by the fuzz
/// harness, `crates/fuzz`). So the text is first checked to be JSON (syntax errors become an
/// error with line and column), and the parse itself runs under `catch_unwind`, which turns
/// any panic left into [`Error::TokenizerLoad`] naming the file. Catching is sound here: the
/// parse builds a fresh value from a string and touches no shared state, so nothing is left
/// half-updated (the default panic hook still prints the crate's message to stderr).
fn read_tokenizer_json(path: &Path) -> Result<Tokenizer> {
    let load_err = |source: crate::error::BoxError| Error::TokenizerLoad {
        path: path.to_path_buf(),
        source,
    };
    let text = std::fs::read_to_string(path).map_err(|e| load_err(e.into()))?;
    serde_json::from_str::<serde_json::Value>(&text)
        .map_err(|e| load_err(format!("not valid JSON: {e}").into()))?;
    match std::panic::catch_unwind(|| text.parse::<Tokenizer>()) {
        Ok(parsed) => parsed.map_err(load_err),
        Err(panic) => Err(load_err(
            format!(
                "the tokenizers library failed on it ({}); the file is damaged or not a \
                 tokenizers tokenizer.json",
                panic_message(panic.as_ref())
            )
            .into(),
        )),
    }
}

/// Single texts cut at `max_len` tokens (special tokens included) from `side`.
fn truncation(max_len: usize, side: Side) -> TruncationParams {
    TruncationParams {
        max_length: max_len,
        strategy: TruncationStrategy::LongestFirst,
        stride: 0,
        direction: match side {
            Side::Right => TruncationDirection::Right,
            Side::Left => TruncationDirection::Left,
        },
    }
}

fn check_max_len(max_len: usize) -> Result<()> {
    if (MIN_LEN..=MAX_SUPPORTED_LEN).contains(&max_len) {
        Ok(())
    } else {
        Err(Error::MaxLen {
            found: max_len,
            min: MIN_LEN,
            max: MAX_SUPPORTED_LEN,
        })
    }
}

impl TextTokenizer {
    /// Load a `tokenizer.json`.
    pub fn from_tokenizer_json(path: &Path, max_len: usize) -> Result<TextTokenizer> {
        check_max_len(max_len)?;
        let inner = read_tokenizer_json(path)?;
        Self::configure(inner, path, max_len)
    }

    /// Build BERT's tokenizer from a WordPiece `vocab.txt` (one token per line, id = line number).
    pub fn from_vocab(path: &Path, lowercase: bool, max_len: usize) -> Result<TextTokenizer> {
        check_max_len(max_len)?;
        let load_err = |source| Error::TokenizerLoad {
            path: path.to_path_buf(),
            source,
        };
        let path_str = path
            .to_str()
            .ok_or_else(|| load_err("path is not valid UTF-8".into()))?;
        let vocab = WordPiece::read_file(path_str).map_err(load_err)?;
        let id = |token: &'static str| {
            vocab
                .get(token)
                .copied()
                .ok_or_else(|| Error::MissingSpecialToken {
                    path: path.to_path_buf(),
                    token,
                })
        };
        let (cls, sep) = (id("[CLS]")?, id("[SEP]")?);
        let model = WordPiece::builder()
            .vocab(vocab)
            .unk_token("[UNK]".into())
            .continuing_subword_prefix("##".into())
            .max_input_chars_per_word(100)
            .build()
            .map_err(load_err)?;
        let mut inner = Tokenizer::new(model);
        // Same arguments as transformers' BertTokenizerFast: clean_text, handle_chinese_chars,
        // strip_accents = None (i.e. follow lowercase), lowercase.
        inner.with_normalizer(Some(BertNormalizer::new(true, true, None, lowercase)));
        inner.with_pre_tokenizer(Some(BertPreTokenizer));
        inner.with_post_processor(Some(BertProcessing::new(
            ("[SEP]".into(), sep),
            ("[CLS]".into(), cls),
        )));
        inner.with_decoder(Some(WordPieceDecoder::default()));
        // As in tokenizer.json: special tokens are matched verbatim in the text, never normalised.
        let specials: Vec<AddedToken> = SPECIAL_TOKENS
            .iter()
            .filter(|t| vocab_has(&inner, t))
            .map(|t| AddedToken::from(*t, true))
            .collect();
        inner.add_special_tokens(&specials);
        Self::configure(inner, path, max_len)
    }

    /// The model's tokenizer: `tokenizer.json` if present, else `vocab.txt` with `do_lower_case`
    /// from `tokenizer_config.json` (default true, as for uncased BERT).
    pub fn from_files(files: &TokenizerFiles, max_len: usize) -> Result<TextTokenizer> {
        match (&files.tokenizer_json, &files.vocab) {
            (Some(json), _) => Self::from_tokenizer_json(json, max_len),
            (None, Some(vocab)) => {
                let lowercase = match &files.tokenizer_config {
                    Some(cfg) => do_lower_case(cfg)?,
                    None => true,
                };
                Self::from_vocab(vocab, lowercase, max_len)
            }
            (None, None) => Err(Error::NoTokenizerFiles {
                source_desc: files.source.clone(),
            }),
        }
    }

    /// As [`TextTokenizer::from_files`] for a directory holding the files.
    pub fn from_dir(dir: &Path, max_len: usize) -> Result<TextTokenizer> {
        Self::from_files(&TokenizerFiles::in_dir(dir), max_len)
    }

    fn configure(mut inner: Tokenizer, path: &Path, max_len: usize) -> Result<TextTokenizer> {
        let load_err = |source| Error::TokenizerLoad {
            path: path.to_path_buf(),
            source,
        };
        inner
            .with_truncation(Some(truncation(max_len, Side::Right)))
            .map_err(load_err)?;
        inner.with_padding(None);
        let pad_id = PAD_TOKENS.iter().find_map(|t| inner.token_to_id(t)).ok_or(
            Error::MissingSpecialToken {
                path: path.to_path_buf(),
                token: "padding ([PAD] or <pad>)",
            },
        )?;
        // A tokenizer.json without a post-processor would silently feed the model sequences
        // without their first special token ([CLS], <s>), whose state the classifier reads.
        let probe = inner.encode("a", true).map_err(load_err)?;
        let plain = inner.encode("a", false).map_err(load_err)?;
        let ids = probe.get_ids();
        let first_is_special = probe.get_special_tokens_mask().first() == Some(&1);
        if ids.len() <= plain.get_ids().len() || !first_is_special {
            return Err(load_err(
                format!(
                    "encoding \"a\" gave {ids:?}, without a special token first: the \
                     tokenizer adds no [CLS] / <s> (a post-processor is missing)"
                )
                .into(),
            ));
        }
        let max_token_id = inner.get_vocab(true).values().copied().max().unwrap_or(0);
        let mask = probe.get_special_tokens_mask();
        let prefix = mask.iter().take_while(|&&m| m == 1).count();
        let suffix = mask.iter().rev().take_while(|&&m| m == 1).count();
        let max_type_id = probe.get_type_ids().iter().copied().max().unwrap_or(0);
        // DEBUG: a caller may ask for one token more than it keeps (the predictor's probe for
        // truncation); the lines that matter say the length texts are cut at.
        tracing::debug!(
            max_len,
            vocab = inner.get_vocab_size(true),
            "tokenizer ready"
        );
        tracing::debug!(path = %path.display(), pad_id, "tokenizer loaded");
        Ok(TextTokenizer {
            inner,
            max_len,
            pad_id,
            source: path.to_path_buf(),
            max_token_id,
            max_type_id,
            long_text: LongText::Truncate,
            specials: (prefix, suffix.min(mask.len() - prefix)),
        })
    }

    /// Refuses a tokenizer that can emit an id the model's embedding tables do not have
    /// (`vocab_size` word embeddings, `type_vocab_size` token type embeddings): call it once,
    /// right after loading both, so a mismatched tokenizer is an error naming the file and the
    /// id instead of an out-of-bounds panic in the middle of a run.
    ///
    /// # Errors
    /// [`Error::IdOutOfRange`].
    pub fn check_ids_fit(&self, vocab_size: usize, type_vocab_size: usize) -> Result<()> {
        let out_of_range = |kind, id: u32, table, size: usize| {
            (usize::try_from(id).map_or(true, |id| id >= size)).then(|| Error::IdOutOfRange {
                path: self.source.clone(),
                kind,
                id,
                table,
                size,
            })
        };
        // A model without token types (`type_vocab_size` 0, DistilBERT) never reads them.
        let check_types = type_vocab_size > 0;
        match out_of_range("token id", self.max_token_id, "vocab_size", vocab_size).or_else(|| {
            if check_types {
                out_of_range(
                    "token type id",
                    self.max_type_id,
                    "type_vocab_size",
                    type_vocab_size,
                )
            } else {
                None
            }
        }) {
            Some(err) => Err(err),
            None => Ok(()),
        }
    }

    /// The truncation length.
    pub fn max_len(&self) -> usize {
        self.max_len
    }

    /// Id of the padding token (`[PAD]`, `<pad>`).
    pub fn pad_id(&self) -> u32 {
        self.pad_id
    }

    /// Vocabulary size including added tokens.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// The file the tokenizer was loaded from.
    pub fn source(&self) -> &Path {
        &self.source
    }

    /// Id of a token, if in the vocabulary.
    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// Encode one text: `[CLS] ... [SEP]`, truncated to `max_len`.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        Ok(self.encode_marked(text)?.ids)
    }

    /// Encode many texts in parallel (all cores, via the `tokenizers` thread pool).
    pub fn encode_batch(&self, texts: &[&str]) -> Result<Vec<Vec<u32>>> {
        Ok(self
            .encode_batch_marked(texts)?
            .into_iter()
            .map(|t| t.ids)
            .collect())
    }

    /// A copy that cuts long texts from `side`: [`Side::Right`] keeps a text's head (the
    /// default, as transformers' tokenizers), [`Side::Left`] its tail. The special tokens stay
    /// either way.
    ///
    /// # Errors
    /// [`Error::TokenizerLoad`] if the tokenizer refuses the setting.
    pub fn truncating_from(&self, side: Side) -> Result<TextTokenizer> {
        let mut out = self.clone();
        // Head + tail and windows decide what is kept themselves; there is no side to cut.
        if self.long_text != LongText::Truncate {
            return Ok(out);
        }
        out.inner
            .with_truncation(Some(truncation(self.max_len, side)))
            .map_err(|source| Error::TokenizerLoad {
                path: self.source.clone(),
                source,
            })?;
        Ok(out)
    }

    /// A copy that gives texts longer than `max_len` to the model by `rule` ([`LongText`]).
    ///
    /// # Errors
    /// [`Error::LongText`] when a window cannot advance; [`Error::TokenizerLoad`] if the
    /// tokenizer refuses the setting.
    pub fn with_long_text(&self, rule: LongText) -> Result<TextTokenizer> {
        rule.check(self.max_len, self.specials.0 + self.specials.1)?;
        let mut out = self.clone();
        let truncation = match rule {
            LongText::Truncate => Some(truncation(self.max_len, Side::Right)),
            _ => None,
        };
        out.inner
            .with_truncation(truncation)
            .map_err(|source| Error::TokenizerLoad {
                path: self.source.clone(),
                source,
            })?;
        out.long_text = rule;
        Ok(out)
    }

    /// The long-text rule ([`TextTokenizer::with_long_text`]).
    pub fn long_text(&self) -> LongText {
        self.long_text
    }

    /// One encoding as the model's sequences: itself when the tokenizer truncated it, else
    /// cut by the long-text rule.
    fn sequences(&self, e: &tokenizers::Encoding) -> Tokens {
        if self.long_text == LongText::Truncate {
            return Tokens {
                ids: e.get_ids().to_vec(),
                truncated: !e.get_overflowing().is_empty(),
                more: Vec::new(),
            };
        }
        let (prefix, suffix) = self.specials;
        let (mut seqs, truncated) =
            self.long_text
                .sequences(e.get_ids(), prefix, suffix, self.max_len);
        let first = match seqs.is_empty() {
            true => Vec::new(),
            false => seqs.remove(0),
        };
        Tokens {
            ids: first,
            truncated,
            more: seqs,
        }
    }

    /// Encode texts in parallel, saying of each whether it was cut to `max_len`.
    pub fn encode_batch_marked(&self, texts: &[&str]) -> Result<Vec<Tokens>> {
        let encs = self
            .inner
            .encode_batch_fast(texts.to_vec(), true)
            .map_err(|source| Error::Encode {
                what: format!("{} texts", texts.len()),
                source,
            })?;
        Ok(encs.iter().map(|e| self.sequences(e)).collect())
    }

    /// Encode one text (on the calling thread), saying whether it was cut to `max_len`.
    pub fn encode_marked(&self, text: &str) -> Result<Tokens> {
        let e = self
            .inner
            .encode_fast(text, true)
            .map_err(|source| Error::Encode {
                what: "one text".into(),
                source,
            })?;
        Ok(self.sequences(&e))
    }

    /// Encode reviews in parallel, keeping row and label; `what` names them in errors and logs.
    pub fn encode_reviews(
        &self,
        reviews: &[Review],
        what: &str,
    ) -> Result<(Vec<Encoded>, TokenizeStats)> {
        let _span = tracing::debug_span!(
            "encode_reviews",
            what,
            n = reviews.len(),
            max_len = self.max_len
        )
        .entered();
        let start = Instant::now();
        let mut out = Vec::with_capacity(reviews.len());
        let mut stats = TokenizeStats {
            examples: reviews.len(),
            ..TokenizeStats::default()
        };
        for chunk in reviews.chunks(ENCODE_CHUNK) {
            let texts: Vec<&str> = chunk.iter().map(|r| r.text.as_str()).collect();
            // Offsets are not needed; the `_fast` variant skips computing them.
            let encs = self
                .inner
                .encode_batch_fast(texts, true)
                .map_err(|source| Error::Encode {
                    what: format!(
                        "{what} rows {}..={}",
                        chunk[0].row,
                        chunk[chunk.len() - 1].row
                    ),
                    source,
                })?;
            for (review, enc) in chunk.iter().zip(encs) {
                let tokens = self.sequences(&enc);
                if tokens.truncated {
                    stats.truncated += 1;
                }
                // Single texts have one token type throughout (BERT's 0).
                let type_id = enc.get_type_ids().first().copied().unwrap_or(0);
                for ids in std::iter::once(tokens.ids).chain(tokens.more) {
                    stats.tokens += ids.len() as u64;
                    stats.longest = stats.longest.max(ids.len());
                    stats.sequences += 1;
                    out.push(Encoded {
                        row: review.row,
                        label: review.label,
                        type_ids: vec![type_id; ids.len()],
                        ids,
                    });
                }
            }
        }
        stats.seconds = start.elapsed().as_secs_f64();
        // DEBUG: the caller reports the split, these statistics included.
        tracing::debug!(
            examples = stats.examples,
            tokens = stats.tokens,
            mean_len = format!("{:.1}", stats.mean_len()),
            truncated = stats.truncated,
            seconds = format!("{:.2}", stats.seconds),
            "tokenised"
        );
        Ok((out, stats))
    }
}

fn vocab_has(t: &Tokenizer, token: &str) -> bool {
    t.token_to_id(token).is_some()
}

/// `do_lower_case` from a `tokenizer_config.json` (absent → true: the uncased models we target).
fn do_lower_case(path: &Path) -> Result<bool> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io("read", path, e))?;
    let v: serde_json::Value =
        serde_json::from_str(&text).map_err(|source| Error::TokenizerConfig {
            path: path.to_path_buf(),
            source,
        })?;
    Ok(v.get("do_lower_case")
        .and_then(serde_json::Value::as_bool)
        .unwrap_or(true))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny BERT vocabulary (ids = line numbers).
    const VOCAB: &[&str] = &[
        "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "movie", "was", "great", "!", "un",
        "##believ", "##able", ",", "a", "b",
    ];

    fn vocab_file(dir: &Path) -> PathBuf {
        let p = dir.join("vocab.txt");
        std::fs::write(&p, VOCAB.join("\n") + "\n").unwrap();
        p
    }

    #[test]
    fn ids_beyond_the_models_tables_are_refused_naming_the_file_and_the_id() {
        let dir = tempfile::tempdir().unwrap();
        let t = TextTokenizer::from_vocab(&vocab_file(dir.path()), true, 64).unwrap();
        // 16 tokens (ids 0..=15), single texts get type id 0.
        t.check_ids_fit(16, 1).unwrap();
        let msg = t.check_ids_fit(15, 2).unwrap_err().to_string();
        assert!(
            msg.contains("vocab.txt")
                && msg.contains("token id 15")
                && msg.contains("vocab_size is 15"),
            "{msg}"
        );
        // A model without a token-type table (DistilBERT) never reads the type ids.
        t.check_ids_fit(16, 0).unwrap();
    }

    #[test]
    fn vocab_tokenizer_adds_cls_sep_lowercases_and_splits_wordpieces() {
        let dir = tempfile::tempdir().unwrap();
        let t = TextTokenizer::from_vocab(&vocab_file(dir.path()), true, 64).unwrap();
        // [CLS] the movie was unbelievable ! [SEP]; "Ünbelievable" also loses its accent.
        assert_eq!(
            t.encode("The MOVIE was Ünbelievable!").unwrap(),
            vec![2, 5, 6, 7, 10, 11, 12, 9, 3]
        );
        assert_eq!(
            t.encode("zebra").unwrap(),
            vec![2, 1, 3],
            "unknown words map to [UNK]"
        );
        assert_eq!(t.pad_id(), 0);
        let cased = TextTokenizer::from_vocab(&vocab_file(dir.path()), false, 64).unwrap();
        assert_eq!(
            cased.encode("The").unwrap(),
            vec![2, 1, 3],
            "no lowercasing when cased"
        );
    }

    #[test]
    fn marked_encodings_say_what_was_cut_and_from_which_side() {
        let dir = tempfile::tempdir().unwrap();
        let right = TextTokenizer::from_vocab(&vocab_file(dir.path()), true, 5).unwrap();
        let left = right.truncating_from(Side::Left).unwrap();
        // "the movie was great !" is 5 word tokens: 7 with [CLS]/[SEP], cut to 5.
        let text = "the movie was great !";
        let head = right.encode_marked(text).unwrap();
        assert_eq!(
            head,
            Tokens {
                ids: vec![2, 5, 6, 7, 3],
                truncated: true,
                more: Vec::new(),
            }
        );
        let tail = left.encode_marked(text).unwrap();
        assert_eq!(
            tail,
            Tokens {
                ids: vec![2, 7, 8, 9, 3],
                truncated: true,
                more: Vec::new(),
            }
        );
        // Exactly max_len tokens is not a cut.
        let fits = right.encode_batch_marked(&["the movie was", "a"]).unwrap();
        assert_eq!(fits[0].ids.len(), 5);
        assert!(!fits[0].truncated && !fits[1].truncated);
        assert!(right.encode_batch_marked(&[text]).unwrap()[0].truncated);
    }

    #[test]
    fn truncation_keeps_cls_and_sep_and_never_pads() {
        let dir = tempfile::tempdir().unwrap();
        let t = TextTokenizer::from_vocab(&vocab_file(dir.path()), true, 5).unwrap();
        let long = "a b a b a b a b";
        assert_eq!(t.encode(long).unwrap(), vec![2, 14, 15, 14, 3]);
        assert_eq!(
            t.encode("a").unwrap(),
            vec![2, 14, 3],
            "short texts are not padded"
        );
        let reviews = vec![
            Review {
                row: 10,
                text: long.into(),
                label: 1,
            },
            Review {
                row: 11,
                text: "a".into(),
                label: 0,
            },
        ];
        let (enc, stats) = t.encode_reviews(&reviews, "test").unwrap();
        assert_eq!(
            enc[0],
            Encoded {
                row: 10,
                label: 1,
                ids: vec![2, 14, 15, 14, 3],
                type_ids: vec![0; 5]
            }
        );
        assert_eq!(enc[1].ids, vec![2, 14, 3]);
        assert_eq!(
            (stats.examples, stats.tokens, stats.truncated, stats.longest),
            (2, 8, 1, 5)
        );
    }

    #[test]
    fn batch_and_single_encoding_agree() {
        let dir = tempfile::tempdir().unwrap();
        let t = TextTokenizer::from_vocab(&vocab_file(dir.path()), true, 8).unwrap();
        let texts = ["the movie", "a b a b a b a b a b", "", "great!"];
        let batch = t.encode_batch(&texts).unwrap();
        for (text, ids) in texts.iter().zip(batch) {
            assert_eq!(ids, t.encode(text).unwrap());
        }
    }

    #[test]
    fn max_len_is_validated() {
        let dir = tempfile::tempdir().unwrap();
        let v = vocab_file(dir.path());
        for bad in [0, 1, 8193] {
            assert!(
                matches!(TextTokenizer::from_vocab(&v, true, bad), Err(Error::MaxLen { found, .. }) if found == bad)
            );
        }
        assert!(TextTokenizer::from_vocab(&v, true, 512).is_ok());
    }

    #[test]
    fn vocab_without_special_tokens_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("vocab.txt");
        std::fs::write(&p, "[PAD]\n[UNK]\nhello\n").unwrap();
        let err = TextTokenizer::from_vocab(&p, true, 16).unwrap_err();
        assert!(
            matches!(err, Error::MissingSpecialToken { token: "[CLS]", .. }),
            "{err}"
        );
    }

    #[test]
    fn tokenizer_json_padding_and_truncation_are_overridden() {
        // Save a tokenizer.json with fixed padding to 32 and truncation at 4, like all-MiniLM's.
        let dir = tempfile::tempdir().unwrap();
        let t = TextTokenizer::from_vocab(&vocab_file(dir.path()), true, 16).unwrap();
        let mut inner = t.inner.clone();
        inner.with_padding(Some(tokenizers::PaddingParams {
            strategy: tokenizers::PaddingStrategy::Fixed(32),
            ..Default::default()
        }));
        inner
            .with_truncation(Some(TruncationParams {
                max_length: 4,
                ..Default::default()
            }))
            .unwrap();
        let json = dir.path().join("tokenizer.json");
        inner.save(&json, false).unwrap();
        assert_eq!(
            Tokenizer::from_file(&json)
                .unwrap()
                .encode("a", true)
                .unwrap()
                .get_ids()
                .len(),
            32
        );

        let loaded = TextTokenizer::from_tokenizer_json(&json, 6).unwrap();
        assert_eq!(loaded.encode("a").unwrap(), vec![2, 14, 3]);
        assert_eq!(
            loaded.encode("a b a b a b").unwrap(),
            vec![2, 14, 15, 14, 15, 3]
        );
    }

    /// A tokenizer.json saved from the test vocabulary, as compact JSON text.
    fn tokenizer_json_text(dir: &Path) -> String {
        let t = TextTokenizer::from_vocab(&vocab_file(dir), true, 16).unwrap();
        t.inner.to_string(false).unwrap()
    }

    /// Found by the fuzz harness (crates/fuzz/regressions/tokenizer/): the `tokenizers` crate
    /// panics ("Helper") on a syntax error inside the `decoder` object instead of returning an
    /// error.
    #[test]
    fn a_syntax_error_inside_the_decoder_is_an_error_naming_the_file_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let text = tokenizer_json_text(dir.path());
        let at = text.find("\"decoder\":{").unwrap() + "\"decoder\":{".len();
        let broken = format!("{}\"x\" 1,{}", &text[..at], &text[at..]);
        let json = dir.path().join("tokenizer.json");
        std::fs::write(&json, broken).unwrap();
        let err = TextTokenizer::from_tokenizer_json(&json, 16).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, Error::TokenizerLoad { .. }), "{msg}");
        assert!(
            msg.contains("tokenizer.json")
                && msg.contains("not valid JSON")
                && msg.contains("line 1"),
            "{msg}"
        );
    }

    /// Valid JSON the `tokenizers` crate still panics on (`expect("Precompiled")` on a
    /// charsmap that is not one): the panic is caught and reported as a load error.
    #[test]
    fn a_panic_inside_the_tokenizers_crate_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut v: serde_json::Value =
            serde_json::from_str(&tokenizer_json_text(dir.path())).unwrap();
        v["normalizer"] = serde_json::json!({"type": "Precompiled", "precompiled_charsmap": 7});
        let json = dir.path().join("tokenizer.json");
        std::fs::write(&json, v.to_string()).unwrap();
        let err = TextTokenizer::from_tokenizer_json(&json, 16).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, Error::TokenizerLoad { .. }), "{msg}");
        assert!(
            msg.contains("tokenizer.json") && msg.contains("tokenizers library failed"),
            "{msg}"
        );
    }

    #[test]
    fn model_files_prefer_tokenizer_json_and_read_do_lower_case() {
        let dir = tempfile::tempdir().unwrap();
        let vocab = vocab_file(dir.path());
        let cfg = dir.path().join("tokenizer_config.json");
        std::fs::write(&cfg, r#"{"do_lower_case": false}"#).unwrap();
        let t = TextTokenizer::from_dir(dir.path(), 16).unwrap();
        assert_eq!(t.source(), vocab.as_path());
        assert_eq!(
            t.encode("The").unwrap(),
            vec![2, 1, 3],
            "do_lower_case=false respected"
        );
        std::fs::write(&cfg, "{not json").unwrap();
        let err = TextTokenizer::from_dir(dir.path(), 16).unwrap_err();
        assert!(
            matches!(err, Error::TokenizerConfig { .. })
                && err.to_string().contains("tokenizer_config.json")
        );
    }
}

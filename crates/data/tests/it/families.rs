//! Every encoder family's own tokenizer (`tokenizer.json`: byte-level BPE for RoBERTa,
//! SentencePiece Unigram for XLM-R and CamemBERT, WordPiece for ELECTRA and DistilBERT) gives
//! transformers' ids, special tokens and truncation included, on texts with accents, an
//! emoji and more than `max_length` tokens (`fixtures/families/*/tokens.json`, made by
//! `scripts/make_fixture_families.py`), as do DeBERTa-v3's SentencePiece Unigram and
//! ModernBERT's byte-level BPE (`fixtures/modern/*/tokens.json`,
//! `scripts/make_fixture_modern.py`).

use std::path::PathBuf;

use imdb_lora_data::TextTokenizer;
use serde::Deserialize;

#[derive(Deserialize)]
struct Tokens {
    max_length: usize,
    pad_token_id: u32,
    texts: Vec<String>,
    input_ids: Vec<Vec<u32>>,
}

fn family_dir(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures")
        .join(name)
}

#[test]
fn every_family_s_tokenizer_gives_transformers_ids() {
    for name in [
        "families/roberta",
        "families/xlm-roberta",
        "families/camembert",
        "families/electra",
        "families/distilbert",
        // DeBERTa-v3's SentencePiece Unigram (transformers' own normaliser), ModernBERT's
        // byte-level BPE with `[CLS] … [SEP]` (`scripts/make_fixture_modern.py`).
        "modern/deberta-v2",
        "modern/modernbert",
    ] {
        let dir = family_dir(name);
        let tokens: Tokens =
            serde_json::from_slice(&std::fs::read(dir.join("tokens.json")).unwrap()).unwrap();
        let tokenizer = TextTokenizer::from_dir(&dir.join("seqcls"), tokens.max_length).unwrap();
        assert_eq!(tokenizer.pad_id(), tokens.pad_token_id, "{name}");
        let texts: Vec<&str> = tokens.texts.iter().map(String::as_str).collect();
        let got = tokenizer.encode_batch(&texts).unwrap();
        assert_eq!(got, tokens.input_ids, "{name}");
        assert!(
            got.iter().any(|ids| ids.len() == tokens.max_length),
            "{name}: some text must be truncated for the test to mean anything"
        );
    }
}

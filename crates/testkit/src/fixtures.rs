//! The repository's committed fixtures (`fixtures/`), and model directories built from them.

use std::path::{Path, PathBuf};

/// `fixtures/<rel>` in the repository.
pub fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures")
        .join(rel)
}

/// Writes a complete, tiny classifier model directory into `dir`: the random BERT
/// `fixtures/tiny_bert/seqcls` (vocab 99, hidden 32, 64 positions, labels neg/pos) with a
/// made-up 99-token WordPiece vocabulary (`[PAD]`..`[MASK]`, then `w0`..`w93`).
///
/// # Errors
/// When a file cannot be copied or written.
pub fn write_tiny_classifier(dir: &Path) -> std::io::Result<()> {
    for f in ["config.json", "model.safetensors"] {
        std::fs::copy(fixture("tiny_bert/seqcls").join(f), dir.join(f))?;
    }
    let mut vocab: Vec<String> = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
        .map(String::from)
        .to_vec();
    vocab.extend((0..94).map(|i| format!("w{i}")));
    std::fs::write(dir.join("vocab.txt"), vocab.join("\n") + "\n")
}

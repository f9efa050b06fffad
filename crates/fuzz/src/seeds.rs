//! `imdb-lora-fuzz make-seeds`: writes the committed seed files under `seeds/<target>/` —
//! copies of the tiny fixtures (configs, weights, PEFT adapter), a tiny WordPiece
//! `tokenizer.json` built here, three small IMDb-shaped parquet files (utf8 + int64 in two
//! snappy row groups; large_utf8 + int8, zstd, dictionary pages; utf8_view + uint32 + an extra
//! column, gzip), and the checkpoints and `metrics.json` files of a real two-epoch run of the
//! training loop on the tiny model and a toy task (one finished, one stopped mid-epoch, one
//! baseline only), small CSV, TSV and JSON Lines files shaped like users' (a header and
//! text, label; AG News's headerless quoted three columns; quoted fields with newlines,
//! commas and quotes; a BOM and CRLF; string and integer labels, extra fields, unicode), and
//! `split.json` records naming the `split_json` target's data files. Every seed is checked to
//! load cleanly before it is written.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail, ensure};
use arrow_array::{
    ArrayRef, Int8Array, Int64Array, LargeStringArray, RecordBatch, StringArray, StringViewArray,
    UInt32Array,
};
use arrow_schema::{Field, Schema};
use burn::backend::{Autodiff, Flex};
use imdb_lora_data::{Encoded, TextTokenizer};
use imdb_lora_encoder::PeftConfig;
use imdb_lora_lora::LoraConfig;
use imdb_lora_train::{Datasets, RunSpec, TrainConfig};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, GzipLevel, ZstdLevel};
use parquet::file::properties::WriterProperties;
use tokenizers::decoders::wordpiece::WordPiece as WordPieceDecoder;
use tokenizers::models::wordpiece::WordPiece;
use tokenizers::normalizers::BertNormalizer;
use tokenizers::pre_tokenizers::bert::BertPreTokenizer;
use tokenizers::processors::bert::BertProcessing;
use tokenizers::{AddedToken, Tokenizer};

use crate::target::{self, Harness, Outcome, Target};

type AB = Autodiff<Flex>;

/// Writes every target's seeds under `dir/seeds/` (replacing files of the same name) and
/// returns their paths and sizes.
///
/// # Errors
/// When a seed cannot be built, does not load cleanly, or cannot be written.
pub fn make_seeds(dir: &Path) -> Result<Vec<(PathBuf, usize)>> {
    let seeds = dir.join("seeds");
    let scratch = tempfile::tempdir().context("cannot create a scratch directory")?;
    let mut written = Vec::new();
    let mut put = |target: Target, name: &str, bytes: &[u8]| -> Result<()> {
        let d = seeds.join(target.name());
        std::fs::create_dir_all(&d).with_context(|| format!("cannot create {}", d.display()))?;
        let path = d.join(name);
        imdb_lora_fsio::write(&path, bytes)
            .with_context(|| format!("cannot write {}", path.display()))?;
        written.push((target, path));
        Ok(())
    };

    put(Target::Config, "seqcls.json", target::TINY_CONFIG)?;
    put(Target::Config, "bare.json", target::TINY_BARE_CONFIG)?;
    put(
        Target::Safetensors,
        "seqcls.safetensors",
        target::TINY_WEIGHTS,
    )?;
    put(
        Target::Safetensors,
        "bare.safetensors",
        target::TINY_BARE_WEIGHTS,
    )?;
    put(
        Target::AdapterConfig,
        "peft.json",
        target::TINY_ADAPTER_CONFIG,
    )?;
    let ours = PeftConfig::from_lora(
        &LoraConfig {
            r: 4,
            lora_alpha: 8.0,
            ..LoraConfig::default()
        },
        "fixtures/tiny_bert/seqcls",
    );
    put(
        Target::AdapterConfig,
        "ours.json",
        &serde_json::to_vec_pretty(&ours)?,
    )?;
    put(
        Target::AdapterModel,
        "peft.safetensors",
        target::TINY_ADAPTER_WEIGHTS,
    )?;
    put(
        Target::Tokenizer,
        "wordpiece.json",
        tiny_tokenizer(scratch.path())?.as_bytes(),
    )?;
    for (name, bytes) in parquet_files()? {
        put(Target::Parquet, name, &bytes)?;
    }
    for (target, name, text) in TEXT_SEEDS {
        put(target, name, text.as_bytes())?;
    }
    for (name, record) in split_records() {
        put(
            Target::SplitJson,
            name,
            &serde_json::to_vec_pretty(&record)?,
        )?;
    }
    for (name, checkpoint, metrics) in training_runs(scratch.path())? {
        if let Some(c) = checkpoint {
            put(Target::Checkpoint, &format!("{name}.safetensors"), &c)?;
        }
        put(Target::Metrics, &format!("{name}.json"), &metrics)?;
    }

    // Seeds are meant to be good files: each must load.
    let mut report = Vec::new();
    for (target, path) in written {
        let bytes = std::fs::read(&path)?;
        match Harness::new(target)?.run(&bytes)? {
            Outcome::Ok => {}
            Outcome::Err(e) => bail!("seed {} does not load: {e}", path.display()),
        }
        report.push((path, bytes.len()));
    }
    Ok(report)
}

/// Words of the tiny vocabulary (after the five special tokens, single letters and their
/// `##` continuations): the sentences the tokenizer target encodes, and a few more.
const WORDS: [&str; 36] = [
    "the", "a", "i", "it", "is", "was", "this", "not", "movie", "film", "great", "awful", "good",
    "bad", "want", "those", "two", "hours", "back", "triumph", "from", "start", "to", "finish",
    ".", ",", "!", "?", "'", "1", "2", "3", "##s", "##ing", "##ed", "##ly",
];

/// A WordPiece `tokenizer.json` with 93 tokens (fits the tiny model's 99), built as
/// `transformers`' `BertTokenizerFast` is: BERT normaliser (lowercase), pre-tokenizer,
/// `[CLS] … [SEP]` post-processor, special tokens matched verbatim.
fn tiny_tokenizer(scratch: &Path) -> Result<String> {
    let mut vocab: Vec<String> = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
        .iter()
        .map(|s| (*s).to_string())
        .collect();
    for c in 'a'..='z' {
        vocab.push(c.to_string());
    }
    for c in 'a'..='z' {
        vocab.push(format!("##{c}"));
    }
    for w in WORDS {
        if !vocab.iter().any(|v| v == w) {
            vocab.push(w.to_string());
        }
    }
    let vocab_file = scratch.join("vocab.txt");
    imdb_lora_fsio::write(&vocab_file, (vocab.join("\n") + "\n").as_bytes())?;
    let path = vocab_file.to_str().context("scratch path is not UTF-8")?;
    let ids = WordPiece::read_file(path).map_err(|e| anyhow::anyhow!("{e}"))?;
    let model = WordPiece::builder()
        .vocab(ids)
        .unk_token("[UNK]".into())
        .continuing_subword_prefix("##".into())
        .max_input_chars_per_word(100)
        .build()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut tokenizer = Tokenizer::new(model);
    tokenizer.with_normalizer(Some(BertNormalizer::new(true, true, None, true)));
    tokenizer.with_pre_tokenizer(Some(BertPreTokenizer));
    tokenizer.with_post_processor(Some(BertProcessing::new(
        ("[SEP]".into(), 3),
        ("[CLS]".into(), 2),
    )));
    tokenizer.with_decoder(Some(WordPieceDecoder::default()));
    let specials: Vec<AddedToken> = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
        .iter()
        .map(|t| AddedToken::from(*t, true))
        .collect();
    tokenizer.add_special_tokens(&specials);
    let json = tokenizer
        .to_string(true)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    // The seed must be what the pipeline accepts: check it as the tokenizer target does.
    let check = scratch.join("tokenizer.json");
    imdb_lora_fsio::write(&check, json.as_bytes())?;
    let t = TextTokenizer::from_tokenizer_json(&check, 32)?;
    ensure!(
        t.vocab_size() <= 99,
        "tiny vocabulary has {} tokens",
        t.vocab_size()
    );
    Ok(json)
}

/// The CSV, TSV and JSON Lines seeds: (target, file name, contents).
const TEXT_SEEDS: [(Target, &str, &str); 10] = [
    (
        Target::Csv,
        "text_label.csv",
        r#"text,label
A triumph from start to finish.,1
"great film, great cast!",1
"I want those two hours back.
Really.",0
"it was ""not"" good",0
awful. just awful.,0
Ünïcödé — 😀,1
"""Quoted"" start",1
"#,
    ),
    (
        Target::Csv,
        "agnews.csv",
        r#""3","Wall St. Bears Claw Back Into the Black (Reuters)","Reuters - Short-sellers, Wall Street's dwindling\band of ultra-cynics, are seeing green again."
"3","Oil and Economy Cloud Stocks' Outlook","Soaring crude prices plus worries\about the economy"
"1","Afghan Army Dispatched","KABUL (Reuters) - Afghanistan sent troops"
"2","Phelps Wins Again","ATHENS - Michael Phelps won his
sixth gold medal"
"4","New Chip Unveiled","""Faster"", says its maker, ""and cheaper"""
"1","Talks Resume","Negotiators met"
"#,
    ),
    (
        Target::Csv,
        "bom_crlf_id_review_label.csv",
        "\u{feff}id,review,label\r\n1,\"good, even great\",pos\r\n2,\"bad\r\nvery bad\",neg\r\n3,fine,pos\r\n",
    ),
    (
        Target::Tsv,
        "sentence_label.tsv",
        "sentence\tlabel\nhide new secretions from the parental units \t0\n\
         contains no wit , only labored gags \t0\nthat loves its characters \t1\n\
         \"a \"\"quoted\"\" one\"\t1\n",
    ),
    (
        Target::Tsv,
        "agnews.tsv",
        "3\tWall St. Bears Claw Back\tShort-sellers, Wall Street's dwindling band\n\
         1\tAfghan Army Dispatched\t\"KABUL\t(Reuters)\"\n\
         2\tPhelps Wins Again\t\"ATHENS - Michael Phelps won\nhis sixth gold\"\n\
         4\tNew Chip\tFaster\n",
    ),
    (
        Target::Tsv,
        "id_text_label.tsv",
        "id\ttext\tlabel\n7\tgood film\tpos\n8\tbad film\t neg \n9\tÜnïcödé 😀\tpos\n",
    ),
    (
        Target::JsonLines,
        "int_labels.jsonl",
        r#"{"text": "A triumph from start to finish.", "label": 1}
{"text": "I want those two hours back.", "label": 0}
{"text": "great film,\ngreat cast!", "label": 1}
{"text": "it was \"not\" good", "label": 0}
"#,
    ),
    (
        Target::JsonLines,
        "string_labels_extra_fields.jsonl",
        "{\"id\": 1, \"text\": \"Ünïcödé — \\u00e9 \u{1F600}\", \"label\": \"pos\", \"meta\": {\"a\": [1, 2.5, null]}}\n\
         \n\
         {\"label\": \"neg\", \"text\": \"awful\", \"id\": 2}\r\n\
         {\"id\": 3, \"text\": \"\\ud83d\\ude00 emoji escaped\", \"label\": \"pos\", \"extra\": true}\n",
    ),
    (
        Target::JsonLines,
        "agnews.jsonl",
        r#"{"label": 3, "title": "Wall St. Bears Claw Back", "description": "Short-sellers are seeing green again."}
{"label": 1, "title": "Afghan Army Dispatched", "description": "KABUL (Reuters)"}
{"label": 2, "title": "Phelps Wins Again", "description": "ATHENS - sixth gold"}
{"label": 4, "title": "New Chip", "description": "\"Faster\", says its maker"}
"#,
    ),
    (
        Target::JsonLines,
        "content_class_strings.jsonl",
        r#"{"content": "a tale of two cities", "class": "World"}
{"content": "the cup final", "class": "Sports"}
"#,
    ),
];

/// `split.json` records as `train` writes them, naming the `split_json` target's data files
/// by relative paths (`target::SPLIT_DATA`; the harness resolves them in its data directory).
/// Built as JSON, not as `SplitRecord`s, so that they stay the files older runs wrote.
fn split_records() -> Vec<(&'static str, serde_json::Value)> {
    use serde_json::json;
    vec![
        (
            "test_file_no_val.json",
            json!({
                "train_files": ["train.csv"], "test_files": ["test.csv"],
                "test_fraction": null, "seed": 42,
                "text_columns": ["text"], "label_column": "label",
                "classes": ["neg", "pos"], "raw_labels": ["0", "1"],
                "train_rows": [3, 0, 5, 1, 7, 2, 6, 4], "test_rows": [0, 1, 2, 3],
            }),
        ),
        (
            "val_fraction.json",
            json!({
                "train_files": ["train.csv"], "test_files": ["train.csv"],
                "test_fraction": 0.25, "seed": 7,
                "text_columns": ["text"], "label_column": "label",
                "classes": ["neg", "pos"], "raw_labels": ["0", "1"],
                "train_rows": [0, 3, 4, 6], "test_rows": [2, 5],
                "val_files": ["train.csv"], "val_fraction": 0.25, "val_rows": [1, 7],
            }),
        ),
        (
            "agnews_headerless.json",
            json!({
                "train_files": ["news/train.csv"], "test_files": ["news/train.csv"],
                "test_fraction": 0.25, "seed": 42,
                "text_columns": ["2", "3"], "label_column": "1", "header": false,
                "classes": ["World", "Sports", "Business", "Sci/Tech"],
                "raw_labels": ["1", "2", "3", "4"],
                "train_rows": [0, 2, 3, 4, 5, 7], "test_rows": [1, 6],
            }),
        ),
        (
            "jsonl_val_file.json",
            json!({
                "train_files": ["reviews.jsonl"], "test_files": ["reviews.jsonl"],
                "test_fraction": 0.4, "seed": 1,
                "text_columns": ["text"], "label_column": "label",
                "classes": ["neg", "pos"], "raw_labels": ["neg", "pos"],
                "train_rows": [0, 3], "test_rows": [2, 4],
                "val_files": ["reviews.jsonl"], "val_rows": [1],
            }),
        ),
        (
            "shards.json",
            json!({
                "train_files": ["train.csv", "test.csv"], "test_files": ["test.csv"],
                "test_fraction": null, "seed": 3,
                "text_columns": ["text"], "label_column": "label",
                "classes": ["neg", "pos"], "raw_labels": ["0", "1"],
                "train_rows": [11, 0, 8, 9, 10, 1], "test_rows": [3, 2],
            }),
        ),
    ]
}

const REVIEWS: [&str; 8] = [
    "A triumph from start to finish.",
    "I want those two hours back.",
    "great film, great cast!",
    "awful. just awful.",
    "it was not good",
    "the movie is bad?",
    "meh.",
    "Ünïcödé — \u{1F600} and\ttabs\nnewlines",
];

fn parquet(columns: Vec<(&str, ArrayRef)>, props: WriterProperties) -> Result<Vec<u8>> {
    let fields: Vec<Field> = columns
        .iter()
        .map(|(n, a)| Field::new(*n, a.data_type().clone(), true))
        .collect();
    let schema = Arc::new(Schema::new(fields));
    let batch = RecordBatch::try_new(
        schema.clone(),
        columns.into_iter().map(|(_, a)| a).collect(),
    )?;
    let mut out = Vec::new();
    let mut w = ArrowWriter::try_new(&mut out, schema, Some(props))?;
    w.write(&batch)?;
    w.close()?;
    Ok(out)
}

fn parquet_files() -> Result<Vec<(&'static str, Vec<u8>)>> {
    let texts = |n: usize| -> Vec<&str> { (0..n).map(|i| REVIEWS[i % REVIEWS.len()]).collect() };
    let labels = |n: usize| -> Vec<i64> { (0..n).map(|i| (i % 2) as i64).collect() };
    let plain = parquet(
        vec![
            ("text", Arc::new(StringArray::from(texts(24))) as ArrayRef),
            ("label", Arc::new(Int64Array::from(labels(24))) as ArrayRef),
        ],
        WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_max_row_group_row_count(Some(12))
            .build(),
    )?;
    let large = parquet(
        vec![
            (
                "text",
                Arc::new(LargeStringArray::from(texts(16))) as ArrayRef,
            ),
            (
                "label",
                Arc::new(Int8Array::from(
                    labels(16).into_iter().map(|l| l as i8).collect::<Vec<_>>(),
                )) as ArrayRef,
            ),
        ],
        WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::default()))
            .set_dictionary_enabled(true)
            .build(),
    )?;
    let view = parquet(
        vec![
            (
                "id",
                Arc::new(Int64Array::from((0..10).collect::<Vec<i64>>())) as ArrayRef,
            ),
            (
                "text",
                Arc::new(StringViewArray::from(texts(10))) as ArrayRef,
            ),
            (
                "label",
                Arc::new(UInt32Array::from(
                    labels(10).into_iter().map(|l| l as u32).collect::<Vec<_>>(),
                )) as ArrayRef,
            ),
        ],
        WriterProperties::builder()
            .set_compression(Compression::GZIP(GzipLevel::default()))
            .set_dictionary_enabled(false)
            .build(),
    )?;
    Ok(vec![
        ("utf8_int64_snappy.parquet", plain),
        ("large_utf8_int8_zstd_dict.parquet", large),
        ("utf8view_uint32_gzip_extra_column.parquet", view),
    ])
}

/// Positive examples mention token 40, negative ones token 41, amid other tokens (as in the
/// training loop's own tests).
fn toy(n: usize, offset: usize) -> Vec<Encoded> {
    (0..n)
        .map(|i| {
            let positive = i % 2 == 1;
            let len = 4 + (i * 7 + offset) % 9;
            let mut ids = vec![2u32];
            for j in 0..len {
                ids.push(if j == len / 2 {
                    if positive { 40 } else { 41 }
                } else {
                    5 + ((i * 13 + j * 5 + offset) % 60) as u32
                });
            }
            ids.push(3);
            let type_ids = vec![0; ids.len()];
            Encoded {
                row: i + offset,
                label: positive.into(),
                ids,
                type_ids,
            }
        })
        .collect()
}

/// (name, `checkpoints/last.safetensors`, `metrics.json`) of three runs of the real training
/// loop on the tiny model: finished after two epochs, stopped after three steps (mid-epoch),
/// and baseline only (no checkpoint kept: it is the stopped run's first one).
#[allow(clippy::type_complexity)]
fn training_runs(scratch: &Path) -> Result<Vec<(&'static str, Option<Vec<u8>>, Vec<u8>)>> {
    let fixture = scratch.join("tiny");
    std::fs::create_dir_all(&fixture)?;
    imdb_lora_fsio::write(
        &fixture.join(imdb_lora_encoder::files::CONFIG_FILE),
        target::TINY_CONFIG,
    )?;
    imdb_lora_fsio::write(
        &fixture.join(imdb_lora_encoder::files::WEIGHTS_FILE),
        target::TINY_WEIGHTS,
    )?;
    let data = Datasets {
        train: toy(32, 0),
        test: toy(16, 1000),
        validation: None,
        pad_id: 0,
        classes: vec!["neg".into(), "pos".into()],
    };
    let lora = LoraConfig {
        r: 4,
        lora_alpha: 8.0,
        ..LoraConfig::default()
    };
    let mut out = Vec::new();
    for (name, stop) in [
        ("finished", None),
        ("mid_epoch", Some(3)),
        ("baseline", Some(0)),
    ] {
        let config = TrainConfig {
            epochs: 2,
            batch_size: 8,
            eval_batch_size: 16,
            lr: 5e-3,
            warmup_ratio: 0.1,
            seed: 3,
            checkpoint_every: Some(2),
            stop_after_steps: stop,
            ..TrainConfig::default()
        };
        let run = RunSpec {
            model: "fixtures/tiny_bert/seqcls".into(),
            model_sha256: None,
            data: "toy".into(),
            max_len: 16,
            backend: "flex".into(),
            precision: imdb_lora_encoder::Precision::F32,
            lora: lora.clone(),
            train: config,
            long_text: imdb_lora_data::LongText::Truncate,
        };
        let dir = scratch.join(name);
        let device = Default::default();
        let (base, _) = imdb_lora_encoder::load_classifier::<AB>(&fixture, &device, 0)?;
        imdb_lora_train::fine_tune(
            base,
            &run,
            &data,
            &dir,
            &device,
            &imdb_lora_progress::Silent,
            &imdb_lora_train::Interrupt::new(),
        )?;
        let checkpoint = (stop != Some(0))
            .then(|| std::fs::read(dir.join("checkpoints/last.safetensors")))
            .transpose()?;
        let metrics = std::fs::read(dir.join(imdb_lora_train::METRICS_FILE))?;
        out.push((name, checkpoint, metrics));
    }
    Ok(out)
}

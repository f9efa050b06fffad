//! `Predictor` on real models: MiniLM + an adapter written by PEFT gives PEFT's probabilities
//! and the Python tokenizer's ids; batching, sorting and saving merged change nothing; wrong
//! directories are refused with the file named.

use std::path::{Path, PathBuf};

use imdb_lora_infer::{Adapter, InferError, PredictOptions, Prediction, Predictor};
use safetensors::SafeTensors;

type B = burn::backend::Flex;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn fixture(rel: &str) -> PathBuf {
    repo().join("fixtures").join(rel)
}

/// all-MiniLM-L6-v2 in `../shared` (or `$IMDB_LORA_SHARED`); fails loudly when absent.
fn minilm() -> PathBuf {
    imdb_lora_testkit::shared::minilm_dir().unwrap_or_else(|e| panic!("{e}"))
}

fn peft_adapter() -> PathBuf {
    fixture("peft/minilm/adapter")
}

fn sentences() -> (Vec<String>, usize) {
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("minilm/sentences.json")).unwrap())
            .unwrap();
    let texts = v["sentences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect();
    (texts, v["max_length"].as_u64().unwrap() as usize)
}

/// A tensor of a reference file as (shape, f64 values).
fn tensor(path: &Path, name: &str) -> (Vec<usize>, Vec<f64>) {
    let bytes = std::fs::read(path).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let t = st.tensor(name).unwrap();
    let values = match t.dtype() {
        safetensors::Dtype::F32 => t
            .data()
            .chunks_exact(4)
            .map(|c| f64::from(f32::from_le_bytes(c.try_into().unwrap())))
            .collect(),
        safetensors::Dtype::I64 => t
            .data()
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().unwrap()) as f64)
            .collect(),
        other => panic!("{name}: {other:?}"),
    };
    (t.shape().to_vec(), values)
}

fn adapters(adapter: Option<&Path>) -> Vec<Adapter> {
    adapter.map(Adapter::from_dir).into_iter().collect()
}

fn load(model: &Path, adapter: Option<&Path>, options: PredictOptions) -> Predictor<B> {
    Predictor::<B>::from_dir(model, &adapters(adapter), options, &Default::default()).unwrap()
}

fn refs(texts: &[String]) -> Vec<&str> {
    texts.iter().map(String::as_str).collect()
}

fn assert_same_predictions(a: &[Prediction], b: &[Prediction], tol: f64) {
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(b) {
        assert_eq!((&x.text, &x.label), (&y.text, &y.label));
        let d = x
            .probs
            .iter()
            .zip(&y.probs)
            .map(|((_, p), (_, q))| (p - q).abs())
            .fold(0.0, f64::max);
        assert!(d <= tol, "{:?}: {d:e} > {tol:e}", x.text);
    }
}

#[test]
fn peft_adapter_on_minilm_gives_the_softmax_of_peft_logits() {
    let (texts, max_len) = sentences();
    // Batches of 3 over 4 length-sorted texts: the reordering is exercised.
    let options = PredictOptions::default()
        .with_max_len(max_len)
        .with_batch_size(3);
    let p = load(&minilm(), Some(&peft_adapter()), options);
    assert_eq!(
        p.label_names(),
        ["neg", "pos"],
        "MiniLM's generic LABEL_0/1"
    );
    let got = p.predict(&refs(&texts)).unwrap();
    let (shape, logits) = tensor(&fixture("peft/minilm/expected.safetensors"), "logits");
    assert_eq!(shape, [4, 2]);
    for (i, (pred, l)) in got.iter().zip(logits.chunks_exact(2)).enumerate() {
        assert_eq!(pred.text, texts[i], "input order kept");
        let m = l[0].max(l[1]);
        let (e0, e1) = ((l[0] - m).exp(), (l[1] - m).exp());
        let (neg, pos) = (e0 / (e0 + e1), e1 / (e0 + e1));
        let (got_neg, got_pos) = (pred.neg_prob().unwrap(), pred.pos_prob().unwrap());
        assert!(
            (got_neg - neg).abs() < 1e-4 && (got_pos - pos).abs() < 1e-4,
            "text {i}: got ({got_neg}, {got_pos}), PEFT ({neg}, {pos})"
        );
        assert!((got_neg + got_pos - 1.0).abs() < 1e-12);
        assert_eq!(pred.label, if pos > neg { "pos" } else { "neg" });
    }
}

#[test]
fn token_ids_equal_the_python_tokenizers() {
    let (texts, max_len) = sentences();
    let p = load(
        &minilm(),
        Some(&peft_adapter()),
        PredictOptions::default().with_max_len(max_len),
    );
    let ids: Vec<Vec<u32>> = p
        .encode(&refs(&texts))
        .unwrap()
        .into_iter()
        .map(|t| t.ids)
        .collect();
    let path = fixture("minilm/expected.safetensors");
    let (shape, input_ids) = tensor(&path, "input_ids");
    let (_, mask) = tensor(&path, "attention_mask");
    let width = shape[1];
    for (i, got) in ids.iter().enumerate() {
        let row = &input_ids[i * width..(i + 1) * width];
        let len = mask[i * width..(i + 1) * width]
            .iter()
            .filter(|&&m| m != 0.0)
            .count();
        let want: Vec<u32> = row[..len].iter().map(|&v| v as u32).collect();
        assert_eq!(got, &want, "text {i}");
    }
    assert_eq!(
        ids[2].len(),
        64,
        "the long review is truncated at max_length 64"
    );
}

#[test]
fn truncation_equals_encoding_at_max_len_directly() {
    let (texts, _) = sentences();
    let long = texts[2].repeat(6); // > 512 tokens
    let inputs = [long.as_str(), texts[2].as_str(), "", texts[0].as_str()];
    for max_len in [2, 5, 64, 129, 512] {
        let p = load(
            &minilm(),
            Some(&peft_adapter()),
            PredictOptions::default().with_max_len(max_len),
        );
        let direct = imdb_lora_data::TextTokenizer::from_dir(&minilm(), max_len).unwrap();
        let got: Vec<Vec<u32>> = p
            .encode(&inputs)
            .unwrap()
            .into_iter()
            .map(|t| t.ids)
            .collect();
        for (text, ids) in inputs.iter().zip(&got) {
            assert_eq!(ids, &direct.encode(text).unwrap(), "max_len {max_len}");
            assert!(ids.len() <= max_len);
        }
        assert_eq!(got[2], [101, 102], "the empty text is [CLS] [SEP]");
    }
}

#[test]
fn batch_size_and_order_do_not_change_predictions() {
    let (texts, _) = sentences();
    let mut inputs = refs(&texts);
    inputs.extend(["", "A great movie.", "Dreadful. A waste of two hours."]);
    let one = load(
        &minilm(),
        Some(&peft_adapter()),
        PredictOptions::default().with_batch_size(1),
    );
    let all = load(&minilm(), Some(&peft_adapter()), PredictOptions::default());
    assert_eq!((all.max_len(), all.batch_size()), (256, 32));
    let a = one.predict(&inputs).unwrap();
    let b = all.predict(&inputs).unwrap();
    assert_same_predictions(&a, &b, 1e-5);
    assert_eq!(a[4].text, "", "the empty text is predicted too");
    // The same text in different batches (batch size 1) and positions: the same result.
    assert_eq!(a[5].text, a[0].text);
    assert_same_predictions(&a[0..1], &a[5..6], 0.0);
    assert!(all.predict(&[]).unwrap().is_empty());
}

#[test]
fn saved_merged_model_directory_predicts_like_base_plus_adapter() {
    let adapted = load(&minilm(), Some(&peft_adapter()), PredictOptions::default());
    let dir = tempfile::tempdir().unwrap();
    imdb_lora_encoder::save_pretrained(
        adapted.model(),
        adapted.config(),
        dir.path(),
        imdb_lora_encoder::WeightDtype::F32,
    )
    .unwrap();
    imdb_lora_encoder::copy_tokenizer_files(&minilm(), dir.path()).unwrap();
    let saved = load(dir.path(), None, PredictOptions::default());
    let (texts, _) = sentences();
    assert_same_predictions(
        &adapted.predict(&refs(&texts)).unwrap(),
        &saved.predict(&refs(&texts)).unwrap(),
        1e-6,
    );
}

/// The tiny fixture model (vocab 99, 64 positions) with a made-up 99-token vocabulary.
fn tiny_dir_with_vocab() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    imdb_lora_testkit::fixtures::write_tiny_classifier(dir.path()).unwrap();
    dir
}

/// A base model with a two-label config under an adapter trained with four labels: the
/// adapter's head decides (PEFT would need `num_labels=4` told), with generic names, and the
/// predictions give every class's probability.
#[test]
fn an_adapter_with_another_number_of_labels_sets_the_heads_size() {
    let dir = tiny_dir_with_vocab();
    let p = load(
        dir.path(),
        Some(&fixture("peft/tiny4/adapter")),
        PredictOptions::default(),
    );
    assert_eq!(
        p.label_names(),
        ["LABEL_0", "LABEL_1", "LABEL_2", "LABEL_3"]
    );
    let preds = p.predict(&["w3 w4 w5", "w9"]).unwrap();
    for pred in &preds {
        assert_eq!(pred.probs.len(), 4);
        assert!((pred.probs.iter().map(|(_, p)| p).sum::<f64>() - 1.0).abs() < 1e-12);
        assert_eq!(pred.neg_prob(), None);
        assert!(p.label_names().contains(&pred.label.as_str()));
    }
}

#[test]
fn tiny_model_max_len_is_capped_and_config_labels_are_used() {
    let dir = tiny_dir_with_vocab();
    let p = load(dir.path(), None, PredictOptions::default());
    assert_eq!(p.max_len(), 64, "capped at max_position_embeddings");
    assert_eq!(p.label_names(), ["neg", "pos"]);
    let long = "w1 ".repeat(100);
    let preds = p.predict(&[long.as_str(), "w3 w4", ""]).unwrap();
    assert_eq!(p.encode(&[long.as_str()]).unwrap()[0].ids.len(), 64);
    assert_eq!(preds.len(), 3);
    for pred in &preds {
        assert!((pred.neg_prob().unwrap() + pred.pos_prob().unwrap() - 1.0).abs() < 1e-12);
        assert!(["neg", "pos"].contains(&pred.label.as_str()));
    }
    let json = serde_json::to_value(&preds[1]).unwrap();
    let mut keys: Vec<&str> = json
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        ["label", "neg_prob", "pos_prob", "probs", "score", "text"]
    );
}

fn load_err(model: &Path, adapter: Option<&Path>) -> (InferError, String) {
    let err = Predictor::<B>::from_dir(
        model,
        &adapters(adapter),
        PredictOptions::default(),
        &Default::default(),
    )
    .unwrap_err();
    let msg = err.to_string();
    (err, msg)
}

#[test]
fn wrong_directories_are_refused_naming_the_file() {
    let (err, msg) = load_err(Path::new("/nonexistent/model"), None);
    assert!(
        matches!(err, InferError::NoModelDir { .. }) && msg.contains("/nonexistent/model"),
        "{msg}"
    );

    let (err, msg) = load_err(&peft_adapter(), None);
    assert!(
        matches!(err, InferError::AdapterGivenAsModel { .. }),
        "{msg}"
    );
    assert!(msg.contains("peft/minilm/adapter"), "{msg}");

    let (err, msg) = load_err(&minilm(), Some(&minilm()));
    assert!(
        matches!(err, InferError::ModelGivenAsAdapter { .. }),
        "{msg}"
    );

    let (err, msg) = load_err(&minilm(), Some(Path::new("/nonexistent/adapter")));
    assert!(
        matches!(err, InferError::MissingFile { .. }) && msg.contains("/nonexistent/adapter"),
        "{msg}"
    );

    // MiniLM is a bare encoder: without an adapter its head would be random.
    let (err, msg) = load_err(&minilm(), None);
    assert!(matches!(err, InferError::NoClassifierHead { .. }), "{msg}");
    assert!(msg.contains("model.safetensors"), "{msg}");

    // The tiny checkpoint has no tokenizer files.
    let (err, msg) = load_err(&fixture("tiny_bert/seqcls"), None);
    assert!(
        matches!(err, InferError::MissingFile { .. }) && msg.contains("tokenizer.json"),
        "{msg}"
    );

    // A foreign tokenizer: MiniLM's 30,522 tokens on the 99-token tiny model.
    let dir = tiny_dir_with_vocab();
    std::fs::copy(
        minilm().join("tokenizer.json"),
        dir.path().join("tokenizer.json"),
    )
    .unwrap();
    let (err, msg) = load_err(dir.path(), None);
    assert!(matches!(err, InferError::VocabMismatch { .. }), "{msg}");
    assert!(
        msg.contains("tokenizer.json") && msg.contains("30522"),
        "{msg}"
    );

    // An adapter for another base model (MiniLM, hidden 384) on the tiny model (hidden 32).
    let dir = tiny_dir_with_vocab();
    let (err, msg) = load_err(dir.path(), Some(&peft_adapter()));
    assert!(matches!(err, InferError::Bert(_)), "{msg}");
    assert!(
        msg.contains("adapter_model.safetensors") && msg.contains("[8, 384]"),
        "{msg}"
    );

    let dir = tiny_dir_with_vocab();
    std::fs::remove_file(dir.path().join("model.safetensors")).unwrap();
    let (_, msg) = load_err(dir.path(), None);
    assert!(msg.contains("model.safetensors"), "{msg}");

    let dir = tiny_dir_with_vocab();
    let config = std::fs::read_to_string(dir.path().join("config.json")).unwrap();
    std::fs::write(
        dir.path().join("config.json"),
        config.replace("\"1\": \"pos\"", "\"1\": \"pos\", \"2\": \"meh\""),
    )
    .unwrap();
    // Three labels over a two-output head: the checkpoint's shape says so.
    let (err, msg) = load_err(dir.path(), None);
    assert!(matches!(err, InferError::Bert(_)), "{msg}");
    assert!(
        msg.contains("classifier.weight") && msg.contains("[3, 32]"),
        "{msg}"
    );
    let mut one: serde_json::Value = serde_json::from_str(&config).unwrap();
    one["id2label"] = serde_json::json!({"0": "score"});
    one["label2id"] = serde_json::json!({"score": 0});
    std::fs::write(dir.path().join("config.json"), one.to_string()).unwrap();
    let (err, msg) = load_err(dir.path(), None);
    assert!(
        matches!(err, InferError::TooFewLabels { found: 1, .. }),
        "{msg}"
    );

    let err = Predictor::<B>::from_dir(
        tiny_dir_with_vocab().path(),
        &[],
        PredictOptions::default().with_batch_size(0),
        &Default::default(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("batch_size"), "{err}");
    let err = Predictor::<B>::from_dir(
        tiny_dir_with_vocab().path(),
        &[],
        PredictOptions::default().with_max_len(1),
        &Default::default(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("max_len"), "{err}");
}

/// A second adapter for MiniLM: the PEFT fixture's with every LoRA B factor scaled by
/// `scale` and the head's weights by `head`, written to a temporary directory.
fn altered_adapter(scale: f32, head: f32) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let src = peft_adapter();
    std::fs::copy(
        src.join("adapter_config.json"),
        dir.path().join("adapter_config.json"),
    )
    .unwrap();
    let bytes = std::fs::read(src.join("adapter_model.safetensors")).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let mut owned: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    for (name, view) in st.tensors() {
        let factor = if name.contains("lora_B") {
            scale
        } else if name.contains("classifier") {
            head
        } else {
            1.0
        };
        let data: Vec<u8> = view
            .data()
            .chunks_exact(4)
            .flat_map(|c| (f32::from_le_bytes(c.try_into().unwrap()) * factor).to_le_bytes())
            .collect();
        owned.push((name, view.shape().to_vec(), data));
    }
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = owned
        .iter()
        .map(|(n, s, d)| {
            (
                n.clone(),
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), d)
                    .unwrap(),
            )
        })
        .collect();
    safetensors::serialize_to_file(views, None, &dir.path().join("adapter_model.safetensors"))
        .unwrap();
    dir
}

/// Two adapters over one base, run unmerged side by side, give what each gives alone
/// (merged), and the first is the default.
#[test]
fn several_adapters_share_the_base_and_each_predicts_as_alone() {
    let (texts, _) = sentences();
    let other = altered_adapter(-3.0, 2.0);
    let both = Predictor::<B>::from_dir(
        &minilm(),
        &[
            Adapter::from_dir(&peft_adapter()),
            Adapter {
                name: "other".into(),
                dir: other.path().to_path_buf(),
            },
        ],
        PredictOptions::default(),
        &Default::default(),
    )
    .unwrap();
    let info = both.classifiers();
    assert_eq!(info.len(), 2);
    assert_eq!(
        (info[0].name.as_deref(), info[1].name.as_deref()),
        (Some("adapter"), Some("other"))
    );
    assert!(!info[0].merged && !info[1].merged && info[0].rank == Some(8));
    let ids = both.encode(&refs(&texts)).unwrap();
    let inputs: Vec<&[u32]> = ids.iter().map(|t| t.ids.as_slice()).collect();
    for (index, dir) in [(0, peft_adapter()), (1, other.path().to_path_buf())] {
        let alone = load(&minilm(), Some(&dir), PredictOptions::default());
        assert!(alone.classifiers()[0].merged);
        let want = alone.predict(&refs(&texts)).unwrap();
        let logits = both.logits(index, &inputs).unwrap();
        let got: Vec<Prediction> = texts
            .iter()
            .zip(&logits)
            .map(|(t, l)| both.prediction(index, t, l))
            .collect();
        assert_same_predictions(&got, &want, 1e-5);
    }
    // The two adapters really differ, so the test above could fail.
    let a = both.logits(0, &inputs).unwrap();
    let b = both.logits(1, &inputs).unwrap();
    assert!((a[0][0] - b[0][0]).abs() > 1e-3, "{a:?} {b:?}");
    assert_eq!(both.predict(&refs(&texts)).unwrap()[0].probs.len(), 2);

    let err = Predictor::<B>::from_dir(
        &minilm(),
        &[
            Adapter::from_dir(&peft_adapter()),
            Adapter::from_dir(&peft_adapter()),
        ],
        PredictOptions::default(),
        &Default::default(),
    )
    .unwrap_err();
    assert!(matches!(err, InferError::DuplicateAdapter { .. }), "{err}");
}

/// Left truncation keeps a long text's tail, right its head; both at most max_len and marked.
#[test]
fn text_input_cuts_from_the_side_asked() {
    let p = load(
        &minilm(),
        Some(&peft_adapter()),
        PredictOptions::default().with_max_len(8),
    );
    let text = "one two three four five six seven eight nine ten eleven twelve";
    let head = p
        .input()
        .encode(text, imdb_lora_infer::Side::Right)
        .unwrap();
    let tail = p.input().encode(text, imdb_lora_infer::Side::Left).unwrap();
    assert!(head.truncated && tail.truncated);
    assert_eq!((head.ids.len(), tail.ids.len()), (8, 8));
    let full = imdb_lora_data::TextTokenizer::from_dir(&minilm(), 64)
        .unwrap()
        .encode(text)
        .unwrap();
    assert_eq!(head.ids[..7], full[..7]);
    assert_eq!(tail.ids[1..], full[full.len() - 7..]);
    assert_eq!(tail.ids[0], full[0]);
    let short = p
        .input()
        .encode("one", imdb_lora_infer::Side::Left)
        .unwrap();
    assert!(!short.truncated);
}

/// A model whose config.json records `--long-text window`: predict splits a long text into
/// the windows it was trained on (the recorded `max_len`, whatever the options say) and
/// answers with the softmax of the mean of their logits; a short text is one window.
#[test]
fn a_recorded_window_rule_is_applied_and_the_windows_logits_averaged() {
    let dir = tempfile::tempdir().unwrap();
    let rule = r#"{"rule": "window", "stride": 4, "max_len": 16}"#;
    imdb_lora_testkit::shared::write_minilm_with(dir.path(), "imdb_lora_long_text", rule);
    let p = load(dir.path(), Some(&peft_adapter()), PredictOptions::default());
    assert_eq!(p.max_len(), 16, "the recorded window length");
    let long = "a triumph of a film, warm and funny, though the middle drags and the ending \
                is a mess that nearly undoes everything good before it";
    let tokens = p.encode(&[long, "fine"]).unwrap();
    let windows: Vec<&[u32]> = tokens[0].sequences().map(Vec::as_slice).collect();
    assert!(windows.len() >= 3 && windows.iter().all(|w| w.len() <= 16));
    assert!(!tokens[0].truncated && tokens[1].more.is_empty());
    let each = p.logits(0, &windows).unwrap();
    let mean = imdb_lora_infer::mean_logits(&each);
    let expected = imdb_lora_infer::softmax(&mean);
    let got = p.predict(&[long, "fine"]).unwrap();
    let probs: Vec<f64> = got[0].probs.iter().map(|(_, p)| *p).collect();
    for (g, e) in probs.iter().zip(&expected) {
        assert!((g - e).abs() < 1e-6, "{probs:?} vs {expected:?}");
    }
    // Not the first window's alone: the others count.
    let first = imdb_lora_infer::softmax(&each[0]);
    assert!(probs.iter().zip(&first).any(|(g, f)| (g - f).abs() > 1e-4));
    // A bad record is an error naming the file and the key.
    let bad = tempfile::tempdir().unwrap();
    imdb_lora_testkit::shared::write_minilm_with(
        bad.path(),
        "imdb_lora_long_text",
        r#"{"rule": "sideways"}"#,
    );
    let (_, message) = load_err(bad.path(), Some(&peft_adapter()));
    assert!(
        message.contains("config.json") && message.contains("imdb_lora_long_text"),
        "{message}"
    );
}

//! TEI's contract on MiniLM + the PEFT adapter: shapes, scores equal to `predict`'s, the
//! length rule, the timing headers, `/info`, `/health`, `/metrics`, and refusals.

use imdb_lora_infer::{Adapter, PredictOptions};
use serde_json::{Value, json};

use crate::client::{config, get, minilm, minilm_server, peft_adapter, post, predictor, start};

const TEXTS: [&str; 4] = [
    "A triumph from start to finish; I loved every minute.",
    "Dull, predictable and far too long.",
    "It was fine.",
    "The best film of the year, with a cast at the top of its game.",
];

/// `[{score, label}]` from a single-input answer, as (label, score) in answer order.
fn pairs(v: &Value) -> Vec<(String, f64)> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["label"].as_str().unwrap().to_string(),
                s["score"].as_f64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn predict_answers_as_tei_with_predicts_probabilities() {
    let options = PredictOptions::default().with_max_len(32);
    let reference = predictor(&minilm(), &[Adapter::from_dir(&peft_adapter())], options);
    let want = reference.predict(&TEXTS).unwrap();
    let server = start(
        predictor(&minilm(), &[Adapter::from_dir(&peft_adapter())], options),
        config(),
    );

    // One text: a list of every class, highest first, probabilities summing to 1.
    let a = post(
        &server,
        "/predict",
        &json!({"inputs": TEXTS[0]}).to_string(),
    );
    assert_eq!(a.status, 200, "{}", a.body);
    let got = pairs(&a.json());
    assert_eq!(got.len(), 2);
    assert!(got[0].1 >= got[1].1);
    assert_eq!(got[0].0, want[0].label);
    for (label, score) in &got {
        let p = want[0].prob(label).unwrap();
        assert!(
            (score - p).abs() < 1e-6,
            "{label}: {score} vs predict's {p}"
        );
    }
    for h in [
        "x-compute-type",
        "x-compute-time",
        "x-compute-characters",
        "x-compute-tokens",
        "x-total-time",
        "x-tokenization-time",
        "x-queue-time",
        "x-inference-time",
    ] {
        assert!(a.header(h).is_some(), "{h} missing: {:?}", a.headers);
    }
    assert_eq!(
        a.header("x-compute-characters"),
        Some(TEXTS[0].chars().count().to_string().as_str())
    );

    // A batch, both shapes: one answer per text, in order.
    for inputs in [json!(TEXTS), json!(TEXTS.map(|t| [t]))] {
        let a = post(&server, "/predict", &json!({"inputs": inputs}).to_string());
        assert_eq!(a.status, 200, "{}", a.body);
        let answers = a.json();
        let answers = answers.as_array().unwrap();
        assert_eq!(answers.len(), TEXTS.len());
        for (answer, w) in answers.iter().zip(&want) {
            let got = pairs(answer);
            assert_eq!(got[0].0, w.label);
            for (label, score) in &got {
                assert!((score - w.prob(label).unwrap()).abs() < 1e-6);
            }
        }
    }

    // raw_scores: the logits, whose softmax is the probabilities.
    let a = post(
        &server,
        "/predict",
        &json!({"inputs": TEXTS[1], "raw_scores": true}).to_string(),
    );
    let raw = pairs(&a.json());
    let ids = reference.encode(&[TEXTS[1]]).unwrap();
    let logits = reference.logits(0, &[ids[0].ids.as_slice()]).unwrap();
    let names = reference.label_names();
    for (label, score) in &raw {
        let i = names.iter().position(|n| n == label).unwrap();
        assert!((score - f64::from(logits[0][i])).abs() < 1e-5, "{label}");
    }
    assert!(raw[0].1 >= raw[1].1);

    // Over the 32-token limit: refused unless truncate, which cuts from the side asked.
    let long = TEXTS[3].repeat(4);
    let a = post(
        &server,
        "/predict",
        &json!({"inputs": long, "truncate": false}).to_string(),
    );
    let msg = a.assert_error(422, "tokenizer");
    assert!(
        msg.contains("32 tokens") && msg.contains("truncate"),
        "{msg}"
    );
    let a = post(&server, "/predict", &json!({"inputs": long}).to_string());
    a.assert_error(422, "tokenizer");
    let right = post(
        &server,
        "/predict",
        &json!({"inputs": long, "truncate": true}).to_string(),
    );
    let left = post(
        &server,
        "/predict",
        &json!({"inputs": long, "truncate": true, "truncation_direction": "left"}).to_string(),
    );
    assert_eq!((right.status, left.status), (200, 200));
    assert_eq!(right.header("x-compute-tokens"), Some("32"));
    let head = reference.predict(&[long.as_str()]).unwrap();
    let got = pairs(&right.json());
    assert!((got[0].1 - head[0].prob(&got[0].0).unwrap()).abs() < 1e-6);
    assert_ne!(right.body, left.body, "the tail differs from the head");
}

#[test]
fn refusals_are_tei_errors_and_the_server_keeps_serving() {
    let mut c = config();
    c.limits.max_client_batch_size = 3;
    c.limits.payload_limit = 10_000;
    let server = minilm_server(c);
    let post_json = |v: Value| post(&server, "/predict", &v.to_string());
    post_json(json!({"inputs": []})).assert_error(400, "empty");
    post_json(json!({"inputs": ""})).assert_error(400, "empty");
    let msg = post_json(json!({"inputs": ["a", ""]})).assert_error(400, "empty");
    assert!(msg.contains("inputs[1]"), "{msg}");
    let msg = post_json(json!({"inputs": ["a", "b", "c", "d"]})).assert_error(413, "validation");
    assert!(msg.contains("4 > maximum allowed batch size 3"), "{msg}");
    let msg = post_json(json!({"inputs": "x".repeat(20_000)})).assert_error(413, "validation");
    assert!(msg.contains("10000 bytes"), "{msg}");
    post(&server, "/predict", "{\"inputs\": ").assert_error(400, "validation");
    post_json(json!({"inputs": 5})).assert_error(422, "validation");
    let msg = post_json(json!({"inputs": "a", "adapter": "nope"})).assert_error(422, "validation");
    assert!(msg.contains("\"nope\"") && msg.contains("adapter"), "{msg}");
    get(&server, "/nowhere").assert_error(404, "validation");
    get(&server, "/predict").assert_error(405, "validation");
    // Still serving.
    let a = post_json(json!({"inputs": "Wonderful."}));
    assert_eq!(a.status, 200, "{}", a.body);
    // The adapter by name works too.
    let a = post_json(json!({"inputs": "Wonderful.", "adapter": "adapter"}));
    assert_eq!(a.status, 200, "{}", a.body);

    let m = get(&server, "/metrics");
    assert_eq!(m.status, 200);
    for line in [
        "te_request_success{method=\"single\"} 2",
        "te_request_failure{err=\"empty\"} 3",
        "te_http_response_count{status=\"413\"} 2",
        "te_http_response_count{status=\"404\"} 1",
        "te_request_inference_duration_count 2",
    ] {
        assert!(m.body.contains(line), "{line} in\n{}", m.body);
    }
}

#[test]
fn info_health_and_page() {
    let server = minilm_server(config());
    let info = get(&server, "/info").json();
    assert_eq!(info["model_id"], "test-model");
    assert_eq!(
        info["model_type"]["classifier"]["id2label"],
        json!({"0": "neg", "1": "pos"})
    );
    assert_eq!(info["model_type"]["classifier"]["label2id"]["pos"], 1);
    assert_eq!(info["max_input_length"], 256);
    assert_eq!(info["max_batch_tokens"], 16384);
    assert_eq!(info["max_client_batch_size"], 32);
    assert_eq!(info["max_concurrent_requests"], 512);
    assert_eq!(info["auto_truncate"], false);
    assert_eq!(info["family"], "bert");
    assert_eq!(info["adapters"][0]["name"], "adapter");
    assert_eq!(info["adapters"][0]["merged"], true);
    assert_eq!(info["default_adapter"], "adapter");
    let h = get(&server, "/health");
    assert_eq!(h.status, 200);
    let page = get(&server, "/");
    assert_eq!(page.status, 200);
    assert!(page.content_type.starts_with("text/html"));
    assert!(page.body.contains("/predict"), "the page calls /predict");
}

/// A model trained on windows (its config.json records `--long-text window`): the server
/// splits a long text as `predict` does, runs every window and answers with the softmax of
/// their mean logits; `truncate: false` does not refuse it, since nothing is cut.
#[test]
fn a_windowed_model_answers_long_texts_as_predict_does() {
    let dir = tempfile::tempdir().unwrap();
    let rule = r#"{"rule": "window", "stride": 4, "max_len": 16}"#;
    imdb_lora_testkit::shared::write_minilm_with(dir.path(), "imdb_lora_long_text", rule);
    let adapters = [Adapter::from_dir(&peft_adapter())];
    let reference = predictor(dir.path(), &adapters, PredictOptions::default());
    let long = TEXTS[3].repeat(3);
    let want = reference.predict(&[long.as_str(), TEXTS[2]]).unwrap();
    assert!(reference.encode(&[long.as_str()]).unwrap()[0].more.len() >= 2);
    let server = start(
        predictor(dir.path(), &adapters, PredictOptions::default()),
        config(),
    );
    let a = post(
        &server,
        "/predict",
        &json!({"inputs": [long, TEXTS[2]], "truncate": false}).to_string(),
    );
    assert_eq!(a.status, 200, "{}", a.body);
    let answers = a.json();
    for (answer, want) in answers.as_array().unwrap().iter().zip(&want) {
        for (label, score) in pairs(answer) {
            let p = want.prob(&label).unwrap();
            assert!(
                (score - p).abs() < 1e-6,
                "{label}: {score} vs predict's {p}"
            );
        }
    }
}

//! Two adapters over one base: a mixed, concurrent stream of requests, each answered with
//! its own adapter's `predict` results.

use std::path::Path;

use imdb_lora_infer::{Adapter, PredictOptions, Prediction};
use serde_json::json;

use crate::client::{config, get, minilm, peft_adapter, post, predictor, start};

/// The PEFT fixture adapter with every LoRA B factor and the head scaled: another adapter.
fn other_adapter(dir: &Path) {
    let src = peft_adapter();
    std::fs::copy(
        src.join("adapter_config.json"),
        dir.join("adapter_config.json"),
    )
    .unwrap();
    let bytes = std::fs::read(src.join("adapter_model.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let owned: Vec<(String, Vec<usize>, Vec<u8>)> = st
        .tensors()
        .into_iter()
        .map(|(name, view)| {
            let factor: f32 = if name.contains("lora_B") {
                -3.0
            } else if name.contains("classifier") {
                2.0
            } else {
                1.0
            };
            let data = view
                .data()
                .chunks_exact(4)
                .flat_map(|c| (f32::from_le_bytes(c.try_into().unwrap()) * factor).to_le_bytes())
                .collect();
            (name, view.shape().to_vec(), data)
        })
        .collect();
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = owned
        .iter()
        .map(|(n, s, d)| {
            let view = safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), d)
                .unwrap();
            (n.clone(), view)
        })
        .collect();
    safetensors::serialize_to_file(views, None, &dir.join("adapter_model.safetensors")).unwrap();
}

#[test]
fn a_mixed_stream_gets_each_adapters_own_answers() {
    let other = tempfile::tempdir().unwrap();
    other_adapter(other.path());
    let a = Adapter {
        name: "imdb".into(),
        dir: peft_adapter(),
    };
    let b = Adapter {
        name: "flipped".into(),
        dir: other.path().to_path_buf(),
    };
    let texts: Vec<String> = (0..24)
        .map(|i| {
            format!(
                "Review {i}: {}",
                [
                    "great fun",
                    "a dull mess",
                    "fine, I suppose",
                    "superb acting"
                ][i % 4]
            )
        })
        .collect();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let want = |adapter: &Adapter| -> Vec<Prediction> {
        predictor(
            &minilm(),
            std::slice::from_ref(adapter),
            PredictOptions::default(),
        )
        .predict(&refs)
        .unwrap()
    };
    let (want_a, want_b) = (want(&a), want(&b));
    assert_ne!(
        want_a.iter().map(|p| &p.label).collect::<Vec<_>>(),
        want_b.iter().map(|p| &p.label).collect::<Vec<_>>(),
        "the adapters must disagree somewhere for this test to mean anything"
    );

    let server = start(
        predictor(&minilm(), &[a, b], PredictOptions::default()),
        config(),
    );
    let info = get(&server, "/info").json();
    assert_eq!(info["adapters"][0]["merged"], false);
    assert_eq!(info["adapters"][1]["name"], "flipped");

    std::thread::scope(|scope| {
        for worker in 0..8 {
            let (server, texts, want_a, want_b) = (&server, &texts, &want_a, &want_b);
            scope.spawn(move || {
                for i in (worker..texts.len() * 2).step_by(8) {
                    let (text_index, adapter) = (i % texts.len(), i % 2);
                    let name = ["imdb", "flipped"][adapter];
                    // Odd workers leave the default (the first adapter) implicit.
                    let body = if adapter == 0 && worker % 2 == 1 {
                        json!({"inputs": texts[text_index]})
                    } else {
                        json!({"inputs": texts[text_index], "adapter": name})
                    };
                    let answer = post(server, "/predict", &body.to_string());
                    assert_eq!(answer.status, 200, "{}", answer.body);
                    let v = answer.json();
                    let want = [want_a, want_b][adapter];
                    let best = &v[0];
                    assert_eq!(best["label"], want[text_index].label.as_str(), "{name} {i}");
                    let p = want[text_index]
                        .prob(best["label"].as_str().unwrap())
                        .unwrap();
                    let got = best["score"].as_f64().unwrap();
                    assert!(
                        (got - p).abs() < 1e-5,
                        "{name} text {text_index}: {got} vs {p}"
                    );
                }
            });
        }
    });
}

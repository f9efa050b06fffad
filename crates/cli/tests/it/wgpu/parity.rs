//! The encoder and classifier on wgpu against transformers' outputs (the fixtures the CPU
//! parity tests use, `scripts/make_fixtures.py`), at the CPU tests' tolerances: the GPU sums
//! in another order than the CPU, but in f32 as they do, so the differences stay at the
//! rounding level (measured values are printed).

use imdb_lora_encoder::bert::BertModel;
use imdb_lora_encoder::{Encoder, SequenceClassifier, load_classifier};

use super::*;

#[test]
fn tiny_bert_matches_transformers_hidden_pooled_and_logits() {
    let Some(device) = device() else { return };
    let _lock = device_lock();
    let (model, _) = load_classifier::<W>(&fixture("tiny_bert/seqcls"), &device, 0).unwrap();
    let e = Expected::open(&fixture("tiny_bert/expected.safetensors"));
    let (ids, mask, types) = (
        e.ids::<W>("input_ids", &device),
        e.ids::<W>("attention_mask", &device),
        e.ids::<W>("token_type_ids", &device),
    );
    let out = bert(&model)
        .forward(ids.clone(), mask.clone(), Some(types.clone()))
        .unwrap();
    assert_close(
        "tiny last_hidden_state",
        &values(out.last_hidden_state),
        &e.f32("last_hidden_state"),
        1e-5,
    );
    assert_close(
        "tiny pooler_output",
        &values(out.pooler_output.unwrap()),
        &e.f32("pooler_output"),
        1e-5,
    );
    let logits = model.forward(ids, mask, Some(types)).unwrap();
    assert_close("tiny logits", &values(logits), &e.f32("logits"), 1e-5);
}

#[test]
fn minilm_matches_transformers_on_real_sentences() {
    let Some(device) = device() else { return };
    let _lock = device_lock();
    let (model, _) = load_classifier::<W>(&minilm_dir(), &device, 0).unwrap();
    let e = Expected::open(&fixture("minilm/expected.safetensors"));
    let out = bert(&model)
        .forward(
            e.ids::<W>("input_ids", &device),
            e.ids::<W>("attention_mask", &device),
            Some(e.ids::<W>("token_type_ids", &device)),
        )
        .unwrap();
    assert_close(
        "MiniLM last_hidden_state",
        &values(out.last_hidden_state),
        &e.f32("last_hidden_state"),
        1e-4,
    );
    assert_close(
        "MiniLM pooler_output",
        &values(out.pooler_output.unwrap()),
        &e.f32("pooler_output"),
        1e-4,
    );
}

fn bert<B: burn::tensor::backend::Backend>(model: &SequenceClassifier<B>) -> &BertModel<B> {
    match &model.encoder {
        Encoder::Bert(m) => m,
        _ => panic!("not a BERT-family model"),
    }
}

/// Every other family once, through the kernels the GPU backends run (the CPU tests'
/// fixtures and tolerance): RoBERTa's positions, ELECTRA's projected embeddings and GELU
/// head, DistilBERT's layers and head, DeBERTa-v3 and ModernBERT, and a PEFT adapter on each.
#[test]
fn every_family_matches_transformers_logits() {
    let Some(device) = device() else { return };
    let _lock = device_lock();
    for name in [
        "families/roberta",
        "families/electra",
        "families/distilbert",
        // DeBERTa-v3's position terms through the composed biased attention; ModernBERT's
        // rotary positions, sliding window and mean pooling.
        "modern/deberta-v2",
        "modern/modernbert",
    ] {
        let dir = fixture(name);
        let (model, _) = load_classifier::<W>(&dir.join("seqcls"), &device, 0).unwrap();
        let e = Expected::open(&dir.join("expected.safetensors"));
        let types = e.has("token_type_ids");
        let run = |m: &SequenceClassifier<W>, e: &Expected| {
            m.forward(
                e.ids::<W>("input_ids", &device),
                e.ids::<W>("attention_mask", &device),
                types.then(|| e.ids::<W>("token_type_ids", &device)),
            )
            .unwrap()
        };
        assert_close(
            &format!("{name} logits"),
            &values(run(&model, &e)),
            &e.f32("logits"),
            1e-5,
        );
        let peft = Expected::open(&dir.join("peft/expected.safetensors"));
        let adapted = imdb_lora_encoder::PeftAdapter::read(&dir.join("peft/adapter"))
            .unwrap()
            .apply(&model)
            .unwrap();
        assert_close(
            &format!("{name} PEFT logits"),
            &values(run(&adapted, &peft)),
            &peft.f32("logits"),
            1e-5,
        );
    }
}

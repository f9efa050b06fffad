#!/usr/bin/env python3
"""Load a saved model directory with plain transformers (no PEFT) and print logits as JSON.

Proves that a directory written by the Rust ``bert::save_pretrained`` (LoRA merged
into the weights) is an ordinary Hugging Face checkpoint:
``AutoModelForSequenceClassification.from_pretrained(dir)`` must load it with no
missing, unexpected or mismatched keys (exit 2 otherwise), and its logits are what
the Rust test compares with.

Examples (from the repository root)::

    /work/venv-fx/bin/python scripts/hf_logits.py --model fixtures/export/tiny/model \\
        --inputs fixtures/tiny_bert/expected.safetensors \\
        --save fixtures/export/tiny/expected.safetensors

    /work/venv-fx/bin/python scripts/hf_logits.py --model outputs/run1/model \\
        --tokenizer ../shared/hub/sentence-transformers/all-MiniLM-L6-v2/resolve/main \\
        --texts-json fixtures/minilm/sentences.json

Inputs, one of:

* ``--texts-json FILE``: ``{"max_length": N, "sentences": [...]}`` or a JSON list of
  strings, tokenised with the tokenizer in ``--tokenizer`` (default: ``--model``) as
  one batch, truncation=True, padding to the longest;
* ``--inputs FILE.safetensors`` with ``input_ids`` and ``attention_mask`` (and
  optionally ``token_type_ids``).

Prints one JSON object on stdout: ``loading_info`` (sorted key lists), ``labels``
(id2label), ``logits``, ``probs`` (softmax), ``shape``. ``--save`` writes the inputs
and ``logits`` to a safetensors file. ``--expected FILE`` adds ``max_abs_diff``
against its ``--expected-key`` tensor and exits 1 above ``--tol``.
"""

from __future__ import annotations

import argparse
import sys

import torch

from logits_common import add_io_args, finish, load_inputs, quiet_transformers


def main() -> int:
    ap = argparse.ArgumentParser(description="transformers logits of a saved model directory")
    ap.add_argument("--model", required=True, help="model directory (config.json + model.safetensors)")
    add_io_args(ap, tol=1e-5)
    args = ap.parse_args()

    quiet_transformers()
    from transformers import AutoModelForSequenceClassification

    inputs = load_inputs(args, args.model)
    model, info = AutoModelForSequenceClassification.from_pretrained(
        args.model, attn_implementation=args.attn, output_loading_info=True
    )
    model.eval()
    loading = {k: sorted(str(x) for x in v) for k, v in info.items()}
    with torch.no_grad():
        logits = model(**inputs).logits.float()
    result = {
        "loading_info": loading,
        "labels": {str(k): v for k, v in model.config.id2label.items()},
        "logits": logits.tolist(),
        "probs": torch.softmax(logits.double(), dim=-1).tolist(),
        "shape": list(logits.shape),
    }
    # Any missing, unexpected or mismatched key means transformers did not take the file as is.
    rc = 2 if any(loading.values()) else 0
    return finish(args, inputs, logits, result, "transformers logits, scripts/hf_logits.py", rc)


if __name__ == "__main__":
    sys.exit(main())

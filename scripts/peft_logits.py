#!/usr/bin/env python3
"""Load a base BERT + a LoRA adapter with Hugging Face PEFT and print logits as JSON.

Used to check that adapters written by the Rust code are real PEFT adapters:
PEFT must load them and produce the same logits as the Rust model.

Examples (from the repository root)::

    /work/venv-fx/bin/python scripts/peft_logits.py \\
        --base ../shared/hub/sentence-transformers/all-MiniLM-L6-v2/resolve/main \\
        --adapter outputs/run1/adapter --texts-json fixtures/minilm/sentences.json

    /work/venv-fx/bin/python scripts/peft_logits.py \\
        --base fixtures/tiny_bert/seqcls --adapter fixtures/peft/tiny/adapter \\
        --inputs fixtures/peft/tiny/expected.safetensors \\
        --expected fixtures/peft/tiny/expected.safetensors

``--base`` is a transformers checkpoint directory (config.json + model.safetensors)
in any BERT convention (bare ``BertModel`` such as all-MiniLM-L6-v2,
``BertForSequenceClassification``, ``BertForPreTraining``); it is loaded with
``AutoModelForSequenceClassification`` (``--num-labels``, default 2) and the
classifier head comes from the adapter (``modules_to_save``).

Inputs, one of:

* ``--texts-json FILE``: ``{"max_length": N, "sentences": [...]}`` (the format of
  ``fixtures/minilm/sentences.json``) or a plain JSON list of strings; tokenised
  with the tokenizer found in ``--tokenizer`` (default: ``--base``) as one batch,
  truncation=True, max_length (``--max-length`` overrides the file, default 512),
  padding to the longest;
* ``--inputs FILE.safetensors`` with ``input_ids`` and ``attention_mask``
  (and optionally ``token_type_ids``), any integer dtype.

Prints one JSON object on stdout: ``logits`` (list of rows), ``shape``, and with
``--merged`` also ``logits_merged`` (after ``merge_and_unload()``).  With
``--expected FILE.safetensors`` it also reports ``max_abs_diff`` against the
tensor ``--expected-key`` (default ``logits``) and exits 1 when that exceeds
``--tol`` (default 1e-4).
"""

from __future__ import annotations

import argparse
import sys

import torch

from logits_common import add_io_args, finish, load_inputs, quiet_transformers


def main() -> int:
    ap = argparse.ArgumentParser(description="PEFT LoRA logits as JSON")
    ap.add_argument("--base", required=True, help="base model directory")
    ap.add_argument("--adapter", required=True, help="PEFT adapter directory (adapter_config.json + adapter_model.safetensors)")
    ap.add_argument("--num-labels", type=int, default=2)
    ap.add_argument("--merged", action="store_true", help="also print logits after merge_and_unload()")
    add_io_args(ap, tol=1e-4)
    args = ap.parse_args()

    quiet_transformers()
    from peft import PeftModel
    from transformers import AutoModelForSequenceClassification

    inputs = load_inputs(args, args.base)
    base = AutoModelForSequenceClassification.from_pretrained(
        args.base, num_labels=args.num_labels, attn_implementation=args.attn
    )
    model = PeftModel.from_pretrained(base, args.adapter).eval()
    with torch.no_grad():
        logits = model(**inputs).logits.float()
    result = {"logits": logits.tolist(), "shape": list(logits.shape)}

    if args.merged:
        merged = model.merge_and_unload().eval()
        with torch.no_grad():
            result["logits_merged"] = merged(**inputs).logits.float().tolist()

    return finish(args, inputs, logits, result, "PEFT logits, scripts/peft_logits.py")


if __name__ == "__main__":
    sys.exit(main())

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
import json
import sys
import warnings

import torch
from safetensors.torch import load_file


def main() -> int:
    ap = argparse.ArgumentParser(description="transformers logits of a saved model directory")
    ap.add_argument("--model", required=True, help="model directory (config.json + model.safetensors)")
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--texts-json", help="JSON file: {max_length, sentences} or a list of strings")
    src.add_argument("--inputs", help="safetensors file with input_ids / attention_mask [/ token_type_ids]")
    ap.add_argument("--tokenizer", help="tokenizer directory (default: --model)")
    ap.add_argument("--max-length", type=int, help="truncation length for --texts-json")
    ap.add_argument("--attn", default="eager", choices=["eager", "sdpa"])
    ap.add_argument("--expected", help="safetensors file with reference logits to compare against")
    ap.add_argument("--expected-key", default="logits")
    ap.add_argument("--tol", type=float, default=1e-5)
    ap.add_argument("--save", help="also write the inputs and logits to this safetensors file")
    args = ap.parse_args()

    torch.set_num_threads(1)
    warnings.filterwarnings("ignore", category=FutureWarning)
    import transformers
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()

    if args.texts_json:
        with open(args.texts_json, encoding="utf-8") as f:
            spec = json.load(f)
        texts = spec["sentences"] if isinstance(spec, dict) else spec
        default_len = spec.get("max_length", 512) if isinstance(spec, dict) else 512
        tok = AutoTokenizer.from_pretrained(args.tokenizer or args.model)
        enc = tok(texts, truncation=True, max_length=args.max_length or default_len,
                  padding="longest", return_tensors="pt")
        inputs = {k: enc[k].to(torch.int64) for k in ("input_ids", "attention_mask", "token_type_ids") if k in enc}
    else:
        t = load_file(args.inputs)
        inputs = {k: t[k].to(torch.int64) for k in ("input_ids", "attention_mask", "token_type_ids") if k in t}

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

    if args.save:
        from safetensors.torch import save_file

        save_file({**{k: v.contiguous() for k, v in inputs.items()}, "logits": logits.contiguous()},
                  args.save, metadata={"description": "transformers logits, scripts/hf_logits.py"})

    rc = 0
    if any(loading.values()):
        rc = 2
    if args.expected:
        ref = load_file(args.expected)[args.expected_key].float()
        diff = float((ref - logits).abs().max())
        result["max_abs_diff"] = diff
        result["tol"] = args.tol
        if diff > args.tol and rc == 0:
            rc = 1

    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return rc


if __name__ == "__main__":
    sys.exit(main())

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
import json
import sys
import warnings

import torch
from safetensors.torch import load_file


def main() -> int:
    ap = argparse.ArgumentParser(description="PEFT LoRA logits as JSON")
    ap.add_argument("--base", required=True, help="base model directory")
    ap.add_argument("--adapter", required=True, help="PEFT adapter directory (adapter_config.json + adapter_model.safetensors)")
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--texts-json", help="JSON file: {max_length, sentences} or a list of strings")
    src.add_argument("--inputs", help="safetensors file with input_ids / attention_mask [/ token_type_ids]")
    ap.add_argument("--tokenizer", help="tokenizer directory (default: --base)")
    ap.add_argument("--max-length", type=int, help="truncation length for --texts-json")
    ap.add_argument("--num-labels", type=int, default=2)
    ap.add_argument("--attn", default="eager", choices=["eager", "sdpa"])
    ap.add_argument("--merged", action="store_true", help="also print logits after merge_and_unload()")
    ap.add_argument("--expected", help="safetensors file with reference logits to compare against")
    ap.add_argument("--expected-key", default="logits")
    ap.add_argument("--tol", type=float, default=1e-4)
    ap.add_argument("--save", help="also write the inputs and logits to this safetensors file")
    args = ap.parse_args()

    torch.set_num_threads(1)
    warnings.filterwarnings("ignore", category=FutureWarning)
    import transformers
    from peft import PeftModel
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()

    if args.texts_json:
        with open(args.texts_json, encoding="utf-8") as f:
            spec = json.load(f)
        if isinstance(spec, dict):
            texts = spec["sentences"]
            max_length = args.max_length or spec.get("max_length", 512)
        else:
            texts = spec
            max_length = args.max_length or 512
        tok = AutoTokenizer.from_pretrained(args.tokenizer or args.base)
        enc = tok(texts, truncation=True, max_length=max_length, padding="longest", return_tensors="pt")
        inputs = {k: enc[k].to(torch.int64) for k in ("input_ids", "attention_mask", "token_type_ids") if k in enc}
    else:
        t = load_file(args.inputs)
        inputs = {k: t[k].to(torch.int64) for k in ("input_ids", "attention_mask", "token_type_ids") if k in t}

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

    if args.save:
        from safetensors.torch import save_file

        save_file({**{k: v.contiguous() for k, v in inputs.items()}, "logits": logits.contiguous()},
                  args.save, metadata={"description": "PEFT logits, scripts/peft_logits.py"})

    rc = 0
    if args.expected:
        ref = load_file(args.expected)[args.expected_key].float()
        diff = float((ref - logits).abs().max())
        result["max_abs_diff"] = diff
        result["tol"] = args.tol
        if diff > args.tol:
            rc = 1

    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return rc


if __name__ == "__main__":
    sys.exit(main())

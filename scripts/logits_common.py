"""Shared plumbing of peft_logits.py and hf_logits.py: input options, tokenisation or
loading of the inputs, and saving / comparing the logits."""
from __future__ import annotations

import json
import sys
import warnings

import torch
from safetensors.torch import load_file, save_file

KEYS = ("input_ids", "attention_mask", "token_type_ids")


def add_io_args(ap, tol: float) -> None:
    """--texts-json | --inputs, --tokenizer, --max-length, --attn, --expected*, --tol, --save."""
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--texts-json", help="JSON file: {max_length, sentences} or a list of strings")
    src.add_argument("--inputs", help="safetensors file with input_ids / attention_mask [/ token_type_ids]")
    ap.add_argument("--tokenizer", help="tokenizer directory (default: the model directory)")
    ap.add_argument("--max-length", type=int, help="truncation length for --texts-json")
    ap.add_argument("--attn", default="eager", choices=["eager", "sdpa"])
    ap.add_argument("--expected", help="safetensors file with reference logits to compare against")
    ap.add_argument("--expected-key", default="logits")
    ap.add_argument("--tol", type=float, default=tol)
    ap.add_argument("--save", help="also write the inputs and logits to this safetensors file")


def quiet_transformers():
    """Single-threaded, deterministic, silent transformers; returns the module."""
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore", category=FutureWarning)
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    return transformers


def load_inputs(args, model_dir: str) -> dict:
    """The model inputs: tokenised --texts-json (padding to the longest) or --inputs."""
    if args.texts_json:
        from transformers import AutoTokenizer

        with open(args.texts_json, encoding="utf-8") as f:
            spec = json.load(f)
        texts = spec["sentences"] if isinstance(spec, dict) else spec
        default_len = spec.get("max_length", 512) if isinstance(spec, dict) else 512
        tok = AutoTokenizer.from_pretrained(args.tokenizer or model_dir)
        enc = tok(texts, truncation=True, max_length=args.max_length or default_len,
                  padding="longest", return_tensors="pt")
        return {k: enc[k].to(torch.int64) for k in KEYS if k in enc}
    t = load_file(args.inputs)
    return {k: t[k].to(torch.int64) for k in KEYS if k in t}


def finish(args, inputs: dict, logits, result: dict, description: str, rc: int = 0) -> int:
    """--save, --expected comparison (exit 1 beyond --tol unless rc is already set), JSON out."""
    if args.save:
        save_file({**{k: v.contiguous() for k, v in inputs.items()}, "logits": logits.contiguous()},
                  args.save, metadata={"description": description})
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

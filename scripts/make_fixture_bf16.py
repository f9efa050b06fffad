#!/usr/bin/env python3
"""Write ``fixtures/bf16/expected.safetensors``: all-MiniLM-L6-v2 with the PEFT adapter of
``fixtures/peft/minilm/adapter`` (LoRA r 8 on query/value, a two-label head) run by
transformers + PEFT in float32, under ``torch.autocast(dtype=torch.bfloat16)`` (mixed
precision, as ``TrainingArguments(bf16=True)`` runs it) and with the whole model cast to
bfloat16, on the 20 real IMDb reviews of ``fixtures/imdb_tokens.json`` (MiniLM ids, up to 256
tokens), padded to the longest.

The Rust test ``bf16::minilm_bf16_logits_match_autocast`` compares our bf16 mixed precision
with the autocast logits; the float32 and pure-bf16 logits say how far bf16 rounding moves
them at all, so the test's tolerance is grounded in PyTorch's own spread.

Run from the repository root, in the fixtures venv (scripts/README.md)::

    /work/venv-fx/bin/python scripts/make_fixture_bf16.py --shared ../shared --out fixtures
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
from peft import PeftModel
from transformers import BertForSequenceClassification

sys.path.insert(0, str(Path(__file__).parent))
import make_fixtures as mf  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shared", type=Path, required=True, help="the shared folder (Hub mirror)")
    ap.add_argument("--out", type=Path, required=True, help="fixtures folder")
    args = ap.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)

    minilm_dir = args.shared / mf.MINILM_REL
    reviews = json.loads((args.out / "imdb_tokens.json").read_text())["reviews"]
    ids = [json.loads(r["input_ids"]) if isinstance(r["input_ids"], str) else r["input_ids"] for r in reviews]
    longest = max(len(i) for i in ids)
    input_ids = torch.zeros(len(ids), longest, dtype=torch.int64)
    attention_mask = torch.zeros(len(ids), longest, dtype=torch.int64)
    for row, seq in enumerate(ids):
        input_ids[row, : len(seq)] = torch.tensor(seq)
        attention_mask[row, : len(seq)] = 1
    inputs = {
        "input_ids": input_ids,
        "attention_mask": attention_mask,
        "token_type_ids": torch.zeros_like(input_ids),
    }

    def load() -> torch.nn.Module:
        base = BertForSequenceClassification.from_pretrained(
            str(minilm_dir), num_labels=2, attn_implementation="eager"
        )
        return PeftModel.from_pretrained(base, str(args.out / "peft" / "minilm" / "adapter")).eval()

    model = load()
    with torch.no_grad():
        logits_f32 = model(**inputs).logits.float()
        with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
            logits_autocast = model(**inputs).logits.float()
        logits_bf16 = load().to(torch.bfloat16)(**inputs).logits.float()

    spread_autocast = mf.max_abs(logits_autocast, logits_f32)
    spread_bf16 = mf.max_abs(logits_bf16, logits_f32)
    mf.log(f"  autocast vs f32 max |diff| = {spread_autocast:.3g}; pure bf16 vs f32 = {spread_bf16:.3g}")
    mf.check(spread_autocast > 1e-4, "autocast actually computed in bf16")
    agree = (logits_autocast.argmax(1) == logits_f32.argmax(1)).float().mean().item()
    mf.log(f"  autocast predictions agree with f32 on {agree:.0%} of reviews")

    path = args.out / "bf16" / "expected.safetensors"
    mf.save_tensors(
        path,
        {
            **inputs,
            "logits_f32": logits_f32,
            "logits_autocast": logits_autocast,
            "logits_bf16": logits_bf16,
        },
        "all-MiniLM-L6-v2 + peft/minilm adapter on 20 IMDb reviews: logits in f32, "
        "under CPU autocast bf16, and fully cast to bf16",
    )
    mf.write_json(
        args.out / "bf16" / "spread.json",
        {
            "autocast_vs_f32_max_abs": mf.fmt(spread_autocast),
            "bf16_vs_f32_max_abs": mf.fmt(spread_bf16),
            "torch": torch.__version__,
        },
    )
    mf.log(f"wrote {path}")


if __name__ == "__main__":
    main()

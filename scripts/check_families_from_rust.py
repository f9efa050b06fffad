#!/usr/bin/env python3
"""Load what the Rust code wrote for every encoder family with transformers and PEFT.

For each ``fixtures/families/<name>/from_rust/`` (written by the ignored Rust test
``families::regenerate_from_rust_fixtures``), or with ``--set modern`` each
``fixtures/modern/{deberta-v2,modernbert}/from_rust/`` (``make_fixture_modern.py``):

* ``model/`` (a merged model) must load with ``AutoModelForSequenceClassification`` as the
  family's own class (``RobertaForSequenceClassification``, ...) with no missing, unexpected
  or mismatched key;
* ``adapter/`` must load with ``PeftModel.from_pretrained`` onto ``<name>/seqcls``;

and the logits of both on the inputs of ``<name>/expected.safetensors`` are written to
``from_rust/expected.safetensors`` (``logits_model``, ``logits_peft``, plus the inputs), which
the Rust test ``families::our_files_of_every_family_give_our_logits_in_transformers_and_peft``
compares with. Exits 2 if anything did not load as is.

    cargo test -p imdb-lora-encoder --test it -- --ignored families::regenerate_from_rust_fixtures
    /work/venv-fx/bin/python scripts/check_families_from_rust.py --fixtures fixtures
    /work/venv-fx/bin/python scripts/check_families_from_rust.py --fixtures fixtures --set modern
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from logits_common import quiet_transformers

FAMILIES = {
    "roberta": "RobertaForSequenceClassification",
    "xlm-roberta": "XLMRobertaForSequenceClassification",
    "camembert": "CamembertForSequenceClassification",
    "electra": "ElectraForSequenceClassification",
    "distilbert": "DistilBertForSequenceClassification",
}
MODERN = {
    "deberta-v2": "DebertaV2ForSequenceClassification",
    "modernbert": "ModernBertForSequenceClassification",
}
SETS = {"families": FAMILIES, "modern": MODERN}
KEYS = ("input_ids", "attention_mask", "token_type_ids")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fixtures", default="fixtures")
    ap.add_argument("--set", choices=sorted(SETS), default="families",
                    help="families: fixtures/families/* (default); modern: fixtures/modern/{deberta-v2,modernbert}")
    args = ap.parse_args()
    quiet_transformers()
    from peft import PeftModel
    from transformers import AutoModelForSequenceClassification

    report, rc = {}, 0
    for name, cls in SETS[args.set].items():
        root = Path(args.fixtures) / args.set / name
        inputs = {k: v.to(torch.int64) for k, v in load_file(root / "expected.safetensors").items() if k in KEYS}
        model, info = AutoModelForSequenceClassification.from_pretrained(
            root / "from_rust" / "model", attn_implementation="eager", output_loading_info=True
        )
        model.eval()
        loading = {k: sorted(str(x) for x in v) for k, v in info.items()}
        base = AutoModelForSequenceClassification.from_pretrained(root / "seqcls", attn_implementation="eager")
        peft = PeftModel.from_pretrained(base, root / "from_rust" / "adapter")
        peft.eval()
        with torch.no_grad():
            logits_model = model(**inputs).logits.float()
            logits_peft = peft(**inputs).logits.float()
        ok = type(model).__name__ == cls and not any(loading.values())
        rc = rc if ok else 2
        report[name] = {
            "class": type(model).__name__,
            "loading_info": loading,
            "model_vs_peft_max_abs_diff": float((logits_model - logits_peft).abs().max()),
        }
        save_file(
            {**{k: v.contiguous() for k, v in inputs.items()},
             "logits_model": logits_model.contiguous(), "logits_peft": logits_peft.contiguous()},
            root / "from_rust" / "expected.safetensors",
            metadata={"description": "transformers / PEFT logits of files written by Rust, scripts/check_families_from_rust.py"},
        )
    json.dump(report, sys.stdout, indent=1)
    sys.stdout.write("\n")
    return rc


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Write ``fixtures/peft/tiny4/``: a PEFT LoRA adapter on the tiny BERT with a FOUR-label
head (issue 18: PEFT files stay interchangeable for N-label heads).

The base is ``fixtures/tiny_bert/bare`` (a bare ``BertModel`` checkpoint, no head), loaded by
transformers as ``BertForSequenceClassification`` with ``num_labels=4`` and named labels; PEFT
wraps it (LoRA r=4, alpha=8 on query/value, ``modules_to_save`` = the classifier), the LoRA
factors and the head are randomised from a fixed seed, and the adapter is saved with
``save_pretrained``. ``expected.safetensors`` holds the inputs and PEFT's logits (unmerged,
merged, head only), exactly as ``make_fixtures.py`` does for ``peft/tiny``, whose functions
this reuses.

Run from the repository root, in the fixtures venv (scripts/README.md)::

    /work/venv-fx/bin/python scripts/make_fixture_classes.py --out fixtures
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import warnings
from pathlib import Path

import torch
import transformers
from transformers import BertForSequenceClassification

sys.path.insert(0, str(Path(__file__).parent))
import make_fixtures as mf  # noqa: E402

NAMES = ["World", "Sports", "Business", "Sci/Tech"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True, help="fixtures folder")
    args = ap.parse_args()
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore", category=FutureWarning)
    torch.use_deterministic_algorithms(True)
    transformers.logging.set_verbosity_error()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    bare = args.out / "tiny_bert" / "bare"
    root = args.out / "peft" / "tiny4"
    if root.exists():
        shutil.rmtree(root)

    def load_base():
        torch.manual_seed(0)  # the fresh head (overwritten by the randomised adapter head)
        return BertForSequenceClassification.from_pretrained(
            str(bare),
            num_labels=len(NAMES),
            id2label=dict(enumerate(NAMES)),
            label2id={n: i for i, n in enumerate(NAMES)},
            attn_implementation="eager",
        )

    checks: dict = {}
    mf.make_peft_case(
        name="tiny4", out=args.out, load_base=load_base, base_name="fixtures/tiny_bert/bare",
        inputs=mf.tiny_inputs(), r=4, alpha=8, lora_std=0.1, head_std=0.1, seed=40, checks=checks,
    )
    checks["versions"] = {"torch": torch.__version__, "transformers": transformers.__version__}
    (root / "checks.json").write_text(json.dumps(checks, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()

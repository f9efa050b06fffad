#!/usr/bin/env python3
"""Write base-size encoder checkpoints with RANDOM weights for speed benchmarks.

Real checkpoints cannot be downloaded here (no Hub), and the speed of a training step or an
evaluation pass does not depend on the weights' values, only on the shapes. So this script
builds each family's ``<Family>ForSequenceClassification`` from a config with the real
checkpoint's shapes (``AutoModelForSequenceClassification.from_config``, seeded, float32,
``num_labels`` 2) and saves it with ``save_pretrained`` (``config.json`` +
``model.safetensors``), under ``<out>/<name>/``:

``bert-base-uncased``
    vocab 30522, hidden 768, 12 layers, 12 heads, intermediate 3072, 512 positions,
    type_vocab_size 2, layer_norm_eps 1e-12, pad 0.
``roberta-base``
    vocab 50265, hidden 768, 12 layers, 12 heads, intermediate 3072, 514 positions, pad 1
    (bos 0, eos 2), type_vocab_size 1, layer_norm_eps 1e-5.
``distilbert-base-uncased``
    vocab 30522, dim 768, 6 layers, 12 heads, hidden_dim 3072, 512 positions,
    sinusoidal_pos_embds false, pad 0.
``electra-base-discriminator``
    vocab 30522, embedding_size 768, hidden 768, 12 layers, 12 heads, intermediate 3072,
    512 positions, type_vocab_size 2, layer_norm_eps 1e-12, pad 0.

Tokenizers: ``tokenizer.json`` and ``tokenizer_config.json`` are copied from the tiny fixture of
the same family (``fixtures/families/<family>/seqcls``: RoBERTa's byte-level BPE for
roberta-base, the uncased WordPiece of the DistilBERT / ELECTRA fixtures for the others; BERT
gets ELECTRA's, whose ``tokenizer_class`` is ``BertTokenizer``), with ``model_max_length`` set
to the real checkpoint's 512. Their vocabularies are tiny (300 / 173 tokens), so a review
tokenises into several times more tokens than with the real vocabulary (median ≈ 660-740 vs
≈ 237 on IMDb) and nearly every review (94-96 %) is cut at ``max_len`` 256, where the real
tokenizer cuts ≈ 43 %. The token ids all lie inside the model's vocabulary; the work per token
is the real model's. Both sides of ``cargo xtask bench`` read the same tokenizer, so they run
the same sequence lengths.

Run from the repository root, in the reference venv::

    /work/venv-fx/bin/python scripts/make_bench_models.py            # all four
    /work/venv-fx/bin/python scripts/make_bench_models.py --only roberta-base

It deletes and rewrites only ``<out>/<name>/`` of the models it writes (default out:
``outputs/bench-models``, git-ignored; ≈ 1.7 GB for all four).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys

FIXTURES = os.path.join("fixtures", "families")

# name -> (fixture family whose tokenizer is copied, transformers config class, config kwargs)
MODELS = {
    "bert-base-uncased": ("electra", "BertConfig", dict(
        vocab_size=30522, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
        intermediate_size=3072, hidden_act="gelu", max_position_embeddings=512,
        type_vocab_size=2, layer_norm_eps=1e-12, pad_token_id=0)),
    "roberta-base": ("roberta", "RobertaConfig", dict(
        vocab_size=50265, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
        intermediate_size=3072, hidden_act="gelu", max_position_embeddings=514,
        type_vocab_size=1, layer_norm_eps=1e-5, pad_token_id=1, bos_token_id=0,
        eos_token_id=2)),
    "distilbert-base-uncased": ("distilbert", "DistilBertConfig", dict(
        vocab_size=30522, dim=768, n_layers=6, n_heads=12, hidden_dim=3072,
        activation="gelu", max_position_embeddings=512, sinusoidal_pos_embds=False,
        pad_token_id=0)),
    "electra-base-discriminator": ("electra", "ElectraConfig", dict(
        vocab_size=30522, embedding_size=768, hidden_size=768, num_hidden_layers=12,
        num_attention_heads=12, intermediate_size=3072, hidden_act="gelu",
        max_position_embeddings=512, type_vocab_size=2, layer_norm_eps=1e-12,
        pad_token_id=0)),
}
MODEL_MAX_LENGTH = 512


def write(name: str, out: str, seed: int) -> None:
    import torch
    import transformers
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    family, config_class, kwargs = MODELS[name]
    config = getattr(transformers, config_class)(num_labels=2, **kwargs)
    torch.manual_seed(seed)
    model = AutoModelForSequenceClassification.from_config(config, dtype=torch.float32)
    model.eval()

    dest = os.path.join(out, name)
    shutil.rmtree(dest, ignore_errors=True)
    os.makedirs(dest)
    model.save_pretrained(dest, safe_serialization=True)

    src = os.path.join(FIXTURES, family, "seqcls")
    shutil.copyfile(os.path.join(src, "tokenizer.json"), os.path.join(dest, "tokenizer.json"))
    with open(os.path.join(src, "tokenizer_config.json")) as f:
        tok_config = json.load(f)
    tok_config["model_max_length"] = MODEL_MAX_LENGTH
    with open(os.path.join(dest, "tokenizer_config.json"), "w") as f:
        json.dump(tok_config, f, indent=2, sort_keys=True)
        f.write("\n")

    # Self-checks: the directory reloads, the pad ids agree, every token id is in the vocab.
    tok = AutoTokenizer.from_pretrained(dest)
    saved = json.load(open(os.path.join(dest, "config.json")))
    if tok.pad_token_id != saved.get("pad_token_id"):
        sys.exit(f"{name}: tokenizer pad id {tok.pad_token_id} != config pad_token_id "
                 f"{saved.get('pad_token_id')}")
    if len(tok) > saved["vocab_size"]:
        sys.exit(f"{name}: tokenizer has {len(tok)} tokens, model vocab {saved['vocab_size']}")
    reloaded = AutoModelForSequenceClassification.from_pretrained(dest)
    params = sum(p.numel() for p in reloaded.parameters())
    dtypes = sorted({str(p.dtype) for p in reloaded.parameters()})
    print(json.dumps({"model": name, "dir": dest, "model_type": saved["model_type"],
                      "architectures": saved.get("architectures"), "parameters": params,
                      "dtypes": dtypes, "tokenizer": type(tok).__name__,
                      "tokenizer_vocab": len(tok), "tokenizer_from": src}), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.path.join("outputs", "bench-models"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--only", action="append", choices=sorted(MODELS),
                    help="write only this model (repeatable; default: all four)")
    a = ap.parse_args()
    if not os.path.isdir(FIXTURES):
        sys.exit(f"make_bench_models: {FIXTURES} not found: run from the repository root")
    for name in a.only or list(MODELS):
        write(name, a.out, a.seed)


if __name__ == "__main__":
    main()

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
``deberta-v3-base``
    DeBERTa-v2 code (``model_type`` "deberta-v2") with microsoft/deberta-v3-base's shapes: vocab
    128100, hidden 768, 12 layers, 12 heads, intermediate 3072, 512 positions, relative
    attention (max_relative_positions -1, position_buckets 256, norm_rel_ebd "layer_norm",
    share_att_key true, pos_att_type p2c + c2p), position_biased_input false,
    type_vocab_size 0, layer_norm_eps 1e-7, ContextPooler 768 wide (gelu, dropout 0), pad 0.
``modernbert-base``
    answerdotai/ModernBERT-base's shapes: vocab 50368, hidden 768, 22 layers, 12 heads,
    intermediate 1152 (GeGLU: ``Wi`` is 768 x 2304), 8192 positions, sliding window 128 with a
    global layer every 3rd (rope theta 160000 global, 10000 local), norm_eps 1e-5, no biases
    (attention, mlp, norm, classifier), classifier_pooling "mean" (what published ModernBERT
    configs carry, e.g. gte-reranker-modernbert-base's and the checkpoint conversion script's;
    transformers' own default is "cls"), pad 50283, cls/bos 50281, sep/eos 50282.

No ``attn_implementation`` is stored in ``config.json``: the reference loads each model with
transformers' default for the family (printed as ``attn_implementation``: "eager" for DeBERTa-v2,
which has no other; "sdpa" for ModernBERT on the CPU).

Tokenizers: ``tokenizer.json`` and ``tokenizer_config.json`` are copied from the tiny fixture of
the same family (``fixtures/families/<family>/seqcls``: RoBERTa's byte-level BPE for
roberta-base, the uncased WordPiece of the DistilBERT / ELECTRA fixtures for the others; BERT
gets ELECTRA's, whose ``tokenizer_class`` is ``BertTokenizer``; ``fixtures/modern/<family>/seqcls``
for the two newer families: the SentencePiece Unigram of the DeBERTa-v2 fixture, the byte-level
BPE of the ModernBERT fixture), with ``model_max_length`` set to the real checkpoint's (512;
8192 for ModernBERT). Their vocabularies are tiny (300 / 173 / 157 / 300 tokens), so a review
tokenises into several times more tokens than with the real vocabulary (median ≈ 660-740 vs
≈ 237 on IMDb) and nearly every review (94-96 %) is cut at ``max_len`` 256, where the real
tokenizer cuts ≈ 43 %; at ``max_len`` 1024 (ModernBERT) ≈ 32 % are cut, so nearly every batch
of 8 or 16 still pads to 1024. The token ids all lie inside the model's vocabulary; the work per
token is the real model's. Both sides of ``cargo xtask bench`` read the same tokenizer, so they
run the same sequence lengths. The ModernBERT fixture's special tokens (ids 295-299 after its 295
BPE tokens) are renumbered to the real tokenizer's ids ([UNK] 50280, [CLS] 50281, [SEP] 50282,
[PAD] 50283, [MASK] 50284) in ``added_tokens``, the BPE vocabulary and the post-processor, so
that they match the config's pad / cls / sep ids; the DeBERTa fixture's ([PAD] 0, [CLS] 1,
[SEP] 2, [UNK] 3) are the real ones already.

Run from the repository root, in the reference venv::

    /work/venv-fx/bin/python scripts/make_bench_models.py            # all six
    /work/venv-fx/bin/python scripts/make_bench_models.py --only roberta-base
    /work/venv-fx/bin/python scripts/make_bench_models.py --only deberta-v3-base modernbert-base

It deletes and rewrites only ``<out>/<name>/`` of the models it writes (default out:
``outputs/bench-models``, git-ignored; ≈ 1.7 GB for the first four, ≈ 3 GB for all six).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys

FIXTURES = os.path.join("fixtures", "families")
MODERN_FIXTURES = os.path.join("fixtures", "modern")

# name -> (fixture whose tokenizer is copied, under FIXTURES or, for "modern/<family>", under
# MODERN_FIXTURES; transformers config class; config kwargs)
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
    "deberta-v3-base": ("modern/deberta-v2", "DebertaV2Config", dict(
        vocab_size=128100, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
        intermediate_size=3072, hidden_act="gelu", max_position_embeddings=512,
        relative_attention=True, max_relative_positions=-1, position_buckets=256,
        norm_rel_ebd="layer_norm", share_att_key=True, pos_att_type=["p2c", "c2p"],
        position_biased_input=False, type_vocab_size=0, layer_norm_eps=1e-7,
        pooler_hidden_size=768, pooler_hidden_act="gelu", pooler_dropout=0, pad_token_id=0)),
    "modernbert-base": ("modern/modernbert", "ModernBertConfig", dict(
        vocab_size=50368, hidden_size=768, intermediate_size=1152, num_hidden_layers=22,
        num_attention_heads=12, hidden_activation="gelu", max_position_embeddings=8192,
        local_attention=128, global_attn_every_n_layers=3, global_rope_theta=160000.0,
        local_rope_theta=10000.0, norm_eps=1e-5, norm_bias=False, attention_bias=False,
        mlp_bias=False, classifier_bias=False, classifier_activation="gelu",
        classifier_pooling="mean", pad_token_id=50283, cls_token_id=50281, sep_token_id=50282,
        bos_token_id=50281, eos_token_id=50282)),
}
# The real checkpoint's model_max_length (tokenizer_config.json); 512 unless listed.
MODEL_MAX_LENGTH = {"modernbert-base": 8192}
# Special-token ids renumbered in the copied tokenizer.json: the real tokenizer's.
SPECIAL_IDS = {"modernbert-base": {"[UNK]": 50280, "[CLS]": 50281, "[SEP]": 50282,
                                   "[PAD]": 50283, "[MASK]": 50284}}


def renumber_special_tokens(tok_json: dict, ids: dict) -> None:
    """Gives the special tokens of a ``tokenizer.json`` the ids ``ids`` (content -> id): in
    ``added_tokens``, in the post-processor's templates and in the model's vocabulary (a dict,
    as BPE's). The ``tokenizers`` library ignores the id of an added token that its model's
    vocabulary lacks and numbers it after the vocabulary, so the tokens go into the vocabulary
    too, as in the real ModernBERT tokenizer (whose vocabulary holds them at these ids)."""
    vocab = tok_json["model"]["vocab"]
    if not isinstance(vocab, dict):
        sys.exit("renumber_special_tokens: the model's vocabulary is not a dict")
    clash = {i for tok, i in vocab.items() if tok not in ids} & set(ids.values())
    if clash:
        sys.exit(f"renumbered special-token ids {sorted(clash)} clash with the model vocabulary")
    for t in tok_json["added_tokens"]:
        if t["content"] in ids:
            t["id"] = ids[t["content"]]
    vocab.update(ids)
    special = (tok_json.get("post_processor") or {}).get("special_tokens", {})
    for entry in special.values():
        entry["ids"] = [ids.get(tok, i) for tok, i in zip(entry["tokens"], entry["ids"])]


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

    if family.startswith("modern/"):
        src = os.path.join(MODERN_FIXTURES, family[len("modern/"):], "seqcls")
    else:
        src = os.path.join(FIXTURES, family, "seqcls")
    with open(os.path.join(src, "tokenizer.json"), encoding="utf-8") as f:
        tok_json = json.load(f)
    if name in SPECIAL_IDS:
        renumber_special_tokens(tok_json, SPECIAL_IDS[name])
        with open(os.path.join(dest, "tokenizer.json"), "w", encoding="utf-8") as f:
            json.dump(tok_json, f, ensure_ascii=False, indent=2)
            f.write("\n")
    else:
        shutil.copyfile(os.path.join(src, "tokenizer.json"), os.path.join(dest, "tokenizer.json"))
    with open(os.path.join(src, "tokenizer_config.json")) as f:
        tok_config = json.load(f)
    tok_config["model_max_length"] = MODEL_MAX_LENGTH.get(name, 512)
    with open(os.path.join(dest, "tokenizer_config.json"), "w") as f:
        json.dump(tok_config, f, indent=2, sort_keys=True)
        f.write("\n")

    # Self-checks: the directory reloads, the pad ids agree, every token id is in the vocab.
    tok = AutoTokenizer.from_pretrained(dest)
    saved = json.load(open(os.path.join(dest, "config.json")))
    if tok.pad_token_id != saved.get("pad_token_id"):
        sys.exit(f"{name}: tokenizer pad id {tok.pad_token_id} != config pad_token_id "
                 f"{saved.get('pad_token_id')}")
    top_id = max(tok.get_vocab().values())
    if top_id >= saved["vocab_size"]:
        sys.exit(f"{name}: tokenizer id {top_id} is outside the model vocab {saved['vocab_size']}")
    for key in ("cls_token_id", "sep_token_id"):
        want = saved.get(key)
        got = getattr(tok, key)
        if want is not None and got != want:
            sys.exit(f"{name}: tokenizer {key} {got} != config {key} {want}")
    stored = [k for k in saved if "attn_implementation" in k]
    if stored:
        sys.exit(f"{name}: config.json stores {stored}: the reference must get the default")
    # As peft_imdb.py loads it: transformers' default attention for the family.
    reloaded = AutoModelForSequenceClassification.from_pretrained(dest, num_labels=2)
    params = sum(p.numel() for p in reloaded.parameters())
    dtypes = sorted({str(p.dtype) for p in reloaded.parameters()})
    print(json.dumps({"model": name, "dir": dest, "model_type": saved["model_type"],
                      "architectures": saved.get("architectures"), "parameters": params,
                      "dtypes": dtypes,
                      "attn_implementation": reloaded.config._attn_implementation,
                      "tokenizer": type(tok).__name__, "tokenizer_vocab": len(tok),
                      "tokenizer_max_id": top_id,
                      "special_ids": {"pad": tok.pad_token_id, "cls": tok.cls_token_id,
                                      "sep": tok.sep_token_id},
                      "tokenizer_from": src}), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.path.join("outputs", "bench-models"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--only", action="extend", nargs="+", choices=sorted(MODELS),
                    help="write only these models (one or more, repeatable; default: all six)")
    a = ap.parse_args()
    if not os.path.isdir(FIXTURES):
        sys.exit(f"make_bench_models: {FIXTURES} not found: run from the repository root")
    for name in a.only or list(MODELS):
        write(name, a.out, a.seed)


if __name__ == "__main__":
    main()

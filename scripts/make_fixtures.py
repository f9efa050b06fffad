#!/usr/bin/env python3
"""Generate the numerical reference fixtures used by the Rust test-suite.

The fixtures are produced with Hugging Face ``transformers`` and ``peft`` (the
reference implementations that the Rust BERT + LoRA code must match) and are
committed under ``fixtures/``; the Rust tests only *read* them, so neither
Python nor network access is needed to run the Rust tests.

How to run (from the repository root, with the venv described in
``scripts/README.md``)::

    /work/venv-fx/bin/python scripts/make_fixtures.py --shared ../shared --out fixtures

``--shared`` is the shared data folder holding the local Hugging Face mirror
(``hub/sentence-transformers/all-MiniLM-L6-v2/resolve/main/`` and
``hub/datasets/stanfordnlp/imdb/resolve/main/plain_text/``).  Nothing is ever
downloaded: every model is built from a config or loaded from those local files.

The script is deterministic (fixed seeds, single CPU thread, deterministic
algorithms, sorted JSON): running it twice on the same machine with the same
package versions (``scripts/requirements.txt``) yields byte-identical files.
``fixtures/manifest.json`` lists the sha256 of every produced file.

What it produces (all tensor files are safetensors; floats are F32, token ids
and masks are I64):

``tiny_bert/``
    A tiny random BERT (vocab 99, hidden 32, 2 layers, 4 heads, intermediate
    37, 64 positions, 2 token types, gelu, eps 1e-12, 2 labels neg/pos).
    After the seed-0 transformers initialisation *every* backbone parameter is
    overwritten with seeded random values (biases non-zero, LayerNorm gammas
    != 1) so that a loader which drops or swaps a tensor is caught.  The same
    backbone is saved under three checkpoint conventions:

    * ``bare/``        ``BertModel`` - keys ``embeddings.*``, ``encoder.layer.N.*``,
                       ``pooler.dense.*`` (the all-MiniLM-L6-v2 convention);
    * ``seqcls/``      ``BertForSequenceClassification`` - ``bert.*`` +
                       ``classifier.{weight,bias}``;
    * ``pretraining/`` ``BertForPreTraining`` - ``bert.*`` + ``cls.predictions.*``
                       + ``cls.seq_relationship.*`` (the bert-base-uncased convention).

    ``expected.safetensors`` holds inputs ``input_ids``/``attention_mask``/
    ``token_type_ids`` [3, 11] and the eval-mode outputs of the seqcls model:
    ``embedding_output`` [3, 11, 32], ``hidden_states`` [3 (=layers+1), 3, 11, 32]
    (embedding output, then each layer's output), ``last_hidden_state``
    [3, 11, 32], ``pooler_output`` [3, 32] and ``logits`` [3, 2].

``minilm/``
    ``sentences.json`` (4 sentences, max_length 64) and ``expected.safetensors``:
    the real all-MiniLM-L6-v2 as ``BertModel`` (eval, eager attention) on those
    sentences tokenised as one batch (truncation, max_length 64, padding to
    the longest): inputs plus ``last_hidden_state`` and ``pooler_output``.

``peft/tiny/`` and ``peft/minilm/``
    A PEFT LoRA adapter (``adapter/adapter_config.json`` +
    ``adapter/adapter_model.safetensors``; SEQ_CLS, query+value, dropout 0.1)
    on the tiny seqcls model (r 4, alpha 8) and on MiniLM with a fresh 2-label
    head (r 8, alpha 16), with all lora_A/lora_B and the classifier head
    overwritten by seeded random values (PEFT zero-initialises lora_B).
    ``expected.safetensors`` has the inputs, ``logits`` (PEFT model, eval,
    unmerged), ``logits_merged`` (after ``merge_and_unload()``) and
    ``logits_no_lora`` (same head, LoRA removed: shows the adapter matters).
    ``peft/minilm/expected.json`` records PEFT's trainable / all parameter
    counts (``print_trainable_parameters``) for r 8 / alpha 16 on MiniLM and on
    a bert-base-uncased-shaped model, both with 2 labels.

``imdb_tokens.json``
    MiniLM fast-tokenizer ids (truncation, max_length 256, no padding) for 20
    reviews of the IMDb *test* parquet, with row index, label and the first 80
    characters (code points) of each text.

``manifest.json``
    Package versions, numerical self-checks and sha256 of every file above.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import os
import shutil
import sys
import warnings
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import torch
from safetensors import safe_open
from safetensors.torch import save_file

import peft
import transformers
from peft import LoraConfig, PeftModel, TaskType, get_peft_model
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    BertConfig,
    BertForPreTraining,
    BertForSequenceClassification,
    BertModel,
)

MINILM_REL = "hub/sentence-transformers/all-MiniLM-L6-v2/resolve/main"
IMDB_REL = "hub/datasets/stanfordnlp/imdb/resolve/main/plain_text"

MINILM_SENTENCES = [
    "A great movie.",
    "The plot was predictable, but the acting was strong enough to keep me watching until the end.",
    (
        "I went into this film with low expectations and was pleasantly surprised.<br /><br />"
        "The first half is slow: the director spends far too long introducing characters who "
        "never matter again, and the dialogue is often clumsy. But once the story finally gets "
        "going, the performances are genuinely moving, the score is beautiful, and the last "
        "twenty minutes had me on the edge of my seat. It's not a masterpiece, and it could "
        "easily have lost half an hour, yet I'd still recommend it to anyone who enjoys "
        "character-driven dramas. 7/10."
    ),
    "Café über naïve — 10/10!!! didn't",
]
MINILM_MAX_LEN = 64

IMDB_ROWS = [0, 1, 2, 3, 4, 100, 5000, 12499, 12500, 12501, 15000, 20000] + list(
    range(24990, 24997)
) + [24999]
IMDB_MAX_LEN = 256

LORA_TARGETS = ["query", "value"]
LORA_DROPOUT = 0.1

# safetensors (Rust) serialises __metadata__ from a HashMap: with more than one
# key the order, hence the bytes, change from run to run.  Keep ONE key.
SAFETENSORS_GENERATOR = "scripts/make_fixtures.py"


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def gen(seed: int) -> torch.Generator:
    g = torch.Generator()
    g.manual_seed(seed)
    return g


def randn(shape, std: float, g: torch.Generator) -> torch.Tensor:
    return torch.randn(tuple(shape), generator=g, dtype=torch.float32) * std


def save_tensors(path: Path, tensors: dict[str, torch.Tensor], description: str) -> None:
    out = {}
    for k, v in tensors.items():
        v = v.detach().cpu().clone().contiguous()
        if v.is_floating_point():
            v = v.to(torch.float32)
        else:
            v = v.to(torch.int64)
        out[k] = v
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(out, str(path), metadata={"description": f"{description} [{SAFETENSORS_GENERATOR}]"})


def write_json(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, ensure_ascii=False)
        f.write("\n")


def max_abs(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.detach().double() - b.detach().double()).abs().max())


def fmt(x: float) -> str:
    return f"{x:.3g}"


def check(cond: bool, what: str) -> None:
    if not cond:
        raise SystemExit(f"self-check failed: {what}")
    log(f"  ok: {what}")


def tiny_config(attn: str = "eager") -> BertConfig:
    return BertConfig(
        vocab_size=99,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=37,
        max_position_embeddings=64,
        type_vocab_size=2,
        hidden_act="gelu",
        layer_norm_eps=1e-12,
        num_labels=2,
        id2label={0: "neg", 1: "pos"},
        label2id={"neg": 0, "pos": 1},
        attn_implementation=attn,
    )


def randomize_(named_params, g: torch.Generator, weight_std: float, bias_std: float) -> None:
    """Overwrite parameters in sorted-name order with seeded random values.

    LayerNorm weights become 1 + N(0, bias_std), biases N(0, bias_std),
    everything else (matrices, embeddings) N(0, weight_std).
    """
    with torch.no_grad():
        for name, p in sorted(named_params, key=lambda kv: kv[0]):
            if "LayerNorm" in name and name.endswith("weight"):
                p.copy_(1.0 + randn(p.shape, bias_std, g))
            elif name.endswith("bias"):
                p.copy_(randn(p.shape, bias_std, g))
            else:
                p.copy_(randn(p.shape, weight_std, g))


def safetensors_keys(path: Path) -> dict[str, tuple[str, list[int]]]:
    with safe_open(str(path), "pt") as f:
        return {k: (f.get_slice(k).get_dtype(), list(f.get_slice(k).get_shape())) for k in f.keys()}


def save_model(model, directory: Path) -> None:
    # transformers >= 5 always writes safetensors (the old `safe_serialization`
    # flag is gone); pass it only where it still exists.
    directory.mkdir(parents=True, exist_ok=True)
    kwargs = {}
    import inspect

    if "safe_serialization" in inspect.signature(model.save_pretrained).parameters:
        kwargs["safe_serialization"] = True
    model.save_pretrained(str(directory), **kwargs)


def bert_forward(bert: BertModel, inputs: dict[str, torch.Tensor]):
    return bert(**inputs, output_hidden_states=True, return_dict=True)


def normalise_adapter_config(directory: Path, base_name: str) -> dict:
    """Make adapter_config.json deterministic.

    PEFT writes set-valued fields (target_modules) as list(set), whose order
    depends on PYTHONHASHSEED; sort them, and pin base_model_name_or_path to a
    stable, machine-independent string.  Same formatting as PEFT itself.
    """
    path = directory / "adapter_config.json"
    cfg = json.loads(path.read_text())
    for key in ("target_modules", "modules_to_save", "layers_to_transform"):
        if isinstance(cfg.get(key), list):
            cfg[key] = sorted(cfg[key])
    cfg["base_model_name_or_path"] = base_name
    path.write_text(json.dumps(cfg, indent=2, sort_keys=True))
    return cfg


def randomize_peft_(model, g: torch.Generator, lora_std: float, head_std: float) -> list[str]:
    """Overwrite every lora_A / lora_B and the trainable classifier copy."""
    touched = []
    with torch.no_grad():
        for name, p in sorted(model.named_parameters(), key=lambda kv: kv[0]):
            if "lora_A" in name or "lora_B" in name:
                p.copy_(randn(p.shape, lora_std, g))
                touched.append(name)
            elif "classifier" in name and "modules_to_save" in name:
                p.copy_(randn(p.shape, head_std, g))
                touched.append(name)
    return touched


def lora_config(r: int, alpha: int) -> LoraConfig:
    return LoraConfig(
        task_type=TaskType.SEQ_CLS,
        r=r,
        lora_alpha=alpha,
        lora_dropout=LORA_DROPOUT,
        target_modules=list(LORA_TARGETS),
    )


def trainable_numbers(peft_model) -> dict:
    trainable, total = peft_model.get_nb_trainable_parameters()
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        peft_model.print_trainable_parameters()
    return {"trainable": int(trainable), "all": int(total), "printed": buf.getvalue().strip()}


# --------------------------------------------------------------------------
# 1. tiny BERT
# --------------------------------------------------------------------------


def tiny_inputs() -> dict[str, torch.Tensor]:
    g = gen(1234)
    batch, seq = 3, 11
    input_ids = torch.randint(1, 99, (batch, seq), generator=g, dtype=torch.int64)
    attention_mask = torch.ones(batch, seq, dtype=torch.int64)
    # row 1: 7 real tokens, row 2: 4 real tokens, pad id 0
    for row, n in ((1, 7), (2, 4)):
        input_ids[row, n:] = 0
        attention_mask[row, n:] = 0
    token_type_ids = torch.zeros(batch, seq, dtype=torch.int64)
    token_type_ids[0, 6:] = 1  # row 0: segment B from position 6 on
    return {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids}


def make_tiny(out: Path, checks: dict) -> dict[str, torch.Tensor]:
    log("[tiny_bert]")
    cfg = tiny_config()
    root = out / "tiny_bert"

    torch.manual_seed(0)
    bare = BertModel(cfg)
    randomize_(list(bare.named_parameters()), gen(0), weight_std=0.2, bias_std=0.1)
    bare.eval()
    backbone = {k: v.clone() for k, v in bare.state_dict().items()}

    torch.manual_seed(0)
    seqcls = BertForSequenceClassification(cfg)
    seqcls.bert.load_state_dict(backbone, strict=True)
    randomize_(list(seqcls.classifier.named_parameters()), gen(1), weight_std=0.2, bias_std=0.1)
    seqcls.eval()

    torch.manual_seed(0)
    pre = BertForPreTraining(cfg)
    pre.bert.load_state_dict(backbone, strict=True)
    # named_parameters() de-duplicates tied tensors, so the decoder weight
    # (tied to the word embeddings) is not listed and stays tied.
    head = [(n, p) for n, p in pre.named_parameters() if n.startswith("cls.")]
    randomize_(head, gen(2), weight_std=0.2, bias_std=0.1)
    pre.eval()

    save_model(bare, root / "bare")
    save_model(seqcls, root / "seqcls")
    save_model(pre, root / "pretraining")

    inputs = tiny_inputs()
    with torch.no_grad():
        o = bert_forward(seqcls.bert, inputs)
        logits = seqcls(**inputs).logits
        logits_manual = seqcls.classifier(o.pooler_output)
    check(max_abs(logits, logits_manual) == 0.0, "tiny logits == classifier(pooler_output)")
    hs = torch.stack(list(o.hidden_states), dim=0)
    check(hs.shape == (3, 3, 11, 32), f"hidden_states shape {tuple(hs.shape)}")
    check(max_abs(hs[-1], o.last_hidden_state) == 0.0, "hidden_states[-1] == last_hidden_state")

    expected = {
        **inputs,
        "embedding_output": hs[0],
        "hidden_states": hs,
        "last_hidden_state": o.last_hidden_state,
        "pooler_output": o.pooler_output,
        "logits": logits,
    }
    save_tensors(
        root / "expected.safetensors",
        expected,
        "tiny BERT (tiny_bert/seqcls) eval outputs, eager attention",
    )

    # --- reload all three conventions and compare ---
    diffs = {}
    for name, cls in (("bare", BertModel), ("seqcls", BertForSequenceClassification), ("pretraining", BertForPreTraining)):
        m = cls.from_pretrained(str(root / name), attn_implementation="eager").eval()
        bert = m if name == "bare" else m.bert
        with torch.no_grad():
            r = bert_forward(bert, inputs)
        d = max(max_abs(r.last_hidden_state, o.last_hidden_state), max_abs(r.pooler_output, o.pooler_output))
        diffs[name] = d
        check(d == 0.0, f"reloaded {name} reproduces hidden states exactly")
        if name == "seqcls":
            with torch.no_grad():
                check(max_abs(m(**inputs).logits, logits) == 0.0, "reloaded seqcls reproduces logits")
        if name == "pretraining":
            check(
                m.cls.predictions.decoder.weight.data_ptr() == m.bert.embeddings.word_embeddings.weight.data_ptr(),
                "pretraining decoder weight tied to word embeddings after reload",
            )

    # --- SDPA vs eager ---
    sd = BertForSequenceClassification.from_pretrained(str(root / "seqcls"), attn_implementation="sdpa").eval()
    check(sd.config._attn_implementation == "sdpa", "sdpa model really uses sdpa")
    with torch.no_grad():
        rs = bert_forward(sd.bert, inputs)
        ls = sd(**inputs).logits
    sdpa_diff = max(max_abs(rs.last_hidden_state, o.last_hidden_state), max_abs(rs.pooler_output, o.pooler_output), max_abs(ls, logits))
    check(sdpa_diff < 1e-6, f"sdpa vs eager max |diff| = {sdpa_diff:.3g} < 1e-6")

    # --- token_type_ids default: omitted == all zeros ---
    with torch.no_grad():
        a = seqcls.bert(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"]).last_hidden_state
        b = seqcls.bert(
            input_ids=inputs["input_ids"],
            attention_mask=inputs["attention_mask"],
            token_type_ids=torch.zeros_like(inputs["token_type_ids"]),
        ).last_hidden_state
    check(max_abs(a, b) == 0.0, "omitted token_type_ids behaves as all zeros")

    checks["tiny_bert"] = {
        "reload_max_abs_diff": {k: fmt(v) for k, v in diffs.items()},
        "sdpa_vs_eager_max_abs_diff": fmt(sdpa_diff),
        "checkpoint_keys": {
            name: sorted(safetensors_keys(root / name / "model.safetensors")) for name in ("bare", "seqcls", "pretraining")
        },
    }
    return inputs


# --------------------------------------------------------------------------
# 2. MiniLM
# --------------------------------------------------------------------------


def minilm_tokenizer(minilm_dir: Path):
    tok = AutoTokenizer.from_pretrained(str(minilm_dir))
    if not tok.is_fast:
        raise SystemExit("expected a fast (tokenizers-backed) tokenizer")
    return tok


def minilm_inputs(tok) -> dict[str, torch.Tensor]:
    enc = tok(
        MINILM_SENTENCES,
        truncation=True,
        max_length=MINILM_MAX_LEN,
        padding="longest",
        return_tensors="pt",
    )
    return {k: enc[k].to(torch.int64) for k in ("input_ids", "attention_mask", "token_type_ids")}


def make_minilm(out: Path, minilm_dir: Path, checks: dict) -> dict[str, torch.Tensor]:
    log("[minilm]")
    tok = minilm_tokenizer(minilm_dir)
    inputs = minilm_inputs(tok)
    lens = inputs["attention_mask"].sum(1).tolist()
    check(max(lens) == MINILM_MAX_LEN, f"long review truncated to {MINILM_MAX_LEN} (lengths {lens})")
    check(inputs["input_ids"].shape[1] == MINILM_MAX_LEN, "batch padded to longest")

    # Tokenizer quirk: tokenizer.json itself carries truncation 128 + fixed
    # padding 128; transformers overrides it per call.  Record what the raw
    # backend and a bare call do.
    raw = json.loads((minilm_dir / "tokenizer.json").read_text())
    bare_call = tok(MINILM_SENTENCES[0])["input_ids"]
    backend_default = tok.backend_tokenizer.encode(MINILM_SENTENCES[0]).ids

    model, info = BertModel.from_pretrained(str(minilm_dir), attn_implementation="eager", output_loading_info=True)
    model.eval()
    with torch.no_grad():
        o = model(**inputs, return_dict=True)
    save_tensors(
        out / "minilm" / "expected.safetensors",
        {**inputs, "last_hidden_state": o.last_hidden_state, "pooler_output": o.pooler_output},
        "all-MiniLM-L6-v2 BertModel eval outputs, eager attention",
    )
    write_json(out / "minilm" / "sentences.json", {"max_length": MINILM_MAX_LEN, "sentences": MINILM_SENTENCES})

    sd = BertModel.from_pretrained(str(minilm_dir), attn_implementation="sdpa").eval()
    with torch.no_grad():
        rs = sd(**inputs, return_dict=True)
    sdpa_diff = max(max_abs(rs.last_hidden_state, o.last_hidden_state), max_abs(rs.pooler_output, o.pooler_output))
    log(f"  minilm sdpa vs eager max |diff| = {sdpa_diff:.3g}")

    checks["minilm"] = {
        "lengths": lens,
        "loading_info": {k: sorted(str(x) for x in v) for k, v in info.items()},
        "sdpa_vs_eager_max_abs_diff": fmt(sdpa_diff),
        "tokenizer_json_truncation": raw.get("truncation"),
        "tokenizer_json_padding": raw.get("padding"),
        "tokenizer_class": type(tok).__name__,
        "plain_call_len_sentence0": len(bare_call),
        "raw_backend_encode_len_sentence0": len(backend_default),
        "tokens": [tok.convert_ids_to_tokens(ids[: n]) for ids, n in zip(inputs["input_ids"].tolist(), lens)],
    }
    return inputs


# --------------------------------------------------------------------------
# 3. PEFT
# --------------------------------------------------------------------------


def logits_of(model, inputs) -> torch.Tensor:
    with torch.no_grad():
        return model(**inputs).logits


def make_peft_case(
    *,
    name: str,
    out: Path,
    load_base,
    base_name: str,
    inputs: dict[str, torch.Tensor],
    r: int,
    alpha: int,
    lora_std: float,
    head_std: float,
    seed: int,
    checks: dict,
) -> None:
    log(f"[peft/{name}]")
    root = out / "peft" / name
    adapter_dir = root / "adapter"

    base = load_base()
    model = get_peft_model(base, lora_config(r, alpha))
    touched = randomize_peft_(model, gen(seed), lora_std=lora_std, head_std=head_std)
    check(any("classifier" in t for t in touched), f"classifier head randomised ({len(touched)} tensors)")
    model.eval()
    logits = logits_of(model, inputs)

    model.save_pretrained(str(adapter_dir))
    # PEFT also writes a model-card README.md that embeds the local base path;
    # it carries no data, so drop it (keeps the fixtures machine-independent).
    (adapter_dir / "README.md").unlink(missing_ok=True)
    adapter_cfg = normalise_adapter_config(adapter_dir, base_name)

    # Head-only reference: the base model with the adapter's head, no LoRA.
    head = {
        k.split("modules_to_save.default.")[1]: v.detach().clone()
        for k, v in model.named_parameters()
        if "classifier.modules_to_save.default." in k
    }
    plain = load_base().eval()
    with torch.no_grad():
        plain.classifier.weight.copy_(head["weight"])
        plain.classifier.bias.copy_(head["bias"])
    logits_no_lora = logits_of(plain, inputs)

    # Reload from disk with PEFT: must reproduce the unmerged logits.
    reloaded = PeftModel.from_pretrained(load_base(), str(adapter_dir)).eval()
    reload_diff = max_abs(logits_of(reloaded, inputs), logits)
    check(reload_diff == 0.0, f"adapter reloaded from disk reproduces logits (diff {reload_diff:.3g})")

    merged = model.merge_and_unload().eval()
    logits_merged = logits_of(merged, inputs)
    merge_diff = max_abs(logits_merged, logits)
    check(merge_diff < 1e-5, f"merged vs unmerged max |diff| = {merge_diff:.3g}")
    lora_effect = max_abs(logits, logits_no_lora)
    check(lora_effect > 1e-3, f"LoRA changes logits by {lora_effect:.3g}")

    save_tensors(
        root / "expected.safetensors",
        {**inputs, "logits": logits, "logits_merged": logits_merged, "logits_no_lora": logits_no_lora},
        f"PEFT LoRA ({name}) eval logits: unmerged, merged, head-only",
    )
    checks[f"peft_{name}"] = {
        "merged_vs_unmerged_max_abs_diff": fmt(merge_diff),
        "lora_effect_max_abs_diff": fmt(lora_effect),
        "adapter_keys": {
            k: [dt, shape] for k, (dt, shape) in sorted(safetensors_keys(adapter_dir / "adapter_model.safetensors").items())
        },
        "adapter_config": adapter_cfg,
    }


def param_counts(minilm_dir: Path) -> dict:
    log("[peft/minilm parameter counts]")
    res = {}
    torch.manual_seed(0)
    m = AutoModelForSequenceClassification.from_pretrained(str(minilm_dir), num_labels=2, attn_implementation="eager")
    res["all-MiniLM-L6-v2"] = trainable_numbers(get_peft_model(m, lora_config(8, 16)))
    del m
    torch.manual_seed(0)
    cfg = BertConfig(num_labels=2, attn_implementation="eager")
    m = BertForSequenceClassification(cfg)
    res["bert-base-uncased-shaped (BertConfig() defaults)"] = trainable_numbers(get_peft_model(m, lora_config(8, 16)))
    del m
    for k, v in res.items():
        log(f"  {k}: {v['printed']}")
    return {
        "lora_config": {
            "task_type": "SEQ_CLS",
            "r": 8,
            "lora_alpha": 16,
            "lora_dropout": LORA_DROPOUT,
            "target_modules": LORA_TARGETS,
            "num_labels": 2,
        },
        "note": "PEFT counts the classifier twice in 'all': the frozen original and the trainable modules_to_save copy.",
        "counts": res,
    }


def make_peft(out: Path, minilm_dir: Path, tiny_in, minilm_in, checks: dict) -> None:
    seqcls_dir = out / "tiny_bert" / "seqcls"

    def load_tiny():
        return BertForSequenceClassification.from_pretrained(str(seqcls_dir), attn_implementation="eager")

    def load_minilm():
        torch.manual_seed(0)  # fresh (later overwritten) classification head
        return AutoModelForSequenceClassification.from_pretrained(
            str(minilm_dir), num_labels=2, attn_implementation="eager"
        )

    make_peft_case(
        name="tiny", out=out, load_base=load_tiny, base_name="fixtures/tiny_bert/seqcls",
        inputs=tiny_in, r=4, alpha=8, lora_std=0.1, head_std=0.1, seed=10, checks=checks,
    )
    make_peft_case(
        name="minilm", out=out, load_base=load_minilm, base_name="sentence-transformers/all-MiniLM-L6-v2",
        inputs=minilm_in, r=8, alpha=16, lora_std=0.02, head_std=0.1, seed=20, checks=checks,
    )
    write_json(out / "peft" / "minilm" / "expected.json", param_counts(minilm_dir))


# --------------------------------------------------------------------------
# 4. IMDb token ids
# --------------------------------------------------------------------------


def make_imdb_tokens(out: Path, minilm_dir: Path, imdb_dir: Path) -> None:
    log("[imdb_tokens]")
    tok = minilm_tokenizer(minilm_dir)
    table = pq.read_table(str(imdb_dir / "test-00000-of-00001.parquet"), columns=["text", "label"])
    texts = table.column("text").to_pylist()
    labels = table.column("label").to_pylist()
    check(len(IMDB_ROWS) == 20 and len(texts) == 25000, "20 rows out of 25000 test reviews")
    reviews = []
    for i in IMDB_ROWS:
        ids = tok(texts[i], truncation=True, max_length=IMDB_MAX_LEN)["input_ids"]
        full = tok(texts[i], truncation=False)["input_ids"]
        reviews.append(
            {
                "row": i,
                "label": int(labels[i]),
                "text_prefix": texts[i][:80],
                "num_chars": len(texts[i]),
                "num_tokens_untruncated": len(full),
                "truncated": len(full) > IMDB_MAX_LEN,
                "input_ids": ids,
            }
        )
    header = {
        "source": "stanfordnlp/imdb plain_text test-00000-of-00001.parquet",
        "tokenizer": {
            "source": "sentence-transformers/all-MiniLM-L6-v2 tokenizer.json (fast, via AutoTokenizer.from_pretrained)",
            "class": type(tok).__name__,
            "add_special_tokens": True,
            "truncation": True,
            "truncation_strategy": "longest_first",
            "max_length": IMDB_MAX_LEN,
            "padding": False,
            "do_lower_case": True,
            "note": "tokenizer.json's built-in truncation(128)/padding(Fixed 128) is overridden by the explicit call",
        },
        "text_prefix": "first 80 Unicode code points of the review text",
    }
    # one review per line keeps the file diffable and small
    lines = ["{", f'  "header": {json.dumps(header, ensure_ascii=False, sort_keys=True)},', '  "reviews": [']
    for n, r in enumerate(reviews):
        lines.append("    " + json.dumps(r, ensure_ascii=False) + ("," if n + 1 < len(reviews) else ""))
    lines += ["  ]", "}"]
    text = "\n".join(lines) + "\n"
    json.loads(text)  # sanity
    (out / "imdb_tokens.json").write_text(text, encoding="utf-8")


# --------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------


OWNED = ["tiny_bert", "minilm", "peft", "imdb_tokens.json", "manifest.json"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shared", type=Path, required=True, help="shared data folder (holds hub/...)")
    ap.add_argument("--out", type=Path, required=True, help="output folder (fixtures)")
    args = ap.parse_args()

    torch.set_num_threads(1)
    warnings.filterwarnings("ignore", category=FutureWarning)
    torch.use_deterministic_algorithms(True)
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    minilm_dir = args.shared / MINILM_REL
    imdb_dir = args.shared / IMDB_REL
    for p in (minilm_dir / "model.safetensors", imdb_dir / "test-00000-of-00001.parquet"):
        if not p.exists():
            raise SystemExit(f"missing input {p}")

    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    for name in OWNED:  # start clean so no stale file survives
        p = out / name
        if p.is_dir():
            shutil.rmtree(p)
        elif p.exists():
            p.unlink()

    checks: dict = {}
    tiny_in = make_tiny(out, checks)
    minilm_in = make_minilm(out, minilm_dir, checks)
    make_peft(out, minilm_dir, tiny_in, minilm_in, checks)
    make_imdb_tokens(out, minilm_dir, imdb_dir)

    files = sorted(
        p
        for name in OWNED
        if name != "manifest.json"
        for p in ([out / name] if (out / name).is_file() else (out / name).rglob("*"))
        if p.is_file()
    )
    manifest = {
        "generator": "scripts/make_fixtures.py",
        "versions": {
            "python": ".".join(map(str, sys.version_info[:3])),
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "peft": peft.__version__,
            "numpy": np.__version__,
        },
        "checks": checks,
        "files": {
            str(p.relative_to(out)): {"bytes": p.stat().st_size, "sha256": hashlib.sha256(p.read_bytes()).hexdigest()}
            for p in files
        },
    }
    write_json(out / "manifest.json", manifest)
    total = sum(p.stat().st_size for p in files)
    biggest = max(files, key=lambda p: p.stat().st_size)
    log(f"wrote {len(files)} files, {total} bytes; largest {biggest.relative_to(out)} ({biggest.stat().st_size} bytes)")


if __name__ == "__main__":
    main()

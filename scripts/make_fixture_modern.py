#!/usr/bin/env python3
"""Write ``fixtures/modern/``: tiny RANDOM DeBERTa-v2/v3 (``model_type`` "deberta-v2") and
ModernBERT ("modernbert") checkpoints, their tiny tokenizers, and transformers / PEFT
reference outputs, for the Rust parity tests (tolerance 1e-5).

The companion of ``make_fixture_families.py``: it imports that script's helpers (corpus,
texts, seeded randomisation, saving, tokenisation, ``make_peft``) and writes the SAME layout.
Nothing is downloaded: every model is built from a config, every tokenizer is made here from
that script's inline English corpus.

Run from the repository root, in the fixtures venv (``scripts/README.md``)::

    /work/venv-fx/bin/python scripts/make_fixture_modern.py --out fixtures

It deletes and rewrites only ``<out>/modern/``.  Deterministic: fixed seeds,
``torch.set_num_threads(1)``, deterministic algorithms, sorted JSON, float32, eval mode,
eager attention; the Unigram vocab is counted in Python, the BPE trainer is reproducible.

Shapes (odd on purpose, as the families): hidden 36, 3 heads (head dim 12, even, as RoPE
needs), 3 labels (neg / neutral / pos), ``initializer_range`` 0.2.  After the seeded
transformers init *every* parameter is overwritten with seeded random values (matrices and
embeddings N(0, 0.2^2), biases N(0, 0.1^2), LayerNorm gamma 1 + N(0, 0.1^2)), so a loader
that drops a bias or swaps gamma/beta is caught.

Models (``modern/NAME/``):

``deberta-v2``
    DeBERTa-v3 shape: 2 layers, intermediate 52, gelu, ``relative_attention``,
    ``pos_att_type`` ["p2c", "c2p"], ``share_att_key`` (no ``pos_key_proj`` /
    ``pos_query_proj``: the relative embeddings go through ``query_proj`` / ``key_proj``),
    ``position_biased_input`` false (no absolute position table), ``type_vocab_size`` 0
    (no token type table, although the tokenizer returns ``token_type_ids``),
    ``norm_rel_ebd`` "layer_norm" (``encoder.LayerNorm`` on ``rel_embeddings``),
    ``max_relative_positions`` -1 (= max_position_embeddings 40) and ``position_buckets`` 8
    (``rel_embeddings`` [16, 36]): with 16-token rows the relative distances up to 15 go
    through DeBERTa's log buckets and the clamp.  ``layer_norm_eps`` 1e-7, pooler (first
    token -> dense 36 -> gelu) + classifier.  Tokenizer: DeBERTa-v3-style SentencePiece
    Unigram, built natively by transformers' ``DebertaV2Tokenizer(vocab=...)`` (its own
    normaliser: whitespace runs -> " ", NFC, right strip; ``Metaspace`` prepend "always";
    ``[CLS] A [SEP]`` / ``[CLS] A [SEP] B [SEP]`` with type ids 0 / 1), specials
    ``[PAD]`` 0, ``[CLS]`` 1, ``[SEP]`` 2, ``[UNK]`` 3, the counted pieces, ``[MASK]`` last.
    It returns ``token_type_ids`` (all 0 for one text), so they are in the inputs.
    PEFT: default targets (PEFT maps deberta-v2 to query_proj / value_proj) and all-linear.
``deberta-v2-c2p``
    The other DeBERTa code paths, same tokenizer, no PEFT: ``share_att_key`` false (a
    ``pos_key_proj`` per layer), ``pos_att_type`` given as the legacy string "c2p" (saved as
    a list, see the manifest), ``position_biased_input`` true (absolute
    ``embeddings.position_embeddings`` [40, 36] added to the word embeddings),
    ``norm_rel_ebd`` "none", ``position_buckets`` -1 and ``max_relative_positions`` 12
    (``rel_embeddings`` [24, 36], no buckets, distances clamped to +-12).
``modernbert``
    3 layers, intermediate 26 (``Wi`` 36 -> 52, GLU), gelu, no biases anywhere
    (``attention_bias`` / ``mlp_bias`` / ``norm_bias`` / ``classifier_bias`` false),
    ``local_attention`` 4 with ``global_attn_every_n_layers`` 2: layers 0 and 2 are global,
    layer 1 attends only to |i - j| <= 2 (the 16-token rows are longer than the window; checked
    on the eager attention weights), RoPE theta 160000 (global) / 10000 (local),
    ``classifier_pooling`` "mean" (masked mean over tokens, then head.dense -> gelu ->
    head.norm -> classifier).  ``expected.safetensors`` also has ``logits_cls``: the same
    weights with ``classifier_pooling`` "cls".  transformers 5 saves ``layer_types`` and
    ``rope_parameters`` in config.json (and keeps ``global_attn_every_n_layers``, but no
    ``*_rope_theta``); ``seqcls/config_hub_style.json`` is the same configuration as
    published Hub checkpoints write it (``global_attn_every_n_layers``,
    ``global_rope_theta``, ``local_rope_theta``, ``layer_norm_eps`` next to ``norm_eps``,
    ``torch_dtype``, no ``layer_types`` / ``rope_parameters``), checked to load in
    transformers to the same layer types, RoPE thetas and logits.  In a local layer a
    padded query row whose whole window is padding has every key masked with the dtype's
    minimum, so eager softmax attends UNIFORMLY to all 16 keys there (sdpa differs on those
    rows; the non-padded rows and the logits agree): compare only non-padded rows.
    Tokenizer: ModernBERT-style byte-level BPE (``tokenizers`` BpeTrainer, 295 pieces, no
    prefix space) with the specials ``[UNK] [CLS] [SEP] [PAD] [MASK]`` appended at the END
    (ids 295..299, as ModernBERT's 50280..50284, so ``pad_token_id`` is not 0; ``[MASK]``
    lstrip), ``[CLS] A [SEP]`` TemplateProcessing, wrapped in ``PreTrainedTokenizerFast``
    with ``model_input_names`` input_ids / attention_mask (no token_type_ids).
    PEFT: PEFT has no default targets for modernbert, so ``["Wqkv"]``; and all-linear.
``modernbert-bias``
    Every bias on (attention, mlp, norm, classifier), ``classifier_pooling`` "cls",
    ``global_attn_every_n_layers`` 3 with 3 layers (layer 0 global, 1 and 2 local),
    ``local_attention`` 6 (|i - j| <= 3); same tokenizer, no PEFT.

Per model, under ``modern/NAME/``:

``seqcls/``
    ``<Family>ForSequenceClassification`` (``config.json`` + ``model.safetensors``) and the
    tokenizer (``tokenizer.json`` + ``tokenizer_config.json``).
``bare/``
    The seqcls backbone (``DebertaV2Model`` / ``ModernBertModel``: no pooler / head, no
    ``deberta.`` / ``model.`` prefix) saved on its own + tokenizer.
``expected.safetensors``
    The 3 texts of ``make_fixture_families.BATCH_TEXTS`` tokenised as one batch (truncation,
    max_length 16, padding "longest"; row 0 is truncated, the others padded):
    ``input_ids``, ``attention_mask`` (+ ``token_type_ids`` for DeBERTa), I64;
    ``last_hidden_state`` [3, 16, 36] of the backbone and ``logits`` [3, 3], F32
    (+ ``logits_cls`` for ``modernbert``).  DeBERTa masks the padded *query* rows too, so
    its padded rows of ``last_hidden_state`` are what transformers gives, nothing more.
``tokens.json`` (``deberta-v2`` and ``modernbert``)
    8 texts, each tokenised ALONE (truncation 16, no padding, special tokens included).
``peft/adapter/`` + ``peft/expected.safetensors``, ``peft_all_linear/`` (``deberta-v2``,
``modernbert``)
    PEFT LoRA (SEQ_CLS, r 4, alpha 8, dropout 0.1) exactly as ``make_fixture_families``:
    lora_B ~ N(0, 0.2^2), the ``modules_to_save`` head copy perturbed by N(0, 0.2^2);
    ``logits``, ``logits_merged``, ``logits_no_lora``.  The manifest lists the modules that
    carry LoRA and those wrapped as ``modules_to_save``.

``modern/manifest.json``: versions, per-model config.json as saved, checkpoint keys,
tokenizer classes, PEFT lists, self-check results and the sha256 of every file.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import math
import os
import shutil
import sys
import tempfile
import warnings
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import make_fixture_families as base  # noqa: E402
import peft  # noqa: E402
import tokenizers  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from make_fixture_families import (  # noqa: E402
    BATCH_TEXTS,
    LABELS,
    MAX_LEN,
    TOKEN_TEXTS,
    _top,
    check,
    corpus,
    fmt,
    gen,
    log,
    logits_of,
    max_abs,
    normalise_adapter_config,
    position_ids_seen,
    randomize_,
    safetensors_keys,
    save_model,
    save_tensors,
    save_tokenizer,
    tokenize_batch,
    tokens_alone,
    write_json,
)
from peft.utils.constants import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING  # noqa: E402
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers  # noqa: E402
from transformers import (  # noqa: E402
    AutoModel,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    DebertaV2Config,
    DebertaV2ForSequenceClassification,
    DebertaV2Model,
    DebertaV2Tokenizer,
    ModernBertConfig,
    ModernBertForSequenceClassification,
    ModernBertModel,
    PreTrainedTokenizerFast,
)

GENERATOR = "scripts/make_fixture_modern.py"
base.GENERATOR = GENERATOR  # save_tensors writes it into the safetensors description
HIDDEN, HEADS = 36, 3
ID2LABEL = dict(LABELS)
LABEL2ID = {v: k for k, v in LABELS.items()}

# --------------------------------------------------------------------------
# tokenizers
# --------------------------------------------------------------------------

DEBERTA_SPECIALS = ["[PAD]", "[CLS]", "[SEP]", "[UNK]"]  # ids 0..3, [MASK] last


def deberta_vocab() -> list[tuple[str, float]]:
    """DeBERTa-v3-style Unigram vocab, counted in Python (as ``train_unigram`` of the families).

    Words are found with DebertaV2Tokenizer's own normaliser and Metaspace pre-tokeniser.
    Pieces: every character, the 30 most frequent "▁word"s (> 2 chars) and the 55 most frequent
    2-5 char substrings of the words; score = log(count / total count).
    """
    probe = DebertaV2Tokenizer(vocab=[(t, 0.0) for t in DEBERTA_SPECIALS] + [("[MASK]", 0.0)], unk_id=3).backend_tokenizer
    words: Counter = Counter()
    for line in corpus():
        for w, _ in probe.pre_tokenizer.pre_tokenize_str(probe.normalizer.normalize_str(line)):
            words[w] += 1
    chars: Counter = Counter()
    subs: Counter = Counter()
    for w, c in words.items():
        for ch in w:
            chars[ch] += c
        for n in range(2, len(w) + 1):
            for i in range(len(w) - n + 1):
                subs[w[i : i + n]] += c
    pieces = sorted(chars)
    for p in _top(Counter({w: c for w, c in words.items() if len(w) > 2}), 30) + _top(
        Counter({k: c for k, c in subs.items() if len(k) <= 5}), 55
    ):
        if p not in pieces:
            pieces.append(p)
    counts = {**subs, **chars}
    total = sum(counts[p] for p in pieces)
    vocab = [(t, 0.0) for t in DEBERTA_SPECIALS]
    vocab += [(p, round(math.log(counts[p] / total), 4)) for p in pieces]
    vocab.append(("[MASK]", 0.0))
    return vocab


def deberta_tokenizer(vocab, model_max_length: int):
    return DebertaV2Tokenizer(vocab=copy.deepcopy(vocab), unk_id=3, model_max_length=model_max_length)


MODERNBERT_SPECIALS = ["[UNK]", "[CLS]", "[SEP]", "[PAD]"]


def modernbert_backend() -> Tokenizer:
    """ModernBERT-style byte-level BPE: 295 trained pieces, then [UNK] [CLS] [SEP] [PAD] [MASK]."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=295,
        min_frequency=2,
        special_tokens=[],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus(), trainer=trainer)
    check(tok.get_vocab_size() == 295, f"BPE trained to 295 pieces ({tok.get_vocab_size()})")
    tok.add_special_tokens(
        MODERNBERT_SPECIALS
        + [tokenizers.AddedToken("[MASK]", lstrip=True, rstrip=False, single_word=False, normalized=False, special=True)]
    )
    c, s = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS]:0 $A:0 [SEP]:0", pair="[CLS]:0 $A:0 [SEP]:0 $B:1 [SEP]:1", special_tokens=[("[CLS]", c), ("[SEP]", s)]
    )
    return tok


def modernbert_tokenizer(backend: Tokenizer, model_max_length: int):
    mask = transformers.AddedToken("[MASK]", lstrip=True, rstrip=False, normalized=False, special=True)
    return PreTrainedTokenizerFast(
        tokenizer_object=copy.deepcopy(backend),
        model_max_length=model_max_length,
        unk_token="[UNK]", cls_token="[CLS]", sep_token="[SEP]", pad_token="[PAD]", mask_token=mask,
        bos_token="[CLS]", eos_token="[SEP]",
        model_input_names=["input_ids", "attention_mask"],
        clean_up_tokenization_spaces=True,
    )


# --------------------------------------------------------------------------
# configs
# --------------------------------------------------------------------------


def deberta_v3_config(vocab: int) -> DebertaV2Config:
    return DebertaV2Config(
        vocab_size=vocab, hidden_size=HIDDEN, num_hidden_layers=2, num_attention_heads=HEADS, intermediate_size=52,
        hidden_act="gelu", max_position_embeddings=40, type_vocab_size=0, relative_attention=True,
        max_relative_positions=-1, position_buckets=8, norm_rel_ebd="layer_norm", share_att_key=True,
        pos_att_type=["p2c", "c2p"], position_biased_input=False, layer_norm_eps=1e-7, pooler_hidden_size=HIDDEN,
        pooler_dropout=0, pooler_hidden_act="gelu", initializer_range=0.2, pad_token_id=0, num_labels=3,
        id2label=dict(ID2LABEL), label2id=dict(LABEL2ID), attn_implementation="eager",
    )


def deberta_c2p_config(vocab: int) -> DebertaV2Config:
    return DebertaV2Config(
        vocab_size=vocab, hidden_size=HIDDEN, num_hidden_layers=2, num_attention_heads=HEADS, intermediate_size=52,
        hidden_act="gelu", max_position_embeddings=40, type_vocab_size=0, relative_attention=True,
        max_relative_positions=12, position_buckets=-1, norm_rel_ebd="none", share_att_key=False,
        pos_att_type="c2p", position_biased_input=True, layer_norm_eps=1e-7, pooler_hidden_size=HIDDEN,
        pooler_dropout=0, pooler_hidden_act="gelu", initializer_range=0.2, pad_token_id=0, num_labels=3,
        id2label=dict(ID2LABEL), label2id=dict(LABEL2ID), attn_implementation="eager",
    )


def modernbert_config(vocab: int, ids: dict, **over) -> ModernBertConfig:
    kw = dict(
        vocab_size=vocab, hidden_size=HIDDEN, intermediate_size=26, num_hidden_layers=3, num_attention_heads=HEADS,
        hidden_activation="gelu", max_position_embeddings=64, norm_eps=1e-5, norm_bias=False, attention_bias=False,
        mlp_bias=False, classifier_bias=False, classifier_activation="gelu", classifier_pooling="mean",
        local_attention=4, global_attn_every_n_layers=2, global_rope_theta=160000.0, local_rope_theta=10000.0,
        initializer_range=0.2, pad_token_id=ids["[PAD]"], cls_token_id=ids["[CLS]"], sep_token_id=ids["[SEP]"],
        bos_token_id=ids["[CLS]"], eos_token_id=ids["[SEP]"], num_labels=3, id2label=dict(ID2LABEL),
        label2id=dict(LABEL2ID), attn_implementation="eager",
    )
    kw.update(over)
    return ModernBertConfig(**kw)


MODELS = [
    dict(name="deberta-v2", seed=601, tok="deberta", config="deberta-v3", seqcls=DebertaV2ForSequenceClassification,
         base=DebertaV2Model, peft=True, tokens=True),
    dict(name="deberta-v2-c2p", seed=602, tok="deberta", config="deberta-c2p", seqcls=DebertaV2ForSequenceClassification,
         base=DebertaV2Model, peft=False, tokens=False),
    dict(name="modernbert", seed=701, tok="modernbert", config="modernbert", seqcls=ModernBertForSequenceClassification,
         base=ModernBertModel, peft=True, tokens=True),
    dict(name="modernbert-bias", seed=702, tok="modernbert", config="modernbert-bias",
         seqcls=ModernBertForSequenceClassification, base=ModernBertModel, peft=False, tokens=False),
]

# PEFT has no default LoRA targets for modernbert (recorded in the manifest)
FALLBACK_TARGETS = {"modernbert": ["Wqkv"]}

# ModernBERT Hub checkpoints (answerdotai/ModernBERT-base) write these keys, and neither
# layer_types nor rope_parameters
HUB_EXTRA = {
    "gradient_checkpointing": False,
    "position_embedding_type": "absolute",
    "reference_compile": None,
    "torch_dtype": "float32",
    "transformers_version": "4.48.0",
}


def build_config(kind: str, vocab: int, ids: dict):
    if kind == "deberta-v3":
        return deberta_v3_config(vocab)
    if kind == "deberta-c2p":
        return deberta_c2p_config(vocab)
    if kind == "modernbert":
        return modernbert_config(vocab, ids)
    if kind == "modernbert-bias":
        return modernbert_config(
            vocab, ids, attention_bias=True, mlp_bias=True, norm_bias=True, classifier_bias=True,
            classifier_pooling="cls", global_attn_every_n_layers=3, local_attention=6,
        )
    raise ValueError(kind)


# --------------------------------------------------------------------------
# checks
# --------------------------------------------------------------------------


def masked_max_abs(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor) -> float:
    m = mask.bool().unsqueeze(-1)
    return float(((a.double() - b.double()).abs() * m).max())


def sliding_window_check(seqcls, inputs, cfg) -> dict:
    """On the eager attention weights: local layers see only |i - j| <= local_attention // 2."""
    half = cfg.local_attention // 2
    try:
        with torch.no_grad():
            o = seqcls.model(**inputs, output_attentions=True, return_dict=True)
        atts = o.attentions
    except Exception as exc:  # noqa: BLE001
        return {"skipped": f"{type(exc).__name__}: {exc}"}
    check(atts is not None and len(atts) == cfg.num_hidden_layers, "eager attention weights returned per layer")
    T = inputs["input_ids"].shape[1]
    i = torch.arange(T)
    far = (i[:, None] - i[None, :]).abs() > half  # [T, T]
    valid = inputs["attention_mask"].bool()
    keys = valid[:, None, None, :]  # [B, 1, 1, T]
    rows = valid[:, None, :, None]  # [B, 1, T, 1]: only non-padded query rows are checked
    # A padded query row whose whole window is padding has every key masked with the dtype's
    # minimum, so eager softmax gives it UNIFORM weights over all T keys (padding included).
    all_masked = (far[None] | ~valid[:, None, :]).all(-1) & ~valid  # [B, T]
    res = {}
    for li, (lt, a) in enumerate(zip(cfg.layer_types, atts)):
        outside = float((a * (far[None, None] & rows)).abs().max())
        inside_zero = bool(((a == 0) & ~far[None, None] & keys & rows).any())
        if lt == "sliding_attention":
            check(outside == 0.0 and not inside_zero,
                  f"layer {li} local: on non-padded query rows weight 0 exactly where |i-j| > {half}, > 0 inside")
            uni = a.permute(0, 2, 1, 3)[all_masked]  # [n, heads, T]
            if uni.numel():
                check(max_abs(uni, torch.full_like(uni, 1.0 / T)) < 1e-6,
                      "local layer: padded query rows with no unmasked key in the window attend uniformly to all T keys")
        else:
            check(outside > 0.0, f"layer {li} global: attends beyond |i-j| > {half}")
        res[str(li)] = {"layer_type": lt, "max_weight_beyond_window_non_padded_rows": fmt(outside)}
    pos = [[int(b), int(t)] for b, t in all_masked.nonzero().tolist()]
    return {"half_window": half, "rule": "attend iff |i - j| <= local_attention // 2 (and key not padded)", "layers": res,
            "padded_query_rows_with_window_all_padding_attend_uniformly_to_all_keys": pos}


def hub_style_config(saved: dict, cfg) -> dict:
    hub = {k: v for k, v in saved.items() if k not in ("layer_types", "rope_parameters", "dtype")}
    n = cfg.num_hidden_layers
    every = [i for i, t in enumerate(cfg.layer_types) if t == "full_attention"]
    # the Hub rule: layer i is global iff i % global_attn_every_n_layers == 0
    g = every[1] - every[0] if len(every) > 1 else n
    check([("sliding_attention" if i % g else "full_attention") for i in range(n)] == cfg.layer_types,
          f"layer_types {cfg.layer_types} == global_attn_every_n_layers {g}")
    hub.update(
        global_attn_every_n_layers=g,
        global_rope_theta=cfg.rope_parameters["full_attention"]["rope_theta"],
        local_rope_theta=cfg.rope_parameters["sliding_attention"]["rope_theta"],
        layer_norm_eps=cfg.norm_eps,
        **HUB_EXTRA,
    )
    return hub


def check_hub_style(seqcls_dir: Path, hub: dict, inputs, logits, cfg) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp) / "hub"
        shutil.copytree(seqcls_dir, t)
        (t / "config.json").write_text(json.dumps(hub, indent=2, sort_keys=True))
        m, li = AutoModelForSequenceClassification.from_pretrained(str(t), attn_implementation="eager", output_loading_info=True)
    m.eval()
    check(not any(li[k] for k in ("missing_keys", "unexpected_keys", "mismatched_keys")), "hub-style config: clean load")
    check(list(m.config.layer_types) == list(cfg.layer_types), f"hub-style config: layer_types {m.config.layer_types}")
    check(m.config.rope_parameters == cfg.rope_parameters, f"hub-style config: rope_parameters {m.config.rope_parameters}")
    d = max_abs(logits_of(m, inputs), logits)
    check(d == 0.0, "hub-style config: identical logits")
    return {"loads_in_transformers": True, "layer_types": list(m.config.layer_types),
            "rope_parameters": m.config.rope_parameters, "logits_max_abs_diff": fmt(d)}


# --------------------------------------------------------------------------
# one model
# --------------------------------------------------------------------------


def make_model(spec: dict, out: Path, report: dict, toks: dict) -> None:
    name = spec["name"]
    log(f"[{name}]")
    root = out / name
    info: dict = {}

    # --- tokenizer ---
    if spec["tok"] == "deberta":
        if "deberta" not in toks:
            toks["deberta"] = deberta_vocab()
        vocab_list = toks["deberta"]
        make_tok = lambda: deberta_tokenizer(vocab_list, 40)  # noqa: E731
        kind = "SentencePiece-style Unigram + Metaspace (DebertaV2Tokenizer(vocab=...))"
    else:
        if "modernbert" not in toks:
            toks["modernbert"] = modernbert_backend()
        backend = toks["modernbert"]
        make_tok = lambda: modernbert_tokenizer(backend, 64)  # noqa: E731
        kind = "byte-level BPE, specials appended at the end"
    tok = make_tok()
    vocab = len(tok)
    ids = {t: tok.convert_tokens_to_ids(t) for t in ("[PAD]", "[CLS]", "[SEP]", "[UNK]", "[MASK]")}
    probe = tok("A great movie.")
    info["tokenizer"] = {
        "class": type(tok).__name__,
        "kind": kind,
        "vocab_size": vocab,
        "special_tokens": {k: [v, tok.convert_tokens_to_ids(v)] for k, v in sorted(tok.special_tokens_map.items()) if isinstance(v, str)},
        "model_input_names": list(tok.model_input_names),
        "returns_token_type_ids": "token_type_ids" in probe,
        "pair_token_type_ids_example": tok("A great movie.", "ok").get("token_type_ids"),
    }

    # --- models ---
    cfg = build_config(spec["config"], vocab, ids)
    torch.manual_seed(spec["seed"])
    seqcls = spec["seqcls"](cfg)
    prefix = seqcls.base_model_prefix
    backbone = getattr(seqcls, prefix)
    randomize_(seqcls, gen(spec["seed"]), set())
    seqcls.eval()
    bare = spec["base"](copy.deepcopy(cfg))
    bare.load_state_dict(backbone.state_dict(), strict=True)
    bare.eval()

    for sub, m in (("seqcls", seqcls), ("bare", bare)):
        save_model(m, root / sub)
        fresh = make_tok()  # a tokenizer that never saw truncation=True (it would land in tokenizer.json)
        info.setdefault("tokenizer_files", {})[sub] = save_tokenizer(fresh, root / sub, TOKEN_TEXTS)
        tj = json.loads((root / sub / "tokenizer.json").read_text())
        check(tj.get("truncation") is None and tj.get("padding") is None, f"{sub}/tokenizer.json has no truncation / padding")
    keys = {sub: safetensors_keys(root / sub / "model.safetensors") for sub in ("seqcls", "bare")}

    # --- reference outputs ---
    inputs = tokenize_batch(tok, BATCH_TEXTS)
    lens = inputs["attention_mask"].sum(1).tolist()
    check(lens[0] == MAX_LEN and min(lens) < MAX_LEN, f"batch row 0 truncated to {MAX_LEN}, padding present (lengths {lens})")
    with torch.no_grad():
        o = backbone(**inputs, output_hidden_states=True, return_dict=True)
        logits = seqcls(**inputs).logits
    if spec["tok"] == "deberta":
        check(max_abs(o.hidden_states[-1], o.last_hidden_state) == 0.0, "hidden_states[-1] == last_hidden_state")
    else:  # ModernBERT: hidden_states[-1] is before final_norm, last_hidden_state after it
        info["hidden_states_last_equals_last_hidden_state"] = max_abs(o.hidden_states[-1], o.last_hidden_state) == 0.0
    check(float(logits.abs().max()) > 0.05, f"logits non-trivial (max |logit| {float(logits.abs().max()):.3g})")
    tensors = {**inputs, "last_hidden_state": o.last_hidden_state, "logits": logits}
    if name == "modernbert":
        cls_model = AutoModelForSequenceClassification.from_pretrained(str(root / "seqcls"), attn_implementation="eager").eval()
        cls_model.config.classifier_pooling = "cls"
        logits_cls = logits_of(cls_model, inputs)
        check(max_abs(logits_cls, logits) > 1e-3, "classifier_pooling cls gives other logits than mean")
        tensors["logits_cls"] = logits_cls
    save_tensors(root / "expected.safetensors", tensors, f"{name}: seqcls eval outputs, eager attention")
    info["batch"] = {"texts": BATCH_TEXTS, "lengths": lens, "inputs": sorted(inputs), "outputs": sorted(set(tensors) - set(inputs))}
    info["position_ids_seen"] = position_ids_seen(backbone, inputs)
    if spec["tok"] == "modernbert":
        info["sliding_window"] = sliding_window_check(seqcls, inputs, cfg)
    else:
        enc = backbone.encoder
        info["relative_attention"] = {
            "rel_embeddings_shape": list(enc.rel_embeddings.weight.shape),
            "max_relative_positions_effective": enc.max_relative_positions,
            "position_buckets": enc.position_buckets,
            "norm_rel_ebd": enc.norm_rel_ebd,
            "pos_att_type_effective": list(backbone.encoder.layer[0].attention.self.pos_att_type),
            "share_att_key": bool(backbone.encoder.layer[0].attention.self.share_att_key),
            "_keys_to_ignore_on_load_unexpected": list(seqcls._keys_to_ignore_on_load_unexpected or []),
        }
        pad_rows = ~inputs["attention_mask"].bool()
        info["padded_rows_of_last_hidden_state_all_zero"] = bool((o.last_hidden_state[pad_rows] == 0).all())

    # --- tokens.json ---
    ids_alone, masks, toks_alone = tokens_alone(tok, TOKEN_TEXTS)
    raw = Tokenizer.from_file(str(root / "seqcls" / "tokenizer.json"))
    raw.no_padding()
    raw.enable_truncation(max_length=MAX_LEN)
    raw_ids = [raw.encode(t).ids for t in TOKEN_TEXTS]
    check(raw_ids == ids_alone, "raw Tokenizer.from_file(tokenizer.json) + enable_truncation(16) == transformers ids")
    raw_types = [raw.encode(t).type_ids for t in TOKEN_TEXTS]
    check(all(set(t) == {0} for t in raw_types), "raw tokenizer type ids all 0 for one text")
    if spec["tokens"]:
        write_json(
            root / "tokens.json",
            {
                "max_length": MAX_LEN,
                "texts": TOKEN_TEXTS,
                "input_ids": ids_alone,
                "attention_mask": masks,
                "tokens": toks_alone,
                "pad_token_id": tok.pad_token_id,
                "num_tokens_untruncated": [len(tok(t)["input_ids"]) for t in TOKEN_TEXTS],
                "tokenizer_class": type(tok).__name__,
                "note": "each text tokenised alone: truncation=True, max_length=16, no padding, special tokens added",
            },
        )

    # --- reload checks ---
    diffs = {}
    m2, li = AutoModelForSequenceClassification.from_pretrained(str(root / "seqcls"), attn_implementation="eager", output_loading_info=True)
    m2.eval()
    check(not any(li[k] for k in ("missing_keys", "unexpected_keys", "mismatched_keys")), f"seqcls reload clean {li}")
    check(type(m2) is spec["seqcls"], f"AutoModelForSequenceClassification gives {type(m2).__name__}")
    diffs["seqcls"] = max_abs(logits_of(m2, inputs), logits)
    b2, lb = AutoModel.from_pretrained(str(root / "bare"), attn_implementation="eager", output_loading_info=True)
    b2.eval()
    check(not any(lb[k] for k in ("missing_keys", "unexpected_keys", "mismatched_keys")), f"bare reload clean {lb}")
    check(type(b2) is spec["base"], f"AutoModel gives {type(b2).__name__}")
    with torch.no_grad():
        diffs["bare"] = max_abs(b2(**inputs).last_hidden_state, o.last_hidden_state)
    for k, d in diffs.items():
        check(d == 0.0, f"reloaded {k} reproduces outputs exactly")
    t2 = AutoTokenizer.from_pretrained(str(root / "seqcls"))
    check(tokens_alone(t2, TOKEN_TEXTS)[0] == ids_alone and tokenize_batch(t2, BATCH_TEXTS).keys() == inputs.keys(),
          f"AutoTokenizer reload ({type(t2).__name__}) gives the same ids and input names")
    info["tokenizer"]["autotokenizer_class"] = type(t2).__name__
    info["tokenizer"]["tokenizer_config_class"] = json.loads((root / "seqcls" / "tokenizer_config.json").read_text()).get("tokenizer_class")

    # --- sdpa vs eager ---
    info["supports"] = {k: bool(getattr(spec["seqcls"], k, False)) for k in ("_supports_sdpa", "_supports_flash_attn", "_supports_flex_attn")}
    try:
        sd = spec["seqcls"].from_pretrained(str(root / "seqcls"), attn_implementation="sdpa").eval()
        with torch.no_grad():
            rs = getattr(sd, prefix)(**inputs).last_hidden_state
            ls = sd(**inputs).logits
        full = max_abs(rs, o.last_hidden_state)
        masked = masked_max_abs(rs, o.last_hidden_state, inputs["attention_mask"])
        ld = max_abs(ls, logits)
        check(max(masked, ld) < 1e-5, f"sdpa ({sd.config._attn_implementation}) vs eager: non-padded rows {masked:.3g}, logits {ld:.3g}")
        info["sdpa_vs_eager"] = {"implementation": sd.config._attn_implementation, "last_hidden_state_all_rows": fmt(full),
                                 "last_hidden_state_non_padded_rows": fmt(masked), "logits": fmt(ld)}
    except (ValueError, NotImplementedError) as exc:
        log(f"  sdpa not supported: {exc}")
        info["sdpa_vs_eager"] = {"skipped": f"{type(exc).__name__}: {str(exc).splitlines()[0]}"}

    cfg_json = json.loads((root / "seqcls" / "config.json").read_text())
    info.update(
        model_type=cfg_json.get("model_type"),
        config_json_seqcls=cfg_json,
        architectures={sub: json.loads((root / sub / "config.json").read_text()).get("architectures") for sub in ("seqcls", "bare")},
        base_model_prefix=prefix,
        checkpoint_keys={sub: sorted(keys[sub]) for sub in keys},
        checkpoint_shapes_seqcls=keys["seqcls"],
        reload_max_abs_diff={k: fmt(v) for k, v in diffs.items()},
    )
    if spec["tok"] == "modernbert":
        info["layer_types"] = list(cfg.layer_types)
        info["rope_parameters"] = cfg.rope_parameters
        info["sliding_window_config_attr"] = cfg.sliding_window
    if name == "modernbert":
        hub = hub_style_config(cfg_json, cfg)
        write_json(root / "seqcls" / "config_hub_style.json", hub)
        info["config_hub_style"] = check_hub_style(root / "seqcls", hub, inputs, logits, cfg)
        info["config_hub_style"]["removed_keys"] = sorted(set(cfg_json) - set(hub))
        info["config_hub_style"]["added_keys"] = sorted(set(hub) - set(cfg_json))

    # --- PEFT ---
    if spec["peft"]:
        def load_base():
            return AutoModelForSequenceClassification.from_pretrained(str(root / "seqcls"), attn_implementation="eager")

        default = TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING.get(info["model_type"])
        info["peft_builtin_default_target_modules"] = default
        targets = None if default is not None else FALLBACK_TARGETS[name]
        for sub, tm, seed in (("peft", targets, spec["seed"] + 1), ("peft_all_linear", "all-linear", spec["seed"] + 2)):
            info[sub] = base.make_peft(name, root / sub, load_base, tm, inputs, seed)
            normalise_adapter_config(root / sub / "adapter", f"fixtures/modern/{name}/seqcls")
    report[name] = info


# --------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True, help="fixtures folder (writes <out>/modern/)")
    ap.add_argument("--only", nargs="*", help="build only these models (for debugging; the manifest then lists only them)")
    args = ap.parse_args()

    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=UserWarning)
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()

    out = args.out / "modern"
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)

    report: dict = {}
    toks: dict = {}
    for spec in MODELS:
        if args.only and spec["name"] not in args.only:
            continue
        make_model(spec, out, report, toks)

    files = sorted(p for p in out.rglob("*") if p.is_file())
    manifest = {
        "generator": GENERATOR,
        "versions": {
            "python": ".".join(map(str, sys.version_info[:3])),
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "peft": peft.__version__,
            "tokenizers": tokenizers.__version__,
        },
        "shapes": {"hidden": HIDDEN, "heads": HEADS, "head_dim": HIDDEN // HEADS, "labels": LABELS, "max_length": MAX_LEN},
        "models": report,
        "files": {
            str(p.relative_to(out)): {"bytes": p.stat().st_size, "sha256": hashlib.sha256(p.read_bytes()).hexdigest()}
            for p in files
        },
    }
    write_json(out / "manifest.json", manifest)
    total = sum(p.stat().st_size for p in files)
    log(f"wrote {len(files) + 1} files, {total} bytes (+ manifest)")


if __name__ == "__main__":
    main()

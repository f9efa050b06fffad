#!/usr/bin/env python3
"""Write ``fixtures/families/``: tiny RANDOM checkpoints of five Hugging Face encoder
families (RoBERTa, XLM-RoBERTa, CamemBERT, ELECTRA, DistilBERT), their tiny tokenizers,
and transformers / PEFT reference outputs, for the Rust parity tests (tolerance 1e-5).

Nothing is downloaded: every model is built from a config, every tokenizer is made here
from the inline English corpus (``corpus()``, ~200 sentences): RoBERTa's byte-level BPE
with the ``tokenizers`` BpeTrainer (vocab 300); the XLM-R/CamemBERT Unigram and the
uncased WordPiece vocabs are counted in Python (the ``tokenizers`` Unigram / WordPiece
trainers give different vocabs from run to run).  Each is wrapped in its transformers
tokenizer class and saved with ``save_pretrained`` (``tokenizer.json`` has the family's
normaliser, pre-tokeniser and post-processor: ``<s> A </s>`` or ``[CLS] A [SEP]``).

Run from the repository root, in the fixtures venv (``scripts/README.md``)::

    /work/venv-fx/bin/python scripts/make_fixture_families.py --out fixtures

It deletes and rewrites only ``<out>/families/``.  Deterministic: fixed seeds,
``torch.set_num_threads(1)``, deterministic algorithms, sorted JSON, float32, eval
mode, eager attention.

Shapes (odd on purpose): hidden 36, 3 heads (head dim 12), intermediate 52, 2 layers
(DistilBERT 3), gelu, 40 positions, 3 labels (neg / neutral / pos),
``initializer_range`` 0.2.  After the seeded transformers init, *every* parameter
(backbone and head) is overwritten with seeded random values (matrices and
embeddings N(0, 0.2^2), biases N(0, 0.1^2), LayerNorm gamma 1 + N(0, 0.1^2)), so a
loader that drops a bias or swaps gamma/beta is caught.  DistilBERT's sinusoidal
position table is left as transformers makes it.

Per family NAME (``roberta``, ``xlm-roberta``, ``camembert``, ``electra``,
``distilbert``), under ``families/NAME/``:

``seqcls/``
    ``<Family>ForSequenceClassification`` (``config.json`` + ``model.safetensors``)
    and the tokenizer (``tokenizer.json`` + ``tokenizer_config.json``; the vocab /
    merges files are deleted when ``tokenizer.json`` alone reloads identically).
``bare/``
    ``model.<base_model_prefix>`` of the seqcls model saved on its own (the
    ``<Family>Model`` key convention, no family prefix, no pooler) + tokenizer.
``expected.safetensors``
    3 texts tokenised as one batch (truncation, max_length 16, padding "longest";
    row 0 is truncated, the others padded): ``input_ids``, ``attention_mask``
    (+ ``token_type_ids`` when the tokenizer returns them: ELECTRA), I64;
    ``last_hidden_state`` [3, T, 36] of the seqcls model's backbone and ``logits``
    [3, 3] of the seqcls model, F32.
``tokens.json``
    8 texts, each tokenised ALONE (truncation, max_length 16, no padding, special
    tokens included): ``input_ids``, ``attention_mask``, ``tokens``, ``pad_token_id``,
    ``num_tokens_untruncated``.
``peft/adapter/`` + ``peft/expected.safetensors``
    PEFT LoRA (SEQ_CLS, r 4, alpha 8, dropout 0.1, PEFT's default target modules;
    PEFT has none for camembert and distilbert, which get query/value and
    q_lin/v_lin explicitly, see ``peft_builtin_default_target_modules`` in the manifest):
    lora_B ~ N(0, 0.2^2) (PEFT's zeros would make it a no-op), lora_A PEFT's seeded
    init, the ``modules_to_save`` head copy perturbed by N(0, 0.2^2).
    ``expected.safetensors``: the inputs above, ``logits`` (eval, unmerged),
    ``logits_merged`` (after ``merge_and_unload()``), ``logits_no_lora`` (the
    perturbed head without LoRA).
``peft_all_linear/`` (``roberta`` and ``distilbert`` only)
    The same with ``target_modules="all-linear"``.  For DistilBERT that raises in PEFT
    (LoRA lands on ``pre_classifier``, which ``modules_to_save`` then matches by suffix),
    so it is made with ``exclude_modules=["pre_classifier"]``; the error is recorded.

``families/manifest.json``: versions, per-family model_type / architectures /
checkpoint keys / PEFT target and modules_to_save lists / self-check results, and the
sha256 of every file.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import inspect
import json
import math
import os
import shutil
import sys
import warnings
from collections import Counter
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
from safetensors import safe_open  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

import peft  # noqa: E402
import tokenizers  # noqa: E402
import transformers  # noqa: E402
from peft import LoraConfig, PeftModel, TaskType, get_peft_model  # noqa: E402
from peft.utils.constants import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING  # noqa: E402
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers  # noqa: E402
from transformers import (  # noqa: E402
    AutoModel,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    CamembertConfig,
    CamembertForSequenceClassification,
    CamembertModel,
    DistilBertConfig,
    DistilBertForSequenceClassification,
    DistilBertModel,
    ElectraConfig,
    ElectraForSequenceClassification,
    ElectraModel,
    RobertaConfig,
    RobertaForSequenceClassification,
    RobertaModel,
    XLMRobertaConfig,
    XLMRobertaForSequenceClassification,
    XLMRobertaModel,
)

GENERATOR = "scripts/make_fixture_families.py"
MAX_LEN = 16
LABELS = {0: "neg", 1: "neutral", 2: "pos"}
HIDDEN, HEADS, INTERMEDIATE, POSITIONS = 36, 3, 52, 40
LORA_R, LORA_ALPHA, LORA_DROPOUT = 4, 8, 0.1

# --------------------------------------------------------------------------
# texts
# --------------------------------------------------------------------------

_HAND = [
    "A great movie.",
    "The plot was predictable, but the acting was strong.",
    "I went into this film with low expectations and was pleasantly surprised.",
    "The first half is slow, and the dialogue is often clumsy.",
    "Once the story gets going, the performances are genuinely moving.",
    "The score is beautiful and the last twenty minutes are tense.",
    "It's not a masterpiece, but I'd still recommend it.",
    "This was the worst film I have seen all year.",
    "What a waste of time! The ending made no sense at all.",
    "An average comedy with a few good jokes and many bad ones.",
    "The actors did their best with a weak script.",
    "Nobody in the theatre laughed, not even once.",
    "My kids loved the songs and the colourful animation.",
    "A slow, quiet drama about a family in a small town.",
    "The camera work is stunning; every frame looks like a painting.",
    "Too long, too loud, and far too proud of itself.",
    "I didn't expect to cry, but I did.",
    "The villain was more interesting than the hero.",
    "Café culture in Paris looks charming on the big screen.",
    "The naïve hero travels from München to São Paulo.",
    "Über cool effects, but the story is thin.",
    "A résumé of clichés: the rookie cop, the old mentor, the chase.",
    "The soundtrack — mostly piano — fits the mood perfectly.",
    "Rated 10/10!!! Best movie ever.",
    "Rated 2/10... not worth the ticket.",
    "Is it good? Yes. Is it great? No.",
    "The sequel is better than the original (surprisingly).",
    "Watch it at home; don't pay for the cinema.",
    "She said: \"this is the film of the decade\".",
    "He's a fine actor, and it's a fine film.",
    "We're going again next week, they're coming too.",
    "The documentary explains the history of jazz in New Orleans.",
    "The science makes no sense, yet the film is fun.",
    "The costumes and the sets are wonderful.",
    "A tired, predictable thriller with one good twist.",
    "Great cast, terrible editing, confusing plot.",
    "I'd give it three stars out of five.",
    "The director's cut is twenty minutes longer.",
    "The dialogue sounds natural and the characters feel real.",
    "The ending was sad but honest.",
    "Hello world! This movie was great.",
    "What?! No way... (really) #1 @home",
    "The crème brûlée scene is the best part of the film.",
    "An école in the Alps, a façade of calm, a piñata at a party.",
    "Straße, déjà vu, jalapeño, señor, naïveté.",
]
_SUBJECTS = [
    "The movie", "This film", "The story", "The acting", "The music",
    "The ending", "The cast", "The script", "The director", "The picture",
]
_PREDICATES = [
    "was great", "was terrible", "felt too long", "made me laugh", "was boring",
    "is worth watching", "was not good", "surprised everyone", "was quite average", "is a classic",
]
_TAILS = ["", " and I loved it", ", sadly", " in my opinion"]


def corpus() -> list[str]:
    """~200 short English sentences (deterministic)."""
    out = list(_HAND)
    i = 0
    for s in _SUBJECTS:
        for p in _PREDICATES:
            out.append(f"{s} {p}{_TAILS[i % len(_TAILS)]}.")
            i += 1
    for s in _SUBJECTS[:6]:
        for p in _PREDICATES[::2]:
            out.append(f"I think {s.lower()} {p}!")
    return out


TOKEN_TEXTS = [
    "Hello world! This movie was great.",
    "Café über naïve — 10/10!!! didn't",
    "I loved it 😀",
    "  Leading and   inner spaces  ",
    "What?! No way... (really) #1 @home",
    "The plot was predictable, but the acting was strong enough to keep me watching until the very end of the film.",
    "ÉCOLE Straße 日本",
    "ok",
]

BATCH_TEXTS = [
    "I went into this film with low expectations and was pleasantly surprised by the second half.",
    "A great movie.",
    "Café über naïve — 10/10!!! didn't",
]

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


def check(cond: bool, what: str) -> None:
    if not cond:
        raise SystemExit(f"self-check failed: {what}")
    log(f"  ok: {what}")


def max_abs(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.detach().double() - b.detach().double()).abs().max())


def fmt(x: float) -> str:
    return f"{x:.3g}"


def _dumps(obj, level: int = 0) -> str:
    """json.dumps(indent=2, sort_keys=True), but lists of numbers (or of short strings) on one line."""
    pad, inner = "  " * level, "  " * (level + 1)
    if isinstance(obj, dict):
        if not obj:
            return "{}"
        items = [f"{inner}{json.dumps(str(k), ensure_ascii=False)}: {_dumps(v, level + 1)}" for k, v in sorted(obj.items())]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(obj, (list, tuple)):
        flat = json.dumps(list(obj), ensure_ascii=False)
        scalars = all(x is None or isinstance(x, (bool, int, float)) for x in obj)
        short = all(isinstance(x, str) for x in obj) and len(flat) <= 100
        if not obj or scalars or short:
            return flat
        return "[\n" + ",\n".join(f"{inner}{_dumps(x, level + 1)}" for x in obj) + "\n" + pad + "]"
    return json.dumps(obj, ensure_ascii=False)


def write_json(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = _dumps(obj) + "\n"
    json.loads(text)  # sanity
    path.write_text(text, encoding="utf-8")


def save_tensors(path: Path, tensors: dict[str, torch.Tensor], description: str) -> None:
    out = {}
    for k, v in tensors.items():
        v = v.detach().cpu().clone().contiguous()
        out[k] = v.to(torch.float32) if v.is_floating_point() else v.to(torch.int64)
    path.parent.mkdir(parents=True, exist_ok=True)
    # ONE metadata key: the Rust safetensors writer orders several from a hash map.
    save_file(out, str(path), metadata={"description": f"{description} [{GENERATOR}]"})


def safetensors_keys(path: Path) -> dict[str, list]:
    """{key: shape}; every tensor must be F32."""
    with safe_open(str(path), "pt") as f:
        dtypes = {f.get_slice(k).get_dtype() for k in f.keys()}
        if dtypes != {"F32"}:
            raise SystemExit(f"{path}: dtypes {dtypes}, expected F32 only")
        return {k: list(f.get_slice(k).get_shape()) for k in sorted(f.keys())}


def save_model(model, directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    kwargs = {}
    if "safe_serialization" in inspect.signature(model.save_pretrained).parameters:
        kwargs["safe_serialization"] = True  # transformers < 5; 5 always writes safetensors
    model.save_pretrained(str(directory), **kwargs)


def layer_norm_param_names(model) -> set[str]:
    names = set()
    for mname, mod in model.named_modules():
        if isinstance(mod, torch.nn.LayerNorm):
            for pname, _ in mod.named_parameters(recurse=False):
                names.add(f"{mname}.{pname}" if mname else pname)
    return names


def randomize_(model, g: torch.Generator, skip: set[str], weight_std=0.2, bias_std=0.1) -> list[str]:
    """Overwrite every parameter (sorted-name order) except ``skip`` with seeded values."""
    ln = layer_norm_param_names(model)
    done = []
    with torch.no_grad():
        for name, p in sorted(model.named_parameters(), key=lambda kv: kv[0]):
            if name in skip:
                continue
            if name in ln and name.endswith("weight"):
                p.copy_(1.0 + randn(p.shape, bias_std, g))
            elif name.endswith("bias"):
                p.copy_(randn(p.shape, bias_std, g))
            else:
                p.copy_(randn(p.shape, weight_std, g))
            done.append(name)
    return done


def logits_of(model, inputs) -> torch.Tensor:
    with torch.no_grad():
        return model(**inputs).logits


# --------------------------------------------------------------------------
# tokenizers
# --------------------------------------------------------------------------


# RoBERTa / XLM-R's <mask> swallows the space before it
MASK_LSTRIP = tokenizers.AddedToken("<mask>", lstrip=True, rstrip=False, single_word=False, normalized=False, special=True)


def train_byte_level_bpe() -> Tokenizer:
    """RoBERTa-style byte-level BPE, specials <s> <pad> </s> <unk> <mask> = 0..4."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300,
        min_frequency=2,
        special_tokens=["<s>", "<pad>", "</s>", "<unk>", MASK_LSTRIP],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus(), trainer=trainer)
    tok.post_processor = processors.RobertaProcessing(
        ("</s>", tok.token_to_id("</s>")), ("<s>", tok.token_to_id("<s>")), trim_offsets=True, add_prefix_space=False
    )
    return tok


# The tokenizers WordPiece / Unigram trainers are not reproducible from run to run (ties
# and EM sums follow Rust HashMap order, which is seeded per process), so these two vocabs
# are counted here, in Python, with explicit tie-breaks.  (The BPE trainer is reproducible:
# its alphabet is sorted and its merge ties are broken by pair ids.)


def _top(counter: Counter, n: int, min_count: int = 2) -> list[str]:
    """The n most frequent keys, ties broken by the string itself."""
    return [k for k, c in sorted(counter.items(), key=lambda kv: (-kv[1], kv[0])) if c >= min_count][:n]


def train_unigram() -> Tokenizer:
    """XLM-R-style Unigram + Metaspace, specials <s> <pad> </s> <unk> = 0..3, <mask> last.

    Pieces: every character of the normalised corpus, the 30 most frequent "▁word"s and the
    55 most frequent substrings (2-5 chars) of those words; score = log(count / total count).
    """
    normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Replace(Regex(" {2,}"), " ")])
    pre = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    words: Counter = Counter()
    for line in corpus():
        for w, _ in pre.pre_tokenize_str(normalizer.normalize_str(line)):
            words[w] += 1
    chars: Counter = Counter()
    subs: Counter = Counter()
    for w, c in words.items():
        for ch in w:
            chars[ch] += c
        for n in range(2, len(w) + 1):
            for i in range(len(w) - n + 1):
                subs[w[i : i + n]] += c
    pieces = sorted(chars)  # every character, so only unseen characters become <unk>
    for p in _top(Counter({w: c for w, c in words.items() if len(w) > 2}), 30) + _top(Counter({k: c for k, c in subs.items() if len(k) <= 5}), 55):
        if p not in pieces:
            pieces.append(p)
    counts = {**subs, **chars}
    total = sum(counts[p] for p in pieces)
    vocab = [(t, 0.0) for t in ("<s>", "<pad>", "</s>", "<unk>")]
    vocab += [(p, round(math.log(counts[p] / total), 4)) for p in pieces]
    tok = Tokenizer(models.Unigram(vocab, unk_id=3, byte_fallback=False))
    tok.normalizer = normalizer
    tok.pre_tokenizer = pre
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    tok.add_special_tokens(["<s>", "<pad>", "</s>", "<unk>", MASK_LSTRIP])
    s, e = tok.token_to_id("<s>"), tok.token_to_id("</s>")
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>", special_tokens=[("<s>", s), ("</s>", e)]
    )
    return tok


def train_wordpiece() -> Tokenizer:
    """BERT-style uncased WordPiece, specials [PAD] [UNK] [CLS] [SEP] [MASK] = 0..4.

    Vocab: every character and its "##" form, the 45 most frequent words, the 15 most
    frequent word-initial 2-4 char prefixes and the 20 most frequent "##" suffixes.
    """
    normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True, strip_accents=None, lowercase=True)
    pre = pre_tokenizers.BertPreTokenizer()
    words: Counter = Counter()
    for line in corpus():
        for w, _ in pre.pre_tokenize_str(normalizer.normalize_str(line)):
            words[w] += 1
    chars = sorted({ch for w in words for ch in w})
    prefixes: Counter = Counter()
    suffixes: Counter = Counter()
    for w, c in words.items():
        for n in range(2, 5):
            if len(w) > n:
                prefixes[w[:n]] += c
                suffixes[w[-n:]] += c
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + chars + ["##" + ch for ch in chars]
    for t in _top(Counter({w: c for w, c in words.items() if len(w) > 1}), 45) + _top(prefixes, 15) + [
        "##" + x for x in _top(suffixes, 20)
    ]:
        if t not in vocab:
            vocab.append(t)
    tok = Tokenizer(models.WordPiece({t: i for i, t in enumerate(vocab)}, unk_token="[UNK]", max_input_chars_per_word=100))
    tok.normalizer = normalizer
    tok.pre_tokenizer = pre
    tok.decoder = decoders.WordPiece(prefix="##")
    tok.add_special_tokens(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"])
    c, s = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", c), ("[SEP]", s)]
    )
    return tok


def wrap(kind: str, backend: Tokenizer, cls_name: str, model_max_length: int):
    cls = getattr(transformers, cls_name)
    if kind in ("bpe", "unigram"):
        specials = dict(bos_token="<s>", eos_token="</s>", sep_token="</s>", cls_token="<s>", unk_token="<unk>", pad_token="<pad>")
        mask = transformers.AddedToken("<mask>", lstrip=True, rstrip=False, normalized=False, special=True)
        kw = dict(specials, mask_token=mask)
        if kind == "bpe":
            kw.update(add_prefix_space=False, trim_offsets=True)
    else:
        kw = dict(unk_token="[UNK]", sep_token="[SEP]", pad_token="[PAD]", cls_token="[CLS]", mask_token="[MASK]", do_lower_case=True)
    return cls(tokenizer_object=copy.deepcopy(backend), model_max_length=model_max_length, **kw)


# --------------------------------------------------------------------------
# families
# --------------------------------------------------------------------------


def roberta_like_config(cls, vocab: int, model_type_extra=None):
    return cls(
        vocab_size=vocab,
        hidden_size=HIDDEN,
        num_hidden_layers=2,
        num_attention_heads=HEADS,
        intermediate_size=INTERMEDIATE,
        hidden_act="gelu",
        max_position_embeddings=POSITIONS,
        type_vocab_size=1,
        initializer_range=0.2,
        layer_norm_eps=1e-5,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
        num_labels=3,
        id2label=dict(LABELS),
        label2id={v: k for k, v in LABELS.items()},
        attn_implementation="eager",
    )


def electra_config(vocab: int):
    return ElectraConfig(
        vocab_size=vocab,
        embedding_size=20,
        hidden_size=HIDDEN,
        num_hidden_layers=2,
        num_attention_heads=HEADS,
        intermediate_size=INTERMEDIATE,
        hidden_act="gelu",
        max_position_embeddings=POSITIONS,
        type_vocab_size=2,
        initializer_range=0.2,
        pad_token_id=0,
        num_labels=3,
        id2label=dict(LABELS),
        label2id={v: k for k, v in LABELS.items()},
        attn_implementation="eager",
    )


def distilbert_config(vocab: int):
    return DistilBertConfig(
        vocab_size=vocab,
        dim=HIDDEN,
        n_heads=HEADS,
        hidden_dim=INTERMEDIATE,
        n_layers=3,
        max_position_embeddings=POSITIONS,
        sinusoidal_pos_embds=True,
        activation="gelu",
        seq_classif_dropout=0.2,
        initializer_range=0.2,
        pad_token_id=0,
        num_labels=3,
        id2label=dict(LABELS),
        label2id={v: k for k, v in LABELS.items()},
        attn_implementation="eager",
    )


FAMILIES = [
    dict(name="roberta", seed=101, tok="bpe", tok_cls="RobertaTokenizerFast", model_max_length=POSITIONS - 2,
         config=lambda v: roberta_like_config(RobertaConfig, v), seqcls=RobertaForSequenceClassification,
         base=RobertaModel, all_linear=True),
    dict(name="xlm-roberta", seed=202, tok="unigram", tok_cls="XLMRobertaTokenizerFast", model_max_length=POSITIONS - 2,
         config=lambda v: roberta_like_config(XLMRobertaConfig, v), seqcls=XLMRobertaForSequenceClassification,
         base=XLMRobertaModel, all_linear=False),
    dict(name="camembert", seed=303, tok="unigram", tok_cls="CamembertTokenizerFast", model_max_length=POSITIONS - 2,
         config=lambda v: roberta_like_config(CamembertConfig, v), seqcls=CamembertForSequenceClassification,
         base=CamembertModel, all_linear=False),
    dict(name="electra", seed=404, tok="wordpiece", tok_cls="ElectraTokenizerFast", model_max_length=POSITIONS,
         config=electra_config, seqcls=ElectraForSequenceClassification, base=ElectraModel, all_linear=False),
    dict(name="distilbert", seed=505, tok="wordpiece", tok_cls="DistilBertTokenizerFast", model_max_length=POSITIONS,
         config=distilbert_config, seqcls=DistilBertForSequenceClassification, base=DistilBertModel, all_linear=True),
]

# used only where PEFT has no built-in default for the model_type (recorded in the manifest)
FALLBACK_TARGETS = {"camembert": ["query", "value"], "distilbert": ["q_lin", "v_lin"]}

TOKENIZER_EXTRA_FILES = ["vocab.json", "merges.txt", "vocab.txt", "sentencepiece.bpe.model", "spiece.model", "tokenizer.model"]


def tokenize_batch(tok, texts):
    enc = tok(texts, truncation=True, max_length=MAX_LEN, padding="longest", return_tensors="pt")
    return {k: enc[k].to(torch.int64) for k in ("input_ids", "attention_mask", "token_type_ids") if k in enc}


def tokens_alone(tok, texts):
    ids, masks, toks = [], [], []
    for t in texts:
        e = tok(t, truncation=True, max_length=MAX_LEN)
        ids.append(list(e["input_ids"]))
        masks.append(list(e["attention_mask"]))
        toks.append(tok.convert_ids_to_tokens(e["input_ids"]))
    return ids, masks, toks


def save_tokenizer(tok, directory: Path, texts) -> dict:
    """save_pretrained, then drop the vocab/merges files if tokenizer.json alone suffices."""
    tok.save_pretrained(str(directory))
    (directory / "README.md").unlink(missing_ok=True)
    written = sorted(p.name for p in directory.iterdir() if not p.name.startswith(("model.", "config.")))
    ref = tokens_alone(tok, texts)[0]
    extras = [directory / n for n in TOKENIZER_EXTRA_FILES if (directory / n).exists()]
    kept = []
    if extras:
        stash = directory.parent / (directory.name + ".stash")
        stash.mkdir()
        for p in extras:
            shutil.move(str(p), stash / p.name)
        try:
            ok = tokens_alone(AutoTokenizer.from_pretrained(str(directory)), texts)[0] == ref
        except Exception as exc:  # noqa: BLE001
            log(f"  tokenizer.json alone does not load: {exc!r}")
            ok = False
        if not ok:
            for p in extras:
                shutil.move(str(stash / p.name), p)
            kept = [p.name for p in extras]
        shutil.rmtree(stash)
    return {"written_by_save_pretrained": written, "extra_files_kept": kept}


def position_ids_seen(model, inputs) -> list | None:
    """The indices the backbone feeds into embeddings.position_embeddings."""
    emb = None
    for name, mod in model.named_modules():
        if name.endswith("embeddings.position_embeddings"):
            emb = mod
            break
    if emb is None:
        return None
    seen = []
    h = emb.register_forward_hook(lambda m, args, out: seen.append(args[0].detach().clone()))
    with torch.no_grad():
        model(**inputs)
    h.remove()
    return seen[0].tolist() if seen else None


def sinusoidal_table(n_pos: int, dim: int) -> torch.Tensor:
    # the formula of transformers' create_sinusoidal_embeddings (DistilBERT)
    import numpy as np

    enc = np.array([[pos / np.power(10000, 2 * (j // 2) / dim) for j in range(dim)] for pos in range(n_pos)])
    out = torch.zeros(n_pos, dim)
    out[:, 0::2] = torch.FloatTensor(np.sin(enc[:, 0::2]))
    out[:, 1::2] = torch.FloatTensor(np.cos(enc[:, 1::2]))
    return out


def sinusoidal_load_behaviour(seqcls_dir: Path, key: str) -> dict:
    """Does from_pretrained use a stored (altered) table, or recompute the sinusoids?"""
    from safetensors.torch import load_file

    tmp = seqcls_dir.parent / "sinusoid.tmp"
    shutil.copytree(seqcls_dir, tmp)
    try:
        sd = load_file(str(tmp / "model.safetensors"))
        table = sd[key].clone()
        sd[key] = table + 1.0
        save_file(sd, str(tmp / "model.safetensors"), metadata={"format": "pt"})
        m = DistilBertForSequenceClassification.from_pretrained(str(tmp))
        altered_used = torch.equal(m.distilbert.embeddings.position_embeddings.weight, sd[key])
        del sd[key]
        save_file(sd, str(tmp / "model.safetensors"), metadata={"format": "pt"})
        m, li = DistilBertForSequenceClassification.from_pretrained(str(tmp), output_loading_info=True)
        recomputed = torch.equal(m.distilbert.embeddings.position_embeddings.weight, table)
        return {
            "altered_stored_table_is_used_on_load": altered_used,
            "table_missing_from_checkpoint": {"missing_keys": sorted(li["missing_keys"]), "recomputed_sinusoids": recomputed},
        }
    finally:
        shutil.rmtree(tmp)


def make_family(fam: dict, out: Path, report: dict) -> None:
    name = fam["name"]
    log(f"[{name}]")
    root = out / name
    info: dict = {}

    # --- tokenizer ---
    backend = {"bpe": train_byte_level_bpe, "unigram": train_unigram, "wordpiece": train_wordpiece}[fam["tok"]]()
    tok_cls = fam["tok_cls"]
    try:
        tok = wrap(fam["tok"], backend, tok_cls, fam["model_max_length"])
    except Exception as exc:  # noqa: BLE001
        if name != "camembert":
            raise
        log(f"  {tok_cls} failed ({exc!r}); using XLMRobertaTokenizerFast")
        tok_cls = "XLMRobertaTokenizerFast"
        tok = wrap(fam["tok"], backend, tok_cls, fam["model_max_length"])
    vocab = len(tok)
    info["tokenizer"] = {
        "class_requested": fam["tok_cls"],
        "class": type(tok).__name__,
        "kind": {"bpe": "byte-level BPE", "unigram": "Unigram + Metaspace", "wordpiece": "WordPiece, uncased"}[fam["tok"]],
        "vocab_size": vocab,
        "special_tokens": {k: [v, tok.convert_tokens_to_ids(v)] for k, v in sorted(tok.special_tokens_map.items()) if isinstance(v, str)},
        "model_input_names": list(tok.model_input_names),
    }

    # --- models ---
    cfg = fam["config"](vocab)
    torch.manual_seed(fam["seed"])
    seqcls = fam["seqcls"](cfg)
    prefix = seqcls.base_model_prefix
    backbone = getattr(seqcls, prefix)
    skip = set()
    if name == "distilbert" and cfg.sinusoidal_pos_embds:
        skip = {n for n, _ in seqcls.named_parameters() if n.endswith("embeddings.position_embeddings.weight")}
    randomize_(seqcls, gen(fam["seed"]), skip)
    seqcls.eval()

    base_kwargs = {}
    if "add_pooling_layer" in inspect.signature(fam["base"].__init__).parameters:
        base_kwargs["add_pooling_layer"] = False  # the seqcls backbone has no pooler
    bare = fam["base"](copy.deepcopy(cfg), **base_kwargs)
    bare.load_state_dict(backbone.state_dict(), strict=True)
    bare.eval()

    # distilbert: what happens to the sinusoidal table
    if name == "distilbert":
        pe = backbone.embeddings.position_embeddings.weight
        sin = sinusoidal_table(POSITIONS, HIDDEN)
        info["sinusoidal_pos_embds"] = {
            "config_value": bool(cfg.sinusoidal_pos_embds),
            "is_parameter": isinstance(pe, torch.nn.Parameter),
            "requires_grad": bool(pe.requires_grad),
            "max_abs_diff_vs_sinusoidal_formula": fmt(max_abs(pe, sin)),
        }

    for sub, m in (("seqcls", seqcls), ("bare", bare)):
        save_model(m, root / sub)
        # a fresh wrapper: a call with truncation=True leaves it set on the backend, and
        # save_pretrained would write it into tokenizer.json
        fresh = wrap(fam["tok"], backend, tok_cls, fam["model_max_length"])
        info.setdefault("tokenizer_files", {})[sub] = save_tokenizer(fresh, root / sub, TOKEN_TEXTS)
        tj = json.loads((root / sub / "tokenizer.json").read_text())
        check(tj.get("truncation") is None and tj.get("padding") is None, f"{sub}/tokenizer.json has no truncation / padding")

    keys = {sub: safetensors_keys(root / sub / "model.safetensors") for sub in ("seqcls", "bare")}
    if name == "distilbert":
        k = "distilbert.embeddings.position_embeddings.weight"
        info["sinusoidal_pos_embds"]["stored_in_checkpoint"] = k in keys["seqcls"]
        info["sinusoidal_pos_embds"].update(sinusoidal_load_behaviour(root / "seqcls", k))

    # --- reference outputs ---
    inputs = tokenize_batch(tok, BATCH_TEXTS)
    lens = inputs["attention_mask"].sum(1).tolist()
    check(lens[0] == MAX_LEN and min(lens) < MAX_LEN, f"batch row 0 truncated to {MAX_LEN}, padding present (lengths {lens})")
    with torch.no_grad():
        o = backbone(**inputs, output_hidden_states=True, return_dict=True)
        logits = seqcls(**inputs).logits
    hs = torch.stack(list(o.hidden_states), 0)
    check(max_abs(hs[-1], o.last_hidden_state) == 0.0, "hidden_states[-1] == last_hidden_state")
    check(float(logits.abs().max()) > 0.05, f"logits non-trivial (max |logit| {float(logits.abs().max()):.3g})")
    save_tensors(
        root / "expected.safetensors",
        {**inputs, "last_hidden_state": o.last_hidden_state, "logits": logits},
        f"{name}: seqcls eval outputs, eager attention",
    )
    info["batch"] = {"texts": BATCH_TEXTS, "lengths": lens, "inputs": sorted(inputs)}
    info["position_ids_seen"] = position_ids_seen(backbone, inputs)

    # --- tokens.json ---
    ids, masks, toks = tokens_alone(tok, TOKEN_TEXTS)
    # what a Rust `tokenizers` user sees: Tokenizer::from_file + truncation at 16
    raw = Tokenizer.from_file(str(root / "seqcls" / "tokenizer.json"))
    raw.no_padding()
    raw.enable_truncation(max_length=MAX_LEN)
    raw_ids = [raw.encode(t).ids for t in TOKEN_TEXTS]
    check(raw_ids == ids, "raw Tokenizer.from_file(tokenizer.json) + enable_truncation(16) == transformers ids")
    full_lens = [len(tok(t)["input_ids"]) for t in TOKEN_TEXTS]
    write_json(
        root / "tokens.json",
        {
            "max_length": MAX_LEN,
            "texts": TOKEN_TEXTS,
            "input_ids": ids,
            "attention_mask": masks,
            "tokens": toks,
            "pad_token_id": tok.pad_token_id,
            "num_tokens_untruncated": full_lens,
            "tokenizer_class": type(tok).__name__,
            "note": "each text tokenised alone: truncation=True, max_length=16, no padding, special tokens added",
        },
    )

    # --- reload checks ---
    diffs = {}
    m2, li = AutoModelForSequenceClassification.from_pretrained(str(root / "seqcls"), attn_implementation="eager", output_loading_info=True)
    m2.eval()
    check(not any(li[k] for k in ("missing_keys", "unexpected_keys", "mismatched_keys")), f"seqcls reload clean {li}")
    diffs["seqcls"] = max_abs(logits_of(m2, inputs), logits)
    b2, lb = AutoModel.from_pretrained(str(root / "bare"), attn_implementation="eager", output_loading_info=True, **base_kwargs)
    b2.eval()
    check(not any(lb[k] for k in ("missing_keys", "unexpected_keys", "mismatched_keys")), f"bare reload clean {lb} (kwargs {base_kwargs})")
    with torch.no_grad():
        diffs["bare"] = max_abs(b2(**inputs).last_hidden_state, o.last_hidden_state)
    for k, d in diffs.items():
        check(d == 0.0, f"reloaded {k} reproduces outputs exactly")
    if base_kwargs:
        _, lp = AutoModel.from_pretrained(str(root / "bare"), output_loading_info=True)
        info["bare_plain_automodel_missing_keys"] = sorted(lp["missing_keys"])
    t2 = AutoTokenizer.from_pretrained(str(root / "seqcls"))
    check(tokens_alone(t2, TOKEN_TEXTS)[0] == ids and tokenize_batch(t2, BATCH_TEXTS).keys() == inputs.keys(), f"AutoTokenizer reload ({type(t2).__name__}) gives the same ids")
    info["tokenizer"]["autotokenizer_class"] = type(t2).__name__

    sd = fam["seqcls"].from_pretrained(str(root / "seqcls"), attn_implementation="sdpa").eval()
    with torch.no_grad():
        rs = getattr(sd, prefix)(**inputs).last_hidden_state
    sdpa_diff = max(max_abs(rs, o.last_hidden_state), max_abs(logits_of(sd, inputs), logits))
    check(sdpa_diff < 1e-5, f"sdpa ({sd.config._attn_implementation}) vs eager max |diff| = {sdpa_diff:.3g}")

    cfg_json = json.loads((root / "seqcls" / "config.json").read_text())
    info.update(
        model_type=cfg_json.get("model_type"),
        architectures={sub: json.loads((root / sub / "config.json").read_text()).get("architectures") for sub in ("seqcls", "bare")},
        base_model_prefix=prefix,
        checkpoint_keys={sub: sorted(keys[sub]) for sub in keys},
        reload_max_abs_diff={k: fmt(v) for k, v in diffs.items()},
        sdpa_vs_eager_max_abs_diff=fmt(sdpa_diff),
    )

    # --- PEFT ---
    def load_base():
        return AutoModelForSequenceClassification.from_pretrained(str(root / "seqcls"), attn_implementation="eager")

    # PEFT's built-in default target modules (None: PEFT has none for this model_type and
    # refuses target_modules=None, so the family's attention query/value are named explicitly)
    default = TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING.get(info["model_type"])
    info["peft_builtin_default_target_modules"] = default
    targets = None if default is not None else FALLBACK_TARGETS[name]
    info["peft"] = make_peft(name, root / "peft", load_base, targets, inputs, fam["seed"] + 1)
    if fam["all_linear"]:
        try:
            info["peft_all_linear"] = make_peft(name, root / "peft_all_linear", load_base, "all-linear", inputs, fam["seed"] + 2)
        except TypeError as exc:
            # DistilBERT: "all-linear" puts LoRA on pre_classifier (only the last head layer,
            # `classifier`, is excluded), then modules_to_save=["classifier", ...] matches
            # "pre_classifier" by suffix and refuses to wrap a LoRA layer.  Exclude it from
            # LoRA, so that it is trained and saved whole, as with the default targets.
            log(f"  all-linear failed: {exc}; retrying with exclude_modules=['pre_classifier']")
            shutil.rmtree(root / "peft_all_linear", ignore_errors=True)
            info["peft_all_linear"] = make_peft(
                name, root / "peft_all_linear", load_base, "all-linear", inputs, fam["seed"] + 2, exclude=["pre_classifier"]
            )
            info["peft_all_linear"]["plain_all_linear_error"] = f"{type(exc).__name__}: {exc}"
    report[name] = info


def normalise_adapter_config(directory: Path, base_name: str) -> dict:
    path = directory / "adapter_config.json"
    cfg = json.loads(path.read_text())
    for key in ("target_modules", "modules_to_save", "layers_to_transform"):
        if isinstance(cfg.get(key), list):
            cfg[key] = sorted(cfg[key])
    cfg["base_model_name_or_path"] = base_name
    path.write_text(json.dumps(cfg, indent=2, sort_keys=True))
    return cfg


def make_peft(name: str, root: Path, load_base, target_modules, inputs, seed: int, exclude=None) -> dict:
    log(f"[{name}/{root.name}]")
    adapter_dir = root / "adapter"
    lcfg = LoraConfig(
        task_type=TaskType.SEQ_CLS, r=LORA_R, lora_alpha=LORA_ALPHA, lora_dropout=LORA_DROPOUT, target_modules=target_modules,
        exclude_modules=exclude,
    )
    base = load_base()
    torch.manual_seed(seed)  # lora_A init
    model = get_peft_model(base, lcfg)
    g = gen(seed)
    touched = []
    with torch.no_grad():
        for n, p in sorted(model.named_parameters(), key=lambda kv: kv[0]):
            if "lora_B" in n:
                p.copy_(randn(p.shape, 0.2, g))
                touched.append(n)
            elif "modules_to_save" in n:
                p.add_(randn(p.shape, 0.2, g))
                touched.append(n)
    check(any("modules_to_save" in t for t in touched), f"lora_B and head copy randomised ({len(touched)} tensors)")
    model.eval()
    logits = logits_of(model, inputs)
    wrapped_heads = sorted(
        n.rsplit(".modules_to_save", 1)[0].removeprefix("base_model.model.")
        for n, _ in model.named_modules()
        if n.endswith(".modules_to_save")
    )
    lora_modules = sorted(
        n.removeprefix("base_model.model.").removesuffix(".lora_A")
        for n, _ in model.named_modules()
        if n.endswith(".lora_A")
    )
    check(len(lora_modules) > 0, f"{len(lora_modules)} modules carry LoRA")

    model.save_pretrained(str(adapter_dir))
    (adapter_dir / "README.md").unlink(missing_ok=True)
    acfg = normalise_adapter_config(adapter_dir, f"fixtures/families/{name}/seqcls")

    # head-only reference: the perturbed head copy on the plain model, no LoRA
    plain = load_base().eval()
    with torch.no_grad():
        for n, p in model.named_parameters():
            if ".modules_to_save.default." in n:
                plain.get_parameter(n.removeprefix("base_model.model.").replace("modules_to_save.default.", "")).copy_(p)
    logits_no_lora = logits_of(plain, inputs)

    reloaded = PeftModel.from_pretrained(load_base(), str(adapter_dir)).eval()
    reload_diff = max_abs(logits_of(reloaded, inputs), logits)
    check(reload_diff == 0.0, f"adapter reloaded with PeftModel.from_pretrained reproduces logits (diff {reload_diff:.3g})")

    merged = model.merge_and_unload().eval()
    logits_merged = logits_of(merged, inputs)
    merge_diff = max_abs(logits_merged, logits)
    check(merge_diff < 1e-5, f"merged vs unmerged max |diff| = {merge_diff:.3g}")
    lora_effect = max_abs(logits, logits_no_lora)
    check(lora_effect > 1e-3, f"LoRA changes logits by {lora_effect:.3g}")

    save_tensors(
        root / "expected.safetensors",
        {**inputs, "logits": logits, "logits_merged": logits_merged, "logits_no_lora": logits_no_lora},
        f"{name} PEFT LoRA ({root.name}) eval logits: unmerged, merged, head-only",
    )
    akeys = sorted(safetensors_keys(adapter_dir / "adapter_model.safetensors"))
    lora_a = [k for k in akeys if "lora_A" in k]
    from_keys = sorted(k.removeprefix("base_model.model.").removesuffix(".lora_A.weight") for k in lora_a)
    check(from_keys == lora_modules, "the adapter's lora_A keys name exactly the LoRA modules")
    return {
        "lora_config": {"task_type": "SEQ_CLS", "r": LORA_R, "lora_alpha": LORA_ALPHA, "lora_dropout": LORA_DROPOUT,
                        "target_modules_requested": target_modules, "exclude_modules": exclude},
        "adapter_config_target_modules": acfg.get("target_modules"),
        "adapter_config_modules_to_save": acfg.get("modules_to_save"),
        "modules_wrapped_as_modules_to_save": wrapped_heads,
        "lora_modules_from_lora_A_keys": lora_modules,
        # all-linear lists the head's linears too, but PEFT puts no LoRA inside a
        # modules_to_save module (RoBERTa's classifier.dense/out_proj) or an excluded one
        "target_modules_without_lora": sorted(
            t for t in (acfg.get("target_modules") or []) if not any(m == t or m.endswith("." + t) for m in lora_modules)
        ),
        "adapter_non_lora_keys": [k for k in akeys if "lora_" not in k],
        "merged_vs_unmerged_max_abs_diff": fmt(merge_diff),
        "lora_effect_max_abs_diff": fmt(lora_effect),
        "reload_max_abs_diff": fmt(reload_diff),
    }


# --------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True, help="fixtures folder (writes <out>/families/)")
    ap.add_argument("--only", nargs="*", help="build only these families (for debugging; the manifest then lists only them)")
    args = ap.parse_args()

    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=UserWarning)
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()

    out = args.out / "families"
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)

    report: dict = {}
    for fam in FAMILIES:
        if args.only and fam["name"] not in args.only:
            continue
        make_family(fam, out, report)

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
        "shapes": {"hidden": HIDDEN, "heads": HEADS, "head_dim": HIDDEN // HEADS, "intermediate": INTERMEDIATE,
                   "positions": POSITIONS, "labels": LABELS, "max_length": MAX_LEN},
        "families": report,
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

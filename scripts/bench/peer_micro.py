"""Micro-measurements of the PyTorch + PEFT reference (`shared/peer/peft_imdb.py`) for `cargo xtask bench`.

Runs in the reference's venv (torch, transformers, peft, pyarrow, numpy). Every subcommand prints
one JSON line on stdout:

  tokenize  time `tok(texts, truncation=True, max_length=...)` (the call peft_imdb.py makes) on the
            first --limit reviews of the train split, --repeats times in-process
  matmul    torch.matmul f32 on [n, n] x [n, n]: GFLOP/s, median after one warm-up
  flops     FLOPs of peft_imdb.py's exact training (epoch 1) and evaluation batches, with the
            counting convention of the Rust `imdb-lora-perf flops` (crates/perf/src/flops.rs)
  predict   load a saved model directory with AutoTokenizer + AutoModelForSequenceClassification and
            classify one text (timed from outside, as a cold process)
  pipeline  transformers' `pipeline("text-classification")` batch inference (the usual way to
            serve a classifier from Python) over a file of texts, one per line: the model (with a
            PEFT adapter merged, when given), batch_size and truncation as asked; one warm-up
            batch, then --repeats timed passes in-process
"""
import argparse
import json
import os
import statistics
import sys
import time

NUM_LABELS = 2
LORA_MODULES = 2  # query and value
LORA_R = 8


def split_file(data, split):
    """`data/<split>-00000-of-00001.parquet`, or under `data/plain_text/`."""
    name = f"{split}-00000-of-00001.parquet"
    for p in (os.path.join(data, name), os.path.join(data, "plain_text", name)):
        if os.path.isfile(p):
            return p
    sys.exit(f"peer_micro: no {name} under {data}")


def cmd_tokenize(a):
    import pyarrow.parquet as pq
    from transformers import AutoTokenizer

    texts = pq.read_table(split_file(a.data, "train"), columns=["text"]).to_pydict()["text"]
    if a.limit is not None:
        texts = texts[: a.limit]
    tok = AutoTokenizer.from_pretrained(a.model)
    seconds, tokens = [], 0
    for _ in range(a.repeats):
        t0 = time.perf_counter()
        enc = tok(texts, truncation=True, max_length=a.max_len)
        seconds.append(time.perf_counter() - t0)
        tokens = sum(map(len, enc["input_ids"]))
        del enc
    med = statistics.median(seconds)
    return {"impl": "transformers " + type(tok).__name__, "is_fast": tok.is_fast, "reviews": len(texts), "tokens": tokens,
            "max_len": a.max_len, "seconds": seconds, "median_seconds": med,
            "reviews_per_s": len(texts) / med, "tokens_per_s": tokens / med}


def cmd_matmul(a):
    import torch

    torch.manual_seed(0)
    out = []
    for n in a.sizes:
        x = torch.randn(n, n, dtype=torch.float32)
        y = torch.randn(n, n, dtype=torch.float32)
        torch.matmul(x, y)  # warm-up
        seconds = []
        for _ in range(a.repeats):
            t0 = time.perf_counter()
            z = torch.matmul(x, y)
            seconds.append(time.perf_counter() - t0)
            del z
        med = statistics.median(seconds)
        out.append({"n": n, "seconds": seconds, "median_seconds": med, "gflops": 2 * n ** 3 / med / 1e9,
                    "best_gflops": 2 * n ** 3 / min(seconds) / 1e9})
    return {"impl": f"torch {torch.__version__} f32", "threads": torch.get_num_threads(),
            "repeats": a.repeats, "sizes": out}


def forward_parts(shape, b, l):
    """Forward FLOPs of a [b, l] batch by kind; the same formula as crates/perf/src/flops.rs."""
    h, i, n, r = shape["hidden"], shape["intermediate"], shape["layers"], shape["lora_r"]
    return {"projections": n * 2 * b * l * (4 * h * h + 2 * h * i),
            "attention": n * 4 * b * l * l * h,
            "lora": n * LORA_MODULES * 2 * b * l * 2 * h * r,
            "pooler": 2 * b * h * h,
            "classifier": 2 * b * h * NUM_LABELS}


def forward_flops(p):
    return p["projections"] + p["attention"] + p["lora"] + p["pooler"] + p["classifier"]


def backward_flops(p):
    # Frozen projections and pooler: input gradients only; attention, LoRA and classifier: 2x.
    return p["projections"] + 2 * p["attention"] + 2 * p["lora"] + p["pooler"] + 2 * p["classifier"]


def tally(shape, lengths, plan, backward):
    t = {"batches": 0, "samples": 0, "padded_tokens": 0, "real_tokens": 0, "forward_flops": 0,
         "backward_flops": 0}
    for ix in plan:
        lens = [lengths[i] for i in ix]
        b, l = len(lens), max(lens)
        p = forward_parts(shape, b, l)
        t["batches"] += 1; t["samples"] += b; t["padded_tokens"] += b * l; t["real_tokens"] += sum(lens)
        t["forward_flops"] += forward_flops(p)
        if backward:
            t["backward_flops"] += backward_flops(p)
    t["flops"] = t["forward_flops"] + t["backward_flops"]
    return t


def chunks(order, bs):
    return [list(order[s:s + bs]) for s in range(0, len(order), bs)]


def cmd_flops(a):
    import numpy as np
    import pyarrow.parquet as pq
    from transformers import AutoTokenizer

    with open(os.path.join(a.model, "config.json")) as f:
        cfg = json.load(f)
    # DistilBERT's config.json names them dim / hidden_dim / n_layers.
    key = lambda *names: next(cfg[n] for n in names if n in cfg)
    shape = {"hidden": key("hidden_size", "dim"), "intermediate": key("intermediate_size", "hidden_dim"),
             "layers": key("num_hidden_layers", "n_layers"), "lora_r": LORA_R}

    def load(path, n, seed):  # peft_imdb.py's load()
        t = pq.read_table(path).to_pydict()
        idx = np.random.default_rng(seed).permutation(len(t["label"]))[:n]
        return [t["text"][i] for i in idx], np.array([t["label"][i] for i in idx])

    tok = AutoTokenizer.from_pretrained(a.model)
    xtr, ytr = load(split_file(a.data, "train"), a.train_n, a.seed)
    xte, yte = load(split_file(a.data, "test"), a.test_n, a.seed)
    etr = tok(xtr, truncation=True, max_length=a.max_len)
    ete = tok(xte, truncation=True, max_length=a.max_len)
    # peft_imdb.py creates its order rng after loading; epoch 1 is its first permutation.
    rng = np.random.default_rng(a.seed)
    train_plan = chunks(rng.permutation(len(ytr)), a.batch)
    eval_plan = chunks(np.arange(len(yte)), a.eval_batch)
    ref = forward_parts(shape, 16, 256)
    return {"impl": "transformers+peft", "model": shape,
            "args": {"train_n": a.train_n, "test_n": a.test_n, "max_len": a.max_len, "batch_size": a.batch,
                     "eval_batch_size": a.eval_batch, "seed": a.seed},
            "reference_batch": {"batch": 16, "len": 256, "forward_flops": forward_flops(ref),
                                "train_flops": forward_flops(ref) + backward_flops(ref)},
            "train": tally(shape, [len(x) for x in etr["input_ids"]], train_plan, True),
            "eval": tally(shape, [len(x) for x in ete["input_ids"]], eval_plan, False)}


def cmd_predict(a):
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(a.model)
    model = AutoModelForSequenceClassification.from_pretrained(a.model)
    model.eval()
    out = []
    with torch.inference_mode():
        enc = tok(a.texts, truncation=True, max_length=a.max_len, padding=True, return_tensors="pt")
        probs = model(**enc).logits.softmax(-1).double()
    for text, p in zip(a.texts, probs.tolist()):
        idx = max(range(len(p)), key=p.__getitem__)
        out.append({"text": text, "neg_prob": p[0], "pos_prob": p[1],
                    "label": model.config.id2label.get(idx, str(idx))})
    return out


def cmd_pipeline(a):
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline

    with open(a.texts, encoding="utf-8") as f:
        texts = [line.rstrip("\n") for line in f]
    tok = AutoTokenizer.from_pretrained(a.model)
    if a.adapter:
        from peft import PeftModel
        base = AutoModelForSequenceClassification.from_pretrained(a.model, num_labels=NUM_LABELS)
        model = PeftModel.from_pretrained(base, a.adapter).merge_and_unload()
    else:
        model = AutoModelForSequenceClassification.from_pretrained(a.model)
    model.eval()
    clf = pipeline("text-classification", model=model, tokenizer=tok, device=-1)
    kw = dict(batch_size=a.batch_size, truncation=True, max_length=a.max_len)
    with torch.inference_mode():
        clf(texts[: a.batch_size], **kw)
        seconds = []
        for _ in range(a.repeats):
            t = time.perf_counter()
            out = clf(texts, **kw)
            seconds.append(time.perf_counter() - t)
    assert len(out) == len(texts)
    med = statistics.median(seconds)
    return {"impl": "transformers-pipeline", "texts": len(texts), "batch_size": a.batch_size,
            "max_len": a.max_len, "threads": torch.get_num_threads(), "seconds": seconds,
            "median_seconds": med, "texts_per_s": len(texts) / med}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)

    p = sub.add_parser("tokenize")
    p.add_argument("--model", required=True); p.add_argument("--data", required=True)
    p.add_argument("--max-len", type=int, default=256); p.add_argument("--limit", type=int)
    p.add_argument("--repeats", type=int, default=3)

    p = sub.add_parser("matmul")
    p.add_argument("--sizes", type=lambda s: [int(x) for x in s.split(",")], default=[1024, 2048])
    p.add_argument("--repeats", type=int, default=5)

    p = sub.add_parser("flops")
    p.add_argument("--model", required=True); p.add_argument("--data", required=True)
    p.add_argument("--train-n", type=int, default=512); p.add_argument("--test-n", type=int, default=1024)
    p.add_argument("--max-len", type=int, default=256); p.add_argument("--batch", type=int, default=16)
    p.add_argument("--eval-batch", type=int, default=64); p.add_argument("--seed", type=int, default=42)

    p = sub.add_parser("predict")
    p.add_argument("--model", required=True); p.add_argument("--max-len", type=int, default=256)
    p.add_argument("texts", nargs="+")

    p = sub.add_parser("pipeline")
    p.add_argument("--model", required=True); p.add_argument("--adapter")
    p.add_argument("--texts", required=True); p.add_argument("--max-len", type=int, default=256)
    p.add_argument("--batch-size", type=int, default=32); p.add_argument("--repeats", type=int, default=3)

    a = ap.parse_args()
    if getattr(a, "repeats", 1) < 1:
        sys.exit("peer_micro: --repeats must be at least 1")
    fn = {"tokenize": cmd_tokenize, "matmul": cmd_matmul, "flops": cmd_flops, "predict": cmd_predict,
          "pipeline": cmd_pipeline}[a.cmd]
    print(json.dumps(fn(a)), flush=True)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""The PyTorch + PEFT reference run on any torch device (the shared peer script is CPU-only).

Same recipe as ../shared/peer/peft_imdb.py: seeded permutation subsets, tokenizer truncation
at --max-len, dynamic padding, LoRA r=8/alpha=16/dropout=0.1 on query+value, AdamW lr 2e-4
(no schedule), batch 16, eval batch 64. Prints one JSON line with baseline and per-epoch
accuracy/F1 and samples/s (CUDA-synchronised timings), peak GPU memory and wall times.

--precision: f32 (TF32 off: torch.backends.cuda.matmul.allow_tf32 = False, the default), tf32
(allow_tf32 = True, as our CUDA matmuls use TF32 tensor cores), bf16 (forward and loss under
torch.autocast(device_type, dtype=torch.bfloat16), backward and AdamW outside it, the way
PEFT users train with `bf16=True`; TF32 off).

--profile-steps N: instead of training, the profile of issue #16: --profile-warmup steps, then
N steps timed without a profiler (host time to enqueue each step, then time to synchronise),
then N steps under torch.profiler (kernels launched per step, their GPU time, the GPU-busy
share of the wall time).
"""
import time

T_START = time.time()
import argparse, contextlib, json  # noqa: E402

import numpy as np  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
import torch  # noqa: E402
from peft import LoraConfig, TaskType, get_peft_model  # noqa: E402
from transformers import AutoModelForSequenceClassification, AutoTokenizer  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--model", required=True); ap.add_argument("--data", required=True)
ap.add_argument("--train-n", type=int, default=4000); ap.add_argument("--test-n", type=int, default=2000)
ap.add_argument("--max-len", type=int, default=256); ap.add_argument("--epochs", type=int, default=1)
ap.add_argument("--batch", type=int, default=16); ap.add_argument("--eval-batch", type=int, default=64)
ap.add_argument("--lr", type=float, default=2e-4); ap.add_argument("--seed", type=int, default=42)
ap.add_argument("--device", default="cuda")
ap.add_argument("--precision", choices=["f32", "tf32", "bf16"], default="f32")
ap.add_argument("--profile-steps", type=int, default=0, help="profile this many steps instead of training")
ap.add_argument("--profile-warmup", type=int, default=10)
ap.add_argument("--profile-top", type=int, default=15, help="kernels listed by GPU time")
args = ap.parse_args()
dev = torch.device(args.device)
torch.manual_seed(args.seed)
if dev.type == "cuda":
    torch.backends.cuda.matmul.allow_tf32 = args.precision == "tf32"
    torch.backends.cudnn.allow_tf32 = args.precision == "tf32"


def sync():
    if dev.type == "cuda":
        torch.cuda.synchronize()


def autocast():
    if args.precision == "bf16":
        return torch.autocast(device_type=dev.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def load(path, n):
    t = pq.read_table(path).to_pydict()
    idx = np.random.default_rng(args.seed).permutation(len(t["label"]))[:n]
    return [t["text"][i] for i in idx], np.array([t["label"][i] for i in idx])


def batches(enc, labels, bs, order):
    for s in range(0, len(order), bs):
        ix = order[s:s + bs]
        ids = [enc["input_ids"][i] for i in ix]
        L = max(map(len, ids))
        a = np.zeros((len(ix), L), dtype=np.int64); m = np.zeros_like(a)
        for r, x in enumerate(ids):
            a[r, :len(x)] = x; m[r, :len(x)] = 1
        yield torch.from_numpy(a).to(dev), torch.from_numpy(m).to(dev), torch.from_numpy(labels[ix]).to(dev)


def evaluate(model, enc, labels):
    model.eval(); preds = []; sync(); t0 = time.perf_counter()
    with torch.inference_mode(), autocast():
        for ids, mask, _ in batches(enc, labels, args.eval_batch, np.arange(len(labels))):
            preds.append(model(input_ids=ids, attention_mask=mask).logits.argmax(-1).cpu().numpy())
    sync(); dt = time.perf_counter() - t0
    p = np.concatenate(preds); tp = int(((p == 1) & (labels == 1)).sum())
    prec = tp / max(int((p == 1).sum()), 1); rec = tp / max(int((labels == 1).sum()), 1)
    f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
    return {"accuracy": float((p == labels).mean()), "f1": f1, "seconds": dt, "samples_per_s": len(labels) / dt}


def train_step(model, opt, ids, mask, y):
    """One optimizer step, enqueued; returns the loss tensor (not read)."""
    with autocast():
        loss = model(input_ids=ids, attention_mask=mask, labels=y).loss
    loss.backward(); opt.step(); opt.zero_grad()
    return loss


def median(xs):
    return float(np.median(xs)) if xs else None


def union_ms(intervals):
    """Total length of the union of [start, end) intervals (microseconds in, ms out)."""
    total, end = 0.0, None
    for s, e in sorted(intervals):
        if end is None or s > end:
            total += e - s; end = e
        elif e > end:
            total += e - end; end = e
    return total / 1e3


def profile(model, opt, etr, ytr):
    def step_batches():
        rng = np.random.default_rng(args.seed)
        while True:
            yield from batches(etr, ytr, args.batch, rng.permutation(len(ytr)))

    it = step_batches(); model.train()
    for _ in range(args.profile_warmup):
        train_step(model, opt, *next(it)).item()
    sync()
    enq, syn, lens = [], [], []
    for _ in range(args.profile_steps):
        ids, mask, y = next(it)
        t0 = time.perf_counter(); loss = train_step(model, opt, ids, mask, y)
        t1 = time.perf_counter(); sync(); t2 = time.perf_counter(); loss.item()
        enq.append((t1 - t0) * 1e3); syn.append((t2 - t1) * 1e3); lens.append(int(ids.shape[1]))
    res = {"warmup_steps": args.profile_warmup, "steps": args.profile_steps, "batch_lengths": lens,
           "enqueue_ms": enq, "sync_ms": syn, "median_enqueue_ms": median(enq), "median_sync_ms": median(syn),
           "median_step_ms": median([a + b for a, b in zip(enq, syn)]),
           "mean_step_ms": float(np.mean([a + b for a, b in zip(enq, syn)]))}
    from torch.profiler import ProfilerActivity
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if dev.type == "cuda" else [])
    sync()
    with torch.profiler.profile(activities=acts) as prof:
        for _ in range(args.profile_steps):
            with torch.profiler.record_function("imdb_lora_step"):
                train_step(model, opt, *next(it)).item()
        sync()
    n = args.profile_steps
    events = list(prof.events())
    steps = [e for e in events if e.name == "imdb_lora_step"]
    window = (max(e.time_range.end for e in steps) - min(e.time_range.start for e in steps)) / 1e3 if steps else None
    # Device-side activities (kernels, copies) are events of their own, not on the CPU.
    is_dev = [e for e in events if getattr(e, "device_type", torch.autograd.DeviceType.CPU)
              != torch.autograd.DeviceType.CPU]
    kern = [e for e in is_dev if not e.name.startswith(("Memcpy", "Memset", "[memory]"))]
    mem = [e for e in is_dev if e.name.startswith(("Memcpy", "Memset"))]
    cpu_ops = [e for e in events if getattr(e, "device_type", None) == torch.autograd.DeviceType.CPU
               and e.name.startswith("aten::")]
    launches = [e for e in events if e.name in ("cudaLaunchKernel", "cuLaunchKernel", "cudaLaunchKernelExC",
                                                "cuLaunchKernelEx")]
    by_name = {}
    for e in kern:
        c, t = by_name.get(e.name, (0, 0.0))
        by_name[e.name] = (c + 1, t + (e.time_range.end - e.time_range.start) / 1e3)
    busy = union_ms([(e.time_range.start, e.time_range.end) for e in is_dev])
    res["profiler"] = {
        "steps": n,
        "kernels_per_step": len(kern) / n if dev.type == "cuda" else None,
        "memcpy_memset_per_step": len(mem) / n if dev.type == "cuda" else None,
        "launch_calls_per_step": len(launches) / n,
        "aten_ops_per_step": len(cpu_ops) / n,
        "kernel_ms_per_step": sum(t for _, t in by_name.values()) / n if dev.type == "cuda" else None,
        "gpu_busy_ms_per_step": busy / n if dev.type == "cuda" else None,
        "window_ms_per_step": window / n if window else None,
        "gpu_busy_share_profiled": busy / window if window and dev.type == "cuda" else None,
        "top_kernels_by_time": [{"name": k[:160], "per_step": c / n, "ms_per_step": t / n} for k, (c, t) in
                                sorted(by_name.items(), key=lambda kv: -kv[1][1])[:args.profile_top]],
    }
    if dev.type == "cuda" and res["mean_step_ms"]:
        # GPU work per step (profiled pass) over the unprofiled step's wall time.
        res["gpu_busy_share"] = res["profiler"]["gpu_busy_ms_per_step"] / res["mean_step_ms"]
    return res


tok = AutoTokenizer.from_pretrained(args.model)
xtr, ytr = load(f"{args.data}/train-00000-of-00001.parquet", args.train_n)
xte, yte = load(f"{args.data}/test-00000-of-00001.parquet", args.test_n)
etr = tok(xtr, truncation=True, max_length=args.max_len); ete = tok(xte, truncation=True, max_length=args.max_len)
base = AutoModelForSequenceClassification.from_pretrained(args.model, num_labels=2)
model = get_peft_model(base, LoraConfig(task_type=TaskType.SEQ_CLS, r=8, lora_alpha=16, lora_dropout=0.1,
                                        target_modules=["query", "value"])).to(dev)
out = {"peer": "transformers+peft", "device": str(dev), "torch": torch.__version__,
       "gpu": torch.cuda.get_device_name() if dev.type == "cuda" else None,
       "precision": args.precision,
       "allow_tf32": torch.backends.cuda.matmul.allow_tf32 if dev.type == "cuda" else None,
       "args": vars(args), "load_seconds": time.time() - T_START}
opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=args.lr)
if args.profile_steps:
    out["profile"] = profile(model, opt, etr, ytr)
else:
    out["baseline"] = evaluate(model, ete, yte); out["epochs"] = []
    rng = np.random.default_rng(args.seed)
    for ep in range(args.epochs):
        model.train(); sync(); t0 = time.perf_counter(); n = 0; loss_sum = 0.0
        for ids, mask, y in batches(etr, ytr, args.batch, rng.permutation(len(ytr))):
            loss = train_step(model, opt, ids, mask, y)
            n += len(y); loss_sum += loss.item() * len(y)
        sync(); dt = time.perf_counter() - t0
        out["epochs"].append({"epoch": ep + 1, "train_loss": loss_sum / n, "train_seconds": dt,
                              "train_samples_per_s": n / dt, "eval": evaluate(model, ete, yte)})
if dev.type == "cuda":
    out["peak_gpu_mib"] = torch.cuda.max_memory_allocated() / 2**20
    out["peak_gpu_reserved_mib"] = torch.cuda.max_memory_reserved() / 2**20
out["total_seconds"] = time.time() - T_START
print(json.dumps(out))

#!/usr/bin/env python3
"""Pack what the GPU measurement needs into data/gpu/carry/ (git-ignored), small enough to carry.

The GPU machine has no network and no Hub cache, and a call carries at most 64 MiB (tracked files
included), so everything goes compressed and `gpu/unpack.py` rebuilds it there:

* `imdb-lora.xz`: the CUDA binary (`--binary`, e.g. $CARGO_TARGET_DIR/dist/imdb-lora), xz.
* `minilm.tar.xz` (config and tokenizer) + `minilm.f16s.xz`: all-MiniLM-L6-v2's weights as float16,
  the two bytes of every value stored as separate planes (xz packs the exponent plane far better
  that way: 38.7 MB against 40.8 MB for the plain file) and widened to float32 there, so every run
  on both sides uses identical weights. `embeddings.position_ids` is left out (both loaders ignore it).
* `imdb_{train,test}.jsonl.xz`: all 25,000 + 25,000 IMDb reviews (`--rows subset`: only the
  --train-n / --test-n subsets), one `[row, label, text]` per line, each text cut after the word that holds
  its 254th token (`--max-len` 256 minus [CLS] and [SEP]): tokenisation is word-local, so the first
  254 tokens are unchanged and every run at max_len <= 256 sees exactly the ids of the full text.
  The script checks that on every review with the fast tokenizer before writing.
  The 4,000 / 2,000 subsets are drawn from these on the GPU machine by the reference script's seeded
  permutation (the rows the earlier data/gpu/ subsets held).
* `manifest.json`: commit, sizes, sha256 of the unpacked files, the truncation and its check.

Prints the carry size against the 64 MiB limit (tracked and untracked-not-ignored files counted).

Usage (repository root): /work/venv-fx/bin/python scripts/gpu/prepare_carry.py --shared ../shared \
    --binary $CARGO_TARGET_DIR/dist/imdb-lora
"""
import argparse, hashlib, json, lzma, subprocess, sys, tarfile, time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

LIMIT = 64 * 2**20
MODEL_FILES = ["config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt"]

ap = argparse.ArgumentParser()
ap.add_argument("--shared", default="../shared")
ap.add_argument("--out", default="data/gpu/carry")
ap.add_argument("--binary", help="the CUDA imdb-lora to carry (xz'd); without it none is packed")
ap.add_argument("--max-len", type=int, default=256, help="the longest max_len the runs use")
ap.add_argument("--skip-model", action="store_true", help="keep an existing minilm.f16s.xz")
ap.add_argument("--rows", choices=["full", "subset"], default="full",
                help="subset: only the --train-n/--test-n rows (1.5 MB instead of 12; no full stage)")
ap.add_argument("--train-n", type=int, default=4000)
ap.add_argument("--test-n", type=int, default=2000)
ap.add_argument("--seed", type=int, default=42)
args = ap.parse_args()
t0 = time.time()

hub = Path(args.shared) / "hub"
model_src = hub / "sentence-transformers/all-MiniLM-L6-v2/resolve/main"
data_src = hub / "datasets/stanfordnlp/imdb/resolve/main/plain_text"
out = Path(args.out)
out.mkdir(parents=True, exist_ok=True)
manifest = {"made_by": "scripts/gpu/prepare_carry.py", "max_len": args.max_len, "rows": args.rows,
            "seed": args.seed, "files": {}}


def sha256(b):
    return hashlib.sha256(b).hexdigest()


def git(*a):
    try:
        return subprocess.run(["git", *a], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


manifest["commit"] = git("rev-parse", "HEAD")
manifest["dirty"] = bool(git("status", "--porcelain", "--untracked-files=no"))

with tarfile.open(out / "minilm.tar.xz", "w:xz") as t:
    for f in MODEL_FILES:
        t.add(model_src / f, arcname=f)

# The model: float16 values, low bytes then high bytes, behind the safetensors header.
previous = {}
if (out / "manifest.json").exists():
    previous = json.loads((out / "manifest.json").read_text())
if args.skip_model and (out / "minilm.f16s.xz").exists() and "model_f16_safetensors_sha256" in previous:
    for k in ("model_f16_safetensors_sha256", "dropped_tensors"):
        manifest[k] = previous[k]
else:
    from safetensors.numpy import load_file, save
    tensors = load_file(str(model_src / "model.safetensors"))
    half = {k: v.astype(np.float16) for k, v in tensors.items() if v.dtype == np.float32}
    dropped = sorted(set(tensors) - set(half))
    if dropped != ["embeddings.position_ids"]:
        sys.exit(f"unexpected non-float32 tensors in the model: {dropped}")
    raw = save(half, metadata={"format": "pt"})
    hlen = int.from_bytes(raw[:8], "little")
    body = np.frombuffer(raw[8 + hlen:], dtype=np.uint8)
    if body.size % 2:
        sys.exit("safetensors body has an odd length: not all float16?")
    packed = raw[:8 + hlen] + body[0::2].tobytes() + body[1::2].tobytes()
    (out / "minilm.f16s.xz").write_bytes(lzma.compress(packed, preset=9 | lzma.PRESET_EXTREME))
    manifest["model_f16_safetensors_sha256"] = sha256(raw)
    manifest["dropped_tensors"] = dropped

# The data: every review cut after the word holding its (max_len - 2)th token.
keep = args.max_len - 2
from transformers import AutoTokenizer
tok = AutoTokenizer.from_pretrained(str(model_src))
for split in ["train", "test"]:
    t = pq.read_table(data_src / f"{split}-00000-of-00001.parquet").to_pydict()
    texts, labels = t["text"], t["label"]
    offsets = tok(texts, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    cut = []
    for s, offs in zip(texts, offsets):
        if len(offs) <= keep:
            cut.append(s); continue
        end = offs[keep - 1][1]
        while end < len(s) and not s[end].isspace():
            end += 1
        cut.append(s[:end])
    a = tok(texts, truncation=True, max_length=args.max_len)["input_ids"]
    b = tok(cut, truncation=True, max_length=args.max_len)["input_ids"]
    bad = [i for i in range(len(a)) if a[i] != b[i]]
    if bad:
        sys.exit(f"{split}: the cut changed the ids of rows {bad[:10]} ({len(bad)} rows)")
    manifest[f"{split}_ids_checked"] = len(a)
    rows = range(len(cut))
    if args.rows == "subset":
        n = args.train_n if split == "train" else args.test_n
        rows = sorted(np.random.default_rng(args.seed).permutation(len(cut))[:n].tolist())
    lines = "".join(json.dumps([i, int(labels[i]), cut[i]], ensure_ascii=False) + "\n" for i in rows).encode()
    (out / f"imdb_{split}.jsonl.xz").write_bytes(lzma.compress(lines, preset=9 | lzma.PRESET_EXTREME))
    manifest[f"{split}_rows"] = len(cut)
    manifest[f"{split}_rows_carried"] = len(rows)
    manifest[f"{split}_chars"] = {"full": sum(map(len, texts)), "cut": sum(map(len, cut))}
    manifest[f"{split}_jsonl_sha256"] = sha256(lines)

if args.binary:
    b = Path(args.binary).read_bytes()
    (out / "imdb-lora.xz").write_bytes(lzma.compress(b, preset=6))
    manifest["binary"] = {"source": str(args.binary), "bytes": len(b), "sha256": sha256(b)}
elif not (out / "imdb-lora.xz").exists():
    print("warning: no --binary given and no imdb-lora.xz in", out, file=sys.stderr)

for p in sorted(out.rglob("*")):
    if p.is_file() and p.name != "manifest.json":
        manifest["files"][str(p.relative_to(out))] = p.stat().st_size
(out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")

# What a call sends: tracked + untracked-not-ignored files, plus this folder (carried).
listed = (git("ls-files", "-z", "--cached", "--others", "--exclude-standard") or "").split("\0")
tree = sum(Path(f).stat().st_size for f in listed if f and Path(f).is_file())
carry = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
total = tree + carry
print(json.dumps({"tree_bytes": tree, "carry_bytes": carry, "total_bytes": total, "limit_bytes": LIMIT,
                  "margin_bytes": LIMIT - total, "seconds": round(time.time() - t0, 1),
                  "files": manifest["files"]}, indent=1))
if total > LIMIT:
    sys.exit("over the 64 MiB carry limit: see docs/GPU.md (Running the GPU measurement) for what to leave out")

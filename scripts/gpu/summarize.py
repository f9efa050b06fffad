#!/usr/bin/env python3
"""Summarise the raw outputs of scripts/gpu/run.sh into gpu_summary.json (issue #16's schema).

Input: one or more --raw folders, each either run.sh's $RAW (stage folders f32/, profile/, bf16/,
full/ and env.json) or the $OUT that came back from the GPU machine (f32.tgz, ... unpacked here).
Output: --out (a JSON list of runs), --markdown (tables for docs/RESULTS.md and docs/GPU.md),
--profile (the profile as JSON). --merge FILE adds the runs to FILE (docs/results/gpu_summary.json),
replacing entries with the same key (commit, device, stage, run names); dry runs (DEVICE=cpu) are
refused there unless --allow-dry-run.

Every run pairs one of ours with the PEFT run beside it in time (f32: ours_f32_1 with PEFT TF32
off, ours_f32_2 with PEFT TF32 on; bf16 and full: ours with PEFT under autocast). Fields:
the issue's {"device", "commit", "precision", "ours_/peft_train_samples_per_s",
"ours_/peft_eval_samples_per_s", "ours_/peft_accuracy", "ours_/peft_peak_gpu_mib"} with steady-state
rates (the mean over epochs 2..E; null with one epoch), the first epoch's as "..._epoch1_...", and
a few more named below (peft_precision, stage, data sizes, wall times, where the memory figure
comes from, status). Stdlib only.
"""
import argparse, json, re, statistics, sys, tarfile, tempfile
from pathlib import Path

ap = argparse.ArgumentParser()
ap.add_argument("--raw", action="append", required=True)
ap.add_argument("--out")
ap.add_argument("--markdown")
ap.add_argument("--profile")
ap.add_argument("--merge", help="JSON list to add the runs to (e.g. docs/results/gpu_summary.json)")
ap.add_argument("--allow-dry-run", action="store_true")
args = ap.parse_args()

OURS_MEM = "nvidia-smi memory.used, peak minus idle, polled every 100 ms (includes the CUDA context)"
PEFT_MEM = "torch.cuda.max_memory_allocated"


def read_json(p):
    try:
        return json.loads(Path(p).read_text())
    except (OSError, ValueError):
        return None


def stage_dirs(raw):
    """{stage: folder} and env.json from a $RAW folder or a folder of <stage>.tgz files."""
    raw = Path(raw)
    found, env = {}, read_json(raw / "env.json")
    for tgz in sorted(raw.glob("*.tgz")):
        tmp = Path(tempfile.mkdtemp(prefix="gpu-summary-"))
        with tarfile.open(tgz) as t:
            t.extractall(tmp, filter="data") if hasattr(tarfile, "data_filter") else t.extractall(tmp)
        env = env or read_json(tmp / "env.json")
        for d in tmp.iterdir():
            if d.is_dir():
                found[d.name] = d
    for d in raw.iterdir():
        if d.is_dir() and d.name in ("f32", "profile", "bf16", "full"):
            found.setdefault(d.name, d)
    return found, env or {}


def mean(xs):
    xs = [x for x in xs if x is not None]
    return statistics.fmean(xs) if xs else None


def side(d):
    """The numbers of one run folder (ours or PEFT), normalised."""
    run = read_json(d / "run.json") or {}
    r = {"name": d.name, "status": run.get("status", "missing"), "rc": run.get("rc"), "wall_s": run.get("wall_s"),
         "precision": run.get("precision")}
    mem = []
    if (d / "gpu_mem.txt").exists():
        for line in (d / "gpu_mem.txt").read_text().split():
            try:
                mem.append(float(line))
            except ValueError:
                pass
    idle = run.get("mem_idle_mib")
    r["nvsmi_peak_mib"] = (max(mem) - (idle or 0)) if mem else None
    m = read_json(d / "metrics.json") or read_json(d / "peft.json")
    if not m or "epochs" not in m:
        if r["status"] == "ok":
            r["status"] = "no metrics"
        return r
    eps = m["epochs"]
    tr = [e.get("train_samples_per_s") for e in eps]
    ev = [e.get("eval", {}).get("samples_per_s") for e in eps]
    r.update({
        "epochs": len(eps),
        "train_n": (m.get("config") or {}).get("train_n") or (m.get("args") or {}).get("train_n"),
        "test_n": (m.get("config") or {}).get("test_n") or (m.get("args") or {}).get("test_n"),
        "train_steady": mean(tr[1:]), "eval_steady": mean(ev[1:]),
        "train_epoch1": tr[0] if tr else None, "eval_epoch1": ev[0] if ev else None,
        "baseline_eval": (m.get("baseline") or {}).get("samples_per_s"),
        # The first epoch's extra seconds over a steady one (kernel compilation, on a GPU).
        "epoch1_overhead_s": (eps[0]["train_seconds"] - mean([e.get("train_seconds") for e in eps[1:]]))
        if len(eps) > 1 and eps[0].get("train_seconds") is not None and mean([e.get("train_seconds") for e in eps[1:]]) is not None else None,
        "accuracy": eps[-1].get("eval", {}).get("accuracy") if eps else None,
        "f1": eps[-1].get("eval", {}).get("f1") if eps else None,
        "torch_peak_mib": m.get("peak_gpu_mib"),
        "device_name": m.get("gpu"),
        "peft_precision": m.get("precision"),
        "backend": (m.get("config") or {}).get("backend"),
    })
    return r


def pair(stage, ours_dir, peft_dir, env):
    o, p = side(ours_dir), side(peft_dir)
    dry = env.get("device") == "cpu"
    device = env.get("gpu") if not dry else "cpu (dry run)"
    # The commit the carry (binary and scripts) was prepared at; "+dirty" if the tree had changes.
    manifest = env.get("carry_manifest") if isinstance(env.get("carry_manifest"), dict) else {}
    commit = manifest.get("commit") or env.get("tree_commit")
    if commit and manifest.get("dirty"):
        commit += "+dirty"
    peft_prec = {"f32": "f32 (TF32 off)", "tf32": "tf32", "bf16": "bf16 autocast"}.get(p.get("precision"),
                                                                                       p.get("precision"))
    return {
        "device": device,
        "commit": commit,
        "precision": o.get("precision") or p.get("precision"),
        "ours_train_samples_per_s": o.get("train_steady"),
        "peft_train_samples_per_s": p.get("train_steady"),
        "ours_eval_samples_per_s": o.get("eval_steady"),
        "peft_eval_samples_per_s": p.get("eval_steady"),
        "ours_accuracy": o.get("accuracy"),
        "peft_accuracy": p.get("accuracy"),
        "ours_peak_gpu_mib": o.get("nvsmi_peak_mib"),
        "peft_peak_gpu_mib": p.get("torch_peak_mib"),
        "ours_epoch1_train_samples_per_s": o.get("train_epoch1"),
        "peft_epoch1_train_samples_per_s": p.get("train_epoch1"),
        "ours_epoch1_eval_samples_per_s": o.get("eval_epoch1"),
        "peft_epoch1_eval_samples_per_s": p.get("eval_epoch1"),
        # Beyond the fields:
        "peft_precision": peft_prec,
        "stage": stage,
        "ours_run": o["name"], "peft_run": p["name"],
        "ours_status": o["status"], "peft_status": p["status"],
        "train_n": o.get("train_n") or p.get("train_n"), "test_n": o.get("test_n") or p.get("test_n"),
        "epochs": o.get("epochs") or p.get("epochs"),
        "max_len": env.get("max_len"), "batch_size": env.get("batch"), "seed": env.get("seed"),
        "ours_wall_s": o.get("wall_s"), "peft_wall_s": p.get("wall_s"),
        "ours_baseline_eval_samples_per_s": o.get("baseline_eval"),
        "ours_epoch1_overhead_s": o.get("epoch1_overhead_s"), "peft_epoch1_overhead_s": p.get("epoch1_overhead_s"),
        "ours_f1": o.get("f1"), "peft_f1": p.get("f1"),
        "ours_peak_gpu_mib_source": OURS_MEM if o.get("nvsmi_peak_mib") is not None else None,
        "peft_peak_gpu_mib_source": PEFT_MEM if p.get("torch_peak_mib") is not None else None,
        "peft_peak_gpu_mib_nvidia_smi": p.get("nvsmi_peak_mib"),
        "date": env.get("date"),
        "dry_run": dry,
    }


DUR = re.compile(r"^\|\s*([0-9.]+)\s*(ns|µs|us|ms|s)\s*\|\s*(.*?)\s*$")
SCALE = {"ns": 1e-6, "µs": 1e-3, "us": 1e-3, "ms": 1.0, "s": 1e3}


def kernel_log(path):
    """(launches, GPU ms, {name: [count, ms]}) from CubeCL's per-kernel profiling lines."""
    n, ms, by = 0, 0.0, {}
    if not path.exists():
        return None
    for line in path.read_text(errors="replace").splitlines():
        m = DUR.match(line)
        if not m or m.group(3).endswith("|"):
            continue  # the summary table's rows end with '|'
        t = float(m.group(1)) * SCALE[m.group(2)]
        n += 1; ms += t
        c = by.setdefault(m.group(3), [0, 0.0]); c[0] += 1; c[1] += t
    return n, ms, by


def step_timings(path):
    """[(step, enqueue_ms, sync_ms)] from the binary's step_timing events (JSON or text lines)."""
    out = []
    if not path.exists():
        return out
    for line in path.read_text(errors="replace").splitlines():
        if "enqueue_ms" not in line:
            continue
        f = None
        try:
            ev = json.loads(line)
            f = ev.get("fields", ev) if isinstance(ev, dict) else None
        except ValueError:
            f = dict(re.findall(r"(\w+)=([-0-9.eE+]+)", line))
        if not isinstance(f, dict) or f.get("message", "step_timing") != "step_timing":
            continue  # e.g. the epoch's step_timing_summary
        try:
            # The binary formats the numbers as strings ("22338.404"): float() takes both.
            out.append((f.get("step"), float(f["enqueue_ms"]), float(f["sync_ms"])))
        except (KeyError, TypeError, ValueError, AttributeError):
            pass
    return out


def profile(d, env):
    if d is None:
        return None
    steps = int(env.get("profile_steps") or 30)
    res = {"steps": steps, "warmup": env.get("profile_warmup"), "ours": {}, "peft": None}
    t = step_timings(d / "ours_timing/stderr.jsonl")
    ours = res["ours"]
    ours["timing_status"] = (read_json(d / "ours_timing/run.json") or {}).get("status", "missing")
    if t:
        last = t[-steps:]
        enq = [x[1] for x in last]; syn = [x[2] for x in last]; tot = [a + b for a, b in zip(enq, syn)]
        ours.update({"timed_steps": len(last), "median_enqueue_ms": statistics.median(enq),
                     "median_sync_ms": statistics.median(syn), "median_step_ms": statistics.median(tot),
                     "mean_step_ms": statistics.fmean(tot), "enqueue_ms": enq, "sync_ms": syn})
    else:
        ours["timing_note"] = "no step_timing events in ours_timing/stderr.jsonl (binary without the hook?)"
    a, b = kernel_log(d / "ours_count_a/cubecl.kernels"), kernel_log(d / "ours_count_b/cubecl.kernels")
    if a and b and b[0] > a[0]:
        ours["kernels_per_step"] = (b[0] - a[0]) / steps
        ours["kernel_ms_per_step"] = (b[1] - a[1]) / steps
        diff = {k: [v[0] - a[2].get(k, [0, 0.0])[0], v[1] - a[2].get(k, [0, 0.0])[1]] for k, v in b[2].items()}
        ours["top_kernels_by_time"] = [{"name": k[:160], "per_step": c / steps, "ms_per_step": ms / steps}
                                       for k, (c, ms) in sorted(diff.items(), key=lambda kv: -kv[1][1])[:15]]
        if ours.get("mean_step_ms"):
            # Each kernel's time measured alone (CubeCL's profiler runs them one by one) over the
            # unprofiled step's wall time: an estimate of the GPU-busy share.
            ours["gpu_busy_share"] = ours["kernel_ms_per_step"] / ours["mean_step_ms"]
    else:
        ours["kernel_note"] = "no CubeCL profiling lines to difference (CPU backend, or KERNEL_LOG_ENV not honoured)"
    for k in ("a", "b"):
        c = d / f"ours_count_{k}/cubecl.compiled"
        if c.exists():
            ours[f"compiled_kernels_run_{k}"] = int(c.read_text().strip() or 0)
    pj = read_json(d / "peft_profile/peft.json")
    if pj and "profile" in pj:
        pp = dict(pj["profile"])
        for k in ("enqueue_ms", "sync_ms", "batch_lengths"):
            pp.pop(k, None)
        res["peft"] = pp
    return res


runs, profiles, notes = [], [], []
for raw in args.raw:
    stages, env = stage_dirs(raw)
    if "f32" in stages:
        d = stages["f32"]
        runs.append(pair("f32", d / "ours_f32_1", d / "peft_f32", env))
        runs.append(pair("f32", d / "ours_f32_2", d / "peft_tf32", env))
    if "bf16" in stages:
        d = stages["bf16"]
        i = 1
        while (d / f"peft_bf16_{i}").exists() or (d / f"ours_bf16_{i}").exists():
            runs.append(pair("bf16", d / f"ours_bf16_{i}", d / f"peft_bf16_{i}", env)); i += 1
    if "full" in stages:
        d = stages["full"]
        runs.append(pair("full", d / "ours_full", d / "peft_full", env))
    if "profile" in stages:
        p = profile(stages["profile"], env)
        if p:
            p["device"] = env.get("gpu") if env.get("device") != "cpu" else "cpu (dry run)"
            profiles.append(p)
    for s in stages.values():
        if (s / "skipped.json").exists():
            notes.append(f"stage {s.name} skipped: out of time")


def fmt(x, d=0):
    return "—" if x is None else f"{x:,.{d}f}"


def ratio(a, b):
    return "—" if a is None or b in (None, 0) else f"{a / b:.2f}×"


md = ["| stage | ours | PEFT | train/s ours / PEFT (ratio) | epoch 1 train/s | eval/s ours / PEFT (ratio) "
      "| accuracy ours / PEFT | peak MiB ours (nvidia-smi) / PEFT (torch; nvidia-smi) | wall s ours / PEFT |",
      "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
for r in runs:
    md.append(
        f"| {r['stage']} | {r['ours_run']} ({r['precision']}, {r['ours_status']}) | {r['peft_run']} ({r['peft_precision']}) "
        f"| {fmt(r['ours_train_samples_per_s'])} / {fmt(r['peft_train_samples_per_s'])} "
        f"({ratio(r['ours_train_samples_per_s'], r['peft_train_samples_per_s'])}) "
        f"| {fmt(r['ours_epoch1_train_samples_per_s'])} / {fmt(r['peft_epoch1_train_samples_per_s'])} "
        f"({fmt(r['ours_epoch1_overhead_s'], 1)} / {fmt(r['peft_epoch1_overhead_s'], 1)} s over a steady epoch) "
        f"| {fmt(r['ours_eval_samples_per_s'])} / {fmt(r['peft_eval_samples_per_s'])} "
        f"({ratio(r['ours_eval_samples_per_s'], r['peft_eval_samples_per_s'])}) "
        f"| {fmt(r['ours_accuracy'], 4)} / {fmt(r['peft_accuracy'], 4)} "
        f"| {fmt(r['ours_peak_gpu_mib'])} / {fmt(r['peft_peak_gpu_mib'])}; {fmt(r['peft_peak_gpu_mib_nvidia_smi'])} "
        f"| {fmt(r['ours_wall_s'], 1)} / {fmt(r['peft_wall_s'], 1)} |")
for p in profiles:
    o, q = p["ours"], p["peft"] or {}
    qp = q.get("profiler") or {}
    md += ["", f"Profile ({p['device']}), {p['steps']} f32 training steps after {p['warmup']} warm-up steps:", "",
           "| | ours | PEFT |", "| --- | --- | --- |",
           f"| host time to enqueue a step, median ms | {fmt(o.get('median_enqueue_ms'), 2)} | {fmt(q.get('median_enqueue_ms'), 2)} |",
           f"| time to sync after it, median ms | {fmt(o.get('median_sync_ms'), 2)} | {fmt(q.get('median_sync_ms'), 2)} |",
           f"| step, median ms | {fmt(o.get('median_step_ms'), 2)} | {fmt(q.get('median_step_ms'), 2)} |",
           f"| kernels launched per step | {fmt(o.get('kernels_per_step'), 1)} | {fmt(qp.get('kernels_per_step'), 1)} |",
           f"| GPU kernel time per step, ms | {fmt(o.get('kernel_ms_per_step'), 2)} | {fmt(qp.get('gpu_busy_ms_per_step'), 2)} |",
           f"| GPU-busy share | {fmt(o.get('gpu_busy_share'), 2)} | {fmt(q.get('gpu_busy_share'), 2)} |",
           f"| kernels compiled (the {p['warmup'] + p['steps'] if p['warmup'] else ''}-step run) | {fmt(o.get('compiled_kernels_run_b'))} | — |"]
    for k in ("timing_note", "kernel_note"):
        if k in o:
            md.append(f"\nours: {o[k]}")
md += [f"\n{n}" for n in notes]
text = "\n".join(md) + "\n"

if args.out:
    Path(args.out).write_text(json.dumps(runs, indent=1) + "\n")
if args.markdown:
    Path(args.markdown).write_text(text)
if args.profile:
    Path(args.profile).write_text(json.dumps(profiles, indent=1) + "\n")
if not (args.out or args.markdown):
    print(text)
if args.merge:
    if any(r["dry_run"] for r in runs) and not args.allow_dry_run:
        sys.exit("refusing to merge dry-run (DEVICE=cpu) numbers; --allow-dry-run to force")
    path = Path(args.merge)
    have = read_json(path) if path.exists() else []
    if not isinstance(have, list):
        sys.exit(f"{path}: expected a JSON list of runs")
    key = lambda r: (r.get("commit"), r.get("device"), r.get("stage"), r.get("ours_run"), r.get("peft_run"), r.get("date"))
    new = {key(r) for r in runs}
    merged = [r for r in have if key(r) not in new] + runs
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(merged, indent=1) + "\n")
    print(f"{path}: {len(merged)} runs ({len(runs)} from this summary)")

//! `cargo xtask bench --int8`: evaluation with int8 weights against our f32, PyTorch's f32 and
//! PyTorch's dynamic int8 (`quantize_dynamic`), in one run, on the same texts.
//!
//! The texts are `--test-n` IMDb test reviews written once as JSON Lines by `imdb-lora-perf
//! texts --labelled` (labels named as the model names its classes); `imdb-lora eval --data`
//! and `scripts/bench/peer_int8.py eval` both read that file. Per repeat, alternating: our f32
//! evaluation, our int8 one (quantised at load), our int8 one from the directory `imdb-lora
//! export --quantize int8` wrote, then the reference's f32 and dynamic int8 ones, each a
//! process of its own (wall time and peak RSS measured from outside). Then one `eval --quantize int8
//! --compare-f32` for the share of texts whose label int8 keeps. Targets are reported, never
//! enforced.
//!
//! The model: `--model` when it has a classification head (a fine-tuned run's `model/`), else
//! all-MiniLM-L6-v2 with the fixture PEFT adapter merged (`imdb-lora export`), which is the
//! same size and speed; its accuracy then means nothing.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::Serialize;
use serde_json::{Value, json};

use super::measure::{Measured, Runner};
use super::report::median;

/// Targets from the issue: int8 evaluation against PyTorch's f32 and dynamic int8, and peak
/// memory against PyTorch's f32 process.
const TARGET_VS_TORCH_F32: f64 = 2.0;
const TARGET_VS_TORCH_INT8: f64 = 1.2;
const TARGET_RSS: f64 = 0.3;

/// What the int8 benchmark is given.
#[derive(Debug, Clone, Serialize)]
pub struct Int8Sizes {
    pub texts: usize,
    pub max_len: usize,
    pub batch: usize,
    pub repeats: usize,
}

/// Paths and binaries.
pub struct Int8Setup<'a> {
    pub ours: &'a Path,
    pub perf: &'a Path,
    /// The reference's Python, when it is enabled.
    pub peer: Option<&'a Path>,
    /// `scripts/bench/peer_int8.py`.
    pub script: PathBuf,
    /// A model with a classification head, or the base the fixture adapter goes on.
    pub model: &'a Path,
    /// The adapter to merge into `model` when it has no head.
    pub adapter: PathBuf,
    pub data: &'a Path,
    pub out: &'a Path,
    pub env: &'a [(&'a str, &'a str)],
}

/// One process's outcome.
#[derive(Debug, Clone, Serialize)]
struct Run {
    samples_per_s: f64,
    accuracy: f64,
    wall_s: f64,
    peak_rss_mib: f64,
    output: Value,
}

impl Run {
    fn of(m: &Measured, output: Value) -> Result<Run> {
        let num = |k: &str| {
            output[k]
                .as_f64()
                .with_context(|| format!("no {k} in {output}"))
        };
        Ok(Run {
            samples_per_s: num("samples_per_s")?,
            accuracy: num("accuracy")?,
            wall_s: m.wall_s,
            peak_rss_mib: m.peak_rss_mib,
            output,
        })
    }
}

/// The sides of one repeat.
#[derive(Debug, Clone, Default, Serialize)]
struct Repeat {
    ours_f32: Option<Run>,
    ours_int8: Option<Run>,
    /// The model exported in int8 (`export --quantize int8`), loaded as it is: what a
    /// deployment runs, without the f32 weights ever in memory.
    ours_int8_saved: Option<Run>,
    torch_f32: Option<Run>,
    torch_int8: Option<Run>,
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// A classifier directory: `model` when its weights hold a head, else `model` with the
/// adapter merged, written under `out`.
fn classifier(st: &Int8Setup<'_>, runner: &mut Runner) -> Result<PathBuf> {
    let config: Value = serde_json::from_slice(
        &std::fs::read(st.model.join("config.json"))
            .with_context(|| format!("reading {}/config.json", st.model.display()))?,
    )?;
    let has_labels = config["id2label"]
        .as_object()
        .is_some_and(|m| !m.is_empty());
    let architectures = config["architectures"].to_string();
    if has_labels && architectures.contains("ForSequenceClassification") {
        return Ok(st.model.to_path_buf());
    }
    let merged = st.out.join("int8-model");
    if merged.exists() {
        std::fs::remove_dir_all(&merged)
            .with_context(|| format!("removing {}", merged.display()))?;
    }
    let args = [
        "export".into(),
        "--model".into(),
        s(st.model),
        "--adapter".into(),
        s(&st.adapter),
        "--out".into(),
        s(&merged),
    ];
    runner.run(st.ours, &args, st.env)?;
    Ok(merged)
}

/// The model's class names, in class order.
fn class_names(model: &Path) -> Result<Vec<String>> {
    let config: Value = serde_json::from_slice(&std::fs::read(model.join("config.json"))?)?;
    let Some(map) = config["id2label"].as_object() else {
        bail!(
            "{}/config.json names no classes (id2label)",
            model.display()
        );
    };
    let mut pairs: Vec<(usize, String)> = map
        .iter()
        .map(|(k, v)| {
            let i = k
                .parse::<usize>()
                .with_context(|| format!("id2label key {k}"))?;
            Ok((i, v.as_str().unwrap_or_default().to_string()))
        })
        .collect::<Result<_>>()?;
    pairs.sort();
    Ok(pairs.into_iter().map(|(_, n)| n).collect())
}

/// `/proc/cpuinfo`'s flags that matter to int8 products, as present or absent.
fn cpu_features() -> Vec<(String, bool)> {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let flags: Vec<&str> = info
        .lines()
        .find(|l| l.starts_with("flags"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, f)| f.split_whitespace().collect())
        .unwrap_or_default();
    ["avx2", "avx512bw", "avx512_vnni", "avx_vnni", "amx_int8"]
        .iter()
        .map(|f| (f.to_string(), flags.contains(f)))
        .collect()
}

/// Runs the int8 benchmark and writes `int8-bench.{json,md}` into `st.out`.
pub fn run(st: &Int8Setup<'_>, sizes: &Int8Sizes) -> Result<String> {
    std::fs::create_dir_all(st.out).with_context(|| format!("creating {}", st.out.display()))?;
    let mut runner = Runner::new(&st.out.join("tmp"))?;
    let model = classifier(st, &mut runner)?;
    let names = class_names(&model)?;
    let saved = st.out.join("int8-exported");
    if saved.exists() {
        std::fs::remove_dir_all(&saved).with_context(|| format!("removing {}", saved.display()))?;
    }
    let export = [
        "export".into(),
        "--model".into(),
        s(&model),
        "--quantize".into(),
        "int8".into(),
        "--out".into(),
        s(&saved),
    ];
    runner.run(st.ours, &export, st.env)?;
    let texts = st.out.join("int8-texts.jsonl");
    let perf_args = [
        "texts".into(),
        "--data".into(),
        s(st.data),
        "--n".into(),
        sizes.texts.to_string(),
        "--out".into(),
        s(&texts),
        "--labelled".into(),
        names.join(","),
    ];
    runner.run(st.perf, &perf_args, st.env)?;

    let ours = |model: &Path, quantize: &[&str]| {
        let mut a: Vec<String> = [
            "eval",
            "--saved",
            &s(model),
            "--data",
            &s(&texts),
            "--max-len",
            &sizes.max_len.to_string(),
            "--batch-size",
            &sizes.batch.to_string(),
        ]
        .map(String::from)
        .to_vec();
        a.extend(quantize.iter().map(|q| q.to_string()));
        a
    };
    let reference = |quantize: &str| -> Vec<String> {
        [
            &s(&st.script),
            "eval",
            "--model",
            &s(&model),
            "--texts",
            &s(&texts),
            "--max-len",
            &sizes.max_len.to_string(),
            "--batch",
            &sizes.batch.to_string(),
            "--quantize",
            quantize,
        ]
        .map(String::from)
        .to_vec()
    };
    let mut repeats = Vec::new();
    for i in 0..sizes.repeats {
        eprintln!("xtask bench --int8: repeat {}/{}", i + 1, sizes.repeats);
        let mut r = Repeat::default();
        let m = runner.run(st.ours, &ours(&model, &[]), st.env)?;
        r.ours_f32 = Some(Run::of(&m, m.json("imdb-lora eval")?)?);
        let m = runner.run(st.ours, &ours(&model, &["--quantize", "int8"]), st.env)?;
        r.ours_int8 = Some(Run::of(&m, m.json("imdb-lora eval --quantize int8")?)?);
        let m = runner.run(st.ours, &ours(&saved, &[]), st.env)?;
        r.ours_int8_saved = Some(Run::of(&m, m.json("imdb-lora eval (int8 export)")?)?);
        if let Some(py) = st.peer {
            let m = runner.run(py, &reference("none"), st.env)?;
            r.torch_f32 = Some(Run::of(&m, m.last_json("peer_int8.py eval")?)?);
            let m = runner.run(py, &reference("dynamic-int8"), st.env)?;
            r.torch_int8 = Some(Run::of(&m, m.last_json("peer_int8.py eval dynamic-int8")?)?);
        }
        repeats.push(r);
    }
    let m = runner.run(
        st.ours,
        &ours(&model, &["--quantize", "int8", "--compare-f32"]),
        st.env,
    )?;
    let compared = m.json("imdb-lora eval --compare-f32")?;
    let _ = std::fs::remove_dir(st.out.join("tmp"));

    let pick = |f: fn(&Repeat) -> Option<&Run>, g: fn(&Run) -> f64| {
        let values: Vec<f64> = repeats.iter().filter_map(f).map(g).collect();
        median(&values).unwrap_or(f64::NAN)
    };
    let rate = |f: fn(&Repeat) -> Option<&Run>| pick(f, |r| r.samples_per_s);
    let rss = |f: fn(&Repeat) -> Option<&Run>| pick(f, |r| r.peak_rss_mib);
    let acc = |f: fn(&Repeat) -> Option<&Run>| pick(f, |r| r.accuracy);
    let of32: fn(&Repeat) -> Option<&Run> = |r| r.ours_f32.as_ref();
    let oi8: fn(&Repeat) -> Option<&Run> = |r| r.ours_int8.as_ref();
    let os8: fn(&Repeat) -> Option<&Run> = |r| r.ours_int8_saved.as_ref();
    let tf32: fn(&Repeat) -> Option<&Run> = |r| r.torch_f32.as_ref();
    let ti8: fn(&Repeat) -> Option<&Run> = |r| r.torch_int8.as_ref();
    let kernel = repeats
        .iter()
        .find_map(|r| r.ours_int8.as_ref()?.output["int8_kernel"].as_str())
        .unwrap_or("?")
        .to_string();
    let engine = repeats
        .iter()
        .find_map(|r| r.torch_int8.as_ref()?.output["backend"].as_str())
        .unwrap_or("—")
        .to_string();
    let cpu = cpu_features();
    let features: Vec<String> = cpu
        .iter()
        .map(|(f, on)| format!("{f} {}", if *on { "yes" } else { "no" }))
        .collect();
    let mark = |ok: bool| if ok { "met" } else { "NOT met" };
    let ratio = |a: f64, b: f64| a / b;
    let mut md = format!(
        "{} texts (IMDb test), max_len {}, batch {}, {} alternating repeats (medians). CPU: {}. \
         Our int8 kernel: {kernel}; PyTorch's quantized engine: {engine}.\n\n\
         | side | eval samples/s | accuracy | peak RSS |\n| --- | ---: | ---: | ---: |\n\
         | ours f32 | {:.1} | {:.4} | {:.0} MiB |\n\
         | ours int8 (`--quantize int8`: quantised at load) | {:.1} | {:.4} | {:.0} MiB |\n\
         | ours int8 (the `export --quantize int8` directory) | {:.1} | {:.4} | {:.0} MiB |\n",
        sizes.texts,
        sizes.max_len,
        sizes.batch,
        sizes.repeats,
        features.join(", "),
        rate(of32),
        acc(of32),
        rss(of32),
        rate(oi8),
        acc(oi8),
        rss(oi8),
        rate(os8),
        acc(os8),
        rss(os8),
    );
    let torch = st.peer.is_some();
    if torch {
        md += &format!(
            "| PyTorch f32 | {:.1} | {:.4} | {:.0} MiB |\n\
             | PyTorch dynamic int8 | {:.1} | {:.4} | {:.0} MiB |\n",
            rate(tf32),
            acc(tf32),
            rss(tf32),
            rate(ti8),
            acc(ti8),
            rss(ti8),
        );
    }
    let c = &compared["compare_f32"];
    md += &format!(
        "\n| measure | value | target |\n| --- | --- | --- |\n\
         | ours int8 / ours f32 | {:.2}× | |\n\
         | labels int8 keeps from f32 | {:.2} % ({} of {} differ), max Δp {:.4} | |\n",
        ratio(rate(oi8), rate(of32)),
        c["label_agreement"].as_f64().unwrap_or(f64::NAN) * 100.0,
        c["labels_differ"],
        c["texts"],
        c["max_abs_prob_diff"].as_f64().unwrap_or(f64::NAN),
    );
    if torch {
        let (vs_f32, vs_int8) = (ratio(rate(oi8), rate(tf32)), ratio(rate(oi8), rate(ti8)));
        let (rss_f32, rss_int8) = (ratio(rss(oi8), rss(tf32)), ratio(rss(oi8), rss(ti8)));
        md += &format!(
            "| ours int8 / PyTorch f32 | {vs_f32:.2}× | ≥ {TARGET_VS_TORCH_F32}× ({}) |\n\
             | ours int8 / PyTorch dynamic int8 | {vs_int8:.2}× | ≥ {TARGET_VS_TORCH_INT8}× ({}) |\n\
             | ours f32 / PyTorch f32 | {:.2}× | |\n\
             | PyTorch dynamic int8 / PyTorch f32 | {:.2}× | |\n\
             | peak RSS, ours int8 / PyTorch f32 | {rss_f32:.2}× | ≤ {TARGET_RSS}× ({}) |\n\
             | peak RSS, ours int8 exported / PyTorch f32 | {:.2}× | ≤ {TARGET_RSS}× ({}) |\n\
             | peak RSS, ours int8 / PyTorch dynamic int8 | {rss_int8:.2}× | |\n",
            mark(vs_f32 >= TARGET_VS_TORCH_F32),
            mark(vs_int8 >= TARGET_VS_TORCH_INT8),
            ratio(rate(of32), rate(tf32)),
            ratio(rate(ti8), rate(tf32)),
            mark(rss_f32 <= TARGET_RSS),
            ratio(rss(os8), rss(tf32)),
            mark(ratio(rss(os8), rss(tf32)) <= TARGET_RSS),
        );
    }
    let doc = json!({
        "sizes": sizes,
        "model": model,
        "texts": texts,
        "cpu_features": cpu,
        "int8_kernel": kernel,
        "torch_quantized_engine": engine,
        "repeats": repeats,
        "compare_f32": compared,
        "commands": runner.log,
    });
    imdb_lora_fsio::write(
        &st.out.join("int8-bench.json"),
        serde_json::to_string_pretty(&doc)?.as_bytes(),
    )?;
    imdb_lora_fsio::write(&st.out.join("int8-bench.md"), md.as_bytes())?;
    Ok(md)
}

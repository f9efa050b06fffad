//! `imdb-lora export`: a saved model written again as a model directory — a PEFT adapter
//! merged into it, and with `--quantize int8` its projections and word embeddings stored in
//! int8 (a quarter of the f32 file) for `eval`, `predict` and `serve` to load directly.

use std::path::PathBuf;

use anyhow::Context;
use imdb_lora_encoder::export::{copy_tokenizer_files, save_pretrained};
use imdb_lora_encoder::heads::Head;
use imdb_lora_encoder::{
    MappedFile, PeftAdapter, Precision, Quantization, WeightDtype, load_classifier,
};

use crate::backend::{self, Backend};

/// Write a model directory again: an adapter merged in, optionally quantised to int8.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  # The run's model in int8, for predict/eval/serve on the CPU
  imdb-lora export --model runs/imdb/model --quantize int8 --out runs/imdb/model-int8
  # A PEFT adapter merged into its base, as a plain transformers model
  imdb-lora export --model bert-base-uncased-dir --adapter runs/imdb/model/adapter --out merged")]
pub struct Args {
    /// The model directory: config.json, model.safetensors and the tokenizer files.
    #[arg(long)]
    model: PathBuf,
    /// A PEFT adapter directory to merge into the model first (its head replaces the model's).
    #[arg(long)]
    adapter: Option<PathBuf>,
    #[command(flatten)]
    quantize: backend::QuantizeArg,
    /// The directory to write (new, or empty).
    #[arg(long)]
    out: PathBuf,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let quantize = args.quantize.checked(Precision::F32)?;
    let empty = match std::fs::read_dir(&args.out) {
        Ok(mut entries) => entries.next().is_none(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
        Err(e) => return Err(e).with_context(|| format!("--out {}", args.out.display())),
    };
    anyhow::ensure!(
        empty,
        "--out {}: not empty; export writes a new model directory and never overwrites one",
        args.out.display()
    );
    let weights = args.model.join(imdb_lora_encoder::files::WEIGHTS_FILE);
    let device = backend::device()?;
    let (model, config) = load_classifier::<Backend>(&args.model, &device, 0)?;
    let model = match &args.adapter {
        Some(dir) => PeftAdapter::read(dir)?.apply(&model)?,
        None => {
            // Without an adapter to bring one, a head the checkpoint lacks would be saved as
            // the random one the loader made.
            let file = MappedFile::open(&weights)?;
            anyhow::ensure!(
                Head::<Backend>::in_checkpoint(&file.tensors()?, config.family),
                "{}: no classification head to export; give the --adapter that trained one",
                weights.display()
            );
            model
        }
    };
    let model = model.merge_lora();
    let model = match quantize {
        Some(Quantization::Int8) => model.quantize_int8()?,
        _ => model,
    };
    // Floats as the source stores them (an int8 source's embeddings are int8: f32 then).
    let dtype = WeightDtype::of_checkpoint(&weights).unwrap_or(WeightDtype::F32);
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    save_pretrained(&model, &config, &args.out, dtype)?;
    copy_tokenizer_files(&args.model, &args.out)?;
    let size = |p: PathBuf| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    let summary = serde_json::json!({
        "out": args.out,
        "int8": model.is_int8(),
        "bytes": size(args.out.join(imdb_lora_encoder::files::WEIGHTS_FILE)),
        "source_bytes": size(weights),
    });
    tracing::info!(out = %args.out.display(), int8 = model.is_int8(), "exported");
    let mut stdout = std::io::stdout().lock();
    std::io::Write::write_all(&mut stdout, serde_json::to_string(&summary)?.as_bytes())?;
    std::io::Write::write_all(&mut stdout, b"\n")?;
    Ok(())
}

//! `imdb-lora download`: fetch the model and the data (a Hub dataset's split files, IMDb's by
//! default) into the Hugging Face cache (verified by size and checksum), so later steps can run
//! offline. Local data is left where it is.

use crate::common::{DataArgs, ModelArgs};

/// Download the model files and the data's split files (IMDb's train/test parquet files by
/// default).
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  # bert-base-uncased and IMDb into the Hugging Face cache; later steps can run --offline
  imdb-lora download
  imdb-lora download --model roberta-base --data someone/dataset")]
pub struct Args {
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    data: DataArgs,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let client = args.data.client();
    let model = args.model.files(&client)?;
    tracing::debug!(
        config = %model.config.display(),
        weights = %model.weights.display(),
        "cached model files"
    );
    let Some(repo) = args.data.hub_dataset()? else {
        // Local files: nothing to download for the data.
        tracing::info!(data = %args.data.data, "model ready in the Hugging Face cache; the data is local");
        return Ok(());
    };
    let fetched = crate::fetch::fetch_dataset(&client, &repo, args.data.data_config.as_deref())?;
    tracing::info!("model and data ready in the Hugging Face cache");
    tracing::debug!(root = %fetched.root.display(), commit = %fetched.commit, "cached dataset");
    Ok(())
}

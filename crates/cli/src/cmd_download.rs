//! `imdb-lora download`: fetch the model and the IMDb parquet files into the Hugging Face
//! cache (verified by size and checksum), so later steps can run offline. The user's own
//! data is local and is left where it is.

use crate::common::DataArgs;

/// Download the model files and the IMDb train/test parquet files.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    data: DataArgs,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let client = args.data.client();
    let model = args.data.model_files(&client)?;
    if args.data.is_own_data() {
        // Local files: nothing to download for the data.
        tracing::info!(data = %args.data.data, "model ready in the Hugging Face cache; the data is local");
        return Ok(());
    }
    let data = args.data.data_files(&client)?;
    tracing::info!("model and data ready in the Hugging Face cache");
    tracing::debug!(
        config = %model.config.display(),
        weights = %model.weights.display(),
        train = %data.train.display(),
        test = %data.test.display(),
        "cached files"
    );
    Ok(())
}

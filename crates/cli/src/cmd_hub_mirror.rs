//! `imdb-lora hub-mirror`: serve a directory laid out like the Hugging Face Hub's file URLs
//! on a local address, for air-gapped machines and end-to-end tests (`HF_ENDPOINT=...`).

use std::net::SocketAddr;
use std::path::PathBuf;

use hub_mirror::HubMirror;

/// Serve a Hub-shaped tree (`<repo>/resolve/<rev>/<file>`, `datasets/<repo>/...`).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The tree to serve.
    dir: PathBuf,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8765")]
    addr: SocketAddr,
    /// Answer as huggingface.co does: files of 10 MiB or more redirect to a CDN-like path,
    /// smaller ones carry their git blob id as ETag (simple mode announces sha256 everywhere).
    #[arg(long)]
    realistic: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let mirror = HubMirror::builder(&args.dir)
        .bind(args.addr)
        .realistic(args.realistic)
        .start()?;
    tracing::info!(endpoint = %mirror.endpoint(), dir = %args.dir.display(), "serving; set HF_ENDPOINT to this");
    mirror.wait();
    Ok(())
}

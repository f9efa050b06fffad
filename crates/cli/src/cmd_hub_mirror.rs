//! `imdb-lora hub-mirror`: serve a directory laid out like the Hugging Face Hub's file URLs
//! on a local address, for air-gapped machines and end-to-end tests (`HF_ENDPOINT=...`).

use std::net::SocketAddr;
use std::path::PathBuf;

use imdb_lora_hub_mirror::HubMirror;

/// Serve a Hub-shaped tree (`<repo>/resolve/<rev>/<file>`, `datasets/<repo>/...`).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The tree to serve.
    dir: PathBuf,
    /// Address to listen on (loopback unless --allow-remote).
    #[arg(long, default_value = "127.0.0.1:8765")]
    addr: SocketAddr,
    /// Answer as huggingface.co does: files of 10 MiB or more redirect to a CDN-like path,
    /// smaller ones carry their git blob id as ETag (simple mode announces sha256 everywhere).
    #[arg(long)]
    realistic: bool,
    /// Allow an --addr other than loopback (e.g. 0.0.0.0:8765): the mirror serves its files to
    /// anyone who can connect, without authentication.
    #[arg(long)]
    allow_remote: bool,
}

/// Bind and start serving (in background threads).
fn start(args: &Args) -> anyhow::Result<HubMirror> {
    Ok(HubMirror::builder(&args.dir)
        .bind(args.addr)
        .realistic(args.realistic)
        .allow_remote(args.allow_remote)
        .start()?)
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let mirror = start(&args)?;
    if !mirror.addr().ip().is_loopback() {
        tracing::warn!(endpoint = %mirror.endpoint(), "serving beyond this machine (--allow-remote), without authentication");
    }
    tracing::info!(endpoint = %mirror.endpoint(), dir = %args.dir.display(), "serving; set HF_ENDPOINT to this");
    mirror.wait();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }

    fn args(extra: &[&str]) -> Args {
        let dir = std::env::temp_dir();
        let mut argv = vec!["hub-mirror", dir.to_str().unwrap()];
        argv.extend_from_slice(extra);
        Cli::try_parse_from(argv).unwrap().args
    }

    #[test]
    fn a_non_loopback_address_needs_allow_remote() {
        let err = start(&args(&["--addr", "0.0.0.0:0"])).unwrap_err();
        assert!(format!("{err:#}").contains("--allow-remote"), "{err:#}");
        let mirror = start(&args(&["--addr", "0.0.0.0:0", "--allow-remote"])).unwrap();
        assert!(mirror.addr().ip().is_unspecified());
        let mirror = start(&args(&["--addr", "127.0.0.1:0"])).unwrap();
        assert!(mirror.addr().ip().is_loopback());
    }
}

//! Serves a directory in the Hub's URL layout on loopback until killed, e.g. for air-gapped use:
//! `cargo run -p imdb-data --example hub_mirror -- ../shared/hub [--port N] [--realistic]`, then
//! `HF_ENDPOINT=http://127.0.0.1:N`. (The project CLI's `hub-mirror` wraps the same API.)
// An example reports to the terminal; the library itself only uses `tracing`.
#![allow(clippy::print_stdout)]

use std::net::SocketAddr;
use std::path::PathBuf;

use imdb_data::HubMirror;

fn main() -> Result<(), imdb_data::Error> {
    let mut root = PathBuf::from("../shared/hub");
    let mut port = 0u16;
    let mut realistic = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--port" => port = args.next().and_then(|p| p.parse().ok()).unwrap_or(0),
            "--realistic" => realistic = true,
            _ => root = PathBuf::from(a),
        }
    }
    let mirror = HubMirror::builder(&root)
        .bind(SocketAddr::from(([127, 0, 0, 1], port)))
        .realistic(realistic)
        .start()?;
    println!("serving {} at {}", root.display(), mirror.endpoint());
    println!("use: HF_ENDPOINT={}", mirror.endpoint());
    mirror.wait();
    Ok(())
}

//! `cargo xtask page-check`: the page `imdb-lora serve` serves at `/`, driven in Debian's
//! headless Chromium by `scripts/page-check/check.mjs` (playwright-core). Starts the binary on
//! a free loopback port with all-MiniLM-L6-v2 and the fixture adapter, waits for `/health`,
//! runs the check (which writes a screenshot), then stops the server with SIGTERM and requires
//! it to exit 0.

use std::ffi::OsStr;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Args;

use crate::served::Served;

/// How long the server may take to load the model and answer `/health`.
const START_TIMEOUT: Duration = Duration::from_secs(120);
/// How long the server may take to exit after SIGTERM.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);
/// Servers started before giving up, should another process take the port we picked.
const ATTEMPTS: usize = 3;

/// `cargo xtask page-check` options.
#[derive(Args, Clone, Debug)]
pub struct PageCheckArgs {
    /// The `imdb-lora` binary (default: target/debug/imdb-lora; `cargo build -p imdb-lora`).
    #[arg(long)]
    bin: Option<PathBuf>,
    /// Base model directory (default: all-MiniLM-L6-v2 in $IMDB_LORA_SHARED/hub, else
    /// ../shared/hub).
    #[arg(long)]
    model: Option<PathBuf>,
    /// The adapter to serve, as NAME=DIR (default: imdb=fixtures/peft/minilm/adapter).
    #[arg(long)]
    adapter: Option<String>,
    /// Where the check writes its screenshot of the page (default: docs/images/serve-page.png).
    #[arg(long)]
    screenshot: Option<PathBuf>,
}

/// Runs the check; an error when any step fails.
pub fn run(args: &PageCheckArgs, root: &Path) -> Result<()> {
    let bin = absolute(
        &args
            .bin
            .clone()
            .unwrap_or_else(|| crate::target_dir().join("debug").join("imdb-lora")),
    )?;
    let shared = std::env::var_os("IMDB_LORA_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("..").join("shared"));
    let model = absolute(&args.model.clone().unwrap_or_else(|| {
        shared.join("hub/sentence-transformers/all-MiniLM-L6-v2/resolve/main")
    }))?;
    let adapter = match &args.adapter {
        Some(a) => a.clone(),
        None => format!(
            "imdb={}",
            root.join("fixtures/peft/minilm/adapter").display()
        ),
    };
    let screenshot = absolute(
        &args
            .screenshot
            .clone()
            .unwrap_or_else(|| root.join("docs/images/serve-page.png")),
    )?;
    let scripts = root.join("scripts").join("page-check");
    let chromium = std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));

    if !bin.is_file() {
        bail!(
            "{} does not exist: build it with `cargo build -p imdb-lora` or give --bin",
            bin.display()
        );
    }
    if !model.join("config.json").is_file() {
        bail!(
            "model directory {} has no config.json (set --model or IMDB_LORA_SHARED)",
            model.display()
        );
    }
    if !chromium.is_file() {
        bail!(
            "no Chromium at {}: install Debian's (`apt-get install chromium`) or set CHROMIUM",
            chromium.display()
        );
    }
    if !scripts.join("node_modules").is_dir() {
        let mut npm = Command::new("npm");
        npm.args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&scripts);
        crate::run(npm).context("installing playwright-core (is Node.js with npm installed?)")?;
    }

    let server = start(&bin, &model, &adapter)?;
    let mut check = Command::new("node");
    check
        .arg("check.mjs")
        .arg(format!("http://{}", server.addr))
        .arg("--screenshot")
        .arg(&screenshot)
        .env("CHROMIUM", &chromium)
        .current_dir(&scripts);
    let checked = crate::run(check);
    let stopped = server.stop(STOP_TIMEOUT);
    checked.context("the page check failed")?;
    stopped?;
    eprintln!(
        "xtask: the page passed; screenshot in {}",
        screenshot.display()
    );
    Ok(())
}

/// `p` made absolute (relative to the current directory), with `..` resolved when it exists.
fn absolute(p: &Path) -> Result<PathBuf> {
    match std::fs::canonicalize(p) {
        Ok(c) => Ok(c),
        Err(_) => std::path::absolute(p).with_context(|| format!("resolving {}", p.display())),
    }
}

/// Starts the server on a free loopback port and waits until `/health` answers 200; tries
/// again should the server exit first (another process may have taken the port picked).
fn start(bin: &Path, model: &Path, adapter: &str) -> Result<Served> {
    let args = [
        OsStr::new("serve"),
        OsStr::new("--model"),
        model.as_os_str(),
        OsStr::new("--adapter"),
        OsStr::new(adapter),
    ];
    let agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(5)))
        .build()
        .new_agent();
    let healthy = |addr: SocketAddr| {
        agent
            .get(&format!("http://{addr}/health"))
            .call()
            .is_ok_and(|r| r.status() == 200)
    };
    let mut attempt = 1;
    loop {
        match Served::start(bin, &args, &healthy, START_TIMEOUT) {
            Ok(served) => return Ok(served),
            Err(e) if attempt < ATTEMPTS => eprintln!("xtask: {e:#}; trying another port"),
            Err(e) => return Err(e.context(format!("the server did not start, {ATTEMPTS} times"))),
        }
        attempt += 1;
    }
}

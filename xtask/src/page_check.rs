//! `cargo xtask page-check`: the page `imdb-lora serve` serves at `/`, driven in Debian's
//! headless Chromium by `scripts/page-check/check.mjs` (playwright-core). Starts the binary on
//! a free loopback port with all-MiniLM-L6-v2 and the fixture adapter, waits for `/health`,
//! runs the check (which writes a screenshot), then stops the server with SIGTERM and requires
//! it to exit 0.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Args;

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

    let mut server = start(&bin, &model, &adapter)?;
    let mut check = Command::new("node");
    check
        .arg("check.mjs")
        .arg(format!("http://{}", server.addr))
        .arg("--screenshot")
        .arg(&screenshot)
        .env("CHROMIUM", &chromium)
        .current_dir(&scripts);
    let checked = crate::run(check);
    let stopped = server.stop();
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

/// A running `imdb-lora serve`; dropped without [`Server::stop`], it is killed.
struct Server {
    child: Child,
    addr: SocketAddr,
}

/// Starts the server on a free loopback port and waits until `/health` answers 200; tries
/// another port should the server exit first (another process may have taken the one picked).
fn start(bin: &Path, model: &Path, adapter: &str) -> Result<Server> {
    let mut last = None;
    for _ in 0..ATTEMPTS {
        let addr = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .context("picking a free loopback port")?;
        let mut cmd = Command::new(bin);
        cmd.arg("serve").arg("--model").arg(model).args([
            "--adapter",
            adapter,
            "--addr",
            &addr.to_string(),
        ]);
        let line = crate::shown(&cmd);
        eprintln!("xtask: {line}");
        let child = cmd
            .spawn()
            .with_context(|| format!("cannot start {line}"))?;
        let mut server = Server { child, addr };
        match server.wait_healthy()? {
            None => return Ok(server),
            Some(status) => {
                eprintln!("xtask: the server exited ({status}) before answering /health");
                last = Some(status);
            }
        }
    }
    bail!(
        "the server exited ({}) before answering /health, {ATTEMPTS} times; see its log above",
        last.map_or_else(|| "?".to_string(), |s| s.to_string())
    )
}

impl Server {
    /// `None` once `/health` answers 200; the exit status if the server stops first; an error
    /// past [`START_TIMEOUT`].
    fn wait_healthy(&mut self) -> Result<Option<ExitStatus>> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().context("waiting for the server")? {
                return Ok(Some(status));
            }
            if health(self.addr).unwrap_or(false) {
                return Ok(None);
            }
            if Instant::now() > deadline {
                bail!(
                    "GET http://{}/health did not answer 200 within {} s",
                    self.addr,
                    START_TIMEOUT.as_secs()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// SIGTERM, then an exit with status 0 within [`STOP_TIMEOUT`].
    fn stop(&mut self) -> Result<()> {
        let pid = self.child.id().to_string();
        let mut kill = Command::new("kill");
        kill.args(["-TERM", &pid]);
        crate::run(kill)?;
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().context("waiting for the server")? {
                if !status.success() {
                    bail!("the server exited with {status} after SIGTERM, not 0");
                }
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "the server was still running {} s after SIGTERM",
                    STOP_TIMEOUT.as_secs()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Whether `GET /health` answers 200 (HTTP/1.1 by hand: xtask has no HTTP client).
fn health(addr: SocketAddr) -> std::io::Result<bool> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.set_write_timeout(Some(Duration::from_secs(5)))?;
    write!(
        stream,
        "GET /health HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    Ok(answer.starts_with("HTTP/1.1 200"))
}

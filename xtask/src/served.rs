//! An `imdb-lora serve` child process for xtask's commands (`bench --serve`, `page-check`):
//! started on a free loopback port, ready when the caller's probe says so, stopped with
//! SIGTERM and required to exit 0; killed if dropped before [`Served::stop`].

use std::ffi::OsStr;
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// A running server.
pub struct Served {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    /// From spawn to the first successful probe.
    pub startup: Duration,
    stopped: bool,
}

impl Served {
    /// Runs `bin args... --addr 127.0.0.1:<free port>` and waits until `ready(addr)`; an error
    /// if the server exits first or is not ready within `timeout`.
    pub fn start(
        bin: &Path,
        args: &[&OsStr],
        ready: &dyn Fn(SocketAddr) -> bool,
        timeout: Duration,
    ) -> Result<Served> {
        let addr = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .context("picking a free loopback port")?;
        let mut cmd = Command::new(bin);
        cmd.args(args).arg("--addr").arg(addr.to_string());
        let line = crate::shown(&cmd);
        let start = Instant::now();
        let child = cmd
            .spawn()
            .with_context(|| format!("cannot start {line}"))?;
        let mut served = Served {
            child,
            addr,
            startup: Duration::ZERO,
            stopped: false,
        };
        loop {
            if let Some(status) = served.child.try_wait().context("waiting for the server")? {
                served.stopped = true;
                bail!("{line} exited ({status}) before it was ready; see its log above");
            }
            if ready(addr) {
                served.startup = start.elapsed();
                return Ok(served);
            }
            if start.elapsed() > timeout {
                bail!("{line} was not ready within {} s", timeout.as_secs());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM, then the time to a clean exit (status 0) within `timeout`.
    pub fn stop(mut self, timeout: Duration) -> Result<Duration> {
        let start = Instant::now();
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.child.id()).context("pid")?);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM)
            .context("sending SIGTERM to imdb-lora serve")?;
        loop {
            if let Some(status) = self.child.try_wait()? {
                self.stopped = true;
                if !status.success() {
                    bail!("imdb-lora serve exited with {status} after SIGTERM, not 0");
                }
                return Ok(start.elapsed());
            }
            if start.elapsed() > timeout {
                bail!(
                    "imdb-lora serve was still running {} s after SIGTERM",
                    timeout.as_secs()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if !self.stopped {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

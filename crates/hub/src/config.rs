//! [`HubConfig`]: which endpoint, which cache, online or not, which token, how long to wait,
//! read from the same environment variables as Python's `huggingface_hub` so that both share one
//! cache; and [`DownloadDeadline`], how long one file's download may take in all.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// The public Hub.
pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";

/// Environment variable giving every file's download one fixed deadline, in seconds
/// ([`DownloadDeadline::Fixed`]); unset, the deadline scales with the file's size.
pub const DEADLINE_VAR: &str = "IMDB_LORA_DOWNLOAD_DEADLINE";

/// The longest deadline [`DownloadDeadline::for_size`] gives, whatever size a server announces:
/// a week.
pub const MAX_DEADLINE: Duration = Duration::from_secs(7 * 24 * 3600);

/// How long one file's download (the `GET`, redirects and the whole body) may take before it is
/// abandoned with [`crate::HubError::DeadlineExceeded`]. The read timeout alone cannot stop a
/// server that stays alive but sends a byte now and then; this does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DownloadDeadline {
    /// `base` plus the announced size at `min_bytes_per_sec`: a slow but steady link finishes
    /// any file, a trickle does not. The default is 2 minutes + size at 32 KiB/s (256 kbit/s):
    /// 48 min for a 90 MB model, 3.8 h for a 440 MB one, 9.1 h for 1 GiB.
    Scaled {
        /// Time every file gets (connection, redirects, small files).
        base: Duration,
        /// The slowest transfer rate to wait for, in bytes per second (at least 1).
        min_bytes_per_sec: u64,
    },
    /// The same deadline for every file ([`DEADLINE_VAR`]).
    Fixed(Duration),
}

impl Default for DownloadDeadline {
    fn default() -> Self {
        DownloadDeadline::Scaled {
            base: Duration::from_secs(120),
            min_bytes_per_sec: 32 * 1024,
        }
    }
}

impl DownloadDeadline {
    /// The deadline for a file of `size` bytes, at most [`MAX_DEADLINE`].
    pub fn for_size(&self, size: u64) -> Duration {
        let d = match *self {
            DownloadDeadline::Fixed(d) => d,
            DownloadDeadline::Scaled {
                base,
                min_bytes_per_sec,
            } => base.saturating_add(Duration::from_secs(size / min_bytes_per_sec.max(1))),
        };
        d.min(MAX_DEADLINE)
    }
}

/// Where and how to talk to the Hub.
#[derive(Clone)]
pub struct HubConfig {
    /// Base URL, e.g. `https://huggingface.co` or a mirror's `http://127.0.0.1:PORT`.
    pub endpoint: String,
    /// The hub cache directory (holding `models--*`/`datasets--*` folders).
    pub cache_dir: PathBuf,
    /// Never touch the network; resolve from the cache only.
    pub offline: bool,
    /// Bearer token for private or gated repositories.
    pub token: Option<String>,
    /// Report the progress of large downloads (to the client's [`imdb_lora_progress::Progress`]; whether
    /// and how it is drawn is the binary's choice).
    pub progress: bool,
    /// Connection timeout.
    pub connect_timeout: Duration,
    /// Longest wait for any single read (a stalled server fails instead of hanging forever);
    /// `HF_HUB_DOWNLOAD_TIMEOUT` seconds if set, as in Python, else 60 s.
    pub read_timeout: Duration,
    /// Overall deadline of one file's download (a trickling server fails too).
    pub download_deadline: DownloadDeadline,
}

impl std::fmt::Debug for HubConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the token (logs end up in CI output).
        f.debug_struct("HubConfig")
            .field("endpoint", &self.endpoint)
            .field("cache_dir", &self.cache_dir)
            .field("offline", &self.offline)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("progress", &self.progress)
            .field("connect_timeout", &self.connect_timeout)
            .field("read_timeout", &self.read_timeout)
            .field("download_deadline", &self.download_deadline)
            .finish()
    }
}

fn truthy(v: Option<String>) -> bool {
    v.is_some_and(|v| {
        matches!(
            v.trim().to_ascii_uppercase().as_str(),
            "1" | "ON" | "YES" | "TRUE"
        )
    })
}

/// A positive number of seconds from variable `name`, or `None` (with a warning if it is set
/// to something else).
fn seconds(get: &impl Fn(&str) -> Option<String>, name: &str) -> Option<Duration> {
    let raw = get(name)?;
    match raw.trim().parse::<f64>() {
        Ok(s) if s > 0.0 && s.is_finite() => Some(Duration::from_secs_f64(s.min(1e9))),
        _ => {
            tracing::warn!("{name}={raw:?} is not a positive number of seconds; ignored");
            None
        }
    }
}

impl HubConfig {
    /// A configuration for `endpoint` and `cache_dir`, online, no token, progress reported.
    pub fn new(endpoint: &str, cache_dir: &Path) -> HubConfig {
        HubConfig {
            endpoint: endpoint.trim_end_matches('/').to_owned(),
            cache_dir: cache_dir.to_path_buf(),
            offline: false,
            token: None,
            progress: true,
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(60),
            download_deadline: DownloadDeadline::default(),
        }
    }

    /// The configuration the Python tools would use, from the process environment.
    pub fn from_env() -> HubConfig {
        Self::from_vars(|k| std::env::var(k).ok())
    }

    /// As [`HubConfig::from_env`], reading variables through `var` (testable without touching the
    /// process environment). Reads `HF_ENDPOINT`, `HF_HUB_CACHE` (or the older
    /// `HUGGINGFACE_HUB_CACHE`), `HF_HOME`, `XDG_CACHE_HOME`, `HOME`, `HF_HUB_OFFLINE`, `HF_TOKEN`,
    /// `HF_HUB_DISABLE_PROGRESS_BARS`, `HF_HUB_DOWNLOAD_TIMEOUT` (seconds; the read timeout, as
    /// in Python) and [`DEADLINE_VAR`] (seconds; every file's overall deadline). A timeout that is
    /// not a positive number of seconds is ignored with a warning.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> HubConfig {
        let get = |k: &str| var(k).filter(|v| !v.trim().is_empty());
        let home = get("HOME").map(PathBuf::from);
        let expand = |p: String| match (p.strip_prefix("~/"), &home) {
            (Some(rest), Some(h)) => h.join(rest),
            _ => PathBuf::from(p),
        };
        let hf_home =
            get("HF_HOME")
                .map(&expand)
                .unwrap_or_else(|| match (get("XDG_CACHE_HOME"), &home) {
                    (Some(x), _) => expand(x).join("huggingface"),
                    (None, Some(h)) => h.join(".cache").join("huggingface"),
                    (None, None) => PathBuf::from(".cache").join("huggingface"),
                });
        let cache_dir = get("HF_HUB_CACHE")
            .or_else(|| get("HUGGINGFACE_HUB_CACHE"))
            .map(&expand)
            .unwrap_or_else(|| hf_home.join("hub"));
        let endpoint = get("HF_ENDPOINT").unwrap_or_else(|| DEFAULT_ENDPOINT.to_owned());
        let mut cfg = HubConfig::new(&endpoint, &cache_dir);
        cfg.offline = truthy(var("HF_HUB_OFFLINE"));
        cfg.token = get("HF_TOKEN");
        cfg.progress = !truthy(var("HF_HUB_DISABLE_PROGRESS_BARS"));
        if let Some(t) = seconds(&get, "HF_HUB_DOWNLOAD_TIMEOUT") {
            cfg.read_timeout = t;
        }
        if let Some(t) = seconds(&get, DEADLINE_VAR) {
            cfg.download_deadline = DownloadDeadline::Fixed(t);
        }
        cfg
    }

    /// Set offline mode (e.g. from a `--offline` flag; `HF_HUB_OFFLINE` is read by `from_env`).
    pub fn with_offline(mut self, offline: bool) -> HubConfig {
        self.offline = offline;
        self
    }

    /// Replace the endpoint.
    pub fn with_endpoint(mut self, endpoint: &str) -> HubConfig {
        self.endpoint = endpoint.trim_end_matches('/').to_owned();
        self
    }

    /// Replace the cache directory.
    pub fn with_cache_dir(mut self, cache_dir: &Path) -> HubConfig {
        self.cache_dir = cache_dir.to_path_buf();
        self
    }

    /// Replace the overall deadline of each file's download.
    pub fn with_download_deadline(mut self, deadline: DownloadDeadline) -> HubConfig {
        self.download_deadline = deadline;
        self
    }

    /// Turn progress reports on or off (`HF_HUB_DISABLE_PROGRESS_BARS` turns them off).
    pub fn with_progress(mut self, progress: bool) -> HubConfig {
        self.progress = progress;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn config_from_env_follows_python_precedence() {
        let c = HubConfig::from_vars(vars(&[("HOME", "/home/u")]));
        assert_eq!(c.endpoint, DEFAULT_ENDPOINT);
        assert_eq!(c.cache_dir, PathBuf::from("/home/u/.cache/huggingface/hub"));
        assert!(!c.offline && c.progress && c.token.is_none());

        let c = HubConfig::from_vars(vars(&[("HOME", "/home/u"), ("XDG_CACHE_HOME", "/x")]));
        assert_eq!(c.cache_dir, PathBuf::from("/x/huggingface/hub"));

        let c = HubConfig::from_vars(vars(&[
            ("HOME", "/home/u"),
            ("XDG_CACHE_HOME", "/x"),
            ("HF_HOME", "~/hf"),
            ("HF_ENDPOINT", "http://127.0.0.1:9/"),
            ("HF_HUB_OFFLINE", "1"),
            ("HF_TOKEN", "secret"),
            ("HF_HUB_DISABLE_PROGRESS_BARS", "true"),
        ]));
        assert_eq!(c.cache_dir, PathBuf::from("/home/u/hf/hub"));
        assert_eq!(c.endpoint, "http://127.0.0.1:9");
        assert!(c.offline && !c.progress);
        assert_eq!(c.token.as_deref(), Some("secret"));
        assert!(
            !format!("{c:?}").contains("secret"),
            "Debug must redact the token"
        );

        let c = HubConfig::from_vars(vars(&[
            ("HF_HOME", "/hf"),
            ("HF_HUB_CACHE", "/cache"),
            ("HF_HUB_OFFLINE", "0"),
        ]));
        assert_eq!(c.cache_dir, PathBuf::from("/cache"));
        assert!(!c.offline);
    }

    #[test]
    fn download_deadline_scales_with_size_unless_fixed() {
        let c = HubConfig::from_vars(vars(&[("HOME", "/home/u")]));
        assert_eq!(c.read_timeout, Duration::from_secs(60));
        let d = c.download_deadline;
        assert_eq!(d, DownloadDeadline::default());
        assert_eq!(d.for_size(612), Duration::from_secs(120));
        // bert-base's 440 MB at 32 KiB/s: hours, so a slow link is not cut off.
        assert_eq!(
            d.for_size(440_473_133),
            Duration::from_secs(120 + 440_473_133 / 32_768)
        );
        assert!(d.for_size(5 << 30) > Duration::from_secs(40 * 3600));
        // An absurd announced size cannot overflow a clock.
        assert_eq!(d.for_size(u64::MAX), MAX_DEADLINE);

        let c = HubConfig::from_vars(vars(&[
            ("HF_HUB_DOWNLOAD_TIMEOUT", "10"),
            (DEADLINE_VAR, "1.5"),
        ]));
        assert_eq!(c.read_timeout, Duration::from_secs(10));
        assert_eq!(
            c.download_deadline.for_size(1 << 30),
            Duration::from_millis(1500)
        );
        for bad in ["0", "-3", "soon", "NaN", "inf"] {
            let c = HubConfig::from_vars(vars(&[
                (DEADLINE_VAR, bad),
                ("HF_HUB_DOWNLOAD_TIMEOUT", bad),
            ]));
            assert_eq!(c.download_deadline, DownloadDeadline::default(), "{bad}");
            assert_eq!(c.read_timeout, Duration::from_secs(60), "{bad}");
        }
    }
}

//! [`HubConfig`]: which endpoint, which cache, online or not, which token, read from the same
//! environment variables as Python's `huggingface_hub` so that both share one cache.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// The public Hub.
pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";

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
    /// Report the progress of large downloads (to the client's [`progress::Progress`]; whether
    /// and how it is drawn is the binary's choice).
    pub progress: bool,
    /// Connection timeout.
    pub connect_timeout: Duration,
    /// Longest wait for any single read (a stalled server fails instead of hanging forever).
    pub read_timeout: Duration,
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
        }
    }

    /// The configuration the Python tools would use, from the process environment.
    pub fn from_env() -> HubConfig {
        Self::from_vars(|k| std::env::var(k).ok())
    }

    /// As [`HubConfig::from_env`], reading variables through `var` (testable without touching the
    /// process environment). Reads `HF_ENDPOINT`, `HF_HUB_CACHE` (or the older
    /// `HUGGINGFACE_HUB_CACHE`), `HF_HOME`, `XDG_CACHE_HOME`, `HOME`, `HF_HUB_OFFLINE`, `HF_TOKEN`,
    /// `HF_HUB_DISABLE_PROGRESS_BARS`.
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
}

//! [`ServeConfig`] and [`Limits`]: where the server listens and how much it accepts, with
//! text-embeddings-inference's flag names and defaults.

use std::net::SocketAddr;
use std::time::Duration;

use crate::ServeError;

/// What the server accepts; names and defaults are TEI's router flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Inputs being tokenised, queued or classified at once; past it a request gets 429
    /// instead of waiting (`--max-concurrent-requests`, 512).
    pub max_concurrent_requests: usize,
    /// Token slots (padding included) in one forward pass (`--max-batch-tokens`, 16384).
    pub max_batch_tokens: usize,
    /// Inputs in one forward pass, if capped (`--max-batch-requests`, none).
    pub max_batch_requests: Option<usize>,
    /// Inputs in one request (`--max-client-batch-size`, 32).
    pub max_client_batch_size: usize,
    /// Bytes in one request body (`--payload-limit`, 2,000,000).
    pub payload_limit: usize,
    /// Cut texts over the length limit when a request does not say (`--auto-truncate`).
    pub auto_truncate: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_concurrent_requests: 512,
            max_batch_tokens: 16384,
            max_batch_requests: None,
            max_client_batch_size: 32,
            payload_limit: 2_000_000,
            auto_truncate: false,
        }
    }
}

impl Limits {
    /// Refuses zeros and a token budget that cannot hold one input of `max_len` tokens.
    pub(crate) fn check(&self, max_len: usize) -> Result<(), ServeError> {
        let positive = [
            ("max-concurrent-requests", self.max_concurrent_requests),
            ("max-client-batch-size", self.max_client_batch_size),
            ("payload-limit", self.payload_limit),
            ("max-batch-requests", self.max_batch_requests.unwrap_or(1)),
        ];
        for (name, value) in positive {
            if value == 0 {
                return Err(ServeError::InvalidLimit {
                    name,
                    value,
                    expected: "at least 1",
                });
            }
        }
        if self.max_batch_tokens < max_len {
            return Err(ServeError::InvalidLimit {
                name: "max-batch-tokens",
                value: self.max_batch_tokens,
                expected: "at least the model's max input length (--max-len), so that any one \
                           input fits in a batch",
            });
        }
        Ok(())
    }
}

/// Everything a server needs besides the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServeConfig {
    /// Where to listen; port 0 picks a free one ([`crate::Server::addr`] says which).
    pub addr: SocketAddr,
    /// Allow an address other than loopback (there is no authentication).
    pub allow_remote: bool,
    /// What is accepted.
    pub limits: Limits,
    /// How long a request may wait for its answer before it gets 503 `timeout`.
    pub request_timeout: Duration,
    /// How long a request's head, and then its body, may take to arrive: a head not complete
    /// by then closes the connection, a body gets 408.
    pub read_timeout: Duration,
    /// On shutdown, how long requests in flight are given to finish.
    pub shutdown_timeout: Duration,
    /// Threads that tokenise requests (TEI's `--tokenization-workers`): tokio's blocking pool
    /// is capped at this, so a burst of requests does not start a thread each and crowd out
    /// the forward passes on the same cores.
    pub tokenization_workers: usize,
    /// `/info`'s `model_id`: the model as the user named it.
    pub model_id: String,
    /// `/info`'s `model_dtype`: `float32` or `bfloat16`.
    pub model_dtype: String,
    /// The `x-compute-type` header: `cpu` or `gpu`.
    pub compute_type: String,
    /// The Burn backend, for `/info`.
    pub backend: String,
    /// The program's version, for `/info`.
    pub version: String,
}

impl ServeConfig {
    /// Refuses an address beyond loopback unless `allow_remote`: there is no authentication.
    ///
    /// # Errors
    /// [`ServeError::NotLoopback`].
    pub fn check_address(&self) -> Result<(), ServeError> {
        if !self.addr.ip().is_loopback() && !self.allow_remote {
            return Err(ServeError::NotLoopback { addr: self.addr });
        }
        Ok(())
    }

    /// Loopback port 3000, TEI's limits, a request deadline of a minute, 30 s to send a
    /// request and to finish on shutdown, one tokenising thread per core.
    pub fn new(model_id: impl Into<String>) -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 3000)),
            allow_remote: false,
            limits: Limits::default(),
            request_timeout: Duration::from_secs(60),
            read_timeout: Duration::from_secs(30),
            shutdown_timeout: Duration::from_secs(30),
            tokenization_workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
            model_id: model_id.into(),
            model_dtype: "float32".into(),
            compute_type: "cpu".into(),
            backend: String::new(),
            version: String::new(),
        }
    }
}

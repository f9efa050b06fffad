//! `imdb-lora serve`: a fine-tuned classifier as an HTTP service that speaks
//! text-embeddings-inference's (TEI's) API, so TEI's clients work unchanged — and serves PEFT
//! adapters directly, several over one shared base.
//!
//! * `POST /predict` — `{"inputs": "text" | ["text", ...], "truncate", "truncation_direction",
//!   "raw_scores", "adapter"}` → `[{"score", "label"}, ...]` sorted by score (a list of those
//!   for a batch); TEI's timing headers (`x-total-time`, `x-queue-time`, ...). Refusals are
//!   `{"error", "error_type"}` with TEI's statuses: 400 empty, 413 too many inputs or too large
//!   a body, 422 a text over the limit with `truncate` false (and a field of the wrong type),
//!   429 over capacity; 503 `timeout` past the request deadline ([`api`] says how `inputs` is
//!   read).
//! * `GET /info` (model, labels, limits, adapters), `GET /health`, `GET /metrics`
//!   (Prometheus text, TEI's `te_*` names), `GET /` (a page to try it).
//!
//! Inside: axum on a tokio runtime answers HTTP; texts are tokenised on tokio's blocking pool
//! ([`imdb_lora_infer::TextInput`]); one thread owns the Burn model and packs queued inputs
//! into forward passes by a token budget, one adapter per pass ([`queue`]). Past
//! `max_concurrent_requests` inputs in progress a request gets 429 at once: the queue is
//! bounded. [`Server::shutdown`] stops accepting, lets what is in flight finish (within
//! `shutdown_timeout`) and stops the model thread.

mod api;
mod config;
mod error;
mod http;
mod metrics;
mod queue;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use imdb_lora_encoder::KernelBackend;
use imdb_lora_infer::Predictor;
use tokio::sync::{Semaphore, watch};

pub use config::{Limits, ServeConfig};
pub use error::{ApiError, ErrorType, ServeError};

use crate::http::{AppState, Served};
use crate::metrics::Metrics;
use crate::queue::Worker;

/// A running server: its address, and the handle that stops it.
#[derive(Debug)]
pub struct Server {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    stopping: Arc<AtomicBool>,
    http: Option<JoinHandle<Result<(), ServeError>>>,
    model: Option<JoinHandle<()>>,
}

/// `/info`: TEI's fields, then ours (`family`: config.json's `model_type`, `backend`, `adapters`, `default_adapter`).
fn info_json<B: KernelBackend>(
    predictor: &Predictor<B>,
    config: &ServeConfig,
) -> serde_json::Value {
    let classifiers = predictor.classifiers();
    let labels = &classifiers[0].labels;
    let id2label: BTreeMap<String, &str> = labels
        .iter()
        .enumerate()
        .map(|(i, l)| (i.to_string(), l.as_str()))
        .collect();
    let label2id: BTreeMap<&str, usize> = labels
        .iter()
        .enumerate()
        .map(|(i, l)| (l.as_str(), i))
        .collect();
    let adapters: Vec<serde_json::Value> = classifiers
        .iter()
        .filter_map(|c| {
            c.name.as_ref().map(|name| {
                serde_json::json!({
                    "name": name,
                    "labels": c.labels,
                    "rank": c.rank,
                    "merged": c.merged,
                })
            })
        })
        .collect();
    let limits = &config.limits;
    serde_json::json!({
        "model_id": config.model_id,
        "model_sha": null,
        "model_dtype": config.model_dtype,
        "model_type": {"classifier": {"id2label": id2label, "label2id": label2id}},
        "max_concurrent_requests": limits.max_concurrent_requests,
        "max_input_length": predictor.max_len(),
        "max_batch_tokens": limits.max_batch_tokens,
        "max_batch_requests": limits.max_batch_requests,
        "max_client_batch_size": limits.max_client_batch_size,
        "auto_truncate": limits.auto_truncate,
        "tokenization_workers": config.tokenization_workers,
        "version": config.version,
        "sha": null,
        "docker_label": null,
        "family": predictor.config().model_type,
        "backend": config.backend,
        "adapters": adapters,
        "default_adapter": classifiers[0].name,
    })
}

/// Accepts connections until `stop` says so, serving each on its own task (HTTP/1.1, with a
/// deadline for every request head), then lets them finish within `shutdown_timeout`.
async fn accept(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    mut stop: watch::Receiver<bool>,
    read_timeout: Duration,
    shutdown_timeout: Duration,
) -> Result<(), ServeError> {
    let graceful = GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(read_timeout);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        // Out of file descriptors, a connection reset before accept: wait a
                        // moment and go on, as axum::serve does.
                        tracing::warn!(error = %e, "accepting a connection failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let service = TowerToHyperService::new(app.clone());
                let connection = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
                tokio::spawn(async move {
                    if let Err(e) = connection.await {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                });
            }
            _ = stop.wait_for(|s| *s) => break,
        }
    }
    // No new connections from here; idle keep-alive connections are closed, busy ones finish
    // their request.
    drop(listener);
    if tokio::time::timeout(shutdown_timeout, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            seconds = shutdown_timeout.as_secs(),
            "requests still in flight at the shutdown deadline; stopping anyway"
        );
    }
    Ok(())
}

impl Server {
    /// Binds `config.addr`, starts the model thread with `predictor` and the HTTP runtime, and
    /// returns once requests can be sent.
    ///
    /// # Errors
    /// A non-loopback address without `allow_remote`, limits out of range, an address that
    /// cannot be bound, a thread or runtime that cannot start.
    pub fn start<B: KernelBackend>(
        predictor: Predictor<B>,
        config: ServeConfig,
    ) -> Result<Self, ServeError>
    where
        Predictor<B>: Send + 'static,
    {
        config.check_address()?;
        config.limits.check(predictor.max_len())?;
        if config.tokenization_workers == 0 {
            return Err(ServeError::InvalidLimit {
                name: "tokenization-workers",
                value: 0,
                expected: "at least 1",
            });
        }
        let metrics = Metrics::new()?;
        let info = info_json(&predictor, &config);
        let classifiers: Vec<Served> = predictor
            .classifiers()
            .into_iter()
            .map(|c| Served {
                name: c.name,
                labels: c.labels,
            })
            .collect();
        let input = predictor.input().clone();

        let (jobs, rx) = std::sync::mpsc::channel();
        let alive = Arc::new(AtomicBool::new(true));
        let stopping = Arc::new(AtomicBool::new(false));
        let worker = Worker {
            jobs: rx,
            limits: config.limits,
            metrics: metrics.clone(),
            alive: alive.clone(),
            stopping: stopping.clone(),
        };
        let start = |what, source| ServeError::Start { what, source };
        let model = std::thread::Builder::new()
            .name("model".into())
            .spawn(move || queue::run(predictor, worker))
            .map_err(|e| start("model thread", e))?;

        let runtime = tokio::runtime::Builder::new_multi_thread()
            .max_blocking_threads(config.tokenization_workers)
            .enable_all()
            .thread_name("http")
            .build()
            .map_err(|e| start("HTTP runtime", e))?;
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind(config.addr))
            .map_err(|source| ServeError::Bind {
                addr: config.addr,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| ServeError::Bind {
            addr: config.addr,
            source,
        })?;
        let (read_timeout, shutdown_timeout) = (config.read_timeout, config.shutdown_timeout);
        let state = Arc::new(AppState {
            input,
            jobs,
            permits: Arc::new(Semaphore::new(config.limits.max_concurrent_requests)),
            classifiers,
            info,
            config,
            metrics,
            alive,
        });
        let app = http::router(state);
        let (stop, stopped) = watch::channel(false);
        let http = std::thread::Builder::new()
            .name("http".into())
            .spawn(move || {
                runtime.block_on(accept(
                    listener,
                    app,
                    stopped,
                    read_timeout,
                    shutdown_timeout,
                ))
                // Dropping the runtime here drops every task, and with them the last senders
                // of the job channel: the model thread then drains and ends.
            })
            .map_err(|e| start("HTTP thread", e))?;
        tracing::info!(%addr, "serving");
        Ok(Self {
            addr,
            stop,
            stopping,
            http: Some(http),
            model: Some(model),
        })
    }

    /// The address bound (the port chosen, when port 0 was asked for).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting connections, lets the requests in flight finish (within the shutdown
    /// timeout), then stops the model thread.
    ///
    /// # Errors
    /// The HTTP server's own failure, or a panicked thread.
    pub fn shutdown(mut self) -> Result<(), ServeError> {
        self.stop_and_join()
    }

    /// Blocks until the server stops by itself (the HTTP server failing).
    ///
    /// # Errors
    /// As [`Server::shutdown`].
    pub fn wait(mut self) -> Result<(), ServeError> {
        let result = match self.http.take() {
            Some(h) => h.join().map_err(|_| ServeError::Panicked("HTTP"))?,
            None => Ok(()),
        };
        self.stop_and_join()?;
        result
    }

    fn stop_and_join(&mut self) -> Result<(), ServeError> {
        if self.http.is_none() && self.model.is_none() {
            return Ok(());
        }
        let _ = self.stop.send(true);
        let http = match self.http.take() {
            Some(h) => h.join().map_err(|_| ServeError::Panicked("HTTP"))?,
            None => Ok(()),
        };
        self.stopping.store(true, Ordering::SeqCst);
        if let Some(model) = self.model.take() {
            model.join().map_err(|_| ServeError::Panicked("model"))?;
        }
        tracing::info!("server stopped");
        http
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.stop_and_join();
    }
}

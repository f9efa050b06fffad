//! The HTTP side: axum routes, the `/predict` handler (read the body within its limits, parse,
//! tokenise on the blocking pool, queue one job per text, await the answers), `/info`,
//! `/health`, `/metrics`, the page at `/`, and JSON errors for every refusal, unknown routes
//! included.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use imdb_lora_infer::{TextInput, Tokens, mean_logits};
use tokio::sync::{Semaphore, oneshot};

use crate::api::{PredictRequest, Score, parse_predict, scores};
use crate::error::ErrorType;
use crate::metrics::Metrics;
use crate::queue::{Done, Failed, Job};
use crate::{ApiError, ServeConfig};

/// One classifier as requests see it.
#[derive(Debug, Clone)]
pub(crate) struct Served {
    /// The adapter's name; `None` for the model itself.
    pub name: Option<String>,
    /// Class names by output index.
    pub labels: Vec<String>,
}

/// What every handler shares.
pub(crate) struct AppState {
    pub input: TextInput,
    pub jobs: Sender<Job>,
    pub permits: Arc<Semaphore>,
    pub classifiers: Vec<Served>,
    pub info: serde_json::Value,
    pub config: ServeConfig,
    pub metrics: Metrics,
    pub alive: Arc<AtomicBool>,
}

/// The page at `/`: one static file, no build step, no CDN.
const PAGE: &str = include_str!("page.html");

/// Every route, and JSON answers for unknown ones.
pub(crate) fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/predict", post(predict))
        .route("/info", get(info))
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::map_response_with_state(
            state.clone(),
            count_status,
        ))
        .with_state(state)
}

async fn count_status(State(state): State<Arc<AppState>>, response: Response) -> Response {
    state
        .metrics
        .responses
        .with_label_values(&[response.status().as_str()])
        .inc();
    response
}

async fn not_found(method: Method, uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        ErrorType::Validation,
        format!(
            "no route {method} {}; try POST /predict, GET /info, /health, /metrics or /",
            uri.path()
        ),
    )
}

async fn method_not_allowed(method: Method, uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        ErrorType::Validation,
        format!("{} does not take {method}", uri.path()),
    )
}

async fn page() -> Response {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], PAGE).into_response()
}

async fn info(State(state): State<Arc<AppState>>) -> Response {
    axum::Json(state.info.clone()).into_response()
}

async fn health(State(state): State<Arc<AppState>>) -> Result<StatusCode, ApiError> {
    if state.alive.load(Ordering::SeqCst) {
        Ok(StatusCode::OK)
    } else {
        Err(unhealthy())
    }
}

fn unhealthy() -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        ErrorType::Unhealthy,
        "unhealthy: the model thread has stopped",
    )
}

async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
        .into_response()
}

async fn predict(State(state): State<Arc<AppState>>, request: Request) -> Response {
    let start = Instant::now();
    match answer(&state, request, start).await {
        Ok(response) => response,
        Err(e) => {
            state
                .metrics
                .failures
                .with_label_values(&[e.kind.as_str()])
                .inc();
            tracing::debug!(status = %e.status, error = %e.message, "refused");
            e.into_response()
        }
    }
}

/// The body, within the payload limit and the body deadline.
async fn read_body(state: &AppState, body: Body) -> Result<axum::body::Bytes, ApiError> {
    let limit = state.config.limits.payload_limit;
    let too_large = || {
        ApiError::too_large(format!(
            "the body is larger than the payload limit of {limit} bytes"
        ))
    };
    match tokio::time::timeout(state.config.read_timeout, axum::body::to_bytes(body, limit)).await {
        Err(_) => Err(ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            ErrorType::Validation,
            format!(
                "the body did not arrive within {} s",
                state.config.read_timeout.as_secs()
            ),
        )),
        Ok(Err(e)) => {
            let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
            while let Some(err) = source {
                if err.is::<http_body_util::LengthLimitError>() {
                    return Err(too_large());
                }
                source = err.source();
            }
            Err(ApiError::bad_request(format!("reading the body: {e}")))
        }
        Ok(Ok(bytes)) => Ok(bytes),
    }
}

/// How a request names its `i`-th text: `inputs[i]` in a batch, `inputs` alone.
fn input_field(req: &PredictRequest, i: usize) -> String {
    if req.batch {
        format!("`inputs[{i}]`")
    } else {
        "`inputs`".to_string()
    }
}

/// The checks that need no tokens: something to classify, not too much, a known adapter.
fn check(state: &AppState, req: &PredictRequest) -> Result<usize, ApiError> {
    if req.texts.is_empty() {
        return Err(ApiError::empty("`inputs` is empty: give at least one text"));
    }
    if let Some(i) = req.texts.iter().position(String::is_empty) {
        return Err(ApiError::empty(format!(
            "{} is an empty text",
            input_field(req, i)
        )));
    }
    let max = state.config.limits.max_client_batch_size;
    if req.texts.len() > max {
        return Err(ApiError::too_large(format!(
            "batch size {} > maximum allowed batch size {max}",
            req.texts.len()
        )));
    }
    match &req.adapter {
        None => Ok(0),
        Some(name) => state
            .classifiers
            .iter()
            .position(|c| c.name.as_deref() == Some(name.as_str()))
            .ok_or_else(|| {
                let names: Vec<&str> = state
                    .classifiers
                    .iter()
                    .filter_map(|c| c.name.as_deref())
                    .collect();
                ApiError::unprocessable(if names.is_empty() {
                    format!("`adapter` {name:?}: this server has no adapters")
                } else {
                    format!(
                        "`adapter` {name:?} is not served here; the adapters are: {}",
                        names.join(", ")
                    )
                })
            }),
    }
}

/// Tokenises on the blocking pool (a long text takes milliseconds; the runtime's threads
/// stay free) and applies the length rule.
async fn tokenize(state: &AppState, req: &PredictRequest) -> Result<Vec<Tokens>, ApiError> {
    let input = state.input.clone();
    let texts = req.texts.clone();
    let side = req.side;
    let tokens = tokio::task::spawn_blocking(move || {
        if texts.len() == 1 {
            input.encode(&texts[0], side).map(|t| vec![t])
        } else {
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            input.encode_batch(&refs, side)
        }
    })
    .await
    .map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            ErrorType::Tokenizer,
            format!("the tokenizer failed: {e}"),
        )
    })?
    .map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            ErrorType::Tokenizer,
            e.to_string(),
        )
    })?;
    let truncate = req.truncate.unwrap_or(state.config.limits.auto_truncate);
    if !truncate && let Some(i) = tokens.iter().position(|t| t.truncated) {
        let field = input_field(req, i);
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            ErrorType::Tokenizer,
            format!(
                "{field} must have at most {} tokens (the model's input limit) and `truncate` is \
                 false: shorten it, or send \"truncate\": true",
                state.input.max_len()
            ),
        ));
    }
    Ok(tokens)
}

async fn answer(state: &AppState, request: Request, start: Instant) -> Result<Response, ApiError> {
    let body = read_body(state, request.into_body()).await?;
    let req = parse_predict(&body)?;
    let method = if req.batch { "batch" } else { "single" };
    state.metrics.requests.with_label_values(&[method]).inc();
    let classifier = check(state, &req)?;
    let n = u32::try_from(req.texts.len()).unwrap_or(u32::MAX);
    let _permits = state
        .permits
        .clone()
        .try_acquire_many_owned(n)
        .map_err(|_| {
            ApiError::overloaded(format!(
                "Model is overloaded: more than {} inputs are in progress; retry later",
                state.config.limits.max_concurrent_requests
            ))
        })?;
    let tokenize_start = Instant::now();
    let tokens = tokenize(state, &req).await?;
    let tokenization = tokenize_start.elapsed();
    state
        .metrics
        .tokenization
        .observe(tokenization.as_secs_f64());
    let deadline = start + state.config.request_timeout;
    let mut replies = Vec::with_capacity(tokens.len());
    let compute_tokens: usize = tokens
        .iter()
        .flat_map(|t| t.sequences())
        .map(Vec::len)
        .sum();
    // A job per sequence: a text the model's long-text rule splits into windows is several,
    // answered with the mean of their logits.
    let windows: Vec<usize> = tokens.iter().map(|t| 1 + t.more.len()).collect();
    for t in tokens {
        state
            .metrics
            .input_length
            .observe(t.sequences().map(Vec::len).sum::<usize>() as f64);
        for ids in std::iter::once(t.ids).chain(t.more) {
            let (reply, rx) = oneshot::channel();
            let job = Job {
                classifier,
                ids,
                queued: Instant::now(),
                deadline,
                reply,
            };
            state.jobs.send(job).map_err(|_| unhealthy())?;
            replies.push(rx);
        }
    }
    let mut done: Vec<Done> = Vec::with_capacity(replies.len());
    for rx in replies {
        let timeout = || {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorType::Timeout,
                format!(
                    "no answer within the request deadline of {} s; the server is busy",
                    state.config.request_timeout.as_secs()
                ),
            )
        };
        match tokio::time::timeout_at(deadline.into(), rx).await {
            Err(_) | Ok(Ok(Err(Failed::Timeout))) => return Err(timeout()),
            Ok(Err(_)) => return Err(unhealthy()),
            Ok(Ok(Err(Failed::Backend(message)))) => {
                return Err(ApiError::new(
                    StatusCode::FAILED_DEPENDENCY,
                    ErrorType::Backend,
                    format!("inference failed: {message}"),
                ));
            }
            Ok(Ok(Ok(d))) => done.push(d),
        }
    }
    let labels = &state.classifiers[classifier].labels;
    let mut next = done.iter();
    let answers: Vec<Vec<Score>> = windows
        .iter()
        .map(|&n| {
            let logits: Vec<Vec<f32>> = next.by_ref().take(n).map(|d| d.logits.clone()).collect();
            scores(labels, &mean_logits(&logits), req.raw_scores)
        })
        .collect();
    if let Some(d) = answers.iter().flatten().find(|s| s.score.is_nan()) {
        return Err(ApiError::new(
            StatusCode::FAILED_DEPENDENCY,
            ErrorType::Backend,
            format!("the model gave NaN for {}", d.label),
        ));
    }
    let body = if req.batch {
        serde_json::to_vec(&answers)
    } else {
        serde_json::to_vec(&answers[0])
    }
    .map_err(|e| {
        ApiError::new(
            StatusCode::FAILED_DEPENDENCY,
            ErrorType::Backend,
            e.to_string(),
        )
    })?;

    // TEI's timing headers: means over the inputs for a batch, milliseconds.
    let count = done.len().max(1) as u32;
    let queue = done.iter().map(|d| d.queue).sum::<Duration>() / count;
    let inference = done.iter().map(|d| d.inference).sum::<Duration>() / count;
    let total = start.elapsed();
    let m = &state.metrics;
    m.successes.with_label_values(&[method]).inc();
    m.duration.observe(total.as_secs_f64());
    for d in &done {
        m.queue.observe(d.queue.as_secs_f64());
        m.inference.observe(d.inference.as_secs_f64());
    }
    let chars: usize = req.texts.iter().map(|t| t.chars().count()).sum();
    let mut headers = HeaderMap::new();
    let mut put = |name: &'static str, value: String| {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(HeaderName::from_static(name), v);
        }
    };
    put("x-compute-type", state.config.compute_type.clone());
    put("x-compute-time", total.as_millis().to_string());
    put("x-compute-characters", chars.to_string());
    put("x-compute-tokens", compute_tokens.to_string());
    put("x-total-time", total.as_millis().to_string());
    put("x-tokenization-time", tokenization.as_millis().to_string());
    put("x-queue-time", queue.as_millis().to_string());
    put("x-inference-time", inference.as_millis().to_string());
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok((headers, body).into_response())
}

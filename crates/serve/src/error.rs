//! Errors: [`ApiError`], what a request gets back (TEI's `{"error", "error_type"}` with TEI's
//! statuses), and [`ServeError`], why a server could not start or stopped badly.

use std::net::SocketAddr;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// TEI's error kinds, serialised lowercase as TEI's clients read them; `timeout` is ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ErrorType {
    /// No input, or an empty text (400).
    Empty,
    /// A request TEI's rules refuse: too many inputs or too large a body (413); ours also for
    /// a malformed request (400) or a field of the wrong type or value (422).
    Validation,
    /// A text over the length limit with `truncate` false (422), or one the tokenizer fails on.
    Tokenizer,
    /// Above capacity (429).
    Overloaded,
    /// The model failed (424).
    Backend,
    /// The model thread is gone (503).
    Unhealthy,
    /// The request waited past its deadline (503).
    Timeout,
}

impl ErrorType {
    /// The label of `te_request_failure`.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Empty => "empty",
            Self::Validation => "validation",
            Self::Tokenizer => "tokenizer",
            Self::Overloaded => "overloaded",
            Self::Backend => "backend",
            Self::Unhealthy => "unhealthy",
            Self::Timeout => "timeout",
        }
    }
}

/// An error answer: status, kind and a message naming the request field at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// The kind, TEI's `error_type`.
    pub kind: ErrorType,
    /// What was wrong, and what was expected.
    pub message: String,
}

impl ApiError {
    /// An error of `kind` answered with `status`.
    pub fn new(status: StatusCode, kind: ErrorType, message: impl Into<String>) -> Self {
        Self {
            status,
            kind,
            message: message.into(),
        }
    }

    /// 400: nothing to classify.
    pub fn empty(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, ErrorType::Empty, message)
    }

    /// 400: not a request at all (not JSON, not an object).
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, ErrorType::Validation, message)
    }

    /// 422: a field of the wrong type or value.
    pub fn unprocessable(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            ErrorType::Validation,
            message,
        )
    }

    /// 413: too many inputs, or too large a body.
    pub fn too_large(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorType::Validation,
            message,
        )
    }

    /// 429: above capacity.
    pub fn overloaded(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            ErrorType::Overloaded,
            message,
        )
    }
}

/// The JSON body of an error answer.
#[derive(Serialize)]
struct Body<'a> {
    error: &'a str,
    error_type: ErrorType,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&Body {
            error: &self.message,
            error_type: self.kind,
        })
        .unwrap_or_else(|_| br#"{"error":"internal error","error_type":"backend"}"#.to_vec());
        let mut response = (self.status, body).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        response
    }
}

/// Why a server could not start, or did not stop cleanly.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// A non-loopback address without `allow_remote`.
    #[error(
        "{addr} is not a loopback address: the server has no authentication, so serving \
         beyond this machine needs --allow-remote"
    )]
    NotLoopback {
        /// The address asked for.
        addr: SocketAddr,
    },
    /// The address could not be bound.
    #[error("could not listen on {addr}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The runtime or a thread could not be started.
    #[error("could not start the {what}")]
    Start {
        /// What could not start.
        what: &'static str,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A limit out of range.
    #[error("invalid {name} = {value}: expected {expected}")]
    InvalidLimit {
        /// The flag.
        name: &'static str,
        /// The value given.
        value: usize,
        /// The accepted range.
        expected: &'static str,
    },
    /// The metrics registry refused a metric.
    #[error("setting up /metrics")]
    Metrics(#[from] prometheus::Error),
    /// A server thread panicked.
    #[error("the {0} thread panicked")]
    Panicked(&'static str),
}

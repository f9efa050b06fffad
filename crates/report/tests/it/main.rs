//! The report crate's integration tests, one test binary.
//!
//! No test touches process-global state (environment, current directory): each works in its
//! own temporary directory, and the embedded font is registered once for the process by the
//! library itself, so the modules' tests run on parallel threads unguarded.

// clippy.toml allows unwrap inside #[test] functions only; the fixtures
// and helpers here are test code too, where a panic is the failure report.
#![allow(clippy::unwrap_used)]

mod classes;
mod render;

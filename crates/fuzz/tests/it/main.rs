//! The fuzz crate's tests: every committed seed and regression file replayed through its
//! target (no global state is shared between the modules: each harness has its own scratch
//! directory, and the supervisor tests run the binary as a child process).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod replay;
mod supervisor;

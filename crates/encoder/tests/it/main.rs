//! The encoder crate's integration tests, one test binary (one link of the Burn stack).
//!
//! The modules' tests run on parallel threads of one process, so process-global state is
//! guarded here, once: Burn's RNG by [`common::rng_lock`]. No test changes the environment or
//! the current directory.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod adapter;
mod bf16;
mod common;
mod errors;
mod export;
mod families;
mod fused_ops;
mod int8;
mod modern;
mod parity;
mod pooled;

//! The infer crate's integration tests, one test binary (one link of the Burn stack).
//!
//! Prediction draws nothing from Burn's process-global RNG that reaches an output (fresh heads
//! come from a host-side RNG seeded explicitly, adapters are read from files, there is no
//! dropout in inference), and no test changes the environment or the current directory, so the
//! modules' tests run on parallel threads unguarded.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod predict;

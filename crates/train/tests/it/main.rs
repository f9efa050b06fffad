//! The train crate's integration tests, one test binary (one link of the Burn stack).
//!
//! The modules' tests run on parallel threads of one process, so process-global state is
//! guarded here, once: Burn's RNG by [`rng_lock`]. No test changes the environment or the
//! current directory.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Mutex, MutexGuard};

mod loss;
mod train;
mod validation;

/// Holds Burn's RNG for the caller's test.
///
/// Burn's backend RNG is process-global: runs in parallel test threads would interleave their
/// LoRA initialisation and dropout draws, so every test that trains holds this guard for the
/// whole run (a real process trains one model at a time). A poisoned lock (a failed test) is
/// taken over: the RNG has no invariant to break.
pub fn rng_lock() -> MutexGuard<'static, ()> {
    static RNG: Mutex<()> = Mutex::new(());
    RNG.lock().unwrap_or_else(|e| e.into_inner())
}

//! The `imdb-lora` binary's integration tests, one test binary (one link of the Burn stack):
//! each module runs the built binary as a user would.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod families;
mod hub_data;
mod int8;
mod mistakes;
mod own_data;
mod precision;
mod predict;
mod reproduce;
mod resume;
// The GPU path on wgpu (docs/GPU.md); CI runs it on Mesa's lavapipe.
#[cfg(feature = "wgpu")]
mod wgpu;

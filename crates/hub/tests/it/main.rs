//! The Hub client's integration tests, one binary: the real download path against the loopback
//! mirror over `shared/hub`. Tests run on parallel threads of this one process; none touches
//! process-global state (each builds its own `HubConfig` and cache directory instead of setting
//! `HF_*` variables, and each mirror listens on its own port).

// Helper functions here are test code too; clippy's allow-unwrap-in-tests only covers #[test] fns.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod download;
mod limits;
mod listing;

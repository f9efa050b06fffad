//! The loopback Hub mirror's integration tests, one binary. Each test starts its own mirror on
//! its own port; nothing process-global is touched.

// Helper functions here are test code too; clippy's allow-unwrap-in-tests only covers #[test] fns.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod serve;

//! Test scaffolding shared by the workspace's tests and benchmarks; a dev-dependency only.
//!
//! Nothing here is part of any library's API: the architecture test in `xtask` (tidy) fails if
//! a crate takes `testkit` as a normal dependency.
//!
//! * [`shared`]: where the project's read-only shared data lives (`../shared`: the Hub-shaped
//!   tree with IMDb and all-MiniLM-L6-v2), overridable with `IMDB_LORA_SHARED`.
//! * [`fixtures`]: the committed `fixtures/` and the tiny classifier directory built from them.
//! * [`metrics`]: sample `metrics.json` contents (`RunMetrics`) for the metrics and report
//!   tests.

pub mod fixtures;
pub mod metrics;
pub mod shared;

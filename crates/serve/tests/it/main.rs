//! `imdb-lora-serve` over real HTTP on loopback: TEI's contract, adapters, bad requests,
//! overload and shutdown. One test binary (`it`), one module per concern.
//!
//! Every test starts its own server on a free loopback port, so they run in parallel.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod adapters;
mod client;
mod fuzz;
mod life;
mod tei;

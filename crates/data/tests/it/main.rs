//! The data pipeline's integration tests, one binary: the real IMDb files and tokenizer in
//! `shared/hub`, the user-data reader on AG News (`shared/data`) and `fixtures/table`. Tests run
//! on parallel threads of this one process; none changes process-global state (environment,
//! current directory).

// Helper functions here are test code too; clippy's allow-unwrap-in-tests only covers #[test] fns.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod families;
mod imdb_shared;
mod table;

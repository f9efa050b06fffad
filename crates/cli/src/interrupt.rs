//! Ctrl-C (SIGINT) and SIGTERM during `train`: the first asks the run to stop after the
//! optimizer step in progress, which writes a checkpoint, and the binary then exits with
//! status 130 saying how to resume ([`Interrupted`]); a second one quits at once (the last
//! checkpoint is kept: it was written atomically). The `ctrlc` crate owns the signal handling
//! (its handler runs on a thread of its own, where logging is safe).

use imdb_lora_train::Interrupt;

/// The exit status of a run stopped by a signal (128 + SIGINT), as shells report Ctrl-C.
pub const EXIT_STATUS: u8 = 130;

/// Routes Ctrl-C and SIGTERM to `interrupt` for the rest of the process.
///
/// # Errors
/// When a handler cannot be installed (one already is, or the OS refuses).
pub fn install(interrupt: &Interrupt) -> anyhow::Result<()> {
    let flag = interrupt.clone();
    ctrlc::set_handler(move || {
        if flag.is_requested() {
            tracing::warn!("interrupted again: quitting now; the last checkpoint is kept");
            std::process::exit(i32::from(EXIT_STATUS));
        }
        flag.request();
        tracing::warn!(
            "interrupted: stopping after the current step and writing a checkpoint \
             (Ctrl-C again quits at once)"
        );
    })?;
    Ok(())
}

/// A run that stopped because it was interrupted: what the binary prints, instead of an
/// error, before exiting with [`EXIT_STATUS`].
#[derive(Debug)]
pub struct Interrupted {
    /// Optimizer steps taken.
    pub step: u64,
    /// Optimizer steps of the whole run.
    pub total: u64,
    /// The checkpoint the next run resumes from.
    pub checkpoint: std::path::PathBuf,
}

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "interrupted at step {}/{} — run the same command again to resume (checkpoint: {})",
            self.step,
            self.total,
            self.checkpoint.display()
        )
    }
}

impl std::error::Error for Interrupted {}

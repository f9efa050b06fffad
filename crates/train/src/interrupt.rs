//! [`Interrupt`]: a request from outside the loop (the binary's Ctrl-C handler) to stop the
//! run after the optimizer step in progress, with a checkpoint, as `stop_after_steps` stops
//! it: the same command resumes it exactly.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// A shared stop flag: cheap to clone, set from any thread (a signal handler's), read by the
/// training loop after every optimizer step and before every epoch.
#[derive(Debug, Clone, Default)]
pub struct Interrupt(Arc<AtomicBool>);

impl Interrupt {
    /// A flag nobody has set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks the run to stop after its current step (an evaluation pass in progress finishes
    /// first).
    pub fn request(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Whether a stop was asked for.
    pub fn is_requested(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_is_seen_through_every_clone() {
        let a = Interrupt::new();
        let b = a.clone();
        assert!(!b.is_requested());
        a.request();
        assert!(b.is_requested());
    }
}

//! Progress of long tasks, reported by libraries and drawn by binaries.
//!
//! A library never draws anything: it takes a `&dyn` [`Progress`] and tells it when a task
//! starts, how far it has got and when it ends. The binary decides what that looks like (the
//! CLI draws progress bars on a terminal and nothing when stderr is not one or `--quiet` is
//! given); tests pass [`Silent`] or a [`Recorder`] and check what was reported.
//!
//! Written here rather than taken from a crate: the trait is the boundary that keeps drawing
//! crates (`indicatif`) out of the libraries, so it must not depend on one itself; it is a
//! trait and two small implementations.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

/// What a task counts, so a binary can format it (bytes as MiB, items as a count).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    /// Bytes (downloads).
    Bytes,
    /// Anything counted one by one (batches, reviews).
    Items,
}

/// Receives progress reports; implemented by binaries.
pub trait Progress: Send + Sync + fmt::Debug {
    /// A task begins: `label` is what a person reads ("epoch 1/3", "config.json"), `total` the
    /// number of units when known. The task ends when the returned [`Task`] is dropped.
    fn start(&self, label: &str, total: Option<u64>, unit: Unit) -> Box<dyn Task>;
}

/// One running task; dropping it ends the task.
pub trait Task: Send + Sync {
    /// `n` more units are done.
    fn advance(&self, n: u64);
    /// A short status beside the count (a running loss, say).
    fn set_message(&self, message: &str);
}

/// Reports nowhere: for library callers that want no progress, and for tests.
#[derive(Clone, Copy, Debug, Default)]
pub struct Silent;

impl Progress for Silent {
    fn start(&self, _label: &str, _total: Option<u64>, _unit: Unit) -> Box<dyn Task> {
        Box::new(Silent)
    }
}

impl Task for Silent {
    fn advance(&self, _n: u64) {}
    fn set_message(&self, _message: &str) {}
}

/// One reported event, as a [`Recorder`] keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// [`Progress::start`].
    Start {
        /// The task's label.
        label: String,
        /// Its total, when known.
        total: Option<u64>,
        /// What it counts.
        unit: Unit,
    },
    /// [`Task::advance`] of the task with this label.
    Advance {
        /// The task's label.
        label: String,
        /// Units done.
        n: u64,
    },
    /// [`Task::set_message`].
    Message {
        /// The task's label.
        label: String,
        /// The message.
        message: String,
    },
    /// The task was dropped.
    Finish {
        /// The task's label.
        label: String,
    },
}

/// Keeps every event in order: lets a test check what a library reported.
#[derive(Clone, Debug, Default)]
pub struct Recorder {
    events: Arc<Mutex<Vec<Event>>>,
}

impl Recorder {
    /// An empty recorder.
    pub fn new() -> Self {
        Self::default()
    }

    /// The events so far.
    pub fn events(&self) -> Vec<Event> {
        self.events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Units advanced by tasks labelled `label`, summed.
    pub fn advanced(&self, label: &str) -> u64 {
        self.events()
            .iter()
            .map(|e| match e {
                Event::Advance { label: l, n } if l == label => *n,
                _ => 0,
            })
            .sum()
    }

    fn push(&self, event: Event) {
        self.events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(event);
    }
}

impl Progress for Recorder {
    fn start(&self, label: &str, total: Option<u64>, unit: Unit) -> Box<dyn Task> {
        self.push(Event::Start {
            label: label.to_owned(),
            total,
            unit,
        });
        Box::new(RecordedTask {
            label: label.to_owned(),
            recorder: self.clone(),
        })
    }
}

struct RecordedTask {
    label: String,
    recorder: Recorder,
}

impl Task for RecordedTask {
    fn advance(&self, n: u64) {
        self.recorder.push(Event::Advance {
            label: self.label.clone(),
            n,
        });
    }

    fn set_message(&self, message: &str) {
        self.recorder.push(Event::Message {
            label: self.label.clone(),
            message: message.to_owned(),
        });
    }
}

impl Drop for RecordedTask {
    fn drop(&mut self) {
        self.recorder.push(Event::Finish {
            label: std::mem::take(&mut self.label),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorder_keeps_events_in_order_and_sums_advances() {
        let r = Recorder::new();
        let p: &dyn Progress = &r;
        {
            let t = p.start("epoch 1/2", Some(3), Unit::Items);
            t.advance(1);
            t.set_message("loss 0.69");
            t.advance(2);
        }
        assert_eq!(r.advanced("epoch 1/2"), 3);
        assert_eq!(r.advanced("epoch 2/2"), 0);
        let events = r.events();
        assert_eq!(
            events.first(),
            Some(&Event::Start {
                label: "epoch 1/2".into(),
                total: Some(3),
                unit: Unit::Items
            })
        );
        assert_eq!(
            events.last(),
            Some(&Event::Finish {
                label: "epoch 1/2".into()
            })
        );
        assert_eq!(events.len(), 5);
    }

    #[test]
    fn silent_reports_nothing_and_does_not_fail() {
        let t = Silent.start("x", None, Unit::Bytes);
        t.advance(10);
        t.set_message("m");
    }
}

//! What a person sees on the terminal: log lines and progress bars, both on stderr.
//!
//! Libraries log with `tracing` and report progress through [`imdb_lora_progress::Progress`]; this module
//! is where both are drawn. At the default level a log event is one short line (its message and
//! its own fields; warnings and errors prefixed); `-v` (or `RUST_LOG`) switches to tracing's full
//! format with timestamps, targets and every enclosing span's fields, and `--log-format json`
//! gives one JSON object per event for machines. Progress bars are drawn only when stderr is a
//! terminal and `--quiet` is not given; a log line printed while bars are up suspends them, so
//! the two never interleave.

use std::fmt;
use std::io::{self, IsTerminal, Write};
use std::sync::{Arc, OnceLock};

use imdb_lora_progress::{Progress, Silent, Task, Unit};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, MakeWriter};
use tracing_subscriber::registry::LookupSpan;

/// `--log-format` values.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Lines for people (short at the default level, detailed with `-v`).
    #[default]
    Text,
    /// One JSON object per event, with the enclosing spans and their fields.
    Json,
}

/// The options that shape the terminal, shared by every subcommand.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Logging")]
pub struct UiArgs {
    /// More detail: `-v` adds debug events, timestamps, targets and the enclosing spans' fields
    /// (full paths among them); `-vv` adds trace events.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Only warnings and errors, no progress bars.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,
    /// Log filter, e.g. `warn`, `info`, `train=debug` (overrides `-v`, `-q` and RUST_LOG).
    #[arg(long, global = true, value_name = "FILTER")]
    log_level: Option<String>,
    /// `text` for people, `json` for machines (one object per line on stderr).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

/// The bars every library reports to (or [`Silent`] before [`init`] or when bars are off).
static BARS: OnceLock<Arc<Bars>> = OnceLock::new();

/// The progress sink to hand to libraries.
pub fn progress() -> Arc<dyn Progress> {
    match BARS.get() {
        Some(bars) => bars.clone(),
        None => Arc::new(Silent),
    }
}

/// Sets up logging and progress bars for the process; call once, first.
pub fn init(args: &UiArgs) -> anyhow::Result<()> {
    let stderr_is_terminal = io::stderr().is_terminal();
    let bars = Arc::new(Bars::new(!args.quiet && stderr_is_terminal));
    let writer = LogWriter {
        multi: bars.multi.clone(),
    };
    let _ = BARS.set(bars);

    let env = std::env::var("RUST_LOG").ok().filter(|v| !v.is_empty());
    let (filter, detailed) = match (&args.log_level, &env) {
        (Some(level), _) => (EnvFilter::try_new(level)?, args.verbose > 0),
        (None, _) if args.quiet => (EnvFilter::new("warn"), false),
        (None, _) if args.verbose > 0 => (
            EnvFilter::new(if args.verbose > 1 { "trace" } else { "debug" }),
            true,
        ),
        (None, Some(env)) => (EnvFilter::try_new(env)?, true),
        (None, None) => (EnvFilter::new("info"), false),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(stderr_is_terminal)
        .with_writer(writer);
    match args.log_format {
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .try_init(),
        LogFormat::Text if detailed => builder.try_init(),
        LogFormat::Text => builder.event_format(Short).try_init(),
    }
    .map_err(|e| anyhow::anyhow!("cannot set up logging: {e}"))
}

/// One line per event: the message and the event's own fields; no time, target or spans.
/// INFO lines leave out the fields that name where things are (see [`is_location`]): a person
/// reads what happened and the key number; `-v` shows the rest. Warnings and errors keep every
/// field, since the file they name is the point.
struct Short;

impl<S, N> FormatEvent<S, N> for Short
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let level = *event.metadata().level();
        let prefix = match level {
            Level::ERROR => "error: ",
            Level::WARN => "warning: ",
            Level::INFO => "",
            Level::DEBUG => "debug: ",
            Level::TRACE => "trace: ",
        };
        let mut line = Line {
            keep_locations: level != Level::INFO,
            ..Line::default()
        };
        event.record(&mut line);
        writeln!(writer, "{prefix}{}{}", line.message, line.fields)
    }
}

/// Fields named like these say where something is (long cache paths, URLs): details for `-v`.
fn is_location(name: &str) -> bool {
    ["path", "dir", "url", "endpoint"]
        .iter()
        .any(|s| name == *s || name.ends_with(&format!("_{s}")))
}

/// An event's message and ` key=value` fields, as [`Short`] prints them.
#[derive(Default)]
struct Line {
    keep_locations: bool,
    message: String,
    fields: String,
}

impl Line {
    fn push(&mut self, field: &Field, value: &dyn fmt::Display) {
        if field.name() == "message" {
            self.message = value.to_string();
        } else if self.keep_locations || !is_location(field.name()) {
            self.fields.push_str(&format!(" {}={value}", field.name()));
        }
    }
}

impl Visit for Line {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.push(field, &value);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.push(field, &format_args!("{value:?}"));
    }
}

/// Hands tracing a writer per event; the event is written whole when the writer is dropped,
/// with any progress bars suspended meanwhile.
#[derive(Clone)]
struct LogWriter {
    multi: MultiProgress,
}

impl<'a> MakeWriter<'a> for LogWriter {
    type Writer = EventWriter;

    fn make_writer(&'a self) -> EventWriter {
        EventWriter {
            multi: self.multi.clone(),
            buf: Vec::new(),
        }
    }
}

/// One event's bytes, written to stderr on drop.
struct EventWriter {
    multi: MultiProgress,
    buf: Vec<u8>,
}

impl Write for EventWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for EventWriter {
    fn drop(&mut self) {
        if !self.buf.is_empty() {
            // Nowhere to report a failed write to stderr.
            self.multi
                .suspend(|| drop(io::stderr().lock().write_all(&self.buf)));
        }
    }
}

/// Progress bars on stderr, or nothing.
struct Bars {
    multi: MultiProgress,
    enabled: bool,
}

impl fmt::Debug for Bars {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bars")
            .field("enabled", &self.enabled)
            .finish()
    }
}

impl Bars {
    fn new(enabled: bool) -> Self {
        let target = if enabled {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        Bars {
            multi: MultiProgress::with_draw_target(target),
            enabled,
        }
    }
}

impl Progress for Bars {
    fn start(&self, label: &str, total: Option<u64>, unit: Unit) -> Box<dyn Task> {
        if !self.enabled {
            return Box::new(Silent);
        }
        let bar = match total {
            Some(n) => ProgressBar::new(n),
            None => ProgressBar::new_spinner(),
        };
        let template = match (unit, total.is_some()) {
            (Unit::Bytes, true) => {
                "{prefix} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta} {msg}"
            }
            (Unit::Bytes, false) => "{spinner} {prefix} {bytes} {bytes_per_sec} {msg}",
            (Unit::Items, true) => "{prefix} [{bar:30}] {pos}/{len}, {per_sec}, eta {eta} {msg}",
            (Unit::Items, false) => "{spinner} {prefix} {pos}, {per_sec} {msg}",
        };
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_prefix(label.to_owned());
        Box::new(BarTask(self.multi.add(bar)))
    }
}

/// One drawn bar; cleared when the task ends (the library logs the result).
struct BarTask(ProgressBar);

impl Task for BarTask {
    fn advance(&self, n: u64) {
        self.0.inc(n);
    }

    fn set_message(&self, message: &str) {
        self.0.set_message(message.to_owned());
    }
}

impl Drop for BarTask {
    fn drop(&mut self) {
        self.0.finish_and_clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hidden_bars_hand_out_silent_tasks() {
        let bars = Bars::new(false);
        let task = bars.start("epoch 1/1", Some(3), Unit::Items);
        task.advance(3);
        task.set_message("loss 0.5");
        assert!(bars.multi.is_hidden());
    }

    /// Collects what a subscriber writes.
    #[derive(Clone, Default)]
    struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn short_lines_drop_spans_and_locations_at_info_but_not_in_warnings() {
        let out = Captured::default();
        let sink = out.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(move || sink.clone())
            .event_format(Short)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let _span = tracing::info_span!("fetch", repo = "org/model").entered();
            tracing::info!(
                file = "config.json",
                bytes = 612,
                path = "/long/cache/path",
                "downloaded"
            );
            tracing::warn!(path = "/long/cache/path", "could not delete temp file");
        });
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        assert_eq!(
            text,
            "downloaded file=config.json bytes=612\n\
             warning: could not delete temp file path=/long/cache/path\n"
        );
    }

    #[test]
    fn location_fields_are_recognised_by_name() {
        for name in ["path", "cache_path", "dir", "out_dir", "url", "endpoint"] {
            assert!(is_location(name), "{name}");
        }
        for name in [
            "file",
            "epoch",
            "accuracy",
            "paths_total",
            "directory_count",
        ] {
            assert!(!is_location(name), "{name}");
        }
    }

    #[test]
    fn progress_before_init_is_silent() {
        // Tests never call init: libraries get a sink that draws nothing.
        let p = progress();
        p.start("x", None, Unit::Bytes).advance(1);
    }
}

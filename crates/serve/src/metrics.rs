//! `/metrics`: the server's counters and histograms in the Prometheus text format, under
//! text-embeddings-inference's names (`te_*`), so dashboards made for TEI read them. One
//! registry per server (no global state: tests run several servers in one process).

use prometheus::{
    Histogram, HistogramOpts, IntCounterVec, IntGauge, Opts, Registry, TextEncoder,
    exponential_buckets,
};

/// Every metric the server keeps.
#[derive(Debug, Clone)]
pub(crate) struct Metrics {
    registry: Registry,
    /// `/predict` requests received, by `method` (`single`, `batch`).
    pub requests: IntCounterVec,
    /// `/predict` requests answered, by `method`.
    pub successes: IntCounterVec,
    /// `/predict` requests refused or failed, by `err` (the error type).
    pub failures: IntCounterVec,
    /// Every HTTP answer, by `status`.
    pub responses: IntCounterVec,
    /// Inputs waiting for the model.
    pub queue_size: IntGauge,
    /// Seconds from request to answer.
    pub duration: Histogram,
    /// Seconds spent tokenising a request.
    pub tokenization: Histogram,
    /// Seconds an input waited for its batch.
    pub queue: Histogram,
    /// Seconds of the forward pass an input was in.
    pub inference: Histogram,
    /// Tokens of each input.
    pub input_length: Histogram,
    /// Inputs per forward pass.
    pub batch_size: Histogram,
    /// Token slots (padding included) per forward pass.
    pub batch_tokens: Histogram,
}

fn register<M: prometheus::core::Collector + Clone + 'static>(
    registry: &Registry,
    metric: M,
) -> prometheus::Result<M> {
    registry.register(Box::new(metric.clone()))?;
    Ok(metric)
}

fn counter(
    registry: &Registry,
    name: &str,
    help: &str,
    label: &str,
) -> prometheus::Result<IntCounterVec> {
    register(
        registry,
        IntCounterVec::new(Opts::new(name, help), &[label])?,
    )
}

fn histogram(
    registry: &Registry,
    name: &str,
    help: &str,
    buckets: Vec<f64>,
) -> prometheus::Result<Histogram> {
    register(
        registry,
        Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets))?,
    )
}

impl Metrics {
    /// A fresh registry with every metric in it.
    ///
    /// # Errors
    /// Only for an invalid or duplicate metric name (a programming error the unit test
    /// catches).
    pub(crate) fn new() -> prometheus::Result<Self> {
        let registry = Registry::new();
        // 1 ms .. ≈ 65 s, doubling.
        let seconds = || exponential_buckets(0.001, 2.0, 17);
        let sizes = || exponential_buckets(1.0, 2.0, 15);
        let r = &registry;
        Ok(Self {
            requests: counter(r, "te_request_count", "Predict requests received", "method")?,
            successes: counter(
                r,
                "te_request_success",
                "Predict requests answered",
                "method",
            )?,
            failures: counter(r, "te_request_failure", "Predict requests failed", "err")?,
            responses: counter(r, "te_http_response_count", "HTTP answers", "status")?,
            queue_size: register(
                r,
                IntGauge::new("te_queue_size", "Inputs waiting for the model")?,
            )?,
            duration: histogram(r, "te_request_duration", "Request seconds", seconds()?)?,
            tokenization: histogram(
                r,
                "te_request_tokenization_duration",
                "Tokenisation seconds",
                seconds()?,
            )?,
            queue: histogram(r, "te_request_queue_duration", "Queue seconds", seconds()?)?,
            inference: histogram(
                r,
                "te_request_inference_duration",
                "Inference seconds",
                seconds()?,
            )?,
            input_length: histogram(r, "te_request_input_length", "Input tokens", sizes()?)?,
            batch_size: histogram(r, "te_batch_next_size", "Inputs per batch", sizes()?)?,
            batch_tokens: histogram(r, "te_batch_next_tokens", "Token slots per batch", sizes()?)?,
            registry,
        })
    }

    /// Everything, in the Prometheus text format.
    pub(crate) fn render(&self) -> String {
        TextEncoder::new()
            .encode_to_string(&self.registry.gather())
            .unwrap_or_else(|e| format!("# metrics could not be encoded: {e}\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_metric_is_registered_and_rendered() {
        let m = Metrics::new().unwrap();
        m.requests.with_label_values(&["single"]).inc();
        m.successes.with_label_values(&["single"]).inc();
        m.failures.with_label_values(&["validation"]).inc();
        m.responses.with_label_values(&["200"]).inc();
        m.duration.observe(0.01);
        m.batch_size.observe(3.0);
        let text = m.render();
        for name in [
            "te_request_count{method=\"single\"} 1",
            "te_request_success{method=\"single\"} 1",
            "te_request_failure{err=\"validation\"} 1",
            "te_http_response_count{status=\"200\"} 1",
            "te_queue_size 0",
            "te_request_duration_count 1",
            "te_request_tokenization_duration_count 0",
            "te_request_queue_duration_count 0",
            "te_request_inference_duration_count 0",
            "te_request_input_length_count 0",
            "te_batch_next_size_sum 3",
            "te_batch_next_tokens_count 0",
        ] {
            assert!(text.contains(name), "{name} in\n{text}");
        }
    }
}

//! Prometheus metrics through OpenTelemetry. A component records with OpenTelemetry
//! instruments, each created from its typed entry in the [`catalog`] (name, kind, help), and
//! serves the Prometheus text format on `/metrics` from an in-process registry: nothing is
//! pushed, and no collector is needed to scrape it. What a component records is a type of this
//! module ([`webhook::AdmissionRecord`]), so the metrics depend on no component.

pub mod catalog;
pub mod webhook;

pub use webhook::WebhookMetrics;

use catalog::{CounterMetric, GaugeMetric, HistogramMetric};
use opentelemetry::metrics::{AsyncInstrument, Counter, Histogram, Meter, MeterProvider as _};
use opentelemetry_sdk::metrics::{Instrument, SdkMeterProvider, Stream};

/// Series each instrument may export. OpenTelemetry's default (2,000) would fold a big
/// cluster's series into one `otel_metric_overflow` series: 10,000 namespaces each with a
/// score, 5,000 policies with four severities each, denials by namespace and check.
pub const CARDINALITY_LIMIT: usize = 100_000;

/// Bucket bounds (seconds) for request latencies: 0.5 ms to 5 s.
pub const LATENCY_BUCKETS: &[f64] = &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

/// One component's metrics: the OpenTelemetry meter provider and the Prometheus registry its
/// exporter fills.
pub struct Metrics {
    registry: prometheus::Registry,
    provider: SdkMeterProvider,
}

impl Metrics {
    pub fn new() -> anyhow::Result<Metrics> {
        let registry = prometheus::Registry::new();
        let exporter = opentelemetry_prometheus::exporter()
            .with_registry(registry.clone())
            // Series keep the catalogue's labels only: no `otel_scope_*` labels and no
            // `target_info`, which the dashboard and alerts would have to filter out.
            .scope_info_enabled(false)
            .without_target_info()
            .build()?;
        let provider = SdkMeterProvider::builder()
            .with_reader(exporter)
            .with_view(|_: &Instrument| Stream::builder().with_cardinality_limit(CARDINALITY_LIMIT).build().ok())
            .build();
        Ok(Metrics { registry, provider })
    }

    /// The meter instruments are created from.
    pub fn meter(&self) -> Meter {
        self.provider.meter("kube-devops")
    }

    /// Every metric in the Prometheus text exposition format (what `/metrics` serves).
    pub fn render(&self) -> String {
        prometheus::TextEncoder::new().encode_to_string(&self.registry.gather()).unwrap_or_else(|e| {
            // Encoding only fails on invalid names, which the catalogue tests rule out.
            format!("# kube-devops: cannot encode the metrics: {e}\n")
        })
    }
}

/// The `reason` label of a failed request: the API's status reason (`Conflict`, `Forbidden`,
/// `NotFound`, `Invalid`, `TooManyRequests`, ... from a bounded set), `ServerError` for other
/// 5xx answers, `Connection` when no answer came.
pub fn error_reason(error: &kube::Error) -> String {
    match error {
        kube::Error::Api(status) => match (status.reason.as_str(), status.code) {
            (reason, _)
                if !reason.is_empty() && reason.chars().all(|c| c.is_ascii_alphabetic()) && reason.len() <= 32 =>
            {
                reason.to_string()
            }
            (_, 500..) => "ServerError".into(),
            _ => "Unknown".into(),
        },
        kube::Error::HyperError(_) | kube::Error::Service(_) => "Connection".into(),
        _ => "Other".into(),
    }
}

#[cfg(test)]
mod reason_tests {
    use super::error_reason;

    fn api(code: u16, reason: &str) -> kube::Error {
        let status: kube::core::Status = serde_json::from_value(serde_json::json!({
            "status": "Failure", "message": "m", "reason": reason, "code": code
        }))
        .unwrap();
        kube::Error::Api(Box::new(status))
    }

    #[test]
    fn errors_are_labelled_by_a_bounded_reason() {
        assert_eq!(error_reason(&api(409, "Conflict")), "Conflict");
        assert_eq!(error_reason(&api(403, "Forbidden")), "Forbidden");
        assert_eq!(error_reason(&api(503, "")), "ServerError");
        // A reason that is not a word (a server or proxy putting text there) is not a label.
        assert_eq!(error_reason(&api(502, "bad gateway: upstream reset")), "ServerError");
        assert_eq!(error_reason(&api(418, "")), "Unknown");
    }
}

/// The counter `metric` of the catalogue.
pub fn counter(meter: &Meter, metric: &CounterMetric) -> Counter<u64> {
    let CounterMetric(metric) = metric;
    // The exporter appends Prometheus' `_total` to counters itself.
    meter.u64_counter(metric.name.strip_suffix("_total").unwrap_or(metric.name)).with_description(metric.help).build()
}

/// The gauge `metric` of the catalogue, reporting what `observe` observes at each scrape (and
/// nothing else: a series not observed any more disappears).
pub fn gauge(meter: &Meter, metric: &GaugeMetric, observe: impl Fn(&dyn AsyncInstrument<u64>) + Send + Sync + 'static) {
    let GaugeMetric(metric) = metric;
    meter.u64_observable_gauge(metric.name).with_description(metric.help).with_callback(observe).build();
}

/// The histogram `metric` of the catalogue, with `bounds` as its buckets.
pub fn histogram(meter: &Meter, metric: &HistogramMetric, bounds: &[f64]) -> Histogram<f64> {
    let HistogramMetric(metric) = metric;
    meter.f64_histogram(metric.name).with_description(metric.help).with_boundaries(bounds.to_vec()).build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::KeyValue;

    #[test]
    fn a_large_cluster_exports_every_series() {
        let metrics = Metrics::new().unwrap();
        let namespaces = 10_000;
        gauge(&metrics.meter(), &catalog::NAMESPACE_HEALTH_SCORE, move |o| {
            for n in 0..namespaces {
                o.observe(90, &[KeyValue::new("namespace", format!("ns-{n}"))]);
            }
        });
        let text = metrics.render();
        let series = text.lines().filter(|l| l.starts_with("namespace_health_score{")).count();
        assert_eq!(series, namespaces);
        assert!(!text.contains("overflow"), "no series folded into an overflow series");
    }
}

//! Prometheus metrics through OpenTelemetry. A component records with OpenTelemetry
//! instruments, each created from its entry in [`crate::metrics_catalog`] (name, kind, help),
//! and serves the Prometheus text format on `/metrics` from an in-process registry: nothing is
//! pushed, and no collector is needed to scrape it.

use crate::admission::Decision;
use crate::metrics_catalog::{self, Metric, MetricKind};
use opentelemetry::KeyValue;
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

fn entry(name: &str, kind: MetricKind) -> &'static Metric {
    let metric = metrics_catalog::find(name).unwrap_or_else(|| panic!("{name} is not in the metrics catalogue"));
    assert_eq!(metric.kind, kind, "{name}");
    metric
}

/// The counter `name` of the catalogue.
pub fn counter(meter: &Meter, name: &'static str) -> Counter<u64> {
    let metric = entry(name, MetricKind::Counter);
    // The exporter appends Prometheus' `_total` to counters itself.
    meter.u64_counter(name.strip_suffix("_total").unwrap_or(name)).with_description(metric.help).build()
}

/// The gauge `name` of the catalogue, reporting what `observe` observes at each scrape (and
/// nothing else: a series not observed any more disappears).
pub fn gauge(meter: &Meter, name: &'static str, observe: impl Fn(&dyn AsyncInstrument<u64>) + Send + Sync + 'static) {
    let metric = entry(name, MetricKind::Gauge);
    meter.u64_observable_gauge(name).with_description(metric.help).with_callback(observe).build();
}

/// The histogram `name` of the catalogue, with `bounds` as its buckets.
pub fn histogram(meter: &Meter, name: &'static str, bounds: &[f64]) -> Histogram<f64> {
    let metric = entry(name, MetricKind::Histogram);
    meter.f64_histogram(name).with_description(metric.help).with_boundaries(bounds.to_vec()).build()
}

/// What the admission webhook records per review.
pub struct WebhookMetrics {
    requests: Counter<u64>,
    denials: Counter<u64>,
    duration: Histogram<f64>,
}

impl WebhookMetrics {
    pub fn new(meter: &Meter) -> WebhookMetrics {
        WebhookMetrics {
            requests: counter(meter, "webhook_requests_total"),
            denials: counter(meter, "webhook_denials_total"),
            duration: histogram(meter, "webhook_request_duration_seconds", LATENCY_BUCKETS),
        }
    }

    /// One answered review: its operation (`CREATE`, `UPDATE`, ...), namespace, decision and
    /// how long deciding took.
    pub fn record(&self, operation: &str, namespace: &str, decision: &Decision, seconds: f64) {
        let verdict = [KeyValue::new("operation", operation.to_string()), KeyValue::new("allowed", decision.allowed)];
        self.requests.add(1, &verdict);
        for violation in &decision.violations {
            let labels = [KeyValue::new("namespace", namespace.to_string()), KeyValue::new("violation", *violation)];
            self.denials.add(1, &labels);
        }
        self.duration.record(seconds, &[]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decision(allowed: bool, violations: &[&'static str]) -> Decision {
        Decision { allowed, message: None, warnings: Vec::new(), violations: violations.to_vec() }
    }

    #[test]
    fn the_webhook_exports_its_catalogue_metrics_in_prometheus_format() {
        let metrics = Metrics::new().unwrap();
        let webhook = WebhookMetrics::new(&metrics.meter());
        webhook.record("CREATE", "shop", &decision(false, &["latest_tag", "missing_readiness"]), 0.0007);
        webhook.record("CREATE", "shop", &decision(true, &[]), 0.0002);
        webhook.record("UPDATE", "shop", &decision(true, &[]), 0.3);
        let text = metrics.render();
        for line in [
            "# TYPE webhook_requests_total counter",
            "webhook_requests_total{allowed=\"false\",operation=\"CREATE\"} 1",
            "webhook_requests_total{allowed=\"true\",operation=\"CREATE\"} 1",
            "webhook_requests_total{allowed=\"true\",operation=\"UPDATE\"} 1",
            "# TYPE webhook_denials_total counter",
            "webhook_denials_total{namespace=\"shop\",violation=\"latest_tag\"} 1",
            "webhook_denials_total{namespace=\"shop\",violation=\"missing_readiness\"} 1",
            "# TYPE webhook_request_duration_seconds histogram",
            "webhook_request_duration_seconds_bucket{le=\"0.0005\"} 1",
            "webhook_request_duration_seconds_bucket{le=\"0.001\"} 2",
            "webhook_request_duration_seconds_bucket{le=\"+Inf\"} 3",
            "webhook_request_duration_seconds_count 3",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in:\n{text}");
        }
        let help = metrics_catalog::find("webhook_denials_total").unwrap().help;
        assert!(text.contains(&format!("# HELP webhook_denials_total {help}")), "{text}");
        assert!(!text.contains("otel_scope") && !text.contains("target_info"), "{text}");
    }

    #[test]
    fn a_large_cluster_exports_every_series() {
        let metrics = Metrics::new().unwrap();
        let namespaces = 10_000;
        gauge(&metrics.meter(), "namespace_health_score", move |o| {
            for n in 0..namespaces {
                o.observe(90, &[KeyValue::new("namespace", format!("ns-{n}"))]);
            }
        });
        let text = metrics.render();
        let series = text.lines().filter(|l| l.starts_with("namespace_health_score{")).count();
        assert_eq!(series, namespaces);
        assert!(!text.contains("overflow"), "no series folded into an overflow series");
    }

    #[test]
    #[should_panic(expected = "not in the metrics catalogue")]
    fn a_metric_not_in_the_catalogue_cannot_be_created() {
        counter(&Metrics::new().unwrap().meter(), "made_up_total");
    }

    #[test]
    #[should_panic(expected = "webhook_request_duration_seconds")]
    fn a_metric_is_created_as_the_kind_the_catalogue_gives() {
        counter(&Metrics::new().unwrap().meter(), "webhook_request_duration_seconds");
    }
}

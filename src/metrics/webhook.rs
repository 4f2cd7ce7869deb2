//! What the admission webhook records per review: requests by operation and verdict, denials
//! by namespace and check, and how long deciding took.

use super::catalog::{WEBHOOK_DENIALS, WEBHOOK_DURATION, WEBHOOK_REQUESTS};
use super::{LATENCY_BUCKETS, counter, histogram};
use crate::api::CheckId;
use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Histogram, Meter};

/// One answered admission review.
#[derive(Clone, Copy, Debug)]
pub struct AdmissionRecord<'a> {
    /// `CREATE`, `UPDATE`, ...
    pub operation: &'a str,
    pub namespace: &'a str,
    pub allowed: bool,
    /// The checks an `enforce` policy denied the request for.
    pub violations: &'a [CheckId],
    /// How long deciding took.
    pub seconds: f64,
}

/// The webhook's instruments.
pub struct WebhookMetrics {
    requests: Counter<u64>,
    denials: Counter<u64>,
    duration: Histogram<f64>,
}

impl WebhookMetrics {
    pub fn new(meter: &Meter) -> WebhookMetrics {
        WebhookMetrics {
            requests: counter(meter, &WEBHOOK_REQUESTS),
            denials: counter(meter, &WEBHOOK_DENIALS),
            duration: histogram(meter, &WEBHOOK_DURATION, LATENCY_BUCKETS),
        }
    }

    pub fn record(&self, review: &AdmissionRecord<'_>) {
        let verdict =
            [KeyValue::new("operation", review.operation.to_string()), KeyValue::new("allowed", review.allowed)];
        self.requests.add(1, &verdict);
        for violation in review.violations {
            let labels = [
                KeyValue::new("namespace", review.namespace.to_string()),
                KeyValue::new("violation", violation.as_str()),
            ];
            self.denials.add(1, &labels);
        }
        self.duration.record(review.seconds, &[]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Metrics;

    fn review<'a>(operation: &'a str, allowed: bool, violations: &'a [CheckId], seconds: f64) -> AdmissionRecord<'a> {
        AdmissionRecord { operation, namespace: "shop", allowed, violations, seconds }
    }

    #[test]
    fn the_webhook_exports_its_catalogue_metrics_in_prometheus_format() {
        let metrics = Metrics::new().unwrap();
        let webhook = WebhookMetrics::new(&metrics.meter());
        webhook.record(&review("CREATE", false, &[CheckId::LatestTag, CheckId::MissingReadiness], 0.0007));
        webhook.record(&review("CREATE", true, &[], 0.0002));
        webhook.record(&review("UPDATE", true, &[], 0.3));
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
        let help = WEBHOOK_DENIALS.0.help;
        assert!(text.contains(&format!("# HELP webhook_denials_total {help}")), "{text}");
        assert!(!text.contains("otel_scope") && !text.contains("target_info"), "{text}");
    }
}

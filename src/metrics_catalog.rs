//! Every Prometheus metric the components export, as one typed list: the Grafana dashboard is
//! built from it (a test fails when a metric has no panel), and the telemetry code registers
//! its instruments from it. Names and labels are the original contract (kept for existing
//! dashboards and alerts), including the gauges whose names end in `_total`.

/// The kind of a Prometheus metric.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricKind {
    Counter,
    Gauge,
    Histogram,
}

/// Which component exports a metric (on its own `/metrics`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exporter {
    /// The watch controller, :8080.
    Watch,
    /// The reconcile operator, :9090.
    Reconcile,
    /// The admission webhook, :8443 (HTTPS).
    Webhook,
}

/// One metric: its name, type, labels, exporter and help text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Metric {
    pub name: &'static str,
    pub kind: MetricKind,
    pub labels: &'static [&'static str],
    pub exporter: Exporter,
    pub help: &'static str,
}

const fn metric(
    name: &'static str,
    kind: MetricKind,
    labels: &'static [&'static str],
    exporter: Exporter,
    help: &'static str,
) -> Metric {
    Metric { name, kind, labels, exporter, help }
}

use Exporter::{Reconcile, Watch, Webhook};
use MetricKind::{Counter, Gauge, Histogram};

/// The 18 metrics, grouped by exporter.
pub const METRICS: &[Metric] = &[
    metric("cluster_health_score", Gauge, &[], Watch, "Mean health score (0-100) of the evaluated namespaces."),
    metric("namespace_health_score", Gauge, &["namespace"], Watch, "Health score (0-100) of a namespace."),
    metric("pod_events_total", Counter, &[], Watch, "Pod watch events processed."),
    metric("pods_tracked_total", Gauge, &[], Watch, "Pods currently tracked by the watch controller."),
    metric("devopspolicy_reconcile_total", Counter, &[], Reconcile, "DevOpsPolicy reconciliations."),
    metric("devopspolicy_reconcile_errors_total", Counter, &[], Reconcile, "DevOpsPolicy reconciliations that failed."),
    metric(
        "devopspolicy_violations_total",
        Gauge,
        &["namespace", "policy"],
        Reconcile,
        "Violations found by the last evaluation of a policy.",
    ),
    metric(
        "devopspolicy_health_score",
        Gauge,
        &["namespace", "policy"],
        Reconcile,
        "Health score (0-100) of the namespace a policy evaluates.",
    ),
    metric(
        "devopspolicy_enforcement_mode",
        Gauge,
        &["namespace", "policy"],
        Reconcile,
        "Enforcement mode of a policy: 0 audit, 1 enforce.",
    ),
    metric(
        "devopspolicy_violations_by_severity",
        Gauge,
        &["severity", "namespace", "policy"],
        Reconcile,
        "Violations of the last evaluation of a policy, by severity.",
    ),
    metric(
        "devopspolicy_remediations_applied_total",
        Counter,
        &[],
        Reconcile,
        "Workload patches applied by enforcement.",
    ),
    metric(
        "devopspolicy_remediations_failed_total",
        Counter,
        &[],
        Reconcile,
        "Workload patches that enforcement could not apply.",
    ),
    metric("devopspolicy_pods_scanned_total", Counter, &[], Reconcile, "Pods evaluated by the reconcile operator."),
    metric(
        "devopspolicy_reconcile_duration_seconds",
        Histogram,
        &[],
        Reconcile,
        "Duration of DevOpsPolicy reconciliations.",
    ),
    metric("devopspolicy_audit_results_total", Counter, &[], Reconcile, "PolicyAuditResults created."),
    metric(
        "webhook_requests_total",
        Counter,
        &["operation", "allowed"],
        Webhook,
        "Admission reviews answered, by operation and verdict.",
    ),
    metric(
        "webhook_denials_total",
        Counter,
        &["namespace", "violation"],
        Webhook,
        "Admission requests denied, counted once per check that denied them.",
    ),
    metric("webhook_request_duration_seconds", Histogram, &[], Webhook, "Duration of admission reviews."),
];

/// The metric with this name.
pub fn find(name: &str) -> Option<&'static Metric> {
    METRICS.iter().find(|m| m.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalog_keeps_the_original_eighteen_metrics_once_each() {
        assert_eq!(METRICS.len(), 18);
        let mut names: Vec<_> = METRICS.iter().map(|m| m.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), 18);
        assert_eq!(find("webhook_requests_total").unwrap().labels, ["operation", "allowed"]);
        assert_eq!(find("devopspolicy_violations_by_severity").unwrap().labels, ["severity", "namespace", "policy"]);
        assert!(find("nope").is_none());
    }

    #[test]
    fn counters_end_in_total_and_histograms_in_seconds() {
        for m in METRICS {
            match m.kind {
                MetricKind::Counter => assert!(m.name.ends_with("_total"), "{}", m.name),
                MetricKind::Histogram => assert!(m.name.ends_with("_seconds"), "{}", m.name),
                MetricKind::Gauge => {}
            }
        }
    }
}

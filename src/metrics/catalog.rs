//! Every Prometheus metric the components export, as one typed list: the Grafana dashboard is
//! built from it (a test fails when a metric has no panel), and the telemetry code registers
//! its instruments from it. Names and labels are a contract with dashboards and alerts; the
//! two gauges that were named `pods_tracked_total` and `devopspolicy_violations_total` lost
//! the suffix Prometheus reserves for counters in 0.3 (`promtool check metrics` refuses it;
//! the README's Observability section has the recording rules that keep the old names).

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
    /// The bootstrap operator, :8081.
    Operator,
    /// Every component that elects a leader: the watch controller, the reconcile operator and
    /// the bootstrap operator (:8081).
    Elected,
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

/// A counter of the catalogue (the type says the kind: no lookup by name at run time).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CounterMetric(pub Metric);
/// A gauge of the catalogue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GaugeMetric(pub Metric);
/// A histogram of the catalogue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HistogramMetric(pub Metric);

const fn counter(
    name: &'static str,
    labels: &'static [&'static str],
    exporter: Exporter,
    help: &'static str,
) -> CounterMetric {
    CounterMetric(Metric { name, kind: MetricKind::Counter, labels, exporter, help })
}

const fn gauge(
    name: &'static str,
    labels: &'static [&'static str],
    exporter: Exporter,
    help: &'static str,
) -> GaugeMetric {
    GaugeMetric(Metric { name, kind: MetricKind::Gauge, labels, exporter, help })
}

const fn histogram(
    name: &'static str,
    labels: &'static [&'static str],
    exporter: Exporter,
    help: &'static str,
) -> HistogramMetric {
    HistogramMetric(Metric { name, kind: MetricKind::Histogram, labels, exporter, help })
}

use Exporter::{Elected, Operator, Reconcile, Watch, Webhook};

const POLICY: &[&str] = &["namespace", "policy"];

pub const CLUSTER_HEALTH_SCORE: GaugeMetric =
    gauge("cluster_health_score", &[], Watch, "Mean health score (0-100) of the evaluated namespaces.");
pub const NAMESPACE_HEALTH_SCORE: GaugeMetric =
    gauge("namespace_health_score", &["namespace"], Watch, "Health score (0-100) of a namespace.");
pub const POD_EVENTS: CounterMetric = counter("pod_events_total", &[], Watch, "Pod watch events processed.");
pub const PODS_TRACKED: GaugeMetric =
    gauge("pods_tracked", &[], Watch, "Pods currently tracked by the watch controller.");
pub const RECONCILES: CounterMetric = counter(
    "devopspolicy_reconcile_total",
    &["result"],
    Reconcile,
    "DevOpsPolicy evaluations, by result: evaluated, or error (the API refused a write).",
);
pub const RECONCILE_ERRORS: CounterMetric = counter(
    "devopspolicy_reconcile_errors_total",
    &["reason"],
    Reconcile,
    "DevOpsPolicy reconciliations that failed, by reason (the API's status reason, or Connection).",
);
pub const POLICY_VIOLATIONS: GaugeMetric =
    gauge("devopspolicy_violations", POLICY, Reconcile, "Violations found by the last evaluation of a policy.");
pub const POLICY_HEALTH_SCORE: GaugeMetric =
    gauge("devopspolicy_health_score", POLICY, Reconcile, "Health score (0-100) of the namespace a policy evaluates.");
pub const POLICY_ENFORCEMENT_MODE: GaugeMetric =
    gauge("devopspolicy_enforcement_mode", POLICY, Reconcile, "Enforcement mode of a policy: 0 audit, 1 enforce.");
pub const POLICY_VIOLATIONS_BY_SEVERITY: GaugeMetric = gauge(
    "devopspolicy_violations_by_severity",
    &["severity", "namespace", "policy"],
    Reconcile,
    "Violations of the last evaluation of a policy, by severity.",
);
pub const REMEDIATIONS_APPLIED: CounterMetric =
    counter("devopspolicy_remediations_applied_total", &[], Reconcile, "Workload patches applied by enforcement.");
pub const REMEDIATIONS_FAILED: CounterMetric = counter(
    "devopspolicy_remediations_failed_total",
    &[],
    Reconcile,
    "Workload patches that enforcement could not apply.",
);
pub const PODS_SCANNED: CounterMetric =
    counter("devopspolicy_pods_scanned_total", &[], Reconcile, "Pods evaluated by the reconcile operator.");
pub const RECONCILE_DURATION: HistogramMetric =
    histogram("devopspolicy_reconcile_duration_seconds", &[], Reconcile, "Duration of DevOpsPolicy reconciliations.");
pub const AUDIT_RESULTS: CounterMetric =
    counter("devopspolicy_audit_results_total", &[], Reconcile, "PolicyAuditResults created.");
pub const WEBHOOK_REQUESTS: CounterMetric = counter(
    "webhook_requests_total",
    &["operation", "allowed"],
    Webhook,
    "Admission reviews answered, by operation and verdict.",
);
pub const WEBHOOK_DENIALS: CounterMetric = counter(
    "webhook_denials_total",
    &["namespace", "violation"],
    Webhook,
    "Admission requests denied, counted once per check that denied them.",
);
pub const WEBHOOK_DURATION: HistogramMetric =
    histogram("webhook_request_duration_seconds", &[], Webhook, "Duration of admission reviews.");
pub const INSTALL_RECONCILES: CounterMetric = counter(
    "kubedevopsinstall_reconcile_total",
    &["result"],
    Operator,
    "KubeDevopsInstall reconciliations, by result: applied, degraded (something could not be applied) or error.",
);
pub const INSTALL_RECONCILE_ERRORS: CounterMetric = counter(
    "kubedevopsinstall_reconcile_errors_total",
    &["reason"],
    Operator,
    "Failed KubeDevopsInstall reconciliations and objects that could not be applied, by reason.",
);
pub const INSTALL_RECONCILE_DURATION: HistogramMetric = histogram(
    "kubedevopsinstall_reconcile_duration_seconds",
    &[],
    Operator,
    "Duration of KubeDevopsInstall reconciliations.",
);
pub const LEADER: GaugeMetric = gauge(
    "kube_devops_leader",
    &["component"],
    Elected,
    "1 on the replica that holds its component's leader-election lease, 0 on a standby.",
);

/// Every metric, grouped by exporter (the dashboard has a panel for each).
pub const METRICS: &[Metric] = &[
    CLUSTER_HEALTH_SCORE.0,
    NAMESPACE_HEALTH_SCORE.0,
    POD_EVENTS.0,
    PODS_TRACKED.0,
    RECONCILES.0,
    RECONCILE_ERRORS.0,
    POLICY_VIOLATIONS.0,
    POLICY_HEALTH_SCORE.0,
    POLICY_ENFORCEMENT_MODE.0,
    POLICY_VIOLATIONS_BY_SEVERITY.0,
    REMEDIATIONS_APPLIED.0,
    REMEDIATIONS_FAILED.0,
    PODS_SCANNED.0,
    RECONCILE_DURATION.0,
    AUDIT_RESULTS.0,
    WEBHOOK_REQUESTS.0,
    WEBHOOK_DENIALS.0,
    WEBHOOK_DURATION.0,
    INSTALL_RECONCILES.0,
    INSTALL_RECONCILE_ERRORS.0,
    INSTALL_RECONCILE_DURATION.0,
    LEADER.0,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalog_keeps_the_original_eighteen_metrics_once_each() {
        // The original eighteen, the bootstrap operator's three and the leader gauge.
        assert_eq!(METRICS.len(), 22);
        let mut names: Vec<_> = METRICS.iter().map(|m| m.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), 22);
        assert_eq!(WEBHOOK_REQUESTS.0.labels, ["operation", "allowed"]);
        assert_eq!(POLICY_VIOLATIONS_BY_SEVERITY.0.labels, ["severity", "namespace", "policy"]);
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

//! The Grafana dashboard "kube-devops": a panel for every metric of
//! [`crate::metrics::catalog::METRICS`], a Prometheus data source variable and a namespace
//! variable, laid out in rows (overview, watch controller, reconcile operator, admission
//! webhook, severities) on Grafana's 24-column grid. Shipped as a ConfigMap labelled
//! `grafana_dashboard: "1"`, which the Grafana sidecar of kube-prometheus-stack imports.

use super::labels::{DASHBOARD_COMPONENT, namespaced_meta};
use crate::metrics::catalog::{self as m, CounterMetric, GaugeMetric, HistogramMetric};
use k8s_openapi::api::core::v1::ConfigMap;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// The ConfigMap's name.
pub const CONFIG_MAP: &str = "kube-devops-grafana-dashboard";
/// The ConfigMap key holding the dashboard.
pub const FILE: &str = "kube-devops.json";
/// The dashboard's uid (stable across versions, so links and imports keep working).
pub const UID: &str = "kube-devops-overview";

const DATASOURCE: &str = "${datasource}";
const NS: &str = "namespace=~\"$namespace\"";

/// Places panels left to right, wrapping at 24 columns; rows start a new line.
struct Layout {
    panels: Vec<Value>,
    x: u32,
    y: u32,
    row_height: u32,
}

impl Layout {
    fn row(&mut self, title: &str) {
        self.newline();
        let id = self.panels.len() + 1;
        self.panels.push(json!({
            "type": "row", "id": id, "title": title, "collapsed": false, "panels": [],
            "gridPos": {"x": 0, "y": self.y, "w": 24, "h": 1},
        }));
        self.y += 1;
    }

    fn newline(&mut self) {
        if self.x > 0 {
            self.y += self.row_height;
            self.x = 0;
        }
    }

    fn panel(&mut self, w: u32, h: u32, mut panel: Value) {
        if self.x + w > 24 {
            self.newline();
        }
        panel["id"] = json!(self.panels.len() + 1);
        panel["gridPos"] = json!({"x": self.x, "y": self.y, "w": w, "h": h});
        panel["datasource"] = json!({"type": "prometheus", "uid": DATASOURCE});
        self.panels.push(panel);
        self.x += w;
        self.row_height = h;
    }
}

fn target(expr: &str, legend: &str, ref_id: char) -> Value {
    json!({
        "refId": ref_id.to_string(), "expr": expr, "legendFormat": legend, "range": true,
        "datasource": {"type": "prometheus", "uid": DATASOURCE},
    })
}

fn targets(queries: &[(&str, &str)]) -> Vec<Value> {
    queries.iter().zip('A'..).map(|((expr, legend), id)| target(expr, legend, id)).collect()
}

/// Red under 40 (Critical), orange under 60 (Degraded), yellow under 80 (Stable), green
/// from 80 (Healthy): the classification thresholds.
fn score_thresholds() -> Value {
    json!({"mode": "absolute", "steps": [
        {"color": "red", "value": null}, {"color": "orange", "value": 40},
        {"color": "yellow", "value": 60}, {"color": "green", "value": 80},
    ]})
}

fn stat(title: &str, description: &str, expr: &str, unit: &str, score: bool) -> Value {
    let mut defaults = json!({"unit": unit, "decimals": 0, "thresholds": {"mode": "absolute", "steps": [{"color": "blue", "value": null}]}});
    if score {
        defaults = json!({"unit": unit, "decimals": 0, "min": 0, "max": 100, "thresholds": score_thresholds()});
    }
    json!({
        "type": "stat", "title": title, "description": description,
        "targets": targets(&[(expr, "")]),
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": false},
                    "colorMode": "value", "graphMode": "area", "textMode": "auto", "justifyMode": "auto",
                    "orientation": "auto"},
    })
}

fn timeseries(title: &str, description: &str, unit: &str, queries: &[(&str, &str)]) -> Value {
    json!({
        "type": "timeseries", "title": title, "description": description,
        "targets": targets(queries),
        "fieldConfig": {"defaults": {"unit": unit, "custom": {"drawStyle": "line", "lineWidth": 1, "fillOpacity": 10,
                                                             "showPoints": "never", "spanNulls": false}},
                        "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": true},
                    "tooltip": {"mode": "multi", "sort": "desc"}},
    })
}

fn score_timeseries(title: &str, description: &str, expr: &str, legend: &str) -> Value {
    let mut panel = timeseries(title, description, "none", &[(expr, legend)]);
    panel["fieldConfig"]["defaults"]["min"] = json!(0);
    panel["fieldConfig"]["defaults"]["max"] = json!(100);
    panel["fieldConfig"]["defaults"]["thresholds"] = score_thresholds();
    panel["fieldConfig"]["defaults"]["custom"]["thresholdsStyle"] = json!({"mode": "line+area"});
    panel
}

fn quantiles(metric: &HistogramMetric) -> [(String, &'static str); 2] {
    let name = metric.0.name;
    let q = |q: &str| format!("histogram_quantile({q}, sum by (le) (rate({name}_bucket[$__rate_interval])))");
    [(q("0.5"), "p50"), (q("0.99"), "p99")]
}

fn rate(metric: &CounterMetric) -> String {
    format!("sum(rate({}[$__rate_interval]))", metric.0.name)
}

/// A gauge of the catalogue, one series per label set however many replicas export it: the
/// components run two replicas each, and a standby may still report what it last computed.
fn gauge(metric: &GaugeMetric, filter: &str) -> String {
    let (name, labels) = (metric.0.name, metric.0.labels);
    if labels.is_empty() {
        format!("max({name}{filter})")
    } else {
        format!("max by ({}) ({name}{filter})", labels.join(", "))
    }
}

fn in_namespaces() -> String {
    format!("{{{NS}}}")
}

/// The dashboard model.
pub fn dashboard() -> Value {
    let mut l = Layout { panels: Vec::new(), x: 0, y: 0, row_height: 0 };
    l.row("Overview");
    let score = "Mean health score of the evaluated namespaces (Healthy from 80, Stable 60, Degraded 40).";
    l.panel(6, 5, stat("Cluster health score", score, &gauge(&m::CLUSTER_HEALTH_SCORE, ""), "none", true));
    l.panel(
        6,
        5,
        stat("Pods tracked", "Pods the watch controller scores.", &gauge(&m::PODS_TRACKED, ""), "none", false),
    );
    let enforcing = "DevOpsPolicies in enforce mode.";
    let enforcing_count = format!("sum({})", gauge(&m::POLICY_ENFORCEMENT_MODE, ""));
    l.panel(6, 5, stat("Policies enforcing", enforcing, &enforcing_count, "none", false));
    // Requests, not webhook_denials_total: that counts a request once per check it failed.
    let denials = format!("sum(increase({}{{allowed=\"false\"}}[1h]))", m::WEBHOOK_REQUESTS.0.name);
    l.panel(
        6,
        5,
        stat("Admission denials (1h)", "Requests the webhook denied in the last hour.", &denials, "none", false),
    );

    let leaders = format!("sum by (component) ({})", m::LEADER.0.name);
    let what = "Replicas leading each elected component: 1 when one holds its lease (0: none leads; more: a split).";
    l.panel(24, 5, timeseries("Leaders", what, "none", &[(&leaders, "{{component}}")]));

    l.row("Watch controller");
    let ns_score = gauge(&m::NAMESPACE_HEALTH_SCORE, &in_namespaces());
    l.panel(
        12,
        8,
        score_timeseries("Namespace health score", "Health score of each namespace.", &ns_score, "{{namespace}}"),
    );
    let events = rate(&m::POD_EVENTS);
    l.panel(12, 8, timeseries("Pod events", "Pod watch events processed per second.", "ops", &[(&events, "events")]));

    l.row("Reconcile operator");
    let (runs, errors) = (rate(&m::RECONCILES), rate(&m::RECONCILE_ERRORS));
    l.panel(
        8,
        8,
        timeseries(
            "Reconciles",
            "DevOpsPolicy reconciliations per second.",
            "ops",
            &[(&runs, "reconciles"), (&errors, "errors")],
        ),
    );
    let [(p50, _), (p99, _)] = quantiles(&m::RECONCILE_DURATION);
    l.panel(
        8,
        8,
        timeseries("Reconcile duration", "Duration of reconciliations.", "s", &[(&p50, "p50"), (&p99, "p99")]),
    );
    let (scanned, audits) = (rate(&m::PODS_SCANNED), rate(&m::AUDIT_RESULTS));
    let what = "Pods evaluated and PolicyAuditResults created per second.";
    l.panel(
        8,
        8,
        timeseries(
            "Pods scanned and audit results",
            what,
            "ops",
            &[(&scanned, "pods scanned"), (&audits, "audit results")],
        ),
    );
    let policy_score = gauge(&m::POLICY_HEALTH_SCORE, &in_namespaces());
    let what = "Health score of each policy's namespace.";
    l.panel(12, 8, score_timeseries("Policy health score", what, &policy_score, "{{namespace}}/{{policy}}"));
    let violations = gauge(&m::POLICY_VIOLATIONS, &in_namespaces());
    let what = "Violations found by the last evaluation of each policy.";
    l.panel(12, 8, timeseries("Violations per policy", what, "none", &[(&violations, "{{namespace}}/{{policy}}")]));
    let mode = gauge(&m::POLICY_ENFORCEMENT_MODE, &in_namespaces());
    let mut modes =
        timeseries("Enforcement mode", "0 = audit, 1 = enforce.", "none", &[(&mode, "{{namespace}}/{{policy}}")]);
    modes["fieldConfig"]["defaults"]["mappings"] =
        json!([{"type": "value", "options": {"0": {"text": "audit"}, "1": {"text": "enforce"}}}]);
    modes["fieldConfig"]["defaults"]["custom"]["drawStyle"] = json!("points");
    l.panel(12, 8, modes);
    let (applied, failed) = (rate(&m::REMEDIATIONS_APPLIED), rate(&m::REMEDIATIONS_FAILED));
    let what = "Workload patches applied and failed by enforcement, per second.";
    l.panel(12, 8, timeseries("Remediations", what, "ops", &[(&applied, "applied"), (&failed, "failed")]));

    l.row("Admission webhook");
    let requests = format!("sum by (operation, allowed) (rate({}[$__rate_interval]))", m::WEBHOOK_REQUESTS.0.name);
    let what = "Admission reviews answered per second, by operation and verdict.";
    l.panel(8, 8, timeseries("Admission requests", what, "reqps", &[(&requests, "{{operation}} allowed={{allowed}}")]));
    let denied = format!("sum by (violation) (rate({}{{{NS}}}[$__rate_interval]))", m::WEBHOOK_DENIALS.0.name);
    l.panel(
        8,
        8,
        timeseries(
            "Denials by violation",
            "Denied requests per second, by check.",
            "reqps",
            &[(&denied, "{{violation}}")],
        ),
    );
    let [(p50, _), (p99, _)] = quantiles(&m::WEBHOOK_DURATION);
    l.panel(
        8,
        8,
        timeseries("Admission latency", "Duration of admission reviews.", "s", &[(&p50, "p50"), (&p99, "p99")]),
    );

    l.row("Bootstrap operator");
    let results = format!("sum by (result) (rate({}[$__rate_interval]))", m::INSTALL_RECONCILES.0.name);
    let what = "KubeDevopsInstall reconciliations per second, by result (applied, degraded, error).";
    l.panel(8, 8, timeseries("Install reconciles", what, "ops", &[(&results, "{{result}}")]));
    let reasons = format!("sum by (reason) (rate({}[$__rate_interval]))", m::INSTALL_RECONCILE_ERRORS.0.name);
    let what = "Failed reconciliations and objects that could not be applied, per second, by reason.";
    l.panel(8, 8, timeseries("Install errors by reason", what, "ops", &[(&reasons, "{{reason}}")]));
    let [(p50, _), (p99, _)] = quantiles(&m::INSTALL_RECONCILE_DURATION);
    let what = "Duration of KubeDevopsInstall reconciliations.";
    l.panel(8, 8, timeseries("Install reconcile duration", what, "s", &[(&p50, "p50"), (&p99, "p99")]));

    l.row("Violations by severity");
    let severity = format!("sum by (severity) ({})", gauge(&m::POLICY_VIOLATIONS_BY_SEVERITY, &in_namespaces()));
    let mut by_severity = timeseries(
        "Violations by severity",
        "Violations of the last evaluations, by severity.",
        "none",
        &[(&severity, "{{severity}}")],
    );
    by_severity["fieldConfig"]["defaults"]["custom"]["stacking"] = json!({"mode": "normal", "group": "A"});
    by_severity["fieldConfig"]["defaults"]["custom"]["fillOpacity"] = json!(40);
    l.panel(24, 8, by_severity);

    json!({
        "uid": UID,
        "title": "kube-devops",
        "description": "Governance scores, reconciliation, enforcement and admission of kube-devops.",
        "tags": ["kubernetes", "kube-devops"],
        "timezone": "browser",
        "editable": true,
        "graphTooltip": 1,
        "schemaVersion": 39,
        "version": 1,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "annotations": {"list": []},
        "links": [],
        "templating": {"list": [
            {"name": "datasource", "label": "Data source", "type": "datasource", "query": "prometheus",
             "hide": 0, "includeAll": false, "multi": false, "refresh": 1, "regex": "", "current": {}, "options": []},
            {"name": "namespace", "label": "Namespace", "type": "query",
             "datasource": {"type": "prometheus", "uid": DATASOURCE},
             "definition": "label_values(namespace_health_score, namespace)",
             "query": {"query": "label_values(namespace_health_score, namespace)", "refId": "namespaces"},
             "hide": 0, "includeAll": true, "allValue": ".*", "multi": true, "refresh": 2, "sort": 1,
             "regex": "", "current": {}, "options": []},
        ]},
        "panels": l.panels,
    })
}

/// The dashboard as the JSON file Grafana imports (pretty, ending in a newline).
pub fn dashboard_json() -> String {
    let mut json = serde_json::to_string_pretty(&dashboard()).expect("a JSON value serializes");
    json.push('\n');
    json
}

/// The ConfigMap the Grafana sidecar imports.
pub fn config_map() -> ConfigMap {
    let mut metadata = namespaced_meta(CONFIG_MAP, DASHBOARD_COMPONENT);
    metadata.labels.get_or_insert_with(Default::default).insert("grafana_dashboard".into(), "1".into());
    ConfigMap { metadata, data: Some(BTreeMap::from([(FILE.to_string(), dashboard_json())])), ..Default::default() }
}

/// Every PromQL expression of the dashboard's panels.
pub fn expressions(dashboard: &Value) -> Vec<String> {
    let panels = dashboard["panels"].as_array().into_iter().flatten();
    let targets = panels.flat_map(|p| p["targets"].as_array().into_iter().flatten());
    targets.filter_map(|t| t["expr"].as_str().map(String::from)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::catalog::METRICS;

    /// Whether `expr` queries the metric `name` (or a histogram's series of it), not another
    /// whose name it begins (`devopspolicy_violations` in `devopspolicy_violations_by_severity`).
    fn mentions(expr: &str, name: &str) -> bool {
        expr.match_indices(name).any(|(at, _)| {
            let rest = &expr[at + name.len()..];
            let rest = ["_bucket", "_sum", "_count"].iter().find_map(|s| rest.strip_prefix(s)).unwrap_or(rest);
            !rest.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
        })
    }

    #[test]
    fn every_exported_metric_has_a_panel() {
        let exprs = expressions(&dashboard());
        for metric in METRICS {
            assert!(exprs.iter().any(|e| mentions(e, metric.name)), "no panel shows {}", metric.name);
        }
    }

    /// Two replicas export each gauge: every panel takes one value per label set (but the
    /// leader gauge's, which sums the replicas on purpose: more than 1 is a split brain).
    #[test]
    fn gauges_are_deduplicated_across_replicas() {
        use crate::metrics::catalog::MetricKind;
        let exprs = expressions(&dashboard());
        assert!(exprs.contains(&format!("sum by (component) ({})", m::LEADER.0.name)));
        for metric in METRICS.iter().filter(|m| m.kind == MetricKind::Gauge && m.name != m::LEADER.0.name) {
            for expr in exprs.iter().filter(|e| mentions(e, metric.name)) {
                let deduplicated = format!("({metric_name}", metric_name = metric.name);
                let by_labels = format!(") ({}", metric.name);
                assert!(
                    expr.contains(&format!("max{deduplicated}"))
                        || expr.contains(&format!("max by ({}{by_labels}", metric.labels.join(", "))),
                    "{expr}"
                );
            }
        }
    }

    #[test]
    fn every_query_is_valid_promql() {
        let d = dashboard();
        let variable = d["templating"]["list"][1]["definition"].as_str().unwrap();
        assert!(variable.starts_with("label_values(namespace_health_score"), "{variable}");
        let exprs = expressions(&d);
        assert!(exprs.len() >= 18);
        for expr in exprs {
            // What Grafana substitutes before sending the query.
            let query = expr.replace("$__rate_interval", "1m").replace("$namespace", ".*");
            if let Err(e) = promql_parser::parser::parse(&query) {
                panic!("{expr}: {e}");
            }
        }
        assert!(promql_parser::parser::parse("sum(rate(x[5m])").is_err(), "the parser rejects bad PromQL");
    }

    #[test]
    fn panels_sit_on_the_grid_without_overlapping() {
        let d = dashboard();
        let panels = d["panels"].as_array().unwrap();
        let mut cells = std::collections::HashSet::new();
        for (i, p) in panels.iter().enumerate() {
            assert_eq!(p["id"], json!(i + 1));
            let g = &p["gridPos"];
            let (x, y, w, h) = (
                g["x"].as_u64().unwrap(),
                g["y"].as_u64().unwrap(),
                g["w"].as_u64().unwrap(),
                g["h"].as_u64().unwrap(),
            );
            assert!(x + w <= 24, "{}", p["title"]);
            for cx in x..x + w {
                for cy in y..y + h {
                    assert!(cells.insert((cx, cy)), "{} overlaps another panel", p["title"]);
                }
            }
            if p["type"] != "row" {
                assert_eq!(p["datasource"]["uid"], "${datasource}", "{}", p["title"]);
                assert!(!p["targets"].as_array().unwrap().is_empty());
            }
        }
    }

    #[test]
    fn health_scores_turn_red_when_low_not_when_high() {
        let d = dashboard();
        let stat = d["panels"].as_array().unwrap().iter().find(|p| p["title"] == "Cluster health score").unwrap();
        let steps = stat["fieldConfig"]["defaults"]["thresholds"]["steps"].as_array().unwrap();
        assert_eq!(steps[0]["color"], "red");
        assert_eq!(steps.last().unwrap(), &json!({"color": "green", "value": 80}));
    }

    #[test]
    fn the_config_map_is_picked_up_by_the_grafana_sidecar() {
        let cm = config_map();
        assert_eq!(cm.metadata.labels.unwrap()["grafana_dashboard"], "1");
        let json: Value = serde_json::from_str(&cm.data.unwrap()[FILE]).unwrap();
        assert_eq!(json["uid"], UID);
        assert_eq!(json["templating"]["list"][0]["type"], "datasource");
    }
}

//! Rendering a [`FleetReport`]: a table for people, JSON or YAML for machines.

use super::FleetReport;
use crate::audit::render::{OutputFormat, write_columns};
use crate::governance::Summary;
use std::fmt::Write;

pub fn render(report: &FleetReport, format: OutputFormat) -> String {
    format.render(report, table)
}

fn cells(first: String, s: &Summary) -> Vec<String> {
    vec![first, s.subjects.to_string(), s.violations.to_string(), s.score.to_string(), s.classification.to_string()]
}

fn table(report: &FleetReport) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Policy: {}\n", report.policy);
    let mut rows = vec![header("CLUSTER")];
    for cluster in &report.clusters {
        rows.push(cells(cluster.context.clone(), &cluster.summary));
    }
    rows.push(cells("TOTAL (pod-weighted)".into(), &report.aggregate));
    write_columns(&mut out, &rows);
    for cluster in report.clusters.iter().filter(|c| !c.namespaces.is_empty()) {
        let _ = writeln!(out, "\nCluster {}:", cluster.context);
        let by_policy = cluster.namespaces.iter().any(|n| n.policy.is_some());
        let mut rows = vec![header("NAMESPACE")];
        if by_policy {
            rows[0].push("POLICY".into());
        }
        for ns in &cluster.namespaces {
            let mut row = cells(ns.namespace.clone(), &ns.summary);
            if by_policy {
                row.push(ns.policy.clone().unwrap_or_default());
            }
            rows.push(row);
        }
        write_columns(&mut out, &rows);
    }
    let unpoliced: Vec<String> = report
        .clusters
        .iter()
        .filter_map(|c| c.pods_without_policy.filter(|n| *n > 0).map(|n| format!("{} {n}", c.context)))
        .collect();
    if !unpoliced.is_empty() {
        let _ = writeln!(out, "\nNot evaluated, in namespaces without a DevOpsPolicy: {}.", unpoliced.join(", "));
    }
    if !report.failed.is_empty() {
        let _ = writeln!(out, "\nNot read:");
        let rows: Vec<Vec<String>> = report
            .failed
            .iter()
            .map(|f| vec![f.context.clone(), f.failure.status.to_string(), f.failure.reason.clone()])
            .collect();
        write_columns(&mut out, &rows);
    }
    out
}

fn header(first: &str) -> Vec<String> {
    [first, "PODS", "VIOLATIONS", "SCORE", "CLASSIFICATION"].iter().map(|c| c.to_string()).collect()
}

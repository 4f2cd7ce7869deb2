//! Rendering an [`AuditReport`] as a table, JSON or YAML.

use super::report::AuditReport;
use k8s_openapi::jiff::Timestamp;
use std::collections::BTreeMap;
use std::fmt::Write;

/// Output formats of `audit` and `analyze`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Table,
    Json,
    Yaml,
}

/// Output formats of `audit` and `analyze`: the common ones, and PolicyReports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum AuditFormat {
    Table,
    Json,
    Yaml,
    /// wgpolicyk8s.io/v1alpha2 PolicyReports, one per namespace.
    Policyreport,
    /// One self-contained HTML page (the dashboard's, offline).
    Html,
}

/// Renders the report of the workloads from `source` (files, or the cluster); errors are not
/// part of the table (the CLI prints them to stderr).
pub fn render(report: &AuditReport, format: AuditFormat, source: &str) -> String {
    let common = match format {
        AuditFormat::Html => {
            let page = crate::dashboard::Page {
                title: "kube-devops report".into(),
                source: source.into(),
                generated: Timestamp::now(),
                report: report.clone(),
                policies: Vec::new(),
            };
            return crate::dashboard::html::render(&page);
        }
        AuditFormat::Table => OutputFormat::Table,
        AuditFormat::Json => OutputFormat::Json,
        AuditFormat::Yaml => OutputFormat::Yaml,
        AuditFormat::Policyreport => {
            let reports = report.policy_reports(Timestamp::now());
            return crate::yaml::to_yaml_stream(&reports).expect("a report always serializes");
        }
    };
    common.render(report, table)
}

impl OutputFormat {
    /// `report` as JSON or YAML, or as the table `table` draws.
    pub fn render<R: serde::Serialize>(self, report: &R, table: impl FnOnce(&R) -> String) -> String {
        match self {
            OutputFormat::Table => table(report),
            OutputFormat::Json => {
                let mut json = serde_json::to_string_pretty(report).expect("a report always serializes");
                json.push('\n');
                json
            }
            OutputFormat::Yaml => serde_saphyr::to_string(report).expect("a report always serializes"),
        }
    }
}

fn table(report: &AuditReport) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Policy: {}\n", report.policy);

    let mut rows = vec![row(["NAMESPACE", "WORKLOADS", "VIOLATIONS", "SCORE", "CLASSIFICATION"])];
    for ns in &report.namespaces {
        let s = &ns.summary;
        rows.push(vec![
            ns.namespace.clone(),
            s.subjects.to_string(),
            s.violations.to_string(),
            s.score.to_string(),
            s.classification.to_string(),
        ]);
    }
    let s = &report.summary;
    rows.push(vec![
        "TOTAL".into(),
        s.subjects.to_string(),
        s.violations.to_string(),
        s.score.to_string(),
        s.classification.to_string(),
    ]);
    write_columns(&mut out, &rows);
    let _ = writeln!(
        out,
        "\nViolations by severity: critical {}, high {}, medium {}, low {}",
        s.by_severity.critical, s.by_severity.high, s.by_severity.medium, s.by_severity.low
    );

    let mut violations = vec![row(["NAMESPACE", "WORKLOAD", "CONTAINER", "CHECK", "SEVERITY", "MESSAGE"])];
    for ns in &report.namespaces {
        for w in &ns.workloads {
            for v in &w.violations {
                violations.push(vec![
                    ns.namespace.clone(),
                    format!("{}/{}", w.kind, w.name),
                    v.container.clone().unwrap_or_else(|| "-".into()),
                    v.check.to_string(),
                    v.severity.to_string(),
                    v.message.clone(),
                ]);
            }
        }
    }
    if violations.len() > 1 {
        out.push('\n');
        write_columns(&mut out, &violations);
    }

    let mut skipped = Vec::new();
    if report.skipped_system_workloads > 0 {
        skipped.push(format!("{} workload(s) in system namespaces", report.skipped_system_workloads));
    }
    if !report.other_objects.is_empty() {
        let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
        for o in &report.other_objects {
            *kinds.entry(o.kind.as_str()).or_default() += 1;
        }
        let kinds: Vec<String> = kinds.iter().map(|(k, n)| format!("{k} {n}")).collect();
        skipped.push(format!("{} object(s) that run no pods ({})", report.other_objects.len(), kinds.join(", ")));
    }
    if !skipped.is_empty() {
        let _ = writeln!(out, "\nNot evaluated: {}.", skipped.join("; "));
    }
    out
}

fn row<const N: usize>(cells: [&str; N]) -> Vec<String> {
    cells.iter().map(|c| c.to_string()).collect()
}

/// Left-aligned columns separated by two spaces; the last column is not padded.
pub(crate) fn write_columns(out: &mut String, rows: &[Vec<String>]) {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|i| rows.iter().filter_map(|r| r.get(i)).map(|c| c.chars().count()).max().unwrap_or(0))
        .collect();
    for r in rows {
        let mut line = String::new();
        for (i, cell) in r.iter().enumerate() {
            if i + 1 == r.len() {
                line.push_str(cell);
            } else {
                let _ = write!(line, "{cell:<width$}  ", width = widths[i]);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
}

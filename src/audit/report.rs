//! An audit report: workloads evaluated against one policy, scored per namespace and overall.

use super::input::{InputError, OtherObject, SourcedWorkload};
use crate::api::policy_report::{Failure, Outcomes, PolicyReport, ResourceRef};
use crate::governance::{CheckId, Rules, Severity, Summary, assess};
use k8s_openapi::jiff::Timestamp;
use serde::Serialize;
use std::collections::BTreeMap;

/// The policy an audit applies, for people (`label`) and reports (`name`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicySource {
    pub label: String,
    pub name: String,
}

impl PolicySource {
    /// A built-in bundle.
    pub fn bundle(name: crate::api::bundles::BundleName) -> Self {
        PolicySource { label: format!("bundle {name}"), name: name.as_str().to_string() }
    }
}

/// The result of an audit, as `--output json|yaml` prints it.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditReport {
    /// Which policy was applied (e.g. `bundle baseline`, `policy.yaml`).
    pub policy: String,
    /// Its name: the bundle's or the DevOpsPolicy's (the `policy` of PolicyReport results).
    pub policy_name: String,
    /// The checks it turns on.
    pub checks: Vec<CheckId>,
    #[serde(flatten)]
    pub summary: Summary,
    pub namespaces: Vec<NamespaceReport>,
    /// Workloads not evaluated because they live in system namespaces.
    pub skipped_system_workloads: u32,
    /// Objects read that run no pods.
    pub other_objects: Vec<OtherObject>,
    pub errors: Vec<InputError>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NamespaceReport {
    pub namespace: String,
    #[serde(flatten)]
    pub summary: Summary,
    pub workloads: Vec<WorkloadReport>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadReport {
    pub kind: String,
    pub name: String,
    pub source: String,
    pub violations: Vec<Violation>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Violation {
    pub check: CheckId,
    pub severity: Severity,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    pub message: String,
}

impl AuditReport {
    /// Evaluates every workload against `rules` and scores them by namespace.
    pub fn build(policy: PolicySource, rules: &Rules, workloads: &[SourcedWorkload], now: Timestamp) -> AuditReport {
        let mut reports: BTreeMap<String, Vec<WorkloadReport>> = BTreeMap::new();
        let assessment = assess(workloads, rules, now, SourcedWorkload::subject, |item, namespace, findings| {
            reports.entry(namespace.to_string()).or_default().push(WorkloadReport {
                kind: item.workload.kind.to_string(),
                name: item.workload.name.clone(),
                source: item.source.clone(),
                violations: findings
                    .iter()
                    .map(|f| Violation {
                        check: f.check,
                        severity: f.severity,
                        container: f.container.map(str::to_string),
                        message: f.message(),
                    })
                    .collect(),
            });
        });
        let namespaces = assessment
            .namespaces
            .iter()
            .map(|(namespace, tally)| NamespaceReport {
                namespace: namespace.clone(),
                summary: tally.summary(),
                workloads: reports.remove(namespace).unwrap_or_default(),
            })
            .collect();
        AuditReport {
            policy: policy.label,
            policy_name: policy.name,
            checks: rules.checks().collect(),
            summary: assessment.total().summary(),
            namespaces,
            skipped_system_workloads: assessment.skipped_system,
            other_objects: Vec::new(),
            errors: Vec::new(),
        }
    }
}

impl AuditReport {
    /// The report as one PolicyReport per namespace, its results found at `now`: a failure
    /// per violation, about the workload, and a pass per (workload, enabled check) without one.
    pub fn policy_reports(&self, now: Timestamp) -> Vec<PolicyReport> {
        let enabled = self.checks.len() as u64;
        self.namespaces
            .iter()
            .map(|ns| {
                let failures = ns
                    .workloads
                    .iter()
                    .flat_map(|w| {
                        let resource = ResourceRef::new(&w.kind, &w.name, &ns.namespace);
                        w.violations.iter().map(move |v| Failure {
                            policy: self.policy_name.clone(),
                            check: v.check,
                            severity: v.severity,
                            container: v.container.clone(),
                            message: v.message.clone(),
                            resource: resource.clone(),
                        })
                    })
                    .collect();
                let outcomes = Outcomes::new(failures, ns.workloads.len() as u64, enabled);
                PolicyReport::build(&ns.namespace, [&outcomes]).stamped(now)
            })
            .collect()
    }
}

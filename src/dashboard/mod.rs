//! The governance picture as one web page: the offline report (`audit ... -o html`, one
//! self-contained file) and the live dashboard (`kube-devops dashboard`, the same page from the
//! cluster, built again on every load). [`Page`] is what the page shows; [`html::render`]
//! draws it (pure); [`server`] serves it from the cluster.

pub mod html;
pub mod server;

use crate::api::policy::EnforcementMode;
use crate::api::{DevOpsPolicy, PolicyAuditResult};
use crate::audit::report::AuditReport;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;

/// Everything the page shows.
#[derive(Clone, Debug)]
pub struct Page {
    /// `kube-devops report` or `kube-devops dashboard`.
    pub title: String,
    /// Where the workloads came from (files, or the cluster).
    pub source: String,
    pub generated: Timestamp,
    pub report: AuditReport,
    /// The DevOpsPolicies (the live dashboard; none offline).
    pub policies: Vec<PolicyView>,
}

/// One DevOpsPolicy as the page lists it.
#[derive(Clone, Debug, PartialEq)]
pub struct PolicyView {
    pub namespace: String,
    pub name: String,
    /// `audit` or `enforce`.
    pub mode: String,
    pub score: Option<u32>,
    pub classification: Option<String>,
    pub violations: Option<u32>,
    pub message: Option<String>,
    /// Scores of its recent PolicyAuditResults, oldest first.
    pub history: Vec<u32>,
}

/// How many audit results of a policy its trend shows.
pub const HISTORY: usize = 20;

impl PolicyView {
    /// `policy` with the scores of its audit results among `results` (its own, by owner name
    /// and namespace), oldest first, at most [`HISTORY`].
    pub fn of(policy: &DevOpsPolicy, results: &[PolicyAuditResult]) -> PolicyView {
        let namespace = policy.namespace().unwrap_or_default();
        let name = policy.name_any();
        let mut own: Vec<&PolicyAuditResult> = results
            .iter()
            .filter(|r| r.namespace().as_deref() == Some(namespace.as_str()) && r.spec.policy_name == name)
            .collect();
        own.sort_by(|a, b| a.spec.timestamp.cmp(&b.spec.timestamp));
        let skip = own.len().saturating_sub(HISTORY);
        let status = policy.status.as_ref();
        PolicyView {
            mode: match policy.spec.enforcement_mode.unwrap_or_default() {
                EnforcementMode::Audit => "audit".into(),
                EnforcementMode::Enforce => "enforce".into(),
            },
            score: status.and_then(|s| s.health_score),
            classification: status.and_then(|s| s.classification).map(|c| c.to_string()),
            violations: status.and_then(|s| s.violations),
            message: status.and_then(|s| s.message.clone()),
            history: own.iter().skip(skip).map(|r| r.spec.health_score).collect(),
            namespace,
            name,
        }
    }
}

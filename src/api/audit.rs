//! `PolicyAuditResult` (devops.stochastic.io/v1): one evaluation snapshot of a policy.

// kube's `printcolumn(...)` attributes repeat keys by design; clippy reads them as duplicates.
#![allow(clippy::duplicated_attributes)]

use crate::governance::{Classification, Finding, Severity, Tally};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// At most this many violations are stored in one result; the rest are only counted in
/// `truncatedViolations`, so that a result stays far below the API server's object size limit
/// (about 200 bytes each: 100 violations are ~20 KiB of the 1.5 MiB limit).
pub const MAX_AUDIT_VIOLATIONS: usize = 100;

/// A snapshot of one evaluation of a DevOpsPolicy: score, counts and the first violations.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "devops.stochastic.io",
    version = "v1",
    kind = "PolicyAuditResult",
    plural = "policyauditresults",
    singular = "policyauditresult",
    namespaced,
    shortname = "par",
    shortname = "audits",
    category = "kube-devops",
    derive = "PartialEq",
    doc = "A snapshot of one evaluation of a DevOpsPolicy: when, the score and classification, the counts by severity, and a bounded list of violations.",
    printcolumn(
        name = "Policy",
        type_ = "string",
        json_path = ".spec.policyName",
        description = "The DevOpsPolicy that was evaluated"
    ),
    printcolumn(
        name = "Score",
        type_ = "integer",
        json_path = ".spec.healthScore",
        description = "Health score 0-100"
    ),
    printcolumn(
        name = "Class",
        type_ = "string",
        json_path = ".spec.classification",
        description = "Healthy, Stable, Degraded or Critical"
    ),
    printcolumn(name = "Pods", type_ = "integer", json_path = ".spec.totalPods", description = "Pods evaluated"),
    printcolumn(
        name = "Violations",
        type_ = "integer",
        json_path = ".spec.totalViolations",
        description = "Violations found"
    ),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
pub struct PolicyAuditResultSpec {
    /// Name of the DevOpsPolicy (in the same namespace) that was evaluated.
    pub policy_name: String,
    /// Name of the cluster the evaluation ran in, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_name: Option<String>,
    /// When the evaluation ran (RFC 3339).
    pub timestamp: String,
    /// Health score 0-100.
    #[schemars(range(min = 0, max = 100))]
    pub health_score: u32,
    /// Healthy (score ≥ 80), Stable (≥ 60), Degraded (≥ 40) or Critical.
    pub classification: Classification,
    /// Number of pods evaluated.
    pub total_pods: u32,
    /// Number of violations found (all of them, including those not listed).
    pub total_violations: u32,
    /// Number of violations by severity.
    #[serde(default)]
    pub violations_by_severity: SeverityCounts,
    /// The first violations found, at most 100; see truncatedViolations for the rest.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 100))]
    pub violations: Vec<AuditViolation>,
    /// How many violations were left out of the list to bound the object's size.
    #[serde(default)]
    pub truncated_violations: u32,
}

/// Number of violations of each severity.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SeverityCounts {
    /// Critical violations.
    #[serde(default)]
    pub critical: u32,
    /// High violations.
    #[serde(default)]
    pub high: u32,
    /// Medium violations.
    #[serde(default)]
    pub medium: u32,
    /// Low violations.
    #[serde(default)]
    pub low: u32,
}

/// One violation found by the evaluation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditViolation {
    /// The pod (or `Kind/name` of the workload) that violates the policy.
    pub pod_name: String,
    /// The container concerned; empty for pod-level checks such as pending.
    pub container_name: String,
    /// Check id: latest_tag, missing_liveness, missing_readiness, missing_resources, high_restarts or pending.
    pub violation_type: String,
    /// Severity of the violation under the policy.
    pub severity: Severity,
    /// Human-readable description.
    pub message: String,
}

impl PolicyAuditResultSpec {
    /// A snapshot of one evaluation: the counts come from `tally`, and the list keeps the first
    /// [`MAX_AUDIT_VIOLATIONS`] of `violations`, counting the rest in `truncatedViolations`.
    pub fn from_evaluation(
        policy_name: &str,
        timestamp: String,
        tally: &Tally,
        violations: impl IntoIterator<Item = AuditViolation>,
    ) -> Self {
        let mut listed = Vec::new();
        let mut truncated = 0u32;
        for violation in violations {
            if listed.len() < MAX_AUDIT_VIOLATIONS {
                listed.push(violation);
            } else {
                truncated += 1;
            }
        }
        let summary = tally.summary();
        PolicyAuditResultSpec {
            policy_name: policy_name.to_string(),
            cluster_name: None,
            timestamp,
            health_score: summary.score,
            classification: summary.classification,
            total_pods: summary.subjects,
            total_violations: summary.violations,
            violations_by_severity: summary.by_severity,
            violations: listed,
            truncated_violations: truncated,
        }
    }
}

impl AuditViolation {
    /// The stored form of a finding about `pod_name`.
    pub fn from_finding(pod_name: &str, finding: &Finding<'_>) -> Self {
        AuditViolation {
            pod_name: pod_name.to_string(),
            container_name: finding.container.unwrap_or_default().to_string(),
            violation_type: finding.check.as_str().to_string(),
            severity: finding.severity,
            message: finding.message(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::governance::{Detail, Severity};

    #[test]
    fn a_large_evaluation_is_bounded_and_counts_what_was_cut() {
        let finding = Finding {
            check: crate::governance::CheckId::LatestTag,
            severity: Severity::High,
            container: Some("web"),
            detail: Detail::LatestTag { image: "nginx:latest", explicit: true },
        };
        let mut tally = Tally::default();
        let mut violations = Vec::new();
        for i in 0..250 {
            tally.add(&[finding]);
            violations.push(AuditViolation::from_finding(&format!("web-{i}"), &finding));
        }
        let spec =
            PolicyAuditResultSpec::from_evaluation("baseline", "2026-11-26T12:00:00Z".into(), &tally, violations);
        assert_eq!(spec.violations.len(), MAX_AUDIT_VIOLATIONS);
        assert_eq!(spec.truncated_violations, 150);
        assert_eq!(spec.total_violations, 250);
        assert_eq!(spec.total_pods, 250);
        assert_eq!(spec.violations_by_severity, SeverityCounts { high: 250, ..Default::default() });
        assert_eq!((spec.health_score, spec.classification), (95, Classification::Healthy));
        assert_eq!(spec.violations[0].message, "container 'web' uses :latest tag");
        assert_eq!(spec.violations[0].violation_type, "latest_tag");
        // Even at the cap the object stays far below the API server's 1.5 MiB limit.
        let size = serde_json::to_vec(&PolicyAuditResult::new("baseline-1", spec)).unwrap().len();
        assert!(size < 64 * 1024, "{size} bytes");
    }
}

//! `PolicyAuditResult` (devops.stochastic.io/v1): one evaluation snapshot of a policy.

// kube's `printcolumn(...)` attributes repeat keys by design; clippy reads them as duplicates.
#![allow(clippy::duplicated_attributes)]

use super::{CheckId, Classification, Severity};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
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
    /// When the evaluation ran.
    pub timestamp: Time,
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
    /// The check violated: its stable id, e.g. latest_tag. A plain string in the schema, so a
    /// newer kube-devops can record checks an older CRD does not list (Helm never upgrades
    /// CRDs).
    #[schemars(with = "String")]
    pub violation_type: CheckId,
    /// Severity of the violation under the policy.
    pub severity: Severity,
    /// Human-readable description.
    pub message: String,
}

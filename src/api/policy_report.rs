//! `wgpolicyk8s.io/v1alpha2` PolicyReport: the report format of the Kubernetes Policy WG that
//! Policy Reporter, Kyverno and other tools read. kube-devops writes one per namespace (`audit
//! -o policyreport` prints them; the reconcile operator can keep them in the cluster). Only
//! the fields kube-devops fills are modelled; the CRD is not ours (it comes with Kyverno or
//! Policy Reporter), so these types are not a CRD of this crate.

use super::{CheckId, Severity};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::jiff::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const API_VERSION: &str = "wgpolicyk8s.io/v1alpha2";
pub const KIND: &str = "PolicyReport";
/// The CRD that serves it, for the bootstrap operator's check.
pub const CRD_NAME: &str = "policyreports.wgpolicyk8s.io";
/// `source` of every result: the engine that produced it.
pub const SOURCE: &str = "kube-devops";
/// The name of kube-devops' report in each namespace.
pub const REPORT_NAME: &str = "kube-devops";
/// Results listed per report at most: an object stays far below etcd's 1.5 MiB limit (a result
/// is ~500 bytes); the summary still counts every failure.
pub const MAX_RESULTS: usize = 1000;

/// One PolicyReport: the results of one namespace.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyReport {
    pub api_version: String,
    pub kind: String,
    pub metadata: ObjectMeta,
    pub summary: ReportSummary,
    #[serde(default)]
    pub results: Vec<ReportResult>,
}

/// Counts of (resource, rule) outcomes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportSummary {
    pub pass: u64,
    pub fail: u64,
    pub warn: u64,
    pub error: u64,
    pub skip: u64,
}

/// One failed check of one resource.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportResult {
    /// The DevOpsPolicy (or bundle) that asked for the check.
    pub policy: String,
    /// The check's id.
    pub rule: CheckId,
    /// Always `fail`: passes are counted in the summary, not listed.
    pub result: String,
    pub scored: bool,
    pub severity: Severity,
    pub category: String,
    pub message: String,
    pub source: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<ResultTimestamp>,
    pub resources: Vec<ResourceRef>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub properties: BTreeMap<String, String>,
}

/// A protobuf Timestamp, as the report's schema has it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResultTimestamp {
    pub seconds: i64,
    pub nanos: i32,
}

impl From<Timestamp> for ResultTimestamp {
    fn from(t: Timestamp) -> Self {
        ResultTimestamp { seconds: t.as_second(), nanos: t.subsec_nanosecond() }
    }
}

/// The resource a result is about.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceRef {
    pub api_version: String,
    pub kind: String,
    pub name: String,
    pub namespace: String,
}

impl ResourceRef {
    /// A reference to `kind/name` in `namespace`, with the API version of the built-in kinds
    /// kube-devops evaluates (`v1` for anything else, which it never is).
    pub fn new(kind: &str, name: &str, namespace: &str) -> Self {
        let api_version = match kind {
            "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" => "apps/v1",
            "Job" | "CronJob" => "batch/v1",
            _ => "v1",
        };
        ResourceRef {
            api_version: api_version.into(),
            kind: kind.into(),
            name: name.into(),
            namespace: namespace.into(),
        }
    }
}

/// A failure to report, before it is placed in a namespace's report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub policy: String,
    pub check: CheckId,
    pub severity: Severity,
    pub container: Option<String>,
    pub message: String,
    pub resource: ResourceRef,
}

/// The outcomes of one policy (or bundle) over one namespace: the first [`MAX_RESULTS`] of
/// its failures in report order (no report lists more: the reconcile operator keeps these for
/// every policy, so a 50,000-pod namespace costs no more than a small one), how many failed
/// in all, and how many (resource, enabled check) pairs passed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outcomes {
    pub failures: Vec<Failure>,
    pub failed: u64,
    pub passed: u64,
}

impl Outcomes {
    /// Outcomes of `subjects` resources judged by `enabled` checks, `failures` among them:
    /// every (resource, check) pair without a failure passed.
    pub fn new(mut failures: Vec<Failure>, subjects: u64, enabled: u64) -> Self {
        let failed_pairs: std::collections::HashSet<(&ResourceRef, CheckId)> =
            failures.iter().map(|f| (&f.resource, f.check)).collect();
        let passed = (subjects * enabled).saturating_sub(failed_pairs.len() as u64);
        let failed = failures.len() as u64;
        failures.sort_by(report_order);
        failures.truncate(MAX_RESULTS);
        failures.shrink_to_fit();
        Outcomes { failures, failed, passed }
    }
}

/// Results sorted by policy, resource, check and container: the same findings make the same
/// report.
fn report_order(a: &Failure, b: &Failure) -> std::cmp::Ordering {
    (&a.policy, &a.resource, a.check, &a.container).cmp(&(&b.policy, &b.resource, b.check, &b.container))
}

impl PolicyReport {
    /// The report of `namespace` from the outcomes of every policy there, without timestamps
    /// (so two reports compare by content; [`PolicyReport::stamped`] adds them). Results are
    /// sorted (policy, resource, check, container) so that the same findings make the same
    /// report, and listed up to [`MAX_RESULTS`].
    pub fn build<'a>(namespace: &str, outcomes: impl IntoIterator<Item = &'a Outcomes>) -> PolicyReport {
        let mut summary = ReportSummary::default();
        let mut failures: Vec<&Failure> = Vec::new();
        for o in outcomes {
            summary.pass += o.passed;
            summary.fail += o.failed;
            failures.extend(&o.failures);
        }
        // Each policy's first MAX_RESULTS are kept, and the order starts with the policy: the
        // first MAX_RESULTS of them all are among these.
        failures.sort_by(|a, b| report_order(a, b));
        let results = failures.into_iter().take(MAX_RESULTS).map(result).collect();
        PolicyReport {
            api_version: API_VERSION.into(),
            kind: KIND.into(),
            metadata: ObjectMeta {
                name: Some(REPORT_NAME.into()),
                namespace: Some(namespace.into()),
                labels: Some(BTreeMap::from([(
                    "app.kubernetes.io/managed-by".to_string(),
                    crate::labels::APP.to_string(),
                )])),
                ..Default::default()
            },
            summary,
            results,
        }
    }

    /// The report owned by `owners` (its DevOpsPolicies: garbage-collected with the last).
    pub fn owned_by(mut self, owners: Vec<OwnerReference>) -> Self {
        self.metadata.owner_references = Some(owners).filter(|o| !o.is_empty());
        self
    }

    /// The report with its results found at `now`.
    pub fn stamped(mut self, now: Timestamp) -> Self {
        self.results.iter_mut().for_each(|r| r.timestamp = Some(now.into()));
        self
    }
}

fn result(failure: &Failure) -> ReportResult {
    let mut properties = BTreeMap::new();
    if let Some(container) = &failure.container {
        properties.insert("container".to_string(), container.clone());
    }
    properties.insert("fix".to_string(), failure.check.fix().to_string());
    ReportResult {
        policy: failure.policy.clone(),
        rule: failure.check,
        result: "fail".into(),
        scored: true,
        severity: failure.severity,
        category: failure.check.category().as_str().to_string(),
        message: failure.message.clone(),
        source: SOURCE.into(),
        timestamp: None,
        resources: vec![failure.resource.clone()],
        properties,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(policy: &str, pod: &str, check: CheckId) -> Failure {
        Failure {
            policy: policy.into(),
            check,
            severity: check.default_severity(),
            container: Some("app".into()),
            message: format!("{check} in {pod}"),
            resource: ResourceRef::new("Pod", pod, "shop"),
        }
    }

    #[test]
    fn a_report_counts_every_pass_and_failure_and_lists_failures_in_a_stable_order() {
        let strict = Outcomes::new(
            vec![failure("strict", "web", CheckId::MissingLiveness), failure("strict", "api", CheckId::LatestTag)],
            3,
            2,
        );
        let lax = Outcomes::new(vec![failure("lax", "web", CheckId::Privileged)], 3, 1);
        let at: Timestamp = "2026-12-02T10:00:00.5Z".parse().unwrap();
        let report = PolicyReport::build("shop", [&strict, &lax]).stamped(at);
        assert_eq!(report.summary, ReportSummary { pass: 4 + 2, fail: 3, ..Default::default() });
        let order: Vec<(&str, &str)> =
            report.results.iter().map(|r| (r.policy.as_str(), r.resources[0].name.as_str())).collect();
        assert_eq!(order, [("lax", "web"), ("strict", "api"), ("strict", "web")]);
        let json = serde_json::to_value(&report.results[0]).unwrap();
        assert_eq!(json["rule"], "privileged");
        assert_eq!(json["result"], "fail");
        assert_eq!(json["severity"], "critical");
        assert_eq!(json["category"], "Security");
        assert_eq!(json["timestamp"], serde_json::json!({"seconds": at.as_second(), "nanos": 500_000_000}));
        assert_eq!(
            json["resources"][0],
            serde_json::json!({"apiVersion": "v1", "kind": "Pod", "name": "web", "namespace": "shop"})
        );
        assert_eq!(json["properties"]["container"], "app");
        assert_eq!(report.metadata.name.as_deref(), Some(REPORT_NAME));
    }

    #[test]
    fn two_failures_of_one_check_in_one_resource_are_one_failed_pair() {
        let mut two = failure("p", "web", CheckId::MissingLiveness);
        two.container = Some("sidecar".into());
        let outcomes = Outcomes::new(vec![failure("p", "web", CheckId::MissingLiveness), two], 1, 3);
        assert_eq!(outcomes.passed, 2);
    }

    #[test]
    fn results_are_capped_but_counted() {
        let failures = (0..MAX_RESULTS + 5).map(|i| failure("p", &format!("pod-{i:04}"), CheckId::LatestTag)).collect();
        let outcomes = Outcomes::new(failures, 2000, 1);
        assert_eq!((outcomes.failures.len(), outcomes.failed), (MAX_RESULTS, (MAX_RESULTS + 5) as u64), "bounded");
        let report = PolicyReport::build("shop", [&outcomes]);
        assert_eq!(report.results.len(), MAX_RESULTS);
        assert_eq!(report.results.last().unwrap().resources[0].name, "pod-0999", "the first in report order");
        assert_eq!(report.summary.fail, (MAX_RESULTS + 5) as u64);
        assert_eq!(report.summary.pass, 2000 - (MAX_RESULTS + 5) as u64);
    }

    #[test]
    fn timestamps_do_not_make_two_reports_differ() {
        let outcomes = Outcomes::new(vec![failure("p", "web", CheckId::LatestTag)], 1, 1);
        let (a, b) = (PolicyReport::build("shop", [&outcomes]), PolicyReport::build("shop", [&outcomes]));
        assert_eq!(a, b);
        assert_eq!(a.results[0].timestamp, None);
        let stamped = b.stamped(Timestamp::UNIX_EPOCH);
        assert_ne!(a, stamped);
        assert_eq!(stamped.results[0].timestamp, Some(ResultTimestamp { seconds: 0, nanos: 0 }));
    }
}

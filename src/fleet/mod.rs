//! Fleets, pure: scoring one cluster's pods (against a bundle, or against each namespace's own
//! DevOpsPolicies), folding clusters into one report with the pod-weighted aggregate, saying
//! why a cluster could not be read, and the exit code. The shell that reaches the clusters
//! (contexts, timeouts, concurrency) is `cli/fleet.rs`.

pub mod render;

use crate::api::DevOpsPolicy;
use crate::governance::{Rules, Summary, Tally, assess, is_system_namespace};
use crate::workload::Workload;
use k8s_openapi::jiff::Timestamp;
use serde::Serialize;
use std::collections::BTreeMap;

/// What a cluster's pods are judged by.
pub enum Judge<'a> {
    /// One policy for every namespace (`--bundle`, or the default bundle).
    Rules(&'a Rules),
    /// The cluster's own DevOpsPolicies, each for its namespace (`--use-cluster-policies`).
    ClusterPolicies(&'a [DevOpsPolicy]),
}

/// A namespace's tally, and the policy that scored it (with the cluster's own policies).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NamespaceTally {
    pub tally: Tally,
    pub policy: Option<String>,
}

/// What one cluster's pods scored.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClusterTally {
    pub namespaces: BTreeMap<String, NamespaceTally>,
    /// Pods not evaluated for living in a system namespace.
    pub skipped_system: u32,
    /// Pods not evaluated for living in a namespace without a DevOpsPolicy (cluster policies).
    pub without_policy: Option<u32>,
}

/// Scores a cluster's pods, as `analyze` does. With the cluster's own policies, a namespace
/// with several is scored by the one it fares worst under (admission needs every one of them
/// to pass), and its pods count once.
pub fn assess_cluster(pods: &[Workload], judge: &Judge<'_>, now: Timestamp) -> ClusterTally {
    let rules = match judge {
        Judge::Rules(rules) => rules,
        Judge::ClusterPolicies(policies) => return assess_with_policies(pods, policies, now),
    };
    let assessment = assess(pods, rules, now, |w| Some((w.namespace_or_default(), &w.facts)), |_, _, _| {});
    ClusterTally {
        namespaces: assessment
            .namespaces
            .into_iter()
            .map(|(namespace, tally)| (namespace, NamespaceTally { tally, policy: None }))
            .collect(),
        skipped_system: assessment.skipped_system,
        without_policy: None,
    }
}

fn assess_with_policies(pods: &[Workload], policies: &[DevOpsPolicy], now: Timestamp) -> ClusterTally {
    let mut by_namespace: BTreeMap<&str, Vec<&Workload>> = BTreeMap::new();
    for pod in pods {
        by_namespace.entry(pod.namespace_or_default()).or_default().push(pod);
    }
    let mut rules: BTreeMap<&str, Vec<(&str, Rules)>> = BTreeMap::new();
    for policy in policies {
        let (Some(namespace), Some(name)) = (policy.metadata.namespace.as_deref(), policy.metadata.name.as_deref())
        else {
            continue;
        };
        rules.entry(namespace).or_default().push((name, Rules::from_spec(&policy.spec)));
    }
    rules.values_mut().for_each(|list| list.sort_by(|a, b| a.0.cmp(b.0)));
    let mut cluster = ClusterTally { without_policy: Some(0), ..ClusterTally::default() };
    for (namespace, pods) in by_namespace {
        if is_system_namespace(namespace) {
            cluster.skipped_system += pods.len() as u32;
            continue;
        }
        let Some(policies) = rules.get(namespace) else {
            *cluster.without_policy.get_or_insert(0) += pods.len() as u32;
            continue;
        };
        for (name, rules) in policies {
            let assessment = assess(pods.iter().copied(), rules, now, |w| Some((namespace, &w.facts)), |_, _, _| {});
            let tally = assessment.namespace(namespace);
            let worse = cluster.namespaces.get(namespace).is_none_or(|t| tally.score() < t.tally.score());
            if worse {
                cluster
                    .namespaces
                    .insert(namespace.to_string(), NamespaceTally { tally, policy: Some(name.to_string()) });
            }
        }
    }
    cluster
}

/// How a cluster answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Reachability {
    Reachable,
    /// The API server refused the credentials (401) or the request (403).
    Unauthorised,
    /// No answer: refused or timed-out connections, TLS failures.
    Unreachable,
    /// An answer that was an error (a 5xx, a bad kubeconfig entry).
    Error,
}

impl std::fmt::Display for Reachability {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Reachability::Reachable => "reachable",
            Reachability::Unauthorised => "unauthorised",
            Reachability::Unreachable => "unreachable",
            Reachability::Error => "error",
        })
    }
}

/// Why a cluster could not be read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Failure {
    pub status: Reachability,
    pub reason: String,
}

impl Failure {
    /// What a failed request says about the cluster.
    pub fn of(error: &kube::Error) -> Failure {
        match error {
            kube::Error::Api(status) => {
                let what =
                    if matches!(status.code, 401 | 403) { Reachability::Unauthorised } else { Reachability::Error };
                Failure { status: what, reason: format!("{} (HTTP {})", status.message, status.code) }
            }
            other => Failure { status: Reachability::Unreachable, reason: chain(other) },
        }
    }

    pub fn timed_out(after: std::time::Duration) -> Failure {
        Failure { status: Reachability::Unreachable, reason: format!("no answer within {after:?}") }
    }
}

/// An error with its causes (`ServiceError: client error (Connect): tcp connect error: ...`).
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// A namespace's scores in the fleet report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NamespaceReport {
    pub namespace: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    #[serde(flatten)]
    pub summary: Summary,
}

/// A cluster that was read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterReport {
    pub context: String,
    #[serde(flatten)]
    pub summary: Summary,
    pub skipped_system_workloads: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pods_without_policy: Option<u32>,
    /// Only with `--per-cluster`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub namespaces: Vec<NamespaceReport>,
}

/// A cluster that was not.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FailedCluster {
    pub context: String,
    #[serde(flatten)]
    pub failure: Failure,
}

/// `multi-cluster analyze`'s report: the pod-weighted aggregate, each cluster, the failures.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FleetReport {
    pub policy: String,
    /// Every pod of every cluster read, scored together: each pod weighs the same, whichever
    /// cluster it runs in (a cluster of 1,000 pods moves the score more than one of 10).
    pub aggregate: Summary,
    pub clusters: Vec<ClusterReport>,
    pub failed: Vec<FailedCluster>,
}

/// Folds the clusters' outcomes into the report (clusters in context order).
pub fn report(
    policy: String,
    outcomes: Vec<(String, Result<ClusterTally, Failure>)>,
    per_cluster: bool,
) -> FleetReport {
    let mut aggregate = Tally::default();
    let mut clusters = Vec::new();
    let mut failed = Vec::new();
    for (context, outcome) in outcomes {
        match outcome {
            Ok(cluster) => {
                let mut total = Tally::default();
                cluster.namespaces.values().for_each(|ns| total.merge(&ns.tally));
                aggregate.merge(&total);
                let namespaces = if per_cluster {
                    cluster
                        .namespaces
                        .iter()
                        .map(|(namespace, ns)| NamespaceReport {
                            namespace: namespace.clone(),
                            policy: ns.policy.clone(),
                            summary: ns.tally.summary(),
                        })
                        .collect()
                } else {
                    Vec::new()
                };
                clusters.push(ClusterReport {
                    context,
                    summary: total.summary(),
                    skipped_system_workloads: cluster.skipped_system,
                    pods_without_policy: cluster.without_policy,
                    namespaces,
                });
            }
            Err(failure) => failed.push(FailedCluster { context, failure }),
        }
    }
    clusters.sort_by(|a, b| a.context.cmp(&b.context));
    failed.sort_by(|a, b| a.context.cmp(&b.context));
    FleetReport { policy, aggregate: aggregate.summary(), clusters, failed }
}

/// 2 when no cluster could be read (with `require_all`, when any could not); 1 when the
/// aggregate is under `fail_below`; else 0. Without `require_all` a cluster that failed among
/// others that were read is reported, and does not decide the code.
pub fn exit_code(report: &FleetReport, fail_below: Option<u32>, require_all: bool) -> u8 {
    use crate::cli::exit;
    if report.clusters.is_empty() || (require_all && !report.failed.is_empty()) {
        return exit::ERROR;
    }
    match fail_below {
        Some(threshold) if report.aggregate.score < threshold => exit::BELOW_THRESHOLD,
        _ => exit::OK,
    }
}

#[cfg(test)]
mod tests;

//! The reconcile operator (`kube-devops reconcile`): evaluates every DevOpsPolicy against the
//! pods of its namespace, writes the policy's status, keeps an audit history of
//! PolicyAuditResults and exports per-policy metrics. This module is the pure part;
//! [`controller`] is the shell.
//!
//! A new PolicyAuditResult is written when an evaluation differs from the last one recorded
//! (score, pods, violations), not on every periodic re-evaluation, so the history shows
//! changes rather than ten copies of the last ten minutes.

pub mod controller;
pub mod enforce;
pub mod owned;
pub mod remediation;
pub mod reports;

use crate::api::condition::condition;
use crate::api::policy_report::{Failure, Outcomes, ResourceRef};
use crate::api::{
    AuditViolation, Classification, DevOpsPolicy, DevOpsPolicyStatus, MAX_AUDIT_VIOLATIONS, PolicyAuditResult,
    PolicyAuditResultSpec,
};
use crate::governance::{Finding, PodFacts, Rules, Tally, assess};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};
use k8s_openapi::jiff::Timestamp;
use kube::Resource;
use remediation::{MAX_RECORDS, Round};
use std::collections::BTreeMap;

/// The finalizer earlier versions put on every policy (the contract's name). No policy gets it
/// any more (a deleted policy's series are dropped when it leaves the watch cache, so deleting
/// a namespace never waits for a running operator); the operator takes it off policies that
/// still carry it.
pub const FINALIZER: &str = "devops.stochastic.io/cleanup";
/// The label naming a PolicyAuditResult's policy, for people (`kubectl get par -l`); left
/// out for names longer than a label value may be (63).
pub const POLICY_LABEL: &str = "devops.stochastic.io/policy";
/// The label the operator selects a policy's results by: its uid, so a policy deleted and
/// created again under the same name starts a history of its own.
pub const POLICY_UID_LABEL: &str = "devops.stochastic.io/policy-uid";
/// PolicyAuditResults kept per policy.
pub const AUDIT_HISTORY: usize = 10;

/// One evaluation of a policy over its namespace's pods.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Evaluation {
    pub tally: Tally,
    pub violations: Vec<AuditViolation>,
}

/// Evaluates the pods of the policy's namespace, as `(name, facts)`, against `policy`; in a
/// system namespace nothing is evaluated, so a policy there scores 100.
pub fn evaluate_policy<'a>(
    policy: &DevOpsPolicy,
    pods: impl IntoIterator<Item = (&'a str, &'a PodFacts)>,
    now: Timestamp,
) -> Evaluation {
    let namespace = policy.metadata.namespace.as_deref().unwrap_or("default");
    let pods: Vec<(&str, &PodFacts)> = pods.into_iter().collect();
    let mut violations = Vec::new();
    let rules = Rules::from_spec(&policy.spec);
    let assessment = assess(
        &pods,
        &rules,
        now,
        |(_, facts)| Some((namespace, *facts)),
        |(name, _), _, findings| {
            violations.extend(findings.iter().map(|f| audit_violation(name, f)));
        },
    );
    Evaluation { tally: assessment.total(), violations }
}

/// [`evaluate_policy`] for full `Pod` objects (what `kubectl get pods` returns).
pub fn evaluate_policy_pods(policy: &DevOpsPolicy, pods: &[Pod], now: Timestamp) -> Evaluation {
    let facts: Vec<(&str, PodFacts)> = pods
        .iter()
        .filter_map(|pod| {
            let spec = pod.spec.as_ref()?;
            let facts = PodFacts::pod(spec, pod.status.as_ref(), &pod.metadata);
            Some((pod.metadata.name.as_deref().unwrap_or_default(), facts))
        })
        .collect();
    evaluate_policy(policy, facts.iter().map(|(name, facts)| (*name, facts)), now)
}

/// What `evaluation` of `policy` puts in its namespace's PolicyReport: a failure per
/// violation, about its pod, and a pass per (pod, enabled check) without one.
pub fn report_outcomes(policy: &DevOpsPolicy, evaluation: &Evaluation) -> Outcomes {
    let namespace = policy.metadata.namespace.as_deref().unwrap_or("default");
    let name = policy.metadata.name.clone().unwrap_or_default();
    let failures = evaluation
        .violations
        .iter()
        .map(|v| Failure {
            policy: name.clone(),
            check: v.violation_type,
            severity: v.severity,
            container: Some(v.container_name.clone()).filter(|c| !c.is_empty()),
            message: v.message.clone(),
            resource: ResourceRef::new("Pod", &v.pod_name, namespace),
        })
        .collect();
    let enabled = Rules::from_spec(&policy.spec).checks().count() as u64;
    Outcomes::new(failures, u64::from(evaluation.tally.subjects()), enabled)
}

/// The stored form of a finding about `pod_name`.
pub fn audit_violation(pod_name: &str, finding: &Finding<'_>) -> AuditViolation {
    AuditViolation {
        pod_name: pod_name.to_string(),
        container_name: finding.container.unwrap_or_default().to_string(),
        violation_type: finding.check,
        severity: finding.severity,
        message: finding.message(),
    }
}

/// A snapshot of one evaluation at `time`: the counts come from `tally`, and the list keeps the
/// first [`MAX_AUDIT_VIOLATIONS`] of `violations`, counting the rest in `truncatedViolations`.
pub fn audit_spec(
    policy_name: &str,
    time: Timestamp,
    tally: &Tally,
    violations: impl IntoIterator<Item = AuditViolation>,
) -> PolicyAuditResultSpec {
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
        timestamp: Time(time),
        health_score: summary.score,
        classification: summary.classification,
        total_pods: summary.subjects,
        total_violations: summary.violations,
        violations_by_severity: summary.by_severity,
        violations: listed,
        truncated_violations: truncated,
    }
}

/// When this replica last evaluated a policy, and which generation of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Evaluated {
    pub generation: Option<i64>,
    pub at: std::time::Instant,
}

/// How long until a policy at `generation`, last evaluated as `last` (by this replica, since
/// it leads), is due at `now`, when an evaluation holds for `every`; `None` when it is due
/// now: never evaluated, its spec changed since, or the last evaluation is `every` old.
pub fn next_evaluation(
    last: Option<&Evaluated>,
    generation: Option<i64>,
    now: std::time::Instant,
    every: std::time::Duration,
) -> Option<std::time::Duration> {
    let last = last.filter(|l| l.generation == generation)?;
    every.checked_sub(now.saturating_duration_since(last.at)).filter(|wait| !wait.is_zero())
}

/// Whether writing `new` would change nothing but the time of the evaluation: then it is not
/// written (an unchanged cluster sees no status writes).
pub fn status_unchanged(old: Option<&DevOpsPolicyStatus>, new: &DevOpsPolicyStatus) -> bool {
    let untimed = |s: &DevOpsPolicyStatus| DevOpsPolicyStatus { last_evaluated: None, ..s.clone() };
    old.is_some_and(|old| untimed(old) == untimed(new))
}

/// The policy's status after `evaluation` (and, in enforce mode, the `remediation` round) at
/// `now`. An audit policy has no remediation fields: nothing from an earlier enforce round.
pub fn policy_status(
    policy: &DevOpsPolicy,
    evaluation: &Evaluation,
    remediation: Option<&Round>,
    now: Timestamp,
) -> DevOpsPolicyStatus {
    let summary = evaluation.tally.summary();
    let message = summary.to_string();
    let old = policy.status.as_ref().map(|s| s.conditions.as_slice()).unwrap_or_default();
    let ready = condition(old, "Ready", true, "Evaluated", message.clone(), policy.metadata.generation, now);
    DevOpsPolicyStatus {
        health_score: Some(summary.score),
        classification: Some(summary.classification),
        violations: Some(summary.violations),
        healthy: Some(summary.classification == Classification::Healthy),
        message: Some(message),
        last_evaluated: Some(Time(now)),
        observed_generation: policy.metadata.generation,
        conditions: vec![ready],
        remediations_applied: remediation.map(|r| r.applied),
        remediations_failed: remediation.map(|r| r.failed),
        remediated_workloads: remediation
            .map(|r| r.records.iter().take(MAX_RECORDS).cloned().collect())
            .unwrap_or_default(),
    }
}

/// The status of a policy in a system namespace, whose pods kube-devops never evaluates: not
/// ready, and no score (a perfect score for pods nobody looked at would mislead).
pub fn system_namespace_status(policy: &DevOpsPolicy, now: Timestamp) -> DevOpsPolicyStatus {
    let message = "the namespace is a system namespace, whose pods are not evaluated".to_string();
    let old = policy.status.as_ref().map(|s| s.conditions.as_slice()).unwrap_or_default();
    let not_ready = condition(old, "Ready", false, "SystemNamespace", message.clone(), policy.metadata.generation, now);
    DevOpsPolicyStatus {
        message: Some(message),
        last_evaluated: Some(Time(now)),
        observed_generation: policy.metadata.generation,
        conditions: vec![not_ready],
        ..Default::default()
    }
}

/// The PolicyAuditResult recording `evaluation`: named `<policy>-<unix millis>` (contract),
/// labelled with its policy and owned by it (deleted with it).
pub fn audit_result(policy: &DevOpsPolicy, evaluation: &Evaluation, now: Timestamp) -> PolicyAuditResult {
    let name = policy.metadata.name.clone().unwrap_or_default();
    let spec = audit_spec(&name, now, &evaluation.tally, evaluation.violations.iter().cloned());
    // No blockOwnerDeletion: it would need update on devopspolicies/finalizers.
    let owner = OwnerReference {
        api_version: DevOpsPolicy::api_version(&()).into_owned(),
        kind: DevOpsPolicy::kind(&()).into_owned(),
        name: name.clone(),
        uid: policy.metadata.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: None,
    };
    let mut labels = BTreeMap::from([
        (POLICY_UID_LABEL.to_string(), owner.uid.clone()),
        ("app.kubernetes.io/managed-by".to_string(), "kube-devops".to_string()),
    ]);
    if name.len() <= 63 {
        labels.insert(POLICY_LABEL.to_string(), name.clone());
    }
    // Object names are at most 253 characters: the policy's part gives way to the time.
    let prefix = name.get(..239).unwrap_or(&name).trim_end_matches(['-', '.']);
    PolicyAuditResult {
        metadata: ObjectMeta {
            name: Some(format!("{prefix}-{}", now.as_millisecond())),
            namespace: policy.metadata.namespace.clone(),
            labels: Some(labels),
            owner_references: Some(vec![owner]),
            ..Default::default()
        },
        spec,
    }
}

/// Whether `candidate` records something else than `last`: other pods, checks, severities or
/// counts (the time and the wording aside).
pub fn differs(last: Option<&PolicyAuditResult>, candidate: &PolicyAuditResult) -> bool {
    let Some(last) = last else { return true };
    // Messages carry measurements (how long a pod has been Pending): not a change.
    let strip = |spec: &PolicyAuditResultSpec| {
        let mut spec = PolicyAuditResultSpec { timestamp: Time(Timestamp::UNIX_EPOCH), ..spec.clone() };
        spec.violations.iter_mut().for_each(|v| v.message.clear());
        spec
    };
    strip(&last.spec) != strip(&candidate.spec)
}

/// The newest of `results`.
pub fn newest(results: &[PolicyAuditResult]) -> Option<&PolicyAuditResult> {
    results.iter().max_by_key(|r| recorded_at(r))
}

/// Names of the results beyond the newest `keep`, oldest first.
pub fn expired(results: &[PolicyAuditResult], keep: usize) -> Vec<String> {
    let mut by_age: Vec<&PolicyAuditResult> = results.iter().collect();
    by_age.sort_by_key(|r| recorded_at(r));
    let excess = by_age.len().saturating_sub(keep);
    by_age[..excess].iter().filter_map(|r| r.metadata.name.clone()).collect()
}

/// When a result was written: by the API server's clock (its creationTimestamp), which every
/// replica shares; the name breaks ties; results not stored yet come last.
fn recorded_at(result: &PolicyAuditResult) -> (Timestamp, String) {
    let created = result.metadata.creation_timestamp.as_ref().map(|t| t.0).unwrap_or(Timestamp::MAX);
    (created, result.metadata.name.clone().unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{DevOpsPolicySpec, EnforcementMode};
    use k8s_openapi::jiff::SignedDuration;
    use serde_json::json;

    fn policy() -> DevOpsPolicy {
        let spec = DevOpsPolicySpec {
            forbid_latest_tag: Some(true),
            require_liveness_probe: Some(true),
            enforcement_mode: Some(EnforcementMode::Audit),
            ..Default::default()
        };
        let mut policy = DevOpsPolicy::new("strict", spec);
        policy.metadata.namespace = Some("shop".into());
        policy.metadata.uid = Some("p-1".into());
        policy.metadata.generation = Some(2);
        policy
    }

    fn pod(name: &str, image: &str) -> Pod {
        crate::fixtures::TestPod::new(name).container("app", image).build()
    }

    #[test]
    fn an_evaluation_counts_every_violation_of_the_namespace_pods() {
        let pods = [pod("web", "nginx:latest"), pod("api", "api:1.2")];
        let evaluation = evaluate_policy_pods(&policy(), &pods, Timestamp::now());
        assert_eq!(evaluation.tally.subjects(), 2);
        let kinds: Vec<_> =
            evaluation.violations.iter().map(|v| (v.pod_name.as_str(), v.violation_type.as_str())).collect();
        assert_eq!(kinds, [("web", "latest_tag"), ("web", "missing_liveness"), ("api", "missing_liveness")]);
        let status = policy_status(&policy(), &evaluation, None, Timestamp::now());
        // (5 + 3 + 3) points over 2 pods: 100 - 5.
        assert_eq!(status.health_score, Some(95));
        assert_eq!(status.violations, Some(3));
        assert_eq!(status.healthy, Some(true));
        assert_eq!(status.observed_generation, Some(2));
        assert_eq!(status.message.as_deref(), Some("3 violations across 2 pods — Healthy (95)"));
        assert_eq!(status.conditions[0].type_, "Ready");
    }

    #[test]
    fn a_policy_is_evaluated_again_when_due_or_changed() {
        let every = std::time::Duration::from_secs(60);
        let now = std::time::Instant::now();
        assert_eq!(next_evaluation(None, Some(2), now, every), None, "never evaluated");
        let last = Evaluated { generation: Some(2), at: now };
        let later = now + std::time::Duration::from_secs(20);
        assert_eq!(next_evaluation(Some(&last), Some(2), later, every), Some(std::time::Duration::from_secs(40)));
        assert_eq!(next_evaluation(Some(&last), Some(2), now + every, every), None, "due");
        assert_eq!(next_evaluation(Some(&last), Some(3), later, every), None, "the spec changed");
    }

    #[test]
    fn a_status_that_changes_only_its_time_is_not_written() {
        let t0: Timestamp = "2026-11-26T12:00:00Z".parse().unwrap();
        let t1 = t0 + SignedDuration::from_secs(60);
        let evaluation = evaluate_policy_pods(&policy(), &[pod("web", "nginx:latest")], t0);
        let mut evaluated = policy();
        assert!(!status_unchanged(None, &policy_status(&evaluated, &evaluation, None, t0)), "nothing written yet");
        evaluated.status = Some(policy_status(&evaluated, &evaluation, None, t0));
        let again = policy_status(&evaluated, &evaluation, None, t1);
        assert!(status_unchanged(evaluated.status.as_ref(), &again), "only lastEvaluated moved");
        let fixed = evaluate_policy_pods(&policy(), &[pod("web", "nginx:1.27")], t1);
        assert!(!status_unchanged(evaluated.status.as_ref(), &policy_status(&evaluated, &fixed, None, t1)));
        evaluated.metadata.generation = Some(3);
        assert!(!status_unchanged(evaluated.status.as_ref(), &policy_status(&evaluated, &evaluation, None, t1)));
        // In a system namespace too: the condition keeps its transition time.
        let mut system = policy();
        system.status = Some(system_namespace_status(&system, t0));
        let later = system_namespace_status(&system, t1);
        assert_eq!(later.conditions[0].last_transition_time, Time(t0));
        assert!(status_unchanged(system.status.as_ref(), &later));
    }

    #[test]
    fn remediation_fields_come_from_this_round_only() {
        use crate::api::policy::{RemediationRecord, RemediationResult};
        let evaluation = evaluate_policy_pods(&policy(), &[pod("web", "nginx:1.27")], Timestamp::now());
        let record = |i: usize| RemediationRecord {
            workload: format!("Deployment/web-{i}"),
            result: RemediationResult::Applied,
            changes: "app: resources".into(),
            message: None,
        };
        let round = Round { records: (0..60).map(record).collect(), applied: 60, failed: 0 };
        let mut enforced = policy();
        let status = policy_status(&enforced, &evaluation, Some(&round), Timestamp::now());
        assert_eq!((status.remediations_applied, status.remediations_failed), (Some(60), Some(0)));
        assert_eq!(status.remediated_workloads.len(), MAX_RECORDS, "the counts cover the rest");
        // Back in audit mode: nothing left from the enforce round.
        enforced.status = Some(status);
        let audit = policy_status(&enforced, &evaluation, None, Timestamp::now());
        assert_eq!((audit.remediations_applied, audit.remediated_workloads.len()), (None, 0));
        assert!(!status_unchanged(enforced.status.as_ref(), &audit));
    }

    #[test]
    fn audit_results_are_named_labelled_and_owned_by_their_policy() {
        let now: Timestamp = "2026-11-26T12:00:00Z".parse().unwrap();
        let evaluation = evaluate_policy_pods(&policy(), &[pod("web", "nginx:latest")], now);
        let result = audit_result(&policy(), &evaluation, now);
        assert_eq!(result.metadata.name.as_deref(), Some("strict-1795694400000"));
        assert_eq!(result.metadata.namespace.as_deref(), Some("shop"));
        assert_eq!(result.metadata.labels.as_ref().unwrap()[POLICY_LABEL], "strict");
        let owner = &result.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!((owner.kind.as_str(), owner.uid.as_str(), owner.controller), ("DevOpsPolicy", "p-1", Some(true)));
        assert_eq!(result.spec.total_violations, 2);
        assert_eq!(result.spec.timestamp, Time(now));
        assert_eq!(result.metadata.labels.as_ref().unwrap()[POLICY_UID_LABEL], "p-1");

        // Names too long for a label value or for the time suffix still give valid objects.
        let mut long = policy();
        long.metadata.name = Some(format!("{}-x", "a".repeat(250)));
        let result = audit_result(&long, &evaluation, now);
        let name = result.metadata.name.unwrap();
        assert!(name.len() <= 253 && name.ends_with("-1795694400000") && !name.contains("--"), "{name}");
        assert!(!result.metadata.labels.as_ref().unwrap().contains_key(POLICY_LABEL));
    }

    #[test]
    fn a_large_evaluation_is_bounded_and_counts_what_was_cut() {
        use crate::api::{Severity, SeverityCounts};
        use crate::governance::{CheckId, Detail};
        let finding = Finding {
            check: CheckId::LatestTag,
            severity: Severity::High,
            container: Some("web"),
            detail: Detail::LatestTag { image: "nginx:latest", explicit: true },
        };
        let mut tally = Tally::default();
        let mut violations = Vec::new();
        for i in 0..250 {
            tally.add(&[finding]);
            violations.push(audit_violation(&format!("web-{i}"), &finding));
        }
        let spec = audit_spec("baseline", "2026-11-26T12:00:00Z".parse().unwrap(), &tally, violations);
        assert_eq!(spec.violations.len(), MAX_AUDIT_VIOLATIONS);
        assert_eq!(spec.truncated_violations, 150);
        assert_eq!(spec.total_violations, 250);
        assert_eq!(spec.total_pods, 250);
        assert_eq!(spec.violations_by_severity, SeverityCounts { high: 250, ..Default::default() });
        assert_eq!((spec.health_score, spec.classification), (95, Classification::Healthy));
        assert_eq!(spec.violations[0].message, "container 'web' uses :latest tag");
        assert_eq!(spec.violations[0].violation_type, CheckId::LatestTag);
        // Even at the cap the object stays far below the API server's 1.5 MiB limit.
        let size = serde_json::to_vec(&PolicyAuditResult::new("baseline-1", spec)).unwrap().len();
        assert!(size < 64 * 1024, "{size} bytes");
    }

    #[test]
    fn a_pending_pod_growing_older_is_not_a_change() {
        let mut spec = policy().spec;
        spec.forbid_pending_duration = Some(60);
        let mut pending_policy = policy();
        pending_policy.spec = spec;
        let mut pending = pod("web", "nginx:1.27");
        pending.metadata.creation_timestamp = Some(Time("2026-11-26T11:00:00Z".parse().unwrap()));
        pending.status = Some(serde_json::from_value(json!({"phase": "Pending"})).unwrap());
        let at = |t: &str| t.parse::<Timestamp>().unwrap();
        let first = evaluate_policy_pods(&pending_policy, std::slice::from_ref(&pending), at("2026-11-26T12:00:00Z"));
        let later = evaluate_policy_pods(&pending_policy, &[pending], at("2026-11-26T12:01:00Z"));
        assert_ne!(first.violations, later.violations, "the message says how long");
        let (a, b) = (
            audit_result(&pending_policy, &first, at("2026-11-26T12:00:00Z")),
            audit_result(&pending_policy, &later, at("2026-11-26T12:01:00Z")),
        );
        assert!(!differs(Some(&a), &b));
    }

    #[test]
    fn a_policy_in_a_system_namespace_is_not_ready_and_has_no_score() {
        let status = system_namespace_status(&policy(), Timestamp::now());
        assert_eq!(status.health_score, None);
        assert_eq!(
            (status.conditions[0].status.as_str(), status.conditions[0].reason.as_str()),
            ("False", "SystemNamespace")
        );
    }

    #[test]
    fn history_records_changes_and_keeps_the_newest() {
        let start: Timestamp = "2026-11-26T12:00:00Z".parse().unwrap();
        let at = |minutes: i64| start + SignedDuration::from_mins(minutes);
        let bad = evaluate_policy_pods(&policy(), &[pod("web", "nginx:latest")], start);
        let good = evaluate_policy_pods(&policy(), &[pod("web", "nginx:1.27")], start);
        let first = audit_result(&policy(), &bad, at(0));
        assert!(differs(None, &first));
        assert!(!differs(Some(&first), &audit_result(&policy(), &bad, at(1))), "only the time changed");
        assert!(differs(Some(&first), &audit_result(&policy(), &good, at(1))));

        let history: Vec<_> = (0..13).map(|m| audit_result(&policy(), &bad, at(m))).collect();
        assert_eq!(newest(&history).unwrap().metadata.name, history[12].metadata.name);
        let gone = expired(&history, AUDIT_HISTORY);
        let oldest: Vec<_> = history[..3].iter().map(|r| r.metadata.name.clone().unwrap()).collect();
        assert_eq!(gone, oldest);
        assert!(expired(&history[..5], AUDIT_HISTORY).is_empty());
    }
}

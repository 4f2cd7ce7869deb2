//! Enforcement, the shell: finds the workloads that own the pods of an `enforce` policy's
//! namespace (by uid, through the API: Pod -> ReplicaSet -> Deployment, Pod -> Job ->
//! CronJob, StatefulSets, DaemonSets), plans each one's remediation ([`super::remediation`])
//! and applies it with server-side apply under its own field manager, never forced: a field
//! another manager owns stays theirs and the conflict is reported. Dry runs, opt-outs and a
//! rate limit per policy decide what is written; every outcome is a record for the status
//! and an Event on the workload and the policy.

use super::owned::extract;
use super::remediation::{DEFAULT_RATE, FIELD_MANAGER, OPT_OUT, Plan, Round, apply_body, opted_out, plan};
use crate::api::DevOpsPolicy;
use crate::api::policy::{RemediationRecord, RemediationResult};
use crate::events::{Events, Reason};
use crate::governance::Rules;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{Namespace, PodSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use kube::{Resource, ResourceExt};
use opentelemetry::metrics::Counter;
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A workload enforcement can patch.
#[derive(Clone, Debug)]
enum Workload {
    Deployment(Box<Deployment>),
    StatefulSet(Box<StatefulSet>),
    DaemonSet(Box<DaemonSet>),
    CronJob(Box<CronJob>),
}

impl Workload {
    fn meta(&self) -> &ObjectMeta {
        match self {
            Workload::Deployment(o) => o.meta(),
            Workload::StatefulSet(o) => o.meta(),
            Workload::DaemonSet(o) => o.meta(),
            Workload::CronJob(o) => o.meta(),
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Workload::Deployment(_) => "Deployment",
            Workload::StatefulSet(_) => "StatefulSet",
            Workload::DaemonSet(_) => "DaemonSet",
            Workload::CronJob(_) => "CronJob",
        }
    }

    fn id(&self) -> String {
        format!("{}/{}", self.kind(), self.meta().name.as_deref().unwrap_or_default())
    }

    fn template(&self) -> Option<&PodSpec> {
        match self {
            Workload::Deployment(o) => o.spec.as_ref()?.template.spec.as_ref(),
            Workload::StatefulSet(o) => o.spec.as_ref()?.template.spec.as_ref(),
            Workload::DaemonSet(o) => o.spec.as_ref()?.template.spec.as_ref(),
            Workload::CronJob(o) => o.spec.as_ref()?.job_template.spec.as_ref()?.template.spec.as_ref(),
        }
    }

    /// Server-side applies `body` to the workload (not forced).
    async fn apply(&self, client: &kube::Client, body: &serde_json::Value) -> Result<(), kube::Error> {
        let namespace = self.meta().namespace.clone().unwrap_or_default();
        let name = self.meta().name.clone().unwrap_or_default();
        let params = PatchParams::apply(FIELD_MANAGER);
        let patch = Patch::Apply(body);
        match self {
            Workload::Deployment(_) => Api::<Deployment>::namespaced(client.clone(), &namespace)
                .patch(&name, &params, &patch)
                .await
                .map(|_| ()),
            Workload::StatefulSet(_) => Api::<StatefulSet>::namespaced(client.clone(), &namespace)
                .patch(&name, &params, &patch)
                .await
                .map(|_| ()),
            Workload::DaemonSet(_) => {
                Api::<DaemonSet>::namespaced(client.clone(), &namespace).patch(&name, &params, &patch).await.map(|_| ())
            }
            Workload::CronJob(_) => {
                Api::<CronJob>::namespaced(client.clone(), &namespace).patch(&name, &params, &patch).await.map(|_| ())
            }
        }
    }

    fn to_value(&self) -> serde_json::Value {
        let value = match self {
            Workload::Deployment(o) => serde_json::to_value(o),
            Workload::StatefulSet(o) => serde_json::to_value(o),
            Workload::DaemonSet(o) => serde_json::to_value(o),
            Workload::CronJob(o) => serde_json::to_value(o),
        };
        value.unwrap_or_default()
    }

    /// The apply configuration: what enforcement applied before, and `plan`'s changes.
    fn body(&self, plan: &Plan, policy: &DevOpsPolicy) -> serde_json::Value {
        let name = self.meta().name.as_deref().unwrap_or_default();
        let (api_version, path): (&str, &[&str]) = match self {
            Workload::CronJob(_) => ("batch/v1", &["spec", "jobTemplate", "spec", "template"]),
            _ => ("apps/v1", &["spec", "template"]),
        };
        let owned = extract(&self.to_value(), FIELD_MANAGER);
        apply_body(api_version, self.kind(), name, path, &plan.changes, policy, owned)
    }

    async fn publish(&self, events: &Events, reason: Reason, note: String) {
        match self {
            Workload::Deployment(o) => events.publish(&**o, reason, note).await,
            Workload::StatefulSet(o) => events.publish(&**o, reason, note).await,
            Workload::DaemonSet(o) => events.publish(&**o, reason, note).await,
            Workload::CronJob(o) => events.publish(&**o, reason, note).await,
        }
    }
}

/// The object named by `owner` in `namespace`, when it still is the one the reference names.
async fn get_owned<K>(client: &kube::Client, namespace: &str, owner: &OwnerReference) -> Result<Option<K>, kube::Error>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let found = Api::<K>::namespaced(client.clone(), namespace).get_opt(&owner.name).await?;
    Ok(found.filter(|o| o.meta().uid.as_deref() == Some(owner.uid.as_str())))
}

fn controller(meta: &ObjectMeta) -> Option<&OwnerReference> {
    meta.owner_references.iter().flatten().find(|o| o.controller == Some(true))
}

/// The workload that owns pods whose controller is `owner`, or why there is none to patch.
async fn resolve(
    client: &kube::Client,
    namespace: &str,
    owner: &OwnerReference,
) -> Result<Result<Workload, String>, kube::Error> {
    let gone = || Ok(Err(format!("{}/{} is gone", owner.kind, owner.name)));
    Ok(Ok(match owner.kind.as_str() {
        "ReplicaSet" => {
            let Some(rs) = get_owned::<ReplicaSet>(client, namespace, owner).await? else { return gone() };
            match controller(&rs.metadata).filter(|o| o.kind == "Deployment") {
                Some(deployment) => match get_owned::<Deployment>(client, namespace, deployment).await? {
                    Some(d) => Workload::Deployment(Box::new(d)),
                    None => return gone(),
                },
                None => {
                    return Ok(Err(format!(
                        "ReplicaSet/{} has no Deployment: its template is not patched",
                        owner.name
                    )));
                }
            }
        }
        "Job" => {
            let Some(job) = get_owned::<Job>(client, namespace, owner).await? else { return gone() };
            match controller(&job.metadata).filter(|o| o.kind == "CronJob") {
                Some(cron) => match get_owned::<CronJob>(client, namespace, cron).await? {
                    Some(c) => Workload::CronJob(Box::new(c)),
                    None => return gone(),
                },
                None => return Ok(Err(format!("Job/{} has no CronJob: a Job's template cannot change", owner.name))),
            }
        }
        "StatefulSet" => match get_owned::<StatefulSet>(client, namespace, owner).await? {
            Some(s) => Workload::StatefulSet(Box::new(s)),
            None => return gone(),
        },
        "DaemonSet" => match get_owned::<DaemonSet>(client, namespace, owner).await? {
            Some(d) => Workload::DaemonSet(Box::new(d)),
            None => return gone(),
        },
        other => return Ok(Err(format!("{other}/{} is not a workload kube-devops patches", owner.name))),
    }))
}

/// Enforcement's state across evaluations: the patches of each policy in the last minute.
pub struct Enforcer {
    client: kube::Client,
    events: Events,
    applied: Counter<u64>,
    failed: Counter<u64>,
    recent: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl Enforcer {
    pub fn new(client: kube::Client, events: Events, applied: Counter<u64>, failed: Counter<u64>) -> Enforcer {
        // Present from the start, at zero (a dashboard tells "none" from "not exported").
        applied.add(0, &[]);
        failed.add(0, &[]);
        Enforcer { client, events, applied, failed, recent: Mutex::default() }
    }

    /// Whether the policy (by uid) may patch one more workload now: fewer than `rate` patches
    /// in the last minute (only applied patches count: a refused one rolled nothing out).
    fn slot_free(&self, policy_uid: &str, rate: u32) -> bool {
        let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        let times = recent.entry(policy_uid.to_string()).or_default();
        while times.front().is_some_and(|t| t.elapsed() >= Duration::from_secs(60)) {
            times.pop_front();
        }
        times.len() < rate as usize
    }

    fn use_slot(&self, policy_uid: &str) {
        let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        recent.entry(policy_uid.to_string()).or_default().push_back(Instant::now());
    }

    /// Remediates the workloads behind `owners` (the controllers of the pods of `policy`'s
    /// namespace that violate it) as `policy` says; `also` are the rules of the namespace's
    /// other `enforce` policies (a patch must pass them too). Events go out for what is new
    /// since the `previous` round (a dry run or a conflict is not announced every minute).
    pub async fn remediate(
        &self,
        policy: &DevOpsPolicy,
        owners: &[OwnerReference],
        also: &[Rules],
        now: Timestamp,
    ) -> Result<Round, kube::Error> {
        let previous = policy.status.as_ref().map(|s| s.remediated_workloads.as_slice()).unwrap_or_default();
        let namespace = policy.namespace().unwrap_or_default();
        let mut round = Round::default();
        let ns = Api::<Namespace>::all(self.client.clone()).get_opt(&namespace).await?;
        if ns.as_ref().is_some_and(|n| opted_out(n.metadata.annotations.as_ref())) {
            round.records.push(record(
                &format!("Namespace/{namespace}"),
                RemediationResult::Skipped,
                "",
                Some(format!("{OPT_OUT}: \"false\"")),
            ));
            return Ok(round);
        }
        let settings = policy.spec.remediation.clone().unwrap_or_default();
        let dry_run = settings.dry_run == Some(true);
        let rate = settings.max_workloads_per_minute.unwrap_or(DEFAULT_RATE);
        let mut seen = std::collections::HashSet::new();
        for owner in owners {
            let workload = match resolve(&self.client, &namespace, owner).await {
                Ok(Ok(w)) => w,
                // Bare ReplicaSets and Jobs, foreign kinds, objects gone: nothing to patch.
                Ok(Err(_)) => continue,
                Err(e) => {
                    round.failed += 1;
                    let id = format!("{}/{}", owner.kind, owner.name);
                    round.records.push(record(
                        &id,
                        RemediationResult::Failed,
                        "",
                        Some(format!("cannot read it: {e}")),
                    ));
                    continue;
                }
            };
            if !seen.insert(workload.meta().uid.clone().unwrap_or_default()) {
                continue;
            }
            let Some(template) = workload.template() else { continue };
            let plan = plan(template, &policy.spec, also, now);
            if plan.changes.is_empty() {
                continue;
            }
            let id = workload.id();
            let changes = plan.describe();
            let outcome = if opted_out(workload.meta().annotations.as_ref()) {
                record(&id, RemediationResult::Skipped, &changes, Some(format!("{OPT_OUT}: \"false\"")))
            } else if !plan.applicable() {
                let still: Vec<&str> = plan.remaining.iter().map(|c| c.as_str()).collect();
                let why =
                    format!("would still violate {} (the admission webhook would refuse the patch)", still.join(", "));
                record(&id, RemediationResult::Skipped, &changes, Some(why))
            } else if dry_run {
                record(&id, RemediationResult::Planned, &changes, None)
            } else if !self.slot_free(policy.metadata.uid.as_deref().unwrap_or_default(), rate) {
                record(&id, RemediationResult::Deferred, &changes, Some(format!("{rate} workloads a minute at most")))
            } else {
                self.apply(policy, &workload, &plan, &id, &changes, &mut round).await
            };
            if !previous.contains(&outcome) || outcome.result == RemediationResult::Applied {
                self.announce(policy, &workload, &outcome).await;
            }
            round.records.push(outcome);
        }
        Ok(round)
    }

    async fn apply(
        &self,
        policy: &DevOpsPolicy,
        workload: &Workload,
        plan: &Plan,
        id: &str,
        changes: &str,
        round: &mut Round,
    ) -> RemediationRecord {
        match workload.apply(&self.client, &workload.body(plan, policy)).await {
            Ok(()) => {
                self.use_slot(policy.metadata.uid.as_deref().unwrap_or_default());
                self.applied.add(1, &[]);
                round.applied += 1;
                record(id, RemediationResult::Applied, changes, None)
            }
            Err(e) => {
                self.failed.add(1, &[]);
                round.failed += 1;
                let (result, message) = match &e {
                    kube::Error::Api(api) if api.code == 409 => (RemediationResult::Conflict, api.message.clone()),
                    kube::Error::Api(api) => (RemediationResult::Failed, format!("{} ({})", api.message, api.code)),
                    other => (RemediationResult::Failed, other.to_string()),
                };
                tracing::warn!(
                    namespace = policy.namespace().unwrap_or_default(),
                    workload = %id,
                    %changes,
                    error = %message,
                    "could not remediate"
                );
                record(id, result, changes, Some(message))
            }
        }
    }

    /// Events on the workload and the policy for `outcome` (none for deferrals: the next
    /// round applies them).
    async fn announce(&self, policy: &DevOpsPolicy, workload: &Workload, outcome: &RemediationRecord) {
        let (changes, name) = (&outcome.changes, policy.name_any());
        let why = outcome.message.as_deref().unwrap_or_default();
        let (reason, note) = match outcome.result {
            RemediationResult::Applied => (Reason::Remediated, format!("set {changes} (DevOpsPolicy {name})")),
            RemediationResult::Planned => {
                (Reason::RemediationPlanned, format!("would set {changes} (dry run of DevOpsPolicy {name})"))
            }
            RemediationResult::Conflict | RemediationResult::Failed => {
                (Reason::RemediationFailed, format!("could not set {changes} (DevOpsPolicy {name}): {why}"))
            }
            RemediationResult::Skipped => {
                (Reason::RemediationSkipped, format!("left {changes} unset (DevOpsPolicy {name}): {why}"))
            }
            RemediationResult::Deferred => return,
        };
        workload.publish(&self.events, reason, note.clone()).await;
        self.events.publish(policy, reason, format!("{}: {note}", outcome.workload)).await;
    }
}

fn record(workload: &str, result: RemediationResult, changes: &str, message: Option<String>) -> RemediationRecord {
    RemediationRecord { workload: workload.to_string(), result, changes: changes.to_string(), message }
}

#[cfg(test)]
mod tests;

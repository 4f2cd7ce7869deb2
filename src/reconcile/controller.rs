//! `kube-devops reconcile`: the shell around the pure functions of [`super`].
//!
//! HTTP `/healthz`, `/readyz` and `/metrics` on `$POD_IP:9090` start first; the replicas elect
//! a leader through the Lease `kube-devops-reconcile`, so only one writes statuses and audit
//! results. The leader runs a kube-runtime controller over every DevOpsPolicy: a policy is
//! evaluated when it changes and again every evaluation interval (pods change without touching
//! the policy). A status is written only when it changed (not for the time of the evaluation
//! alone), so an unchanged cluster sees no writes. No finalizer: a deleted policy's series are
//! dropped once it has left the watch cache, its audit results go with it (owner references),
//! and deleting a namespace never waits for this operator.
//!
//! An `enforce` policy's evaluation goes on to remediate the workloads behind the pods that
//! violate it ([`super::enforce`]); what it did goes into the same status write.

use super::enforce::Enforcer;
use super::reports::PolicyReports;
use super::{
    AUDIT_HISTORY, Evaluated, Evaluation, FINALIZER, POLICY_UID_LABEL, audit_result, differs, evaluate_policy,
};
use super::{expired, newest, next_evaluation, policy_status, status_unchanged, system_namespace_status};
use crate::api::{Classification, DevOpsPolicy, EnforcementMode, PolicyAuditResult};
use crate::events::{Events, Reason};
use crate::governance::Rules;
use crate::governance::Severity;
use crate::governance::facts::PodRecord;
use crate::governance::is_system_namespace;
use crate::leader;
use crate::metrics::catalog::{self, GaugeMetric};
use crate::metrics::{LATENCY_BUCKETS, Metrics, counter, gauge, histogram};
use crate::podcache::{CachedPod, PodCache};
use futures::StreamExt;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Histogram, Meter};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// The Lease the reconcile replicas elect their leader with.
pub const LEASE_NAME: &str = "kube-devops-reconcile";
/// The field manager of the statuses it writes.
const FIELD_MANAGER: &str = "kube-devops-operator";
/// Policies are evaluated again this often unless the install says otherwise.
pub const EVALUATION_INTERVAL: Duration = Duration::from_secs(60);
/// After a failed reconcile.
const RETRY: Duration = Duration::from_secs(30);
/// How soon to try again while the pod cache is still being filled.
const CACHE_WAIT: Duration = Duration::from_secs(1);

/// What the gauges show for one policy, keyed by (namespace, policy), and the leader's watch
/// cache of policies: a series is exported only while its policy is in the cache.
#[derive(Clone, Default)]
struct Gauges {
    values: Arc<Mutex<BTreeMap<(String, String), PolicyGauges>>>,
    policies: Arc<Mutex<Option<Store<DevOpsPolicy>>>>,
}

impl Gauges {
    /// Calls `each` for every policy still in the cache, and forgets the others.
    fn for_each_live(&self, mut each: impl FnMut(&(String, String), &PolicyGauges)) {
        let mut values = self.values.lock().unwrap();
        if let Some(store) = self.policies.lock().unwrap().as_ref() {
            values.retain(|(namespace, name), _| store.get(&ObjectRef::new(name).within(namespace)).is_some());
        }
        values.iter().for_each(|(key, value)| each(key, value));
    }

    fn clear(&self) {
        self.values.lock().unwrap().clear();
        self.policies.lock().unwrap().take();
    }
}

#[derive(Clone, Debug, PartialEq)]
struct PolicyGauges {
    violations: u64,
    score: u64,
    enforce: bool,
    by_severity: [u64; 4],
}

struct Context {
    events: Events,
    /// Every pod of the cluster, filled by the leader's pod watch.
    pods: Arc<RwLock<PodCache>>,
    /// When each policy (by uid) was last evaluated since this replica became the leader.
    evaluated: Mutex<HashMap<String, Evaluated>>,
    interval: Duration,
    /// For the DevOpsPolicy watch (no read timeout).
    watches: kube::Client,
    /// For everything else (bounded timeouts).
    client: kube::Client,
    gauges: Gauges,
    reconciles: Counter<u64>,
    errors: Counter<u64>,
    pods_scanned: Counter<u64>,
    audit_results: Counter<u64>,
    duration: Histogram<f64>,
    enforcer: Enforcer,
    /// Set with `--policy-reports`.
    reports: Option<PolicyReports>,
}

impl Context {
    /// A context writing with `client`, watching with `watches`, recording into `meter` and
    /// `gauges`, evaluating each policy every `interval`, keeping PolicyReports when
    /// `policy_reports`.
    fn new(
        (client, watches): (kube::Client, kube::Client),
        meter: &Meter,
        gauges: Gauges,
        interval: Duration,
        policy_reports: bool,
    ) -> Self {
        let events = Events::new(client.clone(), "kube-devops-reconcile");
        let (applied, failed) =
            (counter(meter, &catalog::REMEDIATIONS_APPLIED), counter(meter, &catalog::REMEDIATIONS_FAILED));
        Context {
            enforcer: Enforcer::new(client.clone(), events.clone(), applied, failed),
            reports: policy_reports.then(|| PolicyReports::new(client.clone())),
            events,
            pods: Arc::default(),
            evaluated: Mutex::default(),
            interval,
            watches,
            client,
            gauges,
            reconciles: counter(meter, &catalog::RECONCILES),
            errors: counter(meter, &catalog::RECONCILE_ERRORS),
            pods_scanned: counter(meter, &catalog::PODS_SCANNED),
            audit_results: counter(meter, &catalog::AUDIT_RESULTS),
            duration: histogram(meter, &catalog::RECONCILE_DURATION, LATENCY_BUCKETS),
        }
    }
}

/// Runs the reconcile operator until SIGTERM/SIGINT, evaluating every policy each `interval`
/// (and keeping PolicyReports when `policy_reports`).
pub fn run(addr: String, interval: Duration, policy_reports: bool) -> anyhow::Result<()> {
    actix_web::rt::System::new().block_on(async move {
        let metrics = Metrics::new()?;
        let gauges = Gauges::default();
        register_gauges(&metrics, &gauges);
        let clients = (crate::cluster::client().await?, crate::cluster::watch_client().await?);
        let context = Arc::new(Context::new(clients, &metrics.meter(), gauges.clone(), interval, policy_reports));
        let idle = context.clone();
        let lead = move || reconcile_while_leading(context.clone());
        let stand_by = move || {
            gauges.clear();
            idle.evaluated.lock().unwrap().clear();
            if let Some(reports) = &idle.reports {
                reports.clear();
            }
            *idle.pods.write().unwrap_or_else(|e| e.into_inner()) = PodCache::default();
        };
        leader::serve_elected("reconcile", LEASE_NAME, &addr, metrics, lead, stand_by).await
    })
}

/// Reads one value out of a policy's gauges.
type Field = fn(&PolicyGauges) -> u64;

fn register_gauges(metrics: &Metrics, gauges: &Gauges) {
    let meter = metrics.meter();
    let labels = |(namespace, policy): &(String, String)| {
        [KeyValue::new("namespace", namespace.clone()), KeyValue::new("policy", policy.clone())]
    };
    // One gauge per field of PolicyGauges, each series labelled with namespace and policy.
    let fields: [(&GaugeMetric, Field); 3] = [
        (&catalog::POLICY_VIOLATIONS, |g| g.violations),
        (&catalog::POLICY_HEALTH_SCORE, |g| g.score),
        (&catalog::POLICY_ENFORCEMENT_MODE, |g| u64::from(g.enforce)),
    ];
    for (metric, field) in fields {
        let g = gauges.clone();
        gauge(&meter, metric, move |o| g.for_each_live(|k, v| o.observe(field(v), &labels(k))));
    }
    let g = gauges.clone();
    gauge(&meter, &catalog::POLICY_VIOLATIONS_BY_SEVERITY, move |o| {
        g.for_each_live(|key, value| {
            for severity in Severity::ALL {
                let [namespace, policy] = labels(key);
                let attributes = [KeyValue::new("severity", severity.as_str()), namespace, policy];
                o.observe(value.by_severity[severity.index()], &attributes);
            }
        })
    });
}

/// Policies evaluated at the same time.
const EVALUATIONS_AT_ONCE: u16 = 4;

async fn reconcile_while_leading(context: Arc<Context>) {
    let policies = Api::<DevOpsPolicy>::all(context.watches.clone());
    // A bounded number of evaluations at once: with 500 policies an unbounded controller
    // evaluates them all together, and their audit results and requests in flight at the same
    // time cost more memory than the cluster's whole pod cache (measured: 123 MiB vs 76 MiB at
    // 50,000 pods). Each evaluation is short, so a round still fits its interval.
    let controller = Controller::new(policies, watcher::Config::default())
        .with_config(kube::runtime::controller::Config::default().concurrency(EVALUATIONS_AT_ONCE));
    context.gauges.policies.lock().unwrap().replace(controller.store());
    let pods = watch_pods(context.watches.clone(), context.pods.clone());
    let reconciles = controller.run(reconcile, retry, context).for_each(|result| async move {
        if let Err(e) = result {
            tracing::warn!(error = %e, "reconcile");
        }
    });
    tokio::select! {
        _ = pods => {}
        _ = reconciles => {}
    }
}

/// Keeps `cache` filled with every pod of the cluster (as slim records), until aborted.
async fn watch_pods(client: kube::Client, cache: Arc<RwLock<PodCache>>) {
    let mut events =
        std::pin::pin!(watcher(Api::<PodRecord>::all(client), watcher::Config::default()).default_backoff());
    while let Some(event) = events.next().await {
        match event {
            Ok(event) => {
                let mut cache = cache.write().unwrap_or_else(|e| e.into_inner());
                cache.apply(event);
                // Policies are evaluated on their own schedule: nobody reads what changed.
                cache.take_changed();
            }
            Err(e) => tracing::warn!(error = %e, "watching pods"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
enum Error {
    #[error("{0}")]
    Kube(#[from] kube::Error),
}

fn retry(policy: Arc<DevOpsPolicy>, error: &Error, context: Arc<Context>) -> Action {
    let Error::Kube(e) = error;
    context.reconciles.add(1, &[KeyValue::new("result", "error")]);
    context.errors.add(1, &[KeyValue::new("reason", crate::metrics::error_reason(e))]);
    tracing::warn!(
        namespace = policy.namespace().unwrap_or_default(),
        name = policy.name_any(),
        error = %error,
        retry_seconds = RETRY.as_secs(),
        "evaluation failed, retrying"
    );
    Action::requeue(RETRY)
}

/// One reconcile of a policy, in a span naming it (a trace when traces are exported) whose
/// `result` says what it came to.
#[tracing::instrument(name = "reconcile", skip_all, fields(
    kind = "DevOpsPolicy", namespace = %policy.namespace().unwrap_or_default(), name = %policy.name_any(),
    result = tracing::field::Empty, otel.status_code = tracing::field::Empty, otel.status_description = tracing::field::Empty,
))]
async fn reconcile(policy: Arc<DevOpsPolicy>, context: Arc<Context>) -> Result<Action, Error> {
    let outcome = reconcile_policy(&policy, &context).await;
    if let Err(e) = &outcome {
        crate::traces::record_error(e);
    }
    outcome
}

async fn reconcile_policy(policy: &DevOpsPolicy, context: &Context) -> Result<Action, Error> {
    if policy.finalizers().iter().any(|f| f == FINALIZER) {
        // Handed back: earlier versions held deletions of policies (and their namespaces)
        // until an operator ran. The change comes back as an event and is evaluated then.
        release_finalizer(policy, &context.client).await?;
        crate::traces::record_result("finalizer_released");
        return Ok(Action::await_change());
    }
    if policy.metadata.deletion_timestamp.is_some() {
        crate::traces::record_result("deleting");
        return Ok(Action::await_change());
    }
    evaluate(policy, context).await
}

/// Removes [`FINALIZER`] from `policy`: a merge patch of the other finalizers with the
/// resourceVersion it read, so a concurrent change of them is not overwritten (409).
async fn release_finalizer(policy: &DevOpsPolicy, client: &kube::Client) -> Result<(), kube::Error> {
    let others: Vec<&String> = policy.finalizers().iter().filter(|f| *f != FINALIZER).collect();
    let patch = serde_json::json!({"metadata": {"finalizers": others, "resourceVersion": policy.resource_version()}});
    let api: Api<DevOpsPolicy> = Api::namespaced(client.clone(), &policy.namespace().unwrap_or_default());
    match api.patch(&policy.name_any(), &PatchParams::default(), &Patch::Merge(patch)).await {
        Ok(_) => Ok(()),
        // Gone, or changed since it was read: the next event tells.
        Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => Ok(()),
        Err(e) => Err(e),
    }
}

async fn evaluate(policy: &DevOpsPolicy, context: &Context) -> Result<Action, Error> {
    // The status this writes comes back as a change of the policy: it must not trigger the
    // next evaluation before its time (a spec change does). A new leader evaluates every
    // policy once, so its metrics are complete from the start.
    let uid = policy.metadata.uid.clone().unwrap_or_default();
    let last = context.evaluated.lock().unwrap().get(&uid).copied();
    if let Some(wait) = next_evaluation(last.as_ref(), policy.metadata.generation, Instant::now(), context.interval) {
        crate::traces::record_result("not_due");
        return Ok(Action::requeue(wait));
    }
    let started = Instant::now();
    let (namespace, name) = (policy.namespace().unwrap_or_default(), policy.name_any());
    let now = Timestamp::now();
    let mut reported = None;
    let status = if is_system_namespace(&namespace) {
        system_namespace_status(policy, now)
    } else {
        let enforce = policy.spec.enforcement_mode == Some(EnforcementMode::Enforce);
        // The pods come from the one cache every policy shares: no list per evaluation.
        let (evaluation, owners) = {
            let pods = context.pods.read().unwrap_or_else(|e| e.into_inner());
            if !pods.synced() {
                crate::traces::record_result("pods_not_synced");
                return Ok(Action::requeue(CACHE_WAIT));
            }
            let evaluation = evaluate_policy(policy, pods.pods(&namespace).map(|p| (&*p.name, &p.facts)), now);
            context.pods_scanned.add(u64::from(evaluation.tally.subjects()), &[]);
            let owners = if enforce { violating_owners(&evaluation, pods.pods(&namespace)) } else { Vec::new() };
            (evaluation, owners)
        };
        record(context, &namespace, &name, policy, &evaluation);
        // The history first, the status last: a failure here is retried (a written status
        // would make the retry look fresh).
        keep_history(context, policy, &evaluation, now).await?;
        let round = match enforce {
            true => {
                Some(context.enforcer.remediate(policy, &owners, &other_enforce_rules(context, policy), now).await?)
            }
            false => None,
        };
        let status = policy_status(policy, &evaluation, round.as_ref(), now);
        reported = Some(evaluation);
        status
    };
    if !status_unchanged(policy.status.as_ref(), &status) {
        let patch = Patch::Apply(serde_json::json!({
            "apiVersion": "devops.stochastic.io/v1", "kind": "DevOpsPolicy",
            "metadata": {"name": name}, "status": status,
        }));
        let policies: Api<DevOpsPolicy> = Api::namespaced(context.client.clone(), &namespace);
        policies.patch_status(&name, &PatchParams::apply(FIELD_MANAGER).force(), &patch).await?;
    }
    if let (Some(reports), Some(evaluation)) = (&context.reports, reported) {
        reports.update(policy, &evaluation, |owner| policy_in_cache(context, &namespace, owner)).await;
    }
    let evaluated = Evaluated { generation: policy.metadata.generation, at: started };
    context.evaluated.lock().unwrap().insert(uid, evaluated);
    context.duration.record(started.elapsed().as_secs_f64(), &[]);
    context.reconciles.add(1, &[KeyValue::new("result", "evaluated")]);
    crate::traces::record_result("evaluated");
    Ok(Action::requeue(context.interval))
}

/// Whether the policy `owner` names (in `namespace`, with its uid) is still in the leader's
/// watch cache: one lookup by name.
fn policy_in_cache(context: &Context, namespace: &str, owner: &OwnerReference) -> bool {
    let store = context.gauges.policies.lock().unwrap();
    let Some(store) = store.as_ref() else { return true };
    store
        .get(&ObjectRef::new(&owner.name).within(namespace))
        .is_some_and(|p| p.metadata.uid.as_deref() == Some(owner.uid.as_str()))
}

/// The controllers (ReplicaSets, Jobs, StatefulSets, DaemonSets, ...) of the pods with
/// violations in `evaluation`, each once.
fn violating_owners<'a>(evaluation: &Evaluation, pods: impl Iterator<Item = &'a CachedPod>) -> Vec<OwnerReference> {
    let violating: HashSet<&str> = evaluation.violations.iter().map(|v| v.pod_name.as_str()).collect();
    let mut seen = HashSet::new();
    pods.filter(|p| violating.contains(&*p.name))
        .filter_map(|p| p.controller.clone())
        .filter(|owner| seen.insert(owner.uid.clone()))
        .collect()
}

/// The rules of the other `enforce` policies of `policy`'s namespace (the admission webhook
/// judges a patch by all of them).
fn other_enforce_rules(context: &Context, policy: &DevOpsPolicy) -> Vec<Rules> {
    let store = context.gauges.policies.lock().unwrap();
    let Some(store) = store.as_ref() else { return Vec::new() };
    store
        .state()
        .iter()
        .filter(|p| p.namespace() == policy.namespace() && p.metadata.uid != policy.metadata.uid)
        .filter(|p| p.spec.enforcement_mode == Some(EnforcementMode::Enforce))
        .map(|p| Rules::from_spec(&p.spec))
        .collect()
}

/// Records `evaluation` as a PolicyAuditResult when it differs from the newest one, and
/// deletes what is beyond the history's length.
async fn keep_history(
    context: &Context,
    policy: &DevOpsPolicy,
    evaluation: &Evaluation,
    now: Timestamp,
) -> Result<(), Error> {
    let results: Api<PolicyAuditResult> =
        Api::namespaced(context.client.clone(), &policy.namespace().unwrap_or_default());
    let uid = policy.metadata.uid.clone().unwrap_or_default();
    let history = results.list(&ListParams::default().labels(&format!("{POLICY_UID_LABEL}={uid}"))).await?.items;
    let candidate = audit_result(policy, evaluation, now);
    if !differs(newest(&history), &candidate) {
        return Ok(());
    }
    let created = results.create(&PostParams::default(), &candidate).await?;
    context.audit_results.add(1, &[]);
    tracing::info!(
        result = created.metadata.name.as_deref().unwrap_or_default(),
        "evaluation changed: {}",
        evaluation.tally.summary()
    );
    // An Event per change of the outcome (not per periodic evaluation).
    let summary = evaluation.tally.summary();
    let note =
        format!("{summary}; recorded as PolicyAuditResult {}", created.metadata.name.as_deref().unwrap_or_default());
    let degraded = summary.classification < Classification::Stable;
    context.events.publish(policy, Reason::Evaluated { degraded }, note).await;
    let mut all = history;
    all.push(created);
    for old in expired(&all, AUDIT_HISTORY) {
        match results.delete(&old, &DeleteParams::default()).await {
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => return Err(e.into()),
            Ok(_) => {}
        }
    }
    Ok(())
}

fn record(context: &Context, namespace: &str, name: &str, policy: &DevOpsPolicy, evaluation: &Evaluation) {
    let summary = evaluation.tally.summary();
    let by_severity = Severity::ALL.map(|severity| u64::from(evaluation.tally.count_by_severity(severity)));
    let gauges = PolicyGauges {
        violations: u64::from(summary.violations),
        score: u64::from(summary.score),
        enforce: policy.spec.enforcement_mode == Some(EnforcementMode::Enforce),
        by_severity,
    };
    context.gauges.values.lock().unwrap().insert((namespace.to_string(), name.to_string()), gauges);
}

#[cfg(test)]
mod tests;

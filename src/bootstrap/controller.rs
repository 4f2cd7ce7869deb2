//! `kube-devops operator`: the shell around the pure functions of [`super`].
//!
//! HTTP `/healthz`, `/readyz` and `/metrics` on `$POD_IP:8081` start first; the replicas elect
//! a leader through the Lease `kube-devops-operator`, and the leader runs a kube-runtime
//! controller over KubeDevopsInstalls that also watches what it installs (Deployments,
//! Services, PodDisruptionBudgets, NetworkPolicies, ConfigMaps, ServiceAccounts, the RBAC objects, the
//! webhook's Secret and ValidatingWebhookConfiguration), so a deleted or edited object is put
//! back within seconds; everything is applied again every hour regardless (server-side applies
//! that change nothing are no writes: an idle cluster sees none of them). It also
//! watches the Prometheus Operator's ServiceMonitor CRD, so automatic ServiceMonitors are
//! created as soon as that CRD is installed, and the PolicyReport CRD, so the install stops
//! being Degraded for its absence as soon as it appears.
//!
//! A reconcile keeps the webhook's certificate while it is valid (else mints a new CA and
//! certificate with OpenSSL), server-side applies every object (forcing: the operator owns
//! what it installs), deletes what the spec switched off, and writes the status when it
//! changed. An object that cannot be applied does not stop the others; it is reported in the
//! Degraded condition.

use super::apply::Applier;
use super::{FIELD_MANAGER, LEASE_NAME, desired, missing_apis, obsolete, reusable_tls, status, with_previous_ca};
use crate::api::policy_report::CRD_NAME as POLICY_REPORT_CRD;
use crate::api::{INSTALL_NAME, KubeDevopsInstall};
use crate::events::{Events, Reason};
use crate::leader;
use crate::manifests::bootstrap::SERVICE_MONITOR_CRD;
use crate::manifests::{APP, ClusterApis, Object, WEBHOOK_TLS_SECRET, web, webhook};
use crate::metrics::{LATENCY_BUCKETS, Metrics, catalog, counter, histogram};
use futures::StreamExt;
use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Histogram, Meter};
use std::sync::Arc;
use std::time::Duration;

/// Everything is applied again this often, also without a change (a safety net: every object
/// is watched; the certificate is checked for renewal too).
pub const RESYNC: Duration = Duration::from_secs(3600);
/// After a failed reconcile: 1 s, doubling with each failure in a row, at most 30 s (a busy
/// API server gets fewer requests; a passing fault costs seconds, not half a minute).
const RETRY_FIRST: Duration = Duration::from_secs(1);
const RETRY_MAX: Duration = Duration::from_secs(30);

/// The pause before the next try after `failures` failed reconciles in a row (1 and more).
pub fn retry_after(failures: u32) -> Duration {
    RETRY_FIRST.saturating_mul(1 << failures.saturating_sub(1).min(5)).min(RETRY_MAX)
}

/// Runs the bootstrap operator until SIGTERM/SIGINT.
pub fn run(addr: String) -> anyhow::Result<()> {
    actix_web::rt::System::new().block_on(async move {
        let watches = crate::cluster::watch_client().await?;
        let writes = crate::cluster::client().await?;
        let metrics = Metrics::new()?;
        let meter = metrics.meter();
        // The components go where the operator runs: that is where OLM grants its Role.
        let namespace = crate::labels::own_namespace();
        tracing::info!(%namespace, "installing into the operator's namespace");
        let lead = move || reconcile_while_leading(watches.clone(), writes.clone(), meter.clone(), namespace.clone());
        leader::serve_elected("operator", LEASE_NAME, &addr, metrics, lead, || {}).await
    })
}

async fn reconcile_while_leading(watches: kube::Client, writes: kube::Client, meter: Meter, namespace: String) {
    let ns = namespace.as_str();
    let all = watcher::Config::default();
    let named = |name: &str| watcher::Config::default().fields(&format!("metadata.name={name}"));
    let c = &watches;
    let changes = futures::stream::select_all([
        changes(Api::<Deployment>::namespaced(c.clone(), ns), all.clone()),
        changes(Api::<Service>::namespaced(c.clone(), ns), all.clone()),
        changes(Api::<PodDisruptionBudget>::namespaced(c.clone(), ns), all.clone()),
        changes(Api::<NetworkPolicy>::namespaced(c.clone(), ns), all.clone()),
        changes(Api::<ConfigMap>::namespaced(c.clone(), ns), all.clone()),
        changes(Api::<ServiceAccount>::namespaced(c.clone(), ns), all.clone()),
        // The only Secret, webhook configuration and RBAC objects it may read are its own.
        changes(Api::<Secret>::namespaced(c.clone(), ns), named(WEBHOOK_TLS_SECRET)),
        changes(Api::<Role>::namespaced(c.clone(), ns), named(APP)),
        changes(Api::<RoleBinding>::namespaced(c.clone(), ns), named(APP)),
        changes(Api::<ClusterRole>::all(c.clone()), named(APP)),
        changes(Api::<ClusterRoleBinding>::all(c.clone()), named(APP)),
        changes(Api::<ClusterRole>::all(c.clone()), named(web::NAME)),
        changes(Api::<ClusterRoleBinding>::all(c.clone()), named(web::NAME)),
        changes(Api::<ValidatingWebhookConfiguration>::all(c.clone()), named(&webhook::webhook_service_name())),
        changes(Api::<CustomResourceDefinition>::all(c.clone()), named(SERVICE_MONITOR_CRD)),
        changes(Api::<CustomResourceDefinition>::all(c.clone()), named(POLICY_REPORT_CRD)),
    ]);
    Controller::new(Api::<KubeDevopsInstall>::all(watches.clone()), all.clone())
        .reconcile_all_on(changes)
        .run(reconcile, retry, Arc::new(Context::new(writes, &meter, namespace.clone())))
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::warn!(error = %e, "reconcile");
            }
        })
        .await;
}

/// A signal for every change of the objects `api` and `config` select, and after every relist:
/// an object deleted while the watch was down (or resumed from a compacted history, 410 Gone)
/// shows in no event, only in a relist that no longer has it, and must be put back too.
fn changes<K>(api: Api<K>, config: watcher::Config) -> futures::stream::BoxStream<'static, ()>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    use kube::runtime::WatchStreamExt;
    watcher(api, config)
        .default_backoff()
        .filter_map(|event| async move {
            match event {
                Ok(watcher::Event::Apply(_) | watcher::Event::Delete(_) | watcher::Event::InitDone) => Some(()),
                Ok(watcher::Event::Init | watcher::Event::InitApply(_)) => None,
                Err(e) => {
                    tracing::debug!(error = %e, "watching the installation's objects; retrying");
                    None
                }
            }
        })
        .boxed()
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Kube(#[from] kube::Error),
    #[error("{0:#}")]
    Other(#[from] anyhow::Error),
}

/// What a reconcile works with.
pub struct Context {
    client: kube::Client,
    /// Where the components are installed (the operator's own namespace).
    namespace: String,
    /// Failed (or degraded) reconciles in a row, for the retry's back-off.
    failures: std::sync::atomic::AtomicU32,
    /// Whether the cluster serves OpenShift's security API, once discovered.
    assigns_ids: tokio::sync::OnceCell<bool>,
    applier: Applier,
    events: Events,
    reconciles: Counter<u64>,
    errors: Counter<u64>,
    duration: Histogram<f64>,
}

impl Context {
    /// A context installing into `namespace` with `client`, recording its metrics into `meter`.
    pub fn new(client: kube::Client, meter: &Meter, namespace: String) -> Context {
        Context {
            namespace,
            failures: Default::default(),
            assigns_ids: Default::default(),
            applier: Applier::new(client.clone(), FIELD_MANAGER),
            events: Events::new(client.clone(), "kube-devops-operator"),
            client,
            reconciles: counter(meter, &catalog::INSTALL_RECONCILES),
            errors: counter(meter, &catalog::INSTALL_RECONCILE_ERRORS),
            duration: histogram(meter, &catalog::INSTALL_RECONCILE_DURATION, LATENCY_BUCKETS),
        }
    }

    /// One more failure in a row: how long to wait before trying again.
    fn failed(&self) -> Duration {
        retry_after(self.failures.fetch_add(1, std::sync::atomic::Ordering::AcqRel) + 1)
    }

    fn error(&self, reason: &str) {
        self.errors.add(1, &[KeyValue::new("reason", reason.to_string())]);
    }
}

fn retry(_: Arc<KubeDevopsInstall>, error: &Error, context: Arc<Context>) -> Action {
    context.reconciles.add(1, &[KeyValue::new("result", "error")]);
    context.error(&match error {
        Error::Kube(e) => crate::metrics::error_reason(e),
        Error::Other(_) => "Other".to_string(),
    });
    let wait = context.failed();
    tracing::warn!(error = %error, retry_seconds = wait.as_secs(), "reconcile failed, retrying");
    Action::requeue(wait)
}

/// Makes the cluster match `install`, and says when to look again.
/// In a span naming the install (a trace when traces are exported) whose `result` says what
/// the reconcile came to: applied, degraded or error.
#[tracing::instrument(name = "reconcile", skip_all, fields(
    kind = "KubeDevopsInstall", name = %install.metadata.name.as_deref().unwrap_or_default(),
    result = tracing::field::Empty, otel.status_code = tracing::field::Empty, otel.status_description = tracing::field::Empty,
))]
pub async fn reconcile(install: Arc<KubeDevopsInstall>, context: Arc<Context>) -> Result<Action, Error> {
    let outcome = reconcile_install(install, &context).await;
    if let Err(e) = &outcome {
        crate::traces::record_error(e);
    }
    outcome
}

async fn reconcile_install(install: Arc<KubeDevopsInstall>, context: &Context) -> Result<Action, Error> {
    if install.metadata.name.as_deref() != Some(INSTALL_NAME) || install.metadata.deletion_timestamp.is_some() {
        // Other names are refused by the schema; a deleted install is garbage-collected.
        return Ok(Action::await_change());
    }
    let started = std::time::Instant::now();
    let client = context.client.clone();
    let namespace = context.namespace.as_str();
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let current = secrets.get_opt(WEBHOOK_TLS_SECRET).await?;
    let now = Timestamp::now();
    let tls = match current.as_ref().and_then(|s| reusable_tls(s, now, namespace)) {
        Some(tls) => tls,
        None => {
            let minted = with_previous_ca(webhook::generate_tls_in(namespace)?, current.as_ref(), now);
            let note = format!("a new webhook CA and serving certificate, valid until {}", minted.not_after);
            context.events.publish(&*install, Reason::CertificateIssued, note).await;
            minted
        }
    };
    let apis = cluster_apis(&client, &context.assigns_ids).await?;
    let mut problems = Vec::new();
    // Only ServiceMonitors without the Prometheus Operator's CRDs: retrying soon will not help
    // (the CRD's appearance starts a reconcile).
    let mut only_missing_crds = true;
    for object in desired(&install, &tls, apis, namespace) {
        if let Err(e) = context.applier.apply(&object).await {
            let missing_crd = missing_service_monitor_crd(&object, &e);
            context.error(&if missing_crd { "MissingCRD".to_string() } else { crate::metrics::error_reason(&e) });
            only_missing_crds &= missing_crd;
            problems.push(if missing_crd {
                format!(
                    "{}: the Prometheus Operator's CRDs are not installed (spec.serviceMonitor.enabled is true; \
                     unset it to create ServiceMonitors only when they are)",
                    object.id()
                )
            } else {
                describe(&object.id(), &e)
            });
        }
    }
    // Reverse install order: the webhook configuration goes before the webhook it calls.
    for gone in obsolete(&install.spec, apis, namespace).into_iter().rev() {
        if let Err(e) = context.applier.delete(&gone).await {
            context.error(&crate::metrics::error_reason(&e));
            problems.push(describe(&format!("{}/{}", gone.kind, gone.name), &e));
        }
    }
    let deployments = Api::<Deployment>::namespaced(client.clone(), namespace)
        .list(&ListParams::default().labels("app.kubernetes.io/name=kube-devops"))
        .await?
        .items;
    for missing in missing_apis(&install.spec, apis) {
        context.error("MissingCRD");
        problems.push(missing);
    }
    let problem = (!problems.is_empty()).then(|| problems.join("; "));
    let new = status(&install, &deployments, problem.as_deref(), apis, Timestamp::now());
    if install.status.as_ref() != Some(&new) {
        // Server-side apply: a field the operator set before and leaves out now (a component
        // switched off) is removed, which a merge patch would keep.
        let patch = Patch::Apply(serde_json::json!({
            "apiVersion": "devops.stochastic.io/v1alpha1", "kind": "KubeDevopsInstall",
            "metadata": {"name": INSTALL_NAME}, "status": new,
        }));
        let params = PatchParams::apply(FIELD_MANAGER).force();
        Api::<KubeDevopsInstall>::all(client).patch_status(INSTALL_NAME, &params, &patch).await?;
    }
    context.duration.record(started.elapsed().as_secs_f64(), &[]);
    let result = if problem.is_some() { "degraded" } else { "applied" };
    context.reconciles.add(1, &[KeyValue::new("result", result)]);
    crate::traces::record_result(result);
    if let Some(problem) = problem {
        tracing::warn!(%problem, "not everything could be applied");
        context.events.publish(&*install, Reason::ApplyFailed, problem.clone()).await;
        return Ok(Action::requeue(if only_missing_crds { RESYNC } else { context.failed() }));
    }
    context.failures.store(0, std::sync::atomic::Ordering::Release);
    Ok(Action::requeue(RESYNC))
}

/// What the cluster serves of the installation's optional APIs: the ServiceMonitor and
/// PolicyReport CRDs are there, Established, and serve the version kube-devops writes.
async fn cluster_apis(
    client: &kube::Client,
    assigns_ids: &tokio::sync::OnceCell<bool>,
) -> Result<ClusterApis, kube::Error> {
    let crds = Api::<CustomResourceDefinition>::all(client.clone());
    let serves = |crd: Option<CustomResourceDefinition>, api: &str| {
        crd.is_some_and(|crd| {
            let established = crd
                .status
                .and_then(|s| s.conditions)
                .unwrap_or_default()
                .iter()
                .any(|c| c.type_ == "Established" && c.status == "True");
            let version = api.rsplit('/').next().unwrap_or_default();
            established && crd.spec.versions.iter().any(|v| v.name == version && v.served)
        })
    };
    // OpenShift's security API is served by its own API server, not a CRD: ask discovery, once
    // (a cluster does not become OpenShift, nor stop being it).
    let (group, version) = ClusterApis::OPENSHIFT_SECURITY_API.split_once('/').unwrap_or_default();
    let assigns_ids = *assigns_ids
        .get_or_try_init(|| async {
            let groups = client.list_api_groups().await?.groups;
            Ok::<_, kube::Error>(
                groups.iter().any(|g| g.name == group && g.versions.iter().any(|v| v.version == version)),
            )
        })
        .await?;
    Ok(ClusterApis {
        service_monitors: serves(crds.get_opt(SERVICE_MONITOR_CRD).await?, ClusterApis::SERVICE_MONITOR_API),
        policy_reports: serves(crds.get_opt(POLICY_REPORT_CRD).await?, ClusterApis::POLICY_REPORT_API),
        assigns_ids,
    })
}

fn missing_service_monitor_crd(object: &Object, error: &kube::Error) -> bool {
    matches!(object, Object::ServiceMonitor(_)) && matches!(error, kube::Error::Api(e) if e.code == 404)
}

fn describe(what: &str, error: &kube::Error) -> String {
    match error {
        kube::Error::Api(e) => format!("{what}: {} ({})", e.message, e.code),
        other => format!("{what}: {other}"),
    }
}

/// The shell against the testkit API server, in process.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_from_a_second_to_half_a_minute() {
        let waits: Vec<u64> = (1..=8).map(|n| retry_after(n).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 30, 30, 30]);
    }
    use crate::api::install::IntegrationState;
    use crate::fixtures::cluster_with_crds;
    use crate::manifests::NAMESPACE;

    const STRICT_MONITORS: &str = "apiVersion: devops.stochastic.io/v1alpha1\nkind: KubeDevopsInstall\n\
                                   metadata: {name: default}\nspec:\n  serviceMonitor: {enabled: true}\n";

    #[tokio::test]
    async fn servicemonitors_asked_for_without_their_crd_degrade_the_install_and_wait_for_the_resync() {
        let cluster = cluster_with_crds();
        cluster.kubectl_as(cluster.kubeconfig(), &["create", "namespace", NAMESPACE], None);
        let out = cluster.kubectl_as(cluster.kubeconfig(), &["apply", "-f", "-"], Some(STRICT_MONITORS));
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let client = cluster.client().await;
        let installs: Api<KubeDevopsInstall> = Api::all(client.clone());
        let metrics = Metrics::new().unwrap();
        let context = Arc::new(Context::new(client, &metrics.meter(), NAMESPACE.to_string()));

        let action = reconcile(Arc::new(installs.get(INSTALL_NAME).await.unwrap()), context.clone()).await.unwrap();
        // Retrying soon would not help: the CRD's appearance starts a reconcile by itself.
        assert_eq!(action, Action::requeue(RESYNC));
        let install = installs.get(INSTALL_NAME).await.unwrap();
        let status = install.status.clone().unwrap();
        let degraded = status.conditions.iter().find(|c| c.type_ == "Degraded").unwrap();
        assert_eq!((degraded.status.as_str(), degraded.reason.as_str()), ("True", "ApplyFailed"));
        assert!(degraded.message.contains("ServiceMonitor/kube-devops-watch"), "{}", degraded.message);
        assert_eq!(status.integrations[0].state, IntegrationState::Missing);
        let exported = metrics.render();
        assert!(exported.contains("kubedevopsinstall_reconcile_total{result=\"degraded\"} 1"), "{exported}");
        // One per ServiceMonitor (three components).
        assert!(exported.contains("kubedevopsinstall_reconcile_errors_total{reason=\"MissingCRD\"} 3"), "{exported}");
        assert!(exported.contains("kubedevopsinstall_reconcile_duration_seconds_count 1"), "{exported}");
        // Everything else was applied.
        let deployments: Api<Deployment> = Api::namespaced(cluster.client().await, NAMESPACE);
        assert_eq!(deployments.list(&ListParams::default()).await.unwrap().items.len(), 3);

        // Once the components are ready (testkit runs their pods without processes) and that
        // is reported, a reconcile with nothing changed writes no status.
        for _ in 0..100 {
            let ready = deployments
                .list(&ListParams::default())
                .await
                .unwrap()
                .items
                .iter()
                .all(|d| d.status.as_ref().and_then(|s| s.ready_replicas) == Some(2));
            if ready {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        reconcile(Arc::new(installs.get(INSTALL_NAME).await.unwrap()), context.clone()).await.unwrap();
        let install = installs.get(INSTALL_NAME).await.unwrap();
        assert!(
            install.status.as_ref().unwrap().conditions.iter().any(|c| c.type_ == "Available" && c.status == "True")
        );
        cluster.clear_requests();
        reconcile(Arc::new(install), context).await.unwrap();
        let status_writes =
            cluster.requests().into_iter().filter(|r| r.resource == "kubedevopsinstalls" && r.is_write()).count();
        assert_eq!(status_writes, 0);
    }

    #[tokio::test]
    async fn policy_reports_without_their_crd_degrade_the_install_until_it_appears() {
        let cluster = cluster_with_crds();
        cluster.kubectl_as(cluster.kubeconfig(), &["create", "namespace", NAMESPACE], None);
        let install = "apiVersion: devops.stochastic.io/v1alpha1\nkind: KubeDevopsInstall\nmetadata: {name: default}\n\
                       spec:\n  serviceMonitor: {enabled: false}\n  policyReports: {enabled: true}\n";
        let out = cluster.kubectl_as(cluster.kubeconfig(), &["apply", "-f", "-"], Some(install));
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let client = cluster.client().await;
        let installs: Api<KubeDevopsInstall> = Api::all(client.clone());
        let metrics = Metrics::new().unwrap();
        let context = Arc::new(Context::new(client, &metrics.meter(), NAMESPACE.to_string()));
        let state = |install: &KubeDevopsInstall| {
            let status = install.status.clone().unwrap();
            let degraded = status.conditions.iter().find(|c| c.type_ == "Degraded").unwrap().clone();
            let reports = status.integrations.iter().find(|i| i.name == "policyReports").unwrap().state;
            (degraded, reports)
        };

        let action = reconcile(Arc::new(installs.get(INSTALL_NAME).await.unwrap()), context.clone()).await.unwrap();
        assert_eq!(action, Action::requeue(RESYNC), "the CRD's appearance starts a reconcile");
        let (degraded, reports) = state(&installs.get(INSTALL_NAME).await.unwrap());
        assert_eq!((degraded.status.as_str(), reports), ("True", IntegrationState::Missing));
        assert!(degraded.message.contains("wgpolicyk8s.io/v1alpha2 PolicyReport"), "{}", degraded.message);
        let reconcile_args = Api::<Deployment>::namespaced(cluster.client().await, NAMESPACE)
            .get("kube-devops-reconcile")
            .await
            .unwrap()
            .spec
            .unwrap()
            .template
            .spec
            .unwrap()
            .containers[0]
            .args
            .clone()
            .unwrap();
        assert!(reconcile_args.contains(&"--policy-reports".to_string()), "{reconcile_args:?}");

        let crd = include_str!("../../tests/schemas/policyreport-crd.yaml");
        let out = cluster.kubectl_as(cluster.kubeconfig(), &["apply", "-f", "-"], Some(crd));
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        reconcile(Arc::new(installs.get(INSTALL_NAME).await.unwrap()), context).await.unwrap();
        let (degraded, reports) = state(&installs.get(INSTALL_NAME).await.unwrap());
        assert_eq!((degraded.status.as_str(), reports), ("False", IntegrationState::Active));
    }
}

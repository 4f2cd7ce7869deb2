//! `kube-devops operator`: the shell around the pure functions of [`super`].
//!
//! HTTP `/healthz`, `/readyz` and `/metrics` on `$POD_IP:8081` start first; the replicas elect
//! a leader through the Lease `kube-devops-operator`, and the leader runs a kube-runtime
//! controller over KubeDevopsInstalls that also watches what it installs (Deployments,
//! Services, PodDisruptionBudgets, ConfigMaps, ServiceAccounts, the webhook's Secret and
//! ValidatingWebhookConfiguration), so a deleted or edited object is put back within seconds;
//! everything is reconciled again every five minutes regardless.
//!
//! A reconcile keeps the webhook's certificate while it is valid (else mints a new CA and
//! certificate with OpenSSL), server-side applies every object (forcing: the operator owns
//! what it installs), deletes what the spec switched off, and writes the status when it
//! changed. An object that cannot be applied does not stop the others; it is reported in the
//! Degraded condition.

use super::{FIELD_MANAGER, LEASE_NAME, ObjectRef, desired, obsolete, reusable_tls, status};
use crate::api::{INSTALL_NAME, KubeDevopsInstall};
use crate::leader::{self, Election, Shutdown};
use crate::manifests::{NAMESPACE, Object, WEBHOOK_TLS_SECRET, webhook};
use crate::metrics::Metrics;
use futures::StreamExt;
use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service, ServiceAccount};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube::core::GroupVersionKind;
use kube::discovery::ApiResource;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

/// Everything is applied again this often, also without a change.
const RESYNC: Duration = Duration::from_secs(300);
/// After a failed reconcile.
const RETRY: Duration = Duration::from_secs(30);

/// Runs the bootstrap operator until SIGTERM/SIGINT.
pub fn run(addr: String) -> anyhow::Result<()> {
    actix_web::rt::System::new().block_on(async move {
        let metrics = Metrics::new()?;
        let ready = Arc::new(AtomicBool::new(false));
        let client = crate::cluster::watch_client().await?;
        let shutdown = Shutdown::default();
        let election = Election::from_env(LEASE_NAME, "operator");
        eprintln!("operator: serving HTTP on {addr} as {}", election.identity);
        let elected = tokio::spawn(leader::run(
            client.clone(),
            election,
            ready.clone(),
            shutdown.clone(),
            move || reconcile_while_leading(client.clone()),
            || {},
        ));
        crate::http::serve(&addr, metrics, ready, "the leader-election lease could not be read yet").await?;
        shutdown.trigger();
        match tokio::time::timeout(Duration::from_secs(5), elected).await {
            Ok(Ok(Err(e))) => eprintln!("operator: leader election: {e:#}"),
            Err(_) => eprintln!("operator: the lease was not released within 5 s"),
            _ => {}
        }
        Ok(())
    })
}

async fn reconcile_while_leading(client: kube::Client) {
    let all = watcher::Config::default();
    let named = |name: &str| watcher::Config::default().fields(&format!("metadata.name={name}"));
    Controller::new(Api::<KubeDevopsInstall>::all(client.clone()), all.clone())
        .owns(Api::<Deployment>::namespaced(client.clone(), NAMESPACE), all.clone())
        .owns(Api::<Service>::namespaced(client.clone(), NAMESPACE), all.clone())
        .owns(Api::<PodDisruptionBudget>::namespaced(client.clone(), NAMESPACE), all.clone())
        .owns(Api::<ConfigMap>::namespaced(client.clone(), NAMESPACE), all.clone())
        .owns(Api::<ServiceAccount>::namespaced(client.clone(), NAMESPACE), all.clone())
        // The only Secret and webhook configuration it may read are its own.
        .owns(Api::<Secret>::namespaced(client.clone(), NAMESPACE), named(WEBHOOK_TLS_SECRET))
        .owns(Api::<ValidatingWebhookConfiguration>::all(client.clone()), named(&webhook::webhook_service_name()))
        .run(reconcile, retry, Arc::new(client))
        .for_each(|result| async move {
            if let Err(e) = result {
                eprintln!("operator: {e}");
            }
        })
        .await;
}

#[derive(Debug, thiserror::Error)]
enum Error {
    #[error("{0}")]
    Kube(#[from] kube::Error),
    #[error("{0:#}")]
    Other(#[from] anyhow::Error),
}

fn retry(_: Arc<KubeDevopsInstall>, error: &Error, _: Arc<kube::Client>) -> Action {
    eprintln!("operator: reconcile failed, retrying in {}s: {error}", RETRY.as_secs());
    Action::requeue(RETRY)
}

async fn reconcile(install: Arc<KubeDevopsInstall>, client: Arc<kube::Client>) -> Result<Action, Error> {
    if install.metadata.name.as_deref() != Some(INSTALL_NAME) || install.metadata.deletion_timestamp.is_some() {
        // Other names are refused by the schema; a deleted install is garbage-collected.
        return Ok(Action::await_change());
    }
    let client = (*client).clone();
    let secrets: Api<Secret> = Api::namespaced(client.clone(), NAMESPACE);
    let kept = secrets.get_opt(WEBHOOK_TLS_SECRET).await?.and_then(|s| reusable_tls(&s, Timestamp::now()));
    let tls = match kept {
        Some(tls) => tls,
        None => {
            eprintln!("operator: minting a new webhook CA and certificate");
            webhook::generate_tls()?
        }
    };
    let mut problems = Vec::new();
    for object in desired(&install, &tls) {
        if let Err(e) = apply(&client, &object).await {
            problems.push(describe(&object.id(), &e));
        }
    }
    for gone in obsolete(&install.spec) {
        if let Err(e) = delete(&client, &gone).await {
            problems.push(describe(&format!("{}/{}", gone.kind, gone.name), &e));
        }
    }
    let deployments = Api::<Deployment>::namespaced(client.clone(), NAMESPACE)
        .list(&ListParams::default().labels("app.kubernetes.io/name=kube-devops"))
        .await?
        .items;
    let problem = (!problems.is_empty()).then(|| problems.join("; "));
    let new = status(&install, &deployments, problem.as_deref(), Timestamp::now());
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
    if let Some(problem) = problem {
        eprintln!("operator: not everything could be applied: {problem}");
        return Ok(Action::requeue(RETRY));
    }
    Ok(Action::requeue(RESYNC))
}

fn describe(what: &str, error: &kube::Error) -> String {
    match error {
        kube::Error::Api(e) if e.code == 404 && what.starts_with("ServiceMonitor/") => {
            format!("{what}: the Prometheus Operator's CRDs are not installed (set spec.serviceMonitor.enabled: false)")
        }
        kube::Error::Api(e) => format!("{what}: {} ({})", e.message, e.code),
        other => format!("{what}: {other}"),
    }
}

fn api_for(client: &kube::Client, api_version: &str, kind: &str, namespace: Option<&str>) -> Api<DynamicObject> {
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let resource = ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, kind));
    match namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &resource),
        None => Api::all_with(client.clone(), &resource),
    }
}

async fn apply(client: &kube::Client, object: &Object) -> Result<(), kube::Error> {
    let api = api_for(client, &object.api_version(), &object.kind(), object.namespace());
    let params = PatchParams::apply(FIELD_MANAGER).force();
    api.patch(object.name(), &params, &Patch::Apply(object)).await.map(|_| ())
}

async fn delete(client: &kube::Client, gone: &ObjectRef) -> Result<(), kube::Error> {
    let api = api_for(client, &gone.api_version, &gone.kind, gone.namespace.as_deref());
    match api.delete(&gone.name, &DeleteParams::background()).await {
        Ok(_) => Ok(()),
        // Already gone; or a ServiceMonitor whose CRD is not installed.
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(e),
    }
}

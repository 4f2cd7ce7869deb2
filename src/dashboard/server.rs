//! `kube-devops dashboard`: the page of [`super::html`] served live from the cluster in
//! `KUBECONFIG` (or the pod's service account), built again on every load: every pod scored by
//! a bundle, as `analyze` does, and the DevOpsPolicies with their recent PolicyAuditResults.
//! Read-only: it lists pods, DevOpsPolicies and PolicyAuditResults and writes nothing.
//! `/healthz` answers once the server runs; `/readyz` once the cluster could be read.

use super::{Page, PolicyView};
use crate::api::bundles::{Bundle, BundleName};
use crate::api::{DevOpsPolicy, PolicyAuditResult};
use crate::audit::input::SourcedWorkload;
use crate::audit::report::{AuditReport, PolicySource};
use crate::governance::Rules;
use actix_web::{App, HttpResponse, HttpServer, web};
use anyhow::Context;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ListParams};
use std::sync::atomic::{AtomicBool, Ordering};

/// The port the dashboard listens on in its pod.
pub const PORT: u16 = 8090;

/// The address to bind when none is given: every interface, so that `kubectl port-forward`
/// (which connects to localhost inside the pod) reaches it as well as the Service.
pub fn default_addr() -> String {
    format!("0.0.0.0:{PORT}")
}

struct State {
    client: kube::Client,
    bundle: BundleName,
    ready: AtomicBool,
}

/// Serves the dashboard until SIGTERM/SIGINT.
pub fn serve(addr: String, bundle: BundleName) -> anyhow::Result<()> {
    actix_web::rt::System::new().block_on(async move {
        let client = crate::cluster::client().await?;
        let state = web::Data::new(State { client, bundle, ready: AtomicBool::new(false) });
        tracing::info!(%addr, "serving the dashboard over HTTP");
        HttpServer::new({
            let state = state.clone();
            move || {
                App::new()
                    .app_data(state.clone())
                    .route("/", web::get().to(index))
                    .route("/healthz", web::get().to(|| async { HttpResponse::Ok().body("ok") }))
                    .route("/readyz", web::get().to(readyz))
            }
        })
        .workers(2)
        .bind(&addr)
        .with_context(|| format!("cannot listen on {addr}"))?
        .run()
        .await?;
        Ok(())
    })
}

async fn readyz(state: web::Data<State>) -> HttpResponse {
    if !state.ready.load(Ordering::Acquire) {
        // Ready once the cluster answers with what the page needs.
        let pods: Api<k8s_openapi::api::core::v1::Pod> = Api::all(state.client.clone());
        if pods.list(&ListParams::default().limit(1)).await.is_ok() {
            state.ready.store(true, Ordering::Release);
        }
    }
    match state.ready.load(Ordering::Acquire) {
        true => HttpResponse::Ok().body("ok"),
        false => HttpResponse::ServiceUnavailable().body("the cluster could not be read yet"),
    }
}

async fn index(state: web::Data<State>) -> HttpResponse {
    match page(&state.client, state.bundle).await {
        Ok(page) => HttpResponse::Ok()
            .content_type("text/html; charset=utf-8")
            .insert_header(("Cache-Control", "no-store"))
            .body(super::html::render(&page)),
        Err(e) => {
            tracing::warn!(error = format!("{e:#}"), "cannot build the dashboard");
            HttpResponse::ServiceUnavailable()
                .content_type("text/plain; charset=utf-8")
                .body(format!("the cluster could not be read: {e:#}"))
        }
    }
}

/// The page for the cluster now.
async fn page(client: &kube::Client, bundle: BundleName) -> anyhow::Result<Page> {
    let pods = crate::cluster::list_pods(client.clone(), None).await.context("listing pods")?;
    let workloads = SourcedWorkload::from_pods(pods);
    let rules = Rules::from_spec(&Bundle::of(bundle).spec);
    let report = AuditReport::build(PolicySource::bundle(bundle), &rules, &workloads, Timestamp::now());
    let policies = Api::<DevOpsPolicy>::all(client.clone()).list(&ListParams::default()).await;
    let results = Api::<PolicyAuditResult>::all(client.clone()).list(&ListParams::default()).await;
    // A cluster without the CRDs (or RBAC for them) still gets its scores.
    let (policies, results) = match (policies, results) {
        (Ok(p), Ok(r)) => (p.items, r.items),
        (p, r) => {
            let error = p.err().or(r.err()).map(|e| e.to_string()).unwrap_or_default();
            tracing::warn!(%error, "cannot list DevOpsPolicies or PolicyAuditResults");
            (Vec::new(), Vec::new())
        }
    };
    let mut views: Vec<PolicyView> = policies.iter().map(|p| PolicyView::of(p, &results)).collect();
    views.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    Ok(Page {
        title: "kube-devops dashboard".into(),
        source: "the cluster, now (reload to refresh)".into(),
        generated: Timestamp::now(),
        report,
        policies: views,
    })
}

//! `kube-devops webhook serve`: the HTTPS server around [`super::decide`].
//!
//! DevOpsPolicies come from a watch-fed cache (no API call per admission request); `/readyz`
//! answers 200 once that cache has synced, so a replica takes traffic only when it can judge.
//! `/healthz` answers as soon as the server runs. A body that is not an AdmissionReview gets a
//! 400, which the API server treats by the webhook's failurePolicy (Ignore: fail open).

use super::decide;
use crate::api::DevOpsPolicy;
use actix_web::{App, HttpResponse, HttpServer, web};
use anyhow::Context;
use futures::StreamExt;
use k8s_openapi::jiff::Timestamp;
use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use openssl::ssl::{SslAcceptor, SslFiletype, SslMethod};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Where and how the webhook serves.
#[derive(Clone, Debug)]
pub struct WebhookOptions {
    pub addr: String,
    pub tls_cert: PathBuf,
    pub tls_key: PathBuf,
}

/// The address to bind when none is given: the pod's own IP when known (`POD_IP`, from the
/// downward API), so that replicas sharing a host never collide; else every interface.
pub fn default_addr() -> String {
    match std::env::var("POD_IP") {
        Ok(ip) if !ip.is_empty() => format!("{ip}:8443"),
        _ => "0.0.0.0:8443".to_string(),
    }
}

struct State {
    policies: Store<DevOpsPolicy>,
    ready: Arc<AtomicBool>,
}

fn tls(opts: &WebhookOptions) -> anyhow::Result<openssl::ssl::SslAcceptorBuilder> {
    let mut acceptor = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls())?;
    acceptor
        .set_private_key_file(&opts.tls_key, SslFiletype::PEM)
        .with_context(|| format!("cannot load the TLS key {}", opts.tls_key.display()))?;
    acceptor
        .set_certificate_chain_file(&opts.tls_cert)
        .with_context(|| format!("cannot load the TLS certificate {}", opts.tls_cert.display()))?;
    acceptor.check_private_key().context("the TLS key does not match the certificate")?;
    Ok(acceptor)
}

/// Runs the webhook until SIGTERM/SIGINT (then drains in-flight requests).
pub fn serve(opts: WebhookOptions) -> anyhow::Result<()> {
    let acceptor = tls(&opts)?;
    actix_web::rt::System::new().block_on(async move {
        let client = crate::cluster::watch_client().await?;
        let (store, writer) = reflector::store();
        let ready = Arc::new(AtomicBool::new(false));
        let policies = watcher(kube::Api::<DevOpsPolicy>::all(client), watcher::Config::default()).default_backoff();
        actix_web::rt::spawn(reflector::reflector(writer, policies).for_each(|event| async move {
            if let Err(e) = event {
                eprintln!("webhook: watching DevOpsPolicies: {e}");
            }
        }));
        let (synced_store, synced) = (store.clone(), ready.clone());
        actix_web::rt::spawn(async move {
            if synced_store.wait_until_ready().await.is_ok() {
                synced.store(true, Ordering::Release);
            }
        });
        let state = web::Data::new(State { policies: store, ready });
        eprintln!("webhook: serving HTTPS on {}", opts.addr);
        HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                // An UPDATE carries two objects (and often a last-applied annotation): far more
                // than actix's 256 KiB default body limit.
                .app_data(web::PayloadConfig::new(8 * 1024 * 1024))
                .route("/healthz", web::get().to(|| async { HttpResponse::Ok().body("ok") }))
                .route("/readyz", web::get().to(readyz))
                .route("/validate", web::post().to(validate))
        })
        .bind_openssl(&opts.addr, acceptor)
        .with_context(|| format!("cannot listen on {}", opts.addr))?
        .run()
        .await?;
        Ok(())
    })
}

async fn readyz(state: web::Data<State>) -> HttpResponse {
    if state.ready.load(Ordering::Acquire) {
        HttpResponse::Ok().body("ok")
    } else {
        HttpResponse::ServiceUnavailable().body("DevOpsPolicy cache not synced")
    }
}

async fn validate(state: web::Data<State>, body: web::Bytes) -> HttpResponse {
    let review: AdmissionReview<DynamicObject> = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return HttpResponse::BadRequest()
                .json(AdmissionResponse::invalid(format!("not an AdmissionReview: {e}")).into_review());
        }
    };
    let request: AdmissionRequest<DynamicObject> = match review.try_into() {
        Ok(r) => r,
        Err(e) => {
            return HttpResponse::BadRequest()
                .json(AdmissionResponse::invalid(format!("no request in the AdmissionReview: {e}")).into_review());
        }
    };
    let namespace = request.namespace.clone().unwrap_or_default();
    let policies: Vec<DevOpsPolicy> = state
        .policies
        .state()
        .iter()
        .filter(|p| p.metadata.namespace.as_deref() == Some(namespace.as_str()))
        .map(|p| (**p).clone())
        .collect();
    let decision = decide(&request, &policies, Timestamp::now());
    HttpResponse::Ok().json(decision.into_response(&request).into_review())
}

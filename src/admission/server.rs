//! `kube-devops webhook serve`: the HTTPS server around [`super::decide`].
//!
//! DevOpsPolicies come from a watch-fed cache (no API call per admission request); `/readyz`
//! answers 200 once that cache has synced, so a replica takes traffic only when it can judge.
//! `/healthz` answers as soon as the server runs. A body that is not an AdmissionReview gets a
//! 400, which the API server treats by the webhook's failurePolicy (Ignore: fail open).
//! The serving certificate is reloaded when its files change (the kubelet updates a mounted
//! Secret in place when the certificate is rotated), so rotation needs no restart.
//! `/metrics` serves the webhook's Prometheus metrics over the same HTTPS port. On SIGTERM it
//! keeps serving for a drain delay with `/readyz` failing, so rollouts and node drains never
//! send the API server to a closed port, then finishes in-flight requests and exits.

use super::{TrustedControllers, decide};
use crate::api::DevOpsPolicy;
use crate::metrics::webhook::AdmissionRecord;
use crate::metrics::{Metrics, WebhookMetrics};
use actix_web::{App, HttpResponse, HttpServer, web};
use anyhow::Context;
use futures::StreamExt;
use k8s_openapi::jiff::Timestamp;
use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use openssl::ssl::{SslAcceptor, SslContext, SslFiletype, SslMethod};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime};

/// How often the certificate files are checked for changes.
const CERT_CHECK_INTERVAL: Duration = Duration::from_secs(5);
pub use crate::manifests::deployments::{
    WEBHOOK_DRAIN_DELAY as DRAIN_DELAY, WEBHOOK_SHUTDOWN_TIMEOUT as SHUTDOWN_TIMEOUT,
};

/// Where and how the webhook serves.
#[derive(Clone, Debug)]
pub struct WebhookOptions {
    pub addr: String,
    pub tls_cert: PathBuf,
    pub tls_key: PathBuf,
    pub trusted: TrustedControllers,
    /// How long to keep serving after SIGTERM ([`DRAIN_DELAY`] in a pod).
    pub drain: Duration,
}

/// The address to bind when none is given: the pod's own IP when known (`POD_IP`, from the
/// downward API), so that replicas sharing a host never collide; else every interface.
pub fn default_addr() -> String {
    crate::http::pod_addr(8443)
}

struct State {
    policies: Store<DevOpsPolicy>,
    trusted: TrustedControllers,
    ready: Arc<AtomicBool>,
    /// Set on SIGTERM: `/readyz` fails so the endpoint is withdrawn while requests are served.
    draining: Arc<AtomicBool>,
    metrics: Metrics,
    recorded: WebhookMetrics,
}

/// An acceptor configured with the certificate and key files.
fn acceptor(cert: &Path, key: &Path) -> anyhow::Result<openssl::ssl::SslAcceptorBuilder> {
    let mut acceptor = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls())?;
    acceptor
        .set_private_key_file(key, SslFiletype::PEM)
        .with_context(|| format!("cannot load the TLS key {}", key.display()))?;
    acceptor
        .set_certificate_chain_file(cert)
        .with_context(|| format!("cannot load the TLS certificate {}", cert.display()))?;
    acceptor.check_private_key().context("the TLS key does not match the certificate")?;
    Ok(acceptor)
}

fn modified(paths: [&Path; 2]) -> Option<[SystemTime; 2]> {
    let time = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    Some([time(paths[0])?, time(paths[1])?])
}

/// The TLS setup: every handshake takes the current certificate from `current`, which a
/// background task replaces when the files change (a half-written pair is kept out by
/// loading both files and checking that they match before swapping).
fn tls(opts: &WebhookOptions) -> anyhow::Result<(openssl::ssl::SslAcceptorBuilder, Arc<RwLock<SslContext>>)> {
    let current = Arc::new(RwLock::new(acceptor(&opts.tls_cert, &opts.tls_key)?.build().into_context()));
    let mut builder = acceptor(&opts.tls_cert, &opts.tls_key)?;
    let handshake_view = current.clone();
    builder.set_servername_callback(move |ssl, _| {
        let context = handshake_view.read().unwrap_or_else(|e| e.into_inner());
        ssl.set_ssl_context(&context).map_err(|_| openssl::ssl::SniError::ALERT_FATAL)
    });
    Ok((builder, current))
}

async fn reload_certificates(opts: WebhookOptions, current: Arc<RwLock<SslContext>>) {
    let mut seen = modified([&opts.tls_cert, &opts.tls_key]);
    loop {
        actix_web::rt::time::sleep(CERT_CHECK_INTERVAL).await;
        let now = modified([&opts.tls_cert, &opts.tls_key]);
        if now.is_none() || now == seen {
            continue;
        }
        match acceptor(&opts.tls_cert, &opts.tls_key) {
            Ok(a) => {
                *current.write().unwrap_or_else(|e| e.into_inner()) = a.build().into_context();
                seen = now;
                tracing::info!(path = %opts.tls_cert.display(), "reloaded the serving certificate");
            }
            // Mid-update (key and certificate from different pairs): try again next time.
            Err(e) => tracing::info!(error = format!("{e:#}"), "not reloading the certificate yet"),
        }
    }
}

/// Runs the webhook until SIGTERM/SIGINT (then drains in-flight requests).
pub fn serve(opts: WebhookOptions) -> anyhow::Result<()> {
    let (acceptor, current_certificate) = tls(&opts)?;
    actix_web::rt::System::new().block_on(async move {
        actix_web::rt::spawn(reload_certificates(opts.clone(), current_certificate));
        let client = crate::cluster::watch_client().await?;
        let (store, writer) = reflector::store();
        let ready = Arc::new(AtomicBool::new(false));
        let policies = watcher(kube::Api::<DevOpsPolicy>::all(client), watcher::Config::default()).default_backoff();
        actix_web::rt::spawn(reflector::reflector(writer, policies).for_each(|event| async move {
            if let Err(e) = event {
                tracing::warn!(error = %e, "watching DevOpsPolicies");
            }
        }));
        let (synced_store, synced) = (store.clone(), ready.clone());
        actix_web::rt::spawn(async move {
            if synced_store.wait_until_ready().await.is_ok() {
                synced.store(true, Ordering::Release);
            }
        });
        let metrics = Metrics::new()?;
        let recorded = WebhookMetrics::new(&metrics.meter());
        let draining = Arc::new(AtomicBool::new(false));
        let state = web::Data::new(State {
            policies: store,
            trusted: opts.trusted.clone(),
            ready,
            draining: draining.clone(),
            metrics,
            recorded,
        });
        tracing::info!(addr = %opts.addr, "serving HTTPS");
        let server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                // An UPDATE carries two objects (and often a last-applied annotation): far more
                // than actix's 256 KiB default body limit.
                .app_data(web::PayloadConfig::new(8 * 1024 * 1024))
                .route("/healthz", web::get().to(|| async { HttpResponse::Ok().body("ok") }))
                .route("/readyz", web::get().to(readyz))
                .route("/validate", web::post().to(validate))
                .route("/metrics", web::get().to(serve_metrics))
        })
        // Signals are ours: actix would stop listening at once, while the API server still
        // sends requests to this pod until its endpoint is withdrawn.
        .disable_signals()
        .shutdown_timeout(SHUTDOWN_TIMEOUT.as_secs())
        // Nagle's algorithm holds back the last TLS record of a response until the client's
        // delayed ACK (~40 ms): one request in a thousand waited that long before this.
        .tcp_nodelay(true)
        .bind_openssl(&opts.addr, acceptor)
        .with_context(|| format!("cannot listen on {}", opts.addr))?
        .run();
        let handle = server.handle();
        actix_web::rt::spawn(async move {
            terminated().await;
            draining.store(true, Ordering::Release);
            tracing::info!(
                drain_seconds = opts.drain.as_secs(),
                "terminating: not ready, serving on while the endpoint is withdrawn"
            );
            actix_web::rt::time::sleep(opts.drain).await;
            handle.stop(true).await;
        });
        server.await?;
        Ok(())
    })
}

/// SIGTERM (the kubelet stopping the pod) or SIGINT.
async fn terminated() {
    use actix_web::rt::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = actix_web::rt::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = actix_web::rt::signal::ctrl_c().await;
        }
    }
}

async fn readyz(state: web::Data<State>) -> HttpResponse {
    if state.draining.load(Ordering::Acquire) {
        HttpResponse::ServiceUnavailable().body("terminating")
    } else if state.ready.load(Ordering::Acquire) {
        HttpResponse::Ok().body("ok")
    } else {
        HttpResponse::ServiceUnavailable().body("DevOpsPolicy cache not synced")
    }
}

async fn serve_metrics(state: web::Data<State>) -> HttpResponse {
    crate::http::metrics_response(&state.metrics)
}

async fn validate(state: web::Data<State>, http: actix_web::HttpRequest, body: web::Bytes) -> HttpResponse {
    let started = Instant::now();
    let span = tracing::info_span!(
        "admission",
        operation = tracing::field::Empty,
        kind = tracing::field::Empty,
        namespace = tracing::field::Empty,
        name = tracing::field::Empty,
        decision = tracing::field::Empty,
        violations = tracing::field::Empty,
    );
    crate::traces::continue_trace(&span, http.headers().iter().map(|(k, v)| (k.as_str(), v.to_str().ok())));
    let _entered = span.enter();
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
    let decision = decide(&request, &policies, &state.trusted, Timestamp::now());
    let operation = serde_json::to_value(&request.operation).ok();
    let operation = operation.as_ref().and_then(|o| o.as_str()).unwrap_or("UNKNOWN");
    span.record("operation", operation);
    span.record("kind", request.kind.kind.as_str());
    span.record("namespace", namespace.as_str());
    span.record("name", request.name.as_str());
    span.record("decision", if decision.allowed { "allowed" } else { "denied" });
    span.record("violations", decision.violations.len() as u64);
    state.recorded.record(&AdmissionRecord {
        operation,
        namespace: &namespace,
        allowed: decision.allowed,
        violations: &decision.violations,
        seconds: started.elapsed().as_secs_f64(),
    });
    HttpResponse::Ok().json(decision.into_response(&request).into_review())
}

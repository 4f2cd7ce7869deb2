//! The plain-HTTP endpoints every controller serves (the webhook serves the same paths over
//! HTTPS itself): `/healthz` (the process runs), `/readyz` (200 once `ready` is true) and
//! `/metrics` (the component's Prometheus metrics).

use crate::metrics::Metrics;
use actix_web::{App, HttpResponse, HttpServer, web};
use anyhow::Context;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// The address a component listens on: the pod's own IP (`$POD_IP`, from the downward API)
/// so replicas sharing a host never collide, else every interface.
pub fn pod_addr(port: u16) -> String {
    match std::env::var("POD_IP") {
        Ok(ip) if !ip.is_empty() => format!("{ip}:{port}"),
        _ => format!("0.0.0.0:{port}"),
    }
}

struct Endpoints {
    metrics: Metrics,
    ready: Arc<AtomicBool>,
    /// What `/readyz` says while not ready.
    not_ready: &'static str,
}

/// Serves the endpoints on `addr` until SIGTERM/SIGINT (actix drains in-flight requests).
pub async fn serve(
    addr: &str,
    metrics: Metrics,
    ready: Arc<AtomicBool>,
    not_ready: &'static str,
) -> anyhow::Result<()> {
    let endpoints = web::Data::new(Endpoints { metrics, ready, not_ready });
    HttpServer::new(move || {
        App::new()
            .app_data(endpoints.clone())
            .route("/healthz", web::get().to(|| async { HttpResponse::Ok().body("ok") }))
            .route("/readyz", web::get().to(readyz))
            .route("/metrics", web::get().to(metrics_text))
    })
    .workers(1)
    .bind(addr)
    .with_context(|| format!("cannot listen on {addr}"))?
    .run()
    .await?;
    Ok(())
}

async fn readyz(endpoints: web::Data<Endpoints>) -> HttpResponse {
    if endpoints.ready.load(Ordering::Acquire) {
        HttpResponse::Ok().body("ok")
    } else {
        HttpResponse::ServiceUnavailable().body(endpoints.not_ready)
    }
}

async fn metrics_text(endpoints: web::Data<Endpoints>) -> HttpResponse {
    metrics_response(&endpoints.metrics)
}

/// `/metrics`: the Prometheus text format.
pub fn metrics_response(metrics: &Metrics) -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain; version=0.0.4; charset=utf-8").body(metrics.render())
}

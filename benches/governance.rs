//! Governance engine throughput: one 3-container pod, scoring 10,000 pods, and reading a
//! pod's JSON into what the engine evaluates (what the watch caches do per event).
//! Goal: median under 2 µs per pod. Run with `cargo bench --bench governance`.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use k8s_openapi::jiff::Timestamp;
use kube_devops::api::bundles::{Bundle, BundleName};
use kube_devops::governance::{PodFacts, Rules, Tally, evaluate_into};
use serde_json::json;
use std::hint::black_box;

/// A realistic pod: an app with probes and resources, a sidecar without, an init container;
/// `variant` varies images, restarts and phase so that scoring sees a mix.
fn pod(variant: usize) -> serde_json::Value {
    let image = if variant.is_multiple_of(3) {
        "nginx:latest".to_string()
    } else {
        format!("ghcr.io/example/app:v1.{variant}")
    };
    let phase = if variant.is_multiple_of(50) { "Pending" } else { "Running" };
    json!({
        "metadata": {"name": format!("app-{variant}"), "namespace": format!("ns-{}", variant % 20), "creationTimestamp": "2026-11-26T11:00:00Z"},
        "spec": {
            "initContainers": [{"name": "init", "image": "busybox:1.36.1", "resources": {"limits": {"cpu": "100m", "memory": "32Mi"}}}],
            "containers": [
                {"name": "app", "image": image,
                 "livenessProbe": {"httpGet": {"path": "/healthz", "port": 8080}},
                 "readinessProbe": {"httpGet": {"path": "/readyz", "port": 8080}},
                 "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"cpu": "250m", "memory": "128Mi"}}},
                {"name": "proxy", "image": "envoyproxy/envoy:v1.31.2", "readinessProbe": {"tcpSocket": {"port": 9901}}},
                {"name": "logs", "image": "fluent/fluent-bit"}
            ]
        },
        "status": {"phase": phase, "containerStatuses": [
            {"name": "app", "image": "x", "imageID": "", "ready": true, "restartCount": (variant % 7) as i32},
            {"name": "proxy", "image": "x", "imageID": "", "ready": true, "restartCount": 0},
            {"name": "logs", "image": "x", "imageID": "", "ready": true, "restartCount": 1}
        ]}
    })
}

fn facts(pod: serde_json::Value) -> PodFacts {
    serde_json::from_value(pod).expect("benchmark pod is valid")
}

fn benches(c: &mut Criterion) {
    let rules = Rules::from_spec(&Bundle::of(BundleName::Restricted).spec);
    let now: Timestamp = "2026-11-26T12:00:00Z".parse().unwrap();

    let one = facts(pod(3));
    let mut findings = Vec::new();
    c.bench_function("evaluate 3-container pod", |b| {
        b.iter(|| {
            evaluate_into(black_box(&one), &rules, now, &mut findings);
            black_box(findings.len())
        })
    });

    let json = serde_json::to_vec(&pod(3)).unwrap();
    c.bench_function("read a pod's JSON into its facts", |b| {
        b.iter(|| black_box(serde_json::from_slice::<PodFacts>(black_box(&json)).unwrap().containers.len()))
    });

    let pods: Vec<PodFacts> = (0..10_000).map(|v| facts(pod(v))).collect();
    let mut group = c.benchmark_group("score pods");
    group.throughput(Throughput::Elements(pods.len() as u64));
    group.bench_with_input(BenchmarkId::from_parameter(pods.len()), &pods, |b, pods| {
        let mut findings = Vec::new();
        b.iter(|| {
            let mut tally = Tally::default();
            for pod in pods {
                evaluate_into(pod, &rules, now, &mut findings);
                tally.add(&findings);
            }
            black_box(tally.score())
        })
    });
    group.finish();
}

criterion_group!(governance, benches);
criterion_main!(governance);

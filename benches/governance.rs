//! Governance engine throughput: one 3-container pod, scoring 10,000 pods, and reading a
//! pod's JSON into what the engine evaluates (what the watch caches do per event), each with
//! the restricted bundle and with every check of the catalogue on (the reference is the
//! original six checks of the permissive bundle, in the same run).
//! Goal: median under 2 µs per pod with every check on. Run with `cargo bench --bench governance`.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use k8s_openapi::jiff::Timestamp;
use kube_devops::api::DevOpsPolicySpec;
use kube_devops::api::bundles::{Bundle, BundleName};
use kube_devops::governance::{PodFacts, Rules, assess, evaluate_into};
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

/// A policy that turns every check of the catalogue on.
fn every_check() -> Rules {
    let spec: DevOpsPolicySpec = serde_json::from_value(json!({
        "forbidLatestTag": true, "requireLivenessProbe": true, "requireReadinessProbe": true,
        "requireResources": true, "maxRestartCount": 3, "forbidPendingDuration": 300,
        "security": {"forbidRunAsRoot": true, "forbidPrivileged": true, "forbidPrivilegeEscalation": true,
            "requireReadOnlyRootFilesystem": true, "forbidDangerousCapabilities": true,
            "requireDropAllCapabilities": true, "requireSeccompProfile": true},
        "hostAccess": {"forbidHostNetwork": true, "forbidHostPID": true, "forbidHostIPC": true,
            "forbidHostPorts": true, "forbidHostPath": true},
        "resources": {"requireCpuRequest": true, "requireCpuLimit": true, "requireMemoryRequest": true,
            "requireMemoryLimit": true},
        "reliability": {"forbidSingleReplica": true, "requirePullPolicyAlways": true,
            "forbidServiceAccountTokenAutomount": true, "allowedRegistries": ["ghcr.io/example", "docker.io"],
            "requireTopologySpread": true},
        "runtime": {"forbidCrashLoop": true, "forbidOOMKilled": true, "forbidImagePullErrors": true}
    }))
    .expect("a valid spec");
    let rules = Rules::from_spec(&spec);
    assert_eq!(rules.checks().count(), kube_devops::api::CheckId::ALL.len(), "every check on");
    rules
}

fn benches(c: &mut Criterion) {
    let policies = [
        ("original six", Rules::from_spec(&Bundle::of(BundleName::Permissive).spec)),
        ("restricted", Rules::from_spec(&Bundle::of(BundleName::Restricted).spec)),
        ("every check", every_check()),
    ];
    let now: Timestamp = "2026-11-26T12:00:00Z".parse().unwrap();

    let one = facts(pod(3));
    let mut group = c.benchmark_group("evaluate 3-container pod");
    for (name, rules) in &policies {
        let mut findings = Vec::new();
        group.bench_function(*name, |b| {
            b.iter(|| {
                evaluate_into(black_box(&one), rules, now, &mut findings);
                black_box(findings.len())
            })
        });
    }
    group.finish();

    let json = serde_json::to_vec(&pod(3)).unwrap();
    c.bench_function("read a pod's JSON into its facts", |b| {
        b.iter(|| black_box(serde_json::from_slice::<PodFacts>(black_box(&json)).unwrap().containers.len()))
    });

    // Through `assess`, as every caller scores: with every check on it also counts replicas.
    let pods: Vec<PodFacts> = (0..10_000).map(|v| facts(pod(v))).collect();
    let mut group = c.benchmark_group("score 10000 pods");
    group.throughput(Throughput::Elements(pods.len() as u64));
    for (name, rules) in &policies {
        group.bench_with_input(BenchmarkId::from_parameter(name), &pods, |b, pods| {
            b.iter(|| {
                let assessment = assess(pods, rules, now, |p| Some(("shop", p)), |_, _, _| {});
                black_box(assessment.total().score())
            })
        });
    }
    group.finish();
}

criterion_group!(governance, benches);
criterion_main!(governance);

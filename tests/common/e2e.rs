//! Helpers of the end-to-end tests: a testkit API server whose kubelet runs this binary,
//! installs rendered by `deploy`, waiting, and reading the components' `/metrics`.

use std::future::Future;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};
use testkit::harness::TestCluster;

/// A testkit API server with the CRDs applied, whose kubelet runs this binary for the
/// kube-devops image.
pub fn cluster_running_kube_devops() -> TestCluster {
    let cluster = TestCluster::stand_in();
    let binary = Path::new(env!("CARGO_BIN_EXE_kube-devops"));
    cluster.run_image(kube_devops::api::install::DEFAULT_IMAGE_REPOSITORY, binary);
    let out = cluster.kubectl(&["apply", "-f", super::repo_path("crds").to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    cluster
}

/// The Prometheus Operator's ServiceMonitor CRD (monitoring.coreos.com/v1): only its group,
/// kind and version matter to kube-devops, so it accepts any spec. (JSON is YAML: `apply_ok`
/// takes its text.)
pub fn service_monitor_crd() -> serde_json::Value {
    serde_json::json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "servicemonitors.monitoring.coreos.com"},
        "spec": {"group": "monitoring.coreos.com", "scope": "Namespaced",
            "names": {"plural": "servicemonitors", "singular": "servicemonitor", "kind": "ServiceMonitor", "listKind": "ServiceMonitorList"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]}})
}

/// OpenShift's SecurityContextConstraints CRD (security.openshift.io/v1): what makes a cluster
/// serve the API group kube-devops detects OpenShift by.
pub fn openshift_security_crd() -> serde_json::Value {
    serde_json::json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "securitycontextconstraints.security.openshift.io"},
        "spec": {"group": "security.openshift.io", "scope": "Cluster",
            "names": {"plural": "securitycontextconstraints", "singular": "securitycontextconstraints",
                "kind": "SecurityContextConstraints", "listKind": "SecurityContextConstraintsList"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]}})
}

/// A KubeDevopsInstall manifest with `spec` (YAML lines indented by two spaces).
pub fn install_file(spec: &str) -> String {
    format!(
        "apiVersion: devops.stochastic.io/v1alpha1\nkind: KubeDevopsInstall\nmetadata: {{name: default}}\nspec:\n{spec}"
    )
}

/// `kube-devops deploy <command> -f <install>`.
pub fn render(command: &str, install: &str) -> String {
    render_with(command, install, &[])
}

/// `kube-devops deploy <command> -f <install> <args...>`.
pub fn render_with(command: &str, install: &str, args: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("install.yaml");
    std::fs::write(&file, install).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_kube-devops"))
        .args(["deploy", command, "-f"])
        .arg(&file)
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// `kubectl apply -f -` of `yaml` as the admin.
pub fn apply(cluster: &TestCluster, yaml: &str) -> Output {
    cluster.kubectl_as(cluster.kubeconfig(), &["apply", "-f", "-"], Some(yaml))
}

/// `kubectl apply -f -` that must succeed.
pub fn apply_ok(cluster: &TestCluster, yaml: &str) {
    let out = apply(cluster, yaml);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// Polls `check` every 250 ms until it gives a value; fails after `seconds`.
pub fn wait_for<T>(what: &str, seconds: u64, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// [`wait_for`] for asynchronous checks.
pub async fn wait_until<T, F: Future<Output = Option<T>>>(what: &str, seconds: u64, mut check: impl FnMut() -> F) -> T {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Waits until the Deployment `name` in kube-devops has `replicas` ready ones; returns how long
/// that took.
pub async fn wait_ready(cluster: &TestCluster, name: &str, replicas: i32) -> Duration {
    let deployments: kube::Api<k8s_openapi::api::apps::v1::Deployment> =
        kube::Api::namespaced(cluster.client().await, "kube-devops");
    let started = Instant::now();
    wait_until(&format!("{replicas} ready replicas of {name}"), 60, || async {
        let d = deployments.get(name).await.ok()?;
        (d.status?.ready_replicas == Some(replicas)).then_some(())
    })
    .await;
    started.elapsed()
}

/// The body of a plain-HTTP `GET path` on `ip:port`, when it answers 200.
pub fn http_get(ip: &str, port: u16, path: &str) -> Option<String> {
    let address = format!("{ip}:{port}").parse().ok()?;
    let mut stream = std::net::TcpStream::connect_timeout(&address, Duration::from_secs(5)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    stream.write_all(format!("GET {path} HTTP/1.1\r\nHost: {ip}\r\nConnection: close\r\n\r\n").as_bytes()).ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    response.starts_with("HTTP/1.1 200").then(|| response.split_once("\r\n\r\n").unwrap().1.to_string())
}

/// The value of the sample named exactly `series` (name and labels) in a `/metrics` body.
pub fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// Who holds the Lease `name` in kube-devops, and that pod's IP.
pub fn lease_holder(cluster: &TestCluster, name: &str) -> Option<(String, String)> {
    let get = |args: &[&str]| String::from_utf8_lossy(&cluster.kubectl(args).stdout).trim().to_string();
    let holder = get(&["get", "lease", name, "-n", "kube-devops", "-o", "jsonpath={.spec.holderIdentity}"]);
    let ip = get(&["get", "pod", &holder, "-n", "kube-devops", "-o", "jsonpath={.status.podIP}"]);
    (!holder.is_empty() && !ip.is_empty()).then_some((holder, ip))
}

/// Requests of `user` the API server refused with 403.
pub fn refused(cluster: &TestCluster, user: &str) -> Vec<testkit::observe::RequestRecord> {
    cluster.requests().into_iter().filter(|r| r.user == user && r.code == 403).collect()
}

/// The status of the condition `kind` of a KubeDevopsInstall (`True`, `False`), if it has one.
pub fn condition(install: &kube_devops::api::KubeDevopsInstall, kind: &str) -> Option<String> {
    let status = install.status.as_ref()?;
    status.conditions.iter().find(|c| c.type_ == kind).map(|c| c.status.clone())
}

/// The IPs of the pods of `component` in kube-devops.
pub fn component_pod_ips(cluster: &TestCluster, component: &str) -> Vec<String> {
    let selector = format!("app.kubernetes.io/component={component}");
    let out = cluster.kubectl(&[
        "get",
        "pods",
        "-n",
        "kube-devops",
        "-l",
        &selector,
        "-o",
        "jsonpath={.items[*].status.podIP}",
    ]);
    String::from_utf8_lossy(&out.stdout).split_whitespace().map(String::from).collect()
}

/// Admission calls to `namespace`, one after the other every 20 ms (dry-run creates of a
/// compliant pod: the webhook judges them, nothing is stored), until `stop` is set; the task
/// returns how many were made and the errors of those that failed.
pub fn admission_calls(
    client: kube::Client,
    namespace: &str,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> tokio::task::JoinHandle<(usize, Vec<String>)> {
    use k8s_openapi::api::core::v1::Pod;
    let pods: kube::Api<Pod> = kube::Api::namespaced(client, namespace);
    let probe: Pod = serde_json::from_value(serde_json::json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"generateName": "probe-"}, "spec": {"containers": [{"name": "web", "image": "nginx:1.27.3"}]}}))
    .unwrap();
    tokio::spawn(async move {
        let (mut calls, mut failures) = (0, Vec::new());
        let params = kube::api::PostParams { dry_run: true, ..Default::default() };
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            calls += 1;
            if let Err(e) = pods.create(&params, &probe).await {
                failures.push(e.to_string());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        (calls, failures)
    })
}

//! `kube-devops analyze` against an API server: end to end against the testkit API server
//! (report by namespace, read-only, a 403 without permission), page by page against a minimal
//! server that serves a paged pod list, and an unreachable cluster is an error, never an
//! empty report.

mod common;

use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use testkit::harness::TestCluster;

/// What the restricted bundle finds in the pod web-2 (nginx:latest, no probes, resources or
/// securityContext, restarted): its container's findings in catalogue order, then its runtime
/// state.
const RESTRICTED_FINDINGS_OF_WEB_2: [&str; 8] = [
    "latest_tag",
    "missing_liveness",
    "missing_resources",
    "run_as_root_allowed",
    "privilege_escalation_allowed",
    "capabilities_not_dropped",
    "missing_seccomp_profile",
    "high_restarts",
];

/// Serves `GET /api/v1/pods` in two pages; records every request line.
fn serve_pods(pages: Vec<Value>) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    let requests = Arc::new(Mutex::new(Vec::new()));
    let seen = requests.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(pages.len() + 4) {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request_line = String::new();
            reader.read_line(&mut request_line).unwrap();
            loop {
                let mut header = String::new();
                if reader.read_line(&mut header).unwrap() == 0 || header == "\r\n" {
                    break;
                }
            }
            seen.lock().unwrap().push(request_line.trim().to_string());
            let page = if request_line.contains("continue=page2") { &pages[1] } else { &pages[0] };
            let body = page.to_string();
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (address, requests)
}

fn kubeconfig(dir: &std::path::Path, server: &str) -> std::path::PathBuf {
    let path = dir.join("kubeconfig");
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster: {{server: '{server}'}}\nusers:\n- name: test\n  user: {{token: test-token}}\ncontexts:\n- name: test\n  context: {{cluster: test, user: test}}\ncurrent-context: test\n"
        ),
    )
    .unwrap();
    path
}

fn analyze(kubeconfig: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kube-devops"))
        .arg("analyze")
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .env_remove("KUBERNETES_SERVICE_HOST")
        .output()
        .unwrap()
}

fn pod_json(namespace: &str, name: &str, image: &str, restarts: i32) -> Value {
    json!({
        "metadata": {"name": name, "namespace": namespace, "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {"containers": [{"name": "app", "image": image, "readinessProbe": {"tcpSocket": {"port": 80}}}]},
        "status": {"phase": "Running", "containerStatuses": [{"name": "app", "image": image, "imageID": "", "ready": true, "restartCount": restarts}]}
    })
}

fn pod_list(items: Vec<Value>, continue_token: Option<&str>) -> Value {
    json!({"apiVersion": "v1", "kind": "PodList", "metadata": {"resourceVersion": "10", "continue": continue_token}, "items": items})
}

#[test]
fn a_cluster_is_audited_across_pages_with_live_status() {
    let pages = vec![
        pod_list(
            vec![pod_json("shop", "web-1", "nginx:1.27.3", 0), pod_json("kube-system", "dns", "coredns:latest", 0)],
            Some("page2"),
        ),
        pod_list(vec![pod_json("shop", "web-2", "nginx:latest", 12)], None),
    ];
    let (server, requests) = serve_pods(pages);
    let dir = tempfile::tempdir().unwrap();
    let config = kubeconfig(dir.path(), &server);

    let out = analyze(&config, &["--bundle", "restricted", "-o", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let shop = &report["namespaces"][0];
    assert_eq!(shop["namespace"], "shop");
    assert_eq!(shop["subjects"], 2);
    assert_eq!(report["skippedSystemWorkloads"], 1);
    let checks: Vec<_> =
        shop["workloads"][1]["violations"].as_array().unwrap().iter().map(|v| v["check"].as_str().unwrap()).collect();
    assert_eq!(checks, RESTRICTED_FINDINGS_OF_WEB_2);
    assert_eq!(shop["workloads"][1]["source"], "pod/shop/web-2");

    let requests = requests.lock().unwrap().clone();
    assert!(requests.iter().all(|r| r.starts_with("GET /api/v1/pods?")), "read-only: {requests:?}");
    assert!(requests[0].contains("limit=500"), "{requests:?}");
    assert!(requests.iter().any(|r| r.contains("continue=page2")), "second page fetched: {requests:?}");
}

#[test]
fn an_unreachable_cluster_is_an_error_not_an_empty_report() {
    // Bind and drop a listener to get a loopback port nobody listens on.
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let config = kubeconfig(dir.path(), &format!("http://127.0.0.1:{port}"));
    let out = analyze(&config, &["-o", "json"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty(), "no report: {}", String::from_utf8_lossy(&out.stdout));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot list pods from the cluster"), "{err}");
}

#[test]
fn a_missing_kubeconfig_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = analyze(&dir.path().join("nope"), &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("kubeconfig"));
}

/// A pod whose status the test writes itself (restarts, phase).
async fn pod(pods: &Api<Pod>, name: &str, image: &str, restarts: i32) {
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": name, "annotations": {"testkit.stochastic.io/unmanaged": "true"}},
        "spec": {"containers": [{"name": "app", "image": image, "readinessProbe": {"tcpSocket": {"port": 80}}}]},
    }))
    .unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    let status = json!({"status": {"phase": "Running", "containerStatuses": [
        {"name": "app", "image": image, "imageID": "", "ready": true, "restartCount": restarts}]}});
    pods.patch_status(name, &PatchParams::default(), &Patch::Merge(status)).await.unwrap();
}

#[tokio::test]
async fn analyze_reports_the_cluster_by_namespace_and_only_reads() {
    let cluster = TestCluster::stand_in();
    let client = cluster.client().await;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .create(&PostParams::default(), &serde_json::from_value(json!({"metadata": {"name": "shop"}})).unwrap())
        .await
        .unwrap();
    let shop: Api<Pod> = Api::namespaced(client.clone(), "shop");
    pod(&shop, "web-1", "nginx:1.27.3", 0).await;
    pod(&shop, "web-2", "nginx:latest", 12).await;
    pod(&Api::namespaced(client, "kube-system"), "dns", "coredns:latest", 0).await;
    cluster.clear_requests();

    let out = analyze(cluster.kubeconfig(), &["--bundle", "restricted", "-o", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let shop = report["namespaces"].as_array().unwrap().iter().find(|n| n["namespace"] == "shop").unwrap();
    assert_eq!(shop["subjects"], 2);
    assert_eq!(report["skippedSystemWorkloads"], 1);
    let web2 = shop["workloads"].as_array().unwrap().iter().find(|w| w["name"] == "web-2").unwrap();
    let checks: Vec<_> = web2["violations"].as_array().unwrap().iter().map(|v| v["check"].as_str().unwrap()).collect();
    assert_eq!(checks, RESTRICTED_FINDINGS_OF_WEB_2);

    let requests = cluster.requests();
    assert!(!requests.is_empty());
    assert!(requests.iter().all(|r| !r.is_write()), "analyze never writes: {requests:?}");
    let lists: Vec<_> = requests.iter().filter(|r| r.resource == "pods").collect();
    assert_eq!(lists.len(), 1);
    assert!(lists[0].query.contains("limit=500"), "{:?}", lists[0]);
}

#[tokio::test]
async fn analyze_without_permission_to_list_pods_fails_with_the_403() {
    let cluster = TestCluster::stand_in();
    let kubeconfig = cluster.service_account_kubeconfig("default", "auditor");
    let out = analyze(&kubeconfig, &["-o", "json"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty(), "no report is printed");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot list pods from the cluster"), "{err}");
    assert!(err.contains("forbidden") || err.contains("Forbidden"), "{err}");
}

/// A client's read timeout counts from the request, not from when its pooled connection went
/// idle: a request sent on a connection idle for most of the timeout still gets the whole
/// timeout for its answer.
#[tokio::test]
async fn an_idle_pooled_connection_does_not_eat_the_read_timeout() {
    let cluster = testkit::harness::TestCluster::stand_in();
    let text = std::fs::read_to_string(cluster.kubeconfig()).unwrap();
    let kubeconfig = kube::config::Kubeconfig::from_yaml(&text).unwrap();
    let mut config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await.unwrap();
    kube_devops::cluster::configure(&mut config, Some(std::time::Duration::from_millis(1000)));
    let namespaces: kube::Api<k8s_openapi::api::core::v1::Namespace> =
        kube::Api::all(kube::Client::try_from(config).unwrap());
    namespaces.get("default").await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    // Answered in 600 ms: well within the timeout, but past it counted from the idle start.
    let slow = testkit::observe::Fault::latency(Some("get"), Some("namespaces"), std::time::Duration::from_millis(600));
    cluster.inject(slow);
    namespaces.get("default").await.expect("the whole timeout for the answer");
}

//! `kube-devops analyze` end to end against the testkit API server (or the real cluster in
//! KUBE_DEVOPS_E2E_KUBECONFIG): what it reports, that it only reads, and what a missing
//! permission looks like.

use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use std::path::Path;
use std::process::{Command, Output};
use testkit::harness::TestCluster;

fn analyze(kubeconfig: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kube-devops"))
        .arg("analyze")
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .env_remove("KUBERNETES_SERVICE_HOST")
        .output()
        .unwrap()
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
    assert_eq!(checks, ["latest_tag", "missing_liveness", "missing_resources", "high_restarts"]);

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

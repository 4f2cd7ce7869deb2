//! End to end on the testkit API server: the webhook with `failurePolicy: Fail` answers every
//! admission call through `kubectl rollout restart` of its Deployment. Calls follow the
//! published Endpoints, which lag behind a terminating pod as on a real cluster, so a replica
//! that stopped listening at SIGTERM would fail them; ours keeps serving while it drains.

mod common;

use common::e2e::{apply_ok, cluster_running_kube_devops, install_file, render, wait_ready};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

#[tokio::test(flavor = "multi_thread")]
async fn admission_never_fails_while_the_webhook_rolls_out() {
    let cluster = cluster_running_kube_devops();
    let install = install_file(
        "  watch: {enabled: false}\n  reconcile: {enabled: false}\n  serviceMonitor: {enabled: false}\n  \
         webhook: {failurePolicy: Fail}\n",
    );
    apply_ok(&cluster, &render("generate-all", &install));
    wait_ready(&cluster, "kube-devops-webhook", 2).await;
    apply_ok(&cluster, "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n");

    // Admission calls, one after the other, for as long as the rollout takes.
    let stop = Arc::new(AtomicBool::new(false));
    let caller = common::e2e::admission_calls(cluster.client().await, "shop", stop.clone());
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;

    let started = Instant::now();
    let out = cluster.kubectl(&["rollout", "restart", "deployment/kube-devops-webhook", "-n", "kube-devops"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = cluster.kubectl(&[
        "rollout",
        "status",
        "deployment/kube-devops-webhook",
        "-n",
        "kube-devops",
        "--timeout=120s",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // Until the old pods are gone (they drain after the rollout reports success).
    common::e2e::wait_for("the old webhook pods to exit", 60, || {
        let out = cluster.kubectl(&["get", "pods", "-n", "kube-devops", "-o", "name"]);
        (String::from_utf8_lossy(&out.stdout).lines().count() == 2).then_some(())
    });
    let rolled = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let (calls, failures) = caller.await.unwrap();
    eprintln!("{calls} admission calls during a {rolled:?} rollout, {} failed", failures.len());
    assert!(calls > 50, "the calls kept going: {calls}");
    assert!(failures.is_empty(), "admission failed during the rollout: {failures:#?}");
}

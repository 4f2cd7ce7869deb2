//! End to end on the testkit API server: two `kube-devops reconcile` replicas, installed with
//! `deploy generate-all`, elect a leader that evaluates a DevOpsPolicy against the pods of its
//! namespace: the status (as `kubectl get devopspolicies` shows it), a PolicyAuditResult owned
//! by the policy and the per-policy metrics all agree with the pure evaluation; an edit of the
//! policy is evaluated at once and recorded; with nothing changing it writes nothing over
//! several evaluation intervals; deleting the policy removes its audit history and its metric
//! series; policies carry no finalizer (one left by an earlier version is taken off), so a
//! namespace with policies is deleted within seconds even with no reconcile replica running.

mod common;

use common::e2e::{
    apply_ok, cluster_running_kube_devops, http_get, install_file, lease_holder, refused, render, sample, wait_ready,
    wait_until,
};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::events::v1::Event;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use kube_devops::api::{DevOpsPolicy, PolicyAuditResult};
use std::time::Instant;
use testkit::harness::TestCluster;

const SHOP: &str = "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n---\n\
apiVersion: v1\nkind: Pod\nmetadata: {name: web, namespace: shop}\nspec:\n  containers: [{name: web, image: 'nginx:latest'}]\n---\n\
apiVersion: v1\nkind: Pod\nmetadata: {name: cache, namespace: shop}\nspec:\n  containers: [{name: redis, image: 'redis:7.4'}]\n---\n\
apiVersion: devops.stochastic.io/v1\nkind: DevOpsPolicy\nmetadata: {name: strict, namespace: shop}\nspec: {forbidLatestTag: true, requireLivenessProbe: true}\n";

/// `/metrics` of the replica holding the lease.
fn leader_metrics(cluster: &TestCluster) -> Option<String> {
    let (_, ip) = lease_holder(cluster, "kube-devops-reconcile")?;
    http_get(&ip, 9090, "/metrics")
}

#[tokio::test(flavor = "multi_thread")]
async fn the_elected_replica_evaluates_policies_records_them_and_cleans_up() {
    let cluster = cluster_running_kube_devops();
    let install = install_file(
        "  watch: {enabled: false}\n  webhook: {enabled: false}\n  serviceMonitor: {enabled: false}\n  \
         reconcile: {evaluationIntervalSeconds: 2}\n",
    );
    apply_ok(&cluster, &render("generate-all", &install));
    let client = cluster.client().await;
    let started = Instant::now();
    wait_ready(&cluster, "kube-devops-reconcile", 2).await;
    eprintln!("2 reconcile replicas Ready after {:?}", started.elapsed());

    apply_ok(&cluster, SHOP);
    let policies: Api<DevOpsPolicy> = Api::namespaced(client.clone(), "shop");
    let applied = Instant::now();
    let policy = wait_until("the policy's status", 45, || async {
        let policy = policies.get("strict").await.ok()?;
        policy.status.as_ref()?.health_score?;
        Some(policy)
    })
    .await;
    eprintln!("policy evaluated {:?} after it was applied", applied.elapsed());
    let pods = Api::<Pod>::namespaced(client.clone(), "shop").list(&ListParams::default()).await.unwrap().items;
    let expected = kube_devops::reconcile::evaluate_policy_pods(&policy, &pods, k8s_openapi::jiff::Timestamp::now());
    let summary = expected.tally.summary();
    let status = policy.status.clone().unwrap();
    assert_eq!(status.health_score, Some(summary.score));
    assert_eq!(status.violations, Some(summary.violations));
    assert_eq!(summary.violations, 3, "web: latest_tag and missing_liveness; cache: missing_liveness");
    assert!(policy.finalizers().is_empty(), "nothing holds its deletion");
    let table = String::from_utf8_lossy(&cluster.kubectl(&["get", "devopspolicies", "-n", "shop"]).stdout).to_string();
    assert!(table.contains(&summary.score.to_string()) && table.contains("Healthy"), "{table}");

    let results: Api<PolicyAuditResult> = Api::namespaced(client.clone(), "shop");
    let history = wait_until("the first audit result", 20, || async {
        let items = results.list(&ListParams::default().labels("devops.stochastic.io/policy=strict")).await.ok()?.items;
        (!items.is_empty()).then_some(items)
    })
    .await;
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].spec.total_violations, 3);
    assert_eq!(history[0].metadata.owner_references.as_ref().unwrap()[0].uid, policy.metadata.uid.clone().unwrap());
    // `kubectl describe devopspolicy strict` shows what changed.
    let events: Api<Event> = Api::namespaced(client.clone(), "shop");
    let evaluated = wait_until("an Evaluated event on the policy", 20, || async {
        let list = events.list(&ListParams::default()).await.ok()?.items;
        list.into_iter().find(|e| {
            e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("strict")
                && e.reason.as_deref() == Some("Evaluated")
        })
    })
    .await;
    assert!(evaluated.note.unwrap().starts_with("3 violations across 2 pods"));
    assert_eq!(evaluated.reporting_controller.as_deref(), Some("kube-devops-reconcile"));
    let series = "devopspolicy_health_score{namespace=\"shop\",policy=\"strict\"}";
    let metrics = wait_until("the leader's metrics", 30, || async {
        let m = leader_metrics(&cluster)?;
        sample(&m, series).map(|_| m)
    })
    .await;
    assert_eq!(sample(&metrics, series), Some(f64::from(summary.score)));
    let by_severity = "devopspolicy_violations_by_severity{namespace=\"shop\",policy=\"strict\",severity=\"high\"}";
    assert_eq!(sample(&metrics, by_severity), Some(1.0), "{metrics}");

    // Quiet when nothing changes: over four evaluation intervals (2 s) the operator writes
    // nothing but its lease (its status writes start no loop; an unchanged status is not
    // rewritten for its time).
    let writes = || cluster.requests().into_iter().filter(|r| r.is_write() && r.resource != "leases").count();
    let (before, evaluations) = (writes(), || {
        leader_metrics(&cluster).and_then(|m| sample(&m, "devopspolicy_reconcile_total{result=\"evaluated\"}"))
    });
    let evaluated_before = evaluations().unwrap();
    tokio::time::sleep(std::time::Duration::from_secs(8)).await;
    assert_eq!(writes(), before, "no write while nothing changes");
    let evaluated_since = evaluations().unwrap() - evaluated_before;
    assert!(evaluated_since >= 3.0, "it kept evaluating: {evaluated_since}");

    // An edit is evaluated at once (not at the next minute) and recorded.
    let edit = Patch::Merge(serde_json::json!({"spec": {"requireReadinessProbe": true}}));
    policies.patch("strict", &PatchParams::default(), &edit).await.unwrap();
    let edited = wait_until("the edit to be evaluated", 20, || async {
        let p = policies.get("strict").await.ok()?;
        (p.status.as_ref()?.observed_generation == p.metadata.generation).then_some(p)
    })
    .await;
    assert_eq!(edited.status.unwrap().violations, Some(5));
    wait_until("a second audit result", 20, || async {
        let items = results.list(&ListParams::default().labels("devops.stochastic.io/policy=strict")).await.ok()?.items;
        (items.len() == 2).then_some(())
    })
    .await;

    // A policy that still carries the finalizer of an earlier version gets it taken off.
    let legacy = "apiVersion: devops.stochastic.io/v1\nkind: DevOpsPolicy\nmetadata: {name: legacy, namespace: shop, \
                  finalizers: [devops.stochastic.io/cleanup]}\nspec: {forbidLatestTag: true}\n";
    apply_ok(&cluster, legacy);
    wait_until("the old finalizer to be taken off", 20, || async {
        policies.get("legacy").await.ok()?.finalizers().is_empty().then_some(())
    })
    .await;
    policies.delete("legacy", &DeleteParams::default()).await.unwrap();

    // Deleting the policy: the history and the series go.
    policies.delete("strict", &DeleteParams::default()).await.unwrap();
    wait_until("the policy to be gone", 30, || async {
        policies.get_opt("strict").await.ok()?.is_none().then_some(())
    })
    .await;
    wait_until("its audit results to be collected", 30, || async {
        results.list(&ListParams::default()).await.ok()?.items.is_empty().then_some(())
    })
    .await;
    wait_until("its metric series to go", 30, || async {
        let m = leader_metrics(&cluster)?;
        sample(&m, series).is_none().then_some(())
    })
    .await;

    // A namespace with evaluated policies is deleted within seconds with no reconcile replica
    // running (nothing waits for this operator).
    apply_ok(&cluster, &SHOP.replace("shop", "temp"));
    let temp: Api<DevOpsPolicy> = Api::namespaced(client.clone(), "temp");
    wait_until("the temp policy's status", 30, || async { temp.get("strict").await.ok()?.status?.health_score }).await;
    let deployments: Api<k8s_openapi::api::apps::v1::Deployment> = Api::namespaced(client.clone(), "kube-devops");
    let none = Patch::Merge(serde_json::json!({"spec": {"replicas": 0}}));
    deployments.patch("kube-devops-reconcile", &PatchParams::default(), &none).await.unwrap();
    let reconcile_pods: Api<Pod> = Api::namespaced(client.clone(), "kube-devops");
    wait_until("the reconcile replicas to go", 30, || async {
        reconcile_pods.list(&ListParams::default()).await.ok()?.items.is_empty().then_some(())
    })
    .await;
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    let deleted = Instant::now();
    namespaces.delete("temp", &DeleteParams::default()).await.unwrap();
    wait_until("the namespace to be deleted", 20, || async {
        namespaces.get_opt("temp").await.ok()?.is_none().then_some(())
    })
    .await;
    eprintln!("namespace with policies deleted {:?} after the request, no operator running", deleted.elapsed());

    let user = "system:serviceaccount:kube-devops:kube-devops";
    let refused = refused(&cluster, user);
    assert!(refused.is_empty(), "RBAC lets the reconcile operator do what it needs: {refused:?}");
}

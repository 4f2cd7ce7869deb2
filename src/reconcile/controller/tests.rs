//! The shell against the testkit API server, in process: what a reconcile writes, in which
//! order, and what it leaves alone.

use super::*;
use crate::fixtures::{TestPod, cluster_with_crds};
use testkit::harness::TestCluster;
use testkit::observe::{Fault, RequestRecord};

const POLICY: &str = "apiVersion: devops.stochastic.io/v1\nkind: DevOpsPolicy\nmetadata: {name: strict, namespace: shop}\n\
                      spec: {forbidLatestTag: true, requireLivenessProbe: true}\n";

/// A cluster with the namespace `shop`, two pods and the policy `strict`; the context and
/// the policy as the controller would see it.
async fn setup(interval: Duration) -> (TestCluster, Arc<Context>, Api<DevOpsPolicy>) {
    setup_with(interval, false).await
}

/// [`setup`], with a context that keeps PolicyReports when `policy_reports`.
async fn setup_with(interval: Duration, policy_reports: bool) -> (TestCluster, Arc<Context>, Api<DevOpsPolicy>) {
    let cluster = cluster_with_crds();
    cluster.kubectl_as(cluster.kubeconfig(), &["create", "namespace", "shop"], None);
    let client = cluster.client().await;
    let pods: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(client.clone(), "shop");
    for (name, image) in [("web", "nginx:latest"), ("cache", "redis:7.4")] {
        pods.create(&PostParams::default(), &TestPod::new(name).container("app", image).build()).await.unwrap();
    }
    let out = cluster.kubectl_as(cluster.kubeconfig(), &["apply", "-f", "-"], Some(POLICY));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let metrics = Metrics::new().unwrap();
    let context =
        Context::new((client.clone(), client.clone()), &metrics.meter(), Gauges::default(), interval, policy_reports);
    // The leader's pod watch fills the cache the evaluations read.
    tokio::spawn(watch_pods(client.clone(), context.pods.clone()));
    wait_for_pods(&context, 2).await;
    (cluster, Arc::new(context), Api::namespaced(client, "shop"))
}

/// Waits until the context's pod cache holds `count` pods.
async fn wait_for_pods(context: &Context, count: usize) {
    for _ in 0..100 {
        if context.pods.read().unwrap().len() == count {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the pod cache never held {count} pods");
}

fn writes(cluster: &TestCluster) -> Vec<RequestRecord> {
    cluster.requests().into_iter().filter(|r| r.is_write()).collect()
}

fn position(writes: &[RequestRecord], resource: &str, subresource: &str) -> Option<usize> {
    writes.iter().position(|r| r.resource == resource && r.subresource == subresource)
}

#[tokio::test]
async fn history_is_written_before_the_status_and_the_status_last() {
    let (cluster, context, policies) = setup(Duration::from_secs(60)).await;
    cluster.clear_requests();
    let action = reconcile(Arc::new(policies.get("strict").await.unwrap()), context).await.unwrap();
    assert_eq!(action, Action::requeue(Duration::from_secs(60)));
    let writes = writes(&cluster);
    let history = position(&writes, "policyauditresults", "").expect("an audit result");
    let status = position(&writes, "devopspolicies", "status").expect("a status");
    assert!(history < status, "{writes:?}");
    assert_eq!(status, writes.len() - 1, "the status is the last write: {writes:?}");
    let written = policies.get("strict").await.unwrap().status.unwrap();
    assert_eq!(written.violations, Some(3));
}

#[tokio::test]
async fn an_evaluation_that_finds_the_same_writes_nothing() {
    let (cluster, context, policies) = setup(Duration::ZERO).await;
    reconcile(Arc::new(policies.get("strict").await.unwrap()), context.clone()).await.unwrap();
    cluster.clear_requests();
    // Due again at once (interval zero): evaluated, but nothing changed.
    reconcile(Arc::new(policies.get("strict").await.unwrap()), context).await.unwrap();
    let evaluated = cluster.requests().iter().any(|r| r.resource == "policyauditresults" && r.verb == "list");
    assert!(evaluated, "it evaluated again (and read the history)");
    assert_eq!(writes(&cluster), [], "no status, audit result or Event");
    assert!(!cluster.requests().iter().any(|r| r.resource == "pods" && r.verb == "list"), "pods come from the cache");
}

const POLICY_REPORT_CRD: &str = include_str!("../../../tests/schemas/policyreport-crd.yaml");
const LAX: &str = "apiVersion: devops.stochastic.io/v1\nkind: DevOpsPolicy\nmetadata: {name: lax, namespace: shop}\n\
                   spec: {security: {forbidPrivileged: true}, resources: {requireMemoryLimit: true}}\n";

/// The namespace's PolicyReport as the API server stores it.
async fn policy_report(cluster: &TestCluster) -> Option<serde_json::Value> {
    let out = cluster.kubectl_as(
        cluster.kubeconfig(),
        &["get", "policyreport", "kube-devops", "-n", "shop", "-o", "json"],
        None,
    );
    out.status.success().then(|| serde_json::from_slice(&out.stdout).unwrap())
}

#[tokio::test]
async fn policy_reports_hold_every_policy_of_the_namespace_and_are_written_when_they_change() {
    let (cluster, context, policies) = setup_with(Duration::ZERO, true).await;
    let out = cluster.kubectl_as(cluster.kubeconfig(), &["apply", "-f", "-"], Some(POLICY_REPORT_CRD));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = cluster.kubectl_as(cluster.kubeconfig(), &["apply", "-f", "-"], Some(LAX));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let client = cluster.client().await;
    for name in ["strict", "lax"] {
        reconcile(Arc::new(policies.get(name).await.unwrap()), context.clone()).await.unwrap();
    }
    let report = policy_report(&cluster).await.expect("a PolicyReport in shop");
    // strict: web runs nginx:latest (latest_tag) and no pod has a liveness probe; lax: no
    // pod sets a memory limit. 2 pods x 2 checks + 2 pods x 2 checks = 8 pairs, 5 failed.
    assert_eq!(report["summary"]["fail"], 5, "{report:#}");
    assert_eq!(report["summary"]["pass"], 3, "{report:#}");
    let results = report["results"].as_array().unwrap();
    let rules: Vec<(&str, &str, &str)> = results
        .iter()
        .map(|r| {
            (r["policy"].as_str().unwrap(), r["resources"][0]["name"].as_str().unwrap(), r["rule"].as_str().unwrap())
        })
        .collect();
    assert_eq!(
        rules,
        [
            ("lax", "cache", "missing_memory_limit"),
            ("lax", "web", "missing_memory_limit"),
            ("strict", "cache", "missing_liveness"),
            ("strict", "web", "latest_tag"),
            ("strict", "web", "missing_liveness"),
        ]
    );
    assert!(results.iter().all(|r| r["result"] == "fail" && r["source"] == "kube-devops"));
    let owners: Vec<&str> =
        report["metadata"]["ownerReferences"].as_array().unwrap().iter().map(|o| o["name"].as_str().unwrap()).collect();
    assert_eq!(owners.len(), 2, "owned by both policies: {owners:?}");

    // Evaluated again with nothing changed: no write of the report.
    cluster.clear_requests();
    reconcile(Arc::new(policies.get("strict").await.unwrap()), context.clone()).await.unwrap();
    assert!(!writes(&cluster).iter().any(|r| r.resource == "policyreports"), "{:?}", writes(&cluster));

    // A pod fixed: the report follows at the policy's next evaluation.
    let pods: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(client.clone(), "shop");
    pods.delete("web", &DeleteParams::default()).await.unwrap();
    wait_for_pods(&context, 1).await;
    reconcile(Arc::new(policies.get("strict").await.unwrap()), context.clone()).await.unwrap();
    let report = policy_report(&cluster).await.unwrap();
    let web = report["results"].as_array().unwrap().iter().filter(|r| r["resources"][0]["name"] == "web").count();
    assert_eq!(web, 1, "lax's finding about web stays until lax is evaluated again: {report:#}");
}

#[tokio::test]
async fn without_the_policy_report_crd_policies_are_still_evaluated() {
    let (cluster, context, policies) = setup_with(Duration::ZERO, true).await;
    let action = reconcile(Arc::new(policies.get("strict").await.unwrap()), context).await;
    assert!(action.is_ok(), "{action:?}");
    assert_eq!(policies.get("strict").await.unwrap().status.unwrap().violations, Some(3));
    assert!(cluster.requests().iter().any(|r| r.resource == "policyreports" && r.code == 404));
}

#[tokio::test]
async fn an_audit_result_already_gone_is_not_an_error() {
    let (cluster, context, policies) = setup(Duration::ZERO).await;
    let policy = policies.get("strict").await.unwrap();
    // A full history of older results, then every delete of one finds it gone.
    let results: Api<PolicyAuditResult> = Api::namespaced(cluster.client().await, "shop");
    let old = super::super::Evaluation::default();
    for minute in 0..AUDIT_HISTORY as i64 {
        let at = Timestamp::now() - k8s_openapi::jiff::SignedDuration::from_mins(60 - minute);
        results.create(&PostParams::default(), &audit_result(&policy, &old, at)).await.unwrap();
    }
    cluster.inject(Fault::error(Some("delete"), Some("policyauditresults"), 404));
    let action = reconcile(Arc::new(policy), context).await;
    assert!(action.is_ok(), "{action:?}");
    let deletes = cluster.requests().into_iter().filter(|r| r.verb == "delete" && r.code == 404).count();
    assert_eq!(deletes, 1, "the oldest was beyond the history's length");
}

//! End to end on the testkit API server under the faults of a busy cluster, on for each
//! component's whole run (see `common::chaos`: 20% of writes and 5% of reads failing, 100-300
//! ms on every request, watches dropped every 10 s, history compacted every 15 s): every
//! component converges to what it does without them, with bounded effort (no component pod
//! sends more than a bound of requests in any second), and once the faults stop it is back to
//! its idle write rate (Lease renewals only) within a minute. Each test prints its figures:
//! time to converge and requests sent, with and without faults.

mod common;

use common::chaos::{self, component_requests, peak_rate, wait_idle};
use common::e2e::{
    apply_ok, cluster_running_kube_devops, http_get, install_file, lease_holder, render, sample, wait_until,
};
use k8s_openapi::api::core::v1::{Pod, Service};
use kube::api::{Api, DeleteParams, ListParams};
use kube_devops::api::{DevOpsPolicy, KubeDevopsInstall, PolicyAuditResult};
use std::time::{Duration, Instant};
use testkit::harness::TestCluster;

/// The most requests a component pod may send per second (over any 10 s) while faults last:
/// retries back off instead of looping. (Starting up, the operator lists and watches 17 kinds
/// and applies about 30 objects: well under it.)
const PEAK_RATE: f64 = 20.0;

fn available(install: &KubeDevopsInstall) -> bool {
    let status = install.status.as_ref();
    status.is_some_and(|s| s.conditions.iter().any(|c| c.type_ == "Available" && c.status == "True"))
}

/// Installs the operator and the sample on a fresh cluster, with or without faults; returns
/// the cluster (faults still on), the time to Available and the components' requests.
async fn operator_install(faults: bool) -> (TestCluster, Option<chaos::Chaos>, Duration, usize) {
    let cluster = cluster_running_kube_devops();
    let chaos = faults.then(|| chaos::start(&cluster));
    let started = Instant::now();
    let out = cluster.kubectl(&["apply", "-k", common::repo_path("config/default").to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = cluster.kubectl(&["apply", "-k", common::repo_path("config/samples").to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let installs: Api<KubeDevopsInstall> = Api::all(cluster.client().await);
    wait_until("the install to become Available", 300, || async {
        installs.get("default").await.ok().filter(available)
    })
    .await;
    let took = started.elapsed();
    let requests = component_requests(&cluster).len();
    (cluster, chaos, took, requests)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_bootstrap_operator_converges_heals_and_keeps_one_leader_through_faults() {
    let (_calm, _, calm_took, calm_requests) = operator_install(false).await;
    drop(_calm);
    let (cluster, chaos, took, requests) = operator_install(true).await;
    eprintln!(
        "operator to Available: {calm_took:?} and {calm_requests} requests without faults, {took:?} and {requests} with"
    );

    // Healing: a deleted Service comes back while the faults last.
    let services: Api<Service> = Api::namespaced(cluster.client().await, "kube-devops");
    services.delete("kube-devops-watch", &DeleteParams::default()).await.unwrap();
    let deleted = Instant::now();
    wait_until("the Service to be put back", 120, || async { services.get_opt("kube-devops-watch").await.ok()? }).await;
    eprintln!("deleted Service put back after {:?} with faults", deleted.elapsed());

    // One leader per elected component, every time we look.
    for _ in 0..5 {
        for (component, port) in [("watch", 8080), ("reconcile", 9090)] {
            let leaders = leaders(&cluster, component, port);
            assert_eq!(leaders, 1, "{component}: {leaders} replicas say they lead");
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    bounded_then_idle(cluster, chaos.unwrap(), "operator", 15).await;
}

/// While the faults last, no component pod sent more than [`PEAK_RATE`] requests a second (over
/// any 10 s); once they stop, the components write only Lease renewals for `quiet` seconds
/// within 75 s. Prints the figures.
async fn bounded_then_idle(cluster: TestCluster, chaos: chaos::Chaos, what: &str, quiet: u64) {
    let requests = component_requests(&cluster);
    let peak = peak_rate(&requests, 10);
    eprintln!("{what}: busiest pod with faults {peak:.1} requests/s over 10 s; {} requests in all", requests.len());
    assert!(peak <= PEAK_RATE, "a component pod sent {peak:.1} requests/s over 10 s");
    chaos.stop();
    let idle = tokio::task::spawn_blocking(move || wait_idle(&cluster, quiet, 75)).await.unwrap();
    eprintln!("{what}: idle (Lease renewals only for {quiet} s) {idle:?} after the faults stopped");
}

/// How many replicas of `component` report `kube_devops_leader 1` on their /metrics.
fn leaders(cluster: &TestCluster, component: &str, port: u16) -> usize {
    let ips = common::e2e::component_pod_ips(cluster, component);
    let series = format!("kube_devops_leader{{component=\"{component}\"}}");
    ips.iter().filter_map(|ip| http_get(ip, port, "/metrics")).filter(|m| sample(m, &series) == Some(1.0)).count()
}

const SHOP: &str = "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n---\n\
apiVersion: v1\nkind: Pod\nmetadata: {name: web, namespace: shop}\nspec:\n  containers: [{name: web, image: 'nginx:latest'}]\n---\n\
apiVersion: v1\nkind: Pod\nmetadata: {name: cache, namespace: shop}\nspec:\n  containers: [{name: redis, image: 'redis:7.4'}]\n";

fn policy(spec: &str) -> String {
    format!(
        "apiVersion: devops.stochastic.io/v1\nkind: DevOpsPolicy\nmetadata: {{name: strict, namespace: shop}}\nspec: {spec}\n"
    )
}

/// Waits until the policy's status is that of the current spec and the pods now, as the pure
/// evaluation computes it.
async fn evaluated(client: &kube::Client, seconds: u64) -> DevOpsPolicy {
    let policies: Api<DevOpsPolicy> = Api::namespaced(client.clone(), "shop");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "shop");
    wait_until("the policy's status to match its spec", seconds, || async {
        let policy = policies.get("strict").await.ok()?;
        let status = policy.status.clone()?;
        let pods = pods.list(&ListParams::default()).await.ok()?.items;
        let expected =
            kube_devops::reconcile::evaluate_policy_pods(&policy, &pods, k8s_openapi::jiff::Timestamp::now());
        let summary = expected.tally.summary();
        (status.observed_generation == policy.metadata.generation
            && status.health_score == Some(summary.score)
            && status.violations == Some(summary.violations))
        .then_some(policy)
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn the_reconcile_operator_records_each_change_once_through_faults() {
    let cluster = cluster_running_kube_devops();
    let chaos = chaos::start(&cluster);
    let install = install_file(
        "  watch: {enabled: false}\n  webhook: {enabled: false}\n  serviceMonitor: {enabled: false}\n  \
         reconcile: {evaluationIntervalSeconds: 2}\n",
    );
    apply_ok(&cluster, &render("generate-all", &install));
    apply_ok(&cluster, SHOP);
    let client = cluster.client().await;
    let started = Instant::now();
    // Three specs, three different evaluations: each recorded once, however many writes fail.
    apply_ok(&cluster, &policy("{forbidLatestTag: true, requireLivenessProbe: true}"));
    let first = evaluated(&client, 180).await;
    eprintln!("first evaluation {:?} after the policy, with faults", started.elapsed());
    apply_ok(&cluster, &policy("{forbidLatestTag: true, requireLivenessProbe: true, requireResources: true}"));
    let second = evaluated(&client, 120).await;
    apply_ok(&cluster, &policy("{forbidLatestTag: false, requireLivenessProbe: true, requireResources: true}"));
    let third = evaluated(&client, 120).await;
    let scores: Vec<Option<u32>> =
        [&first, &second, &third].iter().map(|p| p.status.as_ref().unwrap().violations).collect();
    assert_eq!(scores.len(), 3);
    // Several more evaluation intervals of the same outcome, writes still failing.
    tokio::time::sleep(Duration::from_secs(12)).await;
    let results: Api<PolicyAuditResult> = Api::namespaced(client.clone(), "shop");
    let mut history =
        results.list(&ListParams::default().labels("devops.stochastic.io/policy=strict")).await.unwrap().items;
    history.sort_by(|a, b| a.spec.timestamp.cmp(&b.spec.timestamp));
    let recorded: Vec<u32> = history.iter().map(|r| r.spec.total_violations).collect();
    assert_eq!(recorded, scores.iter().map(|v| v.unwrap()).collect::<Vec<_>>(), "one result per change, no duplicates");
    bounded_then_idle(cluster, chaos, "reconcile", 10).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_watch_controller_scores_as_analyze_does_through_faults() {
    let cluster = cluster_running_kube_devops();
    let chaos = chaos::start(&cluster);
    let install = install_file(
        "  reconcile: {enabled: false}\n  webhook: {enabled: false}\n  serviceMonitor: {enabled: false}\n",
    );
    apply_ok(&cluster, &render("generate-all", &install));
    apply_ok(&cluster, SHOP);
    let analyze = common::tools::kube_devops_on(cluster.kubeconfig(), &["analyze", "-n", "shop", "-o", "json"]);
    let expected: serde_json::Value = serde_json::from_slice(&analyze.stdout).unwrap();
    let score = expected["namespaces"][0]["score"].as_f64().unwrap();
    let started = Instant::now();
    let series = "namespace_health_score{namespace=\"shop\"}";
    wait_until("the leader to score shop as analyze does", 180, || async {
        let (_, ip) = lease_holder(&cluster, kube_devops::watch::controller::LEASE_NAME)?;
        let metrics = http_get(&ip, 8080, "/metrics")?;
        (sample(&metrics, series) == Some(score)).then_some(())
    })
    .await;
    eprintln!("watch: shop scored {score} as analyze does, {:?} after install, with faults", started.elapsed());
    for _ in 0..3 {
        assert_eq!(leaders(&cluster, "watch", 8080), 1, "one leader");
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    bounded_then_idle(cluster, chaos, "watch", 10).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_webhook_answers_from_its_cache_through_faults() {
    let cluster = cluster_running_kube_devops();
    let install =
        install_file("  watch: {enabled: false}\n  reconcile: {enabled: false}\n  serviceMonitor: {enabled: false}\n");
    apply_ok(&cluster, &render("generate-all", &install));
    common::e2e::wait_ready(&cluster, "kube-devops-webhook", 2).await;
    apply_ok(&cluster, "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n");
    apply_ok(&cluster, &policy("{forbidLatestTag: true, enforcementMode: enforce}"));
    let chaos = chaos::start(&cluster);
    let latest = "apiVersion: v1\nkind: Pod\nmetadata: {name: web, namespace: shop}\nspec:\n  containers: [{name: web, image: 'nginx:latest'}]\n";
    let denied = |cluster: &TestCluster| {
        let out = cluster.kubectl_as(cluster.kubeconfig(), &["apply", "--dry-run=server", "-f", "-"], Some(latest));
        !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("denied the request")
    };
    // Its cache answers every call, whatever the API server does to the webhook's own requests.
    let started = Instant::now();
    common::e2e::wait_for("the webhook to deny :latest", 60, || denied(&cluster).then_some(()));
    let mut answered = 0;
    for _ in 0..20 {
        assert!(denied(&cluster), "a :latest pod was admitted while the policy forbids it");
        answered += 1;
    }
    // A change of the policy reaches it once its watch recovers.
    apply_ok(&cluster, &policy("{forbidLatestTag: false, enforcementMode: enforce}"));
    let changed = Instant::now();
    common::e2e::wait_for("the webhook to see the policy change", 90, || (!denied(&cluster)).then_some(()));
    eprintln!(
        "webhook: {answered} denials from its cache in {:?}; a policy change seen {:?} after it, with faults",
        started.elapsed(),
        changed.elapsed()
    );
    bounded_then_idle(cluster, chaos, "webhook", 10).await;
}

//! End to end on the testkit API server: two `kube-devops watch` replicas, installed with
//! `deploy generate-all`, become Ready through their HTTP probes and elect one leader through
//! the Lease `kube-devops-leader`. The leader exports the health scores of the pods it watches
//! (the same scores `analyze` computes); the standby exports none; when the leader's pod is
//! deleted, it hands the lease back and another replica takes it at once and exports the
//! scores; when a leader is killed, the lease passes on once it expires.

mod common;

use common::e2e::{
    apply_ok, cluster_running_kube_devops, http_get, install_file, lease_holder, refused, render, sample, wait_for,
    wait_ready,
};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use kube_devops::api::bundles::{Bundle, BundleName};
use std::time::{Duration, Instant};
use testkit::harness::TestCluster;

const SHOP: &str = "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n---\n\
apiVersion: v1\nkind: Pod\nmetadata: {name: web, namespace: shop}\nspec:\n  containers: [{name: web, image: 'nginx:latest'}]\n---\n\
apiVersion: v1\nkind: Pod\nmetadata: {name: cache, namespace: shop}\nspec:\n  containers: [{name: redis, image: 'redis:7.4'}]\n";

/// `(name, podIP)` of the running watch pods.
fn watch_pods(cluster: &TestCluster) -> Vec<(String, String)> {
    let path = "jsonpath={range .items[?(@.status.phase==\"Running\")]}{.metadata.name} {.status.podIP}{\"\\n\"}{end}";
    let out =
        cluster.kubectl(&["get", "pods", "-n", "kube-devops", "-l", "app.kubernetes.io/component=watch", "-o", path]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once(' ').map(|(n, ip)| (n.to_string(), ip.to_string())))
        .filter(|(_, ip)| !ip.is_empty())
        .collect()
}

/// The leader (`name`, `ip`) once its metrics show `expected` as the score of `shop`.
fn leader_exporting(cluster: &TestCluster, expected: u32, not: Option<&str>) -> (String, String) {
    wait_for("a leader exporting the shop score", 45, || {
        let (holder, ip) = lease_holder(cluster, "kube-devops-leader")?;
        let running = watch_pods(cluster).iter().any(|(name, _)| *name == holder);
        if Some(holder.as_str()) == not || !running {
            return None;
        }
        let metrics = http_get(&ip, 8080, "/metrics")?;
        (sample(&metrics, "namespace_health_score{namespace=\"shop\"}") == Some(f64::from(expected)))
            .then_some((holder, ip))
    })
}

/// The next holder of the watch controller's lease after `previous`.
fn new_lease_holder(cluster: &TestCluster, previous: &str) -> String {
    wait_for("another replica to take the lease", 45, || {
        let (holder, _) = lease_holder(cluster, "kube-devops-leader")?;
        (holder != previous).then_some(holder)
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn one_elected_replica_exports_the_scores_and_a_standby_takes_over() {
    let cluster = cluster_running_kube_devops();
    let install = install_file(
        "  reconcile: {enabled: false}\n  webhook: {enabled: false}\n  serviceMonitor: {enabled: false}\n",
    );
    apply_ok(&cluster, &render("generate-all", &install));
    let started = Instant::now();
    wait_ready(&cluster, "kube-devops-watch", 2).await;
    eprintln!("2 watch replicas Ready after {:?}", started.elapsed());

    apply_ok(&cluster, SHOP);
    let shop: Vec<Pod> =
        Api::<Pod>::namespaced(cluster.client().await, "shop").list(&ListParams::default()).await.unwrap().items;
    let baseline = kube_devops::governance::Rules::from_spec(&Bundle::of(BundleName::Baseline).spec);
    let expected =
        kube_devops::watch::score_pods(&shop, &baseline, k8s_openapi::jiff::Timestamp::now()).namespaces["shop"];
    assert!(expected < 100, "the :latest pod costs points");

    let (leader, leader_ip) = leader_exporting(&cluster, expected, None);
    eprintln!("{leader} leads and exports shop={expected} after {:?}", started.elapsed());
    let metrics = http_get(&leader_ip, 8080, "/metrics").unwrap();
    assert!(sample(&metrics, "pods_tracked").is_some_and(|n| n >= 2.0), "{metrics}");
    assert!(sample(&metrics, "pod_events_total").is_some_and(|n| n >= 2.0), "{metrics}");
    let pods = watch_pods(&cluster);
    let (_, standby_ip) = pods.iter().find(|(name, _)| *name != leader).expect("a standby");
    let standby = http_get(standby_ip, 8080, "/metrics").unwrap();
    assert!(!standby.contains("namespace_health_score{"), "a standby exports no scores:\n{standby}");
    // The leader gauge: 1 on the leader, 0 on the standby.
    assert_eq!(sample(&metrics, "kube_devops_leader{component=\"watch\"}"), Some(1.0), "{metrics}");
    assert_eq!(sample(&standby, "kube_devops_leader{component=\"watch\"}"), Some(0.0), "{standby}");

    // The leader's pod goes (SIGTERM: it hands the lease back); a standby, polling every 2 s,
    // takes it at once instead of waiting for it to expire (15 s).
    let deleted = Instant::now();
    let out = cluster.kubectl(&["delete", "pod", &leader, "-n", "kube-devops", "--wait=false"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let successor = new_lease_holder(&cluster, &leader);
    let graceful = deleted.elapsed();
    eprintln!("graceful failover: {successor} holds the lease {graceful:?} after the leader's pod was deleted");
    assert!(graceful < Duration::from_secs(15), "the lease was released, not left to expire: {graceful:?}");
    let (exporting, _) = leader_exporting(&cluster, expected, Some(&leader));
    assert_eq!(exporting, successor);
    eprintln!("{successor} exports the scores {:?} after the deletion", deleted.elapsed());

    // A crash (SIGKILL, no release): the new pod of the ReplicaSet takes over once the lease
    // expired.
    wait_for("a new standby", 30, || (watch_pods(&cluster).len() == 2).then_some(()));
    let killed = Instant::now();
    let out = cluster.kubectl(&["delete", "pod", &successor, "-n", "kube-devops", "--grace-period=0", "--force"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let third = new_lease_holder(&cluster, &successor);
    eprintln!("crash failover: {third} holds the lease {:?} after the leader was killed", killed.elapsed());
    let user = "system:serviceaccount:kube-devops:kube-devops";
    assert!(cluster.requests().iter().any(|r| r.user == user && r.path.contains("/leases/")), "the lease is theirs");
    let refused = refused(&cluster, user);
    assert!(refused.is_empty(), "RBAC lets the watch controller do what it needs: {refused:?}");
}

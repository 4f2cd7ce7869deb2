//! End to end on the testkit API server: two `kube-devops watch` replicas, installed with
//! `deploy generate-all`, become Ready through their HTTP probes and elect one leader through
//! the Lease `kube-devops-leader`. The leader exports the health scores of the pods it watches
//! (the same scores `analyze` computes); the standby exports none; when the leader's pod is
//! deleted, another replica takes the lease over and exports the scores.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use std::io::{Read, Write};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};
use testkit::harness::TestCluster;

const INSTALL: &str = "apiVersion: devops.stochastic.io/v1alpha1\nkind: KubeDevopsInstall\nmetadata: {name: default}\nspec:\n  reconcile: {enabled: false}\n  webhook: {enabled: false}\n  serviceMonitor: {enabled: false}\n";

const SHOP: &str = "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n---\n\
apiVersion: v1\nkind: Pod\nmetadata: {name: web, namespace: shop}\nspec:\n  containers: [{name: web, image: 'nginx:latest'}]\n---\n\
apiVersion: v1\nkind: Pod\nmetadata: {name: cache, namespace: shop}\nspec:\n  containers: [{name: redis, image: 'redis:7.4'}]\n";

fn render_install() -> String {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("install.yaml");
    std::fs::write(&file, INSTALL).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_kube-devops"))
        .args(["deploy", "generate-all", "-f"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn wait_for<T>(what: &str, seconds: u64, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

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

fn lease_holder(cluster: &TestCluster) -> String {
    let path = "jsonpath={.spec.holderIdentity}";
    let out = cluster.kubectl(&["get", "lease", "kube-devops-leader", "-n", "kube-devops", "-o", path]);
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// `GET /metrics` of a watch pod (plain HTTP on :8080).
fn scrape(ip: &str) -> Option<String> {
    let mut stream = std::net::TcpStream::connect((ip, 8080)).ok()?;
    stream.write_all(b"GET /metrics HTTP/1.1\r\nHost: watch\r\nConnection: close\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    response.starts_with("HTTP/1.1 200").then(|| response.split_once("\r\n\r\n").unwrap().1.to_string())
}

fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// The leader (`name`, `ip`) once its metrics show `expected` as the score of `shop`.
fn leader_exporting(cluster: &TestCluster, expected: u32, not: Option<&str>) -> (String, String) {
    wait_for("a leader exporting the shop score", 45, || {
        let holder = lease_holder(cluster);
        if Some(holder.as_str()) == not {
            return None;
        }
        let (name, ip) = watch_pods(cluster).into_iter().find(|(name, _)| *name == holder)?;
        let metrics = scrape(&ip)?;
        (sample(&metrics, "namespace_health_score{namespace=\"shop\"}") == Some(f64::from(expected)))
            .then_some((name, ip))
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn one_elected_replica_exports_the_scores_and_a_standby_takes_over() {
    let cluster = TestCluster::stand_in();
    let binary = Path::new(env!("CARGO_BIN_EXE_kube-devops"));
    cluster.run_image(kube_devops::api::install::DEFAULT_IMAGE_REPOSITORY, binary);
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = cluster.kubectl(&["apply", "-f", root.join("crds").to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = cluster.kubectl_as(cluster.kubeconfig(), &["apply", "-f", "-"], Some(&render_install()));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let deployments: Api<Deployment> = Api::namespaced(cluster.client().await, "kube-devops");
    let started = Instant::now();
    loop {
        let d = deployments.get("kube-devops-watch").await.unwrap();
        if d.status.as_ref().and_then(|s| s.ready_replicas) == Some(2) {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "the watch replicas did not become Ready: {:?}", d.status);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    eprintln!("2 watch replicas Ready after {:?}", started.elapsed());

    let out = cluster.kubectl_as(cluster.kubeconfig(), &["apply", "-f", "-"], Some(SHOP));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let shop: Vec<Pod> =
        Api::<Pod>::namespaced(cluster.client().await, "shop").list(&ListParams::default()).await.unwrap().items;
    let baseline =
        kube_devops::governance::Rules::from_spec(&kube_devops::governance::bundles::find("baseline").unwrap().spec);
    let expected =
        kube_devops::watch::score_pods(&shop, &baseline, k8s_openapi::jiff::Timestamp::now()).namespaces["shop"];
    assert!(expected < 100, "the :latest pod costs points");

    let (leader, leader_ip) = leader_exporting(&cluster, expected, None);
    eprintln!("{leader} leads and exports shop={expected} after {:?}", started.elapsed());
    let metrics = scrape(&leader_ip).unwrap();
    assert!(sample(&metrics, "pods_tracked_total").is_some_and(|n| n >= 2.0), "{metrics}");
    assert!(sample(&metrics, "pod_events_total").is_some_and(|n| n >= 2.0), "{metrics}");
    let pods = watch_pods(&cluster);
    let (_, standby_ip) = pods.iter().find(|(name, _)| *name != leader).expect("a standby");
    let standby = scrape(standby_ip).unwrap();
    assert!(!standby.contains("namespace_health_score{"), "a standby exports no scores:\n{standby}");

    // The leader's pod goes: it releases the lease on SIGTERM and another replica takes over.
    let deleted = Instant::now();
    let out = cluster.kubectl(&["delete", "pod", &leader, "-n", "kube-devops", "--wait=false"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (successor, _) = leader_exporting(&cluster, expected, Some(&leader));
    eprintln!("{successor} took over {:?} after the leader's pod was deleted", deleted.elapsed());
    assert_ne!(successor, leader);
    let user = "system:serviceaccount:kube-devops:kube-devops";
    let requests = cluster.requests();
    assert!(requests.iter().any(|r| r.user == user && r.path.contains("/leases/")), "the lease is the replicas' own");
    let refused: Vec<_> = requests.iter().filter(|r| r.user == user && r.code == 403).collect();
    assert!(refused.is_empty(), "RBAC lets the watch controller do what it needs: {refused:?}");
}

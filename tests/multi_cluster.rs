//! `multi-cluster list-contexts` and `multi-cluster analyze` end to end on three testkit API
//! servers at once, through one kubeconfig with six contexts: two healthy clusters, one whose
//! pod list answers too late (injected latency), one that nothing listens for, a token without
//! permissions, and a token the server does not know.

mod common;

use common::tools::{kube_devops_on, stderr};
use k8s_openapi::api::core::v1::{Namespace, Pod};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube_devops::api::DevOpsPolicy;
use kube_devops::api::bundles::{Bundle, BundleName};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};
use testkit::harness::TestCluster;
use testkit::observe::Fault;

fn json_of(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

/// A pod whose status the test writes (Running, no restarts).
async fn pod(client: &kube::Client, namespace: &str, name: &str, container: Value) {
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let pod = serde_json::from_value(json!({
        "metadata": {"name": name, "annotations": {"testkit.stochastic.io/unmanaged": "true"}},
        "spec": {"containers": [container]}}))
    .unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    let status = json!({"status": {"phase": "Running", "containerStatuses": [
        {"name": "app", "image": "x", "imageID": "", "ready": true, "restartCount": 0}]}});
    pods.patch_status(name, &PatchParams::default(), &Patch::Merge(status)).await.unwrap();
}

fn compliant() -> Value {
    json!({"name": "app", "image": "nginx:1.27.3", "readinessProbe": {"tcpSocket": {"port": 80}},
           "livenessProbe": {"tcpSocket": {"port": 80}},
           "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"cpu": "200m", "memory": "128Mi"}}})
}

async fn namespace(client: &kube::Client, name: &str) {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let namespace = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
    namespaces.create(&PostParams::default(), &namespace).await.unwrap();
}

/// The servers and one kubeconfig naming them all.
struct Fleet {
    alpha: TestCluster,
    beta: TestCluster,
    _slow: TestCluster,
    kubeconfig: PathBuf,
    _dir: tempfile::TempDir,
}

/// The kubeconfig a testkit server wrote, as JSON.
fn config_of(path: &Path) -> Value {
    serde_saphyr::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Adds `source`'s cluster and user to `merged` as the context `name`, optionally with another
/// server address or token.
fn add_context(merged: &mut Value, name: &str, source: &Value, server: Option<&str>, token: Option<&str>) {
    let mut cluster = source["clusters"][0].clone();
    cluster["name"] = json!(name);
    if let Some(server) = server {
        cluster["cluster"]["server"] = json!(server);
    }
    let mut user = source["users"][0].clone();
    user["name"] = json!(name);
    if let Some(token) = token {
        user["user"]["token"] = json!(token);
    }
    merged["clusters"].as_array_mut().unwrap().push(cluster);
    merged["users"].as_array_mut().unwrap().push(user);
    merged["contexts"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": name, "context": {"cluster": name, "user": name, "namespace": "default"}}));
}

async fn fleet() -> Fleet {
    let (alpha, beta, slow) = (TestCluster::stand_in(), TestCluster::stand_in(), TestCluster::stand_in());
    // alpha: one pod with :latest and no probes (7 points under baseline), one compliant.
    let a = alpha.client().await;
    namespace(&a, "shop").await;
    pod(&a, "shop", "web", json!({"name": "app", "image": "nginx:latest"})).await;
    pod(&a, "shop", "api", compliant()).await;
    pod(&a, "kube-system", "dns", json!({"name": "app", "image": "coredns:latest"})).await;
    // beta: three compliant pods in two namespaces, and a restricted policy in `pay`.
    let b = beta.client().await;
    for ns in ["pay", "batch"] {
        namespace(&b, ns).await;
    }
    pod(&b, "pay", "p1", compliant()).await;
    pod(&b, "pay", "p2", json!({"name": "app", "image": "pay:2", "readinessProbe": {"tcpSocket": {"port": 80}}})).await;
    pod(&b, "batch", "b1", compliant()).await;
    let crds: Api<CustomResourceDefinition> = Api::all(b.clone());
    crds.create(&PostParams::default(), &DevOpsPolicy::crd()).await.unwrap();
    let policies: Api<DevOpsPolicy> = Api::namespaced(b, "pay");
    let policy = Bundle::of(BundleName::Restricted).policy("pay", Some("strict".into()));
    policies.create(&PostParams::default(), &policy).await.unwrap();
    // slow: its pod list takes 5 s.
    slow.inject(Fault::latency(Some("list"), Some("pods"), Duration::from_secs(5)));

    let (a, b, s) = (config_of(alpha.kubeconfig()), config_of(beta.kubeconfig()), config_of(slow.kubeconfig()));
    let mut merged = json!({"apiVersion": "v1", "kind": "Config", "clusters": [], "users": [], "contexts": [],
                            "current-context": "alpha"});
    add_context(&mut merged, "alpha", &a, None, None);
    add_context(&mut merged, "beta", &b, None, None);
    add_context(&mut merged, "slow", &s, None, None);
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    add_context(&mut merged, "gone", &a, Some(&format!("https://127.0.0.1:{closed}")), None);
    let no_rights = config_of(&alpha.service_account_kubeconfig("default", "nobody"));
    add_context(&mut merged, "no-rights", &no_rights, None, None);
    add_context(&mut merged, "bad-token", &a, None, Some("not-a-token"));
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("fleet.kubeconfig");
    std::fs::write(&kubeconfig, serde_json::to_string(&merged).unwrap()).unwrap();
    Fleet { alpha, beta, _slow: slow, kubeconfig, _dir: dir }
}

fn by_context<'a>(list: &'a Value, context: &str) -> &'a Value {
    list.as_array().unwrap().iter().find(|c| c["context"] == context).unwrap_or_else(|| panic!("{context}: {list}"))
}

#[tokio::test]
async fn list_contexts_tries_every_context() {
    let fleet = fleet().await;
    let started = Instant::now();
    let out = kube_devops_on(&fleet.kubeconfig, &["multi-cluster", "list-contexts", "-o", "json", "--timeout", "3s"]);
    eprintln!("list-contexts of 6 contexts took {:?}", started.elapsed());
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let list = json_of(&out);
    let status = |context: &str| by_context(&list, context)["status"].as_str().unwrap().to_string();
    assert_eq!(
        ["alpha", "beta", "slow", "gone", "no-rights", "bad-token"].map(status),
        ["reachable", "reachable", "reachable", "unreachable", "reachable", "unauthorised"]
    );
    assert_eq!(by_context(&list, "alpha")["current"], true);
    assert!(by_context(&list, "beta")["version"].as_str().unwrap().starts_with("v1."), "{list}");
    assert!(by_context(&list, "bad-token")["reason"].as_str().unwrap().contains("HTTP 401"), "{list}");

    let table = kube_devops_on(&fleet.kubeconfig, &["multi-cluster", "list-contexts"]);
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(text.starts_with("CURRENT  CONTEXT    CLUSTER    STATUS"), "{text}");
    assert!(text.lines().any(|l| l.starts_with("*        alpha ")), "{text}");
}

/// `analyze -o json` of one cluster, for comparison.
fn analyze(kubeconfig: &Path, args: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_kube-devops"))
        .arg("analyze")
        .args(args)
        .args(["-o", "json"])
        .env("KUBECONFIG", kubeconfig)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    json_of(&out)
}

const SCORE_FIELDS: [&str; 5] = ["score", "classification", "subjects", "violations", "bySeverity"];

fn scores(value: &Value) -> Vec<&Value> {
    SCORE_FIELDS.iter().map(|f| &value[f]).collect()
}

#[tokio::test]
async fn analyze_reads_the_fleet_concurrently_and_reports_what_it_could_not_read() {
    let fleet = fleet().await;
    fleet.alpha.clear_requests();
    let started = Instant::now();
    let out = kube_devops_on(
        &fleet.kubeconfig,
        &["multi-cluster", "analyze", "--per-cluster", "-o", "json", "--timeout", "2s", "--fail-below", "99"],
    );
    let elapsed = started.elapsed();
    eprintln!("multi-cluster analyze of 6 contexts (3 servers) took {elapsed:?}");
    // The slow cluster costs its 2 s timeout once: the others are read meanwhile.
    assert!(elapsed < Duration::from_millis(3500), "{elapsed:?}");
    assert_eq!(out.status.code(), Some(0), "aggregate 99 is not below 99: {}", stderr(&out));
    let report = json_of(&out);
    let read: Vec<&str> =
        report["clusters"].as_array().unwrap().iter().map(|c| c["context"].as_str().unwrap()).collect();
    assert_eq!(read, ["alpha", "beta"]);
    let failed: Vec<(&str, &str)> = report["failed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["context"].as_str().unwrap(), f["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        failed,
        [
            ("bad-token", "unauthorised"),
            ("gone", "unreachable"),
            ("no-rights", "unauthorised"),
            ("slow", "unreachable")
        ]
    );
    assert_eq!(by_context(&report["failed"], "slow")["reason"], "no answer within 2s");
    assert!(by_context(&report["failed"], "no-rights")["reason"].as_str().unwrap().contains("HTTP 403"), "{report}");
    for failure in ["gone", "slow", "no-rights", "bad-token"] {
        assert!(stderr(&out).contains(&format!("error: context {failure}: ")), "{}", stderr(&out));
    }

    // Each cluster and namespace scores as `analyze` scores it.
    for (context, cluster) in [("alpha", &fleet.alpha), ("beta", &fleet.beta)] {
        let single = analyze(cluster.kubeconfig(), &[]);
        let entry = by_context(&report["clusters"], context);
        assert_eq!(scores(entry), scores(&single), "{context}");
        assert_eq!(entry["skippedSystemWorkloads"], single["skippedSystemWorkloads"]);
        for ns in single["namespaces"].as_array().unwrap() {
            let mine =
                entry["namespaces"].as_array().unwrap().iter().find(|n| n["namespace"] == ns["namespace"]).unwrap();
            assert_eq!(scores(mine), scores(ns), "{context}/{}", ns["namespace"]);
        }
    }
    // alpha scores 97 (7 points over 2 pods), beta 100 (3 pods): every pod weighs the same,
    // 7 points over 5 pods -> 99 (the mean of the clusters would be 98).
    assert_eq!(
        (report["clusters"][0]["score"].as_u64(), report["clusters"][1]["score"].as_u64()),
        (Some(97), Some(100))
    );
    assert_eq!((report["aggregate"]["score"].as_u64(), report["aggregate"]["subjects"].as_u64()), (Some(99), Some(5)));
    let pod_lists: Vec<_> = fleet.alpha.requests().into_iter().filter(|r| r.resource == "pods").collect();
    assert!(pod_lists.iter().all(|r| r.query.contains("limit=500") && !r.is_write()), "{pod_lists:?}");

    // --fail-below gates on the aggregate, like audit.
    let args = ["multi-cluster", "analyze", "--contexts", "alpha,beta", "--fail-below", "100"];
    let started = Instant::now();
    let out = kube_devops_on(&fleet.kubeconfig, &args);
    eprintln!("multi-cluster analyze of 2 healthy servers took {:?}", started.elapsed());
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("aggregate score 99 is below --fail-below 100"), "{}", stderr(&out));
    let table = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(table.contains("\nTOTAL (pod-weighted)  5     2           99     Healthy\n"), "{table}");

    // --require-all: the same fleet's gate fails on the clusters it could not read, even with a
    // passing score; a fleet read whole passes.
    let out = kube_devops_on(&fleet.kubeconfig, &["multi-cluster", "analyze", "--timeout", "2s", "--require-all"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("of the clusters could not be read (--require-all)"), "{}", stderr(&out));
    let args = ["multi-cluster", "analyze", "--contexts", "alpha,beta", "--require-all", "--fail-below", "90"];
    assert_eq!(kube_devops_on(&fleet.kubeconfig, &args).status.code(), Some(0));
}

#[tokio::test]
async fn analyze_fails_when_no_cluster_can_be_read_and_names_unknown_contexts() {
    let fleet = fleet().await;
    let out =
        kube_devops_on(&fleet.kubeconfig, &["multi-cluster", "analyze", "--contexts", "gone,no-rights", "-o", "json"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("no cluster could be read"), "{}", stderr(&out));
    assert_eq!(json_of(&out)["clusters"], json!([]));
    let out = kube_devops_on(&fleet.kubeconfig, &["multi-cluster", "analyze", "--contexts", "alpha,typo"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("no context \"typo\" in the kubeconfig (it has: alpha, beta, slow"),
        "{}",
        stderr(&out)
    );
    assert!(out.stdout.is_empty());
}

#[tokio::test]
async fn each_cluster_can_be_judged_by_its_own_policies() {
    let fleet = fleet().await;
    let args =
        ["multi-cluster", "analyze", "--contexts", "beta", "--use-cluster-policies", "--per-cluster", "-o", "json"];
    let out = kube_devops_on(&fleet.kubeconfig, &args);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let report = json_of(&out);
    assert_eq!(report["policy"], "each cluster's own DevOpsPolicies");
    let beta = &report["clusters"][0];
    assert_eq!(beta["podsWithoutPolicy"], 1, "batch has no policy: {beta}");
    let pay = &beta["namespaces"][0];
    assert_eq!((pay["namespace"].as_str(), pay["policy"].as_str()), (Some("pay"), Some("strict")));
    // The same score as `analyze --policy` with that policy, in that namespace.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("strict.yaml");
    std::fs::write(&file, kube_devops_yaml(&["policy", "bundle-show", "restricted", "-n", "pay"])).unwrap();
    let single = analyze(fleet.beta.kubeconfig(), &["-n", "pay", "--policy", file.to_str().unwrap()]);
    assert_eq!(scores(pay), scores(&single["namespaces"][0]));
    assert!(pay["score"].as_u64().unwrap() < 100, "p2 misses a liveness probe and resources: {pay}");
    assert_eq!(scores(&report["aggregate"]), scores(pay));
}

fn kube_devops_yaml(args: &[&str]) -> String {
    let out = common::tools::kube_devops(args);
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test]
async fn at_most_four_clusters_are_read_at_once() {
    // Five contexts of one server whose pod list takes 1 s: four at once, then the fifth.
    let server = TestCluster::stand_in();
    server.inject(Fault::latency(Some("list"), Some("pods"), Duration::from_secs(1)));
    let source = config_of(server.kubeconfig());
    let mut merged = json!({"apiVersion": "v1", "kind": "Config", "clusters": [], "users": [], "contexts": []});
    for i in 1..=5 {
        add_context(&mut merged, &format!("c{i}"), &source, None, None);
    }
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("five.kubeconfig");
    std::fs::write(&kubeconfig, serde_json::to_string(&merged).unwrap()).unwrap();
    let started = Instant::now();
    let out = kube_devops_on(&kubeconfig, &["multi-cluster", "analyze", "-o", "json", "--timeout", "5s"]);
    let elapsed = started.elapsed();
    eprintln!("five 1-second clusters took {elapsed:?}");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(json_of(&out)["clusters"].as_array().unwrap().len(), 5);
    assert!(elapsed >= Duration::from_secs(2), "a second wave: {elapsed:?}");
    assert!(elapsed < Duration::from_millis(4500), "not one after the other: {elapsed:?}");
}

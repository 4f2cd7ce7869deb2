//! `policy export`, `policy import` and `policy diff` end to end against testkit API servers,
//! with the built binary: export -> import (into another cluster) -> diff says "no changes";
//! drift is a unified diff with exit 1 that import repairs (also fields another manager set);
//! an invalid document sends nothing; dry runs store nothing; a failed apply prunes nothing.

mod common;

use common::tools::{kube_devops_on, stderr, stdout};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube_devops::api::DevOpsPolicy;
use kube_devops::api::bundles::{Bundle, BundleName};
use serde_json::{Value, json};
use std::path::Path;
use testkit::harness::TestCluster;
use testkit::observe::Fault;

/// A stand-in with the DevOpsPolicy CRD and the namespaces `shop` and `batch`.
async fn cluster() -> (TestCluster, kube::Client) {
    let cluster = TestCluster::stand_in();
    let client = cluster.client().await;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    crds.create(&PostParams::default(), &DevOpsPolicy::crd()).await.unwrap();
    let namespaces: Api<Namespace> = Api::all(client.clone());
    for name in ["shop", "batch"] {
        let namespace = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
        namespaces.create(&PostParams::default(), &namespace).await.unwrap();
    }
    (cluster, client)
}

/// Creates a bundle's policy as someone else would (a plain create), with a status.
async fn create(client: &kube::Client, namespace: &str, name: &str, bundle: BundleName) {
    let api: Api<DevOpsPolicy> = Api::namespaced(client.clone(), namespace);
    api.create(&PostParams::default(), &Bundle::of(bundle).policy(namespace, Some(name.into()))).await.unwrap();
    let status = json!({"status": {"healthScore": 71, "classification": "Stable"}});
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(status)).await.unwrap();
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_string_lossy().into_owned()
}

#[tokio::test]
async fn export_import_into_another_cluster_and_diff_round_trip_to_no_changes() {
    let (source, client) = cluster().await;
    create(&client, "shop", "strict", BundleName::Restricted).await;
    create(&client, "shop", "base", BundleName::Baseline).await;
    create(&client, "batch", "lenient", BundleName::Permissive).await;

    let out = kube_devops_on(source.kubeconfig(), &["policy", "export", "-A"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains("exported 3 DevOpsPolicies"), "{}", stderr(&out));
    let exported = stdout(&out);
    let documents = common::tools::documents(&exported);
    let names: Vec<String> = documents.iter().map(common::tools::id).collect();
    assert_eq!(names, ["DevOpsPolicy/batch/lenient", "DevOpsPolicy/shop/base", "DevOpsPolicy/shop/strict"]);
    for document in &documents {
        let meta = document["metadata"].as_object().unwrap();
        let keys: Vec<&str> = meta.keys().map(String::as_str).collect();
        assert_eq!(keys, ["annotations", "labels", "name", "namespace"], "server-owned metadata stripped");
        assert!(document.get("status").is_none(), "no status: {document}");
        assert_eq!(document["metadata"]["annotations"]["devops.stochastic.io/exported-from"], "testkit");
        let at = document["metadata"]["annotations"]["devops.stochastic.io/exported-at"].as_str().unwrap();
        at.parse::<jiff::Timestamp>().unwrap();
        assert!(common::tools::custom_resource_errors(document).is_empty(), "valid against the CRD: {document}");
    }

    // Into an empty cluster: every policy is created with server-side apply, forced.
    let (target, target_client) = cluster().await;
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "policies.yaml", &exported);
    target.clear_requests();
    let out = kube_devops_on(target.kubeconfig(), &["policy", "import", &file]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "devopspolicy batch/lenient created\ndevopspolicy shop/base created\ndevopspolicy shop/strict created\n"
    );
    let applies: Vec<_> = target.requests().into_iter().filter(|r| r.is_write()).collect();
    assert_eq!(applies.len(), 3, "{applies:?}");
    for apply in &applies {
        assert_eq!((apply.verb.as_str(), apply.field_manager.as_deref()), ("patch", Some("kube-devops-cli")));
        assert!(apply.query.contains("force=true"), "{apply:?}");
    }
    let stored: DevOpsPolicy = Api::namespaced(target_client, "shop").get("strict").await.unwrap();
    assert_eq!(stored.spec, Bundle::of(BundleName::Restricted).spec);
    let annotations = stored.metadata.annotations.unwrap_or_default();
    assert!(!annotations.keys().any(|k| k.starts_with("devops.stochastic.io/exported")), "{annotations:?}");

    for cluster in [&target, &source] {
        let out = kube_devops_on(cluster.kubeconfig(), &["policy", "diff", &file]);
        assert_eq!(out.status.code(), Some(0), "{}{}", stdout(&out), stderr(&out));
        assert_eq!(stdout(&out), "");
        assert_eq!(stderr(&out), "no changes (3 policies)\n");
    }
    // Importing again changes nothing.
    let out = kube_devops_on(target.kubeconfig(), &["policy", "import", &file]);
    assert!(stdout(&out).lines().all(|l| l.ends_with(" unchanged")), "{}", stdout(&out));

    // JSON export is a List that import reads too.
    let out = kube_devops_on(source.kubeconfig(), &["policy", "export", "-n", "shop", "-o", "json"]);
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((list["kind"].as_str(), list["items"].as_array().unwrap().len()), (Some("List"), 2));
    let json_file = write(dir.path(), "shop.json", &stdout(&out));
    let out = kube_devops_on(target.kubeconfig(), &["policy", "diff", &json_file, "-n", "shop"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[tokio::test]
async fn drift_is_a_unified_diff_and_import_with_prune_repairs_it() {
    let (cluster, client) = cluster().await;
    create(&client, "shop", "strict", BundleName::Restricted).await;
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "shop.yaml",
        &stdout(&kube_devops_on(cluster.kubeconfig(), &["policy", "export", "-n", "shop"])),
    );
    // Someone edits the policy by hand and adds another one.
    let api: Api<DevOpsPolicy> = Api::namespaced(client.clone(), "shop");
    let edit = json!({"metadata": {"labels": {"devops.stochastic.io/bundle": "edited"}},
                      "spec": {"maxRestartCount": 9, "defaultProbe": {"tcpPort": 8080}}});
    api.patch("strict", &PatchParams::default(), &Patch::Merge(edit)).await.unwrap();
    create(&client, "shop", "extra", BundleName::Baseline).await;

    let out = kube_devops_on(cluster.kubeconfig(), &["policy", "diff", &file, "-n", "shop"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let diff = stdout(&out);
    assert!(diff.starts_with("--- live/shop/extra\n+++ (not in the files)\n"), "{diff}");
    assert!(diff.contains(&format!("--- live/shop/strict\n+++ {file}#1\n@@ ")), "{diff}");
    for line in ["-    devops.stochastic.io/bundle: edited", "+    devops.stochastic.io/bundle: restricted"] {
        assert!(diff.lines().any(|l| l == line), "{line} in\n{diff}");
    }
    for line in ["-  maxRestartCount: 9", "+  maxRestartCount: 3", "-    tcpPort: 8080"] {
        assert!(diff.lines().any(|l| l == line), "{line} in\n{diff}");
    }
    assert_eq!(stderr(&out), "1 changed, 0 new, 1 only in the cluster\n");

    let out = kube_devops_on(cluster.kubeconfig(), &["policy", "import", &file, "-n", "shop", "--prune"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "devopspolicy shop/strict configured\ndevopspolicy shop/extra pruned\n");
    let out = kube_devops_on(cluster.kubeconfig(), &["policy", "diff", &file, "-n", "shop"]);
    assert_eq!(out.status.code(), Some(0), "the field another manager set is gone too:\n{}", stdout(&out));
    let repaired = api.get("strict").await.unwrap();
    assert_eq!(repaired.spec, Bundle::of(BundleName::Restricted).spec);
    assert!(api.get_opt("extra").await.unwrap().is_none());
}

#[tokio::test]
async fn an_invalid_document_is_named_and_nothing_is_sent() {
    let (cluster, client) = cluster().await;
    create(&client, "shop", "old", BundleName::Baseline).await;
    let valid = stdout(&kube_devops_on(cluster.kubeconfig(), &["policy", "bundle-show", "restricted", "-n", "shop"]));
    let invalid = valid.replace("name: restricted", "name: typo").replace("forbidLatestTag", "forbidLatestTags");
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "p.yaml", &format!("{valid}---\n{invalid}---\nspec: [broken\n"));
    cluster.clear_requests();
    let out = kube_devops_on(cluster.kubeconfig(), &["policy", "import", &file, "-n", "shop", "--prune"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "error: {file}#2: invalid DevOpsPolicy: .spec.forbidLatestTags: unknown field (the API server would drop it)"
        )),
        "{err}"
    );
    assert!(err.contains(&format!("error: {file}#3: not valid YAML")), "{err}");
    assert!(err.contains("2 document(s) invalid; nothing was applied"), "{err}");
    assert!(cluster.requests().is_empty(), "nothing sent: {:?}", cluster.requests());

    // --dry-run=client validates without any cluster.
    let nowhere = dir.path().join("no-kubeconfig");
    let out = kube_devops_on(&nowhere, &["policy", "import", &file, "--dry-run=client"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("#2: invalid DevOpsPolicy"), "{}", stderr(&out));
    let good = write(dir.path(), "good.yaml", &valid);
    let out = kube_devops_on(&nowhere, &["policy", "import", &good, "--dry-run=client"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), format!("devopspolicy shop/restricted valid ({good}#1) (dry run)\n"));
}

#[tokio::test]
async fn a_server_dry_run_stores_nothing() {
    let (cluster, client) = cluster().await;
    create(&client, "shop", "old", BundleName::Baseline).await;
    let policy = stdout(&kube_devops_on(cluster.kubeconfig(), &["policy", "bundle-show", "restricted", "-n", "shop"]));
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "p.yaml", &policy);
    cluster.clear_requests();
    let out =
        kube_devops_on(cluster.kubeconfig(), &["policy", "import", &file, "-n", "shop", "--prune", "--dry-run=server"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "devopspolicy shop/restricted created (server dry run)\ndevopspolicy shop/old pruned (server dry run)\n"
    );
    let api: Api<DevOpsPolicy> = Api::namespaced(client, "shop");
    assert!(api.get_opt("restricted").await.unwrap().is_none());
    assert!(api.get_opt("old").await.unwrap().is_some());
    let writes: Vec<_> =
        cluster.requests().into_iter().filter(|r| r.is_write() && r.user_agent.starts_with("kube-devops/")).collect();
    // The apply says dryRun in its query, the deletion in its DeleteOptions body.
    assert_eq!(writes.len(), 2, "{writes:?}");
    assert!(writes[0].query.contains("dryRun=All"), "{writes:?}");
}

#[tokio::test]
async fn a_failed_apply_is_named_by_its_document_and_nothing_is_pruned() {
    let (cluster, client) = cluster().await;
    create(&client, "shop", "old", BundleName::Baseline).await;
    let show =
        |bundle: &str| stdout(&kube_devops_on(cluster.kubeconfig(), &["policy", "bundle-show", bundle, "-n", "shop"]));
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "p.yaml", &format!("{}---\n{}", show("restricted"), show("permissive")));
    cluster.inject(Fault::error(Some("patch"), Some("devopspolicies"), 500).times(1));
    let out = kube_devops_on(cluster.kubeconfig(), &["policy", "import", &file, "-n", "shop", "--prune"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).starts_with(&format!("error: {file}#1: server-side apply failed")), "{}", stderr(&out));
    assert!(stderr(&out).contains("1 of 2 policies failed; nothing was pruned"), "{}", stderr(&out));
    assert_eq!(stdout(&out), "devopspolicy shop/permissive created\n");
    let api: Api<DevOpsPolicy> = Api::namespaced(client, "shop");
    assert!(api.get_opt("old").await.unwrap().is_some(), "not pruned");

    // diff cannot read the cluster: 2, not "no changes".
    let forbidden = cluster.service_account_kubeconfig("shop", "nobody");
    let out = kube_devops_on(&forbidden, &["policy", "diff", &file]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("cannot list the DevOpsPolicies of namespace shop"), "{}", stderr(&out));
}

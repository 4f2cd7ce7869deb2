//! Custom resources as the real API server treats them, using this project's own CRDs:
//! served kinds, short names, printer columns, defaulting, pruning, CEL rules, the status
//! subresource and generation.

use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use std::path::Path;
use testkit::harness::TestCluster;

fn crd_file(name: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../crds").join(name)).unwrap()
}

fn install_crds(cluster: &TestCluster) {
    for file in ["devopspolicies.yaml", "policyauditresults.yaml", "kubedevopsinstalls.yaml"] {
        let out = cluster.kubectl_as(cluster.kubeconfig(), &["apply", "-f", "-"], Some(&crd_file(file)));
        assert!(out.status.success(), "{file}: {}", String::from_utf8_lossy(&out.stderr));
    }
}

fn api(client: kube::Client, kind: &str, version: &str, plural: &str, namespace: Option<&str>) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("devops.stochastic.io", version, kind);
    let ar = ApiResource::from_gvk_with_plural(&gvk, plural);
    match namespace {
        Some(ns) => Api::namespaced_with(client, ns, &ar),
        None => Api::all_with(client, &ar),
    }
}

fn object(value: Value) -> DynamicObject {
    serde_json::from_value(value).unwrap()
}

#[tokio::test]
async fn applied_crds_are_served_with_short_names_and_printer_columns() {
    let cluster = TestCluster::start();
    install_crds(&cluster);
    let policy = "apiVersion: devops.stochastic.io/v1\nkind: DevOpsPolicy\nmetadata: {name: baseline}\nspec: {forbidLatestTag: true, enforcementMode: audit}\n";
    let out = cluster.kubectl_as(cluster.kubeconfig(), &["apply", "-f", "-"], Some(policy));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let client = cluster.client().await;
    let policies = api(client, "DevOpsPolicy", "v1", "devopspolicies", Some(cluster.namespace()));
    let status = json!({"status": {"healthScore": 87, "classification": "Healthy", "violations": 3}});
    policies.patch_status("baseline", &PatchParams::default(), &Patch::Merge(status)).await.unwrap();
    let out = cluster.kubectl(&["get", "dop"]);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "MODE", "SCORE", "CLASS", "VIOLATIONS", "EVALUATED", "AGE"]);
    let row: Vec<&str> = table.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(&row[..5], ["baseline", "audit", "87", "Healthy", "3"]);
    // Columns of priority 1 only with `-o wide`, as kubectl shows them from a real server.
    let out = cluster.kubectl(&["get", "dop", "-o", "wide"]);
    let wide = String::from_utf8_lossy(&out.stdout);
    let header: Vec<&str> = wide.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        ["NAME", "MODE", "SCORE", "CLASS", "VIOLATIONS", "REMEDIATED", "UNREMEDIATED", "EVALUATED", "AGE"]
    );
    // The category lists every kube-devops kind.
    let out = cluster.kubectl(&["get", "kube-devops", "-A"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("devopspolicy.devops.stochastic.io/baseline"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[tokio::test]
async fn the_singleton_rule_defaults_and_pruning_apply_to_the_install_resource() {
    // The install resource is a cluster-wide singleton: a shared real cluster may have one.
    let cluster = TestCluster::stand_in();
    install_crds(&cluster);
    let installs = api(cluster.client().await, "KubeDevopsInstall", "v1alpha1", "kubedevopsinstalls", None);
    let install = |name: &str| {
        object(json!({"apiVersion": "devops.stochastic.io/v1alpha1", "kind": "KubeDevopsInstall",
        "metadata": {"name": name}, "spec": {"webhook": {"replicas": 3}, "replica": 5}}))
    };
    match installs.create(&PostParams::default(), &install("prod")).await {
        Err(kube::Error::Api(e)) => {
            assert_eq!((e.code, e.reason.as_str()), (422, "Invalid"));
            assert!(e.message.contains("metadata.name must be 'default'"), "{}", e.message);
        }
        other => panic!("a second installation must be refused: {other:?}"),
    }
    let created = installs.create(&PostParams::default(), &install("default")).await.unwrap();
    let spec = &created.data["spec"];
    assert_eq!(spec["replicas"], 2, "defaulted");
    assert_eq!(
        spec["webhook"],
        json!({"enabled": true, "replicas": 3, "failurePolicy": "Ignore", "timeoutSeconds": 3})
    );
    assert!(spec.get("replica").is_none(), "unknown fields are pruned");
    // A value outside the schema is refused with the field named.
    let bad = json!({"spec": {"webhook": {"timeoutSeconds": 99}}});
    match installs.patch("default", &PatchParams::default(), &Patch::Merge(bad)).await {
        Err(kube::Error::Api(e)) => assert!(e.message.contains("spec.webhook.timeoutSeconds"), "{}", e.message),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn status_writes_touch_only_status_and_generation_counts_spec_changes() {
    let cluster = TestCluster::start();
    install_crds(&cluster);
    let policies = api(cluster.client().await, "DevOpsPolicy", "v1", "devopspolicies", Some(cluster.namespace()));
    let created = policies
        .create(
            &PostParams::default(),
            &object(json!({"apiVersion": "devops.stochastic.io/v1", "kind": "DevOpsPolicy",
            "metadata": {"name": "p"}, "spec": {"forbidLatestTag": true}})),
        )
        .await
        .unwrap();
    assert_eq!(created.metadata.generation, Some(1));
    // Status through the main resource is ignored; through /status it is all that changes.
    let main = json!({"status": {"healthScore": 10}, "metadata": {"labels": {"team": "a"}}});
    let after = policies.patch("p", &PatchParams::default(), &Patch::Merge(main)).await.unwrap();
    assert!(after.data.get("status").is_none_or(|s| s.get("healthScore").is_none()));
    assert_eq!(after.metadata.generation, Some(1), "labels are metadata: no new generation");
    let status = json!({"status": {"healthScore": 55}, "spec": {"forbidLatestTag": false}});
    let after = policies.patch_status("p", &PatchParams::default(), &Patch::Merge(status)).await.unwrap();
    assert_eq!(after.data["status"]["healthScore"], 55);
    assert_eq!(after.data["spec"]["forbidLatestTag"], true, "spec is not written through /status");
    assert_eq!(after.metadata.generation, Some(1));
    let spec = json!({"spec": {"requireReadinessProbe": true}});
    let after = policies.patch("p", &PatchParams::default(), &Patch::Merge(spec)).await.unwrap();
    assert_eq!(after.metadata.generation, Some(2));
    // Strategic merge patch is not for custom resources.
    let smp = policies.patch("p", &PatchParams::default(), &Patch::Strategic(json!({"spec": {}}))).await;
    assert!(matches!(smp, Err(kube::Error::Api(e)) if e.code == 415));
}

#[tokio::test]
async fn server_side_apply_twice_changes_nothing_and_conflicts_are_reported() {
    let cluster = TestCluster::start();
    install_crds(&cluster);
    let policies = api(cluster.client().await, "DevOpsPolicy", "v1", "devopspolicies", Some(cluster.namespace()));
    let config =
        object(json!({"apiVersion": "devops.stochastic.io/v1", "kind": "DevOpsPolicy", "metadata": {"name": "p"},
        "spec": {"forbidLatestTag": true, "maxRestartCount": 3}}));
    let first = policies.patch("p", &PatchParams::apply("operator"), &Patch::Apply(&config)).await.unwrap();
    let second = policies.patch("p", &PatchParams::apply("operator"), &Patch::Apply(&config)).await.unwrap();
    assert_eq!(first.metadata.resource_version, second.metadata.resource_version, "an identical apply is no write");
    assert_eq!(first.metadata.managed_fields, second.metadata.managed_fields);
    if cluster.has_hooks("store") {
        let changes = cluster.state().cluster.lock().unwrap().store.resource_version();
        policies.patch("p", &PatchParams::apply("operator"), &Patch::Apply(&config)).await.unwrap();
        assert_eq!(cluster.state().cluster.lock().unwrap().store.resource_version(), changes, "nothing was written");
    }

    let other = object(
        json!({"apiVersion": "devops.stochastic.io/v1", "kind": "DevOpsPolicy", "metadata": {"name": "p"}, "spec": {"maxRestartCount": 9}}),
    );
    match policies.patch("p", &PatchParams::apply("someone-else"), &Patch::Apply(&other)).await {
        Err(kube::Error::Api(e)) => {
            assert_eq!(e.code, 409);
            assert!(e.message.contains("conflict with \"operator\""), "{}", e.message);
        }
        other => panic!("expected a conflict: {other:?}"),
    }
    let forced = policies.patch("p", &PatchParams::apply("someone-else").force(), &Patch::Apply(&other)).await.unwrap();
    assert_eq!(forced.data["spec"]["maxRestartCount"], 9);
}

#[tokio::test]
async fn kubectl_explain_shows_the_crd_descriptions() {
    let cluster = TestCluster::start();
    install_crds(&cluster);
    let out = cluster.kubectl(&["explain", "kubedevopsinstall.spec.webhook.failurePolicy"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("What the API server does when the webhook cannot answer"), "{text}");
}

#[tokio::test]
async fn custom_resources_need_a_resource_version_to_be_replaced_and_status_is_not_set_on_create() {
    let cluster = TestCluster::start();
    install_crds(&cluster);
    let policies = api(cluster.client().await, "DevOpsPolicy", "v1", "devopspolicies", Some(cluster.namespace()));
    let created = policies
        .create(
            &PostParams::default(),
            &object(json!({"apiVersion": "devops.stochastic.io/v1", "kind": "DevOpsPolicy",
            "metadata": {"name": "p"}, "spec": {"forbidLatestTag": true}, "status": {"healthScore": 1}})),
        )
        .await
        .unwrap();
    assert!(created.data.get("status").is_none(), "status is written through /status only");
    let mut replacement = created.clone();
    replacement.metadata.resource_version = None;
    match policies.replace("p", &PostParams::default(), &replacement).await {
        Err(kube::Error::Api(e)) => assert_eq!((e.code, e.reason.as_str()), (422, "Invalid")),
        other => panic!("{other:?}"),
    }
    assert!(policies.replace("p", &PostParams::default(), &created).await.is_ok());
}

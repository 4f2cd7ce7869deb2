//! Garbage collection and deletion as kube-controller-manager and kube-apiserver do them:
//! owners resolved by kind, namespace, name and uid; foreground deletion waiting for the
//! dependents that block it; a deleted CRD held by the finalizers of its objects.

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use std::time::Duration;
use testkit::harness::TestCluster;

async fn eventually<F: Fn() -> Fut, Fut: std::future::Future<Output = bool>>(what: &str, f: F) {
    for _ in 0..200 {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

fn owned(name: &str, owners: Value) -> Secret {
    serde_json::from_value(json!({"metadata": {"name": name, "ownerReferences": owners}})).unwrap()
}

fn reference(api_version: &str, kind: &str, name: &str, uid: &str) -> Value {
    json!({"apiVersion": api_version, "kind": kind, "name": name, "uid": uid})
}

#[tokio::test]
async fn owners_are_resolved_by_kind_namespace_and_name_then_uid() {
    let cluster = TestCluster::stand_in();
    let client = cluster.client().await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "default");
    let owner: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "owner"}})).unwrap();
    let owner = cms.create(&PostParams::default(), &owner).await.unwrap();
    let uid = owner.metadata.uid.clone().unwrap();
    // The owner's uid, but the wrong kind: no such owner, collected.
    secrets
        .create(&PostParams::default(), &owned("wrong-kind", json!([reference("v1", "Secret", "owner", &uid)])))
        .await
        .unwrap();
    // The owner's uid and kind, but it lives in another namespace: cross-namespace references
    // are invalid, so the owner counts as gone.
    let other: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    other
        .create(&PostParams::default(), &serde_json::from_value(json!({"metadata": {"name": "elsewhere"}})).unwrap())
        .await
        .unwrap();
    let elsewhere: Api<Secret> = Api::namespaced(client.clone(), "elsewhere");
    elsewhere
        .create(&PostParams::default(), &owned("cross-namespace", json!([reference("v1", "ConfigMap", "owner", &uid)])))
        .await
        .unwrap();
    // A kind no API serves: the collector cannot tell, and keeps the object.
    secrets
        .create(
            &PostParams::default(),
            &owned("unresolvable", json!([reference("example.com/v1", "Widget", "w", "0000")])),
        )
        .await
        .unwrap();
    // A live owner and a gone one: the dangling reference is stripped, the object stays.
    secrets
        .create(
            &PostParams::default(),
            &owned(
                "two-owners",
                json!([reference("v1", "ConfigMap", "owner", &uid), reference("v1", "ConfigMap", "gone", "1234")]),
            ),
        )
        .await
        .unwrap();
    // The right owner: kept.
    secrets
        .create(&PostParams::default(), &owned("kept", json!([reference("v1", "ConfigMap", "owner", &uid)])))
        .await
        .unwrap();

    eventually("the wrongly referenced objects to be collected", || async {
        secrets.get_opt("wrong-kind").await.unwrap().is_none()
            && elsewhere.get_opt("cross-namespace").await.unwrap().is_none()
    })
    .await;
    eventually("the dangling reference to be stripped", || async {
        let refs = secrets.get("two-owners").await.unwrap().metadata.owner_references.unwrap_or_default();
        refs.len() == 1 && refs[0].name == "owner"
    })
    .await;
    assert!(
        secrets.get_opt("unresolvable").await.unwrap().is_some(),
        "an unresolvable owner never gets its dependent collected"
    );
    assert!(secrets.get_opt("kept").await.unwrap().is_some());
}

#[tokio::test]
async fn foreground_deletion_waits_only_for_dependents_that_block_it() {
    let cluster = TestCluster::stand_in();
    let client = cluster.client().await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "default");
    let owner = |name: &str| serde_json::from_value::<ConfigMap>(json!({"metadata": {"name": name}})).unwrap();
    let dependent = |name: &str, owner: &ConfigMap, block: bool| -> Secret {
        let mut reference = reference(
            "v1",
            "ConfigMap",
            owner.metadata.name.as_deref().unwrap(),
            owner.metadata.uid.as_deref().unwrap(),
        );
        reference["blockOwnerDeletion"] = json!(block);
        let mut s = owned(name, json!([reference]));
        s.metadata.finalizers = Some(vec!["example.com/hold".into()]);
        s
    };
    let free = cms.create(&PostParams::default(), &owner("free")).await.unwrap();
    secrets.create(&PostParams::default(), &dependent("not-blocking", &free, false)).await.unwrap();
    let held = cms.create(&PostParams::default(), &owner("held")).await.unwrap();
    secrets.create(&PostParams::default(), &dependent("blocking", &held, true)).await.unwrap();

    cms.delete("free", &DeleteParams::foreground()).await.unwrap();
    cms.delete("held", &DeleteParams::foreground()).await.unwrap();
    // A dependent that does not block: its owner goes while it still waits for its finalizer.
    eventually("the owner without blocking dependents to go", || async {
        cms.get_opt("free").await.unwrap().is_none()
    })
    .await;
    let not_blocking = secrets.get("not-blocking").await.unwrap();
    assert!(not_blocking.metadata.deletion_timestamp.is_some(), "its dependents are deleted all the same");
    let held_now = cms.get("held").await.unwrap();
    assert!(
        held_now.metadata.finalizers.unwrap_or_default().contains(&"foregroundDeletion".to_string()),
        "held by its blocking dependent"
    );
    let release = Patch::Merge(json!({"metadata": {"finalizers": null}}));
    secrets.patch("blocking", &PatchParams::default(), &release).await.unwrap();
    eventually("the held owner to go once its blocking dependent is gone", || async {
        cms.get_opt("held").await.unwrap().is_none()
    })
    .await;
    secrets.patch("not-blocking", &PatchParams::default(), &release).await.unwrap();
}

fn widget_crd() -> String {
    json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {"spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}}}]}})
    .to_string()
}

#[tokio::test]
async fn a_deleted_crd_stays_terminating_until_the_finalizers_of_its_objects_are_done() {
    let cluster = TestCluster::stand_in();
    let out = cluster.kubectl_as(cluster.kubeconfig(), &["apply", "-f", "-"], Some(&widget_crd()));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let client = cluster.client().await;
    let ar = ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("example.com", "v1", "Widget"), "widgets");
    let widgets: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", &ar);
    let widget = |name: &str, finalizers: Value| -> DynamicObject {
        serde_json::from_value(json!({"apiVersion": "example.com/v1", "kind": "Widget",
            "metadata": {"name": name, "finalizers": finalizers}, "spec": {}}))
        .unwrap()
    };
    widgets.create(&PostParams::default(), &widget("held", json!(["example.com/cleanup"]))).await.unwrap();
    widgets.create(&PostParams::default(), &widget("plain", json!([]))).await.unwrap();

    let out = cluster.kubectl(&["delete", "crd", "widgets.example.com", "--wait=false"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let crds: Api<DynamicObject> = Api::all_with(
        client.clone(),
        &ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("apiextensions.k8s.io", "v1", "CustomResourceDefinition"),
            "customresourcedefinitions",
        ),
    );
    eventually("the plain object to be deleted and the held one to wait for its finalizer", || async {
        widgets.get_opt("plain").await.unwrap().is_none()
            && widgets.get("held").await.unwrap().metadata.deletion_timestamp.is_some()
    })
    .await;
    let crd = crds.get("widgets.example.com").await.expect("the CRD waits for its objects");
    let terminating = crd.data["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Terminating")
        .cloned()
        .unwrap();
    assert_eq!(
        (terminating["status"].as_str(), terminating["reason"].as_str()),
        (Some("True"), Some("InstanceDeletionInProgress"))
    );
    match widgets.create(&PostParams::default(), &widget("new", json!([]))).await {
        Err(kube::Error::Api(e)) => assert_eq!(
            (e.code, e.message.as_str()),
            (405, "create not allowed while custom resource definition is terminating")
        ),
        other => panic!("{other:?}"),
    }
    // The object's controller finishes its cleanup: the object goes, then the CRD.
    widgets
        .patch("held", &PatchParams::default(), &Patch::Merge(json!({"metadata": {"finalizers": null}})))
        .await
        .unwrap();
    eventually("the CRD to go with its last object", || async {
        crds.get_opt("widgets.example.com").await.unwrap().is_none()
    })
    .await;
}

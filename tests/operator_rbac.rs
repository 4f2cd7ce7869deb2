//! The bootstrap operator's RBAC (what `config/rbac` installs) on the testkit API server:
//! as its ServiceAccount, server-side apply of every object of an installation succeeds,
//! the ClusterRole and Role included (so it holds every permission it grants), a second apply
//! changes them in place, and a switched-off component can be deleted; while writing any
//! object of the same kinds under another name, POSTing instead of applying, and reading
//! other Secrets are refused.

mod common;

use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::GroupVersionKind;
use kube::discovery::{ApiResource, pinned_kind};
use kube_devops::api::KubeDevopsInstallSpec;
use kube_devops::manifests::{ClusterApis, Object, all, bootstrap, resolve, webhook};
use serde_json::{Value, json};
use testkit::harness::TestCluster;

const FIELD_MANAGER: &str = "kube-devops-operator";

async fn api_for(client: &kube::Client, admin: &kube::Client, object: &Value) -> Api<DynamicObject> {
    let (group, version) = match object["apiVersion"].as_str().unwrap().split_once('/') {
        Some((g, v)) => (g.to_string(), v.to_string()),
        None => (String::new(), object["apiVersion"].as_str().unwrap().to_string()),
    };
    let gvk = GroupVersionKind::gvk(&group, &version, object["kind"].as_str().unwrap());
    let (resource, _): (ApiResource, _) = pinned_kind(admin, &gvk).await.unwrap();
    match object["metadata"]["namespace"].as_str() {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &resource),
        None => Api::all_with(client.clone(), &resource),
    }
}

async fn apply(client: &kube::Client, admin: &kube::Client, object: &Value) -> Result<DynamicObject, kube::Error> {
    let name = object["metadata"]["name"].as_str().unwrap();
    api_for(client, admin, object).await.patch(name, &PatchParams::apply(FIELD_MANAGER), &Patch::Apply(object)).await
}

fn forbidden<T: std::fmt::Debug>(result: Result<T, kube::Error>, what: &str) -> String {
    match result {
        Err(kube::Error::Api(e)) if e.code == 403 => e.message,
        other => panic!("{what}: expected 403 Forbidden, got {other:?}"),
    }
}

fn renamed(object: &Value, name: &str) -> Value {
    let mut other = object.clone();
    other["metadata"]["name"] = json!(name);
    other
}

#[tokio::test]
async fn the_operator_can_install_exactly_its_objects_and_nothing_else() {
    let cluster = TestCluster::stand_in();
    let admin = cluster.client().await;

    // What `kubectl apply -k config/default` gives the operator before it starts.
    let namespace = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "kube-devops"}});
    let own: Vec<Object> = vec![
        bootstrap::service_account().into(),
        bootstrap::cluster_role().into(),
        bootstrap::cluster_role_binding().into(),
        bootstrap::role().into(),
        bootstrap::role_binding().into(),
    ];
    for object in [namespace, common::e2e::service_monitor_crd()]
        .into_iter()
        .chain(own.iter().map(|o| serde_json::to_value(o).unwrap()))
    {
        apply(&admin, &admin, &object).await.unwrap_or_else(|e| panic!("{}: {e}", object["kind"]));
    }
    let operator_client =
        cluster.client_for(&cluster.service_account_kubeconfig("kube-devops", bootstrap::OPERATOR)).await;

    let tls = webhook::generate_tls().unwrap();
    let installation: Vec<Value> =
        all(&resolve(&KubeDevopsInstallSpec::default(), ClusterApis { service_monitors: true }), &tls)
            .iter()
            .map(|o| serde_json::to_value(o).unwrap())
            .collect();
    assert!(installation.len() >= 20, "{} objects", installation.len());
    for round in ["create", "update"] {
        for object in &installation {
            let applied = apply(&operator_client, &admin, object)
                .await
                .unwrap_or_else(|e| panic!("{round} {}/{}: {e}", object["kind"], object["metadata"]["name"]));
            assert_eq!(applied.metadata.name.as_deref(), object["metadata"]["name"].as_str());
        }
    }

    let by_kind = |kind: &str| installation.iter().find(|o| o["kind"] == kind).unwrap().clone();
    for kind in ["ValidatingWebhookConfiguration", "Service", "Deployment", "ClusterRole", "Secret", "ConfigMap"] {
        let message = forbidden(apply(&operator_client, &admin, &renamed(&by_kind(kind), "not-ours")).await, kind);
        assert!(message.contains("\"not-ours\" is forbidden"), "{message}");
    }
    // A POST carries no name, so it needs create on every name: refused.
    let vwc: DynamicObject =
        serde_json::from_value(renamed(&by_kind("ValidatingWebhookConfiguration"), "posted")).unwrap();
    let api = api_for(&operator_client, &admin, &by_kind("ValidatingWebhookConfiguration")).await;
    forbidden(api.create(&PostParams::default(), &vwc).await, "POST of a webhook configuration");
    // No Secret but the webhook's can be read, in kube-devops or elsewhere.
    let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db", "namespace": "kube-devops"}, "stringData": {"password": "x"}});
    apply(&admin, &admin, &secret).await.unwrap();
    let secrets = api_for(&operator_client, &admin, &secret).await;
    forbidden(secrets.get("db").await, "reading another Secret");
    assert!(secrets.get("kube-devops-webhook-tls").await.is_ok());

    // Switching a component off deletes its objects.
    let deployments = api_for(&operator_client, &admin, &by_kind("Deployment")).await;
    deployments.delete("kube-devops-watch", &DeleteParams::default()).await.unwrap();
    assert!(deployments.get_opt("kube-devops-watch").await.unwrap().is_none());
}

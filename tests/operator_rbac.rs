//! The bootstrap operator's RBAC (what `config/rbac` installs) on the testkit API server:
//! as its ServiceAccount, server-side apply of every object of an installation succeeds,
//! the ClusterRole and Role included (so it holds every permission it grants), a second apply
//! changes them in place, and a switched-off component can be deleted; while writing any
//! object of the same kinds under another name, POSTing instead of applying, and reading
//! other Secrets are refused.

mod common;

use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, PostParams};
use kube_devops::api::KubeDevopsInstallSpec;
use kube_devops::bootstrap::ObjectRef;
use kube_devops::bootstrap::apply::Applier;
use kube_devops::manifests::{ClusterApis, Object, all, bootstrap, resolve, webhook};
use testkit::harness::TestCluster;

fn forbidden<T: std::fmt::Debug>(result: Result<T, kube::Error>, what: &str) -> String {
    match result {
        Err(kube::Error::Api(e)) if e.code == 403 => e.message,
        other => panic!("{what}: expected 403 Forbidden, got {other:?}"),
    }
}

fn renamed(object: &Object, name: &str) -> Object {
    let mut other = object.clone();
    other.meta_mut().name = Some(name.into());
    other
}

#[tokio::test]
async fn the_operator_can_install_exactly_its_objects_and_nothing_else() {
    let cluster = TestCluster::stand_in();
    let admin = Applier::new(cluster.client().await, "admin");

    // What `kubectl apply -k config/default` gives the operator before it starts.
    common::e2e::apply_ok(&cluster, "apiVersion: v1\nkind: Namespace\nmetadata: {name: kube-devops}\n");
    common::e2e::apply_ok(&cluster, &common::e2e::service_monitor_crd().to_string());
    let own: Vec<Object> = vec![
        bootstrap::service_account().into(),
        bootstrap::cluster_role().into(),
        bootstrap::cluster_role_binding().into(),
        bootstrap::role().into(),
        bootstrap::role_binding().into(),
    ];
    for object in &own {
        admin.apply(object).await.unwrap_or_else(|e| panic!("{}: {e}", object.id()));
    }
    let operator_client =
        cluster.client_for(&cluster.service_account_kubeconfig("kube-devops", bootstrap::OPERATOR)).await;
    // The operator writes through the same Applier it runs with.
    let operator = Applier::new(operator_client.clone(), kube_devops::bootstrap::FIELD_MANAGER);

    let tls = webhook::generate_tls().unwrap();
    let installation = all(
        &resolve(
            &KubeDevopsInstallSpec::default(),
            ClusterApis { service_monitors: true, policy_reports: true, assigns_ids: false },
        ),
        &tls,
    );
    assert!(installation.len() >= 20, "{} objects", installation.len());
    for round in ["create", "update"] {
        for object in &installation {
            let applied = operator.apply(object).await.unwrap_or_else(|e| panic!("{round} {}: {e}", object.id()));
            assert_eq!(applied.metadata.name.as_deref(), Some(object.name()));
        }
    }

    let by_kind = |kind: &str| installation.iter().find(|o| o.kind() == kind).unwrap().clone();
    for kind in ["ValidatingWebhookConfiguration", "Service", "Deployment", "ClusterRole", "Secret", "ConfigMap"] {
        let message = forbidden(operator.apply(&renamed(&by_kind(kind), "not-ours")).await, kind);
        assert!(message.contains("\"not-ours\" is forbidden"), "{message}");
    }
    // A POST carries no name, so it needs create on every name: refused.
    let Object::ValidatingWebhookConfiguration(vwc) = renamed(&by_kind("ValidatingWebhookConfiguration"), "posted")
    else {
        unreachable!()
    };
    let api: Api<ValidatingWebhookConfiguration> = Api::all(operator_client.clone());
    forbidden(api.create(&PostParams::default(), &vwc).await, "POST of a webhook configuration");
    // No Secret but the webhook's can be read, in kube-devops or elsewhere.
    common::e2e::apply_ok(
        &cluster,
        "apiVersion: v1\nkind: Secret\nmetadata: {name: db, namespace: kube-devops}\nstringData: {password: x}\n",
    );
    let secrets: Api<Secret> = Api::namespaced(operator_client, "kube-devops");
    forbidden(secrets.get("db").await, "reading another Secret");
    assert!(secrets.get("kube-devops-webhook-tls").await.is_ok());

    // Switching a component off deletes its objects.
    let watch = installation.iter().find(|o| o.kind() == "Deployment" && o.name() == "kube-devops-watch").unwrap();
    operator.delete(&ObjectRef::of(watch)).await.unwrap();
    let deployments: Api<k8s_openapi::api::apps::v1::Deployment> =
        Api::namespaced(cluster.client().await, "kube-devops");
    assert!(deployments.get_opt("kube-devops-watch").await.unwrap().is_none());
    operator.delete(&ObjectRef::of(watch)).await.expect("deleting what is gone is done");
}

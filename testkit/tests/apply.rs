//! Server-side apply where it is stricter than other writes: an applied configuration with a
//! field the type does not declare is refused whatever `fieldValidation` says.

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams};
use serde_json::json;
use std::path::Path;
use testkit::harness::TestCluster;

fn refused_with(result: Result<impl std::fmt::Debug, kube::Error>, message: &str) {
    match result {
        Err(kube::Error::Api(e)) => {
            assert_eq!(e.code, 500, "{}", e.message);
            assert!(e.message.contains(message), "{}", e.message);
        }
        other => panic!("expected the apply to be refused with {message:?}: {other:?}"),
    }
}

#[tokio::test]
async fn an_apply_with_an_undeclared_field_is_refused_whatever_field_validation_says() {
    let cluster = TestCluster::stand_in();
    let cms: Api<ConfigMap> = Api::namespaced(cluster.client().await, "default");
    let config =
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1"}, "extra": 1});
    let mut ignore = PatchParams::apply("me");
    ignore.field_validation = Some(kube::api::ValidationDirective::Ignore);
    refused_with(
        cms.patch("c", &ignore, &Patch::Apply(&config)).await,
        "failed to create typed patch object (default/c; /v1, Kind=ConfigMap): .extra: field not declared in schema",
    );
    // The same body through a create is let in without the field (warned, not refused).
    let created =
        cms.create(&PostParams::default(), &serde_json::from_value(json!({"metadata": {"name": "c"}})).unwrap()).await;
    assert!(created.is_ok());
}

#[tokio::test]
async fn a_status_apply_with_a_field_the_crd_lacks_is_refused_not_pruned() {
    let cluster = TestCluster::stand_in();
    let crd =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../crds/kubedevopsinstalls.yaml")).unwrap();
    let out = cluster.kubectl_as(cluster.kubeconfig(), &["apply", "-f", "-"], Some(&crd));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let gvk = GroupVersionKind::gvk("devops.stochastic.io", "v1alpha1", "KubeDevopsInstall");
    let installs: Api<DynamicObject> =
        Api::all_with(cluster.client().await, &ApiResource::from_gvk_with_plural(&gvk, "kubedevopsinstalls"));
    let install = json!({"apiVersion": "devops.stochastic.io/v1alpha1", "kind": "KubeDevopsInstall", "metadata": {"name": "default"}, "spec": {}});
    installs.patch("default", &PatchParams::apply("me"), &Patch::Apply(&install)).await.unwrap();
    let mut with_spec_typo = install.clone();
    with_spec_typo["spec"]["replica"] = json!(3);
    refused_with(
        installs.patch("default", &PatchParams::apply("me"), &Patch::Apply(&with_spec_typo)).await,
        ".spec.replica: field not declared in schema",
    );
    let status = json!({"apiVersion": "devops.stochastic.io/v1alpha1", "kind": "KubeDevopsInstall", "metadata": {"name": "default"},
        "status": {"observedGeneration": 1, "rolloutPhase": "Done"}});
    refused_with(
        installs.patch_status("default", &PatchParams::apply("me"), &Patch::Apply(&status)).await,
        ".status.rolloutPhase: field not declared in schema",
    );
    // A merge patch of the same status is pruned with a warning, as the real server does.
    let merged = installs.patch_status("default", &PatchParams::default(), &Patch::Merge(&status)).await.unwrap();
    assert_eq!(merged.data["status"]["observedGeneration"], 1);
    assert!(merged.data["status"].get("rolloutPhase").is_none());
}

#[tokio::test]
async fn kubectl_apply_server_side_takes_over_from_a_client_side_apply() {
    let cluster = TestCluster::stand_in();
    let deployment = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: 'nginx:1.27'}]}\n";
    let apply = |args: &[&str], yaml: &str| cluster.kubectl_as(cluster.kubeconfig(), args, Some(yaml));
    let out = apply(&["apply", "-f", "-"], deployment);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // kubectl migrates the client-side owner's fields to itself, then applies again.
    let out = apply(&["apply", "--server-side", "-f", "-"], deployment);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && stderr.is_empty(), "{stderr}");
    let out = cluster.kubectl(&["get", "deployment", "web", "-o", "json", "--show-managed-fields"]);
    let object: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(object["spec"]["template"]["spec"]["containers"][0]["image"], "nginx:1.27");
    let managers: Vec<&str> =
        object["metadata"]["managedFields"].as_array().unwrap().iter().filter_map(|m| m["manager"].as_str()).collect();
    assert!(managers.contains(&"kubectl") && !managers.contains(&"kubectl-client-side-apply"), "{managers:?}");
    // From now on the server-side apply owns the fields: a new image rolls out.
    let out = apply(&["apply", "--server-side", "-f", "-"], &deployment.replace("nginx:1.27", "nginx:1.28"));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let image =
        cluster.kubectl(&["get", "deployment", "web", "-o", "jsonpath={.spec.template.spec.containers[0].image}"]);
    assert_eq!(String::from_utf8_lossy(&image.stdout), "nginx:1.28");
}

#[tokio::test]
async fn a_crd_that_preserves_unknown_fields_takes_any_applied_field() {
    let cluster = TestCluster::stand_in();
    let crd = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "things.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced", "names": {"plural": "things", "kind": "Thing"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]}});
    let out = cluster.kubectl_as(cluster.kubeconfig(), &["apply", "-f", "-"], Some(&crd.to_string()));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let ar = ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("example.com", "v1", "Thing"), "things");
    let things: Api<DynamicObject> = Api::namespaced_with(cluster.client().await, "default", &ar);
    let thing = json!({"apiVersion": "example.com/v1", "kind": "Thing", "metadata": {"name": "t"}, "spec": {"anything": [1, 2]}});
    let applied = things.patch("t", &PatchParams::apply("me"), &Patch::Apply(&thing)).await.unwrap();
    assert_eq!(applied.data["spec"]["anything"], json!([1, 2]));
}

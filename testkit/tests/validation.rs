//! Custom resource validation on update, as the real server does it: transition rules see the
//! old object, and values an update leaves unchanged are not held against it (ratcheting).

use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use testkit::harness::TestCluster;

fn crd(max_size: i64) -> String {
    json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
            "versions": [{"name": "v1", "served": true, "storage": true, "schema": {"openAPIV3Schema": {
                "type": "object", "properties": {"spec": {"type": "object",
                    "x-kubernetes-validations": [{"rule": "self.owner == oldSelf.owner", "message": "owner is immutable"}],
                    "properties": {"size": {"type": "integer", "maximum": max_size}, "owner": {"type": "string"},
                        "note": {"type": "string"}}}}}}}]}})
    .to_string()
}

fn rejected(result: Result<DynamicObject, kube::Error>) -> String {
    match result {
        Err(kube::Error::Api(e)) => {
            assert_eq!(e.code, 422, "{}", e.message);
            e.message
        }
        other => panic!("expected 422: {other:?}"),
    }
}

#[tokio::test]
async fn an_update_keeps_a_value_a_stricter_crd_no_longer_allows_and_transition_rules_see_the_old_object() {
    let cluster = TestCluster::stand_in();
    let apply_crd = |max: i64| {
        let out = cluster.kubectl_as(cluster.kubeconfig(), &["apply", "-f", "-"], Some(&crd(max)));
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    };
    apply_crd(100);
    let ar = ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("example.com", "v1", "Widget"), "widgets");
    let widgets: Api<DynamicObject> = Api::namespaced_with(cluster.client().await, "default", &ar);
    let widget: DynamicObject = serde_json::from_value(json!({"apiVersion": "example.com/v1", "kind": "Widget",
        "metadata": {"name": "w"}, "spec": {"size": 50, "owner": "ops"}}))
    .unwrap();
    widgets.create(&PostParams::default(), &widget).await.unwrap();
    apply_crd(10);
    let patch = |spec: Value| Patch::Merge(json!({"spec": spec}));
    // The size (50) is now too big, but this update does not touch it.
    let noted = widgets.patch("w", &PatchParams::default(), &patch(json!({"note": "hello"}))).await.unwrap();
    assert_eq!((noted.data["spec"]["size"].as_i64(), noted.data["spec"]["note"].as_str()), (Some(50), Some("hello")));
    let message = rejected(widgets.patch("w", &PatchParams::default(), &patch(json!({"size": 60}))).await);
    assert!(message.contains("spec.size"), "{message}");
    widgets.patch("w", &PatchParams::default(), &patch(json!({"size": 5}))).await.unwrap();
    let message = rejected(widgets.patch("w", &PatchParams::default(), &patch(json!({"owner": "someone"}))).await);
    assert!(message.contains("owner is immutable"), "{message}");
}

#[tokio::test]
async fn probes_need_one_handler_and_requests_fit_their_limits() {
    use k8s_openapi::api::apps::v1::Deployment;
    let cluster = TestCluster::stand_in();
    let deployments: Api<Deployment> = Api::namespaced(cluster.client().await, "default");
    let with = |container: Value| -> Deployment {
        let mut c = json!({"name": "app", "image": "app:1"});
        c.as_object_mut().unwrap().extend(container.as_object().unwrap().clone());
        serde_json::from_value(
            json!({"metadata": {"name": "web"}, "spec": {"selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [c]}}}}),
        )
        .unwrap()
    };
    let create = |d: Deployment| {
        let deployments = deployments.clone();
        async move { deployments.create(&PostParams::default(), &d).await }
    };
    let message = |r: Result<Deployment, kube::Error>| match r {
        Err(kube::Error::Api(e)) => {
            assert_eq!(e.code, 422, "{}", e.message);
            e.message
        }
        other => panic!("expected 422: {other:?}"),
    };
    let m = message(create(with(json!({"readinessProbe": {"periodSeconds": 10}}))).await);
    assert!(
        m.contains("spec.template.spec.containers[0].readinessProbe: Required value: must specify a handler type"),
        "{m}"
    );
    let two = json!({"livenessProbe": {"tcpSocket": {"port": 80}, "httpGet": {"path": "/", "port": 80}}});
    let m = message(create(with(two)).await);
    assert!(m.contains("may not specify more than 1 handler type"), "{m}");
    let over = json!({"resources": {"requests": {"memory": "512Mi", "cpu": "100m"}, "limits": {"memory": "256Mi", "cpu": "0.5"}}});
    let m = message(create(with(over)).await);
    assert!(m.contains("\"512Mi\": must be less than or equal to memory limit of 256Mi"), "{m}");
    assert!(!m.contains("cpu"), "100m is less than 0.5: {m}");
    let fine = json!({"readinessProbe": {"tcpSocket": {"port": 80}},
        "resources": {"requests": {"memory": "1Gi", "cpu": "500m"}, "limits": {"memory": "1024Mi", "cpu": "1"}}});
    create(with(fine)).await.unwrap();
}

//! Driving the stand-in with kubectl 1.37 as people do: generators, scale, paging, describe,
//! jsonpath.

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, PostParams};
use serde_json::json;
use testkit::harness::TestCluster;

fn stdout(out: &std::process::Output) -> String {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn kubectl_describe_shows_events_recorded_through_events_k8s_io() {
    let cluster = TestCluster::stand_in();
    let client = cluster.client().await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let cm = cms
        .create(&PostParams::default(), &serde_json::from_value(json!({"metadata": {"name": "settings"}})).unwrap())
        .await
        .unwrap();
    let events: Api<Event> = Api::namespaced(client, "default");
    let event = json!({"metadata": {"name": "settings.1"}, "eventTime": "2026-01-01T00:00:00.000000Z",
        "regarding": {"apiVersion": "v1", "kind": "ConfigMap", "name": "settings", "namespace": "default", "uid": cm.metadata.uid},
        "reason": "Rotated", "note": "the settings were rotated", "type": "Normal", "action": "Rotate",
        "reportingController": "example.com/rotator", "reportingInstance": "rotator-1"});
    events.create(&PostParams::default(), &serde_json::from_value(event).unwrap()).await.unwrap();
    let described = stdout(&cluster.kubectl(&["describe", "configmap", "settings"]));
    assert!(described.contains("Rotated") && described.contains("the settings were rotated"), "{described}");
    // The same Event through the core API, with the core field names.
    let core = stdout(&cluster.kubectl(&[
        "get",
        "events.v1.",
        "settings.1",
        "-o",
        "jsonpath={.involvedObject.name} {.message}",
    ]));
    assert_eq!(core, "settings the settings were rotated");
}

#[tokio::test]
async fn jsonpath_of_a_missing_field_prints_nothing() {
    let cluster = TestCluster::stand_in();
    let deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "plain"},
        "spec": {"selector": {"matchLabels": {"app": "plain"}}, "template": {"metadata": {"labels": {"app": "plain"}},
            "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}}});
    let out = cluster.kubectl_as(cluster.kubeconfig(), &["apply", "-f", "-"], Some(&deployment.to_string()));
    stdout(&out);
    let probe = stdout(&cluster.kubectl(&[
        "get",
        "deploy",
        "plain",
        "-o",
        "jsonpath={.spec.template.spec.containers[0].livenessProbe}",
    ]));
    assert_eq!(probe, "", "no explicit null for a container without a probe");
    let raw = stdout(&cluster.kubectl(&["get", "deploy", "plain", "-o", "json"]));
    assert!(!raw.contains(": null"), "{raw}");
}

#[tokio::test]
async fn kubectl_get_pages_through_a_table_of_more_than_one_chunk() {
    let cluster = TestCluster::stand_in();
    {
        let state = cluster.state();
        let mut c = state.cluster.lock().unwrap();
        let rt = c.registry.find("", "v1", "configmaps").unwrap().clone();
        for i in 0..1_234 {
            let object = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": format!("cm-{i:05}"), "namespace": "default"}});
            let pending = c.prepare_create(&rt, "default", object, &Default::default()).unwrap();
            c.commit(pending).unwrap();
        }
    }
    let table = stdout(&cluster.kubectl(&["get", "configmaps", "-A", "--no-headers"]));
    assert_eq!(table.lines().filter(|l| l.contains("cm-")).count(), 1_234);
}

#[tokio::test]
async fn kubectl_scale_changes_the_replicas_through_the_scale_subresource() {
    let cluster = TestCluster::stand_in();
    let deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}}, "template": {"metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}}});
    stdout(&cluster.kubectl_as(cluster.kubeconfig(), &["apply", "-f", "-"], Some(&deployment.to_string())));
    let scaled = stdout(&cluster.kubectl(&["scale", "deployment", "web", "--replicas=3"]));
    assert_eq!(scaled.trim(), "deployment.apps/web scaled");
    let out = stdout(&cluster.kubectl(&["rollout", "status", "deployment/web", "--timeout=30s"]));
    assert!(out.contains("successfully rolled out"), "{out}");
    let ready = stdout(&cluster.kubectl(&["get", "deployment", "web", "-o", "jsonpath={.status.readyReplicas}"]));
    assert_eq!(ready, "3");
    let scale = stdout(&cluster.kubectl(&["get", "--raw", "/apis/apps/v1/namespaces/default/deployments/web/scale"]));
    let scale: serde_json::Value = serde_json::from_str(&scale).unwrap();
    assert_eq!((scale["spec"]["replicas"].as_i64(), scale["status"]["selector"].as_str()), (Some(3), Some("app=web")));
}

#[tokio::test]
async fn kubectl_create_generators_work_though_they_send_protobuf() {
    let cluster = TestCluster::stand_in();
    let creates: &[&[&str]] = &[
        &["create", "namespace", "shop"],
        &["create", "configmap", "settings", "-n", "shop", "--from-literal=mode=fast"],
        &["create", "secret", "generic", "creds", "-n", "shop", "--from-literal=password=hunter2"],
        &["create", "serviceaccount", "robot", "-n", "shop"],
        &["create", "deployment", "web", "-n", "shop", "--image=nginx:1.27", "--replicas=2", "--port=80"],
        &["create", "service", "clusterip", "web", "-n", "shop", "--tcp=80:8080"],
        &["create", "job", "once", "-n", "shop", "--image=busybox", "--", "echo", "hi"],
        &["create", "cronjob", "nightly", "-n", "shop", "--image=busybox", "--schedule=0 3 * * *"],
        &["create", "role", "reader", "-n", "shop", "--verb=get,list", "--resource=pods"],
        &["create", "rolebinding", "robot-reads", "-n", "shop", "--role=reader", "--serviceaccount=shop:robot"],
        &["create", "clusterrole", "ns-reader", "--verb=get", "--resource=namespaces"],
        &["create", "clusterrolebinding", "robot-ns", "--clusterrole=ns-reader", "--serviceaccount=shop:robot"],
        &["create", "poddisruptionbudget", "web", "-n", "shop", "--selector=app=web", "--min-available=1"],
    ];
    for args in creates {
        let out = cluster.kubectl(args);
        assert!(out.status.success(), "kubectl {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
    }
    let get = |args: &[&str]| stdout(&cluster.kubectl(args));
    assert_eq!(get(&["get", "configmap", "settings", "-n", "shop", "-o", "jsonpath={.data.mode}"]), "fast");
    assert_eq!(get(&["get", "secret", "creds", "-n", "shop", "-o", "jsonpath={.data.password}"]), "aHVudGVyMg==");
    assert_eq!(get(&["get", "service", "web", "-n", "shop", "-o", "jsonpath={.spec.ports[0].targetPort}"]), "8080");
    assert_eq!(get(&["get", "cronjob", "nightly", "-n", "shop", "-o", "jsonpath={.spec.schedule}"]), "0 3 * * *");
    assert_eq!(
        get(&["get", "rolebinding", "robot-reads", "-n", "shop", "-o", "jsonpath={.subjects[0].name}"]),
        "robot"
    );
    let out = get(&["rollout", "status", "deployment/web", "-n", "shop", "--timeout=30s"]);
    assert!(out.contains("successfully rolled out"), "{out}");
}

//! Unit tests of strategic merge patch.

use serde_json::json;

use super::*;
use crate::patch::builtin_keys::BuiltinListKeys;

fn smp(kind: &str, original: Value, patch: Value) -> Value {
    strategic_merge(&original, &patch, &BuiltinListKeys::new(kind)).unwrap()
}

fn smp_err(kind: &str, original: Value, patch: Value) -> PatchError {
    strategic_merge(&original, &patch, &BuiltinListKeys::new(kind)).unwrap_err()
}

fn names(list: &Value) -> Vec<&str> {
    list.as_array().unwrap().iter().map(|i| i["name"].as_str().unwrap()).collect()
}

fn deployment(containers: Value) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"app": "web", "tier": "front"}},
        "spec": {"replicas": 1, "template": {"spec": {"containers": containers}}}
    })
}

#[test]
fn maps_merge_recursively_and_null_deletes() {
    let original = deployment(json!([{"name": "web", "image": "nginx:1"}]));
    let out = smp(
        "Deployment",
        original.clone(),
        json!({"metadata": {"labels": {"tier": null, "env": "prod"}, "annotations": {"a": "b"}}, "spec": {"replicas": 3}}),
    );
    assert_eq!(out["metadata"]["labels"], json!({"app": "web", "env": "prod"}));
    assert_eq!(out["metadata"]["annotations"], json!({"a": "b"}));
    assert_eq!(out["spec"]["replicas"], 3);
    assert_eq!(out["spec"]["template"], original["spec"]["template"]);
    // Deleting an absent field is a no-op; deleting a map removes it.
    let out = smp("Deployment", original, json!({"spec": {"paused": null}, "metadata": {"labels": null}}));
    assert!(out["metadata"].get("labels").is_none());
    assert!(out["spec"].get("paused").is_none());
}

#[test]
fn empty_patch_is_identity_and_inputs_are_untouched() {
    let original = deployment(json!([{"name": "web", "image": "nginx:1"}]));
    let before = original.clone();
    assert_eq!(smp("Deployment", original.clone(), json!({})), original);
    let patch = json!({"spec": {"replicas": null}});
    let _ = strategic_merge(&original, &patch, &BuiltinListKeys::new("Deployment")).unwrap();
    assert_eq!(original, before);
}

#[test]
fn containers_merge_by_name() {
    let original = deployment(json!([
        {"name": "web", "image": "nginx:1", "ports": [{"containerPort": 80}]},
        {"name": "sidecar", "image": "envoy:1"}
    ]));
    let out = smp(
        "Deployment",
        original,
        json!({"spec": {"template": {"spec": {"containers": [
            {"name": "web", "image": "nginx:2"},
            {"name": "sidecar", "image": "envoy:2", "args": ["-v"]},
            {"name": "logger", "image": "fluentbit"}
        ]}}}}),
    );
    let containers = &out["spec"]["template"]["spec"]["containers"];
    assert_eq!(names(containers), ["web", "sidecar", "logger"]);
    assert_eq!(containers[0], json!({"name": "web", "image": "nginx:2", "ports": [{"containerPort": 80}]}));
    assert_eq!(containers[1], json!({"name": "sidecar", "image": "envoy:2", "args": ["-v"]}));
    assert_eq!(containers[2], json!({"name": "logger", "image": "fluentbit"}));
}

#[test]
fn new_items_go_where_the_patch_puts_them() {
    let original = deployment(json!([{"name": "a"}, {"name": "b"}, {"name": "c"}]));
    let containers = |patch: Value| {
        let out = smp("Deployment", original.clone(), json!({"spec": {"template": {"spec": {"containers": patch}}}}));
        names(&out["spec"]["template"]["spec"]["containers"]).iter().map(|s| s.to_string()).collect::<Vec<_>>()
    };
    // Only a new item: it goes first (the real server's order without $setElementOrder).
    assert_eq!(containers(json!([{"name": "d"}])), ["d", "a", "b", "c"]);
    // A live item named before the new one anchors it.
    assert_eq!(containers(json!([{"name": "c"}, {"name": "d"}])), ["a", "b", "c", "d"]);
    assert_eq!(containers(json!([{"name": "b"}, {"name": "d"}])), ["a", "b", "d", "c"]);
    // Updating live items keeps the live order.
    assert_eq!(containers(json!([{"name": "b", "image": "x"}])), ["a", "b", "c"]);
}

#[test]
fn delete_list_item_by_key() {
    let original = deployment(json!([{"name": "web"}, {"name": "sidecar"}]));
    let out = smp(
        "Deployment",
        original,
        json!({"spec": {"template": {"spec": {"containers": [{"name": "sidecar", "$patch": "delete"}, {"name": "gone", "$patch": "delete"}]}}}}),
    );
    assert_eq!(names(&out["spec"]["template"]["spec"]["containers"]), ["web"]);
}

#[test]
fn replace_list_with_directive_item() {
    let original = deployment(json!([{"name": "web", "image": "a"}, {"name": "sidecar"}]));
    let out = smp(
        "Deployment",
        original,
        json!({"spec": {"template": {"spec": {"containers": [{"$patch": "replace"}, {"name": "only", "image": "b", "tty": null}]}}}}),
    );
    assert_eq!(out["spec"]["template"]["spec"]["containers"], json!([{"name": "only", "image": "b"}]));
}

#[test]
fn replace_map_with_directive() {
    let original = deployment(json!([{"name": "web"}]));
    let out =
        smp("Deployment", original, json!({"metadata": {"labels": {"$patch": "replace", "new": "1", "x": null}}}));
    assert_eq!(out["metadata"]["labels"], json!({"new": "1"}));
    assert_eq!(out["metadata"]["name"], "web");
}

#[test]
fn replace_list_item_map_with_directive_replaces_whole_list() {
    // `$patch` on a list item makes the list a special list: the real server replaces the
    // list by the items without a directive.
    let original = deployment(json!([{"name": "web", "image": "a"}, {"name": "sidecar"}]));
    let out = smp(
        "Deployment",
        original,
        json!({"spec": {"template": {"spec": {"containers": [{"name": "web", "$patch": "replace"}, {"name": "x"}]}}}}),
    );
    assert_eq!(names(&out["spec"]["template"]["spec"]["containers"]), ["x"]);
}

#[test]
fn replace_directive_inside_list_item_map() {
    // `$patch: replace` in a nested map of a list item replaces only that map.
    let original =
        deployment(json!([{"name": "web", "resources": {"limits": {"cpu": "1"}, "requests": {"cpu": "1"}}}]));
    let out = smp(
        "Deployment",
        original,
        json!({"spec": {"template": {"spec": {"containers": [{"name": "web", "resources": {"$patch": "replace", "limits": {"memory": "1Gi"}}}]}}}}),
    );
    assert_eq!(out["spec"]["template"]["spec"]["containers"][0]["resources"], json!({"limits": {"memory": "1Gi"}}));
}

#[test]
fn delete_map_with_directive() {
    let original = deployment(json!([{"name": "web"}]));
    let out = smp("Deployment", original, json!({"metadata": {"labels": {"$patch": "delete"}}}));
    assert_eq!(out["metadata"]["labels"], json!({}));
}

#[test]
fn delete_from_primitive_list_and_set_union() {
    let original = json!({"metadata": {"name": "x", "finalizers": ["a", "b", "c"]}});
    let out = smp(
        "ConfigMap",
        original.clone(),
        json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["b", "zz"], "finalizers": ["d"]}}),
    );
    assert_eq!(out["metadata"]["finalizers"], json!(["d", "a", "c"]));
    // Set union with values the live list already has: no duplicates, live order kept.
    let out = smp("ConfigMap", original.clone(), json!({"metadata": {"finalizers": ["c", "a", "e"]}}));
    assert_eq!(out["metadata"]["finalizers"], json!(["b", "c", "a", "e"]));
    let out = smp(
        "ConfigMap",
        original,
        json!({"metadata": {"$setElementOrder/finalizers": ["c", "a", "b", "e"], "finalizers": ["e"]}}),
    );
    assert_eq!(out["metadata"]["finalizers"], json!(["c", "a", "b", "e"]));
}

#[test]
fn atomic_lists_are_replaced() {
    let original = json!({"spec": {"tolerations": [{"key": "a"}, {"key": "b"}], "containers": [{"name": "web", "args": ["1", "2"]}]}});
    let out = smp(
        "Pod",
        original,
        json!({"spec": {"tolerations": [{"key": "c"}], "containers": [{"name": "web", "args": ["3"]}]}}),
    );
    assert_eq!(out["spec"]["tolerations"], json!([{"key": "c"}]));
    assert_eq!(out["spec"]["containers"][0]["args"], json!(["3"]));
    // ClusterRole rules are atomic too.
    let role = json!({"rules": [{"verbs": ["get"], "resources": ["pods"]}]});
    let out = smp("ClusterRole", role, json!({"rules": [{"verbs": ["list"], "resources": ["pods"]}]}));
    assert_eq!(out["rules"], json!([{"verbs": ["list"], "resources": ["pods"]}]));
}

#[test]
fn retain_keys_clears_other_fields() {
    let original = json!({"spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}}});
    let out = smp(
        "Deployment",
        original.clone(),
        json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate", "rollingUpdate": null}}}),
    );
    assert_eq!(out["spec"]["strategy"], json!({"type": "Recreate"}));
    let err = smp_err(
        "Deployment",
        original,
        json!({"spec": {"strategy": {"$retainKeys": ["type"], "rollingUpdate": {"maxSurge": 2}}}}),
    );
    assert!(err.to_string().contains("not in $retainKeys"), "{err}");
}

#[test]
fn set_element_order_reorders_and_interleaves_server_only_items() {
    let original = json!({"spec": {"containers": [{"name": "a", "env": [
        {"name": "A", "value": "1"}, {"name": "B", "value": "2"}, {"name": "C", "value": "3"}
    ]}]}});
    // kubectl-style two-way patch: C moved first, D added after B.
    let out = smp(
        "Pod",
        original.clone(),
        json!({"spec": {"containers": [{"name": "a",
            "$setElementOrder/env": [{"name": "C"}, {"name": "A"}, {"name": "B"}, {"name": "D"}],
            "env": [{"name": "D", "value": "4"}]
        }]}}),
    );
    let env = &out["spec"]["containers"][0]["env"];
    assert_eq!(names(env), ["C", "A", "B", "D"]);
    assert_eq!(env[3], json!({"name": "D", "value": "4"}));
    // An item only on the server (B, not in the order list) is placed by its live position,
    // best effort: before the first named item that comes after it on the server.
    let out = smp(
        "Pod",
        original,
        json!({"spec": {"containers": [{"name": "a", "$setElementOrder/env": [{"name": "C"}, {"name": "A"}]}]}}),
    );
    assert_eq!(names(&out["spec"]["containers"][0]["env"]), ["B", "C", "A"]);
}

#[test]
fn set_element_order_at_top_level_and_on_container_list() {
    let original = deployment(json!([{"name": "a"}, {"name": "b"}]));
    let out = smp(
        "Deployment",
        original,
        json!({"spec": {"template": {"spec": {
            "$setElementOrder/containers": [{"name": "b"}, {"name": "c"}, {"name": "a"}],
            "containers": [{"name": "c", "image": "c"}]
        }}}}),
    );
    assert_eq!(names(&out["spec"]["template"]["spec"]["containers"]), ["b", "c", "a"]);
    assert!(out["spec"]["template"]["spec"].get("$setElementOrder/containers").is_none());
}

#[test]
fn set_element_order_must_agree_with_patch_list() {
    let original = deployment(json!([{"name": "a"}, {"name": "b"}]));
    let err = smp_err(
        "Deployment",
        original,
        json!({"spec": {"template": {"spec": {
            "$setElementOrder/containers": [{"name": "a"}, {"name": "b"}],
            "containers": [{"name": "b", "image": "x"}, {"name": "a", "image": "y"}]
        }}}}),
    );
    assert!(matches!(err, PatchError::Malformed { .. }), "{err}");
    assert!(err.to_string().contains("$setElementOrder"), "{err}");
}

#[test]
fn ports_merge_by_container_port_and_service_ports_by_port() {
    let pod = json!({"spec": {"containers": [{"name": "web", "ports": [
        {"containerPort": 80, "name": "http"}, {"containerPort": 443, "name": "https"}
    ]}]}});
    let out = smp(
        "Pod",
        pod,
        json!({"spec": {"containers": [{"name": "web", "ports": [{"containerPort": 80, "name": "web"}, {"containerPort": 9090}]}]}}),
    );
    assert_eq!(
        out["spec"]["containers"][0]["ports"],
        json!([{"containerPort": 80, "name": "web"}, {"containerPort": 9090}, {"containerPort": 443, "name": "https"}])
    );
    let svc = json!({"spec": {"ports": [{"port": 80, "targetPort": 8080}], "selector": {"app": "a"}}});
    let out = smp("Service", svc, json!({"spec": {"ports": [{"port": 80, "targetPort": 9090}, {"port": 81}]}}));
    assert_eq!(out["spec"]["ports"], json!([{"port": 80, "targetPort": 9090}, {"port": 81}]));
}

#[test]
fn conditions_merge_by_type() {
    let original = json!({"status": {"conditions": [
        {"type": "Available", "status": "False"}, {"type": "Progressing", "status": "True"}
    ]}});
    let out = smp("Deployment", original, json!({"status": {"conditions": [{"type": "Available", "status": "True"}]}}));
    assert_eq!(
        out["status"]["conditions"],
        json!([{"type": "Available", "status": "True"}, {"type": "Progressing", "status": "True"}])
    );
}

#[test]
fn new_fields_are_cleaned_of_nulls_and_directives() {
    let original = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "a"}]}});
    let out = smp(
        "Pod",
        original,
        json!({"spec": {
            "securityContext": {"runAsUser": 1, "fsGroup": null},
            "containers": [{"name": "b", "image": null, "$setElementOrder/env": [{"name": "X"}], "env": [{"name": "X", "value": "1"}]}]
        }}),
    );
    assert_eq!(out["spec"]["securityContext"], json!({"runAsUser": 1}));
    assert_eq!(out["spec"]["containers"][0], json!({"name": "b", "env": [{"name": "X", "value": "1"}]}));
}

#[test]
fn owner_references_merge_by_uid() {
    let original = json!({"metadata": {"ownerReferences": [{"uid": "1", "name": "a"}]}});
    let out = smp("ConfigMap", original, json!({"metadata": {"ownerReferences": [{"uid": "2", "name": "b"}]}}));
    assert_eq!(out["metadata"]["ownerReferences"], json!([{"uid": "2", "name": "b"}, {"uid": "1", "name": "a"}]));
}

#[test]
fn type_changes_replace_the_value() {
    let original = json!({"data": {"a": "1"}, "spec": {"x": [1]}});
    let out = smp("ConfigMap", original, json!({"data": "flat", "spec": {"x": {"y": 1}}}));
    assert_eq!(out, json!({"data": "flat", "spec": {"x": {"y": 1}}}));
}

#[test]
fn errors_for_malformed_patches() {
    let original = deployment(json!([{"name": "web"}]));
    let err = smp_err(
        "Deployment",
        original.clone(),
        json!({"spec": {"template": {"spec": {"containers": [{"image": "x"}]}}}}),
    );
    assert_eq!(
        err,
        PatchError::MissingMergeKey {
            path: "spec.template.spec.containers".into(),
            key: "name".into(),
            item: r#"{"image":"x"}"#.into()
        }
    );
    assert!(err.to_string().contains("does not contain declared merge key: name"));

    let err = smp_err(
        "Deployment",
        original.clone(),
        json!({"spec": {"template": {"spec": {"containers": [{"$patch": "delete"}]}}}}),
    );
    assert!(matches!(err, PatchError::MissingMergeKey { .. }), "{err}");

    let err = smp_err("Deployment", original.clone(), json!({"spec": {"$patch": "explode"}}));
    assert_eq!(err, PatchError::InvalidDirective { path: "spec".into(), directive: "\"explode\"".into() });

    let err = smp_err("Deployment", original.clone(), json!({"spec": {"template": {"spec": {"containers": ["web"]}}}}));
    assert!(matches!(err, PatchError::Malformed { .. }), "{err}");

    let err = smp_err("Deployment", original.clone(), json!({"metadata": {"finalizers": [{"a": 1}]}}));
    assert!(matches!(err, PatchError::Malformed { .. }), "{err}");

    let err =
        smp_err("Deployment", original.clone(), json!({"metadata": {"$deleteFromPrimitiveList/finalizers": "a"}}));
    assert!(matches!(err, PatchError::Malformed { .. }), "{err}");

    let err = smp_err(
        "Deployment",
        original.clone(),
        json!({"spec": {"template": {"spec": {"$setElementOrder/containers": [{"image": "x"}]}}}}),
    );
    assert!(matches!(err, PatchError::MissingMergeKey { .. }), "{err}");

    let err = smp_err("Deployment", original.clone(), json!([1, 2]));
    assert_eq!(err, PatchError::NotAnObject { what: "patch", got: "a list" });
    assert_eq!(err.to_string(), "patch must be a JSON object, got a list");

    let err = smp_err("Deployment", original, json!({"spec": {"strategy": {"$retainKeys": "type"}}}));
    assert!(err.to_string().contains("$retainKeys must be a list"), "{err}");
}

/// A custom resource's schema keys work through the same trait.
struct SchemaKeys;
impl ListKeys for SchemaKeys {
    fn keys(&self, path: &[&str]) -> Option<Vec<String>> {
        (path == ["spec", "endpoints"]).then(|| vec!["host".to_owned(), "port".to_owned()])
    }
    fn is_set(&self, path: &[&str]) -> bool {
        path == ["spec", "tags"]
    }
}

#[test]
fn works_with_any_list_keys() {
    let original = json!({"spec": {"endpoints": [{"host": "a", "port": 1}], "tags": ["x"], "other": [1]}});
    let patch = json!({"spec": {"endpoints": [{"host": "a", "port": 2}, {"host": "b"}], "tags": ["y"], "other": [2]}});
    let out = strategic_merge(&original, &patch, &SchemaKeys).unwrap();
    assert_eq!(out["spec"]["endpoints"], json!([{"host": "a", "port": 2}, {"host": "b"}]));
    assert_eq!(out["spec"]["tags"], json!(["y", "x"]));
    assert_eq!(out["spec"]["other"], json!([2]));
}

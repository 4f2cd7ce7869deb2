//! Unit tests of server-side apply and managedFields bookkeeping.

use serde_json::json;

use super::fields::{Pe, decode_set, encode_set};
use super::*;
use crate::patch::builtin_keys::BuiltinListKeys;

const T1: &str = "2025-01-01T00:00:01Z";
const T2: &str = "2025-01-01T00:00:02Z";
const T3: &str = "2025-01-01T00:00:03Z";
const T4: &str = "2025-01-01T00:00:04Z";

fn keys() -> BuiltinListKeys {
    BuiltinListKeys::new("Deployment")
}

fn deployment(replicas: Value, containers: Value) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": containers}}
        }
    })
}

fn web(image: &str) -> Value {
    json!([{"name": "web", "image": image, "ports": [{"containerPort": 80}]}])
}

/// A config that only touches some fields (like a second controller's).
fn partial(spec: Value) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "default"}, "spec": spec})
}

fn containers(spec: Value) -> Value {
    partial(json!({"template": {"spec": {"containers": spec}}}))
}

fn ok(live: Option<&Value>, config: &Value, manager: &str, now: &str) -> Value {
    apply(live, config, manager, false, &keys(), now).unwrap()
}

fn conflicts(live: &Value, config: &Value, manager: &str) -> Vec<(String, String)> {
    match apply(Some(live), config, manager, false, &keys(), T4) {
        Err(ApplyError::Conflict { conflicts }) => conflicts,
        other => panic!("expected a conflict, got {other:?}"),
    }
}

fn entry<'a>(obj: &'a Value, manager: &str, operation: &str) -> Option<&'a Value> {
    obj["metadata"]["managedFields"].as_array()?.iter().find(|e| e["manager"] == manager && e["operation"] == operation)
}

fn without_managed_fields(obj: &Value) -> Value {
    let mut obj = obj.clone();
    obj["metadata"].as_object_mut().unwrap().remove("managedFields");
    obj
}

fn owns(obj: &Value, manager: &str, path: &str) -> bool {
    owned_fields(obj, manager).iter().any(|p| p == path)
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter().map(|(m, p)| ((*m).to_owned(), (*p).to_owned())).collect()
}

#[test]
fn create_via_apply_records_fields_v1() {
    let config = deployment(json!(3), web("nginx:1"));
    let out = ok(None, &config, "op", T1);
    assert_eq!(without_managed_fields(&out), config);
    assert_eq!(
        out["metadata"]["managedFields"],
        json!([{
            "manager": "op",
            "operation": "Apply",
            "apiVersion": "apps/v1",
            "time": T1,
            "fieldsType": "FieldsV1",
            "fieldsV1": {
                "f:metadata": {"f:labels": {"f:app": {}}},
                "f:spec": {
                    "f:replicas": {},
                    "f:selector": {"f:matchLabels": {"f:app": {}}},
                    "f:template": {
                        "f:metadata": {"f:labels": {"f:app": {}}},
                        "f:spec": {"f:containers": {"k:{\"name\":\"web\"}": {
                            ".": {},
                            "f:image": {},
                            "f:name": {},
                            "f:ports": {"k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {".": {}, "f:containerPort": {}}}
                        }}}
                    }
                }
            }
        }])
    );
    assert!(owns(&out, "op", ".spec.template.spec.containers[name=\"web\"].image"));
    assert!(owns(&out, "op", ".spec.template.spec.containers[name=\"web\"].ports[containerPort=80,protocol=\"TCP\"]"));
}

#[test]
fn reapplying_the_same_config_is_byte_identical() {
    let config = deployment(json!(3), web("nginx:1"));
    let first = ok(None, &config, "op", T1);
    let second = ok(Some(&first), &config, "op", T2);
    assert_eq!(serde_json::to_string(&first).unwrap(), serde_json::to_string(&second).unwrap());
    assert_eq!(entry(&second, "op", "Apply").unwrap()["time"], T1);
    // Also when another manager changed something else in between.
    let mut edited = second.clone();
    edited["spec"]["paused"] = json!(true);
    record_update(Some(&second), &mut edited, "kubectl-edit", &keys(), T2);
    let third = ok(Some(&edited), &config, "op", T3);
    assert_eq!(serde_json::to_string(&third).unwrap(), serde_json::to_string(&edited).unwrap());
}

#[test]
fn changing_a_value_bumps_the_time() {
    let first = ok(None, &deployment(json!(3), web("nginx:1")), "op", T1);
    let second = ok(Some(&first), &deployment(json!(4), web("nginx:1")), "op", T2);
    assert_eq!(second["spec"]["replicas"], 4);
    assert_eq!(entry(&second, "op", "Apply").unwrap()["time"], T2);
    assert_eq!(entry(&second, "op", "Apply").unwrap()["fieldsV1"], entry(&first, "op", "Apply").unwrap()["fieldsV1"]);
}

#[test]
fn fields_dropped_from_the_config_are_removed() {
    let first = ok(None, &deployment(json!(3), web("nginx:1")), "op", T1);
    let mut config = deployment(json!(3), json!([{"name": "web", "image": "nginx:1"}]));
    config["spec"].as_object_mut().unwrap().remove("replicas");
    config["metadata"].as_object_mut().unwrap().remove("labels");
    let out = ok(Some(&first), &config, "op", T2);
    assert!(out["spec"].get("replicas").is_none());
    // The emptied labels map goes too; the name (not tracked) stays.
    assert!(out["metadata"].get("labels").is_none());
    assert_eq!(out["metadata"]["name"], "web");
    // The container keeps its name and image, loses its ports (and the emptied list).
    assert_eq!(out["spec"]["template"]["spec"]["containers"], json!([{"name": "web", "image": "nginx:1"}]));
    assert!(!owns(&out, "op", ".spec.replicas"));
    assert_eq!(entry(&out, "op", "Apply").unwrap()["time"], T2);
    // Dropping a whole container.
    let out = ok(Some(&out), &deployment(json!(1), json!([{"name": "other", "image": "x"}])), "op", T3);
    assert_eq!(out["spec"]["template"]["spec"]["containers"], json!([{"name": "other", "image": "x"}]));
}

#[test]
fn two_managers_share_a_field_with_the_same_value() {
    let live = ok(None, &deployment(json!(3), web("nginx:1")), "op", T1);
    let live = ok(Some(&live), &partial(json!({"replicas": 3})), "autoscaler", T2);
    assert!(owns(&live, "op", ".spec.replicas"));
    assert!(owns(&live, "autoscaler", ".spec.replicas"));
    assert_eq!(owned_fields(&live, "autoscaler"), [".spec.replicas"]);
    // op stops applying replicas: still owned by the autoscaler, so it stays.
    let mut config = deployment(json!(3), web("nginx:1"));
    config["spec"].as_object_mut().unwrap().remove("replicas");
    let live = ok(Some(&live), &config, "op", T3);
    assert_eq!(live["spec"]["replicas"], 3);
    assert!(!owns(&live, "op", ".spec.replicas"));
    // The last owner stops applying it: removed. (`spec: {}` would own the empty `.spec`.)
    let mut empty = partial(json!({}));
    empty.as_object_mut().unwrap().remove("spec");
    let live = ok(Some(&live), &empty, "autoscaler", T4);
    assert!(live["spec"].get("replicas").is_none());
    assert!(entry(&live, "autoscaler", "Apply").is_none());
    let owned_empty = ok(Some(&live), &partial(json!({})), "autoscaler", T4);
    assert_eq!(owned_fields(&owned_empty, "autoscaler"), [".spec"]);
}

#[test]
fn different_value_is_a_conflict() {
    let live = ok(None, &deployment(json!(3), web("nginx:1")), "op", T1);
    let err = apply(Some(&live), &partial(json!({"replicas": 5})), "autoscaler", false, &keys(), T2).unwrap_err();
    assert_eq!(err, ApplyError::Conflict { conflicts: pairs(&[("op", ".spec.replicas")]) });
    assert_eq!(err.to_string(), "Apply failed with 1 conflict: conflict with \"op\": .spec.replicas");
}

#[test]
fn filling_an_empty_object_another_manager_owns_is_no_conflict() {
    // `kubectl create` owns `resources: {}` (as the real server records it); setting fields
    // in it changes no field of kubectl's (structured-merge-diff: the object is a leaf only
    // while it is empty on both sides).
    let mut created = deployment(json!(1), web("nginx:1"));
    created["spec"]["template"]["spec"]["containers"][0]["resources"] = json!({});
    let live = ok(None, &created, "kubectl-create", T1);
    assert!(owns(&live, "kubectl-create", ".spec.template.spec.containers[name=\"web\"].resources"));
    let limits = containers(json!([{"name": "web", "resources": {"limits": {"cpu": "1"}}}]));
    let live = ok(Some(&live), &limits, "enforcer", T2);
    assert_eq!(live["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["cpu"], "1");
    assert!(owns(&live, "kubectl-create", ".spec.template.spec.containers[name=\"web\"].resources"), "kept");
    // Changing a value inside is a conflict with its owner as before.
    let other = containers(json!([{"name": "web", "resources": {"limits": {"cpu": "2"}}}]));
    assert_eq!(
        conflicts(&live, &other, "tuner"),
        pairs(&[("enforcer", ".spec.template.spec.containers[name=\"web\"].resources.limits.cpu")])
    );
}

#[test]
fn force_takes_ownership() {
    let live = ok(None, &deployment(json!(3), web("nginx:1")), "op", T1);
    let live = apply(Some(&live), &partial(json!({"replicas": 5})), "autoscaler", true, &keys(), T2).unwrap();
    assert_eq!(live["spec"]["replicas"], 5);
    assert!(owns(&live, "autoscaler", ".spec.replicas"));
    assert!(!owns(&live, "op", ".spec.replicas"));
    // op's entry lost a field but keeps its time.
    assert_eq!(entry(&live, "op", "Apply").unwrap()["time"], T1);
    // Now op conflicts with the autoscaler.
    let got = conflicts(&live, &deployment(json!(3), web("nginx:1")), "op");
    assert_eq!(got, pairs(&[("autoscaler", ".spec.replicas")]));
    // op re-applying without replicas does not remove the autoscaler's field.
    let mut config = deployment(json!(3), web("nginx:1"));
    config["spec"].as_object_mut().unwrap().remove("replicas");
    let live = ok(Some(&live), &config, "op", T3);
    assert_eq!(live["spec"]["replicas"], 5);
}

#[test]
fn containers_merge_by_name_between_managers() {
    let live = ok(None, &deployment(json!(1), web("nginx:1")), "op", T1);
    let sidecar = containers(json!([{"name": "sidecar", "image": "envoy:1"}]));
    let live = ok(Some(&live), &sidecar, "injector", T2);
    let names: Vec<&str> = live["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["web", "sidecar"]);
    assert_eq!(
        owned_fields(&live, "injector"),
        [
            ".spec.template.spec.containers[name=\"sidecar\"]",
            ".spec.template.spec.containers[name=\"sidecar\"].image",
            ".spec.template.spec.containers[name=\"sidecar\"].name",
        ]
    );
    assert!(!owns(&live, "op", ".spec.template.spec.containers[name=\"sidecar\"]"));
    // Each re-applies its own container: nothing changes.
    let again = ok(Some(&live), &deployment(json!(1), web("nginx:1")), "op", T3);
    assert_eq!(again, live);
    let again = ok(Some(&again), &sidecar, "injector", T3);
    assert_eq!(again, live);
    // op updates its container without conflicts.
    let live = ok(Some(&live), &deployment(json!(1), web("nginx:2")), "op", T3);
    assert_eq!(live["spec"]["template"]["spec"]["containers"][0]["image"], "nginx:2");
    assert_eq!(live["spec"]["template"]["spec"]["containers"][1]["image"], "envoy:1");
    // The injector touching op's container conflicts on that field only.
    let got = conflicts(&live, &containers(json!([{"name": "web", "image": "evil"}])), "injector");
    assert_eq!(got, pairs(&[("op", ".spec.template.spec.containers[name=\"web\"].image")]));
    // op dropping its container leaves the injector's.
    let live = ok(Some(&live), &deployment(json!(1), json!([])), "op", T4);
    assert_eq!(live["spec"]["template"]["spec"]["containers"], json!([{"name": "sidecar", "image": "envoy:1"}]));
}

#[test]
fn config_order_wins_for_shared_items_and_live_only_items_stay_in_place() {
    let live = ok(None, &containers(json!([{"name": "a"}, {"name": "b"}, {"name": "c"}])), "one", T1);
    let live = ok(Some(&live), &containers(json!([{"name": "d"}, {"name": "b"}])), "two", T2);
    let names: Vec<&str> = live["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a", "d", "b", "c"]);
}

#[test]
fn record_update_then_apply_conflicts_with_the_updater() {
    let mut created = deployment(json!(3), web("nginx:1"));
    record_update(None, &mut created, "kubectl-create", &keys(), T1);
    assert_eq!(
        entry(&created, "kubectl-create", "Update").unwrap(),
        &json!({
            "manager": "kubectl-create",
            "operation": "Update",
            "apiVersion": "apps/v1",
            "time": T1,
            "fieldsType": "FieldsV1",
            "fieldsV1": {
                "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
                "f:spec": {
                    ".": {},
                    "f:replicas": {},
                    "f:selector": {".": {}, "f:matchLabels": {".": {}, "f:app": {}}},
                    "f:template": {
                        ".": {},
                        "f:metadata": {".": {}, "f:labels": {".": {}, "f:app": {}}},
                        "f:spec": {".": {}, "f:containers": {"k:{\"name\":\"web\"}": {
                            ".": {},
                            "f:image": {},
                            "f:name": {},
                            "f:ports": {"k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {".": {}, "f:containerPort": {}}}
                        }}}
                    }
                }
            }
        })
    );
    let got = conflicts(&created, &deployment(json!(5), web("nginx:2")), "op");
    assert_eq!(
        got,
        pairs(&[
            ("kubectl-create", ".spec.replicas"),
            ("kubectl-create", ".spec.template.spec.containers[name=\"web\"].image"),
        ])
    );
    let err = apply(Some(&created), &deployment(json!(5), web("nginx:2")), "op", false, &keys(), T2).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Apply failed with 2 conflicts: conflicts with \"kubectl-create\":\n- .spec.replicas\n- \
         .spec.template.spec.containers[name=\"web\"].image"
    );
    // The same values: shared, no conflict, nothing changes but the managed fields.
    let shared = ok(Some(&created), &deployment(json!(3), web("nginx:1")), "op", T2);
    assert_eq!(without_managed_fields(&shared), without_managed_fields(&created));
    assert!(owns(&shared, "op", ".spec.replicas"));
    assert!(owns(&shared, "kubectl-create", ".spec.replicas"));
    // Apply entries come first.
    let managers: Vec<&str> = shared["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["manager"].as_str().unwrap())
        .collect();
    assert_eq!(managers, ["op", "kubectl-create"]);
    // Forcing moves both fields.
    let forced = apply(Some(&created), &deployment(json!(5), web("nginx:2")), "op", true, &keys(), T2).unwrap();
    assert!(!owns(&forced, "kubectl-create", ".spec.replicas"));
    assert!(owns(&forced, "kubectl-create", ".spec.selector.matchLabels.app"));
    assert_eq!(forced["spec"]["replicas"], 5);
}

#[test]
fn record_update_takes_fields_from_appliers() {
    let live = ok(None, &deployment(json!(3), web("nginx:1")), "op", T1);
    let mut edited = live.clone();
    edited["spec"]["replicas"] = json!(7);
    record_update(Some(&live), &mut edited, "kubectl-edit", &keys(), T2);
    assert_eq!(owned_fields(&edited, "kubectl-edit"), [".spec.replicas"]);
    assert!(!owns(&edited, "op", ".spec.replicas"));
    assert_eq!(entry(&edited, "op", "Apply").unwrap()["time"], T1);
    assert_eq!(entry(&edited, "kubectl-edit", "Update").unwrap()["time"], T2);
    // The applier now conflicts with the editor, and wins with force.
    let got = conflicts(&edited, &deployment(json!(3), web("nginx:1")), "op");
    assert_eq!(got, pairs(&[("kubectl-edit", ".spec.replicas")]));
    let forced = apply(Some(&edited), &deployment(json!(3), web("nginx:1")), "op", true, &keys(), T3).unwrap();
    assert_eq!(forced["spec"]["replicas"], 3);
    assert!(entry(&forced, "kubectl-edit", "Update").is_none(), "an entry left without fields is dropped");
}

#[test]
fn record_update_removal_and_noop() {
    let live = ok(None, &deployment(json!(3), web("nginx:1")), "op", T1);
    // A no-op update leaves everything as it was.
    let mut same = live.clone();
    record_update(Some(&live), &mut same, "kubectl-edit", &keys(), T2);
    assert_eq!(serde_json::to_string(&same).unwrap(), serde_json::to_string(&live).unwrap());
    // Removing a label through an update: nobody owns it any more.
    let mut edited = live.clone();
    edited["metadata"]["labels"].as_object_mut().unwrap().remove("app");
    record_update(Some(&live), &mut edited, "kubectl-edit", &keys(), T2);
    assert!(!owns(&edited, "op", ".metadata.labels.app"));
    // `labels` emptied is not itself changed (structured-merge-diff): kubectl-edit owns nothing.
    assert_eq!(owned_fields(&edited, "kubectl-edit"), Vec::<String>::new());
    assert!(entry(&edited, "kubectl-edit", "Update").is_none());
    // A second update by the same manager extends its entry.
    let mut again = edited.clone();
    again["metadata"]["annotations"] = json!({"note": "x"});
    record_update(Some(&edited), &mut again, "kubectl-edit", &keys(), T3);
    assert_eq!(owned_fields(&again, "kubectl-edit"), [".metadata.annotations", ".metadata.annotations.note"]);
    assert_eq!(entry(&again, "kubectl-edit", "Update").unwrap()["time"], T3);
}

#[test]
fn prune_keeps_what_an_updater_took_over() {
    let mut config = deployment(json!(3), web("nginx:1"));
    config["metadata"]["annotations"] = json!({"a": "1"});
    let live = ok(None, &config, "op", T1);
    let mut edited = live.clone();
    edited["metadata"]["annotations"]["a"] = json!("2");
    record_update(Some(&live), &mut edited, "kubectl-annotate", &keys(), T2);
    config["metadata"].as_object_mut().unwrap().remove("annotations");
    let out = ok(Some(&edited), &config, "op", T3);
    assert_eq!(out["metadata"]["annotations"], json!({"a": "2"}));
}

#[test]
fn set_lists_own_values() {
    let live = ok(
        None,
        &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "finalizers": ["a"]}}),
        "op",
        T1,
    );
    let other = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "finalizers": ["b"]}});
    let live = apply(Some(&live), &other, "ctrl", false, &BuiltinListKeys::new("ConfigMap"), T2).unwrap();
    assert_eq!(live["metadata"]["finalizers"], json!(["a", "b"]));
    assert_eq!(
        entry(&live, "ctrl", "Apply").unwrap()["fieldsV1"],
        json!({"f:metadata": {"f:finalizers": {"v:\"b\"": {}}}})
    );
    let none = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}});
    let live = apply(Some(&live), &none, "op", false, &BuiltinListKeys::new("ConfigMap"), T3).unwrap();
    assert_eq!(live["metadata"]["finalizers"], json!(["b"]));
    assert!(entry(&live, "op", "Apply").is_none());
    let live = apply(Some(&live), &none, "ctrl", false, &BuiltinListKeys::new("ConfigMap"), T4).unwrap();
    assert!(live["metadata"].get("finalizers").is_none());
    assert!(live["metadata"].get("managedFields").is_none());
}

#[test]
fn atomic_lists_are_owned_whole() {
    let tolerations =
        |key: &str| partial(json!({"template": {"spec": {"tolerations": [{"key": key, "operator": "Exists"}]}}}));
    let live = ok(None, &tolerations("a"), "op", T1);
    assert_eq!(
        entry(&live, "op", "Apply").unwrap()["fieldsV1"],
        json!({"f:spec": {"f:template": {"f:spec": {"f:tolerations": {}}}}})
    );
    let got = conflicts(&live, &tolerations("b"), "other");
    assert_eq!(got, pairs(&[("op", ".spec.template.spec.tolerations")]));
    let live = ok(Some(&live), &tolerations("b"), "op", T2);
    assert_eq!(live["spec"]["template"]["spec"]["tolerations"], json!([{"key": "b", "operator": "Exists"}]));
}

#[test]
fn null_in_config_removes_and_owns_the_field() {
    let live = ok(None, &deployment(json!(3), web("nginx:1")), "op", T1);
    let got = conflicts(&live, &partial(json!({"replicas": null})), "other");
    assert_eq!(got, pairs(&[("op", ".spec.replicas")]));
    let out = apply(Some(&live), &partial(json!({"replicas": null})), "other", true, &keys(), T2).unwrap();
    assert!(out["spec"].get("replicas").is_none());
    assert_eq!(owned_fields(&out, "other"), [".spec.replicas"]);
    // Re-applying is a no-op.
    let again = apply(Some(&out), &partial(json!({"replicas": null})), "other", false, &keys(), T3).unwrap();
    assert_eq!(again, out);
}

#[test]
fn server_set_metadata_is_ignored() {
    let mut live = ok(None, &deployment(json!(3), web("nginx:1")), "op", T1);
    live["metadata"]["resourceVersion"] = json!("7");
    live["metadata"]["uid"] = json!("u-1");
    live["metadata"]["generation"] = json!(1);
    let mut config = deployment(json!(3), web("nginx:1"));
    config["metadata"]["resourceVersion"] = json!("1");
    config["metadata"]["uid"] = json!("other");
    config["metadata"]["creationTimestamp"] = json!(null);
    let out = ok(Some(&live), &config, "op", T2);
    assert_eq!(serde_json::to_string(&out).unwrap(), serde_json::to_string(&live).unwrap());
    let owned = owned_fields(&out, "op");
    assert!(owned.iter().all(|p| !p.starts_with(".metadata.name") && !p.starts_with(".apiVersion")), "{owned:?}");
    // Updates do not track them either.
    let mut bumped = live.clone();
    bumped["metadata"]["resourceVersion"] = json!("8");
    bumped["metadata"]["generation"] = json!(2);
    record_update(Some(&live), &mut bumped, "ctrl", &keys(), T2);
    assert!(entry(&bumped, "ctrl", "Update").is_none());
}

#[test]
fn ports_without_protocol_match_defaulted_live_ports() {
    let mut live = deployment(
        json!(1),
        json!([{"name": "web", "image": "a", "ports": [{"containerPort": 80, "protocol": "TCP"}]}]),
    );
    record_update(None, &mut live, "kubectl-create", &keys(), T1);
    let out = ok(Some(&live), &deployment(json!(1), web("a")), "op", T2);
    assert_eq!(
        out["spec"]["template"]["spec"]["containers"][0]["ports"],
        json!([{"containerPort": 80, "protocol": "TCP"}])
    );
    let udp = json!([{"name": "web", "image": "a", "ports": [{"containerPort": 80}, {"containerPort": 80, "protocol": "UDP"}]}]);
    let out = ok(Some(&out), &deployment(json!(1), udp), "op", T3);
    assert_eq!(
        out["spec"]["template"]["spec"]["containers"][0]["ports"],
        json!([{"containerPort": 80, "protocol": "TCP"}, {"containerPort": 80, "protocol": "UDP"}])
    );
}

#[test]
fn invalid_configs() {
    let invalid =
        |live: Option<&Value>, config: Value, manager: &str| match apply(live, &config, manager, false, &keys(), T1) {
            Err(ApplyError::Invalid(msg)) => msg,
            other => panic!("expected invalid, got {other:?}"),
        };
    let msg = invalid(None, containers(json!([{"image": "x"}])), "op");
    assert!(msg.contains("omits key field \"name\""), "{msg}");
    assert!(msg.starts_with(".spec.template.spec.containers: element 0"), "{msg}");
    let msg = invalid(None, containers(json!([{"name": "a"}, {"name": "a"}])), "op");
    assert!(msg.contains("duplicate entries for key [name=\"a\"]"), "{msg}");
    let msg = invalid(None, json!({"metadata": {"finalizers": [{"a": 1}]}}), "op");
    assert!(msg.contains("must be scalars"), "{msg}");
    let msg = invalid(None, json!({"metadata": {"finalizers": ["a", "a"]}}), "op");
    assert!(msg.contains("duplicate entries"), "{msg}");
    let msg = invalid(None, json!({"metadata": {"managedFields": []}}), "op");
    assert_eq!(msg, "metadata.managedFields must be nil");
    let msg = invalid(None, deployment(json!(1), web("a")), "");
    assert!(msg.contains("fieldManager is required"), "{msg}");
    let msg = invalid(None, json!([1]), "op");
    assert!(msg.contains("must be a JSON object"), "{msg}");
    let live = ok(None, &deployment(json!(1), web("a")), "op", T1);
    let msg = invalid(Some(&live), json!({"kind": "StatefulSet"}), "op");
    assert!(msg.contains("does not match"), "{msg}");
}

#[test]
fn multiple_conflicting_managers() {
    let live = ok(None, &partial(json!({"replicas": 1})), "a", T1);
    let live = ok(Some(&live), &partial(json!({"paused": false})), "b", T2);
    let got = conflicts(&live, &partial(json!({"replicas": 2, "paused": true})), "c");
    assert_eq!(got, pairs(&[("a", ".spec.replicas"), ("b", ".spec.paused")]));
    let err = ApplyError::Conflict { conflicts: got };
    assert_eq!(
        err.to_string(),
        "Apply failed with 2 conflicts: conflicts with \"a\":\n- .spec.replicas\nconflicts with \"b\":\n- .spec.paused"
    );
}

#[test]
fn subresource_entries_are_separate() {
    let live = ok(None, &deployment(json!(1), web("a")), "op", T1);
    let status =
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "status": {"replicas": 1}});
    let out = apply_subresource(Some(&live), &status, "op", "status", false, &keys(), T2).unwrap();
    let entries = out["metadata"]["managedFields"].as_array().unwrap();
    assert_eq!(entries.len(), 2);
    let status_entry = entries.iter().find(|e| e["subresource"] == "status").unwrap();
    assert_eq!(status_entry["fieldsV1"], json!({"f:status": {"f:replicas": {}}}));
    assert_eq!(status_entry["time"], T2);
    // The main-resource entry is untouched and its fields are not pruned.
    assert_eq!(entries.iter().find(|e| e.get("subresource").is_none()).unwrap()["time"], T1);
    assert_eq!(out["spec"]["replicas"], 1);
    // An update through /status.
    let mut written = out.clone();
    written["status"]["replicas"] = json!(2);
    record_update_subresource(Some(&out), &mut written, "kube-controller-manager", "status", &keys(), T3);
    let e = entry(&written, "kube-controller-manager", "Update").unwrap();
    assert_eq!(e["subresource"], "status");
    assert!(!owns(&written, "op", ".status.replicas"));
}

#[test]
fn managed_fields_sent_with_an_update() {
    let live = ok(None, &deployment(json!(1), web("a")), "op", T1);
    // `[{}]` strips them.
    let mut stripped = live.clone();
    stripped["metadata"]["managedFields"] = json!([{}]);
    record_update(Some(&live), &mut stripped, "kubectl", &keys(), T2);
    assert!(stripped["metadata"].get("managedFields").is_none());
    // `[]` keeps the live ones.
    let mut kept = live.clone();
    kept["metadata"]["managedFields"] = json!([]);
    record_update(Some(&live), &mut kept, "kubectl", &keys(), T2);
    assert_eq!(kept, live);
    // Without managed fields in the stored object, an apply starts from scratch.
    let fresh = ok(Some(&stripped), &partial(json!({"replicas": 9})), "other", T3);
    assert_eq!(fresh["spec"]["replicas"], 9);
}

#[test]
fn fields_v1_round_trip() {
    let fields = json!({
        "f:metadata": {"f:finalizers": {".": {}, "v:\"example.com/x\"": {}}, "f:labels": {".": {}, "f:app": {}}},
        "f:spec": {
            "f:ports": {".": {}, "k:{\"port\":80,\"protocol\":\"TCP\"}": {".": {}, "f:port": {}, "f:protocol": {}, "f:targetPort": {}}},
            "f:items": {"i:0": {}},
            "f:selector": {}
        }
    });
    let set = decode_set(&fields).unwrap();
    assert_eq!(encode_set(&set), fields);
    assert!(set.contains(&vec![Pe::Field("metadata".into()), Pe::Field("finalizers".into())]));
    assert_eq!(
        set.iter().map(|p| path_string(p)).filter(|p| p.starts_with(".spec.ports")).collect::<Vec<_>>(),
        [
            ".spec.ports",
            ".spec.ports[port=80,protocol=\"TCP\"]",
            ".spec.ports[port=80,protocol=\"TCP\"].port",
            ".spec.ports[port=80,protocol=\"TCP\"].protocol",
            ".spec.ports[port=80,protocol=\"TCP\"].targetPort",
        ]
    );
    // Key objects are canonical whatever their field order.
    let reordered = json!({"f:spec": {"f:ports": {"k:{\"protocol\":\"TCP\",\"port\":80}": {}}}});
    assert_eq!(
        encode_set(&decode_set(&reordered).unwrap()),
        json!({"f:spec": {"f:ports": {"k:{\"port\":80,\"protocol\":\"TCP\"}": {}}}})
    );
    assert!(decode_set(&json!({"x:bad": {}})).is_none());
}

#[test]
fn opaque_entries_are_kept() {
    let mut live = ok(None, &deployment(json!(1), web("a")), "op", T1);
    let odd = json!({"manager": "legacy", "operation": "Update", "fieldsType": "FieldsV2", "fieldsV1": {"weird": 1}});
    live["metadata"]["managedFields"].as_array_mut().unwrap().push(odd.clone());
    let out = ok(Some(&live), &deployment(json!(2), web("a")), "op", T2);
    assert!(out["metadata"]["managedFields"].as_array().unwrap().contains(&odd));
}

/// A custom resource: list keys from its schema.
struct WidgetKeys;
impl ListKeys for WidgetKeys {
    fn keys(&self, path: &[&str]) -> Option<Vec<String>> {
        (path == ["spec", "endpoints"]).then(|| vec!["host".to_owned(), "port".to_owned()])
    }
    fn is_set(&self, path: &[&str]) -> bool {
        path == ["spec", "tags"]
    }
}

#[test]
fn custom_resource_with_schema_keys() {
    let widget = |endpoints: Value, tags: Value| json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {"endpoints": endpoints, "tags": tags}});
    let live = apply(
        None,
        &widget(json!([{"host": "a", "port": 1, "weight": 1}]), json!(["x"])),
        "op",
        false,
        &WidgetKeys,
        T1,
    )
    .unwrap();
    assert_eq!(
        entry(&live, "op", "Apply").unwrap()["fieldsV1"],
        json!({"f:spec": {
            "f:endpoints": {"k:{\"host\":\"a\",\"port\":1}": {".": {}, "f:host": {}, "f:port": {}, "f:weight": {}}},
            "f:tags": {"v:\"x\"": {}}
        }})
    );
    let live =
        apply(Some(&live), &widget(json!([{"host": "a", "port": 2}]), json!(["y"])), "other", false, &WidgetKeys, T2)
            .unwrap();
    assert_eq!(live["spec"]["endpoints"], json!([{"host": "a", "port": 1, "weight": 1}, {"host": "a", "port": 2}]));
    assert_eq!(live["spec"]["tags"], json!(["x", "y"]));
    let err = apply(
        Some(&live),
        &widget(json!([{"host": "a", "port": 1, "weight": 5}]), json!([])),
        "other",
        false,
        &WidgetKeys,
        T3,
    )
    .unwrap_err();
    assert_eq!(err, ApplyError::Conflict { conflicts: pairs(&[("op", ".spec.endpoints[host=\"a\",port=1].weight")]) });
}

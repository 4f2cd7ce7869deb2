use super::*;
use serde_json::json;

fn spec(container_security: Value) -> Value {
    json!({"containers": [{"name": "web", "image": "nginx", "securityContext": container_security}]})
}

fn restricted_container() -> Value {
    json!({"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}, "runAsNonRoot": true,
        "seccompProfile": {"type": "RuntimeDefault"}})
}

#[test]
fn a_plain_pod_fails_restricted_with_the_real_message_and_passes_baseline() {
    let plain = json!({"containers": [{"name": "nginx", "image": "nginx"}]});
    assert_eq!(check(Level::Baseline, &json!({}), &plain), []);
    assert_eq!(
        detail(&check(Level::Restricted, &json!({}), &plain)),
        "allowPrivilegeEscalation != false (container \"nginx\" must set securityContext.allowPrivilegeEscalation=false), \
         unrestricted capabilities (container \"nginx\" must set securityContext.capabilities.drop=[\"ALL\"]), \
         runAsNonRoot != true (pod or container \"nginx\" must set securityContext.runAsNonRoot=true), \
         seccompProfile (pod or container \"nginx\" must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\")"
    );
}

#[test]
fn a_hardened_pod_passes_restricted_and_pod_level_settings_count_for_every_container() {
    assert_eq!(check(Level::Restricted, &json!({}), &spec(restricted_container())), []);
    let pod_level = json!({"securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "Localhost"}},
        "containers": [{"name": "a", "image": "x", "securityContext": {"allowPrivilegeEscalation": false,
            "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}}}],
        "volumes": [{"name": "tls", "secret": {"secretName": "s"}}, {"name": "tmp", "emptyDir": {}}]});
    assert_eq!(check(Level::Restricted, &json!({}), &pod_level), []);
}

#[test]
fn baseline_refuses_host_namespaces_privilege_host_paths_and_extra_capabilities() {
    let pod = json!({"hostPID": true, "hostNetwork": true,
        "containers": [{"name": "a", "image": "x", "ports": [{"containerPort": 80, "hostPort": 8080}],
            "securityContext": {"privileged": true, "capabilities": {"add": ["NET_ADMIN", "CHOWN"]}}}],
        "volumes": [{"name": "root", "hostPath": {"path": "/"}}]});
    assert_eq!(
        detail(&check(Level::Baseline, &json!({}), &pod)),
        "non-default capabilities (container \"a\" must not include \"NET_ADMIN\" in securityContext.capabilities.add), \
         host namespaces (hostNetwork=true, hostPID=true), hostPath volumes (volume \"root\"), \
         hostPort (container \"a\" uses hostPort 8080), privileged (container \"a\" must not set securityContext.privileged=true)"
    );
    // Restricted reports the volume as a restricted type and the capability through its own check.
    let restricted: Vec<String> = check(Level::Restricted, &json!({}), &pod).into_iter().map(|(r, _)| r).collect();
    assert!(restricted.contains(&"restricted volume types".to_string()), "{restricted:?}");
    assert!(!restricted.contains(&"non-default capabilities".to_string()), "{restricted:?}");
}

#[test]
fn explicit_bad_values_are_named() {
    let mut sc = restricted_container();
    sc["runAsNonRoot"] = json!(false);
    sc["runAsUser"] = json!(0);
    sc["seccompProfile"] = json!({"type": "Unconfined"});
    assert_eq!(
        detail(&check(Level::Restricted, &json!({}), &spec(sc))),
        "runAsNonRoot != true (container \"web\" must not set securityContext.runAsNonRoot=false), \
         runAsUser=0 (container \"web\" must not set runAsUser=0), \
         seccompProfile (container \"web\" must not set securityContext.seccompProfile.type to \"Unconfined\")"
    );
}

#[test]
fn namespace_labels_give_the_policy() {
    let p = policy(&json!({"pod-security.kubernetes.io/enforce": "baseline",
        "pod-security.kubernetes.io/warn": "restricted", "pod-security.kubernetes.io/warn-version": "v1.33"}));
    assert_eq!(p.enforce.to_string(), "baseline:latest");
    assert_eq!(p.warn.to_string(), "restricted:v1.33");
    assert_eq!(p.audit.level, Level::Privileged);
    assert_eq!(policy(&json!({"pod-security.kubernetes.io/enforce": "strict"})).enforce.level, Level::Restricted);
}

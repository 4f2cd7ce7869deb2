//! Defaulting of built-in kinds: the defaults the real API server fills in that a client can
//! see (and that drift checks and webhooks compare against).

use serde_json::{Value, json};

/// Sets `field` of `object` to `value` when it is absent.
fn or(object: &mut Value, field: &str, value: Value) {
    if object.is_object() && object[field].is_null() {
        object[field] = value;
    }
}

/// Applies the defaults of `kind` in place.
pub fn apply(kind: &str, object: &mut Value) {
    match kind {
        "Pod" => pod_spec(&mut object["spec"]),
        "Deployment" => {
            let spec = &mut object["spec"];
            or(spec, "replicas", json!(1));
            or(spec, "revisionHistoryLimit", json!(10));
            or(spec, "progressDeadlineSeconds", json!(600));
            or(spec, "strategy", json!({"type": "RollingUpdate"}));
            if spec["strategy"]["type"] == "RollingUpdate" {
                or(&mut spec["strategy"], "rollingUpdate", json!({"maxSurge": "25%", "maxUnavailable": "25%"}));
            }
            pod_spec(&mut spec["template"]["spec"]);
        }
        "ReplicaSet" => {
            or(&mut object["spec"], "replicas", json!(1));
            pod_spec(&mut object["spec"]["template"]["spec"]);
        }
        "StatefulSet" => {
            let spec = &mut object["spec"];
            or(spec, "replicas", json!(1));
            or(spec, "podManagementPolicy", json!("OrderedReady"));
            or(spec, "revisionHistoryLimit", json!(10));
            or(spec, "updateStrategy", json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}));
            pod_spec(&mut spec["template"]["spec"]);
        }
        "DaemonSet" => {
            let spec = &mut object["spec"];
            or(spec, "revisionHistoryLimit", json!(10));
            or(
                spec,
                "updateStrategy",
                json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}),
            );
            pod_spec(&mut spec["template"]["spec"]);
        }
        "Job" => {
            let spec = &mut object["spec"];
            or(spec, "backoffLimit", json!(6));
            or(spec, "completions", json!(1));
            or(spec, "parallelism", json!(1));
            pod_spec(&mut spec["template"]["spec"]);
        }
        "CronJob" => {
            let spec = &mut object["spec"];
            or(spec, "concurrencyPolicy", json!("Allow"));
            or(spec, "suspend", json!(false));
            or(spec, "successfulJobsHistoryLimit", json!(3));
            or(spec, "failedJobsHistoryLimit", json!(1));
            pod_spec(&mut spec["jobTemplate"]["spec"]["template"]["spec"]);
        }
        "Service" => service(object),
        _ => {}
    }
}

fn pod_spec(spec: &mut Value) {
    if !spec.is_object() {
        return;
    }
    or(spec, "restartPolicy", json!("Always"));
    or(spec, "dnsPolicy", json!("ClusterFirst"));
    or(spec, "terminationGracePeriodSeconds", json!(30));
    or(spec, "schedulerName", json!("default-scheduler"));
    or(spec, "securityContext", json!({}));
    for list in ["containers", "initContainers"] {
        if let Some(containers) = spec[list].as_array_mut() {
            for c in containers {
                container(c);
            }
        }
    }
}

fn container(c: &mut Value) {
    let image = c["image"].as_str().unwrap_or_default();
    let last = image.rsplit('/').next().unwrap_or(image);
    let latest = !image.contains('@') && last.rsplit_once(':').is_none_or(|(_, tag)| tag == "latest");
    or(c, "imagePullPolicy", json!(if latest { "Always" } else { "IfNotPresent" }));
    or(c, "terminationMessagePath", json!("/dev/termination-log"));
    or(c, "terminationMessagePolicy", json!("File"));
    or(c, "resources", json!({}));
    if let Some(ports) = c["ports"].as_array_mut() {
        for p in ports {
            or(p, "protocol", json!("TCP"));
        }
    }
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        // `get_mut`, not indexing: indexing would store an explicit null for a missing probe.
        if let Some(p) = c.get_mut(probe).filter(|p| p.is_object()) {
            or(p, "timeoutSeconds", json!(1));
            or(p, "periodSeconds", json!(10));
            or(p, "successThreshold", json!(1));
            or(p, "failureThreshold", json!(3));
            if p["httpGet"].is_object() {
                or(&mut p["httpGet"], "scheme", json!("HTTP"));
                or(&mut p["httpGet"], "path", json!("/"));
            }
        }
    }
}

fn service(object: &mut Value) {
    let spec = &mut object["spec"];
    if !spec.is_object() {
        return;
    }
    or(spec, "type", json!("ClusterIP"));
    or(spec, "sessionAffinity", json!("None"));
    or(spec, "ipFamilies", json!(["IPv4"]));
    or(spec, "ipFamilyPolicy", json!("SingleStack"));
    or(spec, "internalTrafficPolicy", json!("Cluster"));
    if let Some(ports) = spec["ports"].as_array_mut() {
        for p in ports {
            or(p, "protocol", json!("TCP"));
            let port = p["port"].clone();
            or(p, "targetPort", port);
        }
    }
}

/// A stable cluster IP for a new Service (10.96.0.0/12, derived from its uid).
pub fn cluster_ip(uid: &str) -> String {
    let h = uid.bytes().fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
    format!("10.{}.{}.{}", 96 + (h >> 16) % 16, (h >> 8) & 0xff, (h & 0xff).max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deployments_and_services_get_the_api_server_defaults() {
        let mut d = json!({"spec": {"template": {"spec": {"containers": [{"name": "a", "image": "nginx", "ports": [{"containerPort": 80}]},
            {"name": "b", "image": "nginx:1.27"}]}}}});
        apply("Deployment", &mut d);
        assert_eq!(d["spec"]["strategy"]["rollingUpdate"]["maxSurge"], "25%");
        assert_eq!(d["spec"]["template"]["spec"]["restartPolicy"], "Always");
        let cs = &d["spec"]["template"]["spec"]["containers"];
        assert_eq!(
            (cs[0]["imagePullPolicy"].as_str(), cs[1]["imagePullPolicy"].as_str()),
            (Some("Always"), Some("IfNotPresent"))
        );
        assert_eq!(cs[0]["ports"][0]["protocol"], "TCP");
        let mut s = json!({"spec": {"ports": [{"port": 443}], "type": "NodePort"}});
        apply("Service", &mut s);
        assert_eq!(
            (s["spec"]["type"].as_str(), s["spec"]["ports"][0]["targetPort"].as_i64()),
            (Some("NodePort"), Some(443))
        );
    }
}

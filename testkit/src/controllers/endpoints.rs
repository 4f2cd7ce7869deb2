//! Services: Endpoints objects for `kubectl get endpoints`, and resolution of a service port
//! to a ready pod's address (what the API server needs to call a webhook).

use crate::cluster::Cluster;
use crate::registry::GroupResource;
use crate::selectors::LabelSelector;
use crate::server::State;
use serde_json::{Value, json};

fn gr(resource: &str) -> GroupResource {
    GroupResource { group: String::new(), resource: resource.into() }
}

/// Pods that back a service: selected, Ready, with an IP, not terminating.
pub fn ready_pods<'a>(cluster: &'a Cluster, service: &'a Value) -> Vec<&'a Value> {
    let namespace = service["metadata"]["namespace"].as_str().unwrap_or_default();
    let selector = &service["spec"]["selector"];
    if !selector.is_object() {
        return Vec::new();
    }
    let selector = LabelSelector::from_object(&json!({"matchLabels": selector}));
    cluster
        .store
        .list(&gr("pods"), Some(namespace))
        .filter(|p| selector.matches(&p["metadata"]["labels"]))
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null() && p["status"]["podIP"].is_string())
        .filter(|p| {
            p["status"]["conditions"]
                .as_array()
                .is_some_and(|cs| cs.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"))
        })
        .collect()
}

/// The container port a service port targets on `pod` (numbers, or names looked up in the pod).
fn target_port(port: &Value, pod: &Value) -> Option<i64> {
    match &port["targetPort"] {
        Value::Number(n) => n.as_i64(),
        Value::String(name) => pod["spec"]["containers"]
            .as_array()?
            .iter()
            .flat_map(|c| c["ports"].as_array().cloned().unwrap_or_default())
            .find(|p| p["name"] == name.as_str())
            .and_then(|p| p["containerPort"].as_i64()),
        _ => port["port"].as_i64(),
    }
}

/// `ip:port` of a ready pod behind `namespace/name` for service port `port`.
pub fn resolve_service(cluster: &Cluster, namespace: &str, name: &str, port: i64) -> Result<String, String> {
    let service =
        cluster.store.get(&gr("services"), namespace, name).ok_or_else(|| format!("service \"{name}\" not found"))?;
    let service_port = service["spec"]["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["port"].as_i64() == Some(port))
        .ok_or_else(|| format!("service {namespace}/{name} has no port {port}"))?;
    let pods = ready_pods(cluster, service);
    if pods.is_empty() {
        return Err(format!("no endpoints available for service \"{name}\""));
    }
    // Spread calls over the ready pods.
    let pick = (cluster.store.resource_version() as usize) % pods.len();
    let pod = pods[pick];
    let target = target_port(service_port, pod)
        .ok_or_else(|| format!("cannot resolve the target port of service {namespace}/{name}"))?;
    Ok(format!("{}:{target}", pod["status"]["podIP"].as_str().unwrap_or_default()))
}

/// Keeps an Endpoints object per selector-based service.
pub fn pass(state: &State) {
    let mut cluster = state.cluster.lock().unwrap();
    let services: Vec<Value> = cluster.store.list(&gr("services"), None).cloned().collect();
    for service in services {
        if !service["spec"]["selector"].is_object() {
            continue;
        }
        let (ns, name) = crate::store::key_of(&service);
        let pods = ready_pods(&cluster, &service);
        let addresses: Vec<Value> = pods
            .iter()
            .map(|p| json!({"ip": p["status"]["podIP"], "targetRef": {"kind": "Pod", "namespace": ns, "name": p["metadata"]["name"], "uid": p["metadata"]["uid"]}}))
            .collect();
        let ports: Vec<Value> = service["spec"]["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| {
                let target = pods.first().and_then(|pod| target_port(p, pod)).or(p["port"].as_i64());
                let mut port = json!({"port": target, "protocol": p["protocol"].as_str().unwrap_or("TCP")});
                if let Some(n) = p["name"].as_str() {
                    port["name"] = json!(n);
                }
                port
            })
            .collect();
        let subsets = if addresses.is_empty() { json!([]) } else { json!([{"addresses": addresses, "ports": ports}]) };
        let existing = cluster.store.get(&gr("endpoints"), &ns, &name).cloned();
        let differs = existing.as_ref().is_none_or(|e| {
            e["subsets"].as_array().cloned().unwrap_or_default() != subsets.as_array().cloned().unwrap_or_default()
        });
        if !differs {
            continue;
        }
        let mut object = existing.unwrap_or_else(|| {
            json!({"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": name, "namespace": ns, "labels": service["metadata"]["labels"],
                "uid": format!("ep-{}", service["metadata"]["uid"].as_str().unwrap_or_default()), "creationTimestamp": crate::cluster::now_rfc3339()}})
        });
        if subsets.as_array().is_some_and(Vec::is_empty) {
            object.as_object_mut().unwrap().remove("subsets");
        } else {
            object["subsets"] = subsets;
        }
        cluster.store.put(&gr("endpoints"), object);
    }
}

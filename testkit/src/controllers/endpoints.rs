//! Services: Endpoints objects, and resolution of a service port to one of their addresses
//! (what the API server needs to call a webhook).
//!
//! As on a real cluster, calls follow the published Endpoints, not the pods themselves: a pod
//! that stops being ready or starts terminating keeps receiving calls until the change has
//! propagated ([`Cluster::endpoint_propagation`], the time kube-proxy and the API server's
//! informers take), so a server that stops listening at once on SIGTERM fails those calls.

use crate::cluster::Cluster;
use crate::registry::GroupResource;
use crate::selectors::LabelSelector;
use crate::server::State;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// The default of [`Cluster::endpoint_propagation`].
pub const DEFAULT_PROPAGATION: Duration = Duration::from_secs(1);

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

/// `ip:port` of an address of the Endpoints of `namespace/name` for service port `port`.
pub fn resolve_service(cluster: &Cluster, namespace: &str, name: &str, port: i64) -> Result<String, String> {
    let service =
        cluster.store.get(&gr("services"), namespace, name).ok_or_else(|| format!("service \"{name}\" not found"))?;
    let service_port = service["spec"]["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["port"].as_i64() == Some(port))
        .ok_or_else(|| format!("service {namespace}/{name} has no port {port}"))?;
    let endpoints = cluster.store.get(&gr("endpoints"), namespace, name);
    let subset = endpoints.map(|e| &e["subsets"][0]);
    let addresses = subset.and_then(|s| s["addresses"].as_array()).cloned().unwrap_or_default();
    if addresses.is_empty() {
        return Err(format!("no endpoints available for service \"{name}\""));
    }
    // Spread calls over the addresses.
    let address = &addresses[(cluster.store.resource_version() as usize) % addresses.len()];
    let published = subset.and_then(|s| s["ports"].as_array()).into_iter().flatten();
    let target = published
        .clone()
        .find(|p| p["name"] == service_port["name"])
        .or_else(|| published.clone().next())
        .and_then(|p| p["port"].as_i64())
        .ok_or_else(|| format!("cannot resolve the target port of service {namespace}/{name}"))?;
    Ok(format!("{}:{target}", address["ip"].as_str().unwrap_or_default()))
}

/// Keeps an Endpoints object per selector-based service: the ready pods, and for
/// `endpoint_propagation` those that just stopped being ready (`leaving`: since when, by
/// service and address).
pub fn pass(state: &State, leaving: &mut HashMap<(String, String, String), Instant>) {
    let mut cluster = state.cluster.lock().unwrap();
    let services: Vec<Value> = cluster.store.list(&gr("services"), None).cloned().collect();
    let now = Instant::now();
    for service in services {
        if !service["spec"]["selector"].is_object() {
            continue;
        }
        let (ns, name) = crate::store::key_of(&service);
        let pods = ready_pods(&cluster, &service);
        let mut addresses: Vec<Value> = pods
            .iter()
            .map(|p| json!({"ip": p["status"]["podIP"], "targetRef": {"kind": "Pod", "namespace": ns, "name": p["metadata"]["name"], "uid": p["metadata"]["uid"]}}))
            .collect();
        let published = cluster.store.get(&gr("endpoints"), &ns, &name).map(|e| e["subsets"][0]["addresses"].clone());
        for old in published.as_ref().and_then(Value::as_array).into_iter().flatten() {
            if addresses.iter().any(|a| a["ip"] == old["ip"]) {
                continue;
            }
            let key = (ns.clone(), name.clone(), old["ip"].as_str().unwrap_or_default().to_string());
            let since = *leaving.entry(key).or_insert(now);
            if now.duration_since(since) < cluster.endpoint_propagation {
                addresses.push(old.clone());
            }
        }
        leaving.retain(|(n, s, ip), _| {
            (n, s) != (&ns, &name)
                || addresses.iter().any(|a| a["ip"] == ip.as_str())
                    && !pods.iter().any(|p| p["status"]["podIP"] == ip.as_str())
        });
        // Named target ports are looked up in a pod behind the addresses (a leaving one will do).
        let port_pod = pods.first().copied().or_else(|| {
            let name = addresses.first()?["targetRef"]["name"].as_str()?;
            cluster.store.get(&gr("pods"), &ns, name)
        });
        let ports: Vec<Value> = service["spec"]["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| {
                let target = port_pod.and_then(|pod| target_port(p, pod)).or(p["port"].as_i64());
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

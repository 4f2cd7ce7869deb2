//! PodDisruptionBudget status and the eviction subresource that honours it.

use crate::cluster::{Cluster, DeleteOptions};
use crate::registry::{GroupResource, ResourceType};
use crate::selectors::LabelSelector;
use crate::server::State;
use crate::status::ApiError;
use serde_json::{Value, json};

fn pdbs() -> GroupResource {
    GroupResource { group: "policy".into(), resource: "poddisruptionbudgets".into() }
}

fn pods() -> GroupResource {
    GroupResource { group: String::new(), resource: "pods".into() }
}

fn ready(pod: &Value) -> bool {
    pod["metadata"]["deletionTimestamp"].is_null()
        && pod["status"]["conditions"]
            .as_array()
            .is_some_and(|cs| cs.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"))
}

/// `(expectedPods, currentHealthy, desiredHealthy, disruptionsAllowed)` of a budget now.
fn budget(cluster: &Cluster, pdb: &Value) -> (i64, i64, i64, i64) {
    let ns = pdb["metadata"]["namespace"].as_str().unwrap_or_default();
    let selector = LabelSelector::from_object(&pdb["spec"]["selector"]);
    let matching: Vec<&Value> = cluster
        .store
        .list(&pods(), Some(ns))
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null() && selector.matches(&p["metadata"]["labels"]))
        .collect();
    let expected = matching.len() as i64;
    let healthy = matching.iter().filter(|p| ready(p)).count() as i64;
    let resolve = |v: &Value| match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => {
            s.trim_end_matches('%').parse::<f64>().ok().map(|pct| (pct * expected as f64 / 100.0).ceil() as i64)
        }
        _ => None,
    };
    let desired = match (resolve(&pdb["spec"]["minAvailable"]), resolve(&pdb["spec"]["maxUnavailable"])) {
        (Some(min), _) => min,
        (None, Some(max)) => (expected - max).max(0),
        (None, None) => expected,
    };
    (expected, healthy, desired, (healthy - desired).max(0))
}

pub fn pass(state: &State) {
    let mut cluster = state.cluster.lock().unwrap();
    let all: Vec<Value> = cluster.store.list(&pdbs(), None).cloned().collect();
    for pdb in all {
        let (expected, healthy, desired, allowed) = budget(&cluster, &pdb);
        let mut status = json!({
            "observedGeneration": pdb["metadata"]["generation"], "expectedPods": expected, "currentHealthy": healthy,
            "desiredHealthy": desired, "disruptionsAllowed": allowed,
        });
        let condition_ok = allowed > 0;
        let old_condition = pdb["status"]["conditions"].as_array().and_then(|cs| cs.first()).cloned();
        let condition = match old_condition {
            Some(c) if (c["status"] == "True") == condition_ok => c,
            _ => json!({"type": "DisruptionAllowed", "status": if condition_ok { "True" } else { "False" },
                "reason": if condition_ok { "SufficientPods" } else { "InsufficientPods" }, "message": "",
                "observedGeneration": pdb["metadata"]["generation"], "lastTransitionTime": crate::cluster::now_rfc3339()}),
        };
        status["conditions"] = json!([condition]);
        if pdb["status"] != status {
            let mut new = pdb.clone();
            new["status"] = status;
            cluster.store.put(&pdbs(), new);
        }
    }
}

/// POST pods/{name}/eviction: deletes the pod unless a budget covering it allows no disruption.
pub fn evict(state: &State, pod_type: &ResourceType, namespace: &str, name: &str) -> Result<Value, ApiError> {
    let mut cluster = state.cluster.lock().unwrap();
    let pod = cluster.get(pod_type, namespace, name)?;
    let budgets: Vec<Value> = cluster
        .store
        .list(&pdbs(), Some(namespace))
        .filter(|b| LabelSelector::from_object(&b["spec"]["selector"]).matches(&pod["metadata"]["labels"]))
        .cloned()
        .collect();
    if budgets.len() > 1 {
        return Err(ApiError::new(
            500,
            "InternalError",
            "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.",
        ));
    }
    if let Some(b) = budgets.first() {
        let (_, _, _, allowed) = budget(&cluster, b);
        // An unready pod does not count against the budget.
        if allowed == 0 && ready(&pod) {
            let mut e = ApiError::new(
                429,
                "TooManyRequests",
                "Cannot evict pod as it would violate the pod's disruption budget.",
            );
            e.details = json!({"causes": [{"reason": "DisruptionBudget", "message": format!("The disruption budget {} needs {} healthy pods and has {} currently", b["metadata"]["name"].as_str().unwrap_or_default(), b["status"]["desiredHealthy"], b["status"]["currentHealthy"])}]});
            return Err(e);
        }
    }
    cluster.delete(pod_type, namespace, name, &DeleteOptions::default())?;
    Ok(json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}))
}

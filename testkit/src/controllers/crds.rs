//! The CRD finalizer of kube-apiserver: a deleted CustomResourceDefinition stays Terminating
//! while its objects are deleted the normal way (their own finalizers hold them, and so the
//! CRD), and goes when none is left.

use crate::cluster::{Cluster, DeleteOptions, now_rfc3339};
use crate::registry::GroupResource;
use crate::server::State;
use serde_json::{Value, json};

/// The finalizer the API server puts on a CRD when it is deleted.
pub const CLEANUP_FINALIZER: &str = "customresourcecleanup.apiextensions.k8s.io";

/// Sets the CRD's `Terminating` condition (added, or updated in place).
pub fn set_terminating(crd: &mut Value, reason: &str, message: &str) {
    let condition = json!({"type": "Terminating", "status": "True", "reason": reason, "message": message,
        "lastTransitionTime": now_rfc3339()});
    if !crd["status"]["conditions"].is_array() {
        crd["status"]["conditions"] = json!([]);
    }
    let conditions = crd["status"]["conditions"].as_array_mut().expect("an array");
    match conditions.iter_mut().find(|c| c["type"] == "Terminating") {
        Some(existing) if existing["reason"] == reason => {}
        Some(existing) => *existing = condition,
        None => conditions.push(condition),
    }
}

/// One pass: every terminating CRD deletes its objects; one with none left loses its finalizer.
pub fn pass(state: &State) {
    let mut cluster = state.cluster.lock().unwrap();
    let crd_type = cluster.registry.find("apiextensions.k8s.io", "v1", "customresourcedefinitions").cloned().unwrap();
    let terminating: Vec<Value> = cluster
        .store
        .list(&crd_type.key(), None)
        .filter(|c| !c["metadata"]["deletionTimestamp"].is_null() && has_cleanup_finalizer(c))
        .cloned()
        .collect();
    for crd in terminating {
        let gr = GroupResource {
            group: crd["spec"]["group"].as_str().unwrap_or_default().into(),
            resource: crd["spec"]["names"]["plural"].as_str().unwrap_or_default().into(),
        };
        let objects: Vec<Value> = cluster.store.list(&gr, None).cloned().collect();
        let mut new = crd.clone();
        if objects.is_empty() {
            if let Some(fs) = new["metadata"]["finalizers"].as_array_mut() {
                fs.retain(|f| f != CLEANUP_FINALIZER);
            }
            finish(&mut cluster, &crd_type, new);
            continue;
        }
        let Some(rt) = served_type(&cluster, &gr) else { continue };
        for object in objects.iter().filter(|o| o["metadata"]["deletionTimestamp"].is_null()) {
            let (ns, name) = crate::store::key_of(object);
            let _ = cluster.delete(&rt, &ns, &name, &DeleteOptions::default());
        }
        set_terminating(&mut new, "InstanceDeletionInProgress", "CustomResource deletion is in progress");
        if new != crd {
            cluster.store.put(&crd_type.key(), new);
        }
    }
}

fn has_cleanup_finalizer(crd: &Value) -> bool {
    crd["metadata"]["finalizers"].as_array().is_some_and(|fs| fs.iter().any(|f| f == CLEANUP_FINALIZER))
}

fn served_type(cluster: &Cluster, gr: &GroupResource) -> Option<crate::registry::ResourceType> {
    cluster.registry.all().iter().find(|t| t.key() == *gr).cloned()
}

/// Stores the CRD without the cleanup finalizer; with no finalizer left it is removed.
fn finish(cluster: &mut Cluster, crd_type: &crate::registry::ResourceType, crd: Value) {
    if crd["metadata"]["finalizers"].as_array().is_none_or(Vec::is_empty) {
        let name = crd["metadata"]["name"].as_str().unwrap_or_default().to_string();
        cluster.remove(crd_type, "", &name);
    } else {
        cluster.store.put(&crd_type.key(), crd);
    }
}

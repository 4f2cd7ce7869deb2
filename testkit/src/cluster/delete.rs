//! Deletion: finalizers, grace periods of pods, propagation policies, namespaces and CRDs
//! that wait for their contents.

use super::{Cluster, DeleteOptions, now_rfc3339, qualified, with_api_version};
use crate::registry::{GroupResource, ResourceType};
use crate::status::ApiError;
use serde_json::{Value, json};

impl Cluster {
    /// Starts or finishes deletion. Returns the object as it is after the call.
    pub fn delete(
        &mut self,
        rt: &ResourceType,
        namespace: &str,
        name: &str,
        opts: &DeleteOptions,
    ) -> Result<Value, ApiError> {
        let old = self.get(rt, namespace, name)?;
        if let Some(uid) = &opts.precondition_uid
            && old["metadata"]["uid"].as_str() != Some(uid)
        {
            return Err(ApiError::conflict(
                &qualified(rt),
                name,
                &format!(
                    "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                    old["metadata"]["uid"].as_str().unwrap_or_default()
                ),
            ));
        }
        if let Some(rv) = &opts.precondition_rv
            && old["metadata"]["resourceVersion"].as_str() != Some(rv)
        {
            return Err(ApiError::conflict(
                &qualified(rt),
                name,
                "the object has been modified; please apply your changes to the latest version and try again",
            ));
        }
        if opts.dry_run {
            return Ok(old);
        }
        let ns = if rt.namespaced { namespace } else { "" };
        let mut finalizers: Vec<Value> = old["metadata"]["finalizers"].as_array().cloned().unwrap_or_default();
        match opts.propagation.as_deref() {
            Some("Foreground") => finalizers.push(json!("foregroundDeletion")),
            Some("Orphan") => finalizers.push(json!("orphan")),
            _ => {}
        }
        let is_crd = rt.resource == "customresourcedefinitions";
        if is_crd {
            // Its objects are deleted first, the normal way (see controllers::crds).
            finalizers.push(json!(crate::controllers::crds::CLEANUP_FINALIZER));
        }
        finalizers.dedup();
        let graceful_pod = rt.resource == "pods"
            && !old["spec"]["nodeName"].is_null()
            && opts.grace_period_seconds.unwrap_or(1) > 0
            && old["status"]["phase"] != "Succeeded"
            && old["status"]["phase"] != "Failed";
        let is_namespace = rt.resource == "namespaces";
        if finalizers.is_empty() && !graceful_pod && !is_namespace {
            let removed = self.store.remove(&rt.key(), ns, name).expect("exists");
            self.after_delete(rt, &removed);
            return Ok(with_api_version(&removed, rt));
        }
        if !old["metadata"]["deletionTimestamp"].is_null() {
            // Already being deleted: a second delete changes nothing (a grace period of 0 for a
            // pod finishes it now).
            if rt.resource == "pods" && opts.grace_period_seconds == Some(0) && finalizers.is_empty() {
                let removed = self.store.remove(&rt.key(), ns, name).expect("exists");
                return Ok(with_api_version(&removed, rt));
            }
            return Ok(old);
        }
        let mut new = old.clone();
        new["metadata"]["deletionTimestamp"] = Value::String(now_rfc3339());
        if graceful_pod {
            let grace =
                opts.grace_period_seconds.or(old["spec"]["terminationGracePeriodSeconds"].as_i64()).unwrap_or(30);
            new["metadata"]["deletionGracePeriodSeconds"] = json!(grace);
        } else {
            new["metadata"]["deletionGracePeriodSeconds"] = json!(0);
        }
        if !finalizers.is_empty() {
            new["metadata"]["finalizers"] = Value::Array(finalizers);
        }
        if is_namespace {
            new["status"]["phase"] = json!("Terminating");
        }
        if is_crd {
            crate::controllers::crds::set_terminating(
                &mut new,
                "InstanceDeletionPending",
                "CustomResourceDefinition marked for deletion; CustomResource deletion will begin soon",
            );
        }
        if rt.is_crd() || new["metadata"]["generation"].is_i64() {
            let generation = old["metadata"]["generation"].as_i64().unwrap_or(1);
            new["metadata"]["generation"] = json!(generation + 1);
        }
        let stored = self.store.put(&rt.key(), new);
        if is_crd {
            self.crd_changed();
        }
        Ok(with_api_version(&stored, rt))
    }

    /// Removes an object outright (controllers finishing a deletion).
    pub fn remove(&mut self, rt: &ResourceType, namespace: &str, name: &str) -> Option<Value> {
        let removed = self.store.remove(&rt.key(), namespace, name)?;
        self.after_delete(rt, &removed);
        Some(removed)
    }

    pub(super) fn after_delete(&mut self, rt: &ResourceType, removed: &Value) {
        if rt.resource == "customresourcedefinitions" {
            // Its objects were deleted before its cleanup finalizer was removed; any left (the
            // finalizer removed by hand) are unreachable, as they would be on a real cluster.
            let group = removed["spec"]["group"].as_str().unwrap_or_default().to_string();
            let resource = removed["spec"]["names"]["plural"].as_str().unwrap_or_default().to_string();
            let gr = GroupResource { group, resource };
            let keys: Vec<(String, String)> = self.store.list(&gr, None).map(crate::store::key_of).collect();
            for (ns, name) in keys {
                self.store.remove(&gr, &ns, &name);
            }
            self.crd_changed();
        }
    }
}

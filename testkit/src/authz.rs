//! Authorization of every request against the stored RBAC objects (plus the bootstrap roles a
//! fresh cluster has), and the escalation checks on writes of roles and bindings.

use crate::cluster::{Cluster, PendingWrite};
use crate::rbac::{Decision, RbacSnapshot, RequestAttributes, UserInfo};
use crate::registry::GroupResource;
use crate::status::ApiError;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef};
use serde::de::DeserializeOwned;
use std::sync::Arc;

const RBAC_RESOURCES: [&str; 4] = ["clusterroles", "clusterrolebindings", "roles", "rolebindings"];

fn rbac_resource(resource: &str) -> GroupResource {
    GroupResource { group: "rbac.authorization.k8s.io".into(), resource: resource.into() }
}

fn typed<T: DeserializeOwned>(cluster: &Cluster, resource: &str) -> Vec<T> {
    cluster.store.list(&rbac_resource(resource), None).filter_map(|o| serde_json::from_value(o.clone()).ok()).collect()
}

/// Identifies the stored RBAC objects: their count and newest resourceVersion (any create,
/// update or delete changes one of the two).
pub type Fingerprint = (usize, u64);

fn fingerprint(cluster: &Cluster) -> Fingerprint {
    let mut count = 0;
    let mut newest = 0;
    for resource in RBAC_RESOURCES {
        for o in cluster.store.list(&rbac_resource(resource), None) {
            count += 1;
            newest = newest.max(o["metadata"]["resourceVersion"].as_str().and_then(|v| v.parse().ok()).unwrap_or(0));
        }
    }
    (count, newest)
}

/// The RBAC objects in the store, with the bootstrap roles and bindings added; decoded once
/// per change of the RBAC objects.
pub fn snapshot(cluster: &Cluster) -> Arc<RbacSnapshot> {
    let key = fingerprint(cluster);
    let mut cache = cluster.rbac_cache.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((cached, snapshot)) = cache.as_ref()
        && *cached == key
    {
        return snapshot.clone();
    }
    let mut s = RbacSnapshot::bootstrap();
    s.cluster_roles.extend(typed::<ClusterRole>(cluster, "clusterroles"));
    s.cluster_role_bindings.extend(typed::<ClusterRoleBinding>(cluster, "clusterrolebindings"));
    s.roles.extend(typed::<Role>(cluster, "roles"));
    s.role_bindings.extend(typed::<RoleBinding>(cluster, "rolebindings"));
    let snapshot = Arc::new(s);
    *cache = Some((key, snapshot.clone()));
    snapshot
}

/// Allows the request or returns the real API server's 403.
pub fn authorize(cluster: &Cluster, user: &UserInfo, method: &str, uri: &str) -> Result<(), ApiError> {
    if user.is_privileged() {
        return Ok(());
    }
    let attrs = RequestAttributes::from_http(user.clone(), method, uri);
    match snapshot(cluster).authorize(&attrs) {
        Decision::Allow => Ok(()),
        Decision::Deny { reason } => Err(ApiError::from_status(attrs.forbidden_status(&reason))),
    }
}

/// A server-side apply that creates its object must also be allowed to `create` it, as in the
/// real API server (its patch handler authorizes the create with the object's name, which the
/// URL carries, so `create` limited by `resourceNames` works for apply but not for POST).
pub fn authorize_create_by_apply(cluster: &Cluster, user: &UserInfo, pending: &PendingWrite) -> Result<(), ApiError> {
    if user.is_privileged() || pending.old.is_some() || pending.subresource.is_some() {
        return Ok(());
    }
    let rt = &pending.rt;
    let mut attrs = RequestAttributes::resource(user.clone(), "create", &rt.group, &rt.resource)
        .named(pending.new["metadata"]["name"].as_str().unwrap_or_default());
    if rt.namespaced {
        attrs = attrs.in_namespace(pending.new["metadata"]["namespace"].as_str().unwrap_or_default());
    }
    match snapshot(cluster).authorize(&attrs) {
        Decision::Allow => Ok(()),
        Decision::Deny { reason } => Err(ApiError::from_status(attrs.forbidden_status(&reason))),
    }
}

/// Refuses to create or update a role or binding that grants more than `user` holds (unless
/// the user may `escalate` / `bind`), as the real RBAC storage does.
pub fn check_escalation(cluster: &Cluster, user: &UserInfo, pending: &PendingWrite) -> Result<(), ApiError> {
    let rt = &pending.rt;
    if rt.group != "rbac.authorization.k8s.io" || user.is_privileged() {
        return Ok(());
    }
    if pending.old.as_ref().is_some_and(|old| only_gc_fields_differ(old, &pending.new)) {
        // As the real RBAC storage: an update that changes only ownerReferences and finalizers
        // (what the garbage collector and owners write) grants nothing new.
        return Ok(());
    }
    let snapshot = snapshot(cluster);
    let namespace = pending.new["metadata"]["namespace"].as_str().unwrap_or_default();
    let name = pending.new["metadata"]["name"].as_str().unwrap_or_default();
    let result = match rt.resource.as_str() {
        "roles" | "clusterroles" => {
            let rules: Vec<PolicyRule> = serde_json::from_value(pending.new["rules"].clone()).unwrap_or_default();
            if rt.resource == "clusterroles" && !pending.new["aggregationRule"].is_null() {
                snapshot.check_cluster_role_aggregation(user, name)
            } else {
                snapshot.check_role_escalation_named(user, namespace, name, &rules)
            }
        }
        "rolebindings" | "clusterrolebindings" => {
            match serde_json::from_value::<RoleRef>(pending.new["roleRef"].clone()) {
                Ok(role_ref) => snapshot.check_binding(user, namespace, &role_ref),
                Err(e) => Err(format!("invalid roleRef: {e}")),
            }
        }
        _ => Ok(()),
    };
    result.map_err(|reason| {
        let kind = format!("{}.rbac.authorization.k8s.io", rt.resource);
        ApiError::forbidden(format!("{kind} \"{name}\" is forbidden: {reason}"))
            .with_details(serde_json::json!({"name": name, "group": rt.group, "kind": rt.resource}))
    })
}

/// Whether `old` and `new` differ in nothing but `ownerReferences` and `finalizers` (and the
/// bookkeeping every write changes: resourceVersion, managedFields).
fn only_gc_fields_differ(old: &serde_json::Value, new: &serde_json::Value) -> bool {
    let strip = |o: &serde_json::Value| {
        let mut o = o.clone();
        if let Some(meta) = o["metadata"].as_object_mut() {
            for field in ["ownerReferences", "finalizers", "resourceVersion", "managedFields"] {
                meta.remove(field);
            }
        }
        o
    };
    strip(old) == strip(new)
}

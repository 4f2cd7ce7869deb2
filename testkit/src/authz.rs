//! Authorization of every request against the stored RBAC objects (plus the bootstrap roles a
//! fresh cluster has), and the escalation checks on writes of roles and bindings.

use crate::cluster::{Cluster, PendingWrite};
use crate::rbac::{Decision, RbacSnapshot, RequestAttributes, UserInfo};
use crate::registry::GroupResource;
use crate::status::ApiError;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef};
use serde::de::DeserializeOwned;

fn typed<T: DeserializeOwned>(cluster: &Cluster, resource: &str) -> Vec<T> {
    let gr = GroupResource { group: "rbac.authorization.k8s.io".into(), resource: resource.into() };
    cluster.store.list(&gr, None).filter_map(|o| serde_json::from_value(o.clone()).ok()).collect()
}

/// The RBAC objects in the store, with the bootstrap roles and bindings added.
pub fn snapshot(cluster: &Cluster) -> RbacSnapshot {
    let mut s = RbacSnapshot::bootstrap();
    s.cluster_roles.extend(typed::<ClusterRole>(cluster, "clusterroles"));
    s.cluster_role_bindings.extend(typed::<ClusterRoleBinding>(cluster, "clusterrolebindings"));
    s.roles.extend(typed::<Role>(cluster, "roles"));
    s.role_bindings.extend(typed::<RoleBinding>(cluster, "rolebindings"));
    s
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

/// Refuses to create or update a role or binding that grants more than `user` holds (unless
/// the user may `escalate` / `bind`), as the real RBAC storage does.
pub fn check_escalation(cluster: &Cluster, user: &UserInfo, pending: &PendingWrite) -> Result<(), ApiError> {
    let rt = &pending.rt;
    if rt.group != "rbac.authorization.k8s.io" || user.is_privileged() {
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

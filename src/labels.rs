//! Who kube-devops is in a cluster: its name, namespace and version, the labels every object
//! it ships carries, and the (smaller, immutable) selector labels of its pods. A leaf: every
//! layer (the CRD types, the manifests, the components) may use it.

/// The namespace every namespaced object lives in.
pub const NAMESPACE: &str = "kube-devops";

/// The namespace this process runs in: `$POD_NAMESPACE` (the downward API), else
/// [`NAMESPACE`] (a process outside a pod).
pub fn own_namespace() -> String {
    std::env::var("POD_NAMESPACE").ok().filter(|n| !n.is_empty()).unwrap_or_else(|| NAMESPACE.into())
}
/// The application name: the `app.kubernetes.io/name` label and the name of the shared RBAC
/// objects (ServiceAccount, ClusterRole, ClusterRoleBinding, Role, RoleBinding).
pub const APP: &str = "kube-devops";
/// The kube-devops version these manifests describe (`app.kubernetes.io/version`).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use std::collections::BTreeMap;

pub const NAME: &str = "app.kubernetes.io/name";
pub const INSTANCE: &str = "app.kubernetes.io/instance";
pub const VERSION_LABEL: &str = "app.kubernetes.io/version";
pub const COMPONENT: &str = "app.kubernetes.io/component";
pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";

/// The instance label: one installation per cluster, named like the application (and like
/// the Helm release of the documented `helm install kube-devops ...`).
pub const INSTANCE_NAME: &str = "kube-devops";
/// The manager label of objects kube-devops renders itself (deploy CLI, operator, config/).
pub const MANAGER: &str = "kube-devops";

/// Component labels of objects that are not one component's: the namespace, the shared RBAC
/// and the dashboard.
pub const NAMESPACE_COMPONENT: &str = "namespace";
pub const RBAC_COMPONENT: &str = "rbac";
pub const DASHBOARD_COMPONENT: &str = "dashboard";

/// The standard labels: name, instance, version, component, managed-by.
pub fn labels(component: &str) -> BTreeMap<String, String> {
    let mut labels = selector_labels(component);
    labels.insert(VERSION_LABEL.into(), VERSION.into());
    labels.insert(MANAGED_BY.into(), MANAGER.into());
    labels
}

/// The labels that select one component's pods: name, instance, component. The version is
/// left out: selectors are immutable, and an upgrade must not orphan the old pods.
pub fn selector_labels(component: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (NAME.into(), APP.into()),
        (INSTANCE.into(), INSTANCE_NAME.into()),
        (COMPONENT.into(), component.into()),
    ])
}

/// A label selector matching exactly one component's pods.
pub fn selector(component: &str) -> LabelSelector {
    LabelSelector { match_labels: Some(selector_labels(component)), ..Default::default() }
}

/// Metadata of a namespaced object in `kube-devops` with the standard labels.
pub fn namespaced_meta(name: &str, component: &str) -> ObjectMeta {
    ObjectMeta { namespace: Some(NAMESPACE.into()), ..cluster_meta(name, component) }
}

/// Metadata of a cluster-scoped object with the standard labels.
pub fn cluster_meta(name: &str, component: &str) -> ObjectMeta {
    ObjectMeta { name: Some(name.into()), labels: Some(labels(component)), ..Default::default() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selector_labels_are_a_version_free_subset_of_the_labels() {
        let all = labels("watch");
        let selector = selector_labels("watch");
        assert_eq!(all.len(), 5);
        assert!(selector.iter().all(|(k, v)| all.get(k) == Some(v)));
        assert!(!selector.contains_key(VERSION_LABEL));
        assert_eq!(all[NAME], "kube-devops");
        assert_eq!(all[VERSION_LABEL], env!("CARGO_PKG_VERSION"));
    }
}

//! The `kube-devops` Namespace. It enforces the Pod Security "restricted" profile: the
//! components comply, and nothing else should run there.

use super::NAMESPACE;
use super::labels::{NAMESPACE_COMPONENT, cluster_meta};
use k8s_openapi::api::core::v1::Namespace;

/// Pod Security Admission labels: enforce, audit and warn "restricted".
pub const POD_SECURITY_LABELS: [(&str, &str); 3] = [
    ("pod-security.kubernetes.io/enforce", "restricted"),
    ("pod-security.kubernetes.io/audit", "restricted"),
    ("pod-security.kubernetes.io/warn", "restricted"),
];

/// The namespace every component runs in.
pub fn namespace() -> Namespace {
    let mut metadata = cluster_meta(NAMESPACE, NAMESPACE_COMPONENT);
    let labels = metadata.labels.get_or_insert_with(Default::default);
    for (key, value) in POD_SECURITY_LABELS {
        labels.insert(key.into(), value.into());
    }
    Namespace { metadata, ..Default::default() }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_namespace_enforces_the_restricted_pod_security_profile() {
        let ns = super::namespace();
        let labels = ns.metadata.labels.unwrap();
        assert_eq!(ns.metadata.name.as_deref(), Some("kube-devops"));
        assert_eq!(labels["pod-security.kubernetes.io/enforce"], "restricted");
        assert_eq!(labels["app.kubernetes.io/component"], "namespace");
    }
}

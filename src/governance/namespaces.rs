//! Which namespaces are system namespaces and never evaluated.

/// Namespaces named outright as system namespaces, on top of the `kube-*` and `*-system` patterns.
pub const SYSTEM_NAMESPACES: [&str; 5] = ["cert-manager", "istio-system", "monitoring", "observability", "argocd"];

/// True for namespaces that belong to the platform rather than to workloads: names starting
/// with `kube-` (including kube-devops itself) or ending with `-system`, and
/// [`SYSTEM_NAMESPACES`].
pub fn is_system_namespace(namespace: &str) -> bool {
    namespace.starts_with("kube-") || namespace.ends_with("-system") || SYSTEM_NAMESPACES.contains(&namespace)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_namespaces_follow_the_original_rules() {
        for ns in [
            "kube-system",
            "kube-public",
            "kube-node-lease",
            "kube-devops",
            "gatekeeper-system",
            "cert-manager",
            "monitoring",
            "observability",
            "argocd",
            "istio-system",
        ] {
            assert!(is_system_namespace(ns), "{ns} should be a system namespace");
        }
        for ns in ["default", "shop", "kubernetes-dashboard-ui", "system", "my-systems", "prod"] {
            assert!(!is_system_namespace(ns), "{ns} should not be a system namespace");
        }
    }
}

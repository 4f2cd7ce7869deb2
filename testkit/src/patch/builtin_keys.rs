//! List semantics of the built-in kinds, as declared by the Go struct tags of the Kubernetes API
//! types (`patchStrategy=merge` + `patchMergeKey`, `listType=map` + `listMapKey`,
//! `listType=set`, `listType=atomic`).
//!
//! One table serves both strategic merge patch and server-side apply:
//! [`ListKeys::keys`] returns the `listMapKey`s with the `patchMergeKey` first, so strategic merge
//! uses the first key and server-side apply all of them (container `ports` are merged by
//! `containerPort` in a strategic merge patch and keyed by `containerPort` + `protocol` in
//! managed fields, like the real API server).
//!
//! Where the two disagree the table follows strategic merge (for example Job
//! `status.conditions`, merged by `type` in a strategic merge patch but `listType=atomic` for
//! server-side apply). Every list not listed here is atomic.

use super::ListKeys;

/// The list semantics of one list field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListType {
    /// A list of objects merged by these keys (the strategic merge key first).
    Map(&'static [&'static str]),
    /// A set of scalars merged by value.
    Set,
    /// Replaced as a whole.
    Atomic,
}

/// The built-in kinds this table knows (everything else gets only the metadata lists and
/// `status.conditions`).
pub const KNOWN_KINDS: &[&str] = &[
    "Namespace",
    "Pod",
    "PodTemplate",
    "Service",
    "ServiceAccount",
    "Secret",
    "ConfigMap",
    "Endpoints",
    "Node",
    "PersistentVolumeClaim",
    "ReplicationController",
    "Deployment",
    "ReplicaSet",
    "StatefulSet",
    "DaemonSet",
    "Job",
    "CronJob",
    "PodDisruptionBudget",
    "NetworkPolicy",
    "Lease",
    "ClusterRole",
    "Role",
    "ClusterRoleBinding",
    "RoleBinding",
    "ValidatingWebhookConfiguration",
    "MutatingWebhookConfiguration",
    "CustomResourceDefinition",
];

/// Whether `kind` is one of [`KNOWN_KINDS`].
pub fn is_known_kind(kind: &str) -> bool {
    KNOWN_KINDS.contains(&kind)
}

/// [`ListKeys`] of a built-in kind, from the Go struct tags of its API type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltinListKeys {
    kind: String,
}

impl BuiltinListKeys {
    /// The list keys of `kind` (e.g. `"Deployment"`).
    pub fn new(kind: impl Into<String>) -> Self {
        Self { kind: kind.into() }
    }

    /// The kind this table describes.
    pub fn kind(&self) -> &str {
        &self.kind
    }

    /// The semantics of the list at `path` (field names from the object root).
    pub fn list_type(&self, path: &[&str]) -> ListType {
        if let Some(t) = metadata_list(path) {
            return t;
        }
        if let Some(prefix) = pod_spec_prefix(&self.kind)
            && let Some(rest) = path.strip_prefix(prefix)
        {
            return pod_spec_list(rest);
        }
        match (self.kind.as_str(), path) {
            ("Pod", ["status", "conditions"]) => ListType::Map(&["type"]),
            ("Pod", ["status", "podIPs" | "hostIPs"]) => ListType::Map(&["ip"]),
            ("Pod", ["status", "resourceClaimStatuses"]) => ListType::Map(&["name"]),
            ("Service", ["spec", "ports"]) => ListType::Map(&["port", "protocol"]),
            ("ServiceAccount", ["secrets"]) => ListType::Map(&["name"]),
            ("Node", ["status", "addresses"]) => ListType::Map(&["type"]),
            ("Node", ["spec", "podCIDRs"]) => ListType::Set,
            ("ValidatingWebhookConfiguration" | "MutatingWebhookConfiguration", ["webhooks"]) => {
                ListType::Map(&["name"])
            }
            ("ValidatingWebhookConfiguration" | "MutatingWebhookConfiguration", ["webhooks", "matchConditions"]) => {
                ListType::Map(&["name"])
            }
            // Deployment, ReplicaSet, StatefulSet, DaemonSet, Job, PDB, Namespace, Service, CRD,
            // PVC, Node, ...: conditions are merged by type.
            (_, ["status", "conditions"]) => ListType::Map(&["type"]),
            // Role/ClusterRole rules, binding subjects, CRD versions, StatefulSet
            // volumeClaimTemplates, Namespace spec.finalizers, Endpoints subsets, ...
            _ => ListType::Atomic,
        }
    }
}

impl ListKeys for BuiltinListKeys {
    fn keys(&self, path: &[&str]) -> Option<Vec<String>> {
        match self.list_type(path) {
            ListType::Map(keys) => Some(keys.iter().map(|k| (*k).to_owned()).collect()),
            ListType::Set | ListType::Atomic => None,
        }
    }

    fn is_set(&self, path: &[&str]) -> bool {
        self.list_type(path) == ListType::Set
    }
}

/// `ObjectMeta` lists, at the root or in a template (`spec.template.metadata`).
fn metadata_list(path: &[&str]) -> Option<ListType> {
    match path {
        [.., "metadata", "ownerReferences"] => Some(ListType::Map(&["uid"])),
        [.., "metadata", "finalizers"] => Some(ListType::Set),
        [.., "metadata", "managedFields"] => Some(ListType::Atomic),
        _ => None,
    }
}

/// Where the `PodSpec` lives in `kind`.
fn pod_spec_prefix(kind: &str) -> Option<&'static [&'static str]> {
    match kind {
        "Pod" => Some(&["spec"]),
        "PodTemplate" => Some(&["template", "spec"]),
        "Deployment" | "ReplicaSet" | "StatefulSet" | "DaemonSet" | "Job" | "ReplicationController" => {
            Some(&["spec", "template", "spec"])
        }
        "CronJob" => Some(&["spec", "jobTemplate", "spec", "template", "spec"]),
        _ => None,
    }
}

/// Lists of a `PodSpec`, `path` relative to the pod spec.
fn pod_spec_list(path: &[&str]) -> ListType {
    match path {
        ["containers" | "initContainers" | "ephemeralContainers"] => ListType::Map(&["name"]),
        ["containers" | "initContainers" | "ephemeralContainers", rest @ ..] => container_list(rest),
        ["volumes" | "imagePullSecrets" | "resourceClaims" | "schedulingGates"] => ListType::Map(&["name"]),
        ["hostAliases"] => ListType::Map(&["ip"]),
        ["topologySpreadConstraints"] => ListType::Map(&["topologyKey", "whenUnsatisfiable"]),
        // tolerations, readinessGates, securityContext.supplementalGroups, dnsConfig.*, affinity
        // terms, ...
        _ => ListType::Atomic,
    }
}

/// Lists of a `Container`, `path` relative to the container.
fn container_list(path: &[&str]) -> ListType {
    match path {
        ["ports"] => ListType::Map(&["containerPort", "protocol"]),
        ["env"] => ListType::Map(&["name"]),
        ["volumeMounts"] => ListType::Map(&["mountPath"]),
        ["volumeDevices"] => ListType::Map(&["devicePath"]),
        ["resources", "claims"] => ListType::Map(&["name"]),
        // command, args, envFrom, resizePolicy, securityContext.capabilities.*, probes' exec.command, ...
        _ => ListType::Atomic,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(kind: &str, path: &[&str]) -> Option<Vec<String>> {
        BuiltinListKeys::new(kind).keys(path)
    }

    fn key_vec(keys: &[&str]) -> Option<Vec<String>> {
        Some(keys.iter().map(|k| (*k).to_owned()).collect())
    }

    #[test]
    fn pod_spec_lists_under_every_workload_kind() {
        let cases: &[(&str, &[&str])] = &[
            ("Pod", &["spec"]),
            ("PodTemplate", &["template", "spec"]),
            ("Deployment", &["spec", "template", "spec"]),
            ("ReplicaSet", &["spec", "template", "spec"]),
            ("StatefulSet", &["spec", "template", "spec"]),
            ("DaemonSet", &["spec", "template", "spec"]),
            ("Job", &["spec", "template", "spec"]),
            ("CronJob", &["spec", "jobTemplate", "spec", "template", "spec"]),
        ];
        for (kind, prefix) in cases {
            let at = |rest: &[&str]| {
                let mut p: Vec<&str> = prefix.to_vec();
                p.extend_from_slice(rest);
                BuiltinListKeys::new(*kind).list_type(&p)
            };
            for c in ["containers", "initContainers", "ephemeralContainers"] {
                assert_eq!(at(&[c]), ListType::Map(&["name"]), "{kind} {c}");
                assert_eq!(at(&[c, "ports"]), ListType::Map(&["containerPort", "protocol"]), "{kind}");
                assert_eq!(at(&[c, "env"]), ListType::Map(&["name"]), "{kind}");
                assert_eq!(at(&[c, "volumeMounts"]), ListType::Map(&["mountPath"]), "{kind}");
                assert_eq!(at(&[c, "volumeDevices"]), ListType::Map(&["devicePath"]), "{kind}");
                assert_eq!(at(&[c, "resources", "claims"]), ListType::Map(&["name"]), "{kind}");
                assert_eq!(at(&[c, "args"]), ListType::Atomic, "{kind}");
                assert_eq!(at(&[c, "command"]), ListType::Atomic, "{kind}");
                assert_eq!(at(&[c, "envFrom"]), ListType::Atomic, "{kind}");
            }
            assert_eq!(at(&["volumes"]), ListType::Map(&["name"]), "{kind}");
            assert_eq!(at(&["imagePullSecrets"]), ListType::Map(&["name"]), "{kind}");
            assert_eq!(at(&["hostAliases"]), ListType::Map(&["ip"]), "{kind}");
            assert_eq!(at(&["topologySpreadConstraints"]), ListType::Map(&["topologyKey", "whenUnsatisfiable"]));
            assert_eq!(at(&["tolerations"]), ListType::Atomic, "{kind}");
            assert_eq!(at(&["readinessGates"]), ListType::Atomic, "{kind}");
        }
    }

    #[test]
    fn pod_spec_paths_do_not_leak_into_other_kinds() {
        // A Pod's containers are at spec.containers, a Deployment's are not.
        assert_eq!(keys("Deployment", &["spec", "containers"]), None);
        assert_eq!(keys("Pod", &["spec", "template", "spec", "containers"]), None);
        assert_eq!(keys("ConfigMap", &["spec", "containers"]), None);
    }

    #[test]
    fn metadata_lists_for_every_kind_and_template() {
        for kind in KNOWN_KINDS.iter().copied().chain(["SomethingElse"]) {
            assert_eq!(keys(kind, &["metadata", "ownerReferences"]), key_vec(&["uid"]), "{kind}");
            assert!(BuiltinListKeys::new(kind).is_set(&["metadata", "finalizers"]), "{kind}");
            assert_eq!(keys(kind, &["metadata", "finalizers"]), None, "{kind}");
            assert_eq!(BuiltinListKeys::new(kind).list_type(&["metadata", "managedFields"]), ListType::Atomic);
        }
        let template_finalizers = ["spec", "template", "metadata", "finalizers"];
        assert!(BuiltinListKeys::new("Deployment").is_set(&template_finalizers));
    }

    #[test]
    fn service_ports_by_port_and_protocol() {
        assert_eq!(keys("Service", &["spec", "ports"]), key_vec(&["port", "protocol"]));
        assert_eq!(keys("Service", &["spec", "clusterIPs"]), None);
        assert!(!BuiltinListKeys::new("Service").is_set(&["spec", "clusterIPs"]));
        assert_eq!(keys("Service", &["status", "conditions"]), key_vec(&["type"]));
        assert_eq!(keys("Service", &["status", "loadBalancer", "ingress"]), None);
    }

    #[test]
    fn conditions_by_type() {
        for kind in [
            "Pod",
            "Deployment",
            "ReplicaSet",
            "StatefulSet",
            "DaemonSet",
            "Job",
            "PodDisruptionBudget",
            "Namespace",
            "CustomResourceDefinition",
        ] {
            assert_eq!(keys(kind, &["status", "conditions"]), key_vec(&["type"]), "{kind}");
        }
        assert_eq!(keys("Pod", &["status", "podIPs"]), key_vec(&["ip"]));
        assert_eq!(keys("Pod", &["status", "containerStatuses"]), None);
    }

    #[test]
    fn rbac_webhooks_crds_and_others() {
        assert_eq!(keys("ClusterRole", &["rules"]), None);
        assert_eq!(keys("Role", &["rules"]), None);
        assert_eq!(keys("ClusterRoleBinding", &["subjects"]), None);
        assert_eq!(keys("RoleBinding", &["subjects"]), None);
        assert!(!BuiltinListKeys::new("RoleBinding").is_set(&["subjects"]));
        for kind in ["ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"] {
            assert_eq!(keys(kind, &["webhooks"]), key_vec(&["name"]));
            assert_eq!(keys(kind, &["webhooks", "matchConditions"]), key_vec(&["name"]));
            assert_eq!(keys(kind, &["webhooks", "rules"]), None);
            assert_eq!(keys(kind, &["webhooks", "admissionReviewVersions"]), None);
        }
        assert_eq!(keys("CustomResourceDefinition", &["spec", "versions"]), None);
        assert_eq!(keys("CustomResourceDefinition", &["status", "storedVersions"]), None);
        assert_eq!(keys("ServiceAccount", &["secrets"]), key_vec(&["name"]));
        assert_eq!(keys("ServiceAccount", &["imagePullSecrets"]), None);
        assert_eq!(keys("StatefulSet", &["spec", "volumeClaimTemplates"]), None);
        assert_eq!(keys("Namespace", &["spec", "finalizers"]), None);
        assert!(!BuiltinListKeys::new("Namespace").is_set(&["spec", "finalizers"]));
        assert!(BuiltinListKeys::new("Node").is_set(&["spec", "podCIDRs"]));
        assert_eq!(keys("Lease", &["spec", "holderIdentity"]), None);
    }

    #[test]
    fn known_kinds() {
        assert!(is_known_kind("Deployment"));
        assert!(is_known_kind("CustomResourceDefinition"));
        assert!(!is_known_kind("Widget"));
        assert_eq!(BuiltinListKeys::new("Pod").kind(), "Pod");
    }
}

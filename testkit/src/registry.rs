//! The resource types the server serves: the built-in kinds this project touches, plus every
//! kind a stored CustomResourceDefinition defines.

use serde_json::Value;
use std::collections::BTreeMap;

/// How objects of a type are validated on write.
#[derive(Clone, Debug)]
pub enum Schema {
    /// Decoded into the k8s-openapi type of that kind (see `validation::builtin`).
    Builtin,
    /// Checked against the CRD's `openAPIV3Schema`.
    Crd(Value),
}

/// One served resource type (one group/version/resource).
#[derive(Clone, Debug)]
pub struct ResourceType {
    pub group: String,
    pub version: String,
    pub resource: String,
    pub kind: String,
    pub singular: String,
    pub namespaced: bool,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    pub has_status: bool,
    pub schema: Schema,
    /// `additionalPrinterColumns` of a CRD version.
    pub printer_columns: Vec<Value>,
    /// The CRD is being deleted: its objects are still served, but no new one is created.
    pub terminating: bool,
    /// The `scale` subresource: where the replicas are.
    pub scale: Option<ScalePaths>,
}

/// JSON paths (`.spec.replicas`) of a `scale` subresource, as a CRD's `subresources.scale`
/// names them. Built-in workloads take theirs from `spec.selector`.
#[derive(Clone, Debug)]
pub struct ScalePaths {
    pub spec_replicas: String,
    pub status_replicas: String,
    pub label_selector: Option<String>,
}

impl ResourceType {
    pub fn api_version(&self) -> String {
        if self.group.is_empty() { self.version.clone() } else { format!("{}/{}", self.group, self.version) }
    }

    /// `(group, resource)`: the storage key, the same for every version of a resource.
    /// events.k8s.io Events are core Events (see `conversion`).
    pub fn key(&self) -> GroupResource {
        if self.group == "events.k8s.io" && self.resource == "events" {
            return GroupResource { group: String::new(), resource: "events".into() };
        }
        GroupResource { group: self.group.clone(), resource: self.resource.clone() }
    }

    pub fn is_crd(&self) -> bool {
        matches!(self.schema, Schema::Crd(_))
    }
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GroupResource {
    pub group: String,
    pub resource: String,
}

/// Subresources served for a built-in or custom resource type.
pub fn subresources(rt: &ResourceType) -> Vec<&'static str> {
    let mut subs = Vec::new();
    if rt.has_status {
        subs.push("status");
    }
    if rt.group.is_empty() && rt.resource == "pods" {
        subs.push("eviction");
        subs.push("log");
    }
    if rt.scale.is_some() {
        subs.push("scale");
    }
    subs
}

struct Builtin {
    group: &'static str,
    version: &'static str,
    resource: &'static str,
    kind: &'static str,
    namespaced: bool,
    short_names: &'static [&'static str],
    has_status: bool,
}

const fn b(
    group: &'static str,
    version: &'static str,
    resource: &'static str,
    kind: &'static str,
    namespaced: bool,
    short_names: &'static [&'static str],
    has_status: bool,
) -> Builtin {
    Builtin { group, version, resource, kind, namespaced, short_names, has_status }
}

/// The built-in kinds served (what kube-devops and its tests touch).
const BUILTINS: &[Builtin] = &[
    b("", "v1", "namespaces", "Namespace", false, &["ns"], true),
    b("", "v1", "pods", "Pod", true, &["po"], true),
    b("", "v1", "services", "Service", true, &["svc"], true),
    b("", "v1", "endpoints", "Endpoints", true, &["ep"], false),
    b("", "v1", "serviceaccounts", "ServiceAccount", true, &["sa"], false),
    b("", "v1", "secrets", "Secret", true, &[], false),
    b("", "v1", "configmaps", "ConfigMap", true, &["cm"], false),
    b("", "v1", "events", "Event", true, &["ev"], false),
    b("events.k8s.io", "v1", "events", "Event", true, &["ev"], false),
    b("apps", "v1", "deployments", "Deployment", true, &["deploy"], true),
    b("apps", "v1", "replicasets", "ReplicaSet", true, &["rs"], true),
    b("apps", "v1", "statefulsets", "StatefulSet", true, &["sts"], true),
    b("apps", "v1", "daemonsets", "DaemonSet", true, &["ds"], true),
    b("batch", "v1", "jobs", "Job", true, &[], true),
    b("batch", "v1", "cronjobs", "CronJob", true, &["cj"], true),
    b("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget", true, &["pdb"], true),
    b("networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy", true, &["netpol"], false),
    b("coordination.k8s.io", "v1", "leases", "Lease", true, &[], false),
    b("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", false, &[], false),
    b("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", false, &[], false),
    b("rbac.authorization.k8s.io", "v1", "roles", "Role", true, &[], false),
    b("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", true, &[], false),
    b(
        "admissionregistration.k8s.io",
        "v1",
        "validatingwebhookconfigurations",
        "ValidatingWebhookConfiguration",
        false,
        &[],
        false,
    ),
    b(
        "apiextensions.k8s.io",
        "v1",
        "customresourcedefinitions",
        "CustomResourceDefinition",
        false,
        &["crd", "crds"],
        true,
    ),
];

/// Every served type, built-ins first, then those of the given CRDs (established ones).
#[derive(Clone, Debug, Default)]
pub struct Registry {
    types: Vec<ResourceType>,
}

impl Registry {
    pub fn new(crds: &[Value]) -> Registry {
        let mut types: Vec<ResourceType> = BUILTINS
            .iter()
            .map(|b| ResourceType {
                group: b.group.into(),
                version: b.version.into(),
                resource: b.resource.into(),
                kind: b.kind.into(),
                singular: b.kind.to_ascii_lowercase(),
                namespaced: b.namespaced,
                short_names: b.short_names.iter().map(|s| s.to_string()).collect(),
                categories: if matches!(
                    b.resource,
                    "pods"
                        | "services"
                        | "deployments"
                        | "replicasets"
                        | "statefulsets"
                        | "daemonsets"
                        | "jobs"
                        | "cronjobs"
                ) {
                    vec!["all".into()]
                } else {
                    vec![]
                },
                has_status: b.has_status,
                schema: Schema::Builtin,
                printer_columns: vec![],
                terminating: false,
                scale: matches!(b.resource, "deployments" | "replicasets" | "statefulsets").then(|| ScalePaths {
                    spec_replicas: ".spec.replicas".into(),
                    status_replicas: ".status.replicas".into(),
                    label_selector: None,
                }),
            })
            .collect();
        for crd in crds {
            types.extend(crd_types(crd));
        }
        Registry { types }
    }

    pub fn all(&self) -> &[ResourceType] {
        &self.types
    }

    pub fn find(&self, group: &str, version: &str, resource: &str) -> Option<&ResourceType> {
        self.types.iter().find(|t| t.group == group && t.version == version && t.resource == resource)
    }

    pub fn find_kind(&self, api_version: &str, kind: &str) -> Option<&ResourceType> {
        self.types.iter().find(|t| t.api_version() == api_version && t.kind == kind)
    }

    /// The served versions of each group, in discovery order.
    pub fn groups(&self) -> BTreeMap<String, Vec<String>> {
        let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for t in &self.types {
            let versions = groups.entry(t.group.clone()).or_default();
            if !versions.contains(&t.version) {
                versions.push(t.version.clone());
            }
        }
        groups
    }
}

/// The types one CRD serves (one per served version).
pub fn crd_types(crd: &Value) -> Vec<ResourceType> {
    let spec = &crd["spec"];
    let names = &spec["names"];
    let strings = |v: &Value| -> Vec<String> {
        v.as_array().map(|a| a.iter().filter_map(|s| s.as_str().map(String::from)).collect()).unwrap_or_default()
    };
    let mut out = Vec::new();
    for version in spec["versions"].as_array().into_iter().flatten() {
        if version["served"] != Value::Bool(true) {
            continue;
        }
        let kind = names["kind"].as_str().unwrap_or_default().to_string();
        out.push(ResourceType {
            group: spec["group"].as_str().unwrap_or_default().into(),
            version: version["name"].as_str().unwrap_or_default().into(),
            resource: names["plural"].as_str().unwrap_or_default().into(),
            singular: names["singular"].as_str().map(String::from).unwrap_or_else(|| kind.to_ascii_lowercase()),
            kind,
            namespaced: spec["scope"] == "Namespaced",
            short_names: strings(&names["shortNames"]),
            categories: strings(&names["categories"]),
            has_status: version["subresources"]["status"].is_object(),
            schema: Schema::Crd(version["schema"]["openAPIV3Schema"].clone()),
            printer_columns: version["additionalPrinterColumns"].as_array().cloned().unwrap_or_default(),
            terminating: !crd["metadata"]["deletionTimestamp"].is_null(),
            scale: version["subresources"]["scale"].as_object().map(|scale| ScalePaths {
                spec_replicas: scale.get("specReplicasPath").and_then(Value::as_str).unwrap_or(".spec.replicas").into(),
                status_replicas: scale
                    .get("statusReplicasPath")
                    .and_then(Value::as_str)
                    .unwrap_or(".status.replicas")
                    .into(),
                label_selector: scale.get("labelSelectorPath").and_then(Value::as_str).map(String::from),
            }),
        });
    }
    out
}

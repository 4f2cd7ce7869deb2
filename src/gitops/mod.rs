//! GitOps for DevOpsPolicies, pure: what an exported policy keeps (`export`), reading policy
//! files document by document (`documents`), and comparing the cluster with them (`diff`). The
//! shell that reads and writes the cluster is `cli/gitops.rs`.
//!
//! One form of a policy is committed, applied and compared: its name and namespace, labels,
//! annotations other than tools' bookkeeping, and spec. Export adds two annotations that say
//! where and when the copy was made; import never sends them and diff never compares them, so
//! export -> import -> diff says "no changes".

pub mod diff;
pub mod documents;

use crate::api::DevOpsPolicy;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::jiff::Timestamp;
use std::collections::BTreeMap;

/// When a policy was exported (RFC 3339).
pub const EXPORTED_AT: &str = "devops.stochastic.io/exported-at";
/// Which kubeconfig context (or `in-cluster`) a policy was exported from.
pub const EXPORTED_FROM: &str = "devops.stochastic.io/exported-from";
/// The field manager of `policy import` (server-side apply).
pub const FIELD_MANAGER: &str = "kube-devops-cli";
/// kubectl's client-side apply bookkeeping: a copy of an earlier manifest, not part of it.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Annotations that describe a copy of a policy rather than the policy: not applied, not
/// compared.
pub fn is_bookkeeping(annotation: &str) -> bool {
    matches!(annotation, EXPORTED_AT | EXPORTED_FROM | LAST_APPLIED)
}

/// The policy as it is committed and applied: name, namespace, labels, annotations (without
/// bookkeeping) and spec. Server-owned metadata (uid, resourceVersion, generation, creation
/// and deletion times, managedFields, owner references, finalizers) and the status go.
pub fn portable(policy: &DevOpsPolicy) -> DevOpsPolicy {
    let meta = &policy.metadata;
    let non_empty = |map: BTreeMap<String, String>| (!map.is_empty()).then_some(map);
    let annotations = meta.annotations.clone().unwrap_or_default();
    let annotations = annotations.into_iter().filter(|(key, _)| !is_bookkeeping(key)).collect();
    let mut portable = DevOpsPolicy::new(meta.name.as_deref().unwrap_or_default(), policy.spec.clone());
    portable.metadata = ObjectMeta {
        name: meta.name.clone(),
        namespace: meta.namespace.clone(),
        labels: meta.labels.clone().and_then(non_empty),
        annotations: non_empty(annotations),
        ..ObjectMeta::default()
    };
    portable
}

/// The policies of a cluster as `policy export` prints them: portable, annotated with where
/// and when they were exported, sorted by namespace and name.
pub fn export(policies: &[DevOpsPolicy], from: &str, at: Timestamp) -> Vec<DevOpsPolicy> {
    let mut exported: Vec<DevOpsPolicy> = policies
        .iter()
        .map(|policy| {
            let mut copy = portable(policy);
            let annotations = copy.metadata.annotations.get_or_insert_with(BTreeMap::new);
            annotations.insert(EXPORTED_AT.into(), at.to_string());
            annotations.insert(EXPORTED_FROM.into(), from.into());
            copy
        })
        .collect();
    exported.sort_by_key(key);
    exported
}

/// `namespace/name` of a policy.
pub fn key(policy: &DevOpsPolicy) -> String {
    format!(
        "{}/{}",
        policy.metadata.namespace.as_deref().unwrap_or_default(),
        policy.metadata.name.as_deref().unwrap_or_default()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::bundles::{Bundle, BundleName};
    use crate::api::{DevOpsPolicyStatus, EnforcementMode};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ManagedFieldsEntry, Time};

    /// A policy as the API server returns it: server-owned metadata and a status.
    pub(crate) fn live(namespace: &str, name: &str) -> DevOpsPolicy {
        let mut policy = Bundle::of(BundleName::Baseline).policy(namespace, Some(name.into()));
        policy.metadata.uid = Some("0b7c".into());
        policy.metadata.resource_version = Some("42".into());
        policy.metadata.generation = Some(3);
        policy.metadata.creation_timestamp = Some(Time("2026-01-01T00:00:00Z".parse().unwrap()));
        policy.metadata.managed_fields = Some(vec![ManagedFieldsEntry::default()]);
        policy.metadata.finalizers = Some(vec!["devops.stochastic.io/cleanup".into()]);
        policy.metadata.annotations = Some(BTreeMap::from([
            (LAST_APPLIED.to_string(), "{}".to_string()),
            ("team".to_string(), "payments".to_string()),
        ]));
        policy.status = Some(DevOpsPolicyStatus { health_score: Some(90), ..Default::default() });
        policy
    }

    #[test]
    fn export_keeps_what_is_committed_and_says_where_and_when() {
        let at: Timestamp = "2026-03-01T12:00:00Z".parse().unwrap();
        let exported = export(&[live("shop", "b"), live("batch", "z"), live("shop", "a")], "prod", at);
        let keys: Vec<String> = exported.iter().map(key).collect();
        assert_eq!(keys, ["batch/z", "shop/a", "shop/b"]);
        let yaml = crate::yaml::to_yaml(&exported[0]).unwrap();
        assert_eq!(
            yaml,
            "apiVersion: devops.stochastic.io/v1\nkind: DevOpsPolicy\nmetadata:\n  annotations:\n    \
             devops.stochastic.io/exported-at: \"2026-03-01T12:00:00Z\"\n    devops.stochastic.io/exported-from: prod\n    \
             team: payments\n  labels:\n    app.kubernetes.io/managed-by: kube-devops\n    \
             devops.stochastic.io/bundle: baseline\n  name: z\n  namespace: batch\nspec:\n  forbidLatestTag: true\n  \
             requireReadinessProbe: true\n  security:\n    forbidPrivileged: true\n    \
             forbidDangerousCapabilities: true\n  hostAccess:\n    forbidHostNetwork: true\n    \
             forbidHostPID: true\n    forbidHostIPC: true\n    forbidHostPorts: true\n    \
             forbidHostPath: true\n  enforcementMode: audit\n"
        );
    }

    #[test]
    fn portable_drops_bookkeeping_and_empty_maps() {
        let mut policy = live("shop", "a");
        policy.metadata.annotations = Some(BTreeMap::from([(EXPORTED_AT.to_string(), "x".to_string())]));
        policy.metadata.labels = Some(BTreeMap::new());
        policy.spec.enforcement_mode = Some(EnforcementMode::Enforce);
        let portable = portable(&policy);
        assert_eq!((portable.metadata.annotations, portable.metadata.labels), (None, None));
        assert_eq!(portable.status, None);
        assert_eq!(portable.spec, policy.spec);
        assert_eq!(portable.metadata.uid, None);
    }
}

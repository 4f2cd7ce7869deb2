//! Comparing live policies with files: what `policy import` would change, as a unified diff
//! of the portable YAML. Compared are the spec (whole: the file is the truth), and the labels
//! and annotations that are ours: those the file sets and those `policy import`'s field
//! manager owns on the live object (it would remove them). Labels and annotations other tools
//! own, and bookkeeping annotations, are not compared: import leaves them alone.

use super::documents::PolicyDocument;
use super::{FIELD_MANAGER, key, portable};
use crate::api::DevOpsPolicy;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};

/// How a policy differs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Drift {
    /// In the files, not in the cluster.
    New,
    /// In both, different.
    Changed,
    /// In the cluster (in a namespace the files cover), not in the files.
    Missing,
}

/// One policy's difference: `namespace/name`, how, and the unified diff (live -> file).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyDiff {
    pub key: String,
    pub drift: Drift,
    pub text: String,
}

/// Every difference between the live policies of `namespaces` and the files' policies,
/// sorted by `namespace/name`; empty when they agree.
pub fn compare(live: &[DevOpsPolicy], files: &[PolicyDocument], namespaces: &[String]) -> Vec<PolicyDiff> {
    let live_by_key: BTreeMap<String, &DevOpsPolicy> = live.iter().map(|p| (key(p), p)).collect();
    let mut diffs = Vec::new();
    for document in files {
        let name = key(&document.policy);
        let new = yaml(&document.policy);
        let (old, drift) = match live_by_key.get(&name) {
            Some(current) => (yaml(&comparable(current, &document.policy)), Drift::Changed),
            None => (String::new(), Drift::New),
        };
        if old != new {
            let from = if drift == Drift::New { "(not in the cluster)".to_string() } else { format!("live/{name}") };
            diffs.push(PolicyDiff { key: name, drift, text: unified(&old, &new, &from, &document.source) });
        }
    }
    let in_files: BTreeSet<String> = files.iter().map(|d| key(&d.policy)).collect();
    for (name, current) in &live_by_key {
        let namespace = current.metadata.namespace.as_deref().unwrap_or_default();
        if !in_files.contains(name) && namespaces.iter().any(|ns| ns == namespace) {
            let text = unified(&yaml(&portable(current)), "", &format!("live/{name}"), "(not in the files)");
            diffs.push(PolicyDiff { key: name.clone(), drift: Drift::Missing, text });
        }
    }
    diffs.sort_by(|a, b| a.key.cmp(&b.key));
    diffs
}

/// The live policy as the file's counterpart is compared with it.
fn comparable(live: &DevOpsPolicy, file: &DevOpsPolicy) -> DevOpsPolicy {
    let mut policy = portable(live);
    let (owned_labels, owned_annotations) = owned_metadata(live, FIELD_MANAGER);
    let keep = |map: &mut Option<BTreeMap<String, String>>,
                ours: &Option<BTreeMap<String, String>>,
                owned: &BTreeSet<String>| {
        if let Some(entries) = map {
            entries.retain(|k, _| owned.contains(k) || ours.as_ref().is_some_and(|o| o.contains_key(k)));
            if entries.is_empty() {
                *map = None;
            }
        }
    };
    keep(&mut policy.metadata.labels, &file.metadata.labels, &owned_labels);
    keep(&mut policy.metadata.annotations, &file.metadata.annotations, &owned_annotations);
    policy
}

/// The label and annotation keys `manager` owns on an object, from its managedFields.
pub fn owned_metadata(policy: &DevOpsPolicy, manager: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let (mut labels, mut annotations) = (BTreeSet::new(), BTreeSet::new());
    for entry in policy.metadata.managed_fields.iter().flatten() {
        if entry.manager.as_deref() != Some(manager) {
            continue;
        }
        let Some(fields) = &entry.fields_v1 else { continue };
        let metadata = &fields.0["f:metadata"];
        for (set, field) in [(&mut labels, "f:labels"), (&mut annotations, "f:annotations")] {
            if let Some(map) = metadata[field].as_object() {
                set.extend(map.keys().filter_map(|k| k.strip_prefix("f:")).map(str::to_string));
            }
        }
    }
    (labels, annotations)
}

/// A merge patch that removes the spec fields `live` has and `desired` has not (fields another
/// field manager owns, which a server-side apply leaves in place); None when there are none.
pub fn removal_patch(live: &DevOpsPolicy, desired: &DevOpsPolicy) -> Option<Value> {
    let live = serde_json::to_value(&live.spec).ok()?;
    let desired = serde_json::to_value(&desired.spec).ok()?;
    let removals = removals(&live, &desired)?;
    Some(serde_json::json!({ "spec": removals }))
}

fn removals(live: &Value, desired: &Value) -> Option<Value> {
    let (Some(live), Some(desired)) = (live.as_object(), desired.as_object()) else { return None };
    let mut patch = Map::new();
    for (field, value) in live {
        match desired.get(field) {
            None => {
                patch.insert(field.clone(), Value::Null);
            }
            Some(wanted) => {
                if let Some(nested) = removals(value, wanted) {
                    patch.insert(field.clone(), nested);
                }
            }
        }
    }
    (!patch.is_empty()).then_some(Value::Object(patch))
}

fn yaml(policy: &DevOpsPolicy) -> String {
    crate::yaml::to_yaml(policy).expect("a policy serializes")
}

/// A unified diff with three lines of context.
fn unified(old: &str, new: &str, from: &str, to: &str) -> String {
    similar::TextDiff::from_lines(old, new).unified_diff().context_radius(3).header(from, to).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::bundles::{Bundle, BundleName};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{FieldsV1, ManagedFieldsEntry};

    fn policy(namespace: &str, name: &str) -> DevOpsPolicy {
        let mut policy = Bundle::of(BundleName::Baseline).policy(namespace, Some(name.into()));
        policy.metadata.labels = Some(BTreeMap::from([("team".to_string(), "a".to_string())]));
        policy
    }

    fn file(policy: &DevOpsPolicy) -> PolicyDocument {
        PolicyDocument { source: "p.yaml#1".into(), policy: portable(policy) }
    }

    /// The live object after `policy import` applied `policy`: our manager owns its labels.
    fn applied(policy: &DevOpsPolicy) -> DevOpsPolicy {
        let mut live = policy.clone();
        live.metadata.resource_version = Some("7".into());
        let labels: Map<String, Value> =
            policy.metadata.labels.iter().flatten().map(|(k, _)| (format!("f:{k}"), serde_json::json!({}))).collect();
        live.metadata.managed_fields = Some(vec![ManagedFieldsEntry {
            manager: Some(FIELD_MANAGER.into()),
            operation: Some("Apply".into()),
            fields_v1: Some(FieldsV1(serde_json::json!({"f:metadata": {"f:labels": labels}}))),
            ..Default::default()
        }]);
        live
    }

    #[test]
    fn identical_policies_have_no_diff_whatever_others_added() {
        let wanted = policy("shop", "a");
        let mut live = applied(&wanted);
        live.metadata.annotations = Some(BTreeMap::from([
            (super::super::EXPORTED_AT.to_string(), "2026-01-01T00:00:00Z".to_string()),
            ("argocd.argoproj.io/tracking-id".to_string(), "x".to_string()),
        ]));
        live.metadata.labels.as_mut().unwrap().insert("added-by-someone".into(), "y".into());
        assert_eq!(compare(&[live], &[file(&wanted)], &["shop".into()]), []);
    }

    #[test]
    fn a_changed_spec_and_an_owned_label_show_as_a_unified_diff() {
        let before = policy("shop", "a");
        let live = applied(&before);
        let mut wanted = before.clone();
        wanted.spec.max_restart_count = Some(3);
        wanted.metadata.labels = None;
        let diffs = compare(&[live], &[file(&wanted)], &["shop".into()]);
        assert_eq!(diffs.len(), 1);
        assert_eq!(diffs[0].drift, Drift::Changed);
        let text = &diffs[0].text;
        assert!(text.starts_with("--- live/shop/a\n+++ p.yaml#1\n@@ "), "{text}");
        assert!(text.contains("\n-    team: a\n"), "{text}");
        assert!(text.contains("\n+  maxRestartCount: 3\n"), "{text}");
    }

    #[test]
    fn new_and_missing_policies_are_reported_in_the_namespaces_the_files_cover() {
        let files = [file(&policy("shop", "new"))];
        let live = [applied(&policy("shop", "old")), applied(&policy("batch", "elsewhere"))];
        let diffs = compare(&live, &files, &["shop".into()]);
        let kinds: Vec<(&str, Drift)> = diffs.iter().map(|d| (d.key.as_str(), d.drift)).collect();
        assert_eq!(kinds, [("shop/new", Drift::New), ("shop/old", Drift::Missing)]);
        assert!(diffs[0].text.starts_with("--- (not in the cluster)\n+++ p.yaml#1\n"), "{}", diffs[0].text);
        assert!(diffs[1].text.contains("+++ (not in the files)\n"), "{}", diffs[1].text);
        assert!(diffs[1].text.contains("\n-  name: old\n"), "{}", diffs[1].text);
    }

    #[test]
    fn removal_patch_nulls_the_fields_only_the_live_object_has() {
        let wanted = policy("shop", "a");
        let mut live = wanted.clone();
        assert_eq!(removal_patch(&live, &wanted), None);
        live.spec.require_resources = Some(true);
        live.spec.severity_overrides =
            Some(crate::api::SeverityOverrides { pending: Some(crate::api::Severity::Low), ..Default::default() });
        let mut with_overrides = wanted.clone();
        with_overrides.spec.severity_overrides = Some(Default::default());
        assert_eq!(
            removal_patch(&live, &with_overrides),
            Some(serde_json::json!({"spec": {"requireResources": null, "severityOverrides": {"pending": null}}}))
        );
    }
}

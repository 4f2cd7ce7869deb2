//! Pod Security admission, as the real built-in plugin does it: a namespace's
//! `pod-security.kubernetes.io/{enforce,audit,warn}` labels pick a level (`privileged`,
//! `baseline`, `restricted`); a pod that fails the enforced level is refused with the real
//! "violates PodSecurity" message, one that fails the warn level gets a warning, one that fails
//! the audit level an audit annotation. Pod templates of workloads (Deployments, ReplicaSets,
//! StatefulSets, DaemonSets, Jobs, CronJobs) get warnings and audit annotations, never a
//! refusal: their pods are refused when the controller creates them.
//!
//! The checks are those of the Pod Security Standards at their latest version, in the real
//! order (baseline checks by name, then restricted ones) with the real wording.

mod checks;

use crate::cluster::{Operation, PendingWrite};
use crate::status::ApiError;
use checks::*;
use serde_json::Value;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Privileged,
    Baseline,
    Restricted,
}

/// A level and the version label beside it (`latest` unless set), as messages name them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LevelVersion {
    pub level: Level,
    pub version: String,
}

impl std::fmt::Display for LevelVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let level = match self.level {
            Level::Privileged => "privileged",
            Level::Baseline => "baseline",
            Level::Restricted => "restricted",
        };
        write!(f, "{level}:{}", self.version)
    }
}

/// The three modes of a namespace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    pub enforce: LevelVersion,
    pub audit: LevelVersion,
    pub warn: LevelVersion,
}

const PREFIX: &str = "pod-security.kubernetes.io/";

/// The policy of a namespace with these labels. An unknown level falls back to `restricted`,
/// the most restrictive, as the real plugin does with a label it cannot parse.
pub fn policy(labels: &Value) -> Policy {
    let mode = |mode: &str| {
        let level = match labels[format!("{PREFIX}{mode}")].as_str() {
            None | Some("privileged") => Level::Privileged,
            Some("baseline") => Level::Baseline,
            Some(_) => Level::Restricted,
        };
        let version = labels[format!("{PREFIX}{mode}-version")].as_str().unwrap_or("latest").to_string();
        LevelVersion { level, version }
    };
    Policy { enforce: mode("enforce"), audit: mode("audit"), warn: mode("warn") }
}

/// Resources whose objects carry a pod template, and where it is.
fn template_path(group: &str, resource: &str) -> Option<&'static [&'static str]> {
    match (group, resource) {
        ("apps", "deployments" | "replicasets" | "statefulsets" | "daemonsets") | ("batch", "jobs") => {
            Some(&["spec", "template"])
        }
        ("batch", "cronjobs") => Some(&["spec", "jobTemplate", "spec", "template"]),
        _ => None,
    }
}

/// One audit annotation, as the real server adds it to the request's audit event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditAnnotation {
    pub resource: String,
    pub namespace: String,
    pub name: String,
    pub key: String,
    pub value: String,
}

/// What admission decided for an allowed write: warnings for the client, annotations for the audit log.
#[derive(Default)]
pub struct Verdict {
    pub warnings: Vec<String>,
    pub audit: Vec<AuditAnnotation>,
}

/// Evaluates a pod or pod-controller write in a namespace labelled `ns_labels`.
pub fn admit(pending: &PendingWrite, ns_labels: &Value) -> Result<Verdict, ApiError> {
    let rt = &pending.rt;
    let is_pod = rt.group.is_empty() && rt.resource == "pods";
    let template = template_path(&rt.group, &rt.resource);
    if pending.subresource.is_some() || pending.operation == Operation::Delete || (!is_pod && template.is_none()) {
        return Ok(Verdict::default());
    }
    if is_pod
        && let Some(old) = &pending.old
        && !significant_pod_update(&old["spec"], &pending.new["spec"])
    {
        return Ok(Verdict::default());
    }
    let policy = policy(ns_labels);
    let (meta, spec) = match template {
        None => (&pending.new["metadata"], &pending.new["spec"]),
        Some(path) => {
            let template = path.iter().fold(&pending.new, |v, k| &v[*k]);
            if template.is_null() {
                return Ok(Verdict::default());
            }
            (&template["metadata"], &template["spec"])
        }
    };
    let name = pending.new["metadata"]["name"].as_str().unwrap_or_default();
    if is_pod {
        let violations = check(policy.enforce.level, meta, spec);
        if !violations.is_empty() {
            let resource =
                if rt.group.is_empty() { rt.resource.clone() } else { format!("{}.{}", rt.resource, rt.group) };
            return Err(ApiError::forbidden(format!(
                "{resource} \"{name}\" is forbidden: violates PodSecurity \"{}\": {}",
                policy.enforce,
                detail(&violations)
            ))
            .with_details(serde_json::json!({"name": name, "kind": rt.resource})));
        }
    }
    let mut verdict = Verdict::default();
    let audit = check(policy.audit.level, meta, spec);
    if !audit.is_empty() {
        verdict.audit.push(AuditAnnotation {
            resource: rt.resource.clone(),
            namespace: pending.new["metadata"]["namespace"].as_str().unwrap_or_default().to_string(),
            name: name.to_string(),
            key: "pod-security.kubernetes.io/audit-violations".into(),
            value: format!("would violate PodSecurity \"{}\": {}", policy.audit, detail(&audit)),
        });
    }
    let warn = check(policy.warn.level, meta, spec);
    if !warn.is_empty() {
        verdict.warnings.push(format!("would violate PodSecurity \"{}\": {}", policy.warn, detail(&warn)));
    }
    Ok(verdict)
}

/// Only a change of a container image (or of the number of containers) is evaluated again on a
/// pod update: nothing else in a pod's spec that the standards look at can change.
fn significant_pod_update(old: &Value, new: &Value) -> bool {
    let images = |spec: &Value, list: &str| -> Vec<Value> {
        spec[list].as_array().into_iter().flatten().map(|c| c["image"].clone()).collect()
    };
    ["containers", "initContainers", "ephemeralContainers"].iter().any(|list| images(old, list) != images(new, list))
}

/// `reason (detail), reason (detail)`, as the real message lists them.
pub fn detail(violations: &[(String, String)]) -> String {
    let parts: Vec<String> = violations
        .iter()
        .map(|(reason, detail)| if detail.is_empty() { reason.clone() } else { format!("{reason} ({detail})") })
        .collect();
    parts.join(", ")
}

/// The violations of `level` by a pod (metadata and spec), in the order the real plugin reports them.
pub fn check(level: Level, meta: &Value, spec: &Value) -> Vec<(String, String)> {
    if level == Level::Privileged {
        return Vec::new();
    }
    let restricted = level == Level::Restricted;
    // Pods in a user namespace (hostUsers: false) are exempt from some restricted checks.
    let user_namespace = spec["hostUsers"] == Value::Bool(false);
    let mut checks: Vec<Option<(String, String)>> = vec![
        app_armor(meta, spec),
        if restricted { None } else { capabilities_baseline(spec) },
        host_namespaces(spec),
        if restricted { None } else { host_path_volumes(spec) },
        host_ports(spec),
        probe_hosts(spec),
        privileged(spec),
        if restricted || user_namespace { None } else { proc_mount(spec) },
        se_linux(spec),
        if restricted { None } else { seccomp(spec, false) },
        sysctls(spec),
        windows_host_process(spec),
    ];
    if restricted {
        checks.extend([
            allow_privilege_escalation(spec),
            capabilities_restricted(spec),
            proc_mount(spec),
            restricted_volumes(spec),
            if user_namespace { None } else { run_as_non_root(spec) },
            if user_namespace { None } else { run_as_user(spec) },
            seccomp(spec, true),
        ]);
    }
    checks.into_iter().flatten().collect()
}

#[cfg(test)]
mod tests;

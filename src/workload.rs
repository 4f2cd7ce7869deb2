//! Kubernetes objects that run pods, reduced to what the governance engine evaluates.

use crate::governance::PodFacts;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{Pod, PodSpec, PodTemplateSpec, ReplicationController};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::fmt;

/// The kinds whose pods (or pod templates) are evaluated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum WorkloadKind {
    Pod,
    Deployment,
    StatefulSet,
    DaemonSet,
    ReplicaSet,
    ReplicationController,
    Job,
    CronJob,
}

impl WorkloadKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            WorkloadKind::Pod => "Pod",
            WorkloadKind::Deployment => "Deployment",
            WorkloadKind::StatefulSet => "StatefulSet",
            WorkloadKind::DaemonSet => "DaemonSet",
            WorkloadKind::ReplicaSet => "ReplicaSet",
            WorkloadKind::ReplicationController => "ReplicationController",
            WorkloadKind::Job => "Job",
            WorkloadKind::CronJob => "CronJob",
        }
    }
}

impl fmt::Display for WorkloadKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A pod, or a workload's pod template, with the metadata reports need.
#[derive(Clone, Debug, PartialEq)]
pub struct Workload {
    pub kind: WorkloadKind,
    pub name: String,
    /// `None` when the manifest names no namespace (it lands in the client's default).
    pub namespace: Option<String>,
    /// The pod spec (what admission compares across an update).
    pub spec: PodSpec,
    /// What the engine evaluates: the spec, and for a live pod its status and age.
    pub facts: PodFacts,
}

/// How a document was understood.
#[derive(Debug)]
pub enum Classified {
    /// A workload, ready to evaluate.
    Workload(Box<Workload>),
    /// A valid object that runs no pods (Service, ConfigMap, a custom resource...).
    Other { api_version: String, kind: String },
}

/// Why a document could not be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ObjectError {
    #[error("not a Kubernetes object: expected a mapping, found {0}")]
    NotAnObject(&'static str),
    #[error("not a Kubernetes object: missing '{0}'")]
    MissingField(&'static str),
    #[error("unknown kind '{kind}' in {api_version}")]
    UnknownKind { api_version: String, kind: String },
    #[error("invalid {kind}: {message}")]
    Invalid { kind: &'static str, message: String },
    #[error("{kind} '{name}' has no pod template")]
    NoTemplate { kind: &'static str, name: String },
}

/// Kinds of the built-in groups that workloads are looked for in. A kind of these groups that is
/// not listed is a typo (`Deploymnet`), reported rather than silently passed.
const KNOWN_CORE_KINDS: &[&str] = &[
    "Pod",
    "Service",
    "ConfigMap",
    "Secret",
    "ServiceAccount",
    "Namespace",
    "PersistentVolumeClaim",
    "PersistentVolume",
    "Endpoints",
    "LimitRange",
    "ResourceQuota",
    "ReplicationController",
    "Event",
    "Node",
    "PodTemplate",
    "Binding",
    "ComponentStatus",
    "List",
];
const KNOWN_APPS_KINDS: &[&str] = &["Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "ControllerRevision"];
const KNOWN_BATCH_KINDS: &[&str] = &["Job", "CronJob"];

impl Workload {
    /// The namespace the workload runs in (`default` when the manifest names none).
    pub fn namespace_or_default(&self) -> &str {
        self.namespace.as_deref().unwrap_or("default")
    }

    /// A live pod, status included.
    pub fn from_pod(pod: Pod) -> Option<Workload> {
        let spec = pod.spec?;
        let facts = PodFacts::pod(&spec, pod.status.as_ref(), &pod.metadata);
        Some(Workload {
            kind: WorkloadKind::Pod,
            name: pod.metadata.name.unwrap_or_default(),
            namespace: pod.metadata.namespace,
            facts,
            spec,
        })
    }

    /// A workload's pod template; `replicas` when the kind runs a number of them (the
    /// field's value, `None` when unset: the API server's default 1).
    fn from_template(
        kind: WorkloadKind,
        metadata: ObjectMeta,
        template: Option<PodTemplateSpec>,
        replicas: Option<Option<i32>>,
    ) -> Result<Workload, ObjectError> {
        let name = metadata.name.unwrap_or_default();
        let spec = template
            .and_then(|t| t.spec)
            .ok_or_else(|| ObjectError::NoTemplate { kind: kind.as_str(), name: name.clone() })?;
        let facts = match replicas {
            Some(replicas) => PodFacts::replicated_template(&spec, replicas),
            None => PodFacts::template(&spec),
        };
        Ok(Workload { kind, name, namespace: metadata.namespace, facts, spec })
    }

    /// Classifies one decoded document (YAML or JSON) as a workload, another object, or an error.
    pub fn classify(doc: &Value) -> Result<Classified, ObjectError> {
        let Value::Object(map) = doc else {
            return Err(ObjectError::NotAnObject(json_type_name(doc)));
        };
        let field = |name: &'static str| match map.get(name) {
            Some(Value::String(s)) if !s.is_empty() => Ok(s.as_str()),
            _ => Err(ObjectError::MissingField(name)),
        };
        let api_version = field("apiVersion")?;
        let kind = field("kind")?;
        let group = api_version.rsplit_once('/').map_or("", |(group, _)| group);

        let workload = match (group, kind) {
            ("", "Pod") => {
                let pod: Pod = decode(doc, WorkloadKind::Pod)?;
                let name = pod.metadata.name.clone().unwrap_or_default();
                Workload::from_pod(pod).ok_or(ObjectError::NoTemplate { kind: "Pod", name })?
            }
            ("", "ReplicationController") => {
                let rc: ReplicationController = decode(doc, WorkloadKind::ReplicationController)?;
                let replicas = rc.spec.as_ref().map(|s| s.replicas);
                Workload::from_template(
                    WorkloadKind::ReplicationController,
                    rc.metadata,
                    rc.spec.and_then(|s| s.template),
                    Some(replicas.flatten()),
                )?
            }
            ("apps" | "extensions", "Deployment") => {
                let d: Deployment = decode(doc, WorkloadKind::Deployment)?;
                let replicas = d.spec.as_ref().and_then(|s| s.replicas);
                Workload::from_template(
                    WorkloadKind::Deployment,
                    d.metadata,
                    d.spec.map(|s| s.template),
                    Some(replicas),
                )?
            }
            ("apps", "StatefulSet") => {
                let s: StatefulSet = decode(doc, WorkloadKind::StatefulSet)?;
                let replicas = s.spec.as_ref().and_then(|s| s.replicas);
                Workload::from_template(
                    WorkloadKind::StatefulSet,
                    s.metadata,
                    s.spec.map(|s| s.template),
                    Some(replicas),
                )?
            }
            ("apps" | "extensions", "DaemonSet") => {
                let d: DaemonSet = decode(doc, WorkloadKind::DaemonSet)?;
                Workload::from_template(WorkloadKind::DaemonSet, d.metadata, d.spec.map(|s| s.template), None)?
            }
            ("apps" | "extensions", "ReplicaSet") => {
                let r: ReplicaSet = decode(doc, WorkloadKind::ReplicaSet)?;
                let replicas = r.spec.as_ref().and_then(|s| s.replicas);
                Workload::from_template(
                    WorkloadKind::ReplicaSet,
                    r.metadata,
                    r.spec.and_then(|s| s.template),
                    Some(replicas),
                )?
            }
            ("batch", "Job") => {
                let j: Job = decode(doc, WorkloadKind::Job)?;
                Workload::from_template(WorkloadKind::Job, j.metadata, j.spec.map(|s| s.template), None)?
            }
            ("batch", "CronJob") => {
                let c: CronJob = decode(doc, WorkloadKind::CronJob)?;
                let template = c.spec.and_then(|s| s.job_template.spec).map(|s| s.template);
                Workload::from_template(WorkloadKind::CronJob, c.metadata, template, None)?
            }
            ("", _) if !KNOWN_CORE_KINDS.contains(&kind) => return Err(unknown(api_version, kind)),
            ("apps", _) if !KNOWN_APPS_KINDS.contains(&kind) => return Err(unknown(api_version, kind)),
            ("batch", _) if !KNOWN_BATCH_KINDS.contains(&kind) => return Err(unknown(api_version, kind)),
            _ => return Ok(Classified::Other { api_version: api_version.to_string(), kind: kind.to_string() }),
        };
        Ok(Classified::Workload(Box::new(workload)))
    }
}

fn decode<T: DeserializeOwned>(doc: &Value, kind: WorkloadKind) -> Result<T, ObjectError> {
    T::deserialize(doc).map_err(|e| ObjectError::Invalid { kind: kind.as_str(), message: e.to_string() })
}

fn unknown(api_version: &str, kind: &str) -> ObjectError {
    ObjectError::UnknownKind { api_version: api_version.to_string(), kind: kind.to_string() }
}

fn json_type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn classify(doc: serde_json::Value) -> Result<Classified, ObjectError> {
        Workload::classify(&doc)
    }

    fn template(kind: &str, api_version: &str, spec: serde_json::Value) -> serde_json::Value {
        json!({"apiVersion": api_version, "kind": kind, "metadata": {"name": "w", "namespace": "ns"}, "spec": spec})
    }

    #[test]
    fn every_workload_kind_yields_its_pod_template() {
        let pod_template =
            json!({"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "img:1"}]}});
        let selector = json!({"matchLabels": {"a": "b"}});
        let cases = [
            template("Deployment", "apps/v1", json!({"selector": selector, "template": pod_template})),
            template(
                "StatefulSet",
                "apps/v1",
                json!({"selector": selector, "serviceName": "s", "template": pod_template}),
            ),
            template("DaemonSet", "apps/v1", json!({"selector": selector, "template": pod_template})),
            template("ReplicaSet", "apps/v1", json!({"selector": selector, "template": pod_template})),
            template("ReplicationController", "v1", json!({"template": pod_template})),
            template("Job", "batch/v1", json!({"template": pod_template})),
            template(
                "CronJob",
                "batch/v1",
                json!({"schedule": "* * * * *", "jobTemplate": {"spec": {"template": pod_template}}}),
            ),
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "w", "namespace": "ns"}, "spec": pod_template["spec"]}),
        ];
        for doc in cases {
            let kind = doc["kind"].as_str().unwrap().to_string();
            match classify(doc) {
                Ok(Classified::Workload(w)) => {
                    assert_eq!(w.kind.as_str(), kind);
                    assert_eq!((w.name.as_str(), w.namespace_or_default()), ("w", "ns"));
                    assert_eq!(w.spec.containers[0].image.as_deref(), Some("img:1"));
                }
                other => panic!("{kind}: {other:?}"),
            }
        }
    }

    #[test]
    fn non_workloads_and_custom_resources_are_other_objects() {
        for (api_version, kind) in
            [("v1", "Service"), ("v1", "ConfigMap"), ("networking.k8s.io/v1", "Ingress"), ("example.com/v1", "Widget")]
        {
            let doc = json!({"apiVersion": api_version, "kind": kind, "metadata": {"name": "x"}});
            assert!(matches!(classify(doc), Ok(Classified::Other { .. })), "{kind}");
        }
    }

    #[test]
    fn bad_documents_get_clear_errors() {
        assert_eq!(
            classify(json!("hello")).unwrap_err().to_string(),
            "not a Kubernetes object: expected a mapping, found a string"
        );
        assert_eq!(
            classify(json!([1, 2])).unwrap_err().to_string(),
            "not a Kubernetes object: expected a mapping, found a list"
        );
        assert_eq!(
            classify(json!({"kind": "Pod"})).unwrap_err().to_string(),
            "not a Kubernetes object: missing 'apiVersion'"
        );
        assert_eq!(
            classify(json!({"apiVersion": "apps/v1", "kind": "Deploymnet"})).unwrap_err().to_string(),
            "unknown kind 'Deploymnet' in apps/v1"
        );
        let err = classify(json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"}, "spec": {"replicas": "two"}})).unwrap_err();
        assert!(err.to_string().starts_with("invalid Deployment: "), "{err}");
        assert_eq!(
            classify(json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}})).unwrap_err().to_string(),
            "Pod 'p' has no pod template"
        );
    }
}

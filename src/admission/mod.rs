//! The validating admission webhook: a pure decision ([`decide`]) over an AdmissionRequest and
//! the DevOpsPolicies of its namespace, and the HTTPS server around it ([`server`]).
//!
//! What it decides: objects in system namespaces, deletions, updates that leave the pod
//! template as it was, and pods and Jobs created by a controller (judged as their owner's
//! template) are always allowed (controllers must be able to manage what they own); a Pod or
//! workload template that violates an `enforce` policy is denied, one that violates an `audit`
//! policy is allowed with warnings; anything it cannot read is allowed
//! with a warning (the webhook fails open on its own errors).

pub mod server;

use crate::api::{DevOpsPolicy, EnforcementMode};
use crate::governance::{Rules, Subject, evaluate, is_system_namespace};
use crate::workload::{Classified, Workload};
use k8s_openapi::jiff::Timestamp;
use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, Operation};

/// At most this many warnings are returned (the API server truncates long lists anyway).
const MAX_WARNINGS: usize = 10;

/// What the webhook answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// Why the request was denied.
    pub message: Option<String>,
    pub warnings: Vec<String>,
    /// The checks an `enforce` policy denied the request for (sorted, each once): the
    /// `violation` label of `webhook_denials_total`.
    pub violations: Vec<&'static str>,
}

impl Decision {
    fn allow() -> Decision {
        Decision { allowed: true, message: None, warnings: Vec::new(), violations: Vec::new() }
    }

    fn allow_with_warning(warning: String) -> Decision {
        Decision { allowed: true, message: None, warnings: vec![warning], violations: Vec::new() }
    }

    /// The AdmissionResponse for `request`.
    pub fn into_response(self, request: &AdmissionRequest<DynamicObject>) -> AdmissionResponse {
        let mut response = AdmissionResponse::from(request);
        if !self.allowed {
            response = response.deny(self.message.unwrap_or_default());
            response.result.code = 403;
            response.result.reason = "Forbidden".into();
        }
        if !self.warnings.is_empty() {
            response.warnings = Some(self.warnings);
        }
        response
    }
}

fn workload(object: Option<&DynamicObject>) -> Result<Option<Workload>, String> {
    let Some(object) = object else { return Ok(None) };
    let value = serde_json::to_value(object).map_err(|e| e.to_string())?;
    match Workload::classify(&value) {
        Ok(Classified::Workload(w)) => Ok(Some(*w)),
        Ok(Classified::Other { .. }) => Ok(None),
        Err(e) => Err(e.to_string()),
    }
}

/// Decides on `request` given the DevOpsPolicies of its namespace.
pub fn decide(request: &AdmissionRequest<DynamicObject>, policies: &[DevOpsPolicy], now: Timestamp) -> Decision {
    let namespace = request.namespace.as_deref().unwrap_or("default");
    if is_system_namespace(namespace) || policies.is_empty() {
        return Decision::allow();
    }
    let new = match request.operation {
        Operation::Create | Operation::Update => workload(request.object.as_ref()),
        Operation::Delete | Operation::Connect => return Decision::allow(),
    };
    // A pod created by a controller, or a Job created by a CronJob, was judged as its owner's
    // template; denying it here would only stall the controller (a ReplicaSet that cannot
    // create pods, a CronJob whose runs stop) out of sight.
    if request.object.as_ref().is_some_and(|o| {
        o.types.as_ref().is_some_and(|t| t.kind == "Pod" || t.kind == "Job")
            && o.metadata.owner_references.as_ref().is_some_and(|refs| refs.iter().any(|r| r.controller == Some(true)))
    }) {
        return Decision::allow();
    }
    let new = match new {
        Ok(Some(w)) => w,
        Ok(None) => return Decision::allow(),
        Err(e) => return Decision::allow_with_warning(format!("kube-devops could not read the object ({e}); allowed")),
    };
    if request.operation == Operation::Update
        && let Ok(Some(old)) = workload(request.old_object.as_ref())
        && old.spec == new.spec
    {
        // Metadata, status and scale changes of existing objects are never blocked.
        return Decision::allow();
    }
    let subject = Subject::template(&new.spec);
    let mut denials = Vec::new();
    let mut warnings = Vec::new();
    let mut violations = Vec::new();
    for policy in policies {
        let name = policy.metadata.name.as_deref().unwrap_or("unnamed");
        let findings = evaluate(subject, &Rules::from_spec(&policy.spec), now);
        if findings.is_empty() {
            continue;
        }
        let messages: Vec<String> = findings.iter().map(|f| f.message()).collect();
        match policy.spec.enforcement_mode.unwrap_or_default() {
            EnforcementMode::Enforce => {
                denials.push(format!("DevOpsPolicy {name}: {}", messages.join("; ")));
                violations.extend(findings.iter().map(|f| f.check.as_str()));
            }
            EnforcementMode::Audit => {
                warnings.extend(messages.into_iter().map(|m| format!("DevOpsPolicy {name} (audit): {m}")));
            }
        }
    }
    warnings.truncate(MAX_WARNINGS);
    if denials.is_empty() {
        return Decision { allowed: true, message: None, warnings, violations };
    }
    violations.sort_unstable();
    violations.dedup();
    Decision { allowed: false, message: Some(format!("Denied by {}", denials.join(". "))), warnings, violations }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::DevOpsPolicySpec;
    use kube::core::admission::AdmissionReview;
    use serde_json::{Value, json};

    fn policy(name: &str, mode: EnforcementMode) -> DevOpsPolicy {
        let spec = DevOpsPolicySpec {
            forbid_latest_tag: Some(true),
            require_readiness_probe: Some(true),
            enforcement_mode: Some(mode),
            ..Default::default()
        };
        let mut p = DevOpsPolicy::new(name, spec);
        p.metadata.namespace = Some("shop".into());
        p
    }

    fn pod(image: &str) -> Value {
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": "shop"},
            "spec": {"containers": [{"name": "web", "image": image, "readinessProbe": {"tcpSocket": {"port": 80}}}]}})
    }

    fn request(operation: &str, namespace: &str, object: Value, old: Value) -> AdmissionRequest<DynamicObject> {
        let kind = object["kind"].as_str().unwrap_or("Pod").to_string();
        let review: AdmissionReview<DynamicObject> = serde_json::from_value(json!({
            "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {"uid": "1", "kind": {"group": "", "version": "v1", "kind": kind},
                "resource": {"group": "", "version": "v1", "resource": "pods"}, "name": "web", "namespace": namespace,
                "operation": operation, "userInfo": {"username": "u"}, "object": object, "oldObject": old}
        }))
        .unwrap();
        review.try_into().unwrap()
    }

    fn now() -> Timestamp {
        "2026-11-26T12:00:00Z".parse().unwrap()
    }

    #[test]
    fn enforce_denies_audit_warns_and_compliant_passes() {
        let bad = request("CREATE", "shop", pod("nginx:latest"), Value::Null);
        let d = decide(&bad, &[policy("strict", EnforcementMode::Enforce)], now());
        assert!(!d.allowed);
        assert_eq!(d.message.as_deref(), Some("Denied by DevOpsPolicy strict: container 'web' uses :latest tag"));
        assert_eq!(d.violations, ["latest_tag"]);
        let d = decide(&bad, &[policy("watching", EnforcementMode::Audit)], now());
        assert!(d.allowed);
        assert!(d.violations.is_empty(), "audit findings deny nothing");
        assert_eq!(d.warnings, ["DevOpsPolicy watching (audit): container 'web' uses :latest tag"]);
        let good = request("CREATE", "shop", pod("nginx:1.27.3"), Value::Null);
        assert_eq!(decide(&good, &[policy("strict", EnforcementMode::Enforce)], now()), Decision::allow());
    }

    #[test]
    fn workload_templates_are_judged_before_any_pod_exists() {
        let deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "shop"},
            "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": {"metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "nginx"}]}}}});
        let d = decide(
            &request("CREATE", "shop", deployment, Value::Null),
            &[policy("strict", EnforcementMode::Enforce)],
            now(),
        );
        assert!(!d.allowed);
        let message = d.message.unwrap();
        assert!(message.contains("uses :latest tag") && message.contains("missing readiness probe"), "{message}");
    }

    #[test]
    fn what_must_never_be_blocked_is_allowed() {
        let strict = [policy("strict", EnforcementMode::Enforce)];
        // System namespaces.
        assert!(decide(&request("CREATE", "kube-system", pod("nginx:latest"), Value::Null), &strict, now()).allowed);
        // Deletes, and updates that leave the spec alone (labels, finalizers, GC).
        assert!(decide(&request("DELETE", "shop", Value::Null, pod("nginx:latest")), &strict, now()).allowed);
        let mut relabelled = pod("nginx:latest");
        relabelled["metadata"]["labels"] = json!({"new": "label"});
        assert!(decide(&request("UPDATE", "shop", relabelled, pod("nginx:latest")), &strict, now()).allowed);
        // An update that changes the spec is judged.
        assert!(!decide(&request("UPDATE", "shop", pod("nginx:latest"), pod("nginx:1.27")), &strict, now()).allowed);
        // Pods of a controller were judged through their workload.
        let mut owned = pod("nginx:latest");
        owned["metadata"]["ownerReferences"] =
            json!([{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-1", "uid": "u", "controller": true}]);
        assert!(decide(&request("CREATE", "shop", owned, Value::Null), &strict, now()).allowed);
        // So were the Jobs of a CronJob; a Job of its own is judged.
        let mut job = json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "nightly-1"},
            "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "tool:latest"}]}}}});
        assert!(!decide(&request("CREATE", "shop", job.clone(), Value::Null), &strict, now()).allowed);
        job["metadata"]["ownerReferences"] =
            json!([{"apiVersion": "batch/v1", "kind": "CronJob", "name": "nightly", "uid": "u", "controller": true}]);
        assert!(decide(&request("CREATE", "shop", job, Value::Null), &strict, now()).allowed);
        // No policy, or an object it cannot read: allowed (fail open), with a warning for the latter.
        assert!(decide(&request("CREATE", "shop", pod("nginx:latest"), Value::Null), &[], now()).allowed);
        let unreadable =
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"}, "spec": {"containers": "nope"}});
        let d = decide(&request("CREATE", "shop", unreadable, Value::Null), &strict, now());
        assert!(d.allowed);
        assert!(d.warnings[0].starts_with("kube-devops could not read the object"), "{:?}", d.warnings);
    }

    #[test]
    fn a_denial_becomes_a_403_response_with_the_request_uid() {
        let req = request("CREATE", "shop", pod("nginx:latest"), Value::Null);
        let response = decide(&req, &[policy("strict", EnforcementMode::Enforce)], now()).into_response(&req);
        let review = serde_json::to_value(response.into_review()).unwrap();
        assert_eq!(review["response"]["uid"], "1");
        assert_eq!(review["response"]["allowed"], false);
        assert_eq!(review["response"]["status"]["code"], 403);
    }
}

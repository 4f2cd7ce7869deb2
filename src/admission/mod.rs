//! The validating admission webhook: a pure decision ([`decide`]) over an AdmissionRequest and
//! the DevOpsPolicies of its namespace, and the HTTPS server around it ([`server`]).
//!
//! What it decides: objects in system namespaces, deletions and updates that leave the pod
//! template as it was are always allowed; so are pods, Jobs and ReplicaSets that a controller
//! the cluster vouches for creates for its own workload (the built-in controllers' service
//! accounts, and those the install names): their template was judged when the workload was.
//! An owner reference alone proves nothing (anyone can write one), so anybody else's pod is
//! judged as a bare pod. A Pod or workload template that violates an `enforce` policy is
//! denied, one that violates an `audit` policy is allowed with warnings; debug containers
//! (`kubectl debug`) are allowed with a warning; anything it cannot read is allowed with a
//! warning (the webhook fails open on its own errors).

pub mod server;

use crate::api::{CheckId, DevOpsPolicy, EnforcementMode};
use crate::governance::{Rules, evaluate, is_system_namespace};
use crate::workload::{Classified, Workload};
use k8s_openapi::jiff::Timestamp;
use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, Operation};

/// The identities of kube-controller-manager's controllers that create pods, Jobs and
/// ReplicaSets from the templates of workloads (with `--use-service-account-credentials`, as
/// every common distribution runs it), and the controller manager itself (without it).
pub const BUILT_IN_CONTROLLERS: &[&str] = &[
    "system:serviceaccount:kube-system:replicaset-controller",
    "system:serviceaccount:kube-system:replication-controller",
    "system:serviceaccount:kube-system:deployment-controller",
    "system:serviceaccount:kube-system:job-controller",
    "system:serviceaccount:kube-system:cronjob-controller",
    "system:serviceaccount:kube-system:statefulset-controller",
    "system:serviceaccount:kube-system:daemon-set-controller",
    "system:kube-controller-manager",
];

/// Whose requests to create an object for the workload that controls it are trusted: the
/// built-in controllers and the identities the install lists (`webhook.trustedControllers`,
/// for Argo Rollouts and the like).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrustedControllers {
    extra: Vec<String>,
}

impl TrustedControllers {
    pub fn new(extra: impl IntoIterator<Item = String>) -> TrustedControllers {
        TrustedControllers { extra: extra.into_iter().collect() }
    }

    /// Whether `request` comes from a trusted controller creating an object for the workload
    /// that controls it. A kubelet's mirror pod (owned by its Node) counts too: its spec comes
    /// from the node's own disk.
    fn vouch_for(&self, request: &AdmissionRequest<DynamicObject>) -> bool {
        let Some(owner) = request
            .object
            .as_ref()
            .and_then(|o| o.metadata.owner_references.as_ref()?.iter().find(|r| r.controller == Some(true)).cloned())
        else {
            return false;
        };
        let user = request.user_info.username.as_deref().unwrap_or_default();
        let mirror_pod = user.starts_with("system:node:") && owner.kind == "Node";
        BUILT_IN_CONTROLLERS.contains(&user) || self.extra.iter().any(|t| t == user) || mirror_pod
    }
}

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
    pub violations: Vec<CheckId>,
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
pub fn decide(
    request: &AdmissionRequest<DynamicObject>,
    policies: &[DevOpsPolicy],
    trusted: &TrustedControllers,
    now: Timestamp,
) -> Decision {
    let namespace = request.namespace.as_deref().unwrap_or("default");
    if is_system_namespace(namespace) || policies.is_empty() {
        return Decision::allow();
    }
    let new = match request.operation {
        Operation::Create | Operation::Update => workload(request.object.as_ref()),
        Operation::Delete | Operation::Connect => return Decision::allow(),
    };
    if request.sub_resource.as_deref() == Some("ephemeralcontainers") {
        return debug_containers(request, policies);
    }
    // A pod a ReplicaSet's controller creates, a Job of a CronJob, a ReplicaSet of a
    // Deployment: judged as their owner's template; denying them here would only stall the
    // controller out of sight.
    if request.operation == Operation::Create && trusted.vouch_for(request) {
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
    let facts = &new.facts;
    let mut denials = Vec::new();
    let mut warnings = Vec::new();
    let mut violations = Vec::new();
    for policy in policies {
        let name = policy.metadata.name.as_deref().unwrap_or("unnamed");
        let findings = evaluate(facts, &Rules::from_spec(&policy.spec), now);
        if findings.is_empty() {
            continue;
        }
        let messages: Vec<String> = findings.iter().map(|f| f.message()).collect();
        match policy.spec.enforcement_mode.unwrap_or_default() {
            EnforcementMode::Enforce => {
                denials.push(format!("DevOpsPolicy {name}: {}", messages.join("; ")));
                violations.extend(findings.iter().map(|f| f.check));
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

/// `kubectl debug` adds an ephemeral container through the `pods/ephemeralcontainers`
/// subresource: debugging must stay possible, so it is allowed, with a warning that the
/// namespace's policies do not apply to it.
fn debug_containers(request: &AdmissionRequest<DynamicObject>, policies: &[DevOpsPolicy]) -> Decision {
    let images: Vec<String> = request
        .object
        .as_ref()
        .and_then(|o| o.data.pointer("/spec/ephemeralContainers")?.as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|c| Some(format!("{} ({})", c["name"].as_str()?, c["image"].as_str().unwrap_or("no image"))))
        .collect();
    let names: Vec<&str> = policies.iter().filter_map(|p| p.metadata.name.as_deref()).collect();
    Decision::allow_with_warning(format!(
        "debug containers {} are allowed: DevOpsPolicy {} does not judge ephemeral containers",
        images.join(", "),
        names.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::DevOpsPolicySpec;
    use crate::fixtures::TestPod;
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
        TestPod::new("web").container("web", image).ready_probe().json()
    }

    fn request(operation: &str, namespace: &str, object: Value, old: Value) -> AdmissionRequest<DynamicObject> {
        request_by("jane@example.com", operation, namespace, object, old)
    }

    fn request_by(
        user: &str,
        operation: &str,
        namespace: &str,
        object: Value,
        old: Value,
    ) -> AdmissionRequest<DynamicObject> {
        let kind = object["kind"].as_str().or(old["kind"].as_str()).unwrap_or("Pod").to_string();
        let review: AdmissionReview<DynamicObject> = serde_json::from_value(json!({
            "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {"uid": "1", "kind": {"group": "", "version": "v1", "kind": kind},
                "resource": {"group": "", "version": "v1", "resource": "pods"}, "name": "web", "namespace": namespace,
                "operation": operation, "userInfo": {"username": user}, "object": object, "oldObject": old}
        }))
        .unwrap();
        review.try_into().unwrap()
    }

    fn decide(request: &AdmissionRequest<DynamicObject>, policies: &[DevOpsPolicy], now: Timestamp) -> Decision {
        super::decide(request, policies, &TrustedControllers::default(), now)
    }

    fn owned_by(object: Value, kind: &str) -> Value {
        TestPod(object).owned_by(kind).json()
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
        assert_eq!(d.violations, [CheckId::LatestTag]);
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
    fn the_whole_catalogue_judges_at_admission() {
        let mut hardened = policy("hardened", EnforcementMode::Enforce);
        hardened.spec.security.get_or_insert_default().forbid_privileged = Some(true);
        hardened.spec.host_access.get_or_insert_default().forbid_host_network = Some(true);
        hardened.spec.reliability.get_or_insert_default().forbid_single_replica = Some(true);
        let mut privileged = pod("nginx:1.27.3");
        privileged["spec"]["hostNetwork"] = json!(true);
        privileged["spec"]["containers"][0]["securityContext"] = json!({"privileged": true});
        let d = decide(&request("CREATE", "shop", privileged, Value::Null), std::slice::from_ref(&hardened), now());
        assert!(!d.allowed);
        assert_eq!(d.violations, [CheckId::Privileged, CheckId::HostNetwork]);
        let message = d.message.unwrap();
        assert!(message.contains("container 'web' is privileged"), "{message}");
        // A Deployment of one replica is refused; of two, admitted.
        let deployment = |replicas: i64| {
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "shop"},
                "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}}, "template": {
                    "metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": "nginx:1.27.3",
                        "readinessProbe": {"httpGet": {"path": "/", "port": 80}}}]}}}})
        };
        let one =
            decide(&request("CREATE", "shop", deployment(1), Value::Null), std::slice::from_ref(&hardened), now());
        assert_eq!(one.violations, [CheckId::SingleReplica]);
        let two =
            decide(&request("CREATE", "shop", deployment(2), Value::Null), std::slice::from_ref(&hardened), now());
        assert!(two.allowed, "{two:?}");
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
        // Pods the ReplicaSet controller creates were judged through their workload.
        let replicaset_controller = "system:serviceaccount:kube-system:replicaset-controller";
        let owned = owned_by(pod("nginx:latest"), "ReplicaSet");
        assert!(
            decide(&request_by(replicaset_controller, "CREATE", "shop", owned, Value::Null), &strict, now()).allowed
        );
        // So were the Jobs the CronJob controller creates; a Job of its own is judged.
        let mut job = json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "nightly-1"},
            "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "tool:latest"}]}}}});
        assert!(!decide(&request("CREATE", "shop", job.clone(), Value::Null), &strict, now()).allowed);
        job["metadata"]["ownerReferences"] =
            json!([{"apiVersion": "batch/v1", "kind": "CronJob", "name": "nightly", "uid": "u", "controller": true}]);
        let cronjob_controller = "system:serviceaccount:kube-system:cronjob-controller";
        assert!(decide(&request_by(cronjob_controller, "CREATE", "shop", job, Value::Null), &strict, now()).allowed);
        // No policy, or an object it cannot read: allowed (fail open), with a warning for the latter.
        assert!(decide(&request("CREATE", "shop", pod("nginx:latest"), Value::Null), &[], now()).allowed);
        let unreadable =
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"}, "spec": {"containers": "nope"}});
        let d = decide(&request("CREATE", "shop", unreadable, Value::Null), &strict, now());
        assert!(d.allowed);
        assert!(d.warnings[0].starts_with("kube-devops could not read the object"), "{:?}", d.warnings);
    }

    #[test]
    fn an_owner_reference_anyone_can_write_does_not_skip_the_policy() {
        let strict = [policy("strict", EnforcementMode::Enforce)];
        // A bare pod carrying a copied ReplicaSet reference, sent by a person or another
        // service account: judged as a bare pod.
        for user in
            ["jane@example.com", "system:serviceaccount:shop:deployer", "system:serviceaccount:kube-system:default"]
        {
            let forged = request_by(user, "CREATE", "shop", owned_by(pod("nginx:latest"), "ReplicaSet"), Value::Null);
            assert!(!decide(&forged, &strict, now()).allowed, "{user}");
        }
        // A trusted controller's pod without an owner is judged too.
        let bare = request_by(BUILT_IN_CONTROLLERS[0], "CREATE", "shop", pod("nginx:latest"), Value::Null);
        assert!(!decide(&bare, &strict, now()).allowed);
        // Every built-in controller, and the identities the install trusts.
        for controller in BUILT_IN_CONTROLLERS {
            let made =
                request_by(controller, "CREATE", "shop", owned_by(pod("nginx:latest"), "ReplicaSet"), Value::Null);
            assert!(decide(&made, &strict, now()).allowed, "{controller}");
        }
        let rollouts = "system:serviceaccount:argo-rollouts:argo-rollouts";
        let made = request_by(rollouts, "CREATE", "shop", owned_by(pod("nginx:latest"), "ReplicaSet"), Value::Null);
        assert!(!decide(&made, &strict, now()).allowed, "not trusted unless listed");
        let trusted = TrustedControllers::new([rollouts.to_string()]);
        assert!(super::decide(&made, &strict, &trusted, now()).allowed);
        // A kubelet's mirror pod is owned by its Node; a Node reference from anyone else is not.
        let mirror = owned_by(pod("nginx:latest"), "Node");
        assert!(
            decide(&request_by("system:node:worker-1", "CREATE", "shop", mirror.clone(), Value::Null), &strict, now())
                .allowed
        );
        assert!(!decide(&request("CREATE", "shop", mirror, Value::Null), &strict, now()).allowed);
    }

    #[test]
    fn changing_a_pods_image_is_judged_like_a_create_and_debug_containers_warn() {
        let strict = [policy("strict", EnforcementMode::Enforce)];
        // `kubectl set image pod/web web=nginx:latest`, even on a ReplicaSet's pod.
        let set_image = request(
            "UPDATE",
            "shop",
            owned_by(pod("nginx:latest"), "ReplicaSet"),
            owned_by(pod("nginx:1.27"), "ReplicaSet"),
        );
        let d = decide(&set_image, &strict, now());
        assert!(!d.allowed);
        assert_eq!(d.violations, [CheckId::LatestTag]);
        // `kubectl debug`: allowed, with a warning naming the container and the policy.
        let mut debugged = pod("nginx:1.27");
        debugged["spec"]["ephemeralContainers"] = json!([{"name": "debugger-x1", "image": "busybox:latest"}]);
        let mut review = request("UPDATE", "shop", debugged, pod("nginx:1.27"));
        review.sub_resource = Some("ephemeralcontainers".into());
        let d = decide(&review, &strict, now());
        assert!(d.allowed);
        assert_eq!(
            d.warnings,
            [
                "debug containers debugger-x1 (busybox:latest) are allowed: DevOpsPolicy strict does not judge ephemeral containers"
            ]
        );
        assert!(decide(&review, &[], now()).warnings.is_empty(), "no policy, nothing to say");
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

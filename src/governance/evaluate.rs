//! The one evaluator: a pod, or a workload's pod template, against a policy's rules.

use super::checks::{Detail, Finding, MissingResources};
use super::facts::{ContainerFacts, ContainerKind, PodFacts, PodSettings, PullPolicy, Security, Waiting};
use super::image::ImagePin;
use super::rules::Rules;
use crate::api::CheckId;
use k8s_openapi::jiff::Timestamp;

/// Evaluates `pod` against `rules`, appending every finding to `out` (cleared first), so that
/// callers evaluating many pods reuse one buffer. `now` is the time Pending is measured to.
pub fn evaluate_into<'a>(pod: &'a PodFacts, rules: &Rules, now: Timestamp, out: &mut Vec<Finding<'a>>) {
    evaluate_replicated(pod, pod.replicas, rules, now, out)
}

/// [`evaluate_into`] for a pod whose workload runs `replicas` (an assessment of live pods
/// counts them; a template says them).
pub fn evaluate_replicated<'a>(
    pod: &'a PodFacts,
    replicas: Option<u32>,
    rules: &Rules,
    now: Timestamp,
    out: &mut Vec<Finding<'a>>,
) {
    out.clear();
    // Findings are grouped by container, in the pod's order: main, init, ephemeral.
    let probes_expected = !pod.runs_to_completion;
    for container in &pod.containers {
        check_image(rules, container, out);
        // Init containers run before the pod is ready and debug containers are not served:
        // probes do not apply to either, and the API server refuses resources and ports on
        // debug ones.
        match container.kind {
            ContainerKind::Main => {
                if probes_expected {
                    check_probes(rules, container, out);
                }
                check_resources(rules, container, out);
                check_host_ports(rules, container, out);
            }
            ContainerKind::Init => {
                check_resources(rules, container, out);
                check_host_ports(rules, container, out);
            }
            ContainerKind::Ephemeral => {}
        }
        // The Pod Security Standards judge every container, debug ones too.
        check_security(rules, container, out);
    }
    check_pod(rules, pod, replicas, out);

    let Some(status) = &pod.status else { return };

    for container in &status.containers {
        let name = Some(&*container.name);
        if let Some(threshold) = rules.max_restart_count
            && container.restarts > threshold
        {
            let detail = Detail::Restarts { count: container.restarts, threshold };
            out.push(finding(rules, CheckId::HighRestarts, name, detail));
        }
        let waiting = match container.waiting {
            Some(Waiting::CrashLoopBackOff) => Some(CheckId::CrashLoop),
            Some(Waiting::ImagePullBackOff | Waiting::ErrImagePull) => Some(CheckId::ImagePullError),
            None => None,
        };
        if let (Some(check), Some(reason)) = (waiting, container.waiting)
            && rules.enabled(check)
        {
            out.push(finding(rules, check, name, Detail::Waiting(reason.as_str())));
        }
        if container.oom_killed && rules.enabled(CheckId::OomKilled) {
            out.push(finding(rules, CheckId::OomKilled, name, Detail::OomKilled));
        }
    }

    if let Some(limit) = rules.forbid_pending_seconds
        && status.pending
        && let Some(created) = pod.created
    {
        let seconds = now.as_second() - created.as_second();
        if seconds > 0 && seconds as u64 > limit {
            out.push(finding(rules, CheckId::Pending, None, Detail::Pending { seconds, limit }));
        }
    }
}

/// Convenience form of [`evaluate_into`] that returns a fresh list.
pub fn evaluate<'a>(pod: &'a PodFacts, rules: &Rules, now: Timestamp) -> Vec<Finding<'a>> {
    let mut out = Vec::new();
    evaluate_into(pod, rules, now, &mut out);
    out
}

fn check_image<'a>(rules: &Rules, container: &'a ContainerFacts, out: &mut Vec<Finding<'a>>) {
    let image = &*container.image;
    let name = Some(&*container.name);
    let parts = &container.image_parts;
    if rules.forbid_latest_tag {
        let explicit = match parts.pin {
            ImagePin::Latest => Some(true),
            ImagePin::Untagged => Some(false),
            ImagePin::Digest | ImagePin::Tag => None,
        };
        if let Some(explicit) = explicit {
            out.push(finding(rules, CheckId::LatestTag, name, Detail::LatestTag { image, explicit }));
        }
    }
    if rules.enabled(CheckId::PullPolicyNotAlways)
        && container.pull_policy != PullPolicy::Always
        && parts.pin != ImagePin::Digest
    {
        let detail = Detail::PullPolicy { image, policy: container.pull_policy.as_str() };
        out.push(finding(rules, CheckId::PullPolicyNotAlways, name, detail));
    }
    if rules.enabled(CheckId::UntrustedRegistry) && !parts.allowed_in(image, &rules.allowed_registries) {
        let registry = parts.registry(image);
        out.push(finding(rules, CheckId::UntrustedRegistry, name, Detail::Registry { image, registry }));
    }
}

fn check_probes<'a>(rules: &Rules, container: &'a ContainerFacts, out: &mut Vec<Finding<'a>>) {
    if rules.require_liveness_probe && !container.liveness_probe {
        out.push(finding(rules, CheckId::MissingLiveness, Some(&container.name), Detail::MissingProbe));
    }
    if rules.require_readiness_probe && !container.readiness_probe {
        out.push(finding(rules, CheckId::MissingReadiness, Some(&container.name), Detail::MissingProbe));
    }
}

/// The split resource checks and the resource each asks for.
const RESOURCE_CHECKS: [(CheckId, u8); 4] = [
    (CheckId::MissingCpuRequest, MissingResources::REQUESTS_CPU),
    (CheckId::MissingCpuLimit, MissingResources::LIMITS_CPU),
    (CheckId::MissingMemoryRequest, MissingResources::REQUESTS_MEMORY),
    (CheckId::MissingMemoryLimit, MissingResources::LIMITS_MEMORY),
];

fn check_resources<'a>(rules: &Rules, container: &'a ContainerFacts, out: &mut Vec<Finding<'a>>) {
    let missing = container.missing_resources;
    if missing.is_empty() {
        return;
    }
    if rules.require_resources {
        out.push(finding(rules, CheckId::MissingResources, Some(&container.name), Detail::MissingResources(missing)));
    }
    for (check, bit) in RESOURCE_CHECKS {
        if rules.enabled(check) && missing.has(bit) {
            let detail = Detail::MissingResources(MissingResources::from_bits(bit));
            out.push(finding(rules, check, Some(&container.name), detail));
        }
    }
}

fn check_host_ports<'a>(rules: &Rules, container: &'a ContainerFacts, out: &mut Vec<Finding<'a>>) {
    if rules.enabled(CheckId::HostPort) {
        for port in &container.host_ports {
            out.push(finding(rules, CheckId::HostPort, Some(&container.name), Detail::HostPort(*port)));
        }
    }
}

/// Security checks that fail when their bit is missing from the container's facts.
const REQUIRED_SECURITY: [(CheckId, u8); 5] = [
    (CheckId::RunAsRootAllowed, Security::NON_ROOT),
    (CheckId::PrivilegeEscalationAllowed, Security::NO_ESCALATION),
    (CheckId::WritableRootFilesystem, Security::READ_ONLY_ROOT),
    (CheckId::CapabilitiesNotDropped, Security::DROPS_ALL),
    (CheckId::MissingSeccompProfile, Security::SECCOMP),
];

fn check_security<'a>(rules: &Rules, container: &'a ContainerFacts, out: &mut Vec<Finding<'a>>) {
    let name = Some(&*container.name);
    let security = container.security;
    if rules.enabled(CheckId::Privileged) && security.has(Security::PRIVILEGED) {
        out.push(finding(rules, CheckId::Privileged, name, Detail::Security));
    }
    for (check, bit) in REQUIRED_SECURITY {
        if rules.enabled(check) && !security.has(bit) {
            let detail = match check == CheckId::RunAsRootAllowed && security.has(Security::ROOT_USER) {
                true => Detail::RootUser,
                false => Detail::Security,
            };
            out.push(finding(rules, check, name, detail));
        }
    }
    if rules.enabled(CheckId::DangerousCapabilities) && !container.dangerous_capabilities.is_empty() {
        let detail = Detail::Capabilities(&container.dangerous_capabilities);
        out.push(finding(rules, CheckId::DangerousCapabilities, name, detail));
    }
}

/// The pod-level checks: host namespaces and paths, the token, replicas and their spread.
fn check_pod<'a>(rules: &Rules, pod: &'a PodFacts, replicas: Option<u32>, out: &mut Vec<Finding<'a>>) {
    let settings = pod.settings;
    for (check, bit, field) in [
        (CheckId::HostNetwork, PodSettings::HOST_NETWORK, "hostNetwork"),
        (CheckId::HostPid, PodSettings::HOST_PID, "hostPID"),
        (CheckId::HostIpc, PodSettings::HOST_IPC, "hostIPC"),
    ] {
        if rules.enabled(check) && settings.has(bit) {
            out.push(finding(rules, check, None, Detail::HostNamespace(field)));
        }
    }
    if rules.enabled(CheckId::HostPath) && !pod.host_path_volumes.is_empty() {
        out.push(finding(rules, CheckId::HostPath, None, Detail::HostPath(&pod.host_path_volumes)));
    }
    if rules.enabled(CheckId::ServiceAccountTokenMounted) && !settings.has(PodSettings::NO_TOKEN) {
        out.push(finding(rules, CheckId::ServiceAccountTokenMounted, None, Detail::TokenMounted));
    }
    let Some(replicas) = replicas else { return };
    if rules.enabled(CheckId::SingleReplica) && replicas == 1 {
        out.push(finding(rules, CheckId::SingleReplica, None, Detail::Replicas(replicas)));
    }
    if rules.enabled(CheckId::MissingTopologySpread) && replicas > 1 && !settings.has(PodSettings::SPREAD) {
        out.push(finding(rules, CheckId::MissingTopologySpread, None, Detail::Replicas(replicas)));
    }
}

fn finding<'a>(rules: &Rules, check: CheckId, container: Option<&'a str>, detail: Detail<'a>) -> Finding<'a> {
    Finding { check, severity: rules.severity(check), container, detail }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Severity;
    use crate::api::policy::DevOpsPolicySpec;
    use crate::fixtures::pod;
    use k8s_openapi::api::core::v1::Pod;
    use serde_json::json;

    fn all_checks() -> Rules {
        Rules::from_spec(&DevOpsPolicySpec {
            forbid_latest_tag: Some(true),
            require_liveness_probe: Some(true),
            require_readiness_probe: Some(true),
            require_resources: Some(true),
            max_restart_count: Some(3),
            forbid_pending_duration: Some(300),
            ..Default::default()
        })
    }

    fn ids(findings: &[Finding<'_>]) -> Vec<(&'static str, Option<String>)> {
        findings.iter().map(|f| (f.check.as_str(), f.container.map(str::to_string))).collect()
    }

    fn now() -> Timestamp {
        "2026-11-26T12:00:00Z".parse().unwrap()
    }

    fn facts(pod: &Pod) -> PodFacts {
        PodFacts::pod(pod.spec.as_ref().unwrap(), pod.status.as_ref(), &pod.metadata)
    }

    fn eval(pod: &Pod, rules: &Rules) -> Vec<(&'static str, Option<String>)> {
        ids(&evaluate(&facts(pod), rules, now()))
    }

    const GOOD_CONTAINER: &str = r#"{"name": "app", "image": "nginx:1.27.3",
        "livenessProbe": {"httpGet": {"path": "/healthz", "port": 80}},
        "readinessProbe": {"httpGet": {"path": "/readyz", "port": 80}},
        "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"cpu": "200m", "memory": "128Mi"}}}"#;

    fn good_container() -> serde_json::Value {
        serde_json::from_str(GOOD_CONTAINER).unwrap()
    }

    #[test]
    fn a_compliant_pod_has_no_findings() {
        let p = pod(json!({"metadata": {"name": "p"}, "spec": {"containers": [good_container()]}}));
        assert_eq!(eval(&p, &all_checks()), []);
    }

    #[test]
    fn a_bare_container_violates_every_spec_check() {
        let p =
            pod(json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "web", "image": "nginx:latest"}]}}));
        let c = Some("web".to_string());
        assert_eq!(
            eval(&p, &all_checks()),
            [
                ("latest_tag", c.clone()),
                ("missing_liveness", c.clone()),
                ("missing_readiness", c.clone()),
                ("missing_resources", c)
            ]
        );
    }

    #[test]
    fn disabled_checks_report_nothing() {
        let p =
            pod(json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "web", "image": "nginx:latest"}]}}));
        assert_eq!(eval(&p, &Rules::from_spec(&DevOpsPolicySpec::default())), []);
    }

    #[test]
    fn untagged_images_and_init_containers_are_checked_and_digests_pass() {
        let mut pinned = good_container();
        pinned["image"] =
            json!("ghcr.io/org/app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
        let mut untagged_init = good_container();
        untagged_init["name"] = json!("init");
        untagged_init["image"] = json!("registry:5000/tools");
        let p = pod(
            json!({"metadata": {"name": "p"}, "spec": {"containers": [pinned], "initContainers": [untagged_init]}}),
        );
        assert_eq!(eval(&p, &all_checks()), [("latest_tag", Some("init".to_string()))]);
    }

    #[test]
    fn init_containers_need_resources_but_not_probes() {
        let p = pod(json!({"metadata": {"name": "p"}, "spec": {
            "containers": [good_container()],
            "initContainers": [{"name": "setup", "image": "busybox:1.36"}]}}));
        assert_eq!(eval(&p, &all_checks()), [("missing_resources", Some("setup".to_string()))]);
    }

    #[test]
    fn run_to_completion_pods_need_no_probes() {
        let p = pod(
            json!({"metadata": {"name": "p"}, "spec": {"restartPolicy": "OnFailure", "containers": [{"name": "job", "image": "busybox:1.36",
            "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}]}}),
        );
        assert_eq!(eval(&p, &all_checks()), []);
    }

    #[test]
    fn a_limit_implies_the_request_but_not_the_other_way_round() {
        let mut c = good_container();
        c["resources"] = json!({"requests": {"cpu": "100m", "memory": "64Mi"}});
        let p = pod(json!({"metadata": {"name": "p"}, "spec": {"containers": [c]}}));
        let template = PodFacts::template(p.spec.as_ref().unwrap());
        let findings: Vec<String> = evaluate(&template, &all_checks(), now()).iter().map(|f| f.message()).collect();
        assert_eq!(findings, ["container 'app' missing resources: limits.cpu, limits.memory"]);
    }

    #[test]
    fn restarts_above_the_threshold_are_flagged_per_container() {
        let p = pod(json!({"metadata": {"name": "p"}, "spec": {"containers": [good_container()]},
            "status": {"phase": "Running", "containerStatuses": [
                {"name": "app", "restartCount": 4, "ready": true, "image": "nginx:1.27.3", "imageID": ""},
                {"name": "other", "restartCount": 3, "ready": true, "image": "nginx:1.27.3", "imageID": ""}]}}));
        assert_eq!(eval(&p, &all_checks()), [("high_restarts", Some("app".to_string()))]);
    }

    #[test]
    fn pending_is_flagged_only_after_the_configured_duration() {
        let pending_since = |created: &str| {
            pod(
                json!({"metadata": {"name": "p", "creationTimestamp": created}, "spec": {"containers": [good_container()]},
                "status": {"phase": "Pending"}}),
            )
        };
        // 5 minutes limit: 4 minutes pending passes, 6 minutes fails.
        assert_eq!(eval(&pending_since("2026-11-26T11:56:00Z"), &all_checks()), []);
        assert_eq!(eval(&pending_since("2026-11-26T11:54:00Z"), &all_checks()), [("pending", None)]);
        let p = facts(&pending_since("2026-11-26T11:54:00Z"));
        let findings = evaluate(&p, &all_checks(), now());
        assert_eq!(findings[0].message(), "pod is in Pending phase for 360s (limit: 300s)");
        // A running pod of the same age is fine.
        let running = pod(
            json!({"metadata": {"name": "p", "creationTimestamp": "2026-11-26T10:00:00Z"}, "spec": {"containers": [good_container()]},
            "status": {"phase": "Running"}}),
        );
        assert_eq!(eval(&running, &all_checks()), []);
    }

    #[test]
    fn templates_are_judged_on_their_spec_only() {
        // Status that would fail the runtime checks is ignored for a template.
        let p = pod(json!({"metadata": {"name": "p", "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"containers": [{"name": "web", "image": "nginx"}]},
            "status": {"phase": "Pending", "containerStatuses": [{"name": "web", "restartCount": 50, "ready": false, "image": "nginx", "imageID": ""}]}}));
        assert_eq!(eval(&p, &all_checks()).len(), 6, "as a live pod it fails all six checks");
        let template = PodFacts::template(p.spec.as_ref().unwrap());
        let findings = evaluate(&template, &all_checks(), now());
        assert_eq!(findings.len(), 4);
        assert!(findings.iter().all(|f| f.check != CheckId::HighRestarts && f.check != CheckId::Pending));
    }

    #[test]
    fn findings_carry_the_policy_severity() {
        let spec = DevOpsPolicySpec {
            forbid_latest_tag: Some(true),
            severity_overrides: Some(crate::api::policy::SeverityOverrides {
                latest_tag: Some(Severity::Critical),
                ..Default::default()
            }),
            ..Default::default()
        };
        let p =
            pod(json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "web", "image": "nginx:latest"}]}}));
        let template = PodFacts::template(p.spec.as_ref().unwrap());
        let findings = evaluate(&template, &Rules::from_spec(&spec), now());
        assert_eq!(findings[0].severity, Severity::Critical);
    }
}

//! The one evaluator: a pod, or a workload's pod template, against a policy's rules.

use super::checks::{CheckId, Detail, Finding, MissingResources};
use super::image::{ImageVersion, image_version};
use super::rules::Rules;
use k8s_openapi::api::core::v1::{Container, ContainerStatus, PodSpec, PodStatus, ResourceRequirements};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

/// What is evaluated: a live pod (spec and status) or a pod template (spec only).
#[derive(Clone, Copy, Debug)]
pub struct Subject<'a> {
    pub spec: &'a PodSpec,
    /// Present for live pods; restarts and Pending need it.
    pub status: Option<&'a PodStatus>,
    /// When the pod was created, for the Pending duration.
    pub created: Option<&'a Time>,
}

impl<'a> Subject<'a> {
    pub fn template(spec: &'a PodSpec) -> Self {
        Subject { spec, status: None, created: None }
    }

    /// Pods that run to completion (restartPolicy Never or OnFailure: Jobs, CronJobs) are not
    /// expected to have probes.
    fn runs_to_completion(&self) -> bool {
        matches!(self.spec.restart_policy.as_deref(), Some("Never" | "OnFailure"))
    }
}

/// Evaluates `subject` against `rules`, appending every finding to `out` (cleared first), so
/// that callers evaluating many pods reuse one buffer. `now` is the time Pending is measured to.
pub fn evaluate_into<'a>(subject: Subject<'a>, rules: &Rules, now: Timestamp, out: &mut Vec<Finding<'a>>) {
    out.clear();
    let spec = subject.spec;
    let init = spec.init_containers.as_deref().unwrap_or_default();
    let ephemeral = spec.ephemeral_containers.as_deref().unwrap_or_default();

    if rules.forbid_latest_tag {
        let images = spec.containers.iter().chain(init).map(|c| (c.name.as_str(), c.image.as_deref()));
        let ephemeral_images = ephemeral.iter().map(|c| (c.name.as_str(), c.image.as_deref()));
        for (name, image) in images.chain(ephemeral_images) {
            let image = image.unwrap_or("");
            let explicit = match image_version(image) {
                ImageVersion::Latest => true,
                ImageVersion::Untagged => false,
                ImageVersion::Digest | ImageVersion::Tag(_) => continue,
            };
            out.push(finding(rules, CheckId::LatestTag, Some(name), Detail::LatestTag { image, explicit }));
        }
    }

    if !subject.runs_to_completion() {
        for container in &spec.containers {
            if rules.require_liveness_probe && container.liveness_probe.is_none() {
                out.push(finding(rules, CheckId::MissingLiveness, Some(&container.name), Detail::MissingProbe));
            }
            if rules.require_readiness_probe && container.readiness_probe.is_none() {
                out.push(finding(rules, CheckId::MissingReadiness, Some(&container.name), Detail::MissingProbe));
            }
        }
    }

    if rules.require_resources {
        for container in spec.containers.iter().chain(init) {
            let missing = missing_resources(container);
            if !missing.is_empty() {
                out.push(finding(
                    rules,
                    CheckId::MissingResources,
                    Some(&container.name),
                    Detail::MissingResources(missing),
                ));
            }
        }
    }

    let Some(status) = subject.status else { return };

    if let Some(threshold) = rules.max_restart_count {
        let statuses: &[ContainerStatus] = status.container_statuses.as_deref().unwrap_or_default();
        let init_statuses: &[ContainerStatus] = status.init_container_statuses.as_deref().unwrap_or_default();
        for cs in statuses.iter().chain(init_statuses) {
            if cs.restart_count > threshold {
                let detail = Detail::Restarts { count: cs.restart_count, threshold };
                out.push(finding(rules, CheckId::HighRestarts, Some(&cs.name), detail));
            }
        }
    }

    if let Some(limit) = rules.forbid_pending_seconds
        && status.phase.as_deref() == Some("Pending")
        && let Some(created) = subject.created
    {
        let seconds = now.as_second() - created.0.as_second();
        if seconds > 0 && seconds as u64 > limit {
            out.push(finding(rules, CheckId::Pending, None, Detail::Pending { seconds, limit }));
        }
    }
}

/// Convenience form of [`evaluate_into`] that returns a fresh list.
pub fn evaluate<'a>(subject: Subject<'a>, rules: &Rules, now: Timestamp) -> Vec<Finding<'a>> {
    let mut out = Vec::new();
    evaluate_into(subject, rules, now, &mut out);
    out
}

fn finding<'a>(rules: &Rules, check: CheckId, container: Option<&'a str>, detail: Detail<'a>) -> Finding<'a> {
    Finding { check, severity: rules.severity(check), container, detail }
}

/// Which cpu/memory requests and limits a container lacks. A limit without a request counts
/// as both: the API server defaults the request to the limit.
fn missing_resources(container: &Container) -> MissingResources {
    let (requests, limits) = match &container.resources {
        Some(ResourceRequirements { requests, limits, .. }) => (requests.as_ref(), limits.as_ref()),
        None => (None, None),
    };
    let has = |map: Option<&std::collections::BTreeMap<String, _>>, key: &str| map.is_some_and(|m| m.contains_key(key));
    let mut bits = 0;
    for (key, request_bit, limit_bit) in [
        ("cpu", MissingResources::REQUESTS_CPU, MissingResources::LIMITS_CPU),
        ("memory", MissingResources::REQUESTS_MEMORY, MissingResources::LIMITS_MEMORY),
    ] {
        let limited = has(limits, key);
        if !limited {
            bits |= limit_bit;
        }
        if !limited && !has(requests, key) {
            bits |= request_bit;
        }
    }
    MissingResources::from_bits(bits)
}

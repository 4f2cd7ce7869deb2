//! What enforcement changes in a workload's pod template, decided from the template and the
//! policy alone (pure). It only adds what is missing and what the policy's own settings say:
//!
//! - resources from `defaultResources`, on containers (and init containers) that set none;
//! - a readiness probe from `defaultProbe`, on the port the policy names or the container's
//!   first declared TCP port (never a guessed one: a container without one gets no probe);
//! - a liveness probe the same way, only when `remediation.livenessProbe` asks for it;
//! - never an image, never a value that is already there.
//!
//! A plan that would leave the template still violating the policy, or another `enforce` policy
//! of the namespace, is not applied: the admission webhook would refuse the patch.

use super::owned::merge;
use crate::api::policy::{DefaultProbe, DefaultResources, DevOpsPolicySpec, RemediationRecord};
use crate::api::{CheckId, DevOpsPolicy};
use crate::governance::{PodFacts, Rules, evaluate};
use k8s_openapi::api::core::v1::{Container, PodSpec, Probe, ResourceRequirements, TCPSocketAction};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// The annotation of a remediated pod template, naming the policy that patched it.
pub const PATCHED_BY: &str = "devops.stochastic.io/patched-by";
/// The annotation that keeps enforcement away from a workload or a whole namespace.
pub const OPT_OUT: &str = "devops.stochastic.io/enforce";
/// The field manager of enforcement's server-side applies (never forced).
pub const FIELD_MANAGER: &str = "kube-devops-enforcer";
/// Workloads patched per minute and policy unless the policy says otherwise.
pub const DEFAULT_RATE: u32 = 5;

/// What to add to one container.
#[derive(Clone, Debug, PartialEq)]
pub struct ContainerChange {
    pub container: String,
    /// Whether it is an init container (resources only).
    pub init: bool,
    pub resources: Option<ResourceRequirements>,
    pub readiness_probe: Option<Probe>,
    pub liveness_probe: Option<Probe>,
}

impl ContainerChange {
    fn is_empty(&self) -> bool {
        self.resources.is_none() && self.readiness_probe.is_none() && self.liveness_probe.is_none()
    }

    /// `app: resources, readinessProbe`.
    pub fn describe(&self) -> String {
        let parts: Vec<&str> = [
            self.resources.as_ref().map(|_| "resources"),
            self.readiness_probe.as_ref().map(|_| "readinessProbe"),
            self.liveness_probe.as_ref().map(|_| "livenessProbe"),
        ]
        .into_iter()
        .flatten()
        .collect();
        format!("{}: {}", self.container, parts.join(", "))
    }
}

/// The plan for one pod template.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Plan {
    pub changes: Vec<ContainerChange>,
    /// The checks the template would still fail after the changes (then nothing is applied).
    pub remaining: Vec<CheckId>,
}

impl Plan {
    /// Whether there is something to apply, and applying it leaves the template compliant.
    pub fn applicable(&self) -> bool {
        !self.changes.is_empty() && self.remaining.is_empty()
    }

    /// `app: resources, readinessProbe; sidecar: resources`.
    pub fn describe(&self) -> String {
        self.changes.iter().map(ContainerChange::describe).collect::<Vec<_>>().join("; ")
    }
}

/// What one round of remediation of a policy did: a record per workload it looked at.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Round {
    pub records: Vec<RemediationRecord>,
    /// Workloads patched.
    pub applied: u32,
    /// Workloads whose patch was refused (a conflict, a validation or admission error).
    pub failed: u32,
}

/// At most this many records in a status (the counts cover all).
pub const MAX_RECORDS: usize = 50;

/// A request and a limit from the policy's values, the missing one from the defaults, never a
/// request above the limit (the API server refuses that): a policy that names only a request
/// of 512Mi gets a limit of 512Mi rather than the default 256Mi.
fn request_and_limit(request: &Option<String>, limit: &Option<String>, defaults: (&str, &str)) -> (Quantity, Quantity) {
    let larger = |a: &str, b: &str| {
        let (va, vb) = (crate::quantity::value(a), crate::quantity::value(b));
        if va >= vb { a.to_string() } else { b.to_string() }
    };
    let smaller = |a: &str, b: &str| {
        let (va, vb) = (crate::quantity::value(a), crate::quantity::value(b));
        if va <= vb { a.to_string() } else { b.to_string() }
    };
    let (request, limit) = match (request, limit) {
        (Some(r), Some(l)) => (r.clone(), l.clone()),
        (Some(r), None) => (r.clone(), larger(r, defaults.1)),
        (None, Some(l)) => (smaller(l, defaults.0), l.clone()),
        (None, None) => (defaults.0.to_string(), defaults.1.to_string()),
    };
    (Quantity(request), Quantity(limit))
}

fn resources(defaults: &DefaultResources) -> ResourceRequirements {
    let (cpu_request, cpu_limit) = request_and_limit(&defaults.cpu_request, &defaults.cpu_limit, ("100m", "500m"));
    let (memory_request, memory_limit) =
        request_and_limit(&defaults.memory_request, &defaults.memory_limit, ("128Mi", "256Mi"));
    let map =
        |cpu: Quantity, memory: Quantity| BTreeMap::from([("cpu".to_string(), cpu), ("memory".to_string(), memory)]);
    ResourceRequirements {
        requests: Some(map(cpu_request, memory_request)),
        limits: Some(map(cpu_limit, memory_limit)),
        ..Default::default()
    }
}

/// The port to probe: the policy's, else the container's first declared TCP port.
fn probe_port(container: &Container, probe: &DefaultProbe) -> Option<i32> {
    probe.tcp_port.or_else(|| {
        container
            .ports
            .iter()
            .flatten()
            .find(|p| p.protocol.as_deref().is_none_or(|proto| proto == "TCP"))
            .map(|p| p.container_port)
    })
}

fn probe(port: i32, defaults: &DefaultProbe) -> Probe {
    Probe {
        tcp_socket: Some(TCPSocketAction { port: IntOrString::Int(port), ..Default::default() }),
        initial_delay_seconds: Some(defaults.initial_delay_seconds.unwrap_or(5)),
        period_seconds: Some(defaults.period_seconds.unwrap_or(10)),
        ..Default::default()
    }
}

fn has_resources(container: &Container) -> bool {
    container.resources.as_ref().is_some_and(|r| {
        r.requests.as_ref().is_some_and(|m| !m.is_empty()) || r.limits.as_ref().is_some_and(|m| !m.is_empty())
    })
}

/// What enforcement would add to `template` under `policy`; `also` are the rules of the
/// namespace's other `enforce` policies, which the admission webhook applies to the patch too.
pub fn plan(template: &PodSpec, policy: &DevOpsPolicySpec, also: &[Rules], now: Timestamp) -> Plan {
    let rules = Rules::from_spec(policy);
    let remediation = policy.remediation.clone().unwrap_or_default();
    let probes_expected = !matches!(template.restart_policy.as_deref(), Some("Never" | "OnFailure"));
    let mut changes = Vec::new();
    let main = template.containers.iter().map(|c| (c, false));
    let init = template.init_containers.iter().flatten().map(|c| (c, true));
    for (container, init) in main.chain(init) {
        let mut change = ContainerChange {
            container: container.name.clone(),
            init,
            resources: None,
            readiness_probe: None,
            liveness_probe: None,
        };
        if rules.require_resources
            && !has_resources(container)
            && let Some(defaults) = &policy.default_resources
        {
            change.resources = Some(resources(defaults));
        }
        if !init
            && probes_expected
            && let Some(defaults) = &policy.default_probe
            && let Some(port) = probe_port(container, defaults)
        {
            if rules.require_readiness_probe && container.readiness_probe.is_none() {
                change.readiness_probe = Some(probe(port, defaults));
            }
            if rules.require_liveness_probe
                && container.liveness_probe.is_none()
                && remediation.liveness_probe == Some(true)
            {
                change.liveness_probe = Some(probe(port, defaults));
            }
        }
        if !change.is_empty() {
            changes.push(change);
        }
    }
    let fixed = remediated(template, &changes);
    let facts = PodFacts::template(&fixed);
    let mut remaining: Vec<CheckId> =
        std::iter::once(&rules).chain(also).flat_map(|r| evaluate(&facts, r, now)).map(|f| f.check).collect();
    remaining.sort_unstable();
    remaining.dedup();
    Plan { changes, remaining }
}

/// `template` with `changes` made.
pub fn remediated(template: &PodSpec, changes: &[ContainerChange]) -> PodSpec {
    let mut fixed = template.clone();
    let containers = fixed.containers.iter_mut().chain(fixed.init_containers.iter_mut().flatten());
    for container in containers {
        for change in changes.iter().filter(|c| c.container == container.name) {
            if let Some(r) = &change.resources {
                container.resources = Some(r.clone());
            }
            if let Some(p) = &change.readiness_probe {
                container.readiness_probe = Some(p.clone());
            }
            if let Some(p) = &change.liveness_probe {
                container.liveness_probe = Some(p.clone());
            }
        }
    }
    fixed
}

/// The server-side apply body that makes `changes` in the workload `api_version`/`kind`
/// `name` (its pod template at `template_path`, e.g. `["spec", "template"]`), annotating the
/// template with the policy, over `owned`: what enforcement applied to it before (see
/// [`super::owned`]), which an apply that left it out would remove. Only these fields, so
/// enforcement owns nothing else.
pub fn apply_body(
    api_version: &str,
    kind: &str,
    name: &str,
    template_path: &[&str],
    changes: &[ContainerChange],
    policy: &DevOpsPolicy,
    owned: Option<Value>,
) -> Value {
    let entry = |c: &ContainerChange| {
        let mut entry = json!({"name": c.container});
        if let Some(r) = &c.resources {
            entry["resources"] = serde_json::to_value(r).expect("resources serialize");
        }
        if let Some(p) = &c.readiness_probe {
            entry["readinessProbe"] = serde_json::to_value(p).expect("a probe serializes");
        }
        if let Some(p) = &c.liveness_probe {
            entry["livenessProbe"] = serde_json::to_value(p).expect("a probe serializes");
        }
        entry
    };
    let containers: Vec<Value> = changes.iter().filter(|c| !c.init).map(entry).collect();
    let init: Vec<Value> = changes.iter().filter(|c| c.init).map(entry).collect();
    let mut spec = json!({});
    if !containers.is_empty() {
        spec["containers"] = json!(containers);
    }
    if !init.is_empty() {
        spec["initContainers"] = json!(init);
    }
    let policy_name = policy.metadata.name.clone().unwrap_or_default();
    let mut template = json!({"metadata": {"annotations": {PATCHED_BY: policy_name}}, "spec": spec});
    for key in template_path.iter().rev() {
        template = json!({ *key: template });
    }
    let mut body = owned.unwrap_or_else(|| json!({}));
    merge(&mut body, &json!({"apiVersion": api_version, "kind": kind, "metadata": {"name": name}}));
    merge(&mut body, &template);
    body
}

/// Whether annotations opt out of enforcement (`devops.stochastic.io/enforce: "false"`).
pub fn opted_out(annotations: Option<&BTreeMap<String, String>>) -> bool {
    annotations.and_then(|a| a.get(OPT_OUT)).is_some_and(|v| v.eq_ignore_ascii_case("false"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::policy::RemediationSpec;
    use serde_json::json;

    fn policy() -> DevOpsPolicySpec {
        DevOpsPolicySpec {
            require_readiness_probe: Some(true),
            require_resources: Some(true),
            default_probe: Some(DefaultProbe::default()),
            default_resources: Some(DefaultResources::default()),
            ..Default::default()
        }
    }

    fn template(containers: Value) -> PodSpec {
        serde_json::from_value(json!({"containers": containers})).unwrap()
    }

    fn now() -> Timestamp {
        Timestamp::now()
    }

    #[test]
    fn missing_resources_and_readiness_probes_are_added_from_the_policy() {
        let t = template(json!([{"name": "app", "image": "app:1", "ports": [{"containerPort": 8080}]}]));
        let plan = plan(&t, &policy(), &[], now());
        assert!(plan.applicable(), "{plan:?}");
        assert_eq!(plan.describe(), "app: resources, readinessProbe");
        let change = &plan.changes[0];
        let probe = change.readiness_probe.as_ref().unwrap();
        assert_eq!(probe.tcp_socket.as_ref().unwrap().port, IntOrString::Int(8080), "the declared port");
        assert_eq!((probe.initial_delay_seconds, probe.period_seconds), (Some(5), Some(10)));
        let r = change.resources.as_ref().unwrap();
        assert_eq!(r.limits.as_ref().unwrap()["memory"], Quantity("256Mi".into()));
        assert_eq!(change.liveness_probe, None, "liveness only when asked");
    }

    #[test]
    fn no_port_is_ever_guessed_and_no_image_touched() {
        let t = template(json!([{"name": "app", "image": "app:latest"}]));
        let mut strict = policy();
        strict.forbid_latest_tag = Some(true);
        let plan = plan(&t, &strict, &[], now());
        assert_eq!(plan.describe(), "app: resources", "no port declared: no probe");
        assert!(!plan.applicable(), "the image and the probe would still violate the policy");
        assert_eq!(plan.remaining, [CheckId::LatestTag, CheckId::MissingReadiness]);
        // The policy naming a port is enough.
        let mut named = policy();
        named.default_probe = Some(DefaultProbe { tcp_port: Some(9000), ..Default::default() });
        let plan = super::plan(&t, &named, &[], now());
        assert!(plan.applicable());
    }

    #[test]
    fn what_is_there_is_kept_and_a_fixed_template_needs_nothing() {
        let t = template(json!([{"name": "app", "image": "app:1", "ports": [{"containerPort": 80}],
            "resources": {"requests": {"cpu": "2"}}, "readinessProbe": {"httpGet": {"path": "/", "port": 80}}}]));
        let plan = plan(&t, &policy(), &[], now());
        assert_eq!(plan.changes, [], "partial resources are the owner's choice");
        let bare = template(json!([{"name": "app", "image": "app:1", "ports": [{"containerPort": 80}]}]));
        let first = super::plan(&bare, &policy(), &[], now());
        let fixed = remediated(&bare, &first.changes);
        assert_eq!(super::plan(&fixed, &policy(), &[], now()).changes, [], "a second evaluation finds nothing to do");
    }

    #[test]
    fn liveness_probes_only_when_asked_and_only_where_probes_belong() {
        let mut asked = policy();
        asked.require_liveness_probe = Some(true);
        let t = template(json!([{"name": "app", "image": "app:1", "ports": [{"containerPort": 80}]}]));
        assert!(!plan(&t, &asked, &[], now()).applicable(), "liveness not asked for: the webhook would refuse");
        asked.remediation = Some(RemediationSpec { liveness_probe: Some(true), ..Default::default() });
        let p = plan(&t, &asked, &[], now());
        assert!(p.applicable());
        assert_eq!(p.describe(), "app: resources, readinessProbe, livenessProbe");
        // A Job's pods run to completion: no probes; init containers get resources only.
        let mut job: PodSpec = serde_json::from_value(json!({"restartPolicy": "Never",
            "containers": [{"name": "run", "image": "x:1", "ports": [{"containerPort": 80}]}],
            "initContainers": [{"name": "init", "image": "x:1"}]}))
        .unwrap();
        job.restart_policy = Some("Never".into());
        assert_eq!(plan(&job, &policy(), &[], now()).describe(), "run: resources; init: resources");
    }

    #[test]
    fn the_apply_body_names_only_what_enforcement_sets() {
        let t = template(json!([{"name": "app", "image": "app:1", "ports": [{"containerPort": 80}]}]));
        let p = plan(&t, &policy(), &[], now());
        let mut owner = DevOpsPolicy::new("strict", policy());
        owner.metadata.namespace = Some("shop".into());
        let body = apply_body("apps/v1", "Deployment", "web", &["spec", "template"], &p.changes, &owner, None);
        assert_eq!(body["kind"], "Deployment");
        assert_eq!(body["spec"]["template"]["metadata"]["annotations"][PATCHED_BY], "strict");
        let container = &body["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(container["name"], "app");
        assert!(container.get("image").is_none(), "never the image");
        assert_eq!(container["readinessProbe"]["tcpSocket"]["port"], 80);
        let cron = apply_body(
            "batch/v1",
            "CronJob",
            "nightly",
            &["spec", "jobTemplate", "spec", "template"],
            &p.changes,
            &owner,
            None,
        );
        assert!(cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"].is_array());
    }

    #[test]
    fn a_request_never_ends_up_above_its_limit() {
        let t = template(json!([{"name": "app", "image": "app:1"}]));
        let mut spec = policy();
        spec.default_resources = Some(DefaultResources {
            memory_request: Some("512Mi".into()),
            cpu_limit: Some("50m".into()),
            ..Default::default()
        });
        let r = plan(&t, &spec, &[], now()).changes[0].resources.clone().unwrap();
        let (requests, limits) = (r.requests.unwrap(), r.limits.unwrap());
        assert_eq!((requests["memory"].0.as_str(), limits["memory"].0.as_str()), ("512Mi", "512Mi"));
        assert_eq!((requests["cpu"].0.as_str(), limits["cpu"].0.as_str()), ("50m", "50m"));
        let r = plan(&t, &policy(), &[], now()).changes[0].resources.clone().unwrap();
        assert_eq!(r.requests.unwrap()["cpu"].0, "100m", "the defaults");
    }

    #[test]
    fn another_enforce_policy_of_the_namespace_must_pass_too() {
        let t = template(json!([{"name": "app", "image": "app:latest", "ports": [{"containerPort": 80}]}]));
        assert!(plan(&t, &policy(), &[], now()).applicable());
        let images = DevOpsPolicySpec { forbid_latest_tag: Some(true), ..Default::default() };
        let p = plan(&t, &policy(), &[Rules::from_spec(&images)], now());
        assert!(!p.applicable(), "the webhook would refuse the patch for the image");
        assert_eq!(p.remaining, [CheckId::LatestTag]);
    }

    #[test]
    fn what_was_applied_before_stays_in_the_next_apply() {
        let t = template(json!([{"name": "sidecar", "image": "proxy:1", "ports": [{"containerPort": 80}]}]));
        let p = plan(&t, &policy(), &[], now());
        let owner = DevOpsPolicy::new("strict", policy());
        let before = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"template": {"spec": {"containers": [{"name": "app", "resources": {"limits": {"cpu": "1"}}}]}}}});
        let body = apply_body("apps/v1", "Deployment", "web", &["spec", "template"], &p.changes, &owner, Some(before));
        let names: Vec<&str> = body["spec"]["template"]["spec"]["containers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["app", "sidecar"]);
        assert_eq!(body["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["cpu"], "1");
    }

    #[test]
    fn the_opt_out_annotation_is_read_as_users_write_it() {
        let annotations = |v: &str| BTreeMap::from([(OPT_OUT.to_string(), v.to_string())]);
        assert!(opted_out(Some(&annotations("false"))));
        assert!(opted_out(Some(&annotations("False"))));
        assert!(!opted_out(Some(&annotations("true"))));
        assert!(!opted_out(None));
    }
}

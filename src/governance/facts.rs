//! What the engine reads of a pod or a pod template, and nothing more: a compact, owned form
//! built from k8s-openapi types (manifests, admission reviews) or deserialised straight from
//! the API server's JSON (the watch caches, [`raw`]), where it skips everything else (env,
//! volume sources, labels, annotations, managed fields) without allocating it. A cached pod
//! costs a few hundred bytes instead of the tens of kilobytes of a full `Pod`.
//!
//! Facts are what the object says, resolved the way the kubelet resolves it (a container's
//! securityContext over the pod's, a limit implying its request, the API server's default
//! pull policy); judging them is [`super::evaluate`]'s job.

mod raw;

pub use raw::PodRecord;

use super::checks::MissingResources;
use super::image::{ImageParts, ImagePin};
use k8s_openapi::api::core::v1::{
    Container, ContainerState, ContainerStatus, EphemeralContainer, PodSecurityContext, PodSpec, PodStatus,
    ResourceRequirements, SecurityContext,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::jiff::Timestamp;
use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};

/// Where a container runs in its pod.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContainerKind {
    Main,
    Init,
    /// A debug container added by `kubectl debug`.
    Ephemeral,
}

/// The security-relevant settings of a container, resolved against its pod's securityContext
/// (a bit set: one bit a fact).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Security(u8);

impl Security {
    /// `runAsNonRoot: true` (and no `runAsUser: 0`), or a non-zero `runAsUser`.
    pub const NON_ROOT: u8 = 1;
    pub const PRIVILEGED: u8 = 2;
    /// `allowPrivilegeEscalation: false`.
    pub const NO_ESCALATION: u8 = 4;
    pub const READ_ONLY_ROOT: u8 = 8;
    /// Drops ALL capabilities and adds back none but NET_BIND_SERVICE.
    pub const DROPS_ALL: u8 = 16;
    /// A RuntimeDefault or Localhost seccomp profile.
    pub const SECCOMP: u8 = 32;
    /// `runAsUser: 0` said outright.
    pub const ROOT_USER: u8 = 64;

    pub const fn has(self, bit: u8) -> bool {
        self.0 & bit != 0
    }
}

/// Capabilities the Pod Security Standards' baseline lets a container add.
const BASELINE_CAPABILITIES: [&str; 13] = [
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
];

/// A capability name without the optional `CAP_` prefix the runtimes accept.
fn capability(name: &str) -> &str {
    name.strip_prefix("CAP_").unwrap_or(name)
}

/// Resolves a container's security settings over its pod's, as the kubelet does, and the
/// capabilities it adds beyond the baseline set.
fn security_of(container: Option<&SecurityContext>, pod: Option<&PodSecurityContext>) -> (Security, Box<[Box<str>]>) {
    let c = container;
    let run_as_user = c.and_then(|c| c.run_as_user).or(pod.and_then(|p| p.run_as_user));
    let run_as_non_root = c.and_then(|c| c.run_as_non_root).or(pod.and_then(|p| p.run_as_non_root));
    let seccomp = c
        .and_then(|c| c.seccomp_profile.as_ref())
        .or(pod.and_then(|p| p.seccomp_profile.as_ref()))
        .map(|s| s.type_.as_str());
    let caps = c.and_then(|c| c.capabilities.as_ref());
    let added: Vec<&str> = caps.and_then(|c| c.add.as_ref()).into_iter().flatten().map(|s| capability(s)).collect();
    let drops_all = caps.and_then(|c| c.drop.as_ref()).into_iter().flatten().any(|s| capability(s) == "ALL")
        && added.iter().all(|a| *a == "NET_BIND_SERVICE");
    let mut bits = 0;
    let mut set = |bit, on: bool| {
        if on {
            bits |= bit
        }
    };
    set(Security::ROOT_USER, run_as_user == Some(0));
    set(Security::NON_ROOT, run_as_user != Some(0) && (run_as_non_root == Some(true) || run_as_user.is_some()));
    set(Security::PRIVILEGED, c.and_then(|c| c.privileged) == Some(true));
    set(Security::NO_ESCALATION, c.and_then(|c| c.allow_privilege_escalation) == Some(false));
    set(Security::READ_ONLY_ROOT, c.and_then(|c| c.read_only_root_filesystem) == Some(true));
    set(Security::DROPS_ALL, drops_all);
    set(Security::SECCOMP, matches!(seccomp, Some("RuntimeDefault" | "Localhost")));
    let dangerous = added.into_iter().filter(|a| !BASELINE_CAPABILITIES.contains(a)).map(Box::from).collect();
    (Security(bits), dangerous)
}

/// What the checks read of one container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerFacts {
    pub name: Box<str>,
    pub image: Box<str>,
    pub kind: ContainerKind,
    pub liveness_probe: bool,
    pub readiness_probe: bool,
    /// The cpu/memory requests and limits it lacks (a limit implies its request, as the API
    /// server defaults it).
    pub missing_resources: MissingResources,
    pub security: Security,
    /// Capabilities it adds beyond the Pod Security baseline set.
    pub dangerous_capabilities: Box<[Box<str>]>,
    /// Its image reference parsed (pin, registry, repository).
    pub image_parts: ImageParts,
    /// Its `imagePullPolicy`, or the API server's default for its image.
    pub pull_policy: PullPolicy,
    /// The host ports it binds.
    pub host_ports: Box<[i32]>,
}

/// A container's image pull policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PullPolicy {
    Always,
    IfNotPresent,
    Never,
}

impl PullPolicy {
    /// `policy` as set, or as the API server defaults it for `image`: Always for `:latest`
    /// and untagged images, IfNotPresent otherwise.
    fn of(policy: Option<&str>, pin: ImagePin) -> PullPolicy {
        match policy {
            Some("Always") => PullPolicy::Always,
            Some("Never") => PullPolicy::Never,
            Some(_) => PullPolicy::IfNotPresent,
            None => match pin {
                ImagePin::Latest | ImagePin::Untagged => PullPolicy::Always,
                ImagePin::Tag | ImagePin::Digest => PullPolicy::IfNotPresent,
            },
        }
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            PullPolicy::Always => "Always",
            PullPolicy::IfNotPresent => "IfNotPresent",
            PullPolicy::Never => "Never",
        }
    }
}

/// A container's state that the runtime checks read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Waiting {
    CrashLoopBackOff,
    ImagePullBackOff,
    ErrImagePull,
}

impl Waiting {
    fn of(reason: Option<&str>) -> Option<Waiting> {
        match reason? {
            "CrashLoopBackOff" => Some(Waiting::CrashLoopBackOff),
            "ImagePullBackOff" => Some(Waiting::ImagePullBackOff),
            "ErrImagePull" => Some(Waiting::ErrImagePull),
            _ => None,
        }
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            Waiting::CrashLoopBackOff => "CrashLoopBackOff",
            Waiting::ImagePullBackOff => "ImagePullBackOff",
            Waiting::ErrImagePull => "ErrImagePull",
        }
    }
}

/// What the checks read of one container's status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerStatusFacts {
    pub name: Box<str>,
    pub restarts: i32,
    pub waiting: Option<Waiting>,
    /// Its last termination (or its current one) was an OOM kill.
    pub oom_killed: bool,
}

impl ContainerStatusFacts {
    fn of(status: &ContainerStatus) -> ContainerStatusFacts {
        ContainerStatusFacts {
            name: status.name.as_str().into(),
            restarts: status.restart_count,
            waiting: Waiting::of(
                status.state.as_ref().and_then(|s| s.waiting.as_ref()).and_then(|w| w.reason.as_deref()),
            ),
            oom_killed: oom_killed(status.last_state.as_ref()) || oom_killed(status.state.as_ref()),
        }
    }
}

/// Whether `state` is a termination by the OOM killer.
fn oom_killed(state: Option<&ContainerState>) -> bool {
    state.and_then(|s| s.terminated.as_ref()).and_then(|t| t.reason.as_deref()) == Some("OOMKilled")
}

/// What the checks read of a live pod's status.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StatusFacts {
    pub pending: bool,
    /// Every container and init container that has a status.
    pub containers: Vec<ContainerStatusFacts>,
}

/// The pod-level settings the host-access and reliability checks read (a bit set).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PodSettings(u8);

impl PodSettings {
    pub const HOST_NETWORK: u8 = 1;
    pub const HOST_PID: u8 = 2;
    pub const HOST_IPC: u8 = 4;
    /// `automountServiceAccountToken: false`.
    pub const NO_TOKEN: u8 = 8;
    /// `topologySpreadConstraints` or a pod anti-affinity.
    pub const SPREAD: u8 = 16;

    pub const fn has(self, bit: u8) -> bool {
        self.0 & bit != 0
    }
}

/// A pod (or a pod template: no status, no creation time) as the engine sees it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PodFacts {
    /// Main containers first, then init, then ephemeral ones (the order findings are reported in).
    pub containers: Vec<ContainerFacts>,
    /// `restartPolicy` Never or OnFailure: Jobs and CronJobs, which need no probes.
    pub runs_to_completion: bool,
    pub settings: PodSettings,
    /// The names of its hostPath volumes.
    pub host_path_volumes: Box<[Box<str>]>,
    /// The replicas its workload asks for: set for the templates of Deployments,
    /// StatefulSets, ReplicaSets and ReplicationControllers.
    pub replicas: Option<u32>,
    /// A live pod's ReplicaSet, StatefulSet or ReplicationController (a hash of its uid), so
    /// an assessment can count the pods of one workload.
    pub replicated_by: Option<u64>,
    /// Present for live pods.
    pub status: Option<StatusFacts>,
    /// When the pod was created, for the Pending duration.
    pub created: Option<Timestamp>,
}

/// Which cpu/memory requests and limits are set, given the keys of `requests` and `limits`.
fn missing_resources<'k>(
    requests: impl IntoIterator<Item = &'k str>,
    limits: impl IntoIterator<Item = &'k str>,
) -> MissingResources {
    let mut bits = MissingResources::REQUESTS_CPU
        | MissingResources::REQUESTS_MEMORY
        | MissingResources::LIMITS_CPU
        | MissingResources::LIMITS_MEMORY;
    for key in limits {
        match key {
            // A limit without a request: the API server defaults the request to the limit.
            "cpu" => bits &= !(MissingResources::LIMITS_CPU | MissingResources::REQUESTS_CPU),
            "memory" => bits &= !(MissingResources::LIMITS_MEMORY | MissingResources::REQUESTS_MEMORY),
            _ => {}
        }
    }
    for key in requests {
        match key {
            "cpu" => bits &= !MissingResources::REQUESTS_CPU,
            "memory" => bits &= !MissingResources::REQUESTS_MEMORY,
            _ => {}
        }
    }
    MissingResources::from_bits(bits)
}

fn resources_of(resources: Option<&ResourceRequirements>) -> MissingResources {
    fn keys<V>(m: Option<&BTreeMap<String, V>>) -> impl Iterator<Item = &str> {
        m.into_iter().flat_map(|m| m.keys().map(String::as_str))
    }
    match resources {
        Some(r) => missing_resources(keys(r.requests.as_ref()), keys(r.limits.as_ref())),
        None => missing_resources([], []),
    }
}

/// The parts of a container both readers (typed and raw JSON) hand over.
struct ContainerInput<'a> {
    name: Box<str>,
    image: Box<str>,
    kind: ContainerKind,
    liveness_probe: bool,
    readiness_probe: bool,
    missing_resources: MissingResources,
    security_context: Option<&'a SecurityContext>,
    pull_policy: Option<&'a str>,
    host_ports: Box<[i32]>,
}

impl ContainerInput<'_> {
    fn facts(self, pod: Option<&PodSecurityContext>) -> ContainerFacts {
        let (security, dangerous_capabilities) = security_of(self.security_context, pod);
        let image_parts = ImageParts::parse(&self.image);
        ContainerFacts {
            pull_policy: PullPolicy::of(self.pull_policy, image_parts.pin),
            image_parts,
            name: self.name,
            image: self.image,
            kind: self.kind,
            liveness_probe: self.liveness_probe,
            readiness_probe: self.readiness_probe,
            missing_resources: self.missing_resources,
            security,
            dangerous_capabilities,
            host_ports: self.host_ports,
        }
    }
}

fn host_ports(ports: impl IntoIterator<Item = Option<i32>>) -> Box<[i32]> {
    ports.into_iter().flatten().filter(|p| *p != 0).collect()
}

impl ContainerFacts {
    fn of(container: &Container, kind: ContainerKind, pod: Option<&PodSecurityContext>) -> ContainerFacts {
        ContainerInput {
            name: container.name.as_str().into(),
            image: container.image.as_deref().unwrap_or_default().into(),
            kind,
            liveness_probe: container.liveness_probe.is_some(),
            readiness_probe: container.readiness_probe.is_some(),
            missing_resources: resources_of(container.resources.as_ref()),
            security_context: container.security_context.as_ref(),
            pull_policy: container.image_pull_policy.as_deref(),
            host_ports: host_ports(container.ports.iter().flatten().map(|p| p.host_port)),
        }
        .facts(pod)
    }

    fn of_ephemeral(container: &EphemeralContainer, pod: Option<&PodSecurityContext>) -> ContainerFacts {
        ContainerInput {
            name: container.name.as_str().into(),
            image: container.image.as_deref().unwrap_or_default().into(),
            kind: ContainerKind::Ephemeral,
            liveness_probe: container.liveness_probe.is_some(),
            readiness_probe: container.readiness_probe.is_some(),
            missing_resources: resources_of(container.resources.as_ref()),
            security_context: container.security_context.as_ref(),
            pull_policy: container.image_pull_policy.as_deref(),
            host_ports: host_ports(container.ports.iter().flatten().map(|p| p.host_port)),
        }
        .facts(pod)
    }
}

/// The pod-level settings as [`PodSettings`] bits.
fn pod_settings(host: [Option<bool>; 3], automount_token: Option<bool>, spread: bool) -> PodSettings {
    let [network, pid, ipc] = host.map(|b| b == Some(true));
    let mut bits = 0;
    for (on, bit) in [
        (network, PodSettings::HOST_NETWORK),
        (pid, PodSettings::HOST_PID),
        (ipc, PodSettings::HOST_IPC),
        (automount_token == Some(false), PodSettings::NO_TOKEN),
        (spread, PodSettings::SPREAD),
    ] {
        if on {
            bits |= bit;
        }
    }
    PodSettings(bits)
}

/// The controller of a pod that counts as a replicated workload (a hash of its uid).
fn replicated_by(owners: Option<&Vec<OwnerReference>>) -> Option<u64> {
    let owner = owners?.iter().find(|o| o.controller == Some(true))?;
    if !matches!(owner.kind.as_str(), "ReplicaSet" | "StatefulSet" | "ReplicationController") {
        return None;
    }
    let mut hasher = std::hash::DefaultHasher::new();
    owner.uid.hash(&mut hasher);
    Some(hasher.finish())
}

impl PodFacts {
    /// A pod template's facts (no status).
    pub fn template(spec: &PodSpec) -> PodFacts {
        let pod_sc = spec.security_context.as_ref();
        let main = spec.containers.iter().map(|c| ContainerFacts::of(c, ContainerKind::Main, pod_sc));
        let init = spec.init_containers.iter().flatten().map(|c| ContainerFacts::of(c, ContainerKind::Init, pod_sc));
        let ephemeral = spec.ephemeral_containers.iter().flatten().map(|c| ContainerFacts::of_ephemeral(c, pod_sc));
        let spread = spec.topology_spread_constraints.as_ref().is_some_and(|t| !t.is_empty())
            || spec.affinity.as_ref().is_some_and(|a| a.pod_anti_affinity.is_some());
        PodFacts {
            containers: main.chain(init).chain(ephemeral).collect(),
            runs_to_completion: matches!(spec.restart_policy.as_deref(), Some("Never" | "OnFailure")),
            settings: pod_settings(
                [spec.host_network, spec.host_pid, spec.host_ipc],
                spec.automount_service_account_token,
                spread,
            ),
            host_path_volumes: (spec.volumes.iter().flatten())
                .filter(|v| v.host_path.is_some())
                .map(|v| v.name.as_str().into())
                .collect(),
            replicas: None,
            replicated_by: None,
            status: None,
            created: None,
        }
    }

    /// A workload's template that asks for `replicas` (the API default 1 when unset).
    pub fn replicated_template(spec: &PodSpec, replicas: Option<i32>) -> PodFacts {
        PodFacts { replicas: Some(replicas.unwrap_or(1).max(0) as u32), ..PodFacts::template(spec) }
    }

    /// A live pod's facts: its spec, and its status, creation time and controller when it
    /// has them.
    pub fn pod(spec: &PodSpec, status: Option<&PodStatus>, meta: &ObjectMeta) -> PodFacts {
        let mut facts = PodFacts::template(spec);
        facts.status = status.map(|s| StatusFacts {
            pending: s.phase.as_deref() == Some("Pending"),
            containers: (s.container_statuses.iter().chain(&s.init_container_statuses))
                .flatten()
                .map(ContainerStatusFacts::of)
                .collect(),
        });
        facts.created = meta.creation_timestamp.as_ref().map(|t| t.0);
        facts.replicated_by = replicated_by(meta.owner_references.as_ref());
        facts
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{TestPod, compliant};
    use serde_json::json;

    /// The facts read from JSON are those built from the typed pod: one meaning, two inputs.
    #[test]
    fn json_and_typed_pods_give_the_same_facts() {
        let pods = [
            TestPod::new("web").compliant_container("app", "nginx:1.27").container("sidecar", "envoy").json(),
            TestPod::new("job")
                .container("run", "busybox")
                .set("/spec/restartPolicy", json!("Never"))
                .set(
                    "/spec/initContainers",
                    json!([{"name": "init", "image": "x", "resources": {"limits": {"cpu": "1"}}}]),
                )
                .set("/spec/ephemeralContainers", json!([{"name": "debugger", "image": "busybox:latest"}]))
                .set("/metadata/creationTimestamp", json!("2026-11-26T11:00:00Z"))
                .set(
                    "/status",
                    json!({"phase": "Pending", "containerStatuses": [
                        {"name": "run", "restartCount": 4, "ready": false, "image": "x", "imageID": "",
                         "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                         "lastState": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}}]}),
                )
                .json(),
            // Everything the security, host and reliability checks read.
            TestPod::new("risky")
                .with_container(json!({"name": "app", "image": "ghcr.io/acme/app:1", "imagePullPolicy": "IfNotPresent",
                    "ports": [{"containerPort": 80, "hostPort": 8080}, {"containerPort": 81}],
                    "securityContext": {"privileged": true, "allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true,
                        "runAsUser": 0, "capabilities": {"add": ["CAP_SYS_ADMIN", "NET_BIND_SERVICE", "CHOWN"], "drop": ["ALL"]}}}))
                .container("sidecar", "envoy:1")
                .set("/spec/securityContext", json!({"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}}))
                .set("/spec/hostNetwork", json!(true))
                .set("/spec/hostPID", json!(true))
                .set("/spec/automountServiceAccountToken", json!(false))
                .set("/spec/volumes", json!([{"name": "root", "hostPath": {"path": "/"}}, {"name": "tmp", "emptyDir": {}}]))
                .set("/spec/topologySpreadConstraints", json!([{"maxSkew": 1, "topologyKey": "kubernetes.io/hostname",
                    "whenUnsatisfiable": "DoNotSchedule"}]))
                .set("/metadata/ownerReferences", json!([{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs",
                    "uid": "u-1", "controller": true}]))
                .json(),
        ];
        for value in pods {
            let pod = crate::fixtures::pod(value.clone());
            let typed = PodFacts::pod(pod.spec.as_ref().unwrap(), pod.status.as_ref(), &pod.metadata);
            let read: PodFacts = serde_json::from_value(value).unwrap();
            assert_eq!(read, typed);
        }
    }

    #[test]
    fn container_settings_are_resolved_over_the_pod_s() {
        let value = TestPod::new("p")
            .with_container(json!({"name": "a", "image": "x:1",
                "securityContext": {"runAsUser": 0, "capabilities": {"add": ["SYS_ADMIN", "NET_BIND_SERVICE"], "drop": ["ALL"]}}}))
            .with_container(json!({"name": "b", "image": "x:1", "securityContext": {"seccompProfile": {"type": "Unconfined"}}}))
            .container("c", "x")
            .set("/spec/securityContext", json!({"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}}))
            .json();
        let facts: PodFacts = serde_json::from_value(value).unwrap();
        let [a, b, c] = [0, 1, 2].map(|i| &facts.containers[i]);
        // a: its runAsUser 0 beats the pod's runAsNonRoot; SYS_ADMIN is dangerous and breaks
        // drop-ALL; the pod's seccomp profile applies.
        assert!(!a.security.has(Security::NON_ROOT) && a.security.has(Security::ROOT_USER));
        assert_eq!(&*a.dangerous_capabilities, [Box::from("SYS_ADMIN")]);
        assert!(!a.security.has(Security::DROPS_ALL) && a.security.has(Security::SECCOMP));
        // b: its own Unconfined profile beats the pod's RuntimeDefault.
        assert!(b.security.has(Security::NON_ROOT) && !b.security.has(Security::SECCOMP));
        // The API server's default pull policy: Always for an untagged image.
        assert_eq!((b.pull_policy, c.pull_policy), (PullPolicy::IfNotPresent, PullPolicy::Always));
    }

    #[test]
    fn a_limit_implies_its_request() {
        let mut container = compliant("app", "nginx:1.27");
        container["resources"] = json!({"limits": {"cpu": "1", "memory": "1Gi"}});
        let facts: PodFacts = serde_json::from_value(TestPod::new("p").with_container(container).json()).unwrap();
        assert!(facts.containers[0].missing_resources.is_empty());
        let bare: PodFacts = serde_json::from_value(TestPod::new("p").container("c", "x").json()).unwrap();
        assert_eq!(bare.containers[0].missing_resources.names().count(), 4);
    }

    #[test]
    fn a_cached_pod_is_small() {
        // What 50,000 cached pods cost in the watch controller's memory limit (README).
        let facts: PodFacts =
            serde_json::from_value(TestPod::new("web").compliant_container("app", "nginx:1.27").json()).unwrap();
        let heap = facts.containers.iter().map(|c| c.name.len() + c.image.len()).sum::<usize>()
            + facts.containers.capacity() * std::mem::size_of::<ContainerFacts>();
        assert!(std::mem::size_of::<PodFacts>() + heap < 256, "{} bytes", std::mem::size_of::<PodFacts>() + heap);
    }
}

//! The API server's JSON read into only what the facts need. Unknown fields are skipped by
//! serde; fields whose presence is all that matters are `IgnoredAny`; the small objects the
//! checks read in full (security contexts, container states) use the k8s-openapi types so
//! both readers resolve them with the same code.

use super::{
    ContainerFacts, ContainerInput, ContainerKind, ContainerStatusFacts, PodFacts, StatusFacts, Waiting, host_ports,
    missing_resources, oom_killed, pod_settings, replicated_by,
};
use k8s_openapi::api::core::v1::{ContainerState, PodSecurityContext, SecurityContext};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};
use serde::Deserialize;
use serde::de::IgnoredAny;
use std::collections::BTreeMap;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawPod {
    #[serde(default)]
    metadata: RawMeta,
    #[serde(default)]
    spec: RawSpec,
    status: Option<RawStatus>,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawMeta {
    name: Option<String>,
    namespace: Option<String>,
    uid: Option<String>,
    resource_version: Option<String>,
    creation_timestamp: Option<Time>,
    #[serde(default)]
    owner_references: Vec<OwnerReference>,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawSpec {
    #[serde(default)]
    containers: Vec<RawContainer>,
    #[serde(default)]
    init_containers: Vec<RawContainer>,
    #[serde(default)]
    ephemeral_containers: Vec<RawContainer>,
    restart_policy: Option<String>,
    security_context: Option<PodSecurityContext>,
    host_network: Option<bool>,
    #[serde(rename = "hostPID")]
    host_pid: Option<bool>,
    #[serde(rename = "hostIPC")]
    host_ipc: Option<bool>,
    automount_service_account_token: Option<bool>,
    #[serde(default)]
    volumes: Vec<RawVolume>,
    #[serde(default)]
    topology_spread_constraints: Vec<IgnoredAny>,
    affinity: Option<RawAffinity>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawVolume {
    name: Box<str>,
    host_path: Option<IgnoredAny>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawAffinity {
    pod_anti_affinity: Option<IgnoredAny>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawContainer {
    name: Box<str>,
    image: Option<Box<str>>,
    liveness_probe: Option<IgnoredAny>,
    readiness_probe: Option<IgnoredAny>,
    resources: Option<RawResources>,
    security_context: Option<SecurityContext>,
    image_pull_policy: Option<String>,
    #[serde(default)]
    ports: Vec<RawPort>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawPort {
    host_port: Option<i32>,
}

#[derive(Default, Deserialize)]
struct RawResources {
    #[serde(default)]
    requests: BTreeMap<String, IgnoredAny>,
    #[serde(default)]
    limits: BTreeMap<String, IgnoredAny>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawStatus {
    phase: Option<String>,
    #[serde(default)]
    container_statuses: Vec<RawContainerStatus>,
    #[serde(default)]
    init_container_statuses: Vec<RawContainerStatus>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawContainerStatus {
    name: Box<str>,
    #[serde(default)]
    restart_count: i32,
    state: Option<ContainerState>,
    last_state: Option<ContainerState>,
}

impl RawContainer {
    fn facts(self, kind: ContainerKind, pod: Option<&PodSecurityContext>) -> ContainerFacts {
        let resources = self.resources.unwrap_or_default();
        ContainerInput {
            name: self.name,
            image: self.image.unwrap_or_default(),
            kind,
            liveness_probe: self.liveness_probe.is_some(),
            readiness_probe: self.readiness_probe.is_some(),
            missing_resources: missing_resources(
                resources.requests.keys().map(String::as_str),
                resources.limits.keys().map(String::as_str),
            ),
            security_context: self.security_context.as_ref(),
            pull_policy: self.image_pull_policy.as_deref(),
            host_ports: host_ports(self.ports.iter().map(|p| p.host_port)),
        }
        .facts(pod)
    }
}

impl RawContainerStatus {
    fn facts(self) -> ContainerStatusFacts {
        ContainerStatusFacts {
            waiting: Waiting::of(
                self.state.as_ref().and_then(|s| s.waiting.as_ref()).and_then(|w| w.reason.as_deref()),
            ),
            oom_killed: oom_killed(self.last_state.as_ref()) || oom_killed(self.state.as_ref()),
            name: self.name,
            restarts: self.restart_count,
        }
    }
}

/// A pod as a cache keeps it: its identity and owners (no labels, annotations or managed
/// fields), and its facts.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PodRecord {
    pub meta: ObjectMeta,
    pub facts: PodFacts,
}

/// Reads a Pod's JSON (as the API server sends it) straight into its facts.
impl<'de> Deserialize<'de> for PodFacts {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(PodRecord::deserialize(deserializer)?.facts)
    }
}

/// Reads a Pod's JSON straight into its record.
impl<'de> Deserialize<'de> for PodRecord {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = RawPod::deserialize(deserializer)?;
        let spec = raw.spec;
        let meta = raw.metadata;
        let created = meta.creation_timestamp.as_ref().map(|t| t.0);
        let owners = (!meta.owner_references.is_empty()).then_some(meta.owner_references);
        let replicated_by = replicated_by(owners.as_ref());
        let meta = ObjectMeta {
            name: meta.name,
            namespace: meta.namespace,
            uid: meta.uid,
            resource_version: meta.resource_version,
            creation_timestamp: meta.creation_timestamp,
            owner_references: owners,
            ..Default::default()
        };
        let pod_sc = spec.security_context.as_ref();
        let containers = (spec.containers.into_iter().map(|c| c.facts(ContainerKind::Main, pod_sc)))
            .chain(spec.init_containers.into_iter().map(|c| c.facts(ContainerKind::Init, pod_sc)))
            .chain(spec.ephemeral_containers.into_iter().map(|c| c.facts(ContainerKind::Ephemeral, pod_sc)))
            .collect();
        let spread = !spec.topology_spread_constraints.is_empty()
            || spec.affinity.is_some_and(|a| a.pod_anti_affinity.is_some());
        let facts = PodFacts {
            containers,
            runs_to_completion: matches!(spec.restart_policy.as_deref(), Some("Never" | "OnFailure")),
            settings: pod_settings(
                [spec.host_network, spec.host_pid, spec.host_ipc],
                spec.automount_service_account_token,
                spread,
            ),
            host_path_volumes: (spec.volumes.into_iter()).filter(|v| v.host_path.is_some()).map(|v| v.name).collect(),
            replicas: None,
            replicated_by,
            status: raw.status.map(|s| StatusFacts {
                pending: s.phase.as_deref() == Some("Pending"),
                containers: (s.container_statuses.into_iter())
                    .chain(s.init_container_statuses)
                    .map(RawContainerStatus::facts)
                    .collect(),
            }),
            created,
        };
        Ok(PodRecord { meta, facts })
    }
}

//! What the engine reads of a pod or a pod template, and nothing more: a compact, owned form
//! built from k8s-openapi types (manifests, admission reviews) or deserialised straight from
//! the API server's JSON (the watch caches), where it skips everything else (env, volumes,
//! labels, annotations, managed fields) without allocating it. A cached pod costs a few hundred
//! bytes instead of the tens of kilobytes of a full `Pod`.

use super::checks::MissingResources;
use k8s_openapi::api::core::v1::{Container, EphemeralContainer, PodSpec, PodStatus, ResourceRequirements};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};
use k8s_openapi::jiff::Timestamp;
use serde::Deserialize;
use serde::de::IgnoredAny;
use std::collections::BTreeMap;

/// Where a container runs in its pod.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContainerKind {
    Main,
    Init,
    /// A debug container added by `kubectl debug`.
    Ephemeral,
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
}

/// What the checks read of a live pod's status.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StatusFacts {
    pub pending: bool,
    /// Restart count of every container and init container that has a status.
    pub restarts: Vec<(Box<str>, i32)>,
}

/// A pod (or a pod template: no status, no creation time) as the engine sees it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PodFacts {
    /// Main containers first, then init, then ephemeral ones (the order findings are reported in).
    pub containers: Vec<ContainerFacts>,
    /// `restartPolicy` Never or OnFailure: Jobs and CronJobs, which need no probes.
    pub runs_to_completion: bool,
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

impl ContainerFacts {
    fn of(container: &Container, kind: ContainerKind) -> ContainerFacts {
        ContainerFacts {
            name: container.name.as_str().into(),
            image: container.image.as_deref().unwrap_or_default().into(),
            kind,
            liveness_probe: container.liveness_probe.is_some(),
            readiness_probe: container.readiness_probe.is_some(),
            missing_resources: resources_of(container.resources.as_ref()),
        }
    }

    fn of_ephemeral(container: &EphemeralContainer) -> ContainerFacts {
        ContainerFacts {
            name: container.name.as_str().into(),
            image: container.image.as_deref().unwrap_or_default().into(),
            kind: ContainerKind::Ephemeral,
            liveness_probe: container.liveness_probe.is_some(),
            readiness_probe: container.readiness_probe.is_some(),
            missing_resources: resources_of(container.resources.as_ref()),
        }
    }
}

impl PodFacts {
    /// A pod template's facts (no status).
    pub fn template(spec: &PodSpec) -> PodFacts {
        let main = spec.containers.iter().map(|c| ContainerFacts::of(c, ContainerKind::Main));
        let init = spec.init_containers.iter().flatten().map(|c| ContainerFacts::of(c, ContainerKind::Init));
        let ephemeral = spec.ephemeral_containers.iter().flatten().map(ContainerFacts::of_ephemeral);
        PodFacts {
            containers: main.chain(init).chain(ephemeral).collect(),
            runs_to_completion: matches!(spec.restart_policy.as_deref(), Some("Never" | "OnFailure")),
            status: None,
            created: None,
        }
    }

    /// A live pod's facts: its spec, and its status and creation time when it has them.
    pub fn pod(spec: &PodSpec, status: Option<&PodStatus>, created: Option<&Time>) -> PodFacts {
        let mut facts = PodFacts::template(spec);
        facts.status = status.map(|s| StatusFacts {
            pending: s.phase.as_deref() == Some("Pending"),
            restarts: s
                .container_statuses
                .iter()
                .chain(&s.init_container_statuses)
                .flatten()
                .map(|cs| (cs.name.as_str().into(), cs.restart_count))
                .collect(),
        });
        facts.created = created.map(|t| t.0);
        facts
    }
}

// The API server's JSON, read into only what the facts need. Unknown fields are skipped by
// serde; fields that are present but not needed beyond their presence are `IgnoredAny`.

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
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawContainer {
    name: Box<str>,
    image: Option<Box<str>>,
    liveness_probe: Option<IgnoredAny>,
    readiness_probe: Option<IgnoredAny>,
    resources: Option<RawResources>,
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
}

impl RawContainer {
    fn facts(self, kind: ContainerKind) -> ContainerFacts {
        let resources = self.resources.unwrap_or_default();
        ContainerFacts {
            name: self.name,
            image: self.image.unwrap_or_default(),
            kind,
            liveness_probe: self.liveness_probe.is_some(),
            readiness_probe: self.readiness_probe.is_some(),
            missing_resources: missing_resources(
                resources.requests.keys().map(String::as_str),
                resources.limits.keys().map(String::as_str),
            ),
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
        let meta = ObjectMeta {
            name: meta.name,
            namespace: meta.namespace,
            uid: meta.uid,
            resource_version: meta.resource_version,
            creation_timestamp: meta.creation_timestamp,
            owner_references: (!meta.owner_references.is_empty()).then_some(meta.owner_references),
            ..Default::default()
        };
        let containers = (spec.containers.into_iter().map(|c| c.facts(ContainerKind::Main)))
            .chain(spec.init_containers.into_iter().map(|c| c.facts(ContainerKind::Init)))
            .chain(spec.ephemeral_containers.into_iter().map(|c| c.facts(ContainerKind::Ephemeral)))
            .collect();
        let facts = PodFacts {
            containers,
            runs_to_completion: matches!(spec.restart_policy.as_deref(), Some("Never" | "OnFailure")),
            status: raw.status.map(|s| StatusFacts {
                pending: s.phase.as_deref() == Some("Pending"),
                restarts: s
                    .container_statuses
                    .into_iter()
                    .chain(s.init_container_statuses)
                    .map(|cs| (cs.name, cs.restart_count))
                    .collect(),
            }),
            created,
        };
        Ok(PodRecord { meta, facts })
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
                        {"name": "run", "restartCount": 4, "ready": false, "image": "x", "imageID": ""}]}),
                )
                .json(),
        ];
        for value in pods {
            let pod = crate::fixtures::pod(value.clone());
            let typed = PodFacts::pod(
                pod.spec.as_ref().unwrap(),
                pod.status.as_ref(),
                pod.metadata.creation_timestamp.as_ref(),
            );
            let read: PodFacts = serde_json::from_value(value).unwrap();
            assert_eq!(read, typed);
        }
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
        let facts: PodFacts =
            serde_json::from_value(TestPod::new("web").compliant_container("app", "nginx:1.27").json()).unwrap();
        let heap = facts.containers.iter().map(|c| c.name.len() + c.image.len()).sum::<usize>()
            + facts.containers.capacity() * std::mem::size_of::<ContainerFacts>();
        assert!(std::mem::size_of::<PodFacts>() + heap < 256, "{} bytes", std::mem::size_of::<PodFacts>() + heap);
    }
}

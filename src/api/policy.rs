//! `DevOpsPolicy` (devops.stochastic.io/v1): which checks apply in a namespace, and how.

// kube's `printcolumn(...)` attributes repeat keys by design; clippy reads them as duplicates.
#![allow(clippy::duplicated_attributes)]

use super::Classification;
pub use super::checks::SeverityOverrides;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A governance policy for the workloads of its namespace. A missing or `false` check field
/// turns that check off.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "devops.stochastic.io",
    version = "v1",
    kind = "DevOpsPolicy",
    plural = "devopspolicies",
    singular = "devopspolicy",
    namespaced,
    status = "DevOpsPolicyStatus",
    shortname = "dop",
    shortname = "devpol",
    category = "kube-devops",
    derive = "Default",
    derive = "PartialEq",
    doc = "A DevOps governance policy: the checks that apply to the workloads of its namespace, their severities, and whether violations are only audited or also enforced.",
    printcolumn(
        name = "Mode",
        type_ = "string",
        json_path = ".spec.enforcementMode",
        description = "audit or enforce"
    ),
    printcolumn(
        name = "Score",
        type_ = "integer",
        json_path = ".status.healthScore",
        description = "Health score 0-100 of the namespace under this policy"
    ),
    printcolumn(
        name = "Class",
        type_ = "string",
        json_path = ".status.classification",
        description = "Healthy, Stable, Degraded or Critical"
    ),
    printcolumn(
        name = "Violations",
        type_ = "integer",
        json_path = ".status.violations",
        description = "Number of violations found"
    ),
    printcolumn(
        name = "Remediated",
        type_ = "integer",
        json_path = ".status.remediationsApplied",
        description = "Workloads patched by the last evaluation (enforce mode)",
        priority = 1
    ),
    printcolumn(
        name = "Unremediated",
        type_ = "integer",
        json_path = ".status.remediationsFailed",
        description = "Workloads the last evaluation could not patch (enforce mode)",
        priority = 1
    ),
    printcolumn(
        name = "Evaluated",
        type_ = "date",
        json_path = ".status.lastEvaluated",
        description = "When the outcome of the evaluation last changed"
    ),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
pub struct DevOpsPolicySpec {
    /// Flag containers whose image is `:latest` or has no tag at all (digests are pinned and pass).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forbid_latest_tag: Option<bool>,
    /// Flag long-running containers without a liveness probe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_liveness_probe: Option<bool>,
    /// Flag long-running containers without a readiness probe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_readiness_probe: Option<bool>,
    /// Flag containers that do not set cpu and memory requests and limits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_resources: Option<bool>,
    /// Flag containers that restarted more often than this. Unset turns the check off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub max_restart_count: Option<i32>,
    /// Flag pods that have been Pending for longer than this many seconds. Unset turns the check off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub forbid_pending_duration: Option<u64>,
    /// Security-context checks (the Pod Security Standards' controls); all off by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security: Option<SecurityChecks>,
    /// Checks of what pods take from their node; all off by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_access: Option<HostAccessChecks>,
    /// Requests and limits one by one (`requireResources` asks for all four); all off by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceChecks>,
    /// Reliability checks: replicas, spreading, image pulls and sources, tokens; all off by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reliability: Option<ReliabilityChecks>,
    /// Checks of the live state of pods (crash loops, OOM kills, image pulls); all off by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<RuntimeChecks>,
    /// `audit` only reports violations; `enforce` also patches the owning workloads. Default audit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enforcement_mode: Option<EnforcementMode>,
    /// Severities that replace the checks' defaults (keys: the check ids in camelCase, e.g.
    /// `latestTag`, `hostNetwork`; `kube-devops policy checks` lists them); a severity
    /// changes how much a violation costs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity_overrides: Option<SeverityOverrides>,
    /// The probe that enforce mode adds to containers that have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_probe: Option<DefaultProbe>,
    /// The resources that enforce mode sets on containers that have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_resources: Option<DefaultResources>,
    /// How enforce mode remediates workloads: dry run, rate, liveness probes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remediation: Option<RemediationSpec>,
}

/// Security-context checks, each judged per container with the pod's securityContext as the
/// default, as the kubelet applies it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecurityChecks {
    /// `run_as_root_allowed`: flag containers that may run as root (neither `runAsNonRoot:
    /// true` nor a non-zero `runAsUser`, or `runAsUser: 0`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forbid_run_as_root: Option<bool>,
    /// `privileged`: flag privileged containers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forbid_privileged: Option<bool>,
    /// `privilege_escalation_allowed`: flag containers that do not set
    /// `allowPrivilegeEscalation: false`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forbid_privilege_escalation: Option<bool>,
    /// `writable_root_filesystem`: flag containers without `readOnlyRootFilesystem: true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_read_only_root_filesystem: Option<bool>,
    /// `dangerous_capabilities`: flag containers that add a capability outside the Pod
    /// Security baseline set (AUDIT_WRITE, CHOWN, DAC_OVERRIDE, FOWNER, FSETID, KILL, MKNOD,
    /// NET_BIND_SERVICE, SETFCAP, SETGID, SETPCAP, SETUID, SYS_CHROOT).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forbid_dangerous_capabilities: Option<bool>,
    /// `capabilities_not_dropped`: flag containers that do not drop ALL capabilities, or add
    /// back any but NET_BIND_SERVICE (Pod Security restricted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_drop_all_capabilities: Option<bool>,
    /// `missing_seccomp_profile`: flag containers without a RuntimeDefault or Localhost
    /// seccomp profile (their own or the pod's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_seccomp_profile: Option<bool>,
}

/// Host-access checks.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HostAccessChecks {
    /// `host_network`: flag pods with `hostNetwork: true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forbid_host_network: Option<bool>,
    /// `host_pid`: flag pods with `hostPID: true`.
    #[serde(default, rename = "forbidHostPID", skip_serializing_if = "Option::is_none")]
    pub forbid_host_pid: Option<bool>,
    /// `host_ipc`: flag pods with `hostIPC: true`.
    #[serde(default, rename = "forbidHostIPC", skip_serializing_if = "Option::is_none")]
    pub forbid_host_ipc: Option<bool>,
    /// `host_port`: flag containers that bind a `hostPort`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forbid_host_ports: Option<bool>,
    /// `host_path`: flag pods that mount a `hostPath` volume.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forbid_host_path: Option<bool>,
}

/// Requests and limits one by one. A limit counts as its request too: the API server copies a
/// limit into a missing request.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResourceChecks {
    /// `missing_cpu_request`: flag containers without a cpu request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_cpu_request: Option<bool>,
    /// `missing_cpu_limit`: flag containers without a cpu limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_cpu_limit: Option<bool>,
    /// `missing_memory_request`: flag containers without a memory request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_memory_request: Option<bool>,
    /// `missing_memory_limit`: flag containers without a memory limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_memory_limit: Option<bool>,
}

/// Reliability checks.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReliabilityChecks {
    /// `single_replica`: flag Deployments, StatefulSets and ReplicaSets of one replica (for
    /// live pods: a ReplicaSet or StatefulSet that runs one pod).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forbid_single_replica: Option<bool>,
    /// `pull_policy_not_always`: flag containers whose image is not a digest and whose
    /// `imagePullPolicy` (explicit or defaulted) is not Always.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_pull_policy_always: Option<bool>,
    /// `service_account_token_mounted`: flag pods that do not set
    /// `automountServiceAccountToken: false`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forbid_service_account_token_automount: Option<bool>,
    /// `untrusted_registry`: flag images from other registries than these. An entry is a
    /// registry host (`ghcr.io`, `registry.example.com:5000`) or a repository prefix
    /// (`ghcr.io/acme`); an image without a registry is on `docker.io`. Unset or empty turns
    /// the check off.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 100))]
    pub allowed_registries: Vec<String>,
    /// `missing_topology_spread`: flag workloads of several replicas without
    /// `topologySpreadConstraints` or a pod anti-affinity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_topology_spread: Option<bool>,
}

/// Checks of the live state of pods (templates have none, so admission never judges these).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RuntimeChecks {
    /// `crash_loop`: flag containers waiting in CrashLoopBackOff.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forbid_crash_loop: Option<bool>,
    /// `oom_killed`: flag containers whose last termination was OOMKilled.
    #[serde(default, rename = "forbidOOMKilled", skip_serializing_if = "Option::is_none")]
    pub forbid_oom_killed: Option<bool>,
    /// `image_pull_error`: flag containers waiting in ImagePullBackOff or ErrImagePull.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forbid_image_pull_errors: Option<bool>,
}

/// How enforce mode remediates the workloads (Deployments, StatefulSets, DaemonSets,
/// CronJobs) that own the pods of the namespace: it sets resources from `defaultResources` on
/// containers that have none and a readiness probe from `defaultProbe` on a port the container
/// declares (or `defaultProbe.tcpPort`), never anything else, never a field another manager
/// owns. A workload or namespace annotated `devops.stochastic.io/enforce: "false"` is left
/// alone.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RemediationSpec {
    /// Report the planned changes (status, Events) without writing them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dry_run: Option<bool>,
    /// Workloads patched per minute at most; default 5 (a patch rolls the workload out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1000))]
    pub max_workloads_per_minute: Option<u32>,
    /// Also add a liveness probe from `defaultProbe` (only when asked: a wrong liveness probe
    /// restarts a healthy container).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub liveness_probe: Option<bool>,
}

/// What remediation did to one workload in the last evaluation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RemediationRecord {
    /// `Kind/name` of the workload.
    pub workload: String,
    pub result: RemediationResult,
    /// What was (or would be) set, e.g. `app: resources, readinessProbe`.
    pub changes: String,
    /// Why, when it was not applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// The outcome of remediating one workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum RemediationResult {
    /// Patched.
    Applied,
    /// Dry run: what would be patched.
    Planned,
    /// Not patched: another manager owns a field it would set.
    Conflict,
    /// Not patched: the API server refused (admission, validation) or did not answer.
    Failed,
    /// Not patched: the patched template would still violate the policy (the webhook would
    /// refuse it), or its changes cannot be made from the policy's settings.
    Skipped,
    /// Not patched this time: the policy's rate of patches is used up.
    Deferred,
}

/// Whether a policy only reports (`audit`) or also remediates (`enforce`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum EnforcementMode {
    #[default]
    Audit,
    Enforce,
}

/// The TCP probe enforce mode injects.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DefaultProbe {
    /// Port to probe; default the container's first declared port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub tcp_port: Option<i32>,
    /// Seconds before the first probe; default 5.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub initial_delay_seconds: Option<i32>,
    /// Seconds between probes; default 10.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub period_seconds: Option<i32>,
}

/// The resources enforce mode injects, as Kubernetes quantities.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DefaultResources {
    /// CPU request; default `100m`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_request: Option<String>,
    /// CPU limit; default `500m`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_limit: Option<String>,
    /// Memory request; default `128Mi`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_request: Option<String>,
    /// Memory limit; default `256Mi`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_limit: Option<String>,
}

/// What the last evaluation of the policy found.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DevOpsPolicyStatus {
    /// Health score 0-100 of the namespace's workloads under this policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 100))]
    pub health_score: Option<u32>,
    /// Healthy (score ≥ 80), Stable (≥ 60), Degraded (≥ 40) or Critical.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classification: Option<Classification>,
    /// Number of violations found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub violations: Option<u32>,
    /// True when the score is at least 80.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthy: Option<bool>,
    /// One-line summary of the evaluation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// When the evaluation that produced this status ran: evaluations that find the same
    /// write nothing, so this is when the outcome last changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_evaluated: Option<Time>,
    /// The metadata.generation the status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Standard conditions (Ready, Degraded).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// Workloads patched by the last evaluation (enforce mode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remediations_applied: Option<u32>,
    /// Workloads the last evaluation could not patch (conflicts and failures).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remediations_failed: Option<u32>,
    /// What the last evaluation did, or would do in a dry run, to each workload it
    /// remediated (at most 50).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 50))]
    pub remediated_workloads: Vec<RemediationRecord>,
}

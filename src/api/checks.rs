//! The check catalogue as the API names it: stable ids (the contract of audit results,
//! metrics labels, admission messages and PolicyReports), each with its category, the weight
//! and default severity a finding costs in the score, the DevOpsPolicy setting that turns it
//! on, and what it asks for. One table ([`catalogue!`]) makes the id enum, its lookups and the
//! per-check `severityOverrides` fields, so a check cannot be added in one place and
//! forgotten in another.

use super::severity::Severity;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::fmt;

/// What a check is about (PolicyReport `category`, listings).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Category {
    Images,
    Probes,
    Resources,
    Security,
    HostAccess,
    Reliability,
    Runtime,
}

impl Category {
    pub const fn as_str(self) -> &'static str {
        match self {
            Category::Images => "Images",
            Category::Probes => "Probes",
            Category::Resources => "Resources",
            Category::Security => "Security",
            Category::HostAccess => "Host access",
            Category::Reliability => "Reliability",
            Category::Runtime => "Runtime",
        }
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Declares the catalogue: one row a check.
/// `Variant "id" override_field Category weight Severity "setting" "description" "fix";`
macro_rules! catalogue {
    ($($variant:ident $id:literal $field:ident $category:ident $weight:literal $severity:ident
        $setting:literal $description:literal $fix:literal;)*) => {
        /// A governance check. The string ids are a stable contract (metrics labels, audit
        /// results, PolicyReport rules).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum CheckId { $($variant,)* }

        impl CheckId {
            /// Every check, in catalogue order (the order findings of one container come in).
            pub const ALL: [CheckId; [$($id),*].len()] = [$(CheckId::$variant),*];

            pub const fn as_str(self) -> &'static str {
                match self { $(CheckId::$variant => $id,)* }
            }

            /// Points a finding of this check costs at its default severity.
            pub const fn weight(self) -> u64 {
                match self { $(CheckId::$variant => $weight,)* }
            }

            pub const fn default_severity(self) -> Severity {
                match self { $(CheckId::$variant => Severity::$severity,)* }
            }

            pub const fn category(self) -> Category {
                match self { $(CheckId::$variant => Category::$category,)* }
            }

            /// The DevOpsPolicy setting that turns the check on, as a path under `spec`.
            pub const fn setting(self) -> &'static str {
                match self { $(CheckId::$variant => $setting,)* }
            }

            /// One line on what the check asks for, for listings and docs.
            pub const fn description(self) -> &'static str {
                match self { $(CheckId::$variant => $description,)* }
            }

            /// How to fix a finding, in one line.
            pub const fn fix(self) -> &'static str {
                match self { $(CheckId::$variant => $fix,)* }
            }
        }

        /// Per-check severities that replace the checks' defaults (see `kube-devops policy
        /// checks`); a severity changes how much a violation costs.
        #[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
        #[serde(rename_all = "camelCase")]
        pub struct SeverityOverrides {
            $(
                #[doc = concat!("Severity of `", $id, "` findings (default ", stringify!($severity), ").")]
                #[serde(default, skip_serializing_if = "Option::is_none")]
                pub $field: Option<Severity>,
            )*
        }

        impl SeverityOverrides {
            /// The severity this sets for `check`, if any.
            pub fn get(&self, check: CheckId) -> Option<Severity> {
                match check { $(CheckId::$variant => self.$field,)* }
            }
        }
    };
}

catalogue! {
    // The original six: weights 5/3/2/6/4 are the original contract; missing resources weighs
    // 4: an unbounded container threatens its neighbours (noisy neighbour, node OOM) more than
    // a missing probe threatens itself.
    LatestTag "latest_tag" latest_tag Images 5 High
        "forbidLatestTag"
        "images are pinned to a tag other than latest, or to a digest"
        "pin the image to a version tag or a digest (image: app:1.4.2 or app@sha256:...)";
    MissingLiveness "missing_liveness" missing_liveness Probes 3 Medium
        "requireLivenessProbe"
        "long-running containers have a liveness probe"
        "add a livenessProbe (httpGet, tcpSocket, grpc or exec)";
    MissingReadiness "missing_readiness" missing_readiness Probes 2 Low
        "requireReadinessProbe"
        "long-running containers have a readiness probe"
        "add a readinessProbe so the Service sends traffic only when the container is ready";
    MissingResources "missing_resources" missing_resources Resources 4 Medium
        "requireResources"
        "containers set cpu and memory requests and limits"
        "set resources.requests and resources.limits for cpu and memory";
    HighRestarts "high_restarts" high_restarts Runtime 6 Critical
        "maxRestartCount"
        "containers restart no more than maxRestartCount times"
        "read the container's previous logs (kubectl logs --previous) and fix what makes it exit";
    Pending "pending" pending Runtime 4 Medium
        "forbidPendingDuration"
        "pods are not Pending longer than forbidPendingDuration"
        "kubectl describe the pod: its Events say what blocks scheduling or the image pull";

    // Security context (the Pod Security Standards' baseline and restricted controls).
    RunAsRootAllowed "run_as_root_allowed" run_as_root_allowed Security 4 High
        "security.forbidRunAsRoot"
        "containers cannot run as root: runAsNonRoot true or a non-zero runAsUser"
        "set securityContext.runAsNonRoot: true (pod or container) and use an image with a numeric non-root USER";
    Privileged "privileged" privileged Security 6 Critical
        "security.forbidPrivileged"
        "containers are not privileged"
        "remove securityContext.privileged: true; grant only the capabilities the container needs";
    PrivilegeEscalationAllowed "privilege_escalation_allowed" privilege_escalation_allowed Security 4 High
        "security.forbidPrivilegeEscalation"
        "containers set allowPrivilegeEscalation: false"
        "set securityContext.allowPrivilegeEscalation: false";
    WritableRootFilesystem "writable_root_filesystem" writable_root_filesystem Security 2 Medium
        "security.requireReadOnlyRootFilesystem"
        "containers run with a read-only root filesystem"
        "set securityContext.readOnlyRootFilesystem: true and mount an emptyDir where the container writes";
    DangerousCapabilities "dangerous_capabilities" dangerous_capabilities Security 5 High
        "security.forbidDangerousCapabilities"
        "containers add no capability beyond the Pod Security baseline set (no SYS_ADMIN, NET_ADMIN, ALL, ...)"
        "remove the capability from securityContext.capabilities.add";
    CapabilitiesNotDropped "capabilities_not_dropped" capabilities_not_dropped Security 2 Medium
        "security.requireDropAllCapabilities"
        "containers drop ALL capabilities (adding back at most NET_BIND_SERVICE)"
        "set securityContext.capabilities.drop: [ALL]";
    MissingSeccompProfile "missing_seccomp_profile" missing_seccomp_profile Security 2 Medium
        "security.requireSeccompProfile"
        "containers run under a RuntimeDefault or Localhost seccomp profile"
        "set securityContext.seccompProfile.type: RuntimeDefault (pod or container)";

    // Host access.
    HostNetwork "host_network" host_network HostAccess 5 High
        "hostAccess.forbidHostNetwork"
        "pods do not share the node's network namespace (hostNetwork)"
        "remove hostNetwork: true; expose the pod through a Service";
    HostPid "host_pid" host_pid HostAccess 5 High
        "hostAccess.forbidHostPID"
        "pods do not share the node's process namespace (hostPID)"
        "remove hostPID: true";
    HostIpc "host_ipc" host_ipc HostAccess 5 High
        "hostAccess.forbidHostIPC"
        "pods do not share the node's IPC namespace (hostIPC)"
        "remove hostIPC: true";
    HostPort "host_port" host_port HostAccess 3 Medium
        "hostAccess.forbidHostPorts"
        "containers bind no host port"
        "remove ports[].hostPort; expose the port through a Service";
    HostPath "host_path" host_path HostAccess 5 High
        "hostAccess.forbidHostPath"
        "pods mount no hostPath volume"
        "replace the hostPath volume with a PersistentVolumeClaim, emptyDir, ConfigMap or Secret";

    // Resources one by one (requireResources keeps asking for all four at once).
    MissingCpuRequest "missing_cpu_request" missing_cpu_request Resources 3 Medium
        "resources.requireCpuRequest"
        "containers set a cpu request (or a cpu limit, which the API server copies into it)"
        "set resources.requests.cpu";
    MissingCpuLimit "missing_cpu_limit" missing_cpu_limit Resources 1 Low
        "resources.requireCpuLimit"
        "containers set a cpu limit"
        "set resources.limits.cpu";
    MissingMemoryRequest "missing_memory_request" missing_memory_request Resources 3 Medium
        "resources.requireMemoryRequest"
        "containers set a memory request (or a memory limit, which the API server copies into it)"
        "set resources.requests.memory";
    MissingMemoryLimit "missing_memory_limit" missing_memory_limit Resources 3 Medium
        "resources.requireMemoryLimit"
        "containers set a memory limit"
        "set resources.limits.memory";

    // Reliability.
    SingleReplica "single_replica" single_replica Reliability 3 Medium
        "reliability.forbidSingleReplica"
        "Deployments, StatefulSets and ReplicaSets run more than one replica"
        "set spec.replicas to 2 or more (and a PodDisruptionBudget) so one pod's loss is no outage";
    PullPolicyNotAlways "pull_policy_not_always" pull_policy_not_always Reliability 1 Low
        "reliability.requirePullPolicyAlways"
        "containers whose image is not a digest pull it Always (a tag can move)"
        "set imagePullPolicy: Always, or pin the image to a digest";
    ServiceAccountTokenMounted "service_account_token_mounted" service_account_token_mounted Reliability 1 Low
        "reliability.forbidServiceAccountTokenAutomount"
        "pods set automountServiceAccountToken: false (most never call the API server)"
        "set automountServiceAccountToken: false in the pod spec, or mount a projected token where needed";
    UntrustedRegistry "untrusted_registry" untrusted_registry Reliability 4 High
        "reliability.allowedRegistries"
        "images come from one of the allowed registries"
        "pull the image from an allowed registry (mirror it there)";
    MissingTopologySpread "missing_topology_spread" missing_topology_spread Reliability 2 Low
        "reliability.requireTopologySpread"
        "workloads of several replicas spread them (topologySpreadConstraints or pod anti-affinity)"
        "add topologySpreadConstraints (e.g. over kubernetes.io/hostname) so replicas do not share a node";

    // Runtime state of live pods.
    CrashLoop "crash_loop" crash_loop Runtime 6 Critical
        "runtime.forbidCrashLoop"
        "no container is in CrashLoopBackOff"
        "read the container's previous logs (kubectl logs --previous) and fix what makes it exit";
    OomKilled "oom_killed" oom_killed Runtime 4 High
        "runtime.forbidOOMKilled"
        "no container was OOMKilled in its last termination"
        "raise resources.limits.memory, or find what the process leaks";
    ImagePullError "image_pull_error" image_pull_error Runtime 4 High
        "runtime.forbidImagePullErrors"
        "no container is stuck in ImagePullBackOff or ErrImagePull"
        "check the image name and tag, and the imagePullSecrets for a private registry";
}

impl CheckId {
    pub const COUNT: usize = Self::ALL.len();

    pub const fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for CheckId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for CheckId {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CheckId::ALL.into_iter().find(|c| c.as_str() == s).ok_or_else(|| format!("unknown check {s:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_original_ids_weights_and_severities_are_kept() {
        let original: Vec<(&str, u64, Severity)> =
            CheckId::ALL[..6].iter().map(|c| (c.as_str(), c.weight(), c.default_severity())).collect();
        assert_eq!(
            original,
            [
                ("latest_tag", 5, Severity::High),
                ("missing_liveness", 3, Severity::Medium),
                ("missing_readiness", 2, Severity::Low),
                ("missing_resources", 4, Severity::Medium),
                ("high_restarts", 6, Severity::Critical),
                ("pending", 4, Severity::Medium),
            ]
        );
        assert_eq!(serde_json::to_string(&CheckId::HighRestarts).unwrap(), "\"high_restarts\"");
        for (i, c) in CheckId::ALL.iter().enumerate() {
            assert_eq!(c.index(), i);
        }
    }

    #[test]
    fn ids_are_unique_snake_case_and_parse_back() {
        let mut seen = std::collections::HashSet::new();
        for check in CheckId::ALL {
            assert!(seen.insert(check.as_str()), "{check} twice");
            assert!(check.as_str().chars().all(|c| c.is_ascii_lowercase() || c == '_'), "{check}");
            assert_eq!(check.as_str().parse::<CheckId>(), Ok(check));
            // serde's name is the id (PolicyAuditResults store it).
            assert_eq!(serde_json::to_value(check).unwrap(), check.as_str());
        }
        assert!("latest".parse::<CheckId>().is_err());
        const { assert!(CheckId::COUNT >= 30, "the catalogue has at least thirty checks") };
    }

    #[test]
    fn every_check_has_an_override_named_after_its_id() {
        // The override field is the id in camelCase, so `severityOverrides.hostPid` overrides
        // `host_pid`; a row with a mismatched field would silently override another check.
        for check in CheckId::ALL {
            let camel: String = check
                .as_str()
                .split('_')
                .enumerate()
                .map(|(i, part)| if i == 0 { part.to_string() } else { part[..1].to_uppercase() + &part[1..] })
                .collect();
            let overrides: SeverityOverrides =
                serde_json::from_value(serde_json::json!({ camel.clone(): "low" })).unwrap();
            assert_eq!(overrides.get(check), Some(Severity::Low), "{camel}");
            assert!(CheckId::ALL.iter().filter(|c| overrides.get(**c).is_some()).count() == 1, "{camel}");
        }
    }
}

//! What a finding is and what it says (the catalogue itself, ids, weights and default
//! severities, is [`crate::api::checks`]).

use crate::api::{CheckId, Severity};
use std::fmt;

/// Which of the four resource settings a container lacks (a bit set).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MissingResources(u8);

impl MissingResources {
    pub const REQUESTS_CPU: u8 = 1;
    pub const REQUESTS_MEMORY: u8 = 2;
    pub const LIMITS_CPU: u8 = 4;
    pub const LIMITS_MEMORY: u8 = 8;
    const NAMES: [(u8, &'static str); 4] = [
        (Self::REQUESTS_CPU, "requests.cpu"),
        (Self::REQUESTS_MEMORY, "requests.memory"),
        (Self::LIMITS_CPU, "limits.cpu"),
        (Self::LIMITS_MEMORY, "limits.memory"),
    ];

    pub const fn from_bits(bits: u8) -> Self {
        MissingResources(bits)
    }

    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Whether the setting `bit` (one of the constants) is missing.
    pub const fn has(self, bit: u8) -> bool {
        self.0 & bit != 0
    }

    /// The missing settings, e.g. `["requests.cpu", "limits.memory"]`.
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        Self::NAMES.into_iter().filter(move |(bit, _)| self.0 & bit != 0).map(|(_, name)| name)
    }
}

/// What exactly a finding is about, kept borrowed so evaluation allocates nothing but the list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Detail<'a> {
    LatestTag {
        image: &'a str,
        explicit: bool,
    },
    MissingProbe,
    MissingResources(MissingResources),
    Restarts {
        count: i32,
        threshold: i32,
    },
    Pending {
        seconds: i64,
        limit: u64,
    },
    /// A security-context setting the check asks for is not there (the message is the check's).
    Security,
    /// `runAsUser: 0` said outright.
    RootUser,
    Capabilities(&'a [Box<str>]),
    /// The pod shares one of its node's namespaces: `hostNetwork`, `hostPID` or `hostIPC`.
    HostNamespace(&'static str),
    HostPort(i32),
    HostPath(&'a [Box<str>]),
    PullPolicy {
        image: &'a str,
        policy: &'static str,
    },
    TokenMounted,
    Registry {
        image: &'a str,
        registry: &'a str,
    },
    Replicas(u32),
    Waiting(&'static str),
    OomKilled,
}
/// One violation of one check by one pod or pod template (and one container where it applies).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Finding<'a> {
    pub check: CheckId,
    pub severity: Severity,
    pub container: Option<&'a str>,
    pub detail: Detail<'a>,
}

/// Restart counts above this add no more points: one crash-looping container must not drown
/// every other signal in the namespace.
pub const RESTART_UNITS_CAP: i32 = 5;

impl Finding<'_> {
    /// How many times the check's weight this finding costs (restarts count up to a cap).
    pub fn units(&self) -> u64 {
        match self.detail {
            Detail::Restarts { count, .. } => count.clamp(0, RESTART_UNITS_CAP) as u64,
            _ => 1,
        }
    }

    /// The human-readable message (the original wording where the check existed before).
    pub fn message(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for Finding<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let container = self.container.unwrap_or("");
        match self.detail {
            Detail::LatestTag { explicit: true, .. } => write!(f, "container '{container}' uses :latest tag"),
            Detail::LatestTag { image, explicit: false } => {
                write!(f, "container '{container}' uses :latest tag (image '{image}' has no tag or digest)")
            }
            Detail::MissingProbe if self.check == CheckId::MissingLiveness => {
                write!(f, "container '{container}' missing liveness probe")
            }
            Detail::MissingProbe => write!(f, "container '{container}' missing readiness probe"),
            Detail::MissingResources(missing) => {
                write!(f, "container '{container}' missing resources: ")?;
                for (i, name) in missing.names().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    f.write_str(name)?;
                }
                Ok(())
            }
            Detail::Restarts { count, threshold } => {
                write!(f, "container '{container}' has {count} restarts (threshold: {threshold})")
            }
            Detail::Pending { seconds, limit } => {
                write!(f, "pod is in Pending phase for {seconds}s (limit: {limit}s)")
            }
            Detail::Security => {
                let what = match self.check {
                    CheckId::RunAsRootAllowed => {
                        "may run as root (securityContext sets neither runAsNonRoot: true nor a non-zero runAsUser)"
                    }
                    CheckId::Privileged => "is privileged (securityContext.privileged: true)",
                    CheckId::PrivilegeEscalationAllowed => {
                        "allows privilege escalation (securityContext.allowPrivilegeEscalation is not false)"
                    }
                    CheckId::WritableRootFilesystem => {
                        "has a writable root filesystem (securityContext.readOnlyRootFilesystem is not true)"
                    }
                    CheckId::CapabilitiesNotDropped => {
                        "does not drop ALL capabilities (securityContext.capabilities.drop), or adds back more than NET_BIND_SERVICE"
                    }
                    CheckId::MissingSeccompProfile => {
                        "has no RuntimeDefault or Localhost seccomp profile (securityContext.seccompProfile)"
                    }
                    _ => "breaks a security rule",
                };
                write!(f, "container '{container}' {what}")
            }
            Detail::RootUser => write!(f, "container '{container}' runs as root (securityContext.runAsUser: 0)"),
            Detail::Capabilities(added) => {
                write!(f, "container '{container}' adds capabilities beyond the baseline set: {}", added.join(", "))
            }
            Detail::HostNamespace(field) => write!(f, "pod shares its node's namespace ({field}: true)"),
            Detail::HostPort(port) => write!(f, "container '{container}' binds host port {port}"),
            Detail::HostPath(volumes) => write!(f, "pod mounts hostPath volume(s) {}", volumes.join(", ")),
            Detail::PullPolicy { image, policy } => write!(
                f,
                "container '{container}' pulls image '{image}' with imagePullPolicy {policy} (a tag can move; use Always or a digest)"
            ),
            Detail::TokenMounted => {
                write!(f, "pod mounts a service account token (automountServiceAccountToken is not false)")
            }
            Detail::Registry { image, registry } => {
                write!(
                    f,
                    "container '{container}' image '{image}' comes from registry '{registry}', which is not allowed"
                )
            }
            Detail::Replicas(replicas) if self.check == CheckId::SingleReplica => {
                write!(f, "workload runs {replicas} replica(s): losing one pod is an outage")
            }
            Detail::Replicas(replicas) => write!(
                f,
                "workload of {replicas} replicas has no topologySpreadConstraints or pod anti-affinity: its pods may share a node"
            ),
            Detail::Waiting(reason) if self.check == CheckId::ImagePullError => {
                write!(f, "container '{container}' cannot pull its image ({reason})")
            }
            Detail::Waiting(reason) => write!(f, "container '{container}' is in {reason}"),
            Detail::OomKilled => {
                write!(f, "container '{container}' was OOMKilled (its memory limit is too low, or it leaks)")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_keep_the_original_wording() {
        let finding =
            |check, detail| Finding { check, severity: check.default_severity(), container: Some("web"), detail };
        assert_eq!(
            finding(CheckId::LatestTag, Detail::LatestTag { image: "nginx:latest", explicit: true }).message(),
            "container 'web' uses :latest tag"
        );
        assert_eq!(
            finding(CheckId::MissingLiveness, Detail::MissingProbe).message(),
            "container 'web' missing liveness probe"
        );
        assert_eq!(
            finding(CheckId::MissingReadiness, Detail::MissingProbe).message(),
            "container 'web' missing readiness probe"
        );
        assert_eq!(
            finding(CheckId::HighRestarts, Detail::Restarts { count: 7, threshold: 3 }).message(),
            "container 'web' has 7 restarts (threshold: 3)"
        );
        let missing = MissingResources::from_bits(MissingResources::REQUESTS_CPU | MissingResources::LIMITS_MEMORY);
        assert_eq!(
            finding(CheckId::MissingResources, Detail::MissingResources(missing)).message(),
            "container 'web' missing resources: requests.cpu, limits.memory"
        );
    }

    #[test]
    fn restart_units_are_capped_at_five() {
        let f = |count| Finding {
            check: CheckId::HighRestarts,
            severity: Severity::Critical,
            container: Some("c"),
            detail: Detail::Restarts { count, threshold: 3 },
        };
        assert_eq!(f(4).units(), 4);
        assert_eq!(f(5).units(), 5);
        assert_eq!(f(500).units(), 5);
    }
}

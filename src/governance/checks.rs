//! The checks: stable ids, weights, default severities, and what a finding says.

use super::severity::Severity;
use serde::{Deserialize, Serialize};
use std::fmt;

/// A governance check. The string ids are a stable contract (metrics labels, audit results).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckId {
    LatestTag,
    MissingLiveness,
    MissingReadiness,
    MissingResources,
    HighRestarts,
    Pending,
}

impl CheckId {
    pub const ALL: [CheckId; 6] = [
        CheckId::LatestTag,
        CheckId::MissingLiveness,
        CheckId::MissingReadiness,
        CheckId::MissingResources,
        CheckId::HighRestarts,
        CheckId::Pending,
    ];
    pub const COUNT: usize = Self::ALL.len();

    pub const fn as_str(self) -> &'static str {
        match self {
            CheckId::LatestTag => "latest_tag",
            CheckId::MissingLiveness => "missing_liveness",
            CheckId::MissingReadiness => "missing_readiness",
            CheckId::MissingResources => "missing_resources",
            CheckId::HighRestarts => "high_restarts",
            CheckId::Pending => "pending",
        }
    }

    /// Points a finding of this check costs at its default severity. 5/3/2/6/4 are the original
    /// contract; missing resources weighs 4: an unbounded container threatens its neighbours
    /// (noisy neighbour, node OOM) more than a missing probe threatens itself.
    pub const fn weight(self) -> u64 {
        match self {
            CheckId::LatestTag => 5,
            CheckId::MissingLiveness => 3,
            CheckId::MissingReadiness => 2,
            CheckId::MissingResources => 4,
            CheckId::HighRestarts => 6,
            CheckId::Pending => 4,
        }
    }

    pub const fn default_severity(self) -> Severity {
        match self {
            CheckId::LatestTag => Severity::High,
            CheckId::MissingLiveness => Severity::Medium,
            CheckId::MissingReadiness => Severity::Low,
            CheckId::MissingResources => Severity::Medium,
            CheckId::HighRestarts => Severity::Critical,
            CheckId::Pending => Severity::Medium,
        }
    }

    pub const fn index(self) -> usize {
        self as usize
    }

    /// One line on what the check asks for, for listings and docs.
    pub const fn description(self) -> &'static str {
        match self {
            CheckId::LatestTag => "images are pinned to a tag other than latest, or to a digest",
            CheckId::MissingLiveness => "long-running containers have a liveness probe",
            CheckId::MissingReadiness => "long-running containers have a readiness probe",
            CheckId::MissingResources => "containers set cpu and memory requests and limits",
            CheckId::HighRestarts => "containers restart no more than maxRestartCount times",
            CheckId::Pending => "pods are not Pending longer than forbidPendingDuration",
        }
    }
}

impl fmt::Display for CheckId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

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

    /// The missing settings, e.g. `["requests.cpu", "limits.memory"]`.
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        Self::NAMES.into_iter().filter(move |(bit, _)| self.0 & bit != 0).map(|(_, name)| name)
    }
}

/// What exactly a finding is about, kept borrowed so evaluation allocates nothing but the list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Detail<'a> {
    LatestTag { image: &'a str, explicit: bool },
    MissingProbe,
    MissingResources(MissingResources),
    Restarts { count: i32, threshold: i32 },
    Pending { seconds: i64, limit: u64 },
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
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_strings() {
        let ids: Vec<&str> = CheckId::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(
            ids,
            ["latest_tag", "missing_liveness", "missing_readiness", "missing_resources", "high_restarts", "pending"]
        );
        assert_eq!(serde_json::to_string(&CheckId::HighRestarts).unwrap(), "\"high_restarts\"");
        for (i, c) in CheckId::ALL.iter().enumerate() {
            assert_eq!(c.index(), i);
        }
    }

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

//! The checks: stable ids, weights, default severities, and what a finding says.

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

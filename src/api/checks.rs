//! The checks of the governance engine as the API names them: stable ids (the contract of
//! audit results, metrics labels and admission messages), with the weight and default
//! severity each costs in the score.

use super::severity::Severity;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::fmt;

/// A governance check. The string ids are a stable contract (metrics labels, audit results).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
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
    fn ids_parse_back() {
        for check in CheckId::ALL {
            assert_eq!(check.as_str().parse::<CheckId>(), Ok(check));
        }
        assert!("latest".parse::<CheckId>().is_err());
    }
}

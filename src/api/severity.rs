//! Severities of findings and classifications of scores.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::fmt;

/// How serious a finding is. Each severity weighs differently in the score.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    /// Every severity, from most to least serious (the order reports use).
    pub const ALL: [Severity; 4] = [Severity::Critical, Severity::High, Severity::Medium, Severity::Low];

    /// Relative weight of the severity. A check's points are defined at its default severity and
    /// scale by `factor(effective) / factor(default)` when a policy overrides the severity.
    pub const fn factor(self) -> u64 {
        match self {
            Severity::Critical => 4,
            Severity::High => 3,
            Severity::Medium => 2,
            Severity::Low => 1,
        }
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::High => "high",
            Severity::Medium => "medium",
            Severity::Low => "low",
        }
    }

    /// Position in [`Severity::ALL`], for per-severity counters.
    pub const fn index(self) -> usize {
        match self {
            Severity::Critical => 0,
            Severity::High => 1,
            Severity::Medium => 2,
            Severity::Low => 3,
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The health class of a score: Healthy ≥ 80, Stable ≥ 60, Degraded ≥ 40, else Critical.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
pub enum Classification {
    Critical,
    Degraded,
    Stable,
    Healthy,
}

impl Classification {
    pub const fn from_score(score: u32) -> Self {
        match score {
            80.. => Classification::Healthy,
            60..=79 => Classification::Stable,
            40..=59 => Classification::Degraded,
            _ => Classification::Critical,
        }
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            Classification::Healthy => "Healthy",
            Classification::Stable => "Stable",
            Classification::Degraded => "Degraded",
            Classification::Critical => "Critical",
        }
    }
}

impl fmt::Display for Classification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification_boundaries_match_the_original_contract() {
        let cases = [
            (100, Classification::Healthy),
            (80, Classification::Healthy),
            (79, Classification::Stable),
            (60, Classification::Stable),
            (59, Classification::Degraded),
            (40, Classification::Degraded),
            (39, Classification::Critical),
            (0, Classification::Critical),
        ];
        for (score, class) in cases {
            assert_eq!(Classification::from_score(score), class, "score {score}");
        }
    }

    #[test]
    fn every_severity_weighs_differently() {
        let factors: std::collections::BTreeSet<u64> = Severity::ALL.iter().map(|s| s.factor()).collect();
        assert_eq!(factors.len(), 4);
        assert!(Severity::Critical.factor() > Severity::High.factor());
        assert!(Severity::Medium.factor() > Severity::Low.factor());
    }

    #[test]
    fn severities_serialize_lowercase() {
        assert_eq!(serde_json::to_string(&Severity::Critical).unwrap(), "\"critical\"");
        let s: Severity = serde_json::from_str("\"low\"").unwrap();
        assert_eq!(s, Severity::Low);
    }
}

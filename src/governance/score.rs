//! Scoring: findings of many subjects folded into one health score.
//!
//! `score = 100 − min(floor(points / subjects), 100)`, and 100 when nothing was evaluated.
//! A finding costs `weight × units` points at its check's default severity; a policy that
//! overrides the severity scales that by `factor(effective) / factor(default)` (factors
//! critical 4, high 3, medium 2, low 1). Points are kept in twelfths so the scaling is exact.

use super::checks::Finding;
use crate::api::CheckId;
use crate::api::SeverityCounts;
use crate::api::{Classification, Severity};
use serde::Serialize;

/// Points are counted in units of 1/12 (the lcm of the severity factors 1-4), so scaling by any
/// ratio of factors stays an integer.
const POINT_SCALE: u64 = 12;

/// What one unit of each check costs at each severity, in twelfths of a point: the division
/// is done once, at compile time, not per finding (with every check on, a bare pod has dozens
/// of findings, and a division each was a fifth of scoring it).
const UNIT_COSTS: [[u64; 4]; CheckId::COUNT] = {
    let mut costs = [[0; 4]; CheckId::COUNT];
    let mut i = 0;
    while i < CheckId::COUNT {
        let check = CheckId::ALL[i];
        let mut s = 0;
        while s < Severity::ALL.len() {
            let severity = Severity::ALL[s];
            costs[i][severity.index()] =
                check.weight() * POINT_SCALE * severity.factor() / check.default_severity().factor();
            s += 1;
        }
        i += 1;
    }
    costs
};

/// The cost of one finding, in twelfths of a point: `weight × units` scaled by
/// `factor(severity) / factor(default severity)`.
pub fn scaled_points(finding: &Finding<'_>) -> u64 {
    UNIT_COSTS[finding.check.index()][finding.severity.index()] * finding.units()
}

/// Running totals over evaluated subjects (pods or pod templates).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    subjects: u32,
    scaled_points: u64,
    violations: u32,
    by_check: [u32; CheckId::COUNT],
    by_severity: [u32; 4],
}

/// A tally's outcome, as reports show it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub score: u32,
    pub classification: Classification,
    pub subjects: u32,
    pub violations: u32,
    pub by_severity: SeverityCounts,
}

/// `3 violations across 2 pods — Healthy (95)`: how statuses, Events and logs say it.
impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} violations across {} pods — {} ({})",
            self.violations, self.subjects, self.classification, self.score
        )
    }
}

impl Tally {
    /// Adds one evaluated subject and its findings.
    pub fn add(&mut self, findings: &[Finding<'_>]) {
        self.subjects += 1;
        for finding in findings {
            self.scaled_points += scaled_points(finding);
            self.violations += 1;
            self.by_check[finding.check.index()] += 1;
            self.by_severity[finding.severity.index()] += 1;
        }
    }

    /// Folds another tally into this one (namespace tallies into a cluster tally).
    pub fn merge(&mut self, other: &Tally) {
        self.subjects += other.subjects;
        self.scaled_points += other.scaled_points;
        self.violations += other.violations;
        for (a, b) in self.by_check.iter_mut().zip(other.by_check) {
            *a += b;
        }
        for (a, b) in self.by_severity.iter_mut().zip(other.by_severity) {
            *a += b;
        }
    }

    pub fn subjects(&self) -> u32 {
        self.subjects
    }

    pub fn violations(&self) -> u32 {
        self.violations
    }

    pub fn count(&self, check: CheckId) -> u32 {
        self.by_check[check.index()]
    }

    pub fn count_by_severity(&self, severity: Severity) -> u32 {
        self.by_severity[severity.index()]
    }

    /// The raw points (whole points, rounded down) before dividing by the subjects.
    pub fn points(&self) -> u64 {
        self.scaled_points / POINT_SCALE
    }

    pub fn score(&self) -> u32 {
        if self.subjects == 0 {
            return 100;
        }
        let per_subject = self.scaled_points / (POINT_SCALE * u64::from(self.subjects));
        100 - per_subject.min(100) as u32
    }

    pub fn classification(&self) -> Classification {
        Classification::from_score(self.score())
    }

    pub fn summary(&self) -> Summary {
        let [critical, high, medium, low] = self.by_severity;
        Summary {
            score: self.score(),
            classification: self.classification(),
            subjects: self.subjects,
            violations: self.violations,
            by_severity: SeverityCounts { critical, high, medium, low },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::governance::checks::{Detail, MissingResources};

    fn finding(check: CheckId, severity: Severity, detail: Detail<'static>) -> Finding<'static> {
        Finding { check, severity, container: Some("c"), detail }
    }

    fn default(check: CheckId) -> Finding<'static> {
        let detail = match check {
            CheckId::LatestTag => Detail::LatestTag { image: "nginx:latest", explicit: true },
            CheckId::MissingResources => Detail::MissingResources(MissingResources::from_bits(15)),
            CheckId::HighRestarts => Detail::Restarts { count: 10, threshold: 3 },
            CheckId::Pending => Detail::Pending { seconds: 600, limit: 300 },
            _ => Detail::MissingProbe,
        };
        finding(check, check.default_severity(), detail)
    }

    #[test]
    fn nothing_evaluated_scores_100() {
        let tally = Tally::default();
        assert_eq!(tally.score(), 100);
        assert_eq!(tally.classification(), Classification::Healthy);
    }

    #[test]
    fn the_original_worked_examples_still_hold() {
        // 1 pod, 1 container, :latest, no probes: 5 + 3 + 2 = 10 points -> 90.
        let mut tally = Tally::default();
        tally.add(&[
            default(CheckId::LatestTag),
            default(CheckId::MissingLiveness),
            default(CheckId::MissingReadiness),
        ]);
        assert_eq!(tally.points(), 10);
        assert_eq!(tally.score(), 90);
        // Add 10 restarts over a threshold of 3: capped at 5 units x 6 = 30 -> 60, Stable.
        let mut tally = Tally::default();
        tally.add(&[
            default(CheckId::LatestTag),
            default(CheckId::MissingLiveness),
            default(CheckId::MissingReadiness),
            default(CheckId::HighRestarts),
        ]);
        assert_eq!(tally.points(), 40);
        assert_eq!(tally.score(), 60);
        assert_eq!(tally.classification(), Classification::Stable);
    }

    #[test]
    fn points_are_divided_by_subjects_and_rounded_down() {
        let mut tally = Tally::default();
        tally.add(&[default(CheckId::LatestTag)]); // 5
        tally.add(&[default(CheckId::MissingLiveness)]); // 3
        tally.add(&[]);
        // 8 points over 3 subjects = 2.67 -> 2 -> 98.
        assert_eq!(tally.score(), 98);
        assert_eq!(tally.subjects(), 3);
        assert_eq!(tally.violations(), 2);
        assert_eq!(tally.count(CheckId::LatestTag), 1);
    }

    #[test]
    fn the_score_never_goes_below_zero() {
        let mut tally = Tally::default();
        let many: Vec<_> = (0..40).map(|_| default(CheckId::HighRestarts)).collect();
        tally.add(&many);
        assert_eq!(tally.score(), 0);
        assert_eq!(tally.classification(), Classification::Critical);
    }

    #[test]
    fn a_severity_override_changes_the_score() {
        let score_with = |severity| {
            let mut tally = Tally::default();
            let findings: Vec<_> = (0..6)
                .map(|_| finding(CheckId::LatestTag, severity, Detail::LatestTag { image: "x", explicit: true }))
                .collect();
            tally.add(&findings);
            tally.score()
        };
        // Six :latest containers in one pod: 30 points at the default (high).
        assert_eq!(score_with(Severity::High), 70);
        // critical x4/3 -> 40 points; medium x2/3 -> 20; low x1/3 -> 10.
        assert_eq!(score_with(Severity::Critical), 60);
        assert_eq!(score_with(Severity::Medium), 80);
        assert_eq!(score_with(Severity::Low), 90);
    }

    #[test]
    fn merged_tallies_equal_one_tally_over_everything() {
        let (mut a, mut b, mut all) = (Tally::default(), Tally::default(), Tally::default());
        a.add(&[default(CheckId::LatestTag)]);
        b.add(&[default(CheckId::Pending), default(CheckId::MissingResources)]);
        all.add(&[default(CheckId::LatestTag)]);
        all.add(&[default(CheckId::Pending), default(CheckId::MissingResources)]);
        a.merge(&b);
        assert_eq!(a, all);
        assert_eq!(a.summary().by_severity.medium, 2);
        assert_eq!(a.count_by_severity(Severity::High), 1);
    }
}

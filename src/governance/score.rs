//! Scoring: findings of many subjects folded into one health score.
//!
//! `score = 100 − min(floor(points / subjects), 100)`, and 100 when nothing was evaluated.
//! A finding costs `weight × units` points at its check's default severity; a policy that
//! overrides the severity scales that by `factor(effective) / factor(default)` (factors
//! critical 4, high 3, medium 2, low 1). Points are kept in twelfths so the scaling is exact.

use super::checks::{CheckId, Finding};
use super::severity::{Classification, Severity};
use serde::Serialize;

/// Points are counted in units of 1/12 (the lcm of the severity factors 1-4), so scaling by any
/// ratio of factors stays an integer.
const POINT_SCALE: u64 = 12;

/// The cost of one finding, in twelfths of a point.
pub fn scaled_points(finding: &Finding<'_>) -> u64 {
    let check = finding.check;
    check.weight() * finding.units() * POINT_SCALE * finding.severity.factor() / check.default_severity().factor()
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
    pub by_severity: SeverityBreakdown,
}

/// Violations counted per severity.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SeverityBreakdown {
    pub critical: u32,
    pub high: u32,
    pub medium: u32,
    pub low: u32,
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
            by_severity: SeverityBreakdown { critical, high, medium, low },
        }
    }
}

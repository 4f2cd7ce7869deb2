//! A policy spec compiled into the flat form the evaluator reads on every pod.

use crate::api::CheckId;
use crate::api::Severity;
use crate::api::policy::{DevOpsPolicySpec, SeverityOverrides};

/// What to check and how seriously, resolved once from a [`DevOpsPolicySpec`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rules {
    pub forbid_latest_tag: bool,
    pub require_liveness_probe: bool,
    pub require_readiness_probe: bool,
    pub require_resources: bool,
    pub max_restart_count: Option<i32>,
    pub forbid_pending_seconds: Option<u64>,
    severities: [Severity; CheckId::COUNT],
}

impl Rules {
    pub fn from_spec(spec: &DevOpsPolicySpec) -> Self {
        let mut severities = CheckId::ALL.map(CheckId::default_severity);
        if let Some(overrides) = &spec.severity_overrides {
            for check in CheckId::ALL {
                if let Some(severity) = override_for(overrides, check) {
                    severities[check.index()] = severity;
                }
            }
        }
        Rules {
            forbid_latest_tag: spec.forbid_latest_tag.unwrap_or(false),
            require_liveness_probe: spec.require_liveness_probe.unwrap_or(false),
            require_readiness_probe: spec.require_readiness_probe.unwrap_or(false),
            require_resources: spec.require_resources.unwrap_or(false),
            max_restart_count: spec.max_restart_count,
            forbid_pending_seconds: spec.forbid_pending_duration,
            severities,
        }
    }

    /// The severity findings of `check` get under this policy.
    pub fn severity(&self, check: CheckId) -> Severity {
        self.severities[check.index()]
    }

    /// Whether the policy turns `check` on.
    pub fn enabled(&self, check: CheckId) -> bool {
        match check {
            CheckId::LatestTag => self.forbid_latest_tag,
            CheckId::MissingLiveness => self.require_liveness_probe,
            CheckId::MissingReadiness => self.require_readiness_probe,
            CheckId::MissingResources => self.require_resources,
            CheckId::HighRestarts => self.max_restart_count.is_some(),
            CheckId::Pending => self.forbid_pending_seconds.is_some(),
        }
    }
}

fn override_for(overrides: &SeverityOverrides, check: CheckId) -> Option<Severity> {
    match check {
        CheckId::LatestTag => overrides.latest_tag,
        CheckId::MissingLiveness => overrides.missing_liveness,
        CheckId::MissingReadiness => overrides.missing_readiness,
        CheckId::MissingResources => overrides.missing_resources,
        CheckId::HighRestarts => overrides.high_restarts,
        CheckId::Pending => overrides.pending,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::bundles::{Bundle, BundleName};
    use crate::api::policy::EnforcementMode;

    #[test]
    fn missing_fields_turn_checks_off() {
        let rules = Rules::from_spec(&DevOpsPolicySpec::default());
        for check in CheckId::ALL {
            assert!(!rules.enabled(check), "{check} should be off");
            assert_eq!(rules.severity(check), check.default_severity());
        }
    }

    #[test]
    fn overrides_replace_only_the_named_severities() {
        let spec = DevOpsPolicySpec {
            max_restart_count: Some(0),
            severity_overrides: Some(SeverityOverrides {
                latest_tag: Some(Severity::Low),
                pending: Some(Severity::Critical),
                ..Default::default()
            }),
            ..Default::default()
        };
        let rules = Rules::from_spec(&spec);
        assert!(rules.enabled(CheckId::HighRestarts));
        assert_eq!(rules.severity(CheckId::LatestTag), Severity::Low);
        assert_eq!(rules.severity(CheckId::Pending), Severity::Critical);
        assert_eq!(rules.severity(CheckId::MissingLiveness), Severity::Medium);
    }

    #[test]
    fn bundles_keep_the_original_contents() {
        let baseline = Rules::from_spec(&Bundle::of(BundleName::Baseline).spec);
        let enabled: Vec<_> = CheckId::ALL.into_iter().filter(|c| baseline.enabled(*c)).collect();
        assert_eq!(enabled, [CheckId::LatestTag, CheckId::MissingReadiness]);

        let restricted = Bundle::of(BundleName::Restricted).spec;
        assert_eq!(restricted.enforcement_mode, Some(EnforcementMode::Enforce));
        assert_eq!((restricted.max_restart_count, restricted.forbid_pending_duration), (Some(3), Some(300)));
        assert!(CheckId::ALL.into_iter().all(|c| Rules::from_spec(&restricted).enabled(c)));

        let permissive = Rules::from_spec(&Bundle::of(BundleName::Permissive).spec);
        assert_eq!((permissive.max_restart_count, permissive.forbid_pending_seconds), (Some(10), Some(600)));
        assert_eq!(permissive.severity(CheckId::HighRestarts), Severity::Medium);
        assert_eq!(permissive.severity(CheckId::LatestTag), Severity::Low);
    }
}

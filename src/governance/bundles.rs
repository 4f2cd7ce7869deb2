//! Built-in policy bundles: ready-made DevOpsPolicy specs.

use super::severity::Severity;
use crate::api::policy::{DefaultProbe, DefaultResources, DevOpsPolicySpec, EnforcementMode, SeverityOverrides};

/// A named, documented policy template.
#[derive(Clone, Debug, PartialEq)]
pub struct Bundle {
    pub name: &'static str,
    pub description: &'static str,
    pub spec: DevOpsPolicySpec,
}

/// Names of the built-in bundles, in listing order.
pub const BUNDLE_NAMES: [&str; 3] = ["baseline", "restricted", "permissive"];

/// Every built-in bundle.
pub fn all() -> Vec<Bundle> {
    BUNDLE_NAMES.iter().filter_map(|name| find(name)).collect()
}

/// Looks a bundle up by name, ignoring case.
pub fn find(name: &str) -> Option<Bundle> {
    match name.to_ascii_lowercase().as_str() {
        "baseline" => Some(Bundle {
            name: "baseline",
            description: "Forbid :latest tags and require readiness probes. Audit mode.",
            spec: DevOpsPolicySpec {
                forbid_latest_tag: Some(true),
                require_readiness_probe: Some(true),
                enforcement_mode: Some(EnforcementMode::Audit),
                ..Default::default()
            },
        }),
        "restricted" => Some(Bundle {
            name: "restricted",
            description: "All checks enabled with strict thresholds. Enforce mode.",
            spec: DevOpsPolicySpec {
                forbid_latest_tag: Some(true),
                require_liveness_probe: Some(true),
                require_readiness_probe: Some(true),
                require_resources: Some(true),
                max_restart_count: Some(3),
                forbid_pending_duration: Some(300),
                enforcement_mode: Some(EnforcementMode::Enforce),
                severity_overrides: Some(SeverityOverrides {
                    latest_tag: Some(Severity::Critical),
                    missing_liveness: Some(Severity::High),
                    missing_readiness: Some(Severity::High),
                    missing_resources: Some(Severity::High),
                    high_restarts: Some(Severity::Critical),
                    pending: Some(Severity::High),
                }),
                default_probe: Some(DefaultProbe {
                    tcp_port: None,
                    initial_delay_seconds: Some(5),
                    period_seconds: Some(10),
                }),
                default_resources: Some(DefaultResources {
                    cpu_request: Some("100m".into()),
                    cpu_limit: Some("500m".into()),
                    memory_request: Some("128Mi".into()),
                    memory_limit: Some("256Mi".into()),
                }),
            },
        }),
        "permissive" => Some(Bundle {
            name: "permissive",
            description: "All checks enabled with lenient thresholds. Audit mode.",
            spec: DevOpsPolicySpec {
                forbid_latest_tag: Some(true),
                require_liveness_probe: Some(true),
                require_readiness_probe: Some(true),
                require_resources: Some(true),
                max_restart_count: Some(10),
                forbid_pending_duration: Some(600),
                enforcement_mode: Some(EnforcementMode::Audit),
                severity_overrides: Some(SeverityOverrides {
                    latest_tag: Some(Severity::Low),
                    missing_liveness: Some(Severity::Low),
                    missing_readiness: Some(Severity::Low),
                    missing_resources: Some(Severity::Low),
                    high_restarts: Some(Severity::Medium),
                    pending: Some(Severity::Low),
                }),
                ..Default::default()
            },
        }),
        _ => None,
    }
}

/// The error message for an unknown bundle name.
pub fn unknown_bundle_message(name: &str) -> String {
    format!("Unknown bundle '{name}'. Available bundles: {}", BUNDLE_NAMES.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::governance::{CheckId, Rules};

    #[test]
    fn lookup_ignores_case_and_rejects_unknown_names() {
        assert_eq!(find("BaseLine").unwrap().name, "baseline");
        assert_eq!(find("RESTRICTED").unwrap().name, "restricted");
        assert!(find("strict").is_none());
        assert_eq!(
            unknown_bundle_message("strict"),
            "Unknown bundle 'strict'. Available bundles: baseline, restricted, permissive"
        );
        assert_eq!(all().len(), 3);
    }

    #[test]
    fn bundles_keep_the_original_contents() {
        let baseline = Rules::from_spec(&find("baseline").unwrap().spec);
        let enabled: Vec<_> = CheckId::ALL.into_iter().filter(|c| baseline.enabled(*c)).collect();
        assert_eq!(enabled, [CheckId::LatestTag, CheckId::MissingReadiness]);

        let restricted = find("restricted").unwrap().spec;
        assert_eq!(restricted.enforcement_mode, Some(EnforcementMode::Enforce));
        assert_eq!((restricted.max_restart_count, restricted.forbid_pending_duration), (Some(3), Some(300)));
        assert!(CheckId::ALL.into_iter().all(|c| Rules::from_spec(&restricted).enabled(c)));

        let permissive = Rules::from_spec(&find("permissive").unwrap().spec);
        assert_eq!((permissive.max_restart_count, permissive.forbid_pending_seconds), (Some(10), Some(600)));
        assert_eq!(permissive.severity(CheckId::HighRestarts), Severity::Medium);
        assert_eq!(permissive.severity(CheckId::LatestTag), Severity::Low);
    }
}

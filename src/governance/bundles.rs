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

//! Built-in policy bundles: ready-made DevOpsPolicy specs, beside the policy type they fill.

use super::Severity;
use super::policy::{
    DefaultProbe, DefaultResources, DevOpsPolicy, DevOpsPolicySpec, EnforcementMode, HostAccessChecks, RuntimeChecks,
    SecurityChecks, SeverityOverrides,
};
use std::collections::BTreeMap;
use std::fmt;

/// The label a policy made from a bundle carries, naming the bundle.
pub const BUNDLE_LABEL: &str = "devops.stochastic.io/bundle";

/// The built-in bundles (`--bundle`, case-insensitive on the command line).
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    clap::ValueEnum,
    serde::Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
)]
#[value(rename_all = "lower")]
#[serde(rename_all = "lowercase")]
pub enum BundleName {
    #[default]
    Baseline,
    Restricted,
    Permissive,
}

impl BundleName {
    /// Every bundle, in listing order.
    pub const ALL: [BundleName; 3] = [BundleName::Baseline, BundleName::Restricted, BundleName::Permissive];

    pub const fn as_str(self) -> &'static str {
        match self {
            BundleName::Baseline => "baseline",
            BundleName::Restricted => "restricted",
            BundleName::Permissive => "permissive",
        }
    }
}

impl fmt::Display for BundleName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A named, documented policy template.
#[derive(Clone, Debug, PartialEq)]
pub struct Bundle {
    pub name: BundleName,
    pub description: &'static str,
    pub spec: DevOpsPolicySpec,
}

impl Bundle {
    /// The bundle `name`.
    pub fn of(name: BundleName) -> Bundle {
        match name {
            BundleName::Baseline => Bundle {
                name,
                description: "Forbid :latest tags, require readiness probes, and the Pod Security baseline \
                              controls (privileged, host namespaces, ports and paths, added capabilities). \
                              Audit mode.",
                spec: DevOpsPolicySpec {
                    forbid_latest_tag: Some(true),
                    require_readiness_probe: Some(true),
                    security: Some(baseline_security()),
                    host_access: Some(no_host_access()),
                    enforcement_mode: Some(EnforcementMode::Audit),
                    ..Default::default()
                },
            },
            BundleName::Restricted => Bundle {
                name,
                description: "The original checks with strict thresholds, the Pod Security restricted \
                              controls and the runtime-state checks. Enforce mode.",
                spec: DevOpsPolicySpec {
                    security: Some(SecurityChecks {
                        forbid_run_as_root: Some(true),
                        forbid_privilege_escalation: Some(true),
                        require_drop_all_capabilities: Some(true),
                        require_seccomp_profile: Some(true),
                        ..baseline_security()
                    }),
                    host_access: Some(no_host_access()),
                    runtime: Some(RuntimeChecks {
                        forbid_crash_loop: Some(true),
                        forbid_oom_killed: Some(true),
                        forbid_image_pull_errors: Some(true),
                    }),
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
                        ..Default::default()
                    }),
                    default_probe: Some(DefaultProbe {
                        tcp_port: None,
                        initial_delay_seconds: Some(5),
                        period_seconds: Some(10),
                    }),
                    remediation: None,
                    resources: None,
                    reliability: None,
                    default_resources: Some(DefaultResources {
                        cpu_request: Some("100m".into()),
                        cpu_limit: Some("500m".into()),
                        memory_request: Some("128Mi".into()),
                        memory_limit: Some("256Mi".into()),
                    }),
                },
            },
            BundleName::Permissive => Bundle {
                name,
                description: "The original checks with lenient thresholds and low severities. Audit mode.",
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
                        ..Default::default()
                    }),
                    ..Default::default()
                },
            },
        }
    }

    /// Every built-in bundle, in listing order.
    pub fn all() -> Vec<Bundle> {
        BundleName::ALL.into_iter().map(Bundle::of).collect()
    }

    /// The bundle as a DevOpsPolicy manifest in `namespace` (named after the bundle unless
    /// `name` says otherwise), labelled with the bundle it came from.
    pub fn policy(&self, namespace: &str, name: Option<String>) -> DevOpsPolicy {
        let mut policy = DevOpsPolicy::new(&name.unwrap_or_else(|| self.name.to_string()), self.spec.clone());
        policy.metadata.namespace = Some(namespace.to_string());
        policy.metadata.labels = Some(BTreeMap::from([
            (BUNDLE_LABEL.to_string(), self.name.to_string()),
            ("app.kubernetes.io/managed-by".to_string(), crate::labels::MANAGER.to_string()),
        ]));
        policy
    }
}

/// The Pod Security Standards' baseline controls among the security checks.
fn baseline_security() -> SecurityChecks {
    SecurityChecks { forbid_privileged: Some(true), forbid_dangerous_capabilities: Some(true), ..Default::default() }
}

/// The baseline's host controls: no host namespaces, ports or paths.
fn no_host_access() -> HostAccessChecks {
    HostAccessChecks {
        forbid_host_network: Some(true),
        forbid_host_pid: Some(true),
        forbid_host_ipc: Some(true),
        forbid_host_ports: Some(true),
        forbid_host_path: Some(true),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bundle_is_listed_by_its_name() {
        let names: Vec<&str> = Bundle::all().iter().map(|b| b.name.as_str()).collect();
        assert_eq!(names, ["baseline", "restricted", "permissive"]);
        let policy = Bundle::of(BundleName::Permissive).policy("shop", Some("lenient".into()));
        assert_eq!(
            (policy.metadata.name.as_deref(), policy.metadata.namespace.as_deref()),
            (Some("lenient"), Some("shop"))
        );
        assert_eq!(policy.metadata.labels.unwrap()[BUNDLE_LABEL], "permissive");
    }
}

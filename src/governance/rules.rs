//! A policy spec compiled into the flat form the evaluator reads on every pod.

use crate::api::CheckId;
use crate::api::Severity;
use crate::api::policy::DevOpsPolicySpec;

/// What to check and how seriously, resolved once from a [`DevOpsPolicySpec`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rules {
    pub forbid_latest_tag: bool,
    pub require_liveness_probe: bool,
    pub require_readiness_probe: bool,
    pub require_resources: bool,
    pub max_restart_count: Option<i32>,
    pub forbid_pending_seconds: Option<u64>,
    /// Registries (or repository prefixes) images may come from; empty: any.
    pub allowed_registries: Vec<String>,
    enabled: [bool; CheckId::COUNT],
    severities: [Severity; CheckId::COUNT],
}

/// `Some(true)` turns a check on; unset and `false` leave it off.
fn on(setting: Option<bool>) -> bool {
    setting == Some(true)
}

impl Rules {
    pub fn from_spec(spec: &DevOpsPolicySpec) -> Self {
        let mut severities = CheckId::ALL.map(CheckId::default_severity);
        if let Some(overrides) = &spec.severity_overrides {
            for check in CheckId::ALL {
                if let Some(severity) = overrides.get(check) {
                    severities[check.index()] = severity;
                }
            }
        }
        let security = spec.security.clone().unwrap_or_default();
        let host = spec.host_access.clone().unwrap_or_default();
        let resources = spec.resources.clone().unwrap_or_default();
        let reliability = spec.reliability.clone().unwrap_or_default();
        let runtime = spec.runtime.clone().unwrap_or_default();
        let enabled = CheckId::ALL.map(|check| match check {
            CheckId::LatestTag => on(spec.forbid_latest_tag),
            CheckId::MissingLiveness => on(spec.require_liveness_probe),
            CheckId::MissingReadiness => on(spec.require_readiness_probe),
            CheckId::MissingResources => on(spec.require_resources),
            CheckId::HighRestarts => spec.max_restart_count.is_some(),
            CheckId::Pending => spec.forbid_pending_duration.is_some(),
            CheckId::RunAsRootAllowed => on(security.forbid_run_as_root),
            CheckId::Privileged => on(security.forbid_privileged),
            CheckId::PrivilegeEscalationAllowed => on(security.forbid_privilege_escalation),
            CheckId::WritableRootFilesystem => on(security.require_read_only_root_filesystem),
            CheckId::DangerousCapabilities => on(security.forbid_dangerous_capabilities),
            CheckId::CapabilitiesNotDropped => on(security.require_drop_all_capabilities),
            CheckId::MissingSeccompProfile => on(security.require_seccomp_profile),
            CheckId::HostNetwork => on(host.forbid_host_network),
            CheckId::HostPid => on(host.forbid_host_pid),
            CheckId::HostIpc => on(host.forbid_host_ipc),
            CheckId::HostPort => on(host.forbid_host_ports),
            CheckId::HostPath => on(host.forbid_host_path),
            CheckId::MissingCpuRequest => on(resources.require_cpu_request),
            CheckId::MissingCpuLimit => on(resources.require_cpu_limit),
            CheckId::MissingMemoryRequest => on(resources.require_memory_request),
            CheckId::MissingMemoryLimit => on(resources.require_memory_limit),
            CheckId::SingleReplica => on(reliability.forbid_single_replica),
            CheckId::PullPolicyNotAlways => on(reliability.require_pull_policy_always),
            CheckId::ServiceAccountTokenMounted => on(reliability.forbid_service_account_token_automount),
            CheckId::UntrustedRegistry => !reliability.allowed_registries.is_empty(),
            CheckId::MissingTopologySpread => on(reliability.require_topology_spread),
            CheckId::CrashLoop => on(runtime.forbid_crash_loop),
            CheckId::OomKilled => on(runtime.forbid_oom_killed),
            CheckId::ImagePullError => on(runtime.forbid_image_pull_errors),
        });
        Rules {
            forbid_latest_tag: enabled[CheckId::LatestTag.index()],
            require_liveness_probe: enabled[CheckId::MissingLiveness.index()],
            require_readiness_probe: enabled[CheckId::MissingReadiness.index()],
            require_resources: enabled[CheckId::MissingResources.index()],
            max_restart_count: spec.max_restart_count,
            forbid_pending_seconds: spec.forbid_pending_duration,
            allowed_registries: reliability.allowed_registries,
            enabled,
            severities,
        }
    }

    /// The severity findings of `check` get under this policy.
    pub fn severity(&self, check: CheckId) -> Severity {
        self.severities[check.index()]
    }

    /// Whether the policy turns `check` on.
    pub fn enabled(&self, check: CheckId) -> bool {
        self.enabled[check.index()]
    }

    /// Every check the policy turns on.
    pub fn checks(&self) -> impl Iterator<Item = CheckId> + '_ {
        CheckId::ALL.into_iter().filter(|c| self.enabled(*c))
    }

    /// Whether a check that reads how many replicas a workload runs is on (an assessment of
    /// live pods then counts the pods of each workload).
    pub fn reads_replicas(&self) -> bool {
        self.enabled(CheckId::SingleReplica) || self.enabled(CheckId::MissingTopologySpread)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::bundles::{Bundle, BundleName};
    use crate::api::policy::{EnforcementMode, SeverityOverrides};

    #[test]
    fn missing_fields_turn_checks_off() {
        let rules = Rules::from_spec(&DevOpsPolicySpec::default());
        for check in CheckId::ALL {
            assert!(!rules.enabled(check), "{check} should be off");
            assert_eq!(rules.severity(check), check.default_severity());
        }
    }

    #[test]
    fn every_setting_turns_on_its_own_check_only() {
        // The catalogue names each check's setting; setting exactly that path turns on exactly
        // that check (a wrong arm in `from_spec` would turn on another).
        for check in CheckId::ALL {
            let value = match check {
                CheckId::HighRestarts | CheckId::Pending => serde_json::json!(3),
                CheckId::UntrustedRegistry => serde_json::json!(["ghcr.io"]),
                _ => serde_json::json!(true),
            };
            let mut spec = serde_json::json!({});
            let path: Vec<&str> = check.setting().split('.').collect();
            let mut at = &mut spec;
            for part in &path[..path.len() - 1] {
                at = at.as_object_mut().unwrap().entry(part.to_string()).or_insert(serde_json::json!({}));
            }
            at[path[path.len() - 1]] = value;
            let spec: DevOpsPolicySpec = serde_json::from_value(spec.clone()).unwrap();
            let rules = Rules::from_spec(&spec);
            assert_eq!(rules.checks().collect::<Vec<_>>(), [check], "{}", check.setting());
        }
    }

    #[test]
    fn overrides_replace_only_the_named_severities() {
        let spec = DevOpsPolicySpec {
            max_restart_count: Some(0),
            severity_overrides: Some(SeverityOverrides {
                latest_tag: Some(Severity::Low),
                pending: Some(Severity::Critical),
                host_pid: Some(Severity::Medium),
                ..Default::default()
            }),
            ..Default::default()
        };
        let rules = Rules::from_spec(&spec);
        assert!(rules.enabled(CheckId::HighRestarts));
        assert_eq!(rules.severity(CheckId::LatestTag), Severity::Low);
        assert_eq!(rules.severity(CheckId::Pending), Severity::Critical);
        assert_eq!(rules.severity(CheckId::HostPid), Severity::Medium);
        assert_eq!(rules.severity(CheckId::MissingLiveness), Severity::Medium);
    }

    #[test]
    fn bundles_map_onto_the_pod_security_standards() {
        use CheckId::*;
        let baseline: Vec<_> = Rules::from_spec(&Bundle::of(BundleName::Baseline).spec).checks().collect();
        assert_eq!(
            baseline,
            [
                LatestTag,
                MissingReadiness,
                Privileged,
                DangerousCapabilities,
                HostNetwork,
                HostPid,
                HostIpc,
                HostPort,
                HostPath
            ]
        );

        let restricted = Bundle::of(BundleName::Restricted).spec;
        assert_eq!(restricted.enforcement_mode, Some(EnforcementMode::Enforce));
        assert_eq!((restricted.max_restart_count, restricted.forbid_pending_duration), (Some(3), Some(300)));
        let restricted = Rules::from_spec(&restricted);
        // Every original check, and the baseline's and restricted's security controls.
        for check in [LatestTag, MissingLiveness, MissingReadiness, MissingResources, HighRestarts, Pending]
            .into_iter()
            .chain(baseline.iter().copied())
            .chain([RunAsRootAllowed, PrivilegeEscalationAllowed, CapabilitiesNotDropped, MissingSeccompProfile])
        {
            assert!(restricted.enabled(check), "restricted lacks {check}");
        }

        let permissive = Rules::from_spec(&Bundle::of(BundleName::Permissive).spec);
        assert_eq!((permissive.max_restart_count, permissive.forbid_pending_seconds), (Some(10), Some(600)));
        assert_eq!(permissive.severity(HighRestarts), Severity::Medium);
        assert_eq!(permissive.severity(LatestTag), Severity::Low);
        assert!(permissive.checks().all(|c| c.index() < 6), "permissive stays with the original six");
    }
}

//! The custom resources of kube-devops, typed, and their CustomResourceDefinitions.

pub mod audit;
pub mod install;
pub mod policy;

pub use audit::{AuditViolation, MAX_AUDIT_VIOLATIONS, PolicyAuditResult, PolicyAuditResultSpec, SeverityCounts};
pub use install::{INSTALL_NAME, KubeDevopsInstall, KubeDevopsInstallSpec, KubeDevopsInstallStatus};
pub use policy::{DevOpsPolicy, DevOpsPolicySpec, DevOpsPolicyStatus, EnforcementMode, SeverityOverrides};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

/// Every CRD kube-devops owns, in install order, with the file name it has under `crds/`.
pub fn crds() -> Vec<(&'static str, CustomResourceDefinition)> {
    vec![
        ("devopspolicies.yaml", DevOpsPolicy::crd()),
        ("policyauditresults.yaml", PolicyAuditResult::crd()),
        ("kubedevopsinstalls.yaml", KubeDevopsInstall::crd()),
    ]
}

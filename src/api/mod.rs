//! The custom resources of kube-devops, typed, and their CustomResourceDefinitions.

pub mod audit;
pub mod bundles;
pub mod checks;
pub mod condition;
pub mod install;
pub mod policy;
pub mod severity;

pub use audit::{AuditViolation, MAX_AUDIT_VIOLATIONS, PolicyAuditResult, PolicyAuditResultSpec, SeverityCounts};
pub use checks::CheckId;
pub use install::{INSTALL_NAME, KubeDevopsInstall, KubeDevopsInstallSpec, KubeDevopsInstallStatus};
pub use policy::{DevOpsPolicy, DevOpsPolicySpec, DevOpsPolicyStatus, EnforcementMode, SeverityOverrides};
pub use severity::{Classification, Severity};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

/// Every CRD kube-devops owns, in install order, with the file name it has under `crds/`.
pub fn crds() -> Vec<(&'static str, CustomResourceDefinition)> {
    let labelled = |mut crd: CustomResourceDefinition| {
        // Like every object kube-devops ships: `kubectl get crd -l app.kubernetes.io/name=kube-devops`.
        crd.metadata.labels = Some(crate::labels::labels(CRD_COMPONENT));
        crd
    };
    vec![
        ("devopspolicies.yaml", labelled(DevOpsPolicy::crd())),
        ("policyauditresults.yaml", labelled(PolicyAuditResult::crd())),
        ("kubedevopsinstalls.yaml", labelled(KubeDevopsInstall::crd())),
    ]
}

/// The `app.kubernetes.io/component` label of the CRDs.
pub const CRD_COMPONENT: &str = "crd";

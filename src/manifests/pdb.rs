//! PodDisruptionBudgets: during voluntary disruptions (node drains) `minAvailable` pods of
//! each component stay up. A component with no more replicas than `minAvailable` gets no
//! budget: it could never be evicted, and `kubectl drain` would hang forever.

use super::deployments::pod_selector;
use super::labels::namespaced_meta;
use super::{Component, enabled_components, settings};
use crate::api::KubeDevopsInstallSpec;
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// The budget of one component, selecting exactly its pods.
pub fn pod_disruption_budget(spec: &KubeDevopsInstallSpec, component: Component) -> PodDisruptionBudget {
    PodDisruptionBudget {
        metadata: namespaced_meta(&component.object_name(), component.name()),
        spec: Some(PodDisruptionBudgetSpec {
            min_available: Some(IntOrString::Int(spec.pdb.min_available)),
            selector: Some(LabelSelector { match_labels: Some(pod_selector(component)), ..Default::default() }),
            // A crash-looping pod must not block a drain.
            unhealthy_pod_eviction_policy: Some("AlwaysAllow".into()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The budgets of the enabled components that have more replicas than `minAvailable`; none
/// when `spec.pdb.enabled` is false.
pub fn pod_disruption_budgets(spec: &KubeDevopsInstallSpec) -> Vec<PodDisruptionBudget> {
    if !spec.pdb.enabled {
        return Vec::new();
    }
    enabled_components(spec)
        .into_iter()
        .filter(|c| settings(spec, *c).replicas > spec.pdb.min_available)
        .map(|c| pod_disruption_budget(spec, c))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_budget_selects_one_component_with_min_available_from_the_spec() {
        let pdbs = pod_disruption_budgets(&KubeDevopsInstallSpec::default());
        assert_eq!(pdbs.len(), 3);
        for (pdb, component) in pdbs.iter().zip(Component::ALL) {
            let spec = pdb.spec.clone().unwrap();
            assert_eq!(pdb.metadata.name.clone().unwrap(), component.object_name());
            assert_eq!(spec.min_available, Some(IntOrString::Int(1)));
            let selector = spec.selector.unwrap().match_labels.unwrap();
            assert_eq!(selector["app.kubernetes.io/component"], component.name());
            assert_eq!(selector.len(), 3);
        }
    }

    #[test]
    fn no_budget_that_would_block_every_eviction_and_none_when_disabled() {
        let mut spec = KubeDevopsInstallSpec::default();
        spec.webhook.replicas = Some(1);
        let names: Vec<_> = pod_disruption_budgets(&spec).into_iter().map(|p| p.metadata.name.unwrap()).collect();
        assert_eq!(names, ["kube-devops-watch", "kube-devops-reconcile"]);
        spec.pdb.enabled = false;
        assert!(pod_disruption_budgets(&spec).is_empty());
    }
}
